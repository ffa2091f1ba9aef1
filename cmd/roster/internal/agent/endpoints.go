package agent

import (
	"slices"
	"time"

	"roster/rpc"
	"roster/swim"
)

// registerEndpoints registers every RPC endpoint of the server (Status,
// Catalog, Health, KVS, Session, Txn, Coordinate, Operator, Roster) with
// what they need from the agent: the catalog, Raft, the forwarding and
// blocking machinery, gossip's view of servers and datacenters, and the
// leader's session clocks.
func (a *Agent) registerEndpoints(s *serverStack) error {
	ra := rpc.NewRaftAdapter(s.raft, a.nodeID())
	if err := s.rpcSrv.Register("DNS", &dnsEndpoint{a: a}); err != nil {
		return err
	}
	if err := s.rpcSrv.Register("Snapshot", &snapshotEndpoint{a: a}); err != nil {
		return err
	}
	if err := s.rpcSrv.Register("Autopilot", &autopilotEndpoint{a: a}); err != nil {
		return err
	}
	s.autopilot = rpc.NewAutopilotTracker(a.cfg.Autopilot.ServerHealthInterval)
	return rpc.RegisterEndpoints(s.rpcSrv, rpc.EndpointDeps{
		Datacenter: a.cfg.Datacenter, NodeName: a.cfg.NodeName,
		Store: s.store, Raft: ra, Operator: ra,
		Cluster: s.view, Forwarder: s.fwd, Blocker: s.blocker, Caller: a.pool,
		Datacenters: a.datacenters, ServerName: a.serverName, SerfStatus: a.serfStatus, ServerVersion: a.serverVersion,
		Sessions: leaderSessionTimers{a: a}, Autopilot: s.autopilot,
		AutopilotThresholds: func() (time.Duration, uint64) {
			ap := a.autopilotSettings()
			return ap.LastContactThreshold, ap.MaxTrailingLogs
		},
		Logger: a.log, Ctx: s.ctx,
	})
}

// datacenters lists the known datacenters, this one first then the others
// seen in the WAN pool in name order (Catalog.ListDatacenters).
func (a *Agent) datacenters() []string {
	seen := map[string]bool{a.cfg.Datacenter: true}
	var others []string
	if wan := a.wanNode(); wan != nil {
		for _, m := range wan.Members() {
			if dc := m.Tags["dc"]; dc != "" && !seen[dc] {
				seen[dc] = true
				others = append(others, dc)
			}
		}
	}
	slices.Sort(others)
	return append([]string{a.cfg.Datacenter}, others...)
}

// serverByID finds a server's LAN member by its Raft ID (the node ID).
func (a *Agent) serverByID(id string) (swim.Member, bool) {
	if lan := a.lanNode(); lan != nil {
		for _, m := range lan.Members() {
			if m.Tags["id"] == id && m.Tags["role"] == "consul" {
				return m, true
			}
		}
	}
	return swim.Member{}, false
}

// serverName maps a Raft ID to the server's node name.
func (a *Agent) serverName(id string) string {
	if m, ok := a.serverByID(id); ok {
		return m.Name
	}
	return id
}

// serverVersion is a server's build version, from its gossip "build" tag
// ("" if gossip does not know it).
func (a *Agent) serverVersion(id string) string {
	if m, ok := a.serverByID(id); ok {
		return buildVersion(m.Tags["build"])
	}
	return ""
}

// serfStatus is a server's LAN membership status in Consul's words.
func (a *Agent) serfStatus(id string) string {
	m, ok := a.serverByID(id)
	if !ok {
		return "none"
	}
	switch m.State {
	case swim.StateDead:
		return "failed"
	case swim.StateLeft:
		return "left"
	case swim.StateLeaving:
		return "leaving"
	}
	return "alive"
}
