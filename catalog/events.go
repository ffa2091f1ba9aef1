package catalog

import "roster/internal/fanout"

// Events: every applied entry is published as an Event to observers (the
// agent's event stream, metrics, test failure dumps). Publishing never
// blocks Apply: a slow observer's events are dropped and counted by
// internal/fanout.

// EventKind says what happened.
type EventKind string

// Event kinds.
const (
	// EventApplied: a command changed the state (or was a no-op rewrite).
	EventApplied EventKind = "applied"
	// EventRefused: a valid command was refused (error result, or a
	// conditional write or transaction that did not apply); nothing changed.
	EventRefused EventKind = "refused"
	// EventMalformed: the entry did not decode; counted in Stats.
	EventMalformed EventKind = "malformed"
	// EventRestored: the state was replaced by a snapshot.
	EventRestored EventKind = "restored"
)

// Event is one state-machine step.
type Event struct {
	Kind    EventKind
	Index   uint64
	Command CommandType `json:",omitempty"`
	// Changes is how many registry changes were appended to the delta log.
	Changes int `json:",omitempty"`
	// Err is why the entry was refused or malformed.
	Err string `json:",omitempty"`
}

// Subscribe returns an observer of the store's events holding up to buffer
// undelivered events (fanout.DefaultBuffer if buffer <= 0). Close it when
// done.
func (s *Store) Subscribe(buffer int) *fanout.Observer[Event] {
	return s.events.Subscribe(buffer)
}

func (s *Store) publish(e Event) {
	if s.events.Len() > 0 {
		s.events.Publish(e)
	}
}
