// Package swim is roster's cluster membership: who is in the cluster, who
// is alive, and what metadata (tags) each member carries. It implements
// SWIM (Das, Gupta, Motivala, "SWIM: Scalable Weakly-consistent
// Infection-style Process Group Membership Protocol", 2002) with the
// Lifeguard extensions (Dadgar, Phillips, Currey, "Lifeguard: Local Health
// Awareness for More Accurate Failure Detection", arXiv 1707.00788), plus
// the engineering HashiCorp's memberlist and Serf added around it: push-pull
// state sync over TCP, tags, user events, graceful leave, cluster labels
// and encryption. Agents use it on the LAN (:8301), servers also on the
// WAN (:8302).
//
// # The protocol in one paragraph
//
// Every ProbeInterval each member pings the next member of a shuffled
// round-robin list (SWIM §4.3). No ack within ProbeTimeout: it asks k
// others to ping the target for it (ping-req, §3.1). Still nothing by the
// end of the interval: it suspects the target and gossips "suspect". A
// suspect that hears this refutes by raising its incarnation number and
// gossiping "alive"; if no refutation arrives before the suspicion
// timeout, the suspect is declared dead (§4.2). All of this news travels
// piggy-backed on the probes themselves and on a small gossip fan-out
// (§4.1), each item a bounded number of times. Lifeguard makes the
// detector humble: a member whose own probes keep failing assumes it is
// the slow one and probes less eagerly (§IV-A), suspicion timeouts start
// long and shrink as independent accusers confirm (§IV-B), and a suspect
// is told directly that it is suspected (§IV-C).
//
// Three small additions of ours, all aimed at members that are slow
// rather than dead (each measured in bench_test.go): a late ack still
// counts for LateAckGrace after the protocol period (the next probe runs
// meanwhile, so the load is unchanged); a member's own suspicion timeouts
// stretch with its health multiplier, so a slow member does not convict
// others before it has processed their refutations; and a refutation is
// sent straight to up to 64 members besides being gossiped, because a
// member slow enough to be suspected has little time left to answer.
//
// # Reading order
//
//  1. member.go — Member, State and Consul's serf status codes.
//  2. wire.go, frame.go — the versioned, length-checked binary format:
//     messages, the compound packet, labels and AES-GCM.
//  3. core.go — Core, the pure state machine: Tick, Step, Ready. Start at
//     Tick to see every timer, at handle for every message.
//  4. probe.go — failure detection: round-robin probing, ping, ping-req,
//     ack, nack, the probe verdict and local health.
//  5. state.go — the SWIM §4.2 merge rules for alive/suspect/dead/left,
//     refutation, and where verdicts are traced to their first accuser.
//  6. suspicion.go — Lifeguard's dynamic suspicion timeout and awareness.
//  7. broadcast.go — the piggy-back queue and its retransmit limit.
//  8. pushpull.go — full-state exchange for joins, anti-entropy and
//     partition healing (reconnect to dead members).
//  9. userevent.go — user events with a Lamport clock and de-duplication.
//  10. config.go, events.go — knobs with documented defaults; the typed
//     events and counters everything else observes.
//  11. node.go, transport.go, memnet.go — the shell: one goroutine owning a
//     Core, real UDP+TCP or an in-memory network with the shared fault
//     verbs, and the friendly API (Join, Leave, Members, SetTags,
//     UserEvent, Subscribe, Stats).
//
// Tests follow the same split: sim_test.go steps many cores in virtual
// time (no goroutines) over a faultable network; scenario_test.go replays
// the scripts in testdata/scenarios against golden traces (-rewrite to
// update); partition_test.go holds the TestPartition_* chaos tests;
// measure_test.go and bench_test.go produce the detection, load, false
// positive and dissemination tables; node_test.go and udpbench_test.go run
// real shells on 127.0.0.1.
//
// # Using it
//
//	cfg := swim.DefaultLANConfig()
//	cfg.Name, cfg.Tags = "web-1", map[string]string{"role": "node", "dc": "dc1"}
//	cfg.SecretKey, _ = swim.ParseKey(encryptFlag) // optional
//	node, _ := swim.NewUDP(cfg, udpConn, tcpListener) // same port number
//	obs := node.Subscribe(0)              // join/alive/suspect/dead/left/update/user...
//	n, err := node.Join([]string{"10.0.0.1:8301"})
//	...
//	err = node.ForceLeave("web-7")        // a failed member: mark it left everywhere
//	node.Leave(5 * time.Second)
//	node.Shutdown()
//
// Invariants worth knowing: only a member raises its own incarnation; a
// higher incarnation always wins, and at equal incarnation
// dead/left > suspect > alive; the Core never blocks, allocates no
// goroutines and never panics on input — bad packets are counted in Stats
// and dropped.
package swim
