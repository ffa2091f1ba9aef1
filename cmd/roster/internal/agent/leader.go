package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"roster/catalog"
	"roster/raft"
	"roster/rpc"
	"roster/swim"
)

// The leader routine (Consul's agent/consul/leader.go). Whichever server
// leads Raft also owns the parts of the catalog that no agent owns:
//
//  1. On gaining leadership it waits on a Barrier, so its catalog has
//     applied every entry of earlier terms before it reasons about it.
//  2. It reconciles the LAN pool into the catalog: each member is a node
//     with a serfHealth check (passing while alive, critical once failed);
//     left and reaped members are deregistered; servers carry the
//     `consul` service. Then it keeps doing so on every member change and
//     every ReconcileInterval.
//  3. It keeps the Raft configuration in step with the servers in the
//     pool: a new server joins as a nonvoter and is promoted once it has
//     been stable for ServerStabilizationTime; a server that left is
//     removed; one failed for longer than the dead-server grace period
//     is removed if the quorum rules allow it (autopilot.go).
//  4. It expires sessions whose TTL ran out (sessions.go) and reaps KV
//     tombstones older than TombstoneTTL (tombstones.go).
//
// It stops when leadership is lost; the next leader starts from step 1.

const (
	serfCheckID       = "serfHealth"
	serfCheckName     = "Serf Health Status"
	serfAliveOutput   = "Agent alive and reachable"
	serfFailedOutput  = "Agent not live or unreachable"
	consulServiceName = "consul"
	leaderApplyWait   = 5 * time.Second
	// tombstoneSamplesPerTTL sets the GC's granularity: a tombstone lives
	// between TombstoneTTL and TombstoneTTL*(1+1/15).
	tombstoneSamplesPerTTL = 15
)

// leaderWatch starts the leader routine whenever this server becomes
// leader and stops it when it no longer is.
func (a *Agent) leaderWatch(stop <-chan struct{}) {
	obs := a.srv.raft.Subscribe(64)
	defer obs.Close()
	var cancel context.CancelFunc
	var done chan struct{}
	check := func() {
		leading := a.isLeader()
		switch {
		case leading && cancel == nil:
			var ctx context.Context
			ctx, cancel = context.WithCancel(context.Background())
			done = make(chan struct{})
			go func() { defer close(done); a.leaderLoop(ctx) }()
		case !leading && cancel != nil:
			cancel()
			<-done
			cancel = nil
		}
	}
	// A backstop in case a state event is dropped by a slow observer.
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	defer func() {
		if cancel != nil {
			cancel()
			<-done
		}
	}()
	check()
	for {
		select {
		case <-stop:
			return
		case _, ok := <-obs.C:
			if !ok {
				return
			}
			check()
		case <-tick.C:
			check()
		}
	}
}

// leaderLoop is one term of leadership.
func (a *Agent) leaderLoop(ctx context.Context) {
	a.log.Info("cluster leadership acquired", nodeAttr(a.cfg.NodeName))
	defer a.log.Info("cluster leadership lost", nodeAttr(a.cfg.NodeName))
	for {
		err := a.srv.raft.Barrier(leaderApplyWait).Error()
		if err == nil {
			break
		}
		a.log.Warn("leader: barrier failed; retrying", nodeAttr(a.cfg.NodeName), slog.String("error", err.Error()))
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return
		}
	}
	sessions := newSessionTimers(a)
	defer sessions.stopAll()
	a.sessions.Store(sessions)
	defer a.sessions.Store(nil)
	sessions.resetAll()

	a.initAutopilot()
	defer a.trackServerHealth(ctx)()
	a.reconcileAll(ctx)
	full := time.NewTicker(a.cfg.ReconcileInterval)
	defer full.Stop()
	promote := newPromoteTicker(a.autopilotSettings().ServerStabilizationTime)
	defer promote.t.Stop()
	a.promoteEvery.Store(int64(promote.every))
	dead := newDeadServerCleanup()
	// New sessions get their TTL clock within a second (TTLs are >= 10s);
	// the Session endpoint re-arms it on every renewal (leaderSessionTimers).
	sessionScan := time.NewTicker(time.Second)
	defer sessionScan.Stop()
	gc, lastReaped := &tombstoneGC{ttl: a.cfg.TombstoneTTL}, uint64(0)
	gcTick := time.NewTicker(a.cfg.TombstoneTTL / tombstoneSamplesPerTTL)
	defer gcTick.Stop()
	for {
		changed := a.lanWatch.waitDirty()
		select {
		case <-ctx.Done():
			return
		case <-changed:
			a.reconcileNames(ctx, a.lanWatch.takeDirty())
		case <-full.C:
			a.reconcileAll(ctx)
		case <-a.restored:
			a.log.Info("leader: snapshot restored; reconciling members and sessions again", nodeAttr(a.cfg.NodeName))
			a.initAutopilot() // a snapshot from before replicated autopilot settings holds none
			a.reconcileAll(ctx)
			sessions.resetAll()
		case <-promote.t.C:
			a.promoteNonvoters()
			a.cleanupDeadServers(dead, time.Now())
			promote.follow(a.autopilotSettings().ServerStabilizationTime)
			a.promoteEvery.Store(int64(promote.every))
		case <-sessionScan.C:
			sessions.resetAll()
		case <-gcTick.C:
			a.reapTombstones(gc, &lastReaped)
		case id := <-sessions.expired:
			sessions.invalidate(id)
		}
	}
}

