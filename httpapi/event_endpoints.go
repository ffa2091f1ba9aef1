package httpapi

import (
	"context"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"roster/rpc"
)

// /v1/event/{fire,list}: user events, gossiped to every agent (Consul's
// `consul event`). The agent owns them (UserEvents); the HTTP layer names
// them, encodes them and blocks on the list.

// UserEvent is Consul's UserEvent JSON. ID must be a UUID: the Go client
// derives the list's blocking index from it and panics on anything else.
type UserEvent struct {
	ID            string
	Name          string
	Payload       []byte
	NodeFilter    string
	ServiceFilter string
	TagFilter     string
	Version       int
	LTime         uint64
}

// UserEvents is the agent's user-event side.
type UserEvents interface {
	// Fire broadcasts e (its ID is already set) to the cluster.
	Fire(e UserEvent) error
	// Events returns copies of the events this agent has seen, oldest
	// first (Consul keeps the last 256), and a channel closed when the next
	// one arrives.
	Events() (events []UserEvent, changed <-chan struct{})
}

func (s *Server) userEvents() (UserEvents, error) {
	if s.cfg.Events == nil {
		return nil, errorf(http.StatusInternalServerError, "this agent does not support user events (no gossip pool is configured)")
	}
	return s.cfg.Events, nil
}

// eventFire is PUT /v1/event/fire/<name>?node=&service=&tag=, the payload
// in the body; it answers the event with its new UUID.
func (s *Server) eventFire(_ http.ResponseWriter, r *http.Request, name string) (any, error) {
	if name == "" {
		return nil, errorf(http.StatusBadRequest, "Missing name")
	}
	ev, err := s.userEvents()
	if err != nil {
		return nil, err
	}
	payload, err := s.agentBody(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	e := UserEvent{ID: rpc.NewRequestID(), Name: name, Payload: payload, NodeFilter: q.Get("node"),
		ServiceFilter: q.Get("service"), TagFilter: q.Get("tag"), Version: 1}
	if len(e.Payload) == 0 {
		e.Payload = nil
	}
	if err := ev.Fire(e); err != nil {
		return nil, errorf(http.StatusInternalServerError, "%v", err)
	}
	return e, nil
}

// eventList is GET /v1/event/list[?name=], blocking on ?index= like any
// read: the index is derived from the last event's UUID, as Consul does.
func (s *Server) eventList(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	ev, err := s.userEvents()
	if err != nil {
		return nil, err
	}
	opts, err := s.parseQueryOptions(r)
	if err != nil {
		return nil, err
	}
	name := r.URL.Query().Get("name")
	var timeout <-chan time.Time
	if opts.MinQueryIndex > 0 {
		t := time.NewTimer(clampEventWait(opts.MaxQueryTime))
		defer t.Stop()
		timeout = t.C
	}
	for {
		events, changed := ev.Events()
		out := filterEvents(events, name)
		idx := eventIndex(out)
		if opts.MinQueryIndex == 0 || idx != opts.MinQueryIndex {
			setMeta(w, &rpc.QueryMeta{Index: idx, KnownLeader: true, Consistency: opts.Consistency()})
			return out, nil
		}
		if !waitEvent(r.Context(), changed, timeout) {
			setMeta(w, &rpc.QueryMeta{Index: idx, KnownLeader: true, Consistency: opts.Consistency()})
			return out, nil
		}
	}
}

// waitEvent waits for the next event; false when the wait or the request
// ended first.
func waitEvent(ctx context.Context, changed <-chan struct{}, timeout <-chan time.Time) bool {
	select {
	case <-changed:
		return true
	case <-timeout:
	case <-ctx.Done():
	}
	return false
}

// clampEventWait applies Consul's default (5m) and maximum (10m) waits.
func clampEventWait(d time.Duration) time.Duration {
	switch {
	case d <= 0:
		return rpc.DefaultQueryTime
	case d > rpc.MaxQueryTime:
		return rpc.MaxQueryTime
	}
	return d
}

func filterEvents(events []UserEvent, name string) []UserEvent {
	out := make([]UserEvent, 0, len(events))
	for _, e := range events {
		if name == "" || e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// eventIndex is Consul's IDToIndex of the last event: the XOR of the two
// 64-bit halves of its UUID; 1 for an empty list (never 0).
func eventIndex(events []UserEvent) uint64 {
	if len(events) == 0 {
		return 1
	}
	id := strings.ReplaceAll(events[len(events)-1].ID, "-", "")
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 16 {
		return 1
	}
	hi, _ := strconv.ParseUint(id[:16], 16, 64)
	lo, _ := strconv.ParseUint(id[16:], 16, 64)
	return max(hi^lo, 1)
}
