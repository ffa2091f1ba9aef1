package agent

import (
	"log/slog"
	"slices"
	"time"

	"roster/raft"
	"roster/rpc"
	"roster/swim"
)

// Autopilot's "cleanup dead servers" (Consul's autopilot, raft-autopilot's
// pruneDeadServers). A server that crashed for good keeps its place in the
// Raft configuration: it still counts towards the quorum size, so one more
// failure could stop the cluster. The leader therefore removes servers
// that have been failed (or gone from the gossip pool) for
// AutopilotConfig.DeadServerGrace — and forces them to leave the pool, so
// the catalog deregisters them as it does a server that left.
//
// Removal must never itself endanger the cluster. A failed server is
// removed only if, afterwards,
//
//   - at most (voters-1)/2 voters were removed in this round (a strict
//     minority, raft-autopilot's bound),
//   - at least MinQuorum voters remain, and
//   - the healthy voters still form a quorum of the new configuration.
//
// Non-voters hold no vote and are always removed. The leader never
// removes itself. A removed server that comes back is re-added as a
// non-voter and promoted like any new server (reconcile.go).

// DefaultDeadServerGrace is how long a server must stay failed before the
// leader removes it.
const DefaultDeadServerGrace = time.Minute

// AutopilotConfig tunes dead-server cleanup. Zero values mean defaults.
type AutopilotConfig struct {
	// DisableCleanupDeadServers turns cleanup off (Consul's
	// autopilot.cleanup_dead_servers = false).
	DisableCleanupDeadServers bool
	// DeadServerGrace is how long a server must be failed before it is
	// removed. Default DefaultDeadServerGrace.
	DeadServerGrace time.Duration
	// MinQuorum is the fewest voters cleanup may leave (Consul's
	// autopilot.min_quorum). Default: a quorum of BootstrapExpect
	// (BootstrapExpect/2+1), or no floor beyond the rules above.
	MinQuorum int
	// ServerHealthInterval is how often the leader probes every server's
	// Raft stats to track its health (Consul's ServerHealthInterval;
	// autopilot_track.go). Default rpc.DefaultServerHealthInterval (2s).
	ServerHealthInterval time.Duration
	// LastContactThreshold and MaxTrailingLogs judge server health and
	// gate promotion (Consul's keys). Defaults 200ms and 250.
	LastContactThreshold time.Duration
	MaxTrailingLogs      uint64
	// RedundancyZoneTag, UpgradeVersionTag and DisableUpgradeMigration
	// are stored for Consul's tools; roster has no redundancy zones or
	// upgrade migrations.
	RedundancyZoneTag       string
	UpgradeVersionTag       string
	DisableUpgradeMigration bool
}

// These settings seed the replicated autopilot configuration: the first
// leader stores its own (autopilot_state.go); later changes go through
// PUT /v1/operator/autopilot/configuration.

// raftMember is one server of the configuration as cleanup sees it.
type raftMember struct {
	ID        string
	Voter     bool
	Failed    bool
	FailedFor time.Duration
}

// pickDeadServers is cleanup's decision, pure so it can be tested on its
// own: which failed servers to remove now, and which are held back by the
// quorum rules. leaderID is never removed.
func pickDeadServers(servers []raftMember, leaderID string, grace time.Duration, minQuorum int) (remove, held []string) {
	voters, healthy := 0, 0
	for _, s := range servers {
		if s.Voter {
			voters++
			if !s.Failed {
				healthy++
			}
		}
	}
	sorted := slices.Clone(servers)
	slices.SortFunc(sorted, func(x, y raftMember) int {
		if x.ID < y.ID {
			return -1
		}
		return 1
	})
	maxRemoval, removed := (voters-1)/2, 0
	for _, s := range sorted {
		if !s.Failed || s.FailedFor < grace || s.ID == leaderID {
			continue
		}
		if !s.Voter {
			remove = append(remove, s.ID)
			continue
		}
		left := voters - removed - 1
		if removed+1 > maxRemoval || left < minQuorum || healthy < left/2+1 {
			held = append(held, s.ID)
			continue
		}
		remove = append(remove, s.ID)
		removed++
	}
	return remove, held
}

// deadServerCleanup is cleanup's state for one term of leadership: since
// when each server has been failed. A new leader starts every grace
// period afresh, which errs on the side of keeping servers.
type deadServerCleanup struct {
	failedSince map[string]time.Time
	heldLogged  map[string]bool
}

func newDeadServerCleanup() *deadServerCleanup {
	return &deadServerCleanup{failedSince: map[string]time.Time{}, heldLogged: map[string]bool{}}
}

