package swim

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"time"
)

// Config tunes one member. Start from DefaultLANConfig or DefaultWANConfig
// and set Name (and usually Tags, Label and SecretKey).
type Config struct {
	// Name identifies the member cluster-wide; required, at most 255 bytes.
	Name string
	// AdvertiseAddr is the address other members reach this one at. Zero
	// means the transport's local address (which must then not be
	// unspecified, e.g. 0.0.0.0, for others to reach it).
	AdvertiseAddr netip.AddrPort
	// Tags is the member's metadata (role, dc, rpc port, build ...). At most
	// 64 tags; keys and values at most 255 bytes each; the encoded member
	// must fit in one packet.
	Tags map[string]string
	// Label names the cluster. Packets carrying another label are dropped
	// and counted, so two clusters sharing a network cannot merge. At most
	// 255 bytes; "" is a label like any other.
	Label string
	// SecretKey enables AES-GCM encryption of every packet and push-pull
	// stream when set: 16, 24 or 32 bytes (see ParseKey). All members must
	// share the key.
	SecretKey []byte

	// TickInterval is the core's unit of time: every timer below is
	// rounded up to whole ticks. Default 10ms.
	TickInterval time.Duration
	// ProbeInterval is the time between failure-detection probes (SWIM
	// §3.1 protocol period). Default LAN 1s, WAN 5s. One probe round is
	// one ping and one ack per member: the quiet-cluster load.
	ProbeInterval time.Duration
	// ProbeTimeout is how long to wait for a direct ack before asking
	// IndirectChecks members to ping-req the target. Should be about the
	// 99th percentile RTT. Default LAN 500ms, WAN 3s.
	ProbeTimeout time.Duration
	// LateAckGrace is how long past the end of its protocol period a
	// failed probe keeps waiting for a late ack before the target is
	// suspected; the next period's probe runs meanwhile, so the load does
	// not change. It spares members that are slow but alive a suspicion,
	// at the price of suspecting a crashed one that much later. 0 gives
	// the verdict at the end of the period as in SWIM §3.1. Must be less
	// than ProbeInterval. Default LAN 500ms, WAN 3s.
	LateAckGrace time.Duration
	// IndirectChecks is k in SWIM §3.1: members asked to probe on our
	// behalf when the direct probe times out. Default 3.
	IndirectChecks int

	// SuspicionMult scales the minimum suspicion timeout:
	// min = SuspicionMult × max(1.5, log10(N)) × ProbeInterval (SWIM §4.2,
	// scaled with N so dissemination of the refutation fits). Default LAN
	// 1 (2s at N=100, so all members agree on a crash within ~5s), WAN 3.
	// Under Lifeguard the timeout also stretches with the local health
	// multiplier.
	SuspicionMult float64
	// SuspicionMaxMult sets the Lifeguard maximum suspicion timeout as a
	// multiple of the minimum; the timeout starts there and shrinks toward
	// the minimum as independent confirmations arrive (Lifeguard §IV-B).
	// Default 3.
	SuspicionMaxMult float64
	// SuspicionConfirmations is K in Lifeguard §IV-B: confirmations after
	// which the timeout reaches the minimum (capped at N-2 in small
	// clusters, so three-member clusters still benefit). Default 3.
	SuspicionConfirmations int

	// Lifeguard enables the Lifeguard extensions (local health multiplier,
	// nacks, dynamic suspicion timeout, buddy system). With it off the
	// protocol is plain SWIM with suspicion: fixed timeout = the minimum.
	// Default true.
	Lifeguard bool
	// AwarenessMaxMultiplier caps the local health multiplier (Lifeguard
	// §IV-A): probe interval and timeout stretch up to this factor while
	// this member appears unhealthy. Default 8.
	AwarenessMaxMultiplier int

	// RetransmitMult sets how many times each broadcast is piggy-backed:
	// RetransmitMult × ceil(log10(N+1)) (SWIM §4.1). Default LAN 4, WAN 4.
	RetransmitMult int
	// GossipInterval is how often pending broadcasts are sent to
	// GossipNodes random members (in addition to piggy-backing them on
	// probes). Nothing is sent when nothing is pending. Default LAN 200ms,
	// WAN 500ms.
	GossipInterval time.Duration
	// GossipNodes is the gossip fan-out. Default LAN 3, WAN 4.
	GossipNodes int
	// GossipToDeadTime is how long dead members still receive gossip, so a
	// member wrongly declared dead hears about it and refutes. Default 30s.
	GossipToDeadTime time.Duration

	// PushPullInterval is the base period of full-state sync with a random
	// member over TCP, scaled up by log2(N/32) beyond 32 members so its
	// per-member cost stays flat. 0 disables it. Default LAN 30s, WAN 60s.
	PushPullInterval time.Duration
	// ReconnectInterval is how often a push-pull is attempted with a random
	// dead member, so a healed partition merges again (as Serf's reconnect
	// does). 0 disables it. Default LAN 10s, WAN 30s.
	ReconnectInterval time.Duration
	// ReapInterval is how long dead and left members are remembered
	// (and listed by Members) before being forgotten. A rejoin with a
	// higher incarnation reclaims the name at any time. Default 72h.
	ReapInterval time.Duration
	// StreamTimeout bounds one push-pull exchange. Default LAN 10s, WAN 30s.
	StreamTimeout time.Duration

	// PacketBytes is the largest UDP payload sent; packets are filled with
	// broadcasts up to it, and larger received packets are dropped.
	// Default 1400 (fits a 1500-byte Ethernet MTU).
	PacketBytes int
	// UserEventBytes caps a user event's name plus payload. Default 512.
	UserEventBytes int
	// UserEventBuffer is how many recent Lamport times are remembered to
	// drop duplicate user events. Default 512.
	UserEventBuffer int

	// Seed seeds the core's random choices; 0 picks one at random (the
	// shell) — set it for reproducible runs.
	Seed uint64
	// Logger receives shell diagnostics (slog keys "node", "peer"). nil
	// discards them.
	Logger *slog.Logger
}

