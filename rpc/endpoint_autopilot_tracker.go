package rpc

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"roster/raft"
)

// The autopilot tracker is raft-autopilot's state updater (run.go's
// runStateUpdater, state.go's nextState), as Consul's leader runs it:
// while a server leads, it probes every server of the Raft configuration
// for its Raft stats every ServerHealthInterval (Consul's default 2s),
// judges each server against the leader's own stats, and keeps the result
// as the autopilot state. Operator.AutopilotState and
// Operator.AutopilotServerHealth answer that tracked state, so a
// dashboard polling them costs no probes at all: the probe load is one
// Status.RaftStats call per other server per interval, whatever the
// number of readers.
//
// A server's StableSince is the start of the round in which its health
// last changed (raft-autopilot's buildServerState), or of the first round
// that saw it. When the tracker stops (leadership lost) it forgets
// everything, as raft-autopilot resets its state to an empty State; the
// next leader starts tracking afresh, its first round at once.
//
// Before the first round of a term completes, and on a server that does
// not lead, the state is empty: Healthy false, no servers, no leader
// (HTTP 200 for /state, 429 for /health). That is what Consul's endpoints
// answer from an autopilot that has not produced a state yet.

// DefaultServerHealthInterval is how often the leader probes the servers
// (Consul's ServerHealthInterval).
const DefaultServerHealthInterval = 2 * time.Second

// minHealthProbeTimeout bounds a probe from below: raft-autopilot gives
// the probes half the interval, which would be too short to answer under
// load for the short intervals tests use.
const minHealthProbeTimeout = 250 * time.Millisecond

// AutopilotTracker keeps the autopilot state of the server it is
// registered with (EndpointDeps.Autopilot). Lead runs it while the server
// leads.
type AutopilotTracker struct {
	interval time.Duration
	// op is the Operator endpoint that judges servers; set once by
	// RegisterEndpoints.
	op atomic.Pointer[Operator]
	// snap is the last completed round; nil when not tracking or before
	// the first round of a term. Published whole, never changed after.
	snap    atomic.Pointer[autopilotSnapshot]
	running atomic.Bool
	rounds  atomic.Uint64
	probes  atomic.Uint64
}

// autopilotSnapshot is one round's outcome in the shapes the endpoints
// answer.
type autopilotSnapshot struct {
	state  AutopilotStateReply
	health OperatorHealthReply
}

// NewAutopilotTracker returns a tracker that probes every interval
// (0: DefaultServerHealthInterval).
func NewAutopilotTracker(interval time.Duration) *AutopilotTracker {
	if interval <= 0 {
		interval = DefaultServerHealthInterval
	}
	return &AutopilotTracker{interval: interval}
}

// Rounds is how many rounds completed since the tracker was made.
func (t *AutopilotTracker) Rounds() uint64 { return t.rounds.Load() }

// Probes is how many Status.RaftStats calls the rounds sent to other
// servers since the tracker was made.
func (t *AutopilotTracker) Probes() uint64 { return t.probes.Load() }

// Running reports whether Lead is running.
func (t *AutopilotTracker) Running() bool { return t.running.Load() }

