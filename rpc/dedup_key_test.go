package rpc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"roster/internal/testkit"
)

// Keys and IDs convert both ways, and two IDs share a key only if they are
// the same ID (a UUID in capitals is another ID than the same in lowercase).
func TestReqKey_OneToOneWithIDs(t *testing.T) {
	ids := []string{"req-1", strings.ToUpper(NewRequestID()), "00000000-0000-0000-0000-00000000000g", "x"}
	for range 50 {
		ids = append(ids, NewRequestID())
	}
	seen := map[reqKey]string{}
	for _, id := range ids {
		k := keyOf([]byte(id))
		if back := string(k.appendText(nil)); back != id {
			t.Fatalf("ID %q comes back from its key as %q", id, back)
		}
		if other, dup := seen[k]; dup {
			t.Fatalf("IDs %q and %q share a key", id, other)
		}
		seen[k] = id
		if _, isUUID := parseUUID([]byte(id)); isUUID != (k.text == "") {
			t.Fatalf("ID %q: parsed as UUID %v, but key %+v", id, isUUID, k)
		}
	}
}

// The table's FIFO keeps order across chunk boundaries while entries are
// added and removed in random runs, and finds every live entry, and only
// those, by its sequence number.
func TestEntryQueue_FIFOAcrossChunks(t *testing.T) {
	rnd := testkit.Rand(t)
	var q entryQueue
	next, first := int64(0), int64(0)
	for range 40 {
		for range rnd.IntN(3 * queueChunk) {
			if seq := q.push(tableEntry{proposedAt: next}); seq != uint64(next) {
				t.Fatalf("push %d got sequence number %d", next, seq)
			}
			next++
		}
		for range rnd.IntN(q.len() + 1) {
			if got, seq := q.front(); got.proposedAt != first || seq != uint64(first) {
				t.Fatalf("front %d (sequence %d), want %d", got.proposedAt, seq, first)
			}
			q.pop()
			first++
		}
		if q.len() != int(next-first) {
			t.Fatalf("len %d, want %d", q.len(), next-first)
		}
		want := first
		q.each(func(e tableEntry) {
			if e.proposedAt != want {
				t.Fatalf("each: %d, want %d", e.proposedAt, want)
			}
			want++
		})
		for _, seq := range []int64{first - 1, first, (first + next) / 2, next - 1, next} {
			e := q.at(uint64(seq))
			if live := seq >= first && seq < next; (e != nil) != live {
				t.Fatalf("at(%d) with live [%d, %d): %v", seq, first, next, e)
			}
			if e != nil && e.proposedAt != seq {
				t.Fatalf("at(%d) = entry %d", seq, e.proposedAt)
			}
		}
		if len(q.chunks) > q.len()/queueChunk+2 {
			t.Fatalf("%d chunks kept for %d entries", len(q.chunks), q.len())
		}
	}
}

// A table of generated (UUID) IDs survives a snapshot: a retry of a write
// from before the snapshot is still recognised after Restore.
func TestDedup_UUIDKeysSurviveSnapshot(t *testing.T) {
	t0 := time.Unix(1000, 0)
	d := NewDedupFSM(newKV(), time.Minute, 0)
	ids := []string{NewRequestID(), "custom-id", NewRequestID()}
	for i, id := range ids {
		d.Apply(entry(uint64(i+1), id, t0, "a=1"))
	}
	buf := persistSnapshot(t, d)
	r := NewDedupFSM(newKV(), time.Minute, 0)
	if err := r.Restore(buf); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		res := r.Apply(entry(uint64(10+i), id, t0.Add(time.Second), "a=2"))
		if dup, ok := res.(Duplicate); !ok || dup.Index != uint64(i+1) {
			t.Fatalf("retry of %q after Restore: %#v, want Duplicate at %d", id, res, i+1)
		}
	}
}

// Snapshots written before the binary ID form (RDD1: every ID as its
// text) still restore, and their generated IDs map to the keys Apply
// gives them, so retries of those writes are still recognised.
func TestDedup_RestoresTextFormSnapshot(t *testing.T) {
	ids := []string{NewRequestID(), "custom-id"}
	var b []byte
	b = append(b, "RDD1"...)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for i, id := range ids {
		b = binary.AppendUvarint(b, uint64(len(id)))
		b = append(b, id...)
		b = binary.AppendVarint(b, t0.UnixNano())
		b = binary.AppendUvarint(b, uint64(i+1))
	}
	var inner bytes.Buffer
	snap, err := newKV().Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Persist(&inner); err != nil {
		t.Fatal(err)
	}
	b = append(b, inner.Bytes()...)
	d := NewDedupFSM(newKV(), time.Minute, 0)
	if err := d.Restore(bytes.NewReader(b)); err != nil {
		t.Fatalf("restoring an RDD1 snapshot: %v", err)
	}
	for i, id := range ids {
		res := d.Apply(entry(uint64(10+i), id, t0.Add(time.Second), "a=2"))
		if dup, ok := res.(Duplicate); !ok || dup.Index != uint64(i+1) {
			t.Fatalf("retry of %q after restoring RDD1: %#v, want Duplicate at %d", id, res, i+1)
		}
	}
}

// A snapshot shares the table's chunks instead of copying them: writes
// applied after Snapshot, which push new IDs and evict the oldest, must
// not change what Persist writes.
func TestDedup_SnapshotUnchangedByLaterApplies(t *testing.T) {
	const n = 3*queueChunk + 17
	d := NewDedupFSM(newKV(), time.Minute, n)
	for i := range n {
		d.Apply(entry(uint64(i+1), NewRequestID(), t0, "a=1"))
	}
	snap, err := d.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var wantIDs []tableEntry // as a snapshot stores them: without outcomes
	for _, c := range d.order.view() {
		for _, e := range c {
			wantIDs = append(wantIDs, tableEntry{key: e.key, proposedAt: e.proposedAt, index: e.index})
		}
	}
	done := make(chan struct{})
	go func() { // evicts every entry of the snapshot, racing Persist
		defer close(done)
		for i := range n {
			d.Apply(entry(uint64(n+i+1), NewRequestID(), t0.Add(time.Second), "b=2"))
		}
	}()
	var buf bytes.Buffer
	if err := snap.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	<-done
	r := NewDedupFSM(newKV(), time.Minute, n)
	entries, err := r.readTable(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(entries, wantIDs) {
		t.Fatalf("persisted %d entries, want the %d of the snapshot's moment (first differs: %v)", len(entries), len(wantIDs), firstDiff(entries, wantIDs))
	}
}

func firstDiff(a, b []tableEntry) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
