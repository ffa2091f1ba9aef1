package raft

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config tunes a Node. Zero fields take the documented defaults (see
// DefaultConfig); Validate names the first bad field.
//
// The shipped timing favours fast failover on a LAN: with a 10 ms tick,
// 50 ms heartbeats and a 300 ms minimum election timeout (randomized in
// [300, 600) ms) a crashed leader is replaced in about half a second,
// where Consul's defaults take several seconds.
type Config struct {
	// ID is this server's stable identity; it must match its Server.ID in
	// the configuration.
	ID string

	// TickInterval is the core's clock resolution. Default 10ms.
	TickInterval time.Duration
	// HeartbeatTimeout is how often the leader sends heartbeats.
	// Default 50ms. Rounded to whole ticks.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is the minimum election timeout; each timeout is
	// drawn from [ElectionTimeout, 2*ElectionTimeout). Default 300ms.
	ElectionTimeout time.Duration

	// DisablePreVote turns off pre-vote (thesis §9.6). Leave it on: it
	// keeps a server that was partitioned away from deposing the leader
	// when it returns.
	DisablePreVote bool
	// DisableCheckQuorum turns off check-quorum (thesis §6.2).
	DisableCheckQuorum bool

	// LeaseReads lets the leader answer ReadIndex without a heartbeat
	// round while it holds a lease (thesis §6.4.1, lease.go): for an
	// election timeout, shortened by MaxClockDrift and one tick, after a
	// majority acknowledged a heartbeat. Faster reads, but their safety
	// then rests on clocks: off by default. Needs check-quorum.
	LeaseReads bool
	// MaxClockDrift bounds how much faster another server's clock may run
	// than this one's, as a fraction (0.1: 10%). Default 0.1; used only
	// with LeaseReads.
	MaxClockDrift float64

	// MaxAppendEntries caps entries per AppendEntries. Default 512.
	MaxAppendEntries int
	// MaxAppendBytes caps payload bytes per AppendEntries. Default 1 MiB.
	MaxAppendBytes uint64
	// MaxInflight caps unacknowledged AppendEntries per follower.
	// Default 64.
	MaxInflight int
	// MaxApplyBatch caps commands taken into one log append (one fsync).
	// Default 1024.
	MaxApplyBatch int

	// Snapshots stores FSM snapshots; nil disables snapshots and log
	// compaction (the log then grows forever: fine for tests only). The
	// agent uses NewFileSnapshotStore(<data-dir>/raft/snapshots, 2).
	Snapshots SnapshotStore
	// SnapshotThreshold: take a snapshot once this many entries were
	// applied since the last one. Default 8192.
	SnapshotThreshold uint64
	// SnapshotThresholdBytes: ... or once the commands applied since the
	// last one add up to this many bytes. Default 64 MiB.
	SnapshotThresholdBytes uint64
	// TrailingLogs is how many entries before a snapshot's index stay in
	// the log after compaction, so that a follower a little behind catches
	// up from the log instead of by a whole snapshot. Default 10240.
	TrailingLogs uint64
	// SnapshotChunkBytes is the size of one InstallSnapshot chunk on the
	// wire. Default 256 KiB.
	SnapshotChunkBytes int

	// Seed seeds the election-timeout randomness. 0: derived from the
	// clock and ID (tests set it for reproducibility).
	Seed uint64

	// Logger receives state transitions. Default: slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the shipped defaults for server id.
func DefaultConfig(id string) Config {
	c := Config{ID: id}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.TickInterval == 0 {
		c.TickInterval = 10 * time.Millisecond
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 50 * time.Millisecond
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = 300 * time.Millisecond
	}
	if c.MaxAppendEntries == 0 {
		c.MaxAppendEntries = 512
	}
	if c.MaxAppendBytes == 0 {
		c.MaxAppendBytes = 1 << 20
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = 64
	}
	if c.MaxApplyBatch == 0 {
		c.MaxApplyBatch = 1024
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotThresholdBytes == 0 {
		c.SnapshotThresholdBytes = 64 << 20
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.SnapshotChunkBytes == 0 {
		c.SnapshotChunkBytes = 256 << 10
	}
	if c.MaxClockDrift == 0 {
		c.MaxClockDrift = 0.1
	}
}

// Validate names the first bad field (after defaults are applied).
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.ID == "":
		return errors.New("raft: Config.ID is empty; set it to the server's node ID")
	case c.TickInterval < time.Millisecond:
		return fmt.Errorf("raft: Config.TickInterval = %v, want >= 1ms", c.TickInterval)
	case c.HeartbeatTimeout < c.TickInterval:
		return fmt.Errorf("raft: Config.HeartbeatTimeout = %v, want >= TickInterval (%v)", c.HeartbeatTimeout, c.TickInterval)
	case c.ElectionTimeout < 2*c.HeartbeatTimeout:
		return fmt.Errorf("raft: Config.ElectionTimeout = %v, want >= 2*HeartbeatTimeout (%v)", c.ElectionTimeout, 2*c.HeartbeatTimeout)
	case c.MaxAppendEntries < 0 || c.MaxInflight < 0 || c.MaxApplyBatch < 0:
		return errors.New("raft: Config.MaxAppendEntries, MaxInflight and MaxApplyBatch must not be negative")
	case c.SnapshotChunkBytes < 0:
		return fmt.Errorf("raft: Config.SnapshotChunkBytes = %d, want > 0", c.SnapshotChunkBytes)
	case c.MaxClockDrift < 0 || c.MaxClockDrift >= 0.5:
		return fmt.Errorf("raft: Config.MaxClockDrift = %v, want a fraction in [0, 0.5)", c.MaxClockDrift)
	case c.LeaseReads && c.DisableCheckQuorum:
		return errors.New("raft: Config.LeaseReads needs check-quorum; unset DisableCheckQuorum or LeaseReads")
	case c.LeaseReads && c.coreConfig().LeaseTicks <= 0:
		return fmt.Errorf("raft: Config.LeaseReads: ElectionTimeout %v leaves no lease after MaxClockDrift and one tick", c.ElectionTimeout)
	}
	return nil
}

// coreConfig converts durations to ticks.
func (c Config) coreConfig() CoreConfig {
	return CoreConfig{
		ID:               c.ID,
		ElectionTicks:    int(c.ElectionTimeout / c.TickInterval),
		HeartbeatTicks:   int(c.HeartbeatTimeout / c.TickInterval),
		PreVote:          !c.DisablePreVote,
		CheckQuorum:      !c.DisableCheckQuorum,
		MaxEntriesPerMsg: c.MaxAppendEntries,
		MaxBytesPerMsg:   c.MaxAppendBytes,
		MaxInflight:      c.MaxInflight,
		AsyncStorage:     true, // the shell's disk writer reports with Persisted
		PipelineFullOnly: true, // batch while an answer is due; pipeline full messages
		LeaseTicks:       c.leaseTicks(),
	}
}

// leaseTicks is the lease in ticks: the election timeout shortened by the
// clock-drift bound, less one tick for rounding (0: leases off).
func (c Config) leaseTicks() int {
	if !c.LeaseReads {
		return 0
	}
	election := int(c.ElectionTimeout / c.TickInterval)
	return max(0, int(float64(election)*(1-c.MaxClockDrift))-1)
}
