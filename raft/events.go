package raft

import (
	"fmt"
	"time"
)

// EventType names a state transition. Every transition of the core is an
// event; logs, metrics, the event stream and test failure dumps are views
// over them (DESIGN.md, "Events first").
type EventType uint8

const (
	// EventTermChanged: this server moved to a new term (Term).
	EventTermChanged EventType = iota + 1
	// EventStateChanged: role changed to State.
	EventStateChanged
	// EventVoted: this server granted its vote in Term to Peer.
	EventVoted
	// EventLeaderChanged: the known leader of Term is now Leader ("" = unknown).
	EventLeaderChanged
	// EventCommitted: the commit index advanced to Index.
	EventCommitted
	// EventStepDown: a leader gave up leadership; Detail says why
	// (check-quorum failure or a higher term).
	EventStepDown
	// EventDropped: a malformed or impossible message was dropped; Detail
	// says what was wrong.
	EventDropped
	// EventTransfer: a leadership transfer to Peer started or was
	// abandoned (Detail).
	EventTransfer
)

var eventTypeNames = [...]string{
	EventTermChanged: "term", EventStateChanged: "state", EventVoted: "voted",
	EventLeaderChanged: "leader", EventCommitted: "committed", EventStepDown: "stepdown",
	EventDropped: "dropped", EventTransfer: "transfer",
}

func (t EventType) String() string {
	if int(t) < len(eventTypeNames) && eventTypeNames[t] != "" {
		return eventTypeNames[t]
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// Event is one typed transition. The core fills everything but Time,
// which the shell stamps when it publishes.
type Event struct {
	Type   EventType
	Node   string // server that observed the transition
	Term   uint64 // its term at the time
	State  State  // its role after the transition
	Leader string // EventLeaderChanged: the new leader ID
	Peer   string // EventVoted: the candidate
	Index  uint64 // EventCommitted: the new commit index
	Detail string // EventStepDown, EventDropped: human-readable reason
	Time   time.Time
}

func (e Event) String() string {
	s := fmt.Sprintf("%s t%d %s", e.Node, e.Term, e.Type)
	switch e.Type {
	case EventStateChanged:
		s += " " + e.State.String()
	case EventVoted:
		s += " for " + e.Peer
	case EventLeaderChanged:
		if e.Leader == "" {
			s += " none"
		} else {
			s += " " + e.Leader
		}
	case EventCommitted:
		s += fmt.Sprintf(" %d", e.Index)
	case EventStepDown, EventDropped:
		s += " (" + e.Detail + ")"
	case EventTransfer:
		s += " to " + e.Peer + " (" + e.Detail + ")"
	}
	return s
}
