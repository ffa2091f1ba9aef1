package rpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"roster/raft"
)

// Write idempotency (Raft thesis §6.3, "Implementing linearizable
// semantics"). A write can be appended by a leader that then loses its
// connection to the caller, or its leadership, before answering; the
// caller cannot tell whether it was committed and retries, possibly on a
// new leader. If both copies commit, the write must still take effect once.
//
// roster does this with request IDs rather than making every command
// idempotent by construction: KV CAS, session create, lock acquire and
// check-and-set transactions are not idempotent, and retrofitting each of
// them is error-prone. Instead:
//
//  1. Forwarder.Forward gives each write a random 128-bit RequestID at the
//     first server that sees it; retries and forwarded copies keep it.
//  2. The leader's endpoint wraps the catalog command with EncodeCommand,
//     adding the RequestID and its own clock reading (ProposedAt) before
//     raft.Apply.
//  3. Every server's FSM is a DedupFSM around the catalog's FSM. It applies
//     a RequestID's first committed entry and turns later ones into
//     no-ops that return the first outcome. Since the table is a function
//     of the log alone, all replicas agree on which copy took effect.
//  4. IDs are forgotten deterministically: an entry is evicted once a later
//     entry's ProposedAt is more than Window past its own (the thesis's
//     leader-stamped session expiry), or when MaxEntries is exceeded. The
//     window must outlast a caller's retries (HoldTimeout + CallTimeout).
//  5. The table is part of the snapshot, so a server restored from one
//     still recognises recent duplicates.

// DefaultDedupWindow outlasts the forwarder's retries (7s hold plus 60s
// per call) with margin.
const DefaultDedupWindow = 2 * time.Minute

// DefaultDedupMaxEntries caps the table's memory (about 100 bytes an
// entry) whatever the write rate.
const DefaultDedupMaxEntries = 1 << 20

// commandMagic starts every command DedupFSM accepts.
const commandMagic = 0xD1

// EncodeCommand wraps a catalog command for raft.Apply. requestID may be
// empty (internal writes such as the leader's reconcile), which disables
// de-duplication for that command.
func EncodeCommand(requestID string, proposedAt time.Time, cmd []byte) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64*2+len(requestID)+len(cmd))
	b = append(b, commandMagic)
	b = binary.AppendUvarint(b, uint64(len(requestID)))
	b = append(b, requestID...)
	b = binary.AppendVarint(b, proposedAt.UnixNano())
	return append(b, cmd...)
}

// maxRequestIDBytes bounds IDs read from the log or a snapshot.
const maxRequestIDBytes = 128

// DecodeCommand reverses EncodeCommand. The returned cmd aliases data.
func DecodeCommand(data []byte) (requestID string, proposedAt time.Time, cmd []byte, err error) {
	id, nanos, cmd, err := decodeEnvelope(data)
	if err != nil {
		return "", time.Time{}, nil, err
	}
	return string(id), time.Unix(0, nanos), cmd, nil
}

// decodeEnvelope is DecodeCommand without copies: id and cmd alias data.
func decodeEnvelope(data []byte) (id []byte, proposedAtNanos int64, cmd []byte, err error) {
	if len(data) == 0 || data[0] != commandMagic {
		return nil, 0, nil, errors.New("rpc: command lacks the request envelope (was it built with EncodeCommand?)")
	}
	rest := data[1:]
	idLen, n := binary.Uvarint(rest)
	if n <= 0 || idLen > maxRequestIDBytes || idLen > uint64(len(rest)-n) {
		return nil, 0, nil, errors.New("rpc: command envelope has a bad request ID length")
	}
	rest = rest[n:]
	id, rest = rest[:idLen], rest[idLen:]
	nanos, n := binary.Varint(rest)
	if n <= 0 {
		return nil, 0, nil, errors.New("rpc: command envelope has a bad proposal time")
	}
	return id, nanos, rest[n:], nil
}

// Duplicate is what Apply returns for a repeated RequestID: the write
// already took effect, at Index, and the endpoint reports that first
// outcome. Result is what the inner FSM returned then, if ResultKnown; a
// table restored from a snapshot keeps IDs and indexes but not outcomes,
// and endpoints then report plain success at Index.
type Duplicate struct {
	Index       uint64
	Result      any
	ResultKnown bool
}

