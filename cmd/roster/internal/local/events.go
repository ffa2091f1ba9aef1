package local

import (
	"time"

	"roster/internal/fanout"
)

// EventKind names a transition of local state or of anti-entropy.
type EventKind string

const (
	EventServiceRegistered   EventKind = "service-registered"
	EventServiceDeregistered EventKind = "service-deregistered"
	EventCheckRegistered     EventKind = "check-registered"
	EventCheckDeregistered   EventKind = "check-deregistered"
	// EventCheckStatus: a check changed status (not output alone).
	EventCheckStatus EventKind = "check-status"
	// EventServiceReaped: a service was deregistered because a check
	// stayed critical past DeregisterCriticalServiceAfter.
	EventServiceReaped EventKind = "service-reaped"
	// EventSynced: a full or partial sync finished; Writes says how many
	// catalog writes it made.
	EventSynced EventKind = "synced"
	// EventSyncFailed: a sync stopped at an error; it is retried.
	EventSyncFailed EventKind = "sync-failed"
)

// Event is one transition. Logs, metrics and the agent's event stream are
// views over these.
type Event struct {
	Time      time.Time
	Kind      EventKind
	ServiceID string `json:",omitempty"`
	CheckID   string `json:",omitempty"`
	Status    string `json:",omitempty"` // EventCheckStatus: the new status
	Full      bool   `json:",omitempty"` // EventSynced/EventSyncFailed: a full sync
	Writes    int    `json:",omitempty"`
	Err       string `json:",omitempty"`
}

// Subscribe returns an observer of local-state and anti-entropy events.
// A slow observer loses events (counted), never slows the agent.
func (s *State) Subscribe(buffer int) *fanout.Observer[Event] {
	return s.events.Subscribe(buffer)
}

// emit publishes e; Publish never blocks, so callers may hold mu.
func (s *State) emit(e Event) {
	e.Time = s.cfg.Clock()
	s.events.Publish(e)
}
