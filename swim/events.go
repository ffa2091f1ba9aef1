package swim

import (
	"fmt"
	"net/netip"
	"time"
)

// EventKind says what happened.
type EventKind uint8

const (
	// EventJoin: a member was seen for the first time (or again after
	// being reaped).
	EventJoin EventKind = iota + 1
	// EventAlive: a suspect, dead, left or leaving member is alive again
	// (it refuted, or rejoined with a higher incarnation).
	EventAlive
	// EventSuspect: a member is suspected (From is the accuser).
	EventSuspect
	// EventConfirm: another member independently suspects a suspect
	// (Lifeguard §IV-B); Confirmations counts them so far.
	EventConfirm
	// EventDead: suspicion expired or a dead verdict arrived; the member
	// failed. SuspectedBy on the Member names the first accuser.
	EventDead
	// EventLeft: a member left gracefully, was forced out, or died while
	// leaving (Serf records that as a leave, not a failure; From is then
	// who declared it dead).
	EventLeft
	// EventUpdate: a member's tags or address changed.
	EventUpdate
	// EventRefute: this member was suspected or declared dead and bumped
	// its incarnation to refute (SWIM §4.2); Member is the local member.
	EventRefute
	// EventUser: a user event arrived (or was sent locally).
	EventUser
	// EventReap: a dead or left member was forgotten after ReapInterval.
	EventReap
	// EventHealth: the local health score changed (HealthScore).
	EventHealth
	// EventConflict: two members claim one name with different addresses.
	// Member is the record kept; ConflictAddr is the other claimant's
	// address; From reported it. At the member that gives its name up
	// (it heard from a majority that another holds it) Yielded is set.
	EventConflict
	// EventNack: a helper asked to probe Member for us (ping-req) could
	// not reach it either and said so (Lifeguard §IV-A); From is the
	// helper.
	EventNack
	// EventLeaving: a leave intent about a member arrived (From is the
	// member itself, or whoever forced it to leave); "left" follows if it
	// really leaves, "alive" if it refutes.
	EventLeaving
)