// DedupFSM is the raft.FSM every server runs: the catalog's FSM behind
// the request-ID table described above.
type DedupFSM struct {
	inner      raft.FSM
	window     time.Duration
	maxEntries int

	// mu guards the table (uuids, texts, order), and serialises the inner
	// FSM's Apply, Snapshot and Restore with it: Apply runs on raft's
	// apply goroutine, Snapshot and Stats may be called from others.
	mu sync.Mutex
	// order holds the remembered writes in apply order (dedup_key.go);
	// uuids and texts map each remembered ID to its place in order, by
	// its 16 bytes for a generated UUID, by its text for any other. The
	// maps hold no pointers and 24-byte slots, so the garbage collector
	// skips them and hundreds of thousands of IDs stay cheap to probe.
	order entryQueue
	uuids map[[16]byte]uint64
	texts map[string]uint64

	duplicates, malformed atomic.Uint64
}

var _ raft.FSM = (*DedupFSM)(nil)

// NewDedupFSM wraps inner. window <= 0 means DefaultDedupWindow,
// maxEntries <= 0 means DefaultDedupMaxEntries.
func NewDedupFSM(inner raft.FSM, window time.Duration, maxEntries int) *DedupFSM {
	if window <= 0 {
		window = DefaultDedupWindow
	}
	if maxEntries <= 0 {
		maxEntries = DefaultDedupMaxEntries
	}
	d := &DedupFSM{inner: inner, window: window, maxEntries: maxEntries}
	d.resetTable()
	return d
}

func (d *DedupFSM) resetTable() {
	d.order = entryQueue{}
	d.uuids = make(map[[16]byte]uint64)
	d.texts = make(map[string]uint64)
}

// Apply implements raft.FSM. A command without the envelope is malformed:
// it is counted and answered with an error value, never applied.
//
// mu is held across the inner Apply, not just the table lookups: Snapshot
// must see the table and the inner state at the same point of the log.
// raft.FSM allows Snapshot from another goroutine than Apply; if an Apply
// slipped between the table copy and the inner snapshot, the snapshot
// would hold the write's effect without its RequestID, and a replica
// restored from it would apply a retry of that write a second time.
func (d *DedupFSM) Apply(e raft.Entry) any {
	id, proposedAt, cmd, err := decodeEnvelope(e.Data)
	if err != nil {
		d.malformed.Add(1)
		return fmt.Errorf("rpc: entry %d: %w", e.Index, err)
	}
	var key reqKey
	if len(id) > 0 {
		key = keyOf(id)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(proposedAt)
	if len(id) > 0 {
		if prev := d.lookup(&key); prev != nil {
			d.duplicates.Add(1)
			return Duplicate{Index: prev.index, Result: prev.result, ResultKnown: prev.known}
		}
	}
	inner := e
	inner.Data = cmd
	result := d.inner.Apply(inner)
	if len(id) > 0 {
		d.remember(tableEntry{key: key, proposedAt: proposedAt, index: e.Index, result: result, known: true})
		d.expire(proposedAt)
	}
	return result
}

// lookup returns the remembered write of key, or nil. Caller holds mu.
func (d *DedupFSM) lookup(key *reqKey) *tableEntry {
	var seq uint64
	var ok bool
	if key.text == "" {
		seq, ok = d.uuids[key.uuid]
	} else {
		seq, ok = d.texts[key.text]
	}
	if !ok {
		return nil
	}
	return d.order.at(seq)
}

// remember adds e, whose ID is not in the table. Caller holds mu.
func (d *DedupFSM) remember(e tableEntry) {
	seq := d.order.push(e)
	if e.key.text == "" {
		d.uuids[e.key.uuid] = seq
	} else {
		d.texts[e.key.text] = seq
	}
}

// expire drops IDs proposed more than window before nowNanos, and the
// oldest beyond maxEntries. Caller holds mu.
func (d *DedupFSM) expire(nowNanos int64) {
	cutoff := nowNanos - d.window.Nanoseconds()
	for d.order.len() > 0 {
		e, seq := d.order.front()
		if e.proposedAt >= cutoff && d.order.len() <= d.maxEntries {
			break
		}
		// Only if the map still points here: a restored snapshot may
		// name an ID twice, and the later copy is the one mapped.
		if e.key.text == "" {
			if d.uuids[e.key.uuid] == seq {
				delete(d.uuids, e.key.uuid)
			}
		} else if d.texts[e.key.text] == seq {
			delete(d.texts, e.key.text)
		}
		d.order.pop()
	}
}

// DedupStats are the table's counters.
type DedupStats struct {
	Entries    int    // request IDs remembered now
	Duplicates uint64 // entries turned into no-ops
	Malformed  uint64 // entries without a valid envelope
}

// Stats returns a copy of the counters.
func (d *DedupFSM) Stats() DedupStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return DedupStats{Entries: len(d.uuids) + len(d.texts), Duplicates: d.duplicates.Load(), Malformed: d.malformed.Load()}
}
