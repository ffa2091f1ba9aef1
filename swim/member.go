package swim

import (
	"maps"
	"net/netip"
	"slices"
	"strconv"
)

// State is what a member is believed to be (SWIM §4.2, plus Serf's "left").
type State uint8

const (
	StateAlive   State = iota + 1 // answering probes
	StateSuspect                  // missed a probe; will be declared dead unless it refutes
	StateDead                     // suspicion expired: failed
	StateLeft                     // announced a graceful leave
	// StateLeaving: a leave intent was heard (Serf's StatusLeaving): the
	// member is leaving gracefully, or was forced to leave while alive
	// and will refute. It is still a live member, probed as any other;
	// if it is declared dead before it refutes, it becomes left, not dead.
	StateLeaving
)

func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	case StateLeaving:
		return "leaving"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Serf status codes as Consul's /v1/agent/members reports them.
const (
	SerfStatusAlive   = 1
	SerfStatusLeaving = 2
	SerfStatusLeft    = 3
	SerfStatusFailed  = 4
)

// SerfStatus maps the state to Consul's serf status integer. A suspect is
// still "alive" to Serf (and so to Consul): suspicion is not a verdict.
func (s State) SerfStatus() int {
	switch s {
	case StateDead:
		return SerfStatusFailed
	case StateLeft:
		return SerfStatusLeft
	case StateLeaving:
		return SerfStatusLeaving
	}
	return SerfStatusAlive
}

// Member is a copy of what this node knows about one cluster member.
// Changing it changes nothing in the cluster.
type Member struct {
	Name        string
	Addr        netip.Addr
	Port        uint16
	Tags        map[string]string
	State       State
	Incarnation uint32
	// SuspectedBy is the member that first suspected this one in the
	// current (or last) suspicion episode; it lets a dead verdict be traced
	// back to its origin. Empty if never suspected.
	SuspectedBy string
}

// AddrPort is the member's gossip address.
func (m Member) AddrPort() netip.AddrPort { return netip.AddrPortFrom(m.Addr, m.Port) }

// String renders "name@addr:port".
func (m Member) String() string { return m.Name + "@" + m.AddrPort().String() }

// memberState is the live record the core keeps per member, 32 bytes.
// Its identity (name, address, tags) is shared and never mutated: an
// update replaces the pointer. Who suspected the member first is kept
// aside in Core.firstAccuser, since few members ever have one.
type memberState struct {
	*identity
	// stateTick is when state last changed (for reaping and gossip to the dead).
	stateTick   int64
	incarnation uint32
	slot        int32
	state       State
	// inProbeOrder: the slot is in Core.probeOrder (at most once).
	inProbeOrder bool
}

// member returns an independent copy for callers.
func (s *memberState) member(suspectedBy string) Member {
	return Member{
		Name:        s.name,
		Addr:        s.addr.Addr(),
		Port:        s.addr.Port(),
		Tags:        maps.Clone(s.tags),
		State:       s.state,
		Incarnation: s.incarnation,
		SuspectedBy: suspectedBy,
	}
}

// gone reports whether the member is dead or left: not probed, not counted
// as a live peer.
func (s *memberState) gone() bool { return s.state == StateDead || s.state == StateLeft }

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
