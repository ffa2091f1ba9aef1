package swim

import (
	"bytes"
	"fmt"
	"strconv"
)

// userEvents orders and de-duplicates user events the way Serf does: a
// Lamport clock stamps each event, and a ring of recent Lamport times
// remembers which (name, payload) pairs were already delivered, so the
// many copies gossip produces are delivered once.
type userEvents struct {
	clock    uint64 // next Lamport time to use; > every time witnessed
	minLTime uint64 // events before this are ignored (older than our join)
	ring     []eventSlot
}

type eventSlot struct {
	ltime  uint64
	events []userMsg
}

func newUserEvents(buffer int) userEvents {
	return userEvents{ring: make([]eventSlot, buffer)}
}

// witness moves the clock past t (Lamport's receive rule).
func (u *userEvents) witness(t uint64) {
	if t >= u.clock {
		u.clock = t + 1
	}
}

func (u *userEvents) ignoreBefore(t uint64) { u.minLTime = max(u.minLTime, t) }

// record reports whether m is new, remembering it if so. Events too old to
// be in the ring cannot be checked and are dropped as possible duplicates.
func (u *userEvents) record(m userMsg) bool {
	if m.LTime < u.minLTime {
		return false
	}
	n := uint64(len(u.ring))
	if u.clock > n && m.LTime < u.clock-n {
		return false
	}
	slot := &u.ring[m.LTime%n]
	if slot.ltime != m.LTime {
		*slot = eventSlot{ltime: m.LTime}
	}
	for _, e := range slot.events {
		if e.Name == m.Name && bytes.Equal(e.Payload, m.Payload) {
			return false
		}
	}
	slot.events = append(slot.events, m)
	return true
}

// UserEvent stamps, records and broadcasts a user event; it is also
// delivered locally as an EventUser.
func (c *Core) UserEvent(name string, payload []byte) error {
	if name == "" || len(name) > maxNameBytes {
		return fmt.Errorf("swim: user event name must be 1 to %d bytes, got %d", maxNameBytes, len(name))
	}
	if len(name)+len(payload) > c.cfg.UserEventBytes {
		return fmt.Errorf("swim: user event %q is %d bytes; the limit is UserEventBytes=%d", name, len(name)+len(payload), c.cfg.UserEventBytes)
	}
	if c.leaving {
		return fmt.Errorf("swim: cannot send user event %q after Leave", name)
	}
	m := userMsg{LTime: c.events.clock, Name: name, Payload: bytes.Clone(payload)}
	c.events.witness(m.LTime)
	c.deliverUser(m)
	return nil
}

func (c *Core) handleUser(m userMsg) {
	c.events.witness(m.LTime)
	c.deliverUser(m)
}

func (c *Core) deliverUser(m userMsg) {
	if !c.events.record(m) {
		c.stats.DuplicateEvents++
		return
	}
	c.stats.UserEvents++
	key := "u/" + strconv.FormatUint(m.LTime, 10) + "/" + m.Name + "/" + string(m.Payload)
	c.queue.push(key, encodeUser(nil, m))
	ev := UserEvent{LTime: m.LTime, Name: m.Name, Payload: bytes.Clone(m.Payload)}
	c.out.Events = append(c.out.Events, Event{
		Kind: EventUser, Node: c.cfg.Name, Member: c.export(c.self), User: &ev, Tick: c.now,
	})
}
