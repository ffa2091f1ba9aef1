package rpc

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"roster/raft"
)

// Operator is the "Operator" endpoint: the Raft configuration, peer
// removal, leadership transfer and autopilot's server health and state,
// which the leader tracks in the background (endpoint_autopilot_tracker.go).
type Operator struct {
	c       *endpointCore
	tracker *AutopilotTracker
}

func newOperator(c *endpointCore, tracker *AutopilotTracker) *Operator {
	return &Operator{c: c, tracker: tracker}
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
)

// AutopilotServerHealth answers the leader's tracked server health
// (Consul's Operator.ServerHealth): each server judged as Consul's
// autopilot does, healthy if it answered the last probe, heard from the
// leader within LastContactThreshold, is in the leader's term and at most
// MaxTrailingLogs entries behind. Only the leader tracks health, so the
// call always goes there, ?stale or not (Consul before 1.12 forced it the
// same way).
func (e *Operator) AutopilotServerHealth(args *DCSpecificRequest, reply *OperatorHealthReply) error {
	args.AllowStale, args.RequireConsistent = false, false // the leader's view
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Operator.AutopilotServerHealth", args, args, reply); done {
		return err
	}
	*reply = e.tracker.health()
	return nil
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
