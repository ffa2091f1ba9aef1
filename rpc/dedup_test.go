package rpc

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"roster/internal/testkit"
	"roster/raft"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func entry(index uint64, id string, at time.Time, cmd string) raft.Entry {
	return raft.Entry{Index: index, Term: 1, Type: raft.EntryCommand, Data: EncodeCommand(id, at, []byte(cmd))}
}

func newKV() *memFSM { return &memFSM{data: map[string]string{}} }

func TestDedup_RepeatedRequestIDAppliesOnce(t *testing.T) {
	kv := newKV()
	d := NewDedupFSM(kv, 0, 0)
	first := d.Apply(entry(1, "req-1", t0, "a=1"))
	again := d.Apply(entry(2, "req-1", t0.Add(time.Second), "a=1"))
	if kv.count() != 1 {
		t.Fatalf("inner FSM applied %d times, want 1", kv.count())
	}
	want := Duplicate{Index: 1, Result: first, ResultKnown: true}
	if again != want {
		t.Fatalf("duplicate returned %#v, want %#v", again, want)
	}
	if st := d.Stats(); st.Duplicates != 1 || st.Entries != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDedup_EmptyRequestIDIsNeverDeduplicated(t *testing.T) {
	kv := newKV()
	d := NewDedupFSM(kv, 0, 0)
	d.Apply(entry(1, "", t0, "a=1"))
	d.Apply(entry(2, "", t0, "a=1"))
	if kv.count() != 2 || d.Stats().Entries != 0 {
		t.Fatalf("applies %d, stats %+v; internal writes without an ID apply every time", kv.count(), d.Stats())
	}
}

func TestDedup_ForgetsAfterWindowByLogTime(t *testing.T) {
	kv := newKV()
	d := NewDedupFSM(kv, time.Minute, 0)
	d.Apply(entry(1, "old", t0, "a=1"))
	d.Apply(entry(2, "other", t0.Add(59*time.Second), "b=1"))
	if _, dup := d.Apply(entry(3, "old", t0.Add(59*time.Second), "a=1")).(Duplicate); !dup {
		t.Fatal("forgot a request ID inside its window")
	}
	d.Apply(entry(4, "late", t0.Add(2*time.Minute), "c=1"))
	if _, dup := d.Apply(entry(5, "old", t0.Add(2*time.Minute), "a=1")).(Duplicate); dup {
		t.Fatal("still remembers a request ID past its window")
	}
	if kv.count() != 4 {
		t.Fatalf("applies %d, want 4", kv.count())
	}
}

func TestDedup_MaxEntriesEvictsOldest(t *testing.T) {
	kv := newKV()
	d := NewDedupFSM(kv, time.Hour, 2)
	for i, id := range []string{"a", "b", "c"} {
		d.Apply(entry(uint64(i+1), id, t0, id+"=1"))
	}
	if _, dup := d.Apply(entry(4, "a", t0, "a=1")).(Duplicate); dup {
		t.Fatal("oldest ID kept beyond MaxEntries")
	}
	if _, dup := d.Apply(entry(5, "c", t0, "c=1")).(Duplicate); !dup {
		t.Fatal("newest ID forgotten")
	}
	if n := d.Stats().Entries; n > 2 {
		t.Fatalf("%d entries, cap is 2", n)
	}
}

func TestDedup_MalformedCommandIsCountedNotApplied(t *testing.T) {
	kv := newKV()
	d := NewDedupFSM(kv, 0, 0)
	for _, data := range [][]byte{nil, []byte("a=1"), {commandMagic, 0xff}, {commandMagic, 0x02, 'x'}} {
		if _, isErr := d.Apply(raft.Entry{Index: 1, Data: data}).(error); !isErr {
			t.Fatalf("Apply(%q) did not return an error value", data)
		}
	}
	if kv.count() != 0 || d.Stats().Malformed != 4 {
		t.Fatalf("applies %d, stats %+v", kv.count(), d.Stats())
	}
}

func TestDedup_SnapshotRestoreKeepsTable(t *testing.T) {
	kv := newKV()
	d := NewDedupFSM(kv, 0, 0)
	d.Apply(entry(1, "req-a", t0, "a=1"))
	d.Apply(entry(2, "req-b", t0, "b=2"))
	buf := persistSnapshot(t, d)

	kv2 := newKV()
	d2 := NewDedupFSM(kv2, 0, 0)
	if err := d2.Restore(buf); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(kv2.data, kv.data) {
		t.Fatalf("inner state %v, want %v", kv2.data, kv.data)
	}
	got := d2.Apply(entry(3, "req-b", t0.Add(time.Second), "b=2"))
	if got != (Duplicate{Index: 2}) || kv2.count() != 0 {
		t.Fatalf("after restore: %#v (applies %d), want Duplicate{Index: 2} and no apply", got, kv2.count())
	}
}

func TestDedup_RestoreRejectsForeignSnapshot(t *testing.T) {
	d := NewDedupFSM(newKV(), 0, 0)
	for _, in := range []string{"", "a=1\n", "RDD1\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "RDD1\x01\xff\x01",
		"RDD2\x01\x07\x00\x01", "RDD2\x01\x10\x00\x01", "RDD2\x01\x00\x00\x00\x01"} {
		if err := d.Restore(bytes.NewReader([]byte(in))); err == nil {
			t.Fatalf("Restore(%q) accepted", in)
		}
	}
}

// Replicas fed the same log, full of retried writes, end in the same
// state and give the same answers: the table is a function of the log.
func TestDedup_ReplicasAgreeOnRandomLog(t *testing.T) {
	rnd := testkit.Rand(t)
	for run := range testkit.ChaosRuns(5) {
		var log []raft.Entry
		at := t0
		for i := range 500 {
			at = at.Add(time.Duration(rnd.IntN(2000)) * time.Millisecond)
			id := fmt.Sprintf("req-%d", rnd.IntN(150)) // many retries
			if rnd.IntN(10) == 0 {
				id = ""
			}
			log = append(log, entry(uint64(i+1), id, at, fmt.Sprintf("k%d=%d", rnd.IntN(20), i)))
		}
		a, b := newKV(), newKV()
		da, db := NewDedupFSM(a, 30*time.Second, 64), NewDedupFSM(b, 30*time.Second, 64)
		for i, e := range log {
			ra, rb := da.Apply(e), db.Apply(e)
			if !reflect.DeepEqual(ra, rb) {
				t.Fatalf("run %d entry %d: replicas answered %#v and %#v", run, i, ra, rb)
			}
		}
		if !reflect.DeepEqual(a.data, b.data) || da.Stats() != db.Stats() {
			t.Fatalf("run %d: replicas diverged: %+v vs %+v", run, da.Stats(), db.Stats())
		}
		if da.Stats().Duplicates == 0 {
			t.Fatalf("run %d: the log had no duplicates; the test proves nothing", run)
		}
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(EncodeCommand("id", t0, []byte("x")))
	f.Add([]byte{commandMagic, 0x80, 0x80, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		id, at, cmd, err := DecodeCommand(data)
		if err != nil {
			return
		}
		if again := EncodeCommand(id, at, cmd); len(again) > len(data)+16 {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(data), len(again))
		}
	})
}

// persistSnapshot takes f's snapshot and returns what it persists.
func persistSnapshot(t *testing.T, f raft.FSM) *bytes.Buffer {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var buf bytes.Buffer
	if err := snap.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func FuzzDedupRestore(f *testing.F) {
	f.Add([]byte("RDD1\x01\x02id\x00\x01a=1\n"))
	f.Add([]byte("RDD1\xff\xff\x03"))
	f.Add([]byte("RDD2\x02\x00\x02id\x00\x01\x10\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x00\x02a=1\n"))
	f.Add([]byte("RDD2\x01\x07"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDedupFSM(newKV(), 0, 1<<10)
		if d.Restore(bytes.NewReader(data)) == nil {
			d.Apply(entry(1, "id", t0, "a=1")) // a restored table must be usable
		}
	})
}

// gatedKV is a memFSM whose Snapshot first runs hook, so a test can make
// an Apply race the snapshot at its worst moment.
type gatedKV struct {
	*memFSM
	hook func()
}

func (g *gatedKV) Snapshot() (raft.FSMSnapshot, error) {
	if g.hook != nil {
		g.hook()
	}
	return g.memFSM.Snapshot()
}

// An Apply that races Snapshot must land either in both the table and the
// inner state of the snapshot or in neither; otherwise a replica restored
// from it re-applies a retry of that write.
func TestDedup_SnapshotConcurrentWithApplyIsConsistent(t *testing.T) {
	kv := &gatedKV{memFSM: newKV()}
	d := NewDedupFSM(kv, 0, 0)
	d.Apply(entry(1, "req-a", t0, "a=1"))
	kv.hook = func() {
		kv.hook = nil
		applied := make(chan struct{})
		go func() {
			d.Apply(entry(2, "req-b", t0, "b=2"))
			close(applied)
		}()
		// With the table and inner snapshot taken atomically the Apply
		// waits for Snapshot and this bound passes; without, it lands.
		select {
		case <-applied:
		case <-time.After(200 * time.Millisecond):
		}
	}
	buf := persistSnapshot(t, d)
	testkit.WaitFor(t, 5*time.Second, "the racing Apply to finish", func() error {
		if n := kv.count(); n != 2 {
			return fmt.Errorf("%d applies", n)
		}
		return nil
	})

	kv2 := newKV()
	d2 := NewDedupFSM(kv2, 0, 0)
	if err := d2.Restore(buf); err != nil {
		t.Fatal(err)
	}
	_, inState := kv2.data["b"]
	got := d2.Apply(entry(3, "req-b", t0.Add(time.Second), "b=2"))
	_, dup := got.(Duplicate)
	if inState && !dup {
		t.Fatalf("snapshot holds req-b's effect but not its ID: the retry was applied again (%v)", got)
	}
	if !inState && dup {
		t.Fatalf("snapshot holds req-b's ID but not its effect: the write is lost")
	}
}

// A snapshot taken by a server allowed more entries than this one still
// restores, keeping the newest IDs, so this replica can catch up.
func TestDedup_RestoreFromLargerTableKeepsNewest(t *testing.T) {
	big := NewDedupFSM(newKV(), 0, 0)
	for i := range 10 {
		big.Apply(entry(uint64(i+1), fmt.Sprintf("req-%d", i), t0, fmt.Sprintf("k%d=v", i)))
	}
	buf := persistSnapshot(t, big)
	kv := newKV()
	small := NewDedupFSM(kv, 0, 4)
	if err := small.Restore(buf); err != nil {
		t.Fatalf("Restore of a 10-entry table into a 4-entry FSM: %v", err)
	}
	if n := small.Stats().Entries; n != 4 {
		t.Fatalf("%d entries kept, want 4", n)
	}
	// Newest first: a non-duplicate Apply evicts, so check the kept IDs
	// before any of the forgotten ones is re-applied.
	for i := 9; i >= 0; i-- {
		res := small.Apply(entry(uint64(20-i), fmt.Sprintf("req-%d", i), t0, "x=y"))
		_, dup := res.(Duplicate)
		if want := i >= 6; dup != want {
			t.Errorf("req-%d: duplicate %v, want %v (the newest four are kept)", i, dup, want)
		}
	}
}
