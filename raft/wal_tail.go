package raft

import (
	"bytes"
	"encoding/binary"
)

// Telling a torn last write from damage, for WALStore's open.

// tailIsTorn reports whether the bad record at data[off:] can be the
// unsynced last write cut short by a crash: no whole record of a later
// write follows it. A whole record is one whose CRC checks under seed,
// the segment's: in a salted segment only what was written to it does,
// never a record a client's value frames inside an entry of the torn
// write (it cannot know the salt) nor stale blocks of another segment
// file that the crash left in the unsynced tail (another salt). A whole
// record counts as a later write unless it restates state the log
// replayed so far holds or held (continuesLog): that rule still decides
// for bytes that pass a checksum without being a later write — in a
// segment of the first format (seed 0, no salt) framed values and stale
// blocks of any segment, in a salted one its own older records — as
// refusing to open over them would cost the server for nothing. The
// doubt is settled towards damage: a false "damage" costs availability
// (the operator restores the server or has it rejoin), a false "torn"
// cuts back durable, acknowledged records, which breaks Raft's safety.
// The entries of a write that starts with a stable key follow that key's
// record, so a whole walRecEntriesWithState record that ends the file may
// be the torn write's own — unless the whole key record of its write
// comes right before it, which makes that write a whole later one; its
// checksum is not charged, so a group commit larger than the budget torn
// before its entries still opens. Only candidates whose body is well
// formed (walWellFormed: cheap, and random bytes rarely are) cost
// checksum work; the entry headers walked to tell are charged too. When
// budget bytes of work (walTornScanBytes) find no answer, the bad record
// counts as damage, not as torn, for the reason above. Called during
// replay, so s holds the log as it was just before the bad record.
func (s *WALStore) tailIsTorn(data []byte, off int, seed uint32, budget int) bool {
	return s.tailSearch(data, off, seed, &budget)
}

// tailSearch is tailIsTorn charging its work to *budget: the bytes of
// every candidate's checksum and of every entry header walEntryTerms
// reads, so crafted chains of entry headers that many candidates walk
// cost no more than the budget either.
func (s *WALStore) tailSearch(data []byte, off int, seed uint32, budget *int) bool {
	keyEnd := -1 // where the last whole stable-key record found ends
	ownSeen := false
	for p := off + 1; p+walRecHeader < len(data); p++ {
		n := binary.LittleEndian.Uint32(data[p:])
		if n == 0 || uint64(n) > uint64(len(data)-p-walRecHeader) {
			continue
		}
		kind := data[p+walRecHeader]
		if kind < walRecEntries || kind > walRecEntriesWithState {
			continue
		}
		formed := walWellFormed(data[p+walRecHeader:p+walRecHeader+int(n)], budget)
		if *budget < 0 {
			return false
		}
		if !formed {
			continue
		}
		// The first candidate for the torn write's own entries is not
		// charged: a group commit's entries may exceed the budget on
		// their own, and they end the search either way. Only the first
		// one, so nested candidates cannot make the search quadratic.
		own := !ownSeen && kind == walRecEntriesWithState && p+walRecHeader+int(n) == len(data) && keyEnd != p
		if own {
			ownSeen = true
		} else if *budget -= int(n); *budget < 0 {
			return false
		}
		body, ok := walRecord(data[p:], seed)
		switch {
		case !ok:
			continue
		case walHeaderEndAt(body, p):
			return false // a header, written whole, holds the bad record
		case own:
			return true // the torn write's own entries
		case s.continuesLog(body):
			return false
		}
		// Its bytes are its own: a record framed inside them is no more
		// a later write than it is.
		p += walRecHeader + int(n) - 1
		if kind == walRecState {
			keyEnd = p + 1
		}
	}
	return true
}

// continuesLog reports whether a whole record found after a bad one may
// be one a later write put there, given how Raft writes (§5.3, §7) and
// that the bad records may have held any writes before it. It is false
// only for what older writes restate:
//   - entries: false only if they start below the stored log's first
//     index (compacted: committed, never written again), or below the
//     first index the log held when it became empty if none is stored
//     (a snapshot install or a compaction discarded them; entries go on
//     right after the snapshot, whose index is at least the one before
//     that log's first), or if they are
//     a copy of stored entries (same indexes and terms: by Log Matching,
//     the same entries). Whatever their term: a §5.3 replacement can
//     install entries of a lower term than those it replaces, and the
//     bad records may have appended or replaced any suffix first.
//   - the hard state: false only for the stored one or an older one
//     (a lower term, or the same term without a vote): terms only grow
//     and a vote is cast once per term.
//   - another stable key: false only for the stored value; the
//     header-end marker is never a later write (walHeaderEndAt decides
//     what one written where it is found means).
//   - a delete (suffix or prefix): false only below the index floor that
//     entries have; a later one names a stored or later index.
func (s *WALStore) continuesLog(body []byte) bool {
	floor := max(s.first, 1)
	if s.last == 0 {
		floor = max(s.emptiedFrom, 1)
	}
	switch body[0] {
	case walRecEntries, walRecEntriesWithState:
		first, terms, ok := walEntryTerms(body, true, nil) // walked (and charged) by walWellFormed
		return ok && first >= floor && !s.storedCopy(first, terms)
	case walRecState:
		return s.stateChanges(body)
	case walRecTruncate, walRecCompact:
		return len(body) == 9 && binary.LittleEndian.Uint64(body[1:]) >= floor
	}
	return false
}

