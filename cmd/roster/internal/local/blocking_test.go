package local

import (
	"context"
	"testing"
	"time"
)

func TestWaitServiceHash_WakesOnContentChangeOnly(t *testing.T) {
	s := newState(t, "", newClock())
	must(t, s.AddService(ServiceDefinition{Name: "web", Port: 1}, false))
	_, h1, _ := s.Service("web")
	type result struct {
		port int
		hash string
	}
	got := make(chan result, 1)
	go func() {
		svc, h, _ := s.WaitServiceHash(context.Background(), "web", h1)
		got <- result{svc.Port, h}
	}()
	// Other changes do not wake the waiter with the same content.
	must(t, s.AddCheck(CheckDefinition{Name: "unrelated", TTL: Duration(time.Minute)}))
	must(t, s.AddService(ServiceDefinition{Name: "web", Port: 2}, false))
	select {
	case r := <-got:
		if r.port != 2 || r.hash == h1 {
			t.Fatalf("woke with %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiter not woken by a content change")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, h, ok := s.WaitServiceHash(ctx, "web", "stale"); !ok || h == "stale" {
		t.Fatal("a stale hash should return at once")
	}
	idx := s.Index()
	if cur := s.WaitIndex(ctx, idx); cur != idx {
		t.Fatalf("cancelled wait returned %d, want %d", cur, idx)
	}
	if cur := s.WaitIndex(context.Background(), idx-1); cur != idx {
		t.Fatalf("index already past: %d", cur)
	}
}
