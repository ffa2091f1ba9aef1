package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"roster/raft"
	"roster/rpc"
)

// Bootstrapping Raft, as Consul does it:
//
//   - -dev and -bootstrap: this server founds a one-voter cluster at once.
//   - -bootstrap-expect N: wait until N servers of this datacenter, each
//     announcing the same expectation in its gossip tags, are alive in the
//     LAN pool; then every one of them bootstraps with the same
//     configuration (all N as voters, sorted by ID), so whichever
//     campaigns first wins an election that all agree on.
//   - A server with Raft state from an earlier run never bootstraps again
//     (raft refuses too: ErrCantBootstrap), and before bootstrapping a
//     server asks the others whether they already belong to a cluster, so
//     a wiped server rejoining a running cluster waits to be added by the
//     leader instead of founding a second cluster.

// expectPlan is the pure bootstrap-expect decision over the servers seen
// alive in the LAN pool (self included). ready means bootstrap now with
// conf; problem, when set, is a misconfiguration to log and refuse.
func expectPlan(servers []serverInfo, expect int) (conf []raft.Server, ready bool, problem string) {
	var mismatched []string
	for _, s := range servers {
		if s.Bootstrap {
			return nil, false, fmt.Sprintf("server %s runs with -bootstrap; it and -bootstrap-expect cannot be mixed: refusing to bootstrap", s.Name)
		}
		if s.Expect != 0 && s.Expect != expect {
			mismatched = append(mismatched, fmt.Sprintf("%s expects %d", s.Name, s.Expect))
		}
	}
	if len(mismatched) > 0 {
		slices.Sort(mismatched)
		return nil, false, fmt.Sprintf("-bootstrap-expect mismatch: this server expects %d but %s; refusing to bootstrap until every server agrees", expect, strings.Join(mismatched, ", "))
	}
	if len(servers) < expect {
		return nil, false, ""
	}
	for _, s := range servers {
		conf = append(conf, raft.Server{ID: s.ID, Address: s.RPCAddr, Suffrage: raft.Voter})
	}
	slices.SortFunc(conf, func(x, y raft.Server) int { return strings.Compare(x.ID, y.ID) })
	return conf, true, ""
}

// bootstrapSelf founds a one-server cluster (-dev, -bootstrap).
func (a *Agent) bootstrapSelf() error {
	n := a.srv.raft
	if n.HasExistingState() {
		return nil
	}
	err := n.BootstrapCluster([]raft.Server{{ID: a.nodeID(), Address: a.rpcAddr(), Suffrage: raft.Voter}})
	if errors.Is(err, raft.ErrCantBootstrap) {
		return nil
	}
	return err
}

// bootstrapExpectLoop waits for the expected servers and bootstraps once.
// It re-evaluates on every LAN member change and every pollInterval (a
// backstop should a change event be dropped), and returns when the server
// bootstrapped, found an existing cluster, or stop closed.
func (a *Agent) bootstrapExpectLoop(stop <-chan struct{}) {
	const pollInterval = time.Second
	lastProblem := ""
	for {
		if a.srv.raft.HasExistingState() {
			a.log.Info("raft has existing state; not bootstrapping", nodeAttr(a.cfg.NodeName))
			return
		}
		changed := a.lanWatch.wait()
		servers := aliveServers(a.lanNode().Members(), a.cfg.Datacenter)
		conf, ready, problem := expectPlan(servers, a.cfg.BootstrapExpect)
		if problem != "" && problem != lastProblem {
			a.log.Error(problem, nodeAttr(a.cfg.NodeName))
		}
		lastProblem = problem
		if ready && a.tryBootstrap(conf, servers) {
			return
		}
		t := time.NewTimer(pollInterval)
		select {
		case <-stop:
			t.Stop()
			return
		case <-changed:
			t.Stop()
		case <-t.C:
		}
	}
}

// tryBootstrap asks the other servers whether any already has Raft peers;
// if none does, it bootstraps with conf. It returns true when no further
// attempt is needed.
func (a *Agent) tryBootstrap(conf []raft.Server, servers []serverInfo) bool {
	for _, s := range servers {
		if s.ID == a.nodeID() {
			continue
		}
		ctx, cancel := context.WithTimeout(a.srv.ctx, 2*time.Second)
		var peers []string
		err := a.pool.Call(ctx, s.RPCAddr, "Status.Peers", &rpc.DCSpecificRequest{QueryOptions: rpc.QueryOptions{AllowStale: true}}, &peers)
		cancel()
		if err != nil {
			a.log.Warn("bootstrap-expect: cannot ask a server for its raft peers; retrying", nodeAttr(a.cfg.NodeName),
				slog.String("peer", s.Name), slog.String("error", err.Error()))
			return false
		}
		if len(peers) > 0 {
			a.log.Info("bootstrap-expect: a cluster already exists; waiting to be added by its leader", nodeAttr(a.cfg.NodeName),
				slog.String("peer", s.Name), slog.Any("peers", peers))
			return true
		}
	}
	a.log.Info("bootstrap-expect: found the expected servers; bootstrapping raft", nodeAttr(a.cfg.NodeName),
		slog.Int("expect", a.cfg.BootstrapExpect), slog.String("configuration", fmt.Sprint(conf)))
	err := a.srv.raft.BootstrapCluster(conf)
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		a.log.Error("bootstrap-expect: bootstrap failed", nodeAttr(a.cfg.NodeName), slog.String("error", err.Error()))
		return false
	}
	return true
}
