package rpc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"roster/raft"
)

// Operator is the "Operator" endpoint: the Raft configuration, peer
// removal, leadership transfer and autopilot's server health.
type Operator struct {
	c *endpointCore

	// mu guards stable: per server ID, the health it was last seen with
	// and since when (autopilot's StableSince).
	mu     sync.Mutex
	stable map[string]stableState
}

type stableState struct {
	healthy bool
	since   time.Time
}

func newOperator(c *endpointCore) *Operator {
	return &Operator{c: c, stable: map[string]stableState{}}
}

// operatorTimeout bounds membership changes and transfers.
const operatorTimeout = 10 * time.Second

// RaftGetConfiguration returns the Raft configuration in Consul's shape.
func (e *Operator) RaftGetConfiguration(args *DCSpecificRequest, reply *RaftConfigurationResponse) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Operator.RaftGetConfiguration", args, args, reply); done {
		return err
	}
	if err := args.Validate(); err != nil {
		return err
	}
	op := e.c.d.Operator
	conf, idx := op.Configuration()
	leader := op.LeaderID()
	stats := op.Stats()
	localLast, _ := strconv.ParseUint(stats["last_log_index"], 10, 64)
	reply.Index = idx
	reply.Servers = make([]RaftServer, 0, len(conf.Servers))
	for _, s := range conf.Servers {
		rs := RaftServer{ID: s.ID, Node: e.c.d.ServerName(s.ID), Address: s.Address,
			Leader: s.ID == leader, ProtocolVersion: "3", Voter: s.Suffrage == raft.Voter}
		if s.ID == leader && e.c.d.Cluster.IsLeader() {
			rs.LastIndex = localLast
		}
		reply.Servers = append(reply.Servers, rs)
	}
	return nil
}

// RaftRemovePeerByID removes the server with the given Raft ID.
func (e *Operator) RaftRemovePeerByID(args *RaftRemovePeerRequest, reply *struct{}) error {
	return e.c.write("Operator.RaftRemovePeerByID", args, reply, func() error {
		if args.ID == "" {
			return errors.New("Must specify ?id with the server ID of the peer to remove")
		}
		return e.removePeer(func(s raft.Server) bool { return s.ID == args.ID },
			fmt.Sprintf("id %q", args.ID))
	})
}

// RaftRemovePeerByAddress removes the server with the given address.
func (e *Operator) RaftRemovePeerByAddress(args *RaftRemovePeerRequest, reply *struct{}) error {
	return e.c.write("Operator.RaftRemovePeerByAddress", args, reply, func() error {
		if args.Address == "" {
			return errors.New("Must specify ?address with IP:port of the peer to remove")
		}
		return e.removePeer(func(s raft.Server) bool { return s.Address == args.Address },
			fmt.Sprintf("address %q", args.Address))
	})
}

func (e *Operator) removePeer(match func(raft.Server) bool, what string) error {
	conf, _ := e.c.d.Operator.Configuration()
	for _, s := range conf.Servers {
		if match(s) {
			return raftError(e.c.d.Operator.RemoveServer(s.ID, operatorTimeout))
		}
	}
	return fmt.Errorf("%s was not found in the Raft configuration", what)
}

// RaftTransferLeader hands leadership to another voter (Raft thesis
// §3.10); the reply is true once this server has stepped down.
func (e *Operator) RaftTransferLeader(args *RaftTransferLeaderRequest, reply *bool) error {
	return e.c.write("Operator.RaftTransferLeader", args, reply, func() error {
		if args.ID != "" {
			conf, _ := e.c.d.Operator.Configuration()
			if !isVoter(conf, args.ID) {
				return fmt.Errorf("Cannot transfer leadership to %q: it is not a voter in the Raft configuration", args.ID)
			}
		}
		// Not raftError: "transfer in progress" must reach the caller, not
		// send the request around again.
		if err := e.c.d.Operator.TransferLeadership(args.ID, operatorTimeout); err != nil {
			return err
		}
		*reply = true
		return nil
	})
}

// Autopilot's default health thresholds (Consul's LastContactThreshold
// 200ms, MaxTrailingLogs 250); EndpointDeps.AutopilotThresholds replaces
// them with the replicated configuration's.
const (
	healthLastContactThreshold = 200 * time.Millisecond
	healthMaxTrailingLogs      = 250
	healthProbeTimeout         = time.Second
)

// AutopilotServerHealth asks every server of the configuration for its
// Raft stats (Status.RaftStats) and judges each as Consul's autopilot
// does: healthy if it answered, heard from the leader within
// LastContactThreshold, is in the leader's term and at most
// MaxTrailingLogs entries behind.
func (e *Operator) AutopilotServerHealth(args *DCSpecificRequest, reply *OperatorHealthReply) error {
	args.AllowStale, args.RequireConsistent = false, false // the leader's view
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Operator.AutopilotServerHealth", args, args, reply); done {
		return err
	}
	r := e.assess()
	reply.Healthy, reply.FailureTolerance, reply.Servers = r.healthy, r.failureTolerance, r.servers
	return nil
}

