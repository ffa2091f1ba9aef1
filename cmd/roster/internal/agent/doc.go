// Package agent composes a roster agent out of the protocol packages and
// runs its lifecycle. It is the only place that knows every part; the parts
// know nothing of each other beyond DESIGN.md's import rules.
//
// An agent is a client or a server. Both gossip in the LAN pool, serve the
// HTTP API and send RPCs to servers; a server also runs Raft, the catalog
// and the RPC endpoints, and gossips in the WAN pool.
//
// # A tour, in reading order
//
//   - config.go: Config, its documented defaults (Consul's ports, names and
//     timers) and Validate, which names the offending flag or key.
//   - agent.go: New checks the config; Start locks the data dir, binds every
//     listener first (gossip, server port, HTTP: a port in use fails before
//     anything serves), starts the server stack, the gossip pools, the
//     bootstrap and leader routines, HTTP, and finally -join/-retry-join;
//     Shutdown stops everything in reverse. Leave is the graceful variant
//     that Consul runs on SIGINT: a leader hands leadership over, then the
//     agent announces its departure in gossip.
//   - anyport.go: port 0 on any port binds the kernel's pick, which the
//     agent logs ("serving") and publishes in place of the configured
//     port, and Agent.Ports returns after Start, so tests that start the
//     binary or an in-process agent never race for a port.
//   - httplisten.go: each HTTP address is four sockets sharing the port
//     (SO_REUSEPORT on Linux), so a reconnect storm of 10,000 clients fits
//     the kernel's accept queues instead of waiting out SYN retransmits;
//     keep-alive is set on those sockets once and inherited by every
//     connection they accept (no system calls for it per connection).
//   - server.go: the server stack: one listener for net/rpc endpoints and
//     Raft's transport (told apart by the first byte), raft.Node on bbolt
//     (memory in -dev), the catalog as the FSM behind the request-ID
//     de-duplication table, the Forwarder and Blocker. raftview.go adapts
//     the Raft node to what the rpc package needs. endpoints.go registers
//     the endpoints.
//   - gossip.go: the LAN and WAN pools on pre-bound UDP+TCP sockets, the
//     member tags through which servers are found, member watching, the
//     router (servers per datacenter) and -retry-join.
//   - bootstrap.go: -dev/-bootstrap found a one-server cluster at once;
//     -bootstrap-expect waits for the expected servers in the LAN pool and
//     bootstraps exactly once (expectPlan is the pure decision).
//   - leader.go, reconcile.go, sessions.go: Consul's leader routine. On
//     gaining leadership: barrier, then reconcile gossip members into the
//     catalog (serfHealth, the consul service, deregistering members that
//     left), keep Raft's configuration in step with the servers (new ones
//     join as nonvoters and are promoted once stable; leavers are
//     removed), and expire TTL sessions. autopilot.go: servers failed for
//     longer than a grace period are removed from Raft and force-left,
//     never below a safe quorum (pickDeadServers is the pure decision).
//     autopilot_state.go, autopilot_endpoint.go: the autopilot settings
//     are replicated state (an FSM layer under rpc.DedupFSM, in the
//     snapshot), read and changed by the Autopilot endpoint.
//     autopilot_track.go: for each term the leader runs the
//     rpc.AutopilotTracker, which probes every server's Raft stats each
//     ServerHealthInterval (2s) and keeps its health with StableSince =
//     when that health last changed; /v1/operator/autopilot/state and
//     /health answer that state (forwarded to the leader, ?stale too)
//     and probe nothing. Until a term's first round the state is empty.
//   - snapshot.go, snapshot_archive.go: /v1/snapshot save and restore; a
//     restore is verified on the leader and committed as one log entry
//     that every server's FSM (restoringFSM) applies.
//   - rpcclient.go, httpwire.go: how the HTTP API reaches the servers (the
//     pool, to this server's own listener or, on a client, to a server
//     found in gossip, rotating on failure) and join/leave/force-leave
//     over HTTP.
//   - dns.go: the DNS interface on servers, answered from the local
//     catalog (stale reads allowed, as Consul's default); clients do not
//     serve DNS yet.
//   - userevents.go: /v1/event/* over the LAN pool's user events.
//   - local_wiring.go: the agent's own services and checks (package
//     local's State, persisted in the data dir), the health-check runners
//     (package checks) and anti-entropy (local.Syncer over Agent.RPC), with
//     a full sync whenever more servers appear in the LAN pool.
//   - metrics.go, tombstones.go: /v1/agent/metrics figures; the leader's
//     KV tombstone reaping.
//   - self.go: what /v1/agent/self and /v1/agent/members report: real
//     gossip members and raft, serf_lan and serf_wan statistics.
//   - datadir.go: the data-dir lock (one agent per directory) and the
//     persisted node ID, which is also the server's Raft ID.
//   - events.go: the agent's own typed events (listener serving, stopped,
//     left), published on a fanout.Hub and logged with slog's fixed keys.
//   - faultnet.go: NetFaults, a seam for tests that cut network links of
//     real agents with a faults.Plan.
//
// The tests read in the same order: cluster_test.go starts three real
// servers in-process (bootstrap-expect, crash and restart, graceful
// leave, a late server promoted, a client agent), partition_test.go cuts
// links between them.
package agent
