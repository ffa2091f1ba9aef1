package rpc

import (
	"cmp"
	"slices"
	"time"
)

// AutopilotState answers the leader's tracked autopilot state in the
// shape of Consul's Operator.AutopilotState (raft-autopilot's State as
// Consul's community edition converts it for GET
// /v1/operator/autopilot/state). The state and the health endpoint answer
// from the same rounds (AutopilotTracker), so they apply the same rules
// of health and never probe a server themselves.
//
// Only the leader tracks the state, as Consul's leader ran autopilot
// before 1.12, so the call always goes to the leader, ?stale or not (as
// those releases forced it). Consul 1.12 and later track the state on
// every server and let ?stale read a follower's own view; roster keeps
// the probes on the leader alone.
func (e *Operator) AutopilotState(args *DCSpecificRequest, reply *AutopilotStateReply) error {
	args.AllowStale, args.RequireConsistent = false, false // the leader's view
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Operator.AutopilotState", args, args, reply); done {
		return err
	}
	*reply = e.tracker.state()
	return nil
}

// stateOf turns a round into the state reply.
func (e *Operator) stateOf(r autopilotRound) AutopilotStateReply {
	out := AutopilotStateReply{Healthy: r.healthy, FailureTolerance: r.failureTolerance,
		OptimisticFailureTolerance: r.failureTolerance, Servers: make(map[string]AutopilotServer, len(r.servers)),
		Voters: []string{}}
	for _, h := range r.servers {
		srv := e.stateServer(h, r.stable[h.ID].since)
		out.Servers[srv.ID] = srv
		if srv.Status == autopilotLeader || srv.Status == autopilotVoter {
			out.Voters = append(out.Voters, srv.ID)
		}
		if srv.Status == autopilotLeader {
			out.Leader = srv.ID
		}
	}
	sortVoters(out.Voters, out.Servers)
	return out
}

// raft-autopilot's RaftState values. roster's Raft has no staging
// suffrage, so a server is the leader, a voter or a non-voter.
const (
	autopilotLeader   = "leader"
	autopilotVoter    = "voter"
	autopilotNonVoter = "non-voter"
)

// stateServer builds one server's entry from its judged health.
func (e *Operator) stateServer(h ServerHealth, stableSince time.Time) AutopilotServer {
	status := autopilotNonVoter
	switch {
	case h.Leader:
		status = autopilotLeader
	case h.Voter:
		status = autopilotVoter
	}
	return AutopilotServer{ID: h.ID, Name: h.Name, Address: h.Address, NodeStatus: nodeStatus(h.SerfStatus),
		Version: h.Version, LastContact: h.LastContact, LastTerm: h.LastTerm, LastIndex: h.LastIndex,
		Healthy: h.Healthy, StableSince: stableSince.UTC(), Status: status,
		Meta: e.serverMeta(h.ID, h.Name),
		// Consul's community edition promotes with raft-autopilot's
		// StablePromoter, which types every server a voter.
		NodeType: "voter"}
}

// nodeStatus maps a gossip status to raft-autopilot's NodeStatus the way
// Consul's autopilot delegate does: leaving still counts as alive (so a
// graceful leave is not mistaken for a failure), a server gossip no
// longer knows has left.
func nodeStatus(serf string) string {
	switch serf {
	case "alive", "leaving":
		return "alive"
	case "failed", "left":
		return serf
	case "none":
		return "left"
	}
	return "unknown"
}

// serverMeta is the node meta of the server's catalog node, as Consul's
// delegate reads it from its state store (nil until the server's node is
// registered, or if the node of that name is another one).
func (e *Operator) serverMeta(id, name string) map[string]string {
	ns, _ := e.c.d.Store.NodeServices(name)
	if ns == nil || ns.Node.ID != id {
		return nil
	}
	return ns.Node.Meta
}

// sortVoters orders voter IDs as raft-autopilot's SortServers does: the
// leader first, then healthy before unhealthy, a healthy server stable
// for longer first (an unhealthy one: unhealthy for less time), then by
// ID.
func sortVoters(ids []string, servers map[string]AutopilotServer) {
	slices.SortFunc(ids, func(a, b string) int {
		x, y := servers[a], servers[b]
		switch {
		case x.Status == autopilotLeader:
			return -1
		case y.Status == autopilotLeader:
			return 1
		case x.Healthy != y.Healthy:
			if x.Healthy {
				return -1
			}
			return 1
		}
		if c := x.StableSince.Compare(y.StableSince); c != 0 {
			if !x.Healthy {
				return -c // the one unhealthy for less time first
			}
			return c
		}
		return cmp.Compare(a, b)
	})
}
