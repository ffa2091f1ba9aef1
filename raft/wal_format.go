package raft

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// The segment format of WALStore: its header, and the framing of its
// records.

const (
	// walMagic starts a segment of the current format, followed by
	// walSaltBytes of salt. Every record's CRC covers the salt and then
	// the body (the CRC starts from the salt's CRC, the segment's seed):
	// a record's framing costs what it did, and a record checks only in
	// the segment it was written to. That matters when open looks past a
	// bad record for whole ones (tailIsTorn): without a salt, a client's
	// value stored inside an entry could frame a record with a valid
	// CRC (or a header-end marker at its own offset), and stale blocks
	// of a deleted segment would hold valid records, either of which a
	// crash that tears that write leaves after the bad record, where
	// they look like evidence of later, acknowledged writes: open would
	// refuse the log, an outage a client could arm. Neither can know
	// the salt (random, never sent anywhere) nor carry another
	// segment's records past it, so only this segment's writes check:
	// a record framed with a guessed salt checks with a chance of 2^-32,
	// and the search charges each candidate its body, at least 3 bytes,
	// so a 512 KiB value holds at most some 175k guesses (a chance of
	// 1/24000 that a crash tearing it makes open refuse, where it was
	// certain) and a torn write, however large, 22M (1/190).
	walMagic     = "RSTRWAL2"
	walSaltBytes = 8
	// walMagicV1 starts a segment of the first format: no salt, each
	// record's CRC of its body alone. Such segments (from releases before
	// the salt) are replayed, a torn tail cut as before, but never
	// written to: an open writes on in a new, salted segment.
	walMagicV1     = "RSTRWAL1"
	walMagicPrefix = "RSTRWAL"
)

// walReadHeader reads a segment's header: the seed of its records' CRCs
// (see walSegment) and where its first record starts. The error completes
// "log segment <path> ...".
func walReadHeader(data []byte) (seed uint32, start int, err error) {
	n := len(walMagic)
	switch {
	case len(data) >= n && string(data[:n]) == walMagicV1:
		if walSaltedUnderV1Magic(data) {
			return 0, 0, fmt.Errorf("starts with %q but is damaged: its first record checks under a salt, as in a segment of the current format (%q, two bits away); %s", walMagicV1, walMagic, walRepairHint)
		}
		return 0, n, nil
	case len(data) >= n && string(data[:n]) == walMagic:
		if len(data) < n+walSaltBytes {
			return 0, 0, fmt.Errorf("is damaged: its header ends before its salt (a segment is written whole, so this is not a torn write); %s", walRepairHint)
		}
		if seed = walSeed(data[n : n+walSaltBytes]); seed == 0 {
			return 0, 0, fmt.Errorf("is damaged: its salt is one no release writes; %s", walRepairHint)
		}
		return seed, n + walSaltBytes, nil
	case len(data) >= n && string(data[:len(walMagicPrefix)]) == walMagicPrefix:
		return 0, 0, fmt.Errorf("starts with %q, a log format this release does not know: either a newer release wrote it (run one that knows it) or it is damaged (then %s)", data[:n], walRepairHint)
	}
	// Moving a segment away is never safe: open would replay the others
	// as if its writes had never happened.
	return 0, 0, fmt.Errorf("does not start with %q; it is damaged, or a file that is not a roster log was put in the log directory under a segment's name. Never move or delete a segment of the log: %s", walMagic, walRepairHint)
}

// walSaltedUnderV1Magic reports whether a segment that starts with
// walMagicV1 is a salted one whose magic was damaged: "RSTRWAL2" is two
// bits from "RSTRWAL1". Read unsalted, such a segment has no whole record
// (its salt reads as a bad first record, and no salted record checks
// without the salt), so open would cut it back to its magic as a torn
// write and replay older segments' stale hard state: votes cast and
// entries acknowledged would be lost. Every salted segment starts with a
// header record right after its salt; in a segment of the first format
// the bytes there check under those 8 bytes taken as a salt by a chance
// of 2^-32.
func walSaltedUnderV1Magic(data []byte) bool {
	n := len(walMagicV1)
	if len(data) < n+walSaltBytes {
		return false
	}
	seed := walSeed(data[n : n+walSaltBytes])
	if seed == 0 {
		return false
	}
	_, ok := walRecord(data[n+walSaltBytes:], seed)
	return ok
}

// walSeed is the CRC seed of a segment with this salt.
func walSeed(salt []byte) uint32 { return crc32.Checksum(salt, walCRC) }

// walRecord returns the body of the record at the start of b, or false if
// b holds no whole record with a matching checksum under seed (its
// segment's).
func walRecord(b []byte, seed uint32) ([]byte, bool) {
	if len(b) < walRecHeader {
		return nil, false
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || uint64(n) > uint64(len(b)-walRecHeader) {
		return nil, false
	}
	body := b[walRecHeader : walRecHeader+int(n)]
	if crc32.Update(seed, walCRC, body) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, false
	}
	return body, true
}

// newWALSalt returns a random salt whose seed is not 0, the seed of an
// unsalted CRC: so no record checksummed without the salt checks in a
// salted segment. (crypto/rand does not fail on the systems Go runs on.)
func newWALSalt() []byte {
	salt := make([]byte, walSaltBytes)
	rand.Read(salt)
	if walSeed(salt) == 0 {
		salt[0] ^= 1 // a CRC tells any one-bit change: the seed is not 0 now
	}
	return salt
}

// finishWALRecord frames the body that starts at b[start+walRecHeader:]
// for the segment whose CRC seed is seed.
func finishWALRecord(b []byte, start int, seed uint32) []byte {
	body := b[start+walRecHeader:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Update(seed, walCRC, body))
	return b
}

func appendWALState(b []byte, seed uint32, key, val []byte) []byte {
	start := len(b)
	b = append(b, make([]byte, walRecHeader)...)
	b = append(b, walRecState)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(key)))
	b = append(b, key...)
	b = append(b, val...)
	return finishWALRecord(b, start, seed)
}

func appendWALEntries(b []byte, seed uint32, kind byte, entries []Entry) []byte {
	start := len(b)
	b = append(b, make([]byte, walRecHeader)...)
	b = append(b, kind)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(entries)))
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint64(b, e.Index)
		b = binary.LittleEndian.AppendUint64(b, e.Term)
		b = append(b, byte(e.Type))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e.Data)))
		b = append(b, e.Data...)
	}
	return finishWALRecord(b, start, seed)
}

func appendWALDelete(b []byte, seed uint32, kind byte, index uint64) []byte {
	start := len(b)
	b = append(b, make([]byte, walRecHeader)...)
	b = append(b, kind)
	b = binary.LittleEndian.AppendUint64(b, index)
	return finishWALRecord(b, start, seed)
}