// DefaultLANConfig returns defaults for members on one local network.
// Measured (make bench): a crashed member is declared dead by all others
// after a median 4.8s at N=100 on loopback UDP (5.6s at N=1,000 and 7.9s
// at N=10,000 in simulation); a quiet cluster costs 2 packets and ~30
// bytes per member per second at any size, plus push-pull; members slowed
// by up to 1.5s are suspected but, under Lifeguard, almost never declared
// dead.
func DefaultLANConfig() Config {
	return Config{
		TickInterval:           10 * time.Millisecond,
		ProbeInterval:          time.Second,
		ProbeTimeout:           500 * time.Millisecond,
		IndirectChecks:         3,
		SuspicionMult:          1,
		LateAckGrace:           500 * time.Millisecond,
		SuspicionMaxMult:       3,
		SuspicionConfirmations: 3,
		Lifeguard:              true,
		AwarenessMaxMultiplier: 8,
		RetransmitMult:         4,
		GossipInterval:         200 * time.Millisecond,
		GossipNodes:            3,
		GossipToDeadTime:       30 * time.Second,
		PushPullInterval:       30 * time.Second,
		ReconnectInterval:      10 * time.Second,
		ReapInterval:           72 * time.Hour,
		StreamTimeout:          10 * time.Second,
		PacketBytes:            1400,
		UserEventBytes:         512,
		UserEventBuffer:        512,
	}
}

// DefaultWANConfig returns defaults for servers gossiping across
// datacenters: longer timeouts for higher, noisier round trips.
func DefaultWANConfig() Config {
	c := DefaultLANConfig()
	c.ProbeInterval = 5 * time.Second
	c.ProbeTimeout = 3 * time.Second
	c.SuspicionMult = 3
	c.LateAckGrace = 3 * time.Second
	c.GossipInterval = 500 * time.Millisecond
	c.GossipNodes = 4
	c.GossipToDeadTime = 60 * time.Second
	c.PushPullInterval = 60 * time.Second
	c.ReconnectInterval = 30 * time.Second
	c.StreamTimeout = 30 * time.Second
	return c
}