func (k EventKind) String() string {
	names := [...]string{"?", "join", "alive", "suspect", "confirm", "dead", "left", "update", "refute", "user", "reap", "health", "conflict", "nack", "leaving"}
	if int(k) < len(names) {
		return names[k]
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is one state transition seen by one member. It is a value: the
// Member inside is a copy.
type Event struct {
	Kind EventKind
	// Node is the member that observed the event (the local member).
	Node string
	// Member is the subject, as it is after the event (for EventUser and
	// EventHealth, the local member).
	Member Member
	// From is who reported it: the accuser of a suspect/confirm, the
	// declarer of a dead verdict, the sender of an update.
	From string
	// Confirmations is the number of independent suspicions of Member
	// (EventSuspect, EventConfirm, EventDead).
	Confirmations int
	// User is set for EventUser.
	User *UserEvent
	// HealthScore is set for EventHealth: the Lifeguard local health
	// score, 0 = healthy.
	HealthScore int
	// ConflictAddr and Yielded are set for EventConflict.
	ConflictAddr netip.AddrPort
	Yielded      bool
	// Tick is the core's tick count when it happened; Time is filled in
	// by the shell (zero in simulations).
	Tick int64
	Time time.Time
}

func (e Event) String() string {
	s := fmt.Sprintf("t=%d %s: %s %s inc=%d", e.Tick, e.Node, e.Kind, e.Member.Name, e.Member.Incarnation)
	if e.From != "" {
		s += " from=" + e.From
	}
	if e.Kind == EventDead && e.Member.SuspectedBy != "" {
		s += " first=" + e.Member.SuspectedBy
	}
	if e.Kind == EventHealth {
		s += fmt.Sprintf(" score=%d", e.HealthScore)
	}
	if e.Kind == EventConflict {
		s += " other=" + e.ConflictAddr.String()
		if e.Yielded {
			s += " yielded"
		}
	}
	if e.User != nil {
		s += fmt.Sprintf(" user=%s ltime=%d", e.User.Name, e.User.LTime)
	}
	return s
}

// UserEvent is an application event gossiped to every member (`roster
// event`). LTime orders it (Lamport clock); duplicates are suppressed.
type UserEvent struct {
	LTime   uint64
	Name    string
	Payload []byte
}

// Stats are counters since start plus the current local health. It is a
// copy.
type Stats struct {
	// HealthScore is the Lifeguard local health multiplier minus one:
	// 0 is healthy; probes stretch by (HealthScore+1).
	HealthScore int
	Members     int // known members, any state, including self
	Alive       int // alive or suspect, including self

	ProbesSent     uint64
	ProbesFailed   uint64
	IndirectProbes uint64 // ping-req messages sent
	Suspicions     uint64 // members this node began suspecting
	Confirmations  uint64 // independent suspicions received for suspects
	DeadVerdicts   uint64 // members this node declared or accepted dead
	Refutations    uint64 // times this node refuted a suspicion of itself
	NameConflicts  uint64 // alive claims of a held name from another address
	ForcedLeaves   uint64 // members this node forced to leave (ForceLeave)
	// StalePruned counts alive news dropped as stale because it was
	// about a member pruned at that incarnation or later (prune.go).
	StalePruned   uint64
	NacksSent     uint64
	NacksReceived uint64
	MissedNacks   uint64 // nacks expected but not received (health signal)

	PacketsSent     uint64
	BytesSent       uint64
	PacketsReceived uint64
	BytesReceived   uint64
	// Dropped* count received packets rejected before use.
	DroppedMalformed uint64 // truncated, bad lengths, unknown types, oversized
	DroppedLabel     uint64 // another cluster label
	DroppedCrypto    uint64 // failed authentication or encryption mismatch
	DroppedVersion   uint64

	BroadcastsQueued  int // pending piggy-back broadcasts
	PushPulls         uint64
	PushPullBytesSent uint64
	UserEvents        uint64
	DuplicateEvents   uint64
}

// StatMetric is one Stats field as an exporter names it.
type StatMetric struct {
	Name    string // snake_case, e.g. "health_score"
	Help    string
	Counter bool // monotonic since start; otherwise a gauge
	Value   float64
}

// Metrics lists every counter and gauge in s, so an exporter (the agent's
// /v1/agent/metrics) can publish them all without naming each: the
// Lifeguard health score, confirmations, refutations and nacks included.
func (s Stats) Metrics() []StatMetric {
	g := func(name, help string, v int) StatMetric { return StatMetric{name, help, false, float64(v)} }
	c := func(name, help string, v uint64) StatMetric { return StatMetric{name, help, true, float64(v)} }
	return []StatMetric{
		g("health_score", "Lifeguard local health score (0 = healthy)", s.HealthScore),
		g("members", "known members, any state, self included", s.Members),
		g("alive", "members alive or suspect, self included", s.Alive),
		g("broadcasts_queued", "pending piggy-back broadcasts", s.BroadcastsQueued),
		c("probes_sent", "failure-detection probes sent", s.ProbesSent),
		c("probes_failed", "probes that got no ack", s.ProbesFailed),
		c("indirect_probes", "ping-req messages sent", s.IndirectProbes),
		c("suspicions", "members this node began suspecting", s.Suspicions),
		c("confirmations", "independent suspicions received for suspects (Lifeguard)", s.Confirmations),
		c("dead_verdicts", "members declared or accepted dead", s.DeadVerdicts),
		c("refutations", "suspicions of this node it refuted", s.Refutations),
		c("forced_leaves", "members forced to leave", s.ForcedLeaves),
		c("stale_pruned", "alive news about a pruned member dropped as stale", s.StalePruned),
		c("name_conflicts", "claims of a held name from another address", s.NameConflicts),
		c("nacks_sent", "nacks sent for unreachable ping-req targets", s.NacksSent),
		c("nacks_received", "nacks received from ping-req helpers", s.NacksReceived),
		c("missed_nacks", "nacks expected but not received (health signal)", s.MissedNacks),
		c("packets_sent", "UDP packets sent", s.PacketsSent),
		c("bytes_sent", "UDP bytes sent", s.BytesSent),
		c("packets_received", "UDP packets received", s.PacketsReceived),
		c("bytes_received", "UDP bytes received", s.BytesReceived),
		c("dropped_malformed", "packets dropped as malformed", s.DroppedMalformed),
		c("dropped_label", "packets dropped for another cluster label", s.DroppedLabel),
		c("dropped_crypto", "packets dropped failing decryption", s.DroppedCrypto),
		c("dropped_version", "packets dropped for an unknown wire version", s.DroppedVersion),
		c("push_pulls", "full-state frames built", s.PushPulls),
		c("push_pull_bytes_sent", "full-state bytes sent", s.PushPullBytesSent),
		c("user_events", "user events delivered", s.UserEvents),
		c("duplicate_events", "duplicate user events dropped", s.DuplicateEvents),
	}
}