// cleanupDeadServers runs one round on the leader.
func (a *Agent) cleanupDeadServers(st *deadServerCleanup, now time.Time) {
	ap := a.autopilotSettings()
	if !ap.CleanupDeadServers {
		return
	}
	grace, minQuorum := ap.deadServerGrace(), a.minQuorum(ap)
	conf, _ := a.srv.raft.Configuration()
	members := make([]raftMember, 0, len(conf.Servers))
	names := map[string]swim.Member{}
	for _, s := range conf.Servers {
		m, known := a.serverByID(s.ID)
		failed := !known || m.State == swim.StateDead || m.State == swim.StateLeft
		if known {
			names[s.ID] = m
		}
		if !failed {
			delete(st.failedSince, s.ID)
			delete(st.heldLogged, s.ID)
		} else if _, ok := st.failedSince[s.ID]; !ok {
			st.failedSince[s.ID] = now
		}
		members = append(members, raftMember{ID: s.ID, Voter: s.Suffrage == raft.Voter, Failed: failed,
			FailedFor: now.Sub(st.failedSince[s.ID])})
	}
	remove, held := pickDeadServers(members, a.nodeID(), grace, minQuorum)
	for _, id := range held {
		a.autopilotHeld.Add(1)
		if !st.heldLogged[id] {
			st.heldLogged[id] = true
			a.log.Warn("autopilot: not removing a dead server: it would leave too few voters for a safe quorum",
				nodeAttr(a.cfg.NodeName), slog.String("id", id), slog.Int("min_quorum", minQuorum))
		}
	}
	for _, id := range remove {
		a.removeDeadServer(id, names[id], now.Sub(st.failedSince[id]))
		delete(st.failedSince, id)
	}
}

// removeDeadServer takes a dead server out of Raft, then out of the pool
// (force-leave), which makes the catalog deregister it (handleLeft).
func (a *Agent) removeDeadServer(id string, m swim.Member, failedFor time.Duration) {
	a.log.Info("autopilot: removing dead server", nodeAttr(a.cfg.NodeName), slog.String("id", id),
		slog.String("member", m.Name), slog.Duration("failed_for", failedFor.Round(time.Millisecond)))
	if err := a.srv.raft.RemoveServer(id, leaderApplyWait).Error(); err != nil {
		a.logApplyErr("autopilot: remove dead server "+id, err)
		return
	}
	a.autopilotRemoved.Add(1)
	delete(a.nonvoterSince, id)
	if m.Name != "" && m.State == swim.StateDead {
		if err := a.lanNode().ForceLeave(m.Name); err != nil {
			a.log.Warn("autopilot: force-leave of the removed server failed", nodeAttr(a.cfg.NodeName),
				slog.String("member", m.Name), slog.String("error", err.Error()))
		}
	}
}

// minQuorum is the settings' MinQuorum or, when 0, a quorum of
// BootstrapExpect (0 without one: no floor beyond pickDeadServers' rules).
func (a *Agent) minQuorum(ap AutopilotSettings) int {
	if ap.MinQuorum > 0 {
		return int(ap.MinQuorum)
	}
	if e := a.cfg.BootstrapExpect; e > 0 {
		return e/2 + 1
	}
	return 0
}

// Consul's autopilot defaults for the settings roster's config has no key
// for.
const (
	defaultLastContactThreshold = 200 * time.Millisecond
	defaultMaxTrailingLogs      = 250
)

// configuredAutopilot is the autopilot configuration this server's files
// and flags give: what the first leader stores.
func (a *Agent) configuredAutopilot() AutopilotSettings {
	ap := a.cfg.Autopilot
	s := AutopilotSettings{
		CleanupDeadServers:      !ap.DisableCleanupDeadServers,
		LastContactThreshold:    ap.LastContactThreshold,
		MaxTrailingLogs:         ap.MaxTrailingLogs,
		MinQuorum:               uint(max(ap.MinQuorum, 0)),
		ServerStabilizationTime: a.cfg.ServerStabilizationTime,
		RedundancyZoneTag:       ap.RedundancyZoneTag,
		DisableUpgradeMigration: ap.DisableUpgradeMigration,
		UpgradeVersionTag:       ap.UpgradeVersionTag,
		DeadServerGracePeriod:   ap.DeadServerGrace,
	}
	if s.LastContactThreshold == 0 {
		s.LastContactThreshold = defaultLastContactThreshold
	}
	if s.MaxTrailingLogs == 0 {
		s.MaxTrailingLogs = defaultMaxTrailingLogs
	}
	return s
}

// autopilotSettings is the configuration autopilot applies: the
// replicated one, or this server's own until a leader stored one.
func (a *Agent) autopilotSettings() AutopilotSettings {
	if s, ok := a.srv.ap.stored(); ok {
		return s
	}
	return a.configuredAutopilot()
}

// deadServerGrace is DeadServerGracePeriod or its default.
func (s AutopilotSettings) deadServerGrace() time.Duration {
	if s.DeadServerGracePeriod > 0 {
		return s.DeadServerGracePeriod
	}
	return DefaultDeadServerGrace
}

// initAutopilot stores this server's configured settings unless some are
// stored already (the leader, after its barrier; Consul's leader does
// the same when it establishes leadership).
func (a *Agent) initAutopilot() {
	if _, ok := a.srv.ap.stored(); ok {
		return
	}
	data := rpc.EncodeCommand("", time.Now(), encodeAutopilot(autopilotInit, a.configuredAutopilot()))
	if err := a.srv.raft.Apply(data, leaderApplyWait).Error(); err != nil {
		a.logApplyErr("store the autopilot configuration", err)
	}
}
