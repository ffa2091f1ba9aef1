package dnsserver

import (
	"time"

	"roster/internal/fanout"
)

// EventKind says what happened.
type EventKind uint8

const (
	// EventServing: the server answers on its sockets (Detail lists them).
	EventServing EventKind = iota + 1
	// EventStopped: Close stopped the server.
	EventStopped
	// EventStale: the local catalog was staler than MaxStale (or stale
	// reads are off) and the question went to the local leader.
	EventStale
	// EventForwardFailed: another datacenter (or the leader) could not be
	// asked; the client got SERVFAIL.
	EventForwardFailed
	// EventRecursionFailed: every recursor failed; the client got SERVFAIL.
	EventRecursionFailed
	// EventPanic: answering panicked (a bug); the client got SERVFAIL.
	EventPanic
	// EventReadFailed: the UDP socket failed too many reads in a row and
	// is no longer read (Detail: the last error).
	EventReadFailed
)

var eventNames = [...]string{"", "serving", "stopped", "stale", "forward-failed", "recursion-failed", "panic", "read-failed"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && k != 0 {
		return eventNames[k]
	}
	return "unknown"
}

// Event is something noteworthy the server did. Ordinary answers are not
// events (they are counted in Stats): only what an operator should see.
type Event struct {
	Kind       EventKind
	Question   string // the question name, if any
	Datacenter string // EventStale, EventForwardFailed: the datacenter asked
	Detail     string // error text or context
	Lag        time.Duration
}

// Subscribe returns an observer of the server's events. A slow observer
// loses events (counted in its Dropped), never slows answers.
func (s *Server) Subscribe(buffer int) *fanout.Observer[Event] {
	return s.events.Subscribe(buffer)
}

func (s *Server) publish(e Event) { s.events.Publish(e) }
