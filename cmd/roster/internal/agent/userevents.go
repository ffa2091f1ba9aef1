package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"

	"roster/httpapi"
	"roster/swim"
)

// User events (`consul event`, /v1/event/*) ride the LAN pool's user
// events: the swim event's name is the event's name and its payload the
// JSON of the rest (ID, payload, filters), so every agent sees the same
// ID. Each agent keeps the last maxUserEvents it delivered; an event with
// a node filter that does not match this node's name is not delivered,
// and neither is one with a service filter, since agents hold no local
// services yet.

const maxUserEvents = 256 // Consul keeps the same number

// userEventBody is what travels in the gossip payload.
type userEventBody struct {
	ID            string
	Payload       []byte `json:",omitempty"`
	NodeFilter    string `json:",omitempty"`
	ServiceFilter string `json:",omitempty"`
	TagFilter     string `json:",omitempty"`
	Version       int
}

// userEventLog implements httpapi.UserEvents.
type userEventLog struct {
	a *Agent

	// mu guards events and changed.
	mu      sync.Mutex
	events  []httpapi.UserEvent // oldest first, at most maxUserEvents
	changed chan struct{}       // closed and replaced on each delivery
}

var _ httpapi.UserEvents = (*userEventLog)(nil)

func newUserEventLog(a *Agent) *userEventLog {
	return &userEventLog{a: a, changed: make(chan struct{})}
}

// Fire gossips e to the LAN pool; it comes back to this agent as well.
func (l *userEventLog) Fire(e httpapi.UserEvent) error {
	lan := l.a.lanNode()
	if lan == nil {
		return errors.New("the agent is not running")
	}
	body, err := json.Marshal(userEventBody{ID: e.ID, Payload: e.Payload, NodeFilter: e.NodeFilter,
		ServiceFilter: e.ServiceFilter, TagFilter: e.TagFilter, Version: e.Version})
	if err != nil {
		return err
	}
	if err := lan.UserEvent(e.Name, body); err != nil {
		return fmt.Errorf("firing user event %q: %w", e.Name, err)
	}
	return nil
}

// Events returns copies of the delivered events and a change channel.
func (l *userEventLog) Events() ([]httpapi.UserEvent, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]httpapi.UserEvent, len(l.events))
	for i, e := range l.events {
		e.Payload = append([]byte(nil), e.Payload...)
		out[i] = e
	}
	return out, l.changed
}

// deliver records a gossiped user event if its filters select this agent.
func (l *userEventLog) deliver(u *swim.UserEvent) {
	var b userEventBody
	if err := json.Unmarshal(u.Payload, &b); err != nil || b.ID == "" {
		l.a.log.Warn("dropping a malformed user event", nodeAttr(l.a.cfg.NodeName), slog.String("event", u.Name))
		return
	}
	if !l.selects(b) {
		return
	}
	e := httpapi.UserEvent{ID: b.ID, Name: u.Name, Payload: b.Payload, NodeFilter: b.NodeFilter,
		ServiceFilter: b.ServiceFilter, TagFilter: b.TagFilter, Version: b.Version, LTime: u.LTime}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	if len(l.events) > maxUserEvents {
		l.events = append(l.events[:0:0], l.events[len(l.events)-maxUserEvents:]...)
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *userEventLog) selects(b userEventBody) bool {
	if b.ServiceFilter != "" {
		return false
	}
	if b.NodeFilter == "" {
		return true
	}
	re, err := regexp.Compile(b.NodeFilter)
	return err == nil && re.MatchString(l.a.cfg.NodeName)
}