// Validate reports every bad field, naming each.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("swim: Config.%s %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Name == "" || len(c.Name) > maxNameBytes {
		bad("Name", "must be 1 to %d bytes, got %d (set the node name)", maxNameBytes, len(c.Name))
	}
	if len(c.Label) > maxNameBytes {
		bad("Label", "is %d bytes; at most %d", len(c.Label), maxNameBytes)
	}
	if err := checkTags(c.Tags); err != nil {
		bad("Tags", "%v", err)
	}
	if err := checkKey(c.SecretKey); err != nil {
		bad("SecretKey", "%v", err)
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"TickInterval", c.TickInterval}, {"ProbeInterval", c.ProbeInterval},
		{"ProbeTimeout", c.ProbeTimeout}, {"GossipInterval", c.GossipInterval},
		{"StreamTimeout", c.StreamTimeout}, {"ReapInterval", c.ReapInterval},
	}
	for _, p := range positive {
		if p.d <= 0 {
			bad(p.name, "must be positive, got %v (start from DefaultLANConfig)", p.d)
		}
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		bad("ProbeTimeout", "(%v) must be shorter than ProbeInterval (%v) to leave time for indirect probes", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.LateAckGrace < 0 || c.LateAckGrace >= c.ProbeInterval {
		bad("LateAckGrace", "(%v) must be between 0 and ProbeInterval (%v)", c.LateAckGrace, c.ProbeInterval)
	}
	if c.PushPullInterval < 0 || c.ReconnectInterval < 0 || c.GossipToDeadTime < 0 {
		bad("PushPullInterval/ReconnectInterval/GossipToDeadTime", "must not be negative")
	}
	ints := []struct {
		name string
		v    int
		min  int
	}{
		{"IndirectChecks", c.IndirectChecks, 0}, {"SuspicionConfirmations", c.SuspicionConfirmations, 0},
		{"AwarenessMaxMultiplier", c.AwarenessMaxMultiplier, 1}, {"RetransmitMult", c.RetransmitMult, 1},
		{"GossipNodes", c.GossipNodes, 1}, {"UserEventBuffer", c.UserEventBuffer, 1},
		{"UserEventBytes", c.UserEventBytes, 1},
	}
	for _, f := range ints {
		if f.v < f.min {
			bad(f.name, "must be at least %d, got %d", f.min, f.v)
		}
	}
	if c.PacketBytes < 512 || c.PacketBytes > 65000 {
		bad("PacketBytes", "must be between 512 and 65000, got %d", c.PacketBytes)
	}
	if !(c.SuspicionMult > 0) || math.IsInf(c.SuspicionMult, 0) {
		bad("SuspicionMult", "must be positive, got %v", c.SuspicionMult)
	}
	if !(c.SuspicionMaxMult >= 1) || math.IsInf(c.SuspicionMaxMult, 0) {
		bad("SuspicionMaxMult", "must be at least 1, got %v", c.SuspicionMaxMult)
	}
	return errors.Join(errs...)
}

func checkTags(tags map[string]string) error {
	if len(tags) > maxTagCount {
		return fmt.Errorf("has %d tags; at most %d", len(tags), maxTagCount)
	}
	total := 0
	for k, v := range tags {
		if len(k) > maxTagBytes || len(v) > maxTagBytes {
			return fmt.Errorf("tag %q: keys and values must be at most %d bytes", k, maxTagBytes)
		}
		total += 2 + len(k) + len(v)
	}
	if total > 1000 {
		return fmt.Errorf("encode to %d bytes; at most 1000 so a member fits in one packet", total)
	}
	return nil
}

// ticks converts a duration to whole ticks, rounding up, at least 1.
func (c *Config) ticks(d time.Duration) int64 {
	n := int64((d + c.TickInterval - 1) / c.TickInterval)
	return max(n, 1)
}
