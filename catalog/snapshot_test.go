package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// blockingWriter lets the test hold Persist in the middle of its I/O.
type blockingWriter struct {
	buf     bytes.Buffer
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() {
		close(w.started)
		<-w.release
	})
	return w.buf.Write(p)
}

// TestSnapshot_PointInTimeWhileApplyContinues proves Persist holds no store
// lock during its I/O (commands apply while it is stalled in Write) and
// that what it writes is the state at Snapshot time, not later.
func TestSnapshot_PointInTimeWhileApplyContinues(t *testing.T) {
	h := newHarness(t, Config{})
	for i := range 200 {
		h.ok(regService(fmt.Sprint("n", i%20), fmt.Sprint("web", i), "web", 80))
		h.ok(kvSet(fmt.Sprint("k/", i), "v"))
	}
	want := stateBytes(t, h.s)
	wantHash, wantIndex := h.s.Hash(), h.idx
	snap, err := h.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	w := &blockingWriter{started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- snap.Persist(w) }()
	<-w.started
	for i := range 50 { // would deadlock if Persist held the lock
		h.ok(&DeregisterRequest{Node: fmt.Sprint("n", i%20)})
		h.ok(kvSet(fmt.Sprint("k/", i), "changed"))
	}
	close(w.release)
	if err := <-done; err != nil {
		t.Fatalf("Persist: %v", err)
	}
	snap.Release()

	restored := newHarness(t, Config{})
	if err := restored.s.Restore(bytes.NewReader(w.buf.Bytes())); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if restored.s.Hash() != wantHash || restored.s.LastIndex() != wantIndex || !bytes.Equal(stateBytes(t, restored.s), want) {
		t.Fatalf("restored state is not the state at Snapshot time (hash %s want %s)", restored.s.Hash(), wantHash)
	}
}

func TestSnapshot_RestoreRefusesGarbage(t *testing.T) {
	h := newHarness(t, Config{})
	h.ok(regService("n1", "web1", "web", 80))
	good := snapshotBytes(t, h.s)
	cases := map[string][]byte{
		"empty":       nil,
		"bad magic":   append([]byte("not-a-snapshot-at-all!!"), 1),
		"truncated":   good[:len(good)-4],
		"bad version": append([]byte(snapshotMagic), 9),
	}
	for name, b := range cases {
		s, _ := New(Config{})
		if err := s.Restore(bytes.NewReader(b)); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: Restore = %v, want ErrBadSnapshot", name, err)
		}
	}
}

// TestSnapshot_CheckKeepsServiceTagsOfItsWrite proves that a service check
// keeps the service name and tags it was written with (Consul copies them
// into the check) after the service changes, through a snapshot and
// restore as well.
func TestSnapshot_CheckKeepsServiceTagsOfItsWrite(t *testing.T) {
	h := newHarness(t, Config{})
	h.ok(regService("n1", "web1", "web", 80, "v1"))
	h.ok(regCheck("n1", "c1", "web1", HealthPassing))
	h.ok(regService("n1", "web1", "web", 80, "v2"))
	h.ok(regCheck("n1", "c2", "web1", HealthWarning))
	want := map[string][]string{"c1": {"v1"}, "c2": {"v2"}}
	check := func(s *Store, when string) {
		checks, _ := s.NodeChecks("n1")
		if len(checks) != 2 {
			t.Fatalf("%s: %d checks, want 2", when, len(checks))
		}
		for _, c := range checks {
			if c.ServiceName != "web" || fmt.Sprint(c.ServiceTags) != fmt.Sprint(want[c.CheckID]) {
				t.Errorf("%s: check %s has service %q tags %v, want web %v", when, c.CheckID, c.ServiceName, c.ServiceTags, want[c.CheckID])
			}
		}
	}
	check(h.s, "before the snapshot")
	b := snapshotBytes(t, h.s)
	restored, _ := New(Config{})
	if err := restored.Restore(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	check(restored, "after the restore")
	if !bytes.Equal(stateBytes(t, restored), stateBytes(t, h.s)) {
		t.Fatal("restored state differs from the snapshot's")
	}
}

// TestSnapshot_RestoreRefusesUnknownCheckStatus proves that a snapshot
// holding a check with a status no stored check has is refused with an
// error, not stored as something else.
func TestSnapshot_RestoreRefusesUnknownCheckStatus(t *testing.T) {
	h := newHarness(t, Config{})
	h.ok(regService("n1", "web1", "web", 80))
	h.ok(regCheck("n1", "c1", "web1", HealthPassing))
	good := snapshotBytes(t, h.s)
	bad := bytes.Replace(good, []byte("\x07passing"), []byte("\x07bogus!!"), 1)
	if bytes.Equal(bad, good) {
		t.Fatal("test bug: the status was not found in the snapshot")
	}
	s, _ := New(Config{})
	if err := s.Restore(bytes.NewReader(bad)); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("Restore = %v, want ErrBadSnapshot", err)
	}
}
