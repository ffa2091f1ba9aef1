package rpc

import "roster/internal/fanout"

// EventKind names what happened.
type EventKind int

const (
	// EventUnknownProtocol: a connection's first byte named no protocol;
	// it was closed.
	EventUnknownProtocol EventKind = iota + 1
	// EventHandshakeTimeout: a connection sent no protocol byte in time.
	EventHandshakeTimeout
	// EventMalformedFrame: a request (server side) or reply (pool side)
	// could not be decoded or was over the frame limit; the connection was
	// closed.
	EventMalformedFrame
	// EventConnEvicted: the pool closed a connection after an error or a
	// deadline.
	EventConnEvicted
	// EventForwardRetry: a forwarded request failed and will be retried.
	EventForwardRetry
)

func (k EventKind) String() string {
	switch k {
	case EventUnknownProtocol:
		return "unknown-protocol"
	case EventHandshakeTimeout:
		return "handshake-timeout"
	case EventMalformedFrame:
		return "malformed-frame"
	case EventConnEvicted:
		return "conn-evicted"
	case EventForwardRetry:
		return "forward-retry"
	}
	return "unknown"
}

// Event is one thing the rpc layer did. Logs and counters are views of
// the same facts; the agent merges these into its event stream.
type Event struct {
	Kind     EventKind
	Peer     string   // remote address
	Protocol Protocol // EventUnknownProtocol
	Method   string   // EventForwardRetry
	Attempt  int      // EventForwardRetry: 1 for the first retry
	Err      string   // the cause, if any
}

// publish sends e to hub if there is one. fanout never blocks.
func publish(hub *fanout.Hub[Event], e Event) {
	if hub != nil {
		hub.Publish(e)
	}
}
