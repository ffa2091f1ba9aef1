package agent

import (
	"log/slog"
	"maps"
	"strconv"
	"time"

	"roster/catalog"
	"roster/raft"
	"roster/swim"
)

// reconcileMember brings one LAN member's catalog entry (and, for servers,
// its Raft membership) in line with its gossip state (spec §10.2).
func (a *Agent) reconcileMember(m swim.Member) {
	if a.checkDC(m.Tags) != nil {
		return
	}
	switch m.State {
	case swim.StateAlive, swim.StateSuspect:
		a.reconcileRegistration(m, catalog.HealthPassing)
		if s, ok := parseServer(m); ok {
			a.ensureRaftServer(s)
		}
	case swim.StateDead:
		a.reconcileRegistration(m, catalog.HealthCritical)
	case swim.StateLeft:
		a.handleLeft(m)
	case swim.StateLeaving:
		// As Consul's leader: a leaving member keeps its catalog entry
		// until it has left (or refuted a force-leave and is alive).
	}
}

// reconcileRegistration registers m with its serfHealth check at status,
// unless the catalog already says exactly that.
func (a *Agent) reconcileRegistration(m swim.Member, status string) {
	ns, _ := a.srv.store.NodeServices(m.Name)
	var existing *catalog.Node
	switch {
	case m.Name == a.cfg.NodeName:
		// The leader's own node: its meta is known here, not read back
		// from the catalog, so a sync of it racing with this
		// registration cannot be overwritten by a stale copy.
		existing = &catalog.Node{Meta: a.nodeMeta()}
	case ns != nil:
		existing = &ns.Node
	}
	want := memberRegistration(m, a.cfg.Datacenter, status, existing)
	checks, _ := a.srv.store.NodeChecks(m.Name)
	if registrationUpToDate(want, ns, checks) {
		return
	}
	a.log.Debug("leader: registering member", nodeAttr(a.cfg.NodeName), slog.String("member", m.Name), slog.String("serfHealth", status))
	a.logApplyErr("register member "+m.Name, a.applyCatalog(&want))
}

// memberRegistration is the catalog entry a member should have: its node,
// the `consul` service for servers, and the serfHealth check.
//
// The node's meta belongs to the member's own agent, which writes it by
// anti-entropy (its node_meta plus consul-network-segment). A register
// replaces the whole node record, so, as Consul's leader does
// (handleAliveMember), the registration carries the meta the catalog
// already holds (existing, nil for a new node); a node the catalog does
// not know yet gets the meta every agent sends, never null, until its
// agent's first sync replaces it.
func memberRegistration(m swim.Member, dc, status string, existing *catalog.Node) catalog.RegisterRequest {
	addr := m.Addr.String()
	meta := map[string]string{segmentMetaKey: ""}
	if existing != nil && existing.Meta != nil {
		meta = maps.Clone(existing.Meta)
	}
	req := catalog.RegisterRequest{
		Node: catalog.Node{
			ID: m.Tags["id"], Node: m.Name, Address: addr, Datacenter: dc,
			TaggedAddresses: map[string]string{"lan": addr, "lan_ipv4": addr, "wan": addr, "wan_ipv4": addr},
			Meta:            meta,
		},
		Checks: []catalog.HealthCheck{{
			Node: m.Name, CheckID: serfCheckID, Name: serfCheckName, Status: status,
			Output: map[bool]string{true: serfAliveOutput, false: serfFailedOutput}[status == catalog.HealthPassing],
		}},
	}
	if _, ok := parseServer(m); ok {
		port, _ := strconv.Atoi(m.Tags["port"])
		req.Service = &catalog.NodeService{
			ID: consulServiceName, Service: consulServiceName, Port: port,
			Meta: map[string]string{
				"raft_version": m.Tags["raft_vsn"], "serf_protocol_current": "2", "serf_protocol_min": "1",
				"serf_protocol_max": "5", "version": buildVersion(m.Tags["build"]), "non_voter": "false",
			},
			Weights: catalog.Weights{Passing: 1, Warning: 1},
		}
	}
	return req
}

// buildVersion is the version part of a "version:revision" build tag.
func buildVersion(build string) string {
	for i := range len(build) {
		if build[i] == ':' {
			return build[:i]
		}
	}
	return build
}