// promoteInterval is how often the leader looks for nonvoters to promote
// and dead servers to remove: a quarter of the stabilization time, within
// [10ms, 2.5s] so that a stabilization time set to 0 at runtime cannot
// spin the loop and a long one still checks for dead servers.
func promoteInterval(stabilization time.Duration) time.Duration {
	return min(max(stabilization/4, 10*time.Millisecond), 2500*time.Millisecond)
}

// promoteTicker drives the promote/dead-server pass at promoteInterval of
// the stored stabilization time. The leader re-reads the setting after
// every pass, so a runtime set-config takes effect within one interval
// (at most 2.5s) rather than at the next election.
type promoteTicker struct {
	t     *time.Ticker
	every time.Duration
}

func newPromoteTicker(stabilization time.Duration) *promoteTicker {
	every := promoteInterval(stabilization)
	return &promoteTicker{t: time.NewTicker(every), every: every}
}

// follow resets the ticker if stabilization now calls for another interval.
func (p *promoteTicker) follow(stabilization time.Duration) {
	if every := promoteInterval(stabilization); every != p.every {
		p.every = every
		p.t.Reset(every)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// applyCatalog proposes a catalog command on the leader and returns the
// catalog's verdict. Leader-originated writes carry no request ID: each is
// computed from current state and re-derived on the next reconcile, so a
// duplicate is harmless.
func (a *Agent) applyCatalog(cmd catalog.Command) error {
	data := rpc.EncodeCommand("", time.Now(), catalog.EncodeCommand(cmd))
	f := a.srv.raft.Apply(data, leaderApplyWait)
	if err := f.Error(); err != nil {
		return err
	}
	switch r := f.Response().(type) {
	case catalog.Result:
		return r.Err
	case error:
		return r
	}
	return nil
}

// reconcileAll reconciles every LAN member, then removes catalog nodes
// that carry serfHealth but are no longer members (reaped). Catalog node
// names are case-insensitive and may spell a member's name in another
// case (catalog/nodename.go), so members are matched by the lower-cased
// name, as in Consul's reconcile.
func (a *Agent) reconcileAll(ctx context.Context) {
	members := a.lanNode().Members()
	if len(members) == 0 {
		return // the pool is shut down: never read that as "everyone left"
	}
	known := map[string]bool{}
	for _, m := range members {
		known[strings.ToLower(m.Name)] = true
		if ctx.Err() != nil {
			return
		}
		a.reconcileMember(m)
	}
	nodes, _ := a.srv.store.Nodes()
	for _, n := range nodes {
		if known[strings.ToLower(n.Node)] || strings.EqualFold(n.Node, a.cfg.NodeName) || !a.hasSerfCheck(n.Node) {
			continue
		}
		a.log.Info("leader: deregistering reaped node", nodeAttr(a.cfg.NodeName), slog.String("member", n.Node))
		a.logApplyErr("deregister reaped node "+n.Node, a.applyCatalog(&catalog.DeregisterRequest{Node: n.Node}))
	}
}

// reconcileNames reconciles the named members from the current pool view
// (a name no longer in the pool was reaped).
func (a *Agent) reconcileNames(ctx context.Context, names []string) {
	if len(names) == 0 {
		return
	}
	byName := map[string]int{}
	members := a.lanNode().Members()
	if len(members) == 0 {
		return
	}
	for i, m := range members {
		byName[m.Name] = i
	}
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		if i, ok := byName[name]; ok {
			a.reconcileMember(members[i])
		} else if name != a.cfg.NodeName && a.hasSerfCheck(name) {
			// Reaped (or pruned by force-leave -prune) before this leader
			// handled its leave: the gossip tags are gone, and only the
			// catalog entry says which Raft server it was.
			if ns, _ := a.srv.store.NodeServices(name); ns != nil {
				a.removeReapedRaftServer(ns, members)
			}
			a.logApplyErr("deregister reaped node "+name, a.applyCatalog(&catalog.DeregisterRequest{Node: name}))
		}
	}
}

// removeReapedRaftServer removes the Raft server a reaped catalog node
// stood for, but only when the evidence agrees. The catalog node (ID,
// address, services) is writable by anyone through /v1/catalog/register
// and its ID may change after a name takeover, so the ID alone must not
// remove a live server: the Raft configuration must hold a server with
// that ID at the node's address, the node must carry the `consul` service
// on that server's port (as memberRegistration writes it), and no member
// still in the pool may claim the ID (a live server is reconciled by its
// own gossip entry instead).
func (a *Agent) removeReapedRaftServer(ns *catalog.NodeServices, members []swim.Member) {
	id := ns.Node.ID
	conf, _ := a.srv.raft.Configuration()
	srv, ok := conf.Server(id)
	if id == "" || id == a.nodeID() || !ok {
		return // not a raft server (other than this one)
	}
	if why := reapedServerMismatch(ns, srv.Address, members); why != "" {
		a.log.Warn("leader: not removing a raft server for a reaped node", nodeAttr(a.cfg.NodeName),
			slog.String("member", ns.Node.Node), slog.String("id", id), slog.String("reason", why))
		return
	}
	a.removeRaftServer(id, ns.Node.Node)
}

// reapedServerMismatch is why ns is not evidence enough to remove the Raft
// server at raftAddr that has its node ID, or "" if it is.
func reapedServerMismatch(ns *catalog.NodeServices, raftAddr string, members []swim.Member) string {
	id := ns.Node.ID
	host, port, err := net.SplitHostPort(raftAddr)
	if err != nil || !sameHost(host, ns.Node.Address) {
		return fmt.Sprintf("raft server address %s does not match the node address %s", raftAddr, ns.Node.Address)
	}
	carries := false
	for _, svc := range ns.Services {
		if svc.ID == consulServiceName && svc.Service == consulServiceName && strconv.Itoa(svc.Port) == port {
			carries = true
		}
	}
	if !carries {
		return "the node does not carry the consul service on the raft server's port"
	}
	for _, m := range members {
		if m.Tags["id"] == id {
			return "member " + m.Name + " in the pool carries the same id"
		}
	}
	return ""
}

// sameHost compares two IP addresses by value (so "::ffff:127.0.0.1" and
// "127.0.0.1" agree), and anything else as text.
func sameHost(a, b string) bool {
	x, errX := netip.ParseAddr(a)
	y, errY := netip.ParseAddr(b)
	if errX == nil && errY == nil {
		return x.Unmap() == y.Unmap()
	}
	return a == b
}

func (a *Agent) hasSerfCheck(node string) bool {
	checks, _ := a.srv.store.NodeChecks(node)
	for _, c := range checks {
		if c.CheckID == serfCheckID {
			return true
		}
	}
	return false
}

func (a *Agent) logApplyErr(what string, err error) {
	if err != nil && !errors.Is(err, raft.ErrShutdown) {
		a.log.Warn("leader: "+what+" failed", nodeAttr(a.cfg.NodeName), slog.String("error", err.Error()))
	}
}

// errNotMember is reported for members of another datacenter or segment.
var errNotMember = errors.New("member belongs to another datacenter")

func memberDC(tags map[string]string) string { return tags["dc"] }

func (a *Agent) checkDC(tags map[string]string) error {
	if memberDC(tags) != a.cfg.Datacenter {
		return fmt.Errorf("%w (%s)", errNotMember, memberDC(tags))
	}
	return nil
}
