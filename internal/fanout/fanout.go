package fanout

import (
	"sync"
	"sync/atomic"
)

// DefaultBuffer is the per-observer buffer used when Subscribe is given a
// non-positive size. It absorbs bursts such as an election storm without
// drops, yet bounds the memory a forgotten observer can pin.
const DefaultBuffer = 1024

// Hub fans events of type E out to observers. The zero value is ready to use.
// All methods are safe for concurrent use.
type Hub[E any] struct {
	// mu guards observers and closed. Publish takes it for reading only, so
	// concurrent publishers do not serialize on each other.
	mu        sync.RWMutex
	observers map[*Observer[E]]struct{}
	closed    bool

	published atomic.Uint64
}

// Observer receives events from a Hub on C until it is closed.
type Observer[E any] struct {
	// C carries the events in publish order. It is closed by Observer.Close
	// or Hub.Close.
	C <-chan E

	c       chan E
	hub     *Hub[E]
	dropped atomic.Uint64
	once    sync.Once
}

// Subscribe registers a new observer whose channel holds up to buffer
// undelivered events (DefaultBuffer if buffer <= 0). Events published while
// the buffer is full are dropped for this observer only and counted.
// Subscribing to a closed hub returns an observer whose channel is closed.
func (h *Hub[E]) Subscribe(buffer int) *Observer[E] {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	c := make(chan E, buffer)
	o := &Observer[E]{C: c, c: c, hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		o.once.Do(func() { close(c) })
		return o
	}
	if h.observers == nil {
		h.observers = make(map[*Observer[E]]struct{})
	}
	h.observers[o] = struct{}{}
	return o
}

// Publish hands e to every observer without blocking. It returns the number
// of observers that received it (the others were full and counted a drop).
func (h *Hub[E]) Publish(e E) (delivered int) {
	h.published.Add(1)
	h.mu.RLock()
	defer h.mu.RUnlock()
	for o := range h.observers {
		select {
		case o.c <- e:
			delivered++
		default:
			o.dropped.Add(1)
		}
	}
	return delivered
}

// Published is the number of events ever passed to Publish.
func (h *Hub[E]) Published() uint64 { return h.published.Load() }

// Dropped is the number of drops summed over the current observers.
func (h *Hub[E]) Dropped() uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var n uint64
	for o := range h.observers {
		n += o.dropped.Load()
	}
	return n
}

// Len is the number of current observers.
func (h *Hub[E]) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.observers)
}

// Close unsubscribes and closes every observer. Later Subscribe calls get a
// closed observer and later Publish calls deliver nothing.
func (h *Hub[E]) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for o := range h.observers {
		delete(h.observers, o)
		o.once.Do(func() { close(o.c) })
	}
}

// Dropped is the number of events this observer missed because its buffer
// was full.
func (o *Observer[E]) Dropped() uint64 { return o.dropped.Load() }

// Close unsubscribes the observer and closes its channel. It is idempotent.
func (o *Observer[E]) Close() {
	o.hub.mu.Lock()
	delete(o.hub.observers, o)
	o.hub.mu.Unlock()
	o.once.Do(func() { close(o.c) })
}
