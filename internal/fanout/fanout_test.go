package fanout

import (
	"sync"
	"testing"
)

func TestHub_DeliversInOrderToEveryObserver(t *testing.T) {
	var h Hub[int]
	a, b := h.Subscribe(10), h.Subscribe(10)
	for i := 0; i < 5; i++ {
		if got := h.Publish(i); got != 2 {
			t.Fatalf("Publish(%d) delivered to %d observers, want 2", i, got)
		}
	}
	for _, o := range []*Observer[int]{a, b} {
		for want := 0; want < 5; want++ {
			if got := <-o.C; got != want {
				t.Fatalf("got event %d, want %d", got, want)
			}
		}
	}
}

func TestHub_SlowObserverDropsAndCountsWithoutBlocking(t *testing.T) {
	var h Hub[int]
	slow := h.Subscribe(2)
	fast := h.Subscribe(100)
	for i := 0; i < 10; i++ {
		h.Publish(i) // must not block although slow never reads
	}
	if got := slow.Dropped(); got != 8 {
		t.Fatalf("slow observer dropped %d, want 8", got)
	}
	if got := fast.Dropped(); got != 0 {
		t.Fatalf("fast observer dropped %d, want 0", got)
	}
	if got := h.Dropped(); got != 8 {
		t.Fatalf("hub dropped %d, want 8", got)
	}
	if got := h.Published(); got != 10 {
		t.Fatalf("hub published %d, want 10", got)
	}
	// The slow observer kept the oldest events, in order.
	if a, b := <-slow.C, <-slow.C; a != 0 || b != 1 {
		t.Fatalf("slow observer kept %d,%d, want 0,1", a, b)
	}
}

func TestHub_CloseClosesObserversAndIsIdempotent(t *testing.T) {
	var h Hub[string]
	o := h.Subscribe(1)
	o.Close()
	o.Close()
	if _, ok := <-o.C; ok {
		t.Fatal("closed observer channel still open")
	}
	if h.Len() != 0 {
		t.Fatalf("hub still has %d observers", h.Len())
	}
	p := h.Subscribe(1)
	h.Close()
	if _, ok := <-p.C; ok {
		t.Fatal("Hub.Close left an observer open")
	}
	late := h.Subscribe(1)
	if _, ok := <-late.C; ok {
		t.Fatal("Subscribe after Close returned an open observer")
	}
	if got := h.Publish("x"); got != 0 {
		t.Fatalf("Publish after Close delivered to %d", got)
	}
	p.Close() // closing after the hub closed must not panic
}

func TestHub_ConcurrentPublishSubscribeClose(t *testing.T) {
	var h Hub[int]
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				h.Publish(i)
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				o := h.Subscribe(4)
				o.Close()
			}
		}()
	}
	wg.Wait()
	if got := h.Published(); got != 4000 {
		t.Fatalf("published %d, want 4000", got)
	}
}

func BenchmarkHub_Publish4Observers(b *testing.B) {
	var h Hub[int]
	for i := 0; i < 4; i++ {
		o := h.Subscribe(1)
		go func() {
			for range o.C {
			}
		}()
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h.Publish(i)
	}
	h.Close()
}
