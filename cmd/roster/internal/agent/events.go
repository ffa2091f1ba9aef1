package agent

import (
	"log/slog"
	"time"
)

// EventKind names an agent lifecycle transition.
type EventKind string

const (
	EventServing  EventKind = "serving"  // a listener accepts connections
	EventStopped  EventKind = "stopped"  // a listener was closed
	EventLeaving  EventKind = "leaving"  // graceful leave started
	EventShutdown EventKind = "shutdown" // every component has stopped
)

// Event is one agent lifecycle transition.
type Event struct {
	Time      time.Time
	Kind      EventKind
	Component string // "http", "dns", ...
	Addr      string // listener address, when there is one
	Err       string // set when the transition came with an error
}

// emit publishes e to observers and logs it. Logging here, from the same
// value, keeps the log a faithful view of the event stream.
func (a *Agent) emit(e Event) {
	e.Time = time.Now()
	a.events.Publish(e)
	attrs := []any{slog.String("node", a.cfg.NodeName)}
	if e.Component != "" {
		attrs = append(attrs, slog.String("component", e.Component))
	}
	if e.Addr != "" {
		attrs = append(attrs, slog.String("addr", e.Addr))
	}
	if e.Err != "" {
		attrs = append(attrs, slog.String("error", e.Err))
		a.log.Warn(string(e.Kind), attrs...)
		return
	}
	a.log.Info(string(e.Kind), attrs...)
}
