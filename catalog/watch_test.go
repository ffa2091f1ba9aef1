package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"roster/internal/testkit"
)

// blocked is a Wait running in a goroutine.
type blocked struct {
	w      Watch
	cancel context.CancelFunc
	done   chan waitResult
}

type waitResult struct {
	index uint64
	err   error
}

// block starts Wait(w, current index) and returns once it is registered.
func block(t *testing.T, s *Store, ws ...Watch) []*blocked {
	t.Helper()
	before := s.Stats().Waiters
	var out []*blocked
	for _, w := range ws {
		ctx, cancel := context.WithCancel(context.Background())
		b := &blocked{w: w, cancel: cancel, done: make(chan waitResult, 1)}
		t.Cleanup(cancel)
		min := s.Index(w)
		go func() {
			idx, err := s.Wait(ctx, w, min)
			b.done <- waitResult{idx, err}
		}()
		out = append(out, b)
	}
	testkit.WaitFor(t, 5*time.Second, "waiters to block", func() error {
		if n := s.Stats().Waiters; n != before+len(ws) {
			return fmt.Errorf("%d waiters blocked, want %d", n, before+len(ws))
		}
		return nil
	})
	return out
}

// expectWoken waits for b to return because its index moved.
func expectWoken(t *testing.T, b *blocked, wantIndex uint64) {
	t.Helper()
	select {
	case r := <-b.done:
		if r.err != nil || r.index != wantIndex {
			t.Fatalf("waiter on %+v returned (%d, %v), want index %d", b.w, r.index, r.err, wantIndex)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("waiter on %+v not woken within 5s", b.w)
	}
}

// expectBlocked checks b has not returned and its topic channel is still
// open: nothing woke it (a closed channel is the only way to wake).
func expectBlocked(t *testing.T, s *Store, b *blocked) {
	t.Helper()
	select {
	case r := <-b.done:
		t.Fatalf("waiter on %+v woke (%d, %v) though nothing it watches changed", b.w, r.index, r.err)
	default:
	}
	s.watches.mu.Lock()
	slot := s.watches.slots[b.w]
	s.watches.mu.Unlock()
	if slot == nil {
		t.Fatalf("waiter on %+v lost its topic: it was fired", b.w)
	}
}

func TestWatch_KVPrefixWakesOnlyAffectedWaiters(t *testing.T) {
	h := newHarness(t, Config{})
	h.ok(kvSet("a/x", "1"))
	h.ok(kvSet("b/y", "1"))
	ws := block(t, h.s, WatchKV("a/"), WatchKVKey("a/x"), WatchKV("b/"), WatchKVKey("a/z"), WatchKV(""))
	h.ok(kvSet("a/x", "2"))
	expectWoken(t, ws[0], 3)
	expectWoken(t, ws[1], 3)
	expectWoken(t, ws[4], 3)
	expectBlocked(t, h.s, ws[2])
	expectBlocked(t, h.s, ws[3])

	h.ok(&KVRequest{Verb: KVDelete, Key: "b/y"}) // a delete wakes its prefix too
	expectWoken(t, ws[2], 4)
	expectBlocked(t, h.s, ws[3])
}

func TestWatch_ServiceWakesOnItsNodesAndChecksOnly(t *testing.T) {
	h := newHarness(t, Config{})
	h.ok(regService("n1", "web1", "web", 80))
	h.ok(regService("n2", "api1", "api", 81))
	ws := block(t, h.s, WatchService("web"), WatchService("api"), WatchNode("n1"), WatchTable(TableKV))
	h.ok(regCheck("n1", "serfHealth", "", HealthCritical)) // node-level check on web's node
	expectWoken(t, ws[0], 3)
	expectWoken(t, ws[2], 3)
	expectBlocked(t, h.s, ws[1])
	expectBlocked(t, h.s, ws[3])
}

func TestWatch_ReturnsAtOnceWhenAlreadyNewer(t *testing.T) {
	h := newHarness(t, Config{})
	h.ok(regService("n1", "web1", "web", 80))
	idx, err := h.s.Wait(context.Background(), WatchService("web"), 0)
	if err != nil || idx != 1 {
		t.Fatalf("Wait(0) = %d, %v; want 1 at once", idx, err)
	}
}

func TestWatch_TimeoutReturnsCurrentIndexAndLeavesNoSlot(t *testing.T) {
	h := newHarness(t, Config{})
	h.ok(kvSet("k", "v"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	idx, err := h.s.Wait(ctx, WatchKV("unique/"), h.s.Index(WatchKV("unique/")))
	if !errors.Is(err, context.DeadlineExceeded) || idx != 1 {
		t.Fatalf("Wait = %d, %v; want index 1 and DeadlineExceeded", idx, err)
	}
	if st := h.s.Stats(); st.Waiters != 0 || len(h.s.watches.slots) != 0 || h.s.watches.kvSlots != 0 {
		t.Fatalf("after a timeout: %d waiters, %d slots, %d kv slots; want none", st.Waiters, len(h.s.watches.slots), h.s.watches.kvSlots)
	}
}

func TestWatch_RestoreWakesEveryone(t *testing.T) {
	h := newHarness(t, Config{})
	h.ok(regService("n1", "web1", "web", 80))
	h.ok(kvSet("k", "v"))
	h.ok(kvSet("k2", "v"))
	snap := snapshotBytes(t, h.s)

	other := newHarness(t, Config{})
	ws := block(t, other.s, WatchService("web"), WatchKV("k"))
	if err := other.s.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	expectWoken(t, ws[0], 1)
	expectWoken(t, ws[1], 3)
}