// registrationUpToDate reports whether the catalog already holds want:
// same node identity and address, the serfHealth check with the same
// status and output, and the consul service where one is wanted.
func registrationUpToDate(want catalog.RegisterRequest, have *catalog.NodeServices, checks []catalog.HealthCheck) bool {
	if have == nil || have.Node.Address != want.Node.Address || have.Node.ID != want.Node.ID {
		return false
	}
	if want.Service != nil {
		found := false
		for _, s := range have.Services {
			if s.ID == want.Service.ID && s.Port == want.Service.Port {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	wc := want.Checks[0]
	for _, c := range checks {
		if c.CheckID == wc.CheckID && c.ServiceID == "" {
			return c.Status == wc.Status && c.Output == wc.Output && c.Name == wc.Name
		}
	}
	return false
}

// handleLeft deregisters a member that left; a server also leaves the
// Raft configuration. The leader never removes itself here: it hands
// leadership over first when it leaves (Agent.Leave).
func (a *Agent) handleLeft(m swim.Member) {
	if m.Name == a.cfg.NodeName {
		return
	}
	if ns, _ := a.srv.store.NodeServices(m.Name); ns != nil {
		a.log.Info("leader: deregistering member that left", nodeAttr(a.cfg.NodeName), slog.String("member", m.Name))
		a.logApplyErr("deregister member "+m.Name, a.applyCatalog(&catalog.DeregisterRequest{Node: m.Name}))
	}
	if s, ok := parseServer(m); ok {
		a.removeRaftServer(s.ID, m.Name)
	}
}

// removeRaftServer takes server id (member name) out of the Raft
// configuration, if it is there and not this server: a server that left
// or was reaped (Consul's handleDeregisterMember).
func (a *Agent) removeRaftServer(id, name string) {
	if id == "" || id == a.nodeID() {
		return
	}
	conf, _ := a.srv.raft.Configuration()
	if _, ok := conf.Server(id); ok {
		a.log.Info("leader: removing server that left from raft", nodeAttr(a.cfg.NodeName), slog.String("member", name), slog.String("id", id))
		a.logApplyErr("remove raft server "+name, a.srv.raft.RemoveServer(id, leaderApplyWait).Error())
		delete(a.nonvoterSince, id)
	}
}

// ensureRaftServer adds an alive server that is not in the Raft
// configuration as a nonvoter (promoted later by promoteNonvoters), and
// re-adds one whose address changed.
func (a *Agent) ensureRaftServer(s serverInfo) {
	if s.ID == a.nodeID() {
		return
	}
	conf, _ := a.srv.raft.Configuration()
	if srv, ok := conf.Server(s.ID); ok {
		if srv.Address == s.RPCAddr {
			return
		}
		a.log.Info("leader: server address changed; re-adding it", nodeAttr(a.cfg.NodeName), slog.String("member", s.Name),
			slog.String("old", srv.Address), slog.String("new", s.RPCAddr))
		if err := a.srv.raft.RemoveServer(s.ID, leaderApplyWait).Error(); err != nil {
			a.logApplyErr("remove raft server "+s.Name, err)
			return
		}
	}
	a.log.Info("leader: adding server to raft as a nonvoter", nodeAttr(a.cfg.NodeName), slog.String("member", s.Name), slog.String("addr", s.RPCAddr))
	if err := a.srv.raft.AddNonvoter(s.ID, s.RPCAddr, leaderApplyWait).Error(); err != nil {
		a.logApplyErr("add raft nonvoter "+s.Name, err)
		return
	}
	a.nonvoterSince[s.ID] = time.Now()
}

// promoteNonvoters gives a vote to every nonvoter that is alive in the
// pool, has been a member for the autopilot ServerStabilizationTime and
// whose log is within MaxTrailingLogs of the leader's (autopilot's rules,
// from the replicated configuration). Adding
// the vote of a server still catching up would leave the quorum waiting
// for it.
func (a *Agent) promoteNonvoters() {
	ap := a.autopilotSettings()
	conf, _ := a.srv.raft.Configuration()
	alive := map[string]bool{}
	for _, s := range aliveServers(a.lanNode().Members(), a.cfg.Datacenter) {
		alive[s.ID] = true
	}
	var match map[string]uint64
	for _, srv := range conf.Servers {
		if srv.Suffrage == raft.Voter {
			delete(a.nonvoterSince, srv.ID)
			continue
		}
		since, seen := a.nonvoterSince[srv.ID]
		if !seen {
			a.nonvoterSince[srv.ID] = time.Now()
			continue
		}
		if !alive[srv.ID] || time.Since(since) < ap.ServerStabilizationTime {
			continue
		}
		if match == nil {
			match = a.srv.raft.FollowerMatch()
		}
		if last := a.srv.raft.CommitIndex(); match[srv.ID]+ap.MaxTrailingLogs < last {
			a.log.Debug("leader: nonvoter still catching up", nodeAttr(a.cfg.NodeName), slog.String("id", srv.ID),
				slog.Uint64("match", match[srv.ID]), slog.Uint64("commit", last))
			continue
		}
		a.log.Info("leader: promoting caught-up server to voter", nodeAttr(a.cfg.NodeName), slog.String("id", srv.ID), slog.String("addr", srv.Address))
		if err := a.srv.raft.AddVoter(srv.ID, srv.Address, leaderApplyWait).Error(); err != nil {
			a.logApplyErr("promote raft server "+srv.ID, err)
			continue
		}
		delete(a.nonvoterSince, srv.ID)
	}
}

// segmentMetaKey is the node meta key every Consul agent sets to its
// network segment ("" for the default one); tools filter on it, and its
// presence is why an agent's node never shows Meta null.
const segmentMetaKey = "consul-network-segment"

// nodeMeta is the node meta this agent writes into the catalog by
// anti-entropy and reports in /v1/agent/self: its configured node_meta
// plus the segment key, as Consul's agent loads it (loadMetadata).
func (a *Agent) nodeMeta() map[string]string {
	meta := make(map[string]string, len(a.cfg.Meta)+1)
	maps.Copy(meta, a.cfg.Meta)
	meta[segmentMetaKey] = ""
	return meta
}
