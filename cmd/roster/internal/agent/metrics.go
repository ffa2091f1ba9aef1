package agent

import (
	"strconv"

	"roster/httpapi"
	"roster/swim"
)

// Metrics implements httpapi.MetricsSource: a fresh snapshot of the
// counters of every part this agent runs (gossip, the RPC pool, and on
// servers Raft, the RPC server, the de-duplication table and the catalog).
// Names follow Consul's dotted style under "roster.".
func (a *Agent) Metrics() []httpapi.Metric {
	var out []httpapi.Metric
	counter := func(name, help string, v uint64) {
		out = append(out, httpapi.Metric{Name: name, Kind: httpapi.Counter, Help: help, Value: float64(v)})
	}
	gauge := func(name, help string, v float64) {
		out = append(out, httpapi.Metric{Name: name, Kind: httpapi.Gauge, Help: help, Value: v})
	}
	for pool, n := range map[string]*swim.Node{"lan": a.lanNode(), "wan": a.wanNode()} {
		if n == nil {
			continue
		}
		p := "roster.serf." + pool + "."
		for _, m := range n.Stats().Metrics() {
			if m.Counter {
				counter(p+m.Name, m.Help, uint64(m.Value))
			} else {
				gauge(p+m.Name, m.Help, m.Value)
			}
		}
	}
	if a.pool != nil {
		ps := a.pool.Stats()
		counter("roster.rpc.pool.calls", "RPC calls made through the pool", ps.Calls)
		counter("roster.rpc.pool.transport_errors", "pool calls that failed in transport", ps.TransportErrs)
		gauge("roster.rpc.pool.conns", "open pool connections", float64(ps.Conns))
	}
	if a.srv == nil || a.srv.raft == nil {
		return out
	}
	for _, k := range []string{"term", "commit_index", "applied_index", "last_log_index", "num_peers", "fsm_pending", "disk_write_us", "apply_latency_us"} {
		if v, err := strconv.ParseFloat(a.srv.raft.Stats()[k], 64); err == nil {
			gauge("roster.raft."+k, "raft "+k, v)
		}
	}
	gauge("roster.raft.leader", "1 while this server is the raft leader", b2f(a.isLeader()))
	ss := a.srv.rpcSrv.Stats()
	counter("roster.rpc.server.accepted", "connections accepted on the server port", ss.Accepted)
	counter("roster.rpc.server.malformed_frames", "undecodable or oversized RPC frames", ss.MalformedFrames)
	ds := a.srv.fsm.Stats()
	counter("roster.rpc.dedup.duplicates", "repeated writes turned into no-ops", ds.Duplicates)
	if ap := a.srv.autopilot; ap != nil {
		counter("roster.autopilot.rounds", "server health rounds the leader completed", ap.Rounds())
		counter("roster.autopilot.probes", "Status.RaftStats calls the leader's health rounds sent", ap.Probes())
		// Consul's autopilot.healthy and autopilot.failure_tolerance; absent
		// where Consul reports NaN (not the leader, or no round yet).
		if healthy, tolerance, ok := ap.Summary(); ok {
			gauge("roster.autopilot.healthy", "1 while every server is healthy (leader only)", b2f(healthy))
			gauge("roster.autopilot.failure_tolerance", "voters that can fail without losing quorum (leader only)", float64(tolerance))
		}
	}
	cs := a.srv.store.Stats()
	counter("roster.catalog.applied", "commands applied to the catalog", cs.Applied)
	counter("roster.catalog.malformed", "commands the catalog refused to decode", cs.Malformed)
	gauge("roster.catalog.index", "last applied raft index", float64(cs.Index))
	gauge("roster.catalog.waiters", "blocked queries waiting for a change", float64(cs.Waiters))
	return out
}

// b2f is a flag as a gauge value: 1 for true, 0 for false.
func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