// stateChanges reports whether a stable-key record sets a value a later
// write could: for the hard state one that is not older than the stored
// one, for another key a different one.
func (s *WALStore) stateChanges(body []byte) bool {
	if len(body) < 3 {
		return false
	}
	kl := int(binary.LittleEndian.Uint16(body[1:]))
	if 3+kl > len(body) {
		return false
	}
	key, val := string(body[3:3+kl]), body[3+kl:]
	if key == walHeaderEnd {
		return false // not where it was written: see walHeaderEndAt
	}
	cur, stored := s.kv[key]
	if key != string(keyHardState) {
		return !stored || !bytes.Equal(cur, val)
	}
	hs, err := decodeHardState(val)
	if err != nil {
		return false
	}
	was, err := decodeHardState(cur)
	return err != nil || hs.Term > was.Term || (hs.Term == was.Term && hs.Vote != "" && hs.Vote != was.Vote)
}

// storedCopy reports whether entries first.. with these terms are stored
// already, each at its index with its term. An unreadable stored term
// counts as different.
func (s *WALStore) storedCopy(first uint64, terms []uint64) bool {
	if s.last == 0 || first < s.first || first+uint64(len(terms))-1 > s.last {
		return false
	}
	for k, term := range terms {
		if stored, ok := s.termAt(first + uint64(k)); !ok || stored != term {
			return false
		}
	}
	return true
}

// walWellFormed reports whether a candidate record body (kind checked)
// has the shape every write gives its kind, before its checksum is
// computed: a delete 9 bytes, a stable key inside a record of at most
// walMaxStateBody, entries as walEntryTerms wants them (charging its walk
// to budget).
func walWellFormed(body []byte, budget *int) bool {
	switch body[0] {
	case walRecState:
		return len(body) >= 3 && len(body) <= walMaxStateBody && 3+int(binary.LittleEndian.Uint16(body[1:])) <= len(body)
	case walRecEntries, walRecEntriesWithState:
		_, _, ok := walEntryTerms(body, false, budget)
		return ok
	}
	return len(body) == 9
}

// walEntryTerms returns an entries record's first index and, if collect,
// its entries' terms, if the record is well formed: every entry inside
// it, the indexes consecutive and the terms not decreasing, as every
// write makes them. If budget is not nil, each entry header read costs
// walEntryHeader bytes of it, and the walk stops (not well formed) once
// it is spent.
func walEntryTerms(body []byte, collect bool, budget *int) (first uint64, terms []uint64, ok bool) {
	if len(body) < 5 {
		return 0, nil, false
	}
	count := binary.LittleEndian.Uint32(body[1:])
	p, prev := 5, uint64(0)
	for k := uint32(0); k < count; k++ {
		if p+walEntryHeader > len(body) {
			return 0, nil, false
		}
		if budget != nil {
			if *budget -= walEntryHeader; *budget < 0 {
				return 0, nil, false
			}
		}
		i, t := binary.LittleEndian.Uint64(body[p:]), binary.LittleEndian.Uint64(body[p+8:])
		if k == 0 {
			first = i
		} else if i != first+uint64(k) || t < prev {
			return 0, nil, false
		}
		if prev = t; collect {
			terms = append(terms, t)
		}
		p += walEntryHeader + int(binary.LittleEndian.Uint32(body[p+17:]))
	}
	return first, terms, count > 0 && p == len(body)
}

// termAt reads the term of stored entry i from its segment.
func (s *WALStore) termAt(i uint64) (uint64, bool) {
	if s.last == 0 || i < s.first || i > s.last {
		return 0, false
	}
	l := s.locs[i-s.first]
	var b [8]byte
	if _, err := l.seg.f.ReadAt(b[:], l.off+8); err != nil {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[:]), true
}

// walHeaderEndAt reports whether a record body is a header-end marker
// (see walHeaderEnd) written where it is found, at offset p of its
// segment: then the header before it, written whole, holds the bad
// record. A marker elsewhere (stale blocks of a deleted segment, a
// client's value) is not evidence: it is treated as any other record.
func walHeaderEndAt(body []byte, p int) bool {
	n := 3 + len(walHeaderEnd)
	return body[0] == walRecState && len(body) == n+8 &&
		int(binary.LittleEndian.Uint16(body[1:])) == len(walHeaderEnd) && string(body[3:n]) == walHeaderEnd &&
		binary.LittleEndian.Uint64(body[n:]) == uint64(p)
}
