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
//     Tick to see every timer, at handle for every message. table.go is
//     its member table: 32-byte records by slot, chunks copied on write.
//  4. probe.go — failure detection: round-robin probing, ping, ping-req,
//     ack, nack, the probe verdict and local health.
//  5. state.go — the SWIM §4.2 merge rules for alive/suspect/dead/left,
//     refutation, and where verdicts are traced to their first accuser;
//     leave.go — graceful leave in two steps (Serf's leave intent:
//     "leaving", then "left") and ForceLeave; prune.go — force-leave
//     -prune: erasing the member everywhere, and its tombstones.
//  6. suspicion.go — Lifeguard's dynamic suspicion timeout and awareness.
//  7. broadcast.go — the piggy-back queue and its retransmit limit.
//  8. pushpull.go — full-state exchange for joins, anti-entropy and
//     partition healing (reconnect to dead members).
//  9. userevent.go — user events with a Lamport clock and de-duplication;
//     conflict.go — two processes claiming one name (Serf's resolution).
//  10. config.go, events.go — knobs with documented defaults; the typed
//     events and counters everything else observes.
//  11. node.go, transport.go, memnet.go — the shell: one goroutine owning a
//     Core, real UDP+TCP or an in-memory network with the shared fault
//     verbs, and the friendly API (Join, Leave, ForceLeave, Members,
//     SetTags, UserEvent, Subscribe, Stats).
//
// Tests follow the same split: sim_test.go steps many cores in virtual
// time (no goroutines) over a faultable network; scenario_test.go replays
// the scripts in testdata/scenarios against golden traces (-rewrite to
// update); partition_test.go holds the TestPartition_* chaos tests;
// measure_test.go and bench_test.go produce the detection, load, false
// positive and dissemination tables; node_test.go and udpbench_test.go run
// real shells on 127.0.0.1.
//
// # What the benchmarks say (make bench; shipped LAN defaults)
//
// BenchmarkSimDetection kills 10 of N simulated members at once (virtual
// time, one tick of latency) and times until every live member marks a
// victim dead. Median (p99), N = 100, 300, 1k, 3k, 10k: 4.6 (7.8), 5.4
// (9.0), 5.6 (7.6), 6.9 (7.9), 7.9 (9.8) seconds. Divided by log10 N the
// median falls from 2.3 to 2.0: detection grows no faster than log N,
// because the suspicion timeout is log10 N probe intervals (§4.2) and a
// verdict spreads in O(log N) gossip rounds.
//
// BenchmarkSimLoad measures a quiet cluster: 2 UDP packets and 28–32
// bytes per member per second from 100 to 10,000 members (flat within
// 15%; one ping and one ack each). Push-pull comes on top: a frame costs
// about 20 bytes per member, one exchange (a frame each way) per member
// every PushPullInterval × (1 + ceil(log2(N/32))) — 90 s at 100 members,
// 300 s at 10,000 — so 40, 210 and 1,326 bytes per member per second at
// 100, 1,000 and 10,000 members: it grows as N/log N, and it is what to
// tune (PushPullInterval) for very large clusters.
//
// BenchmarkSimFalsePositives slows 10% of the members (every packet they
// receive is handled 0.3–1.5 s late) with 1% loss for 120 s, and counts
// dead verdicts on members that never failed, summed over many seeded
// runs: shipped Lifeguard against plain SWIM (no Lifeguard, no late-ack
// grace). Plain SWIM gave 0.79, 2.1, 48 and 12 per run at N = 3, 5, 50
// and 100; Lifeguard none in 150, 150 and 3 runs, and 1 in 8 runs at
// N = 100: 99× to over 300× fewer (with none, the table prints a bound). BenchmarkUDPSlowMembers runs the same scenario
// on real sockets at N = 50: 0 false dead verdicts and 29 suspicions,
// against memberlist's 0–1 and ~157.
//
// BenchmarkReapMassFailure reaps 5,000 of 10,000 members that failed at
// once and are still in the probe order: 2.7 ms (median of 5; 9.2 ms
// when each left the order by its own scan), mostly their EventReaps.
//
// The 10,000-member simulations fit in 1.6 GB because every simulated core
// starts from the same read-only member chunks and copies only those it
// writes (table.go); -short stops the curves at 1,000 members.
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
//	err = node.ForceLeave("web-7")        // failed: left; alive or suspect: leaving, then alive (refutes) or left (dies)
//	err = node.ForceLeavePrune("web-7")   // the same, then erased from every member's list
//	node.Leave(5 * time.Second)
//	node.Shutdown()
//
// # Member status and force-leave
//
// A member's State is alive, suspect, leaving, dead (Consul's "failed")
// or left; SerfStatus maps suspect to alive, as Serf never sees
// memberlist's suspicion. Force-leave (Serf's handleNodeLeaveIntent)
// by the member's state:
//
//	state          force-leave                            -prune
//	alive          leaving; alive again if it refutes,    leaving, erased once the intent has
//	               left if it is declared dead            spread (kept if it refuted first)
//	suspect        leaving, suspicion kept; then the same as alive
//	leaving        unchanged                              erased as above
//	dead (failed)  left at once                           left, erased at once
//	left           nothing                                erased at once
//
// The intent is gossiped (with the suspicion, for a suspect; push-pull
// lists a suspected leaver as leaving with its first accuser, and the
// peer applies both) and sent to the member, so every member converges
// on the same state. A suspected holder, leaving or
// not, may be a restarted member's previous life: a claim of its name
// from a new address is no name conflict (conflict.go). An erased
// member that was alive after all is told when it next reaches anyone,
// refutes, and rejoins with its new incarnation; older alive news about
// it is dropped meanwhile (prune.go).
//
// Invariants worth knowing: only a member raises its own incarnation; a
// higher incarnation always wins, and at equal incarnation
// dead/left > suspect > leaving > alive, except that a leaving member
// stays leaving while suspected; a leaving member declared dead
// becomes left, not dead (Serf's rule: it meant to leave); the Core
// never blocks, allocates no goroutines and never panics on input — bad
// packets are counted in Stats and dropped.
package swim
