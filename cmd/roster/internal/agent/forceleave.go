package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"roster/swim"
)

// ForceLeave is `consul force-leave [-prune] [-wan] NODE`: each gossip
// pool that knows the member forces it to leave (swim's ForceLeave, or
// ForceLeavePrune with prune), as Consul's Server.removeFailedNode does.
// Without wan that is the LAN pool and, on a server, also the WAN pool,
// where servers are named NODE.DC (the datacenter is appended unless NODE
// already ends with it); with wan only the WAN pool, under NODE as given.
// A member no pool knows is an error ("No node found").
//
// What follows is swim's (Serf's) state machine: a failed member is left
// at once, and the leader deregisters it and, for a server, removes it
// from Raft (handleLeft); a live one (alive or suspect) is leaving, keeps
// its catalog entry, and either refutes and is alive again or is declared
// dead and so becomes left. With prune every member the intent reaches
// forgets it (a live one once the intent has spread, unless it refuted),
// and the leader, seeing it reaped, deregisters it and removes a server
// from Raft; if it was alive after all, it rejoins.
func (m membership) ForceLeave(node string, prune, wan bool) error {
	lan, wanPool := m.a.lanNode(), m.a.wanNode()
	if lan == nil {
		return errors.New("force-leave: the agent is not running")
	}
	if wan && wanPool == nil {
		return errors.New("force-leave -wan: only servers are members of the WAN pool")
	}
	type target struct {
		pool *swim.Node
		kind string
		name string
	}
	var targets []target
	if wan {
		targets = append(targets, target{wanPool, "WAN", node})
	} else {
		targets = append(targets, target{lan, "LAN", node})
		if wanPool != nil {
			targets = append(targets, target{wanPool, "WAN", wanMemberName(node, m.a.cfg.Datacenter)})
		}
	}
	found := false
	var errs []error
	for _, t := range targets {
		if !poolKnows(t.pool, t.name) {
			continue
		}
		found = true
		force := t.pool.ForceLeave
		if prune {
			force = t.pool.ForceLeavePrune
		}
		if err := force(t.name); err != nil {
			errs = append(errs, fmt.Errorf("could not remove %s from the %s pool: %w", t.name, t.kind, err))
			continue
		}
		m.a.log.Info("forced a member to leave", nodeAttr(m.a.cfg.NodeName), slog.String("member", t.name),
			slog.String("pool", t.kind), slog.Bool("prune", prune))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("agent: No node found with name '%s'", node)
	}
	return nil
}

// wanMemberName is a server's name in the WAN pool: NODE.DC. So a LAN
// node literally named "web.dc1" and a server "web" are both hit by
// force-leave web.dc1, as with Consul's RemoveFailedNode.
func wanMemberName(node, dc string) string {
	if strings.HasSuffix(node, "."+dc) {
		return node
	}
	return node + "." + dc
}

// poolKnows reports whether pool lists a member named name, in any state
// (Consul's isSerfMember).
func poolKnows(pool *swim.Node, name string) bool {
	for _, mb := range pool.Members() {
		if mb.Name == name {
			return true
		}
	}
	return false
}