// autopilotRound is one look at the cluster, as raft-autopilot's State
// is: every server of the configuration judged against the leader's
// stats. The health and the state endpoints both answer from one.
type autopilotRound struct {
	conf     raft.Configuration
	leaderID string
	// servers are in configuration order, one per conf.Servers entry.
	servers []ServerHealth
	// healthy: every server is (raft-autopilot's State.Healthy, non-voters
	// included) and there is a voter at all.
	healthy bool
	// failureTolerance is how many healthy voters can fail before the
	// voters lose their quorum.
	failureTolerance int
}

// assess probes every server and judges it. On the leader (every call
// but a ?stale one) the leader's stats are local; elsewhere they come
// from the leader's answer, and without it no server is healthy.
func (e *Operator) assess() autopilotRound {
	conf, _ := e.c.d.Operator.Configuration()
	r := autopilotRound{conf: conf, leaderID: e.c.d.Operator.LeaderID(), servers: make([]ServerHealth, 0, len(conf.Servers))}
	stats := e.probeAll(conf)
	th := healthThresholds{lastContact: healthLastContactThreshold, maxTrailing: healthMaxTrailingLogs}
	if f := e.c.d.AutopilotThresholds; f != nil {
		th.lastContact, th.maxTrailing = f()
	}
	voters, healthyVoters, unhealthy := 0, 0, 0
	for _, s := range conf.Servers {
		h := e.judge(s, stats[s.ID], stats[r.leaderID], s.ID == r.leaderID, th)
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
// local one is read directly. Missing entries did not answer in time.
func (e *Operator) probeAll(conf raft.Configuration) map[string]*RaftStats {
	local := localRaftStats(e.c.d.Operator)
	out := map[string]*RaftStats{}
	var mu sync.Mutex // guards out
	var wg sync.WaitGroup
	for _, s := range conf.Servers {
		if s.ID == local.ID || e.c.d.Caller == nil {
			continue
		}
		wg.Add(1)
		go func(s raft.Server) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(e.c.d.Ctx, healthProbeTimeout)
			defer cancel()
			var st RaftStats
			if err := e.c.d.Caller.Call(ctx, s.Address, "Status.RaftStats", struct{}{}, &st); err != nil {
				return
			}
			mu.Lock()
			out[s.ID] = &st
			mu.Unlock()
		}(s)
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

// judge builds one server's ServerHealth from its stats (nil: no answer)
// and the leader's (nil: unknown, so nothing is healthy, as in
// raft-autopilot). LastContact is "0s" when unknown or never: Consul's
// value for a server it has no stats of.
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
	h.StableSince = e.stableSince(s.ID, h.Healthy).UTC().Format(time.RFC3339)
	return h
}

// stableSince returns since when id has had its current health.
func (e *Operator) stableSince(id string, healthy bool) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, ok := e.stable[id]
	if !ok || st.healthy != healthy {
		st = stableState{healthy: healthy, since: e.c.d.Clock()}
		e.stable[id] = st
	}
	return st.since
}

// RaftStats is Status.RaftStats' reply: what autopilot needs to judge a
// server. LastContact is -1 when the server never heard from a leader.
type RaftStats struct {
	ID          string
	State       string
	LastContact time.Duration
	LastTerm    uint64
	LastIndex   uint64
	Version     string
}

// localRaftStats reads this server's RaftStats from the Raft stat map.
func localRaftStats(op RaftOperator) RaftStats {
	m := op.Stats()
	st := RaftStats{ID: op.LocalID(), State: m["state"], Version: m["protocol_version"], LastContact: -1}
	st.LastTerm, _ = strconv.ParseUint(m["term"], 10, 64)
	st.LastIndex, _ = strconv.ParseUint(m["last_log_index"], 10, 64)
	switch lc := m["last_contact"]; lc {
	case "0":
		st.LastContact = 0
	case "never", "":
	default:
		if d, err := time.ParseDuration(lc); err == nil {
			st.LastContact = d
		}
	}
	return st
}

// statusEndpoint is the "Status" endpoint: status.go's Ping, Leader and
// Peers plus RaftStats, which needs the Raft operator.
type statusEndpoint struct {
	*Status
	c *endpointCore
}

// RaftStats answers this server's own Raft stats; it never forwards (the
// leader asks each server directly for autopilot's health).
func (s *statusEndpoint) RaftStats(args struct{}, reply *RaftStats) error {
	*reply = localRaftStats(s.c.d.Operator)
	return nil
}

func isVoter(conf raft.Configuration, id string) bool {
	for _, s := range conf.Servers {
		if s.ID == id {
			return s.Suffrage == raft.Voter
		}
	}
	return false
}