// Lead tracks server health until ctx ends (the server lost leadership)
// or the server shuts down: a round at once, then one every interval.
// It returns only when no round is in flight, and forgets the state
// before it does. One Lead at a time per tracker.
func (t *AutopilotTracker) Lead(ctx context.Context) error {
	op := t.op.Load()
	if op == nil {
		return errors.New("rpc: AutopilotTracker.Lead before RegisterEndpoints bound it to a server")
	}
	if !t.running.CompareAndSwap(false, true) {
		return errors.New("rpc: AutopilotTracker.Lead is already running")
	}
	defer t.running.Store(false)
	defer t.snap.Store(nil)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(op.c.d.Ctx, cancel)()
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	var prev map[string]stableState
	for {
		r := op.assess(ctx, prev, t.probeTimeout(), &t.probes)
		if ctx.Err() != nil {
			return nil // probes cut short: not a view of the cluster
		}
		prev = r.stable
		t.snap.Store(&autopilotSnapshot{state: op.stateOf(r), health: r.healthReply()})
		t.rounds.Add(1)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// probeTimeout is half the interval (raft-autopilot's fetch deadline), at
// least minHealthProbeTimeout.
func (t *AutopilotTracker) probeTimeout() time.Duration {
	return max(t.interval/2, minHealthProbeTimeout)
}

// Summary is the tracked cluster health and failure tolerance; ok is
// false while there is no tracked state (not leading, or before the
// first round), when Consul reports its autopilot gauges as NaN.
func (t *AutopilotTracker) Summary() (healthy bool, failureTolerance int, ok bool) {
	s := t.snap.Load()
	if s == nil {
		return false, 0, false
	}
	return s.state.Healthy, s.state.FailureTolerance, true
}

// state is a copy of the tracked state (empty without one).
func (t *AutopilotTracker) state() AutopilotStateReply {
	s := t.snap.Load()
	if s == nil {
		return AutopilotStateReply{Servers: map[string]AutopilotServer{}, Voters: []string{}}
	}
	out := s.state
	out.Voters = slices.Clone(s.state.Voters)
	out.Servers = make(map[string]AutopilotServer, len(s.state.Servers))
	for id, srv := range s.state.Servers {
		srv.Meta = maps.Clone(srv.Meta)
		out.Servers[id] = srv
	}
	return out
}

// health is a copy of the tracked health (unhealthy, no servers, without
// one).
func (t *AutopilotTracker) health() OperatorHealthReply {
	s := t.snap.Load()
	if s == nil {
		return OperatorHealthReply{}
	}
	out := s.health
	out.Servers = slices.Clone(s.health.Servers)
	return out
}

// stableState is one server's health as the last round saw it, and since
// when it has had it.
type stableState struct {
	healthy bool
	since   time.Time
}

// autopilotRound is one look at the cluster, as raft-autopilot's State
// is: every server of the configuration judged against the leader's
// stats.
type autopilotRound struct {
	// servers are the configuration's, in its order.
	servers []ServerHealth
	// stable carries each server's health and StableSince into the next
	// round; only servers of this configuration are kept.
	stable map[string]stableState
	// healthy: every server is (raft-autopilot's State.Healthy, non-voters
	// included) and there is a voter at all.
	healthy bool
	// failureTolerance is how many healthy voters can fail before the
	// voters lose their quorum.
	failureTolerance int
}

func (r autopilotRound) healthReply() OperatorHealthReply {
	return OperatorHealthReply{Healthy: r.healthy, FailureTolerance: r.failureTolerance, Servers: r.servers}
}

// assess probes every server (counting the calls in probes) and judges
// it; prev is the previous round's stable map (nil for the first). A
// server whose health differs from prev, or that prev lacks, is stable
// since this round's start.
func (e *Operator) assess(ctx context.Context, prev map[string]stableState, probeTimeout time.Duration, probes *atomic.Uint64) autopilotRound {
	now := e.c.d.Clock()
	conf, _ := e.c.d.Operator.Configuration()
	leaderID := e.c.d.Operator.LeaderID()
	r := autopilotRound{servers: make([]ServerHealth, 0, len(conf.Servers)), stable: make(map[string]stableState, len(conf.Servers))}
	stats := e.probeAll(ctx, conf, probeTimeout, probes)
	th := healthThresholds{lastContact: healthLastContactThreshold, maxTrailing: healthMaxTrailingLogs}
	if f := e.c.d.AutopilotThresholds; f != nil {
		th.lastContact, th.maxTrailing = f()
	}
	voters, healthyVoters, unhealthy := 0, 0, 0
	for _, s := range conf.Servers {
		h := e.judge(s, stats[s.ID], stats[leaderID], s.ID == leaderID, th)
		st, ok := prev[s.ID]
		if !ok || st.healthy != h.Healthy {
			st = stableState{healthy: h.Healthy, since: now}
		}
		r.stable[s.ID] = st
		h.StableSince = st.since.UTC().Format(time.RFC3339)
		if !h.Healthy {
			unhealthy++
		}
		if h.Voter {
			voters++
			if h.Healthy {
				healthyVoters++
			}
		}
		r.servers = append(r.servers, h)
	}
	r.healthy = unhealthy == 0 && voters > 0
	r.failureTolerance = max(healthyVoters-(voters/2+1), 0)
	return r
}

// probeAll collects Status.RaftStats from every server in parallel; the
// local one is read directly. Missing entries did not answer within
// probeTimeout, or were not asked: a server gossip says has left (or
// does not know) is not probed, as raft-autopilot fetches stats only for
// servers that have not left.
func (e *Operator) probeAll(ctx context.Context, conf raft.Configuration, probeTimeout time.Duration, probes *atomic.Uint64) map[string]*RaftStats {
	local := localRaftStats(e.c.d.Operator)
	out := map[string]*RaftStats{}
	var mu sync.Mutex // guards out
	var wg sync.WaitGroup
	for _, s := range conf.Servers {
		if s.ID == local.ID || e.c.d.Caller == nil {
			continue
		}
		if e.c.d.SerfStatus != nil && nodeStatus(e.c.d.SerfStatus(s.ID)) == "left" {
			continue
		}
		probes.Add(1)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			var st RaftStats
			if err := e.c.d.Caller.Call(ctx, s.Address, "Status.RaftStats", struct{}{}, &st); err != nil {
				return
			}
			mu.Lock()
			out[s.ID] = &st
			mu.Unlock()
		})
	}
	wg.Wait()
	out[local.ID] = &local
	return out
}

// healthThresholds are the autopilot settings a server's health is
// judged by.
type healthThresholds struct {
	lastContact time.Duration
	maxTrailing uint64
}

// judge builds one server's ServerHealth (all but StableSince, which
// assess keeps) from its stats (nil: no answer) and the leader's (nil:
// unknown, so nothing is healthy, as in raft-autopilot). LastContact is
// "0s" when unknown or never: Consul's value for a server it has no stats
// of.
func (e *Operator) judge(s raft.Server, st, leader *RaftStats, isLeader bool, th healthThresholds) ServerHealth {
	h := ServerHealth{ID: s.ID, Name: e.c.d.ServerName(s.ID), Address: s.Address,
		Leader: isLeader, Voter: s.Suffrage == raft.Voter, SerfStatus: "failed", LastContact: "0s"}
	if st != nil {
		h.SerfStatus, h.Version = "alive", st.Version
		h.LastTerm, h.LastIndex = st.LastTerm, st.LastIndex
		h.LastContact = max(st.LastContact, 0).String()
		h.Healthy = leader != nil && (isLeader || st.LastContact >= 0 && st.LastContact <= th.lastContact) &&
			st.LastTerm == leader.LastTerm && leader.LastIndex <= st.LastIndex+th.maxTrailing
	}
	if e.c.d.SerfStatus != nil {
		h.SerfStatus = e.c.d.SerfStatus(s.ID)
		// Leaving counts as alive, as in Consul's autopilot delegate: a
		// server on its way out through a graceful leave is not failed.
		h.Healthy = h.Healthy && nodeStatus(h.SerfStatus) == "alive"
	}
	if e.c.d.ServerVersion != nil {
		if v := e.c.d.ServerVersion(s.ID); v != "" {
			h.Version = v
		}
	}
	return h
}
