// Package raft implements the Raft consensus algorithm (Ongaro and
// Ousterhout, "In Search of an Understandable Consensus Algorithm", 2014,
// cited as Raft §N; and Ongaro's thesis "Consensus: Bridging Theory and
// Practice", 2014, cited as thesis §N) from scratch. roster's servers use it
// to replicate the catalog: every write becomes a log entry, and once a
// majority of servers store it, every server applies it to its FSM in the
// same order.
//
// # A tour, in reading order
//
// The package is split into a pure core, which is the algorithm, and a
// shell, which is the engineering around it.
//
// The core (no goroutines, clocks, disks or sockets; time arrives as Tick
// calls, randomness as a seeded *rand.Rand):
//
//   - message.go: the vocabulary. One Message envelope for every RPC of
//     Figure 2 (AppendEntries = MsgApp, RequestVote = MsgVote) plus
//     heartbeats, pre-votes and TimeoutNow; HardState (term and vote, the
//     state that must hit the disk before any answer); Server and
//     Configuration.
//   - log.go: the in-memory log with the log-matching check (Raft §5.3), the
//     election restriction (§5.4.1) and the conflict search behind fast
//     log repair.
//   - core.go: the Core state machine: Step(Message), Tick(), Propose() and
//     Ready(). Read Step first: it applies the term rules of §5.1, with the
//     two modern refinements (pre-vote never changes a term; a follower that
//     heard from a leader recently ignores vote requests, thesis §4.2.3),
//     then dispatches on role. Ready is the core's only output: hard state
//     and entries to persist, messages to send, entries now committed,
//     events.
//   - election.go: timeouts, pre-vote (thesis §9.6), RequestVote, counting
//     votes, and becoming leader with a no-op entry (§5.4.2, §8).
//   - progress.go and replication.go: how a leader tracks each follower
//     (nextIndex/matchIndex, probe vs. pipelined replicate state), sends
//     AppendEntries, repairs a diverged follower a whole term per round trip,
//     and advances the commit index only through entries of its own term
//     (the Figure 8 rule). Also the follower's side of AppendEntries and
//     check-quorum (thesis §6.2).
//   - readindex.go: linearizable reads without log writes (thesis §6.4),
//     confirmed by one heartbeat round shared by all concurrent readers;
//     one round is in flight at a time, and reads that arrive meanwhile
//     share the next. lease.go: optional leader lease reads (thesis
//     §6.4.1, Config.LeaseReads, off by default) that skip even that
//     round while a majority's heartbeat acknowledgement is younger than
//     an election timeout less a clock-drift bound.
//   - membership.go: single-server configuration changes (thesis §4.1) and
//     the two rules that keep them safe and live.
//   - transfer.go: leadership transfer with TimeoutNow (thesis §3.10).
//   - snapshot.go: log compaction and InstallSnapshot (Raft §7) as far as
//     the core is concerned: moving the log start behind a snapshot,
//     offering the snapshot to a follower whose next entry is gone, and a
//     follower's install, which is idempotent so a resent snapshot never
//     livelocks.
//
// The shell:
//
//   - node.go and node_api.go: Node owns a Core on one goroutine. Each loop
//     iteration takes one input and then whatever else is already waiting
//     (messages, Apply calls, reads, disk reports), proposes all Apply
//     calls of that burst as one batch, and handles the Ready: hand the
//     writes to the disk writer, send, apply. Committed entries go to the
//     FSM on a second goroutine (future.go) so a slow FSM never delays
//     heartbeats. The API (Apply, Barrier, ReadIndex, Leader, State,
//     Stats, LastContact, Subscribe, BootstrapCluster, Configuration,
//     Shutdown) reads a published copy of the state; node_membership.go
//     adds AddVoter, AddNonvoter, DemoteVoter and RemoveServer,
//     node_transfer.go LeadershipTransfer.
//   - disk_writer.go and node_disk.go: the write path (thesis §10.2.1).
//     A background goroutine owns the disk: it takes every write queued
//     since its last fsync and makes them durable in one bbolt
//     transaction (group commit), then reports the durable index. The
//     loop does not wait for it: a leader's AppendEntries leave at once,
//     so the leader writes its own log while its followers write theirs,
//     and its own copy counts toward commit only once the writer reports
//     it (Core.Persisted, CoreConfig.AsyncStorage). Answers and votes are
//     held until the writes before them are durable — Raft's
//     persist-before-respond rule, kept per message instead of per loop
//     iteration. A leader whose disk hangs for four election timeouts
//     steps down.
//   - node_linger.go: cohort merging. When a commit releases k commands
//     proposed here, the leader holds new proposals until k callers are
//     back (or one disk write's time, at most 1 ms, has passed), so that
//     callers who send their next command on return share one batch
//     instead of splitting into two that alternate, each waiting two
//     writes per command. A lone caller is never held.
//   - Pipelining (progress.go, rpc_transport.go, rpc_codec.go): a leader
//     keeps up to Config.MaxInflight AppendEntries in flight per follower
//     (flow control: a slow follower's window fills and the leader stops
//     sending to it until answers return) and falls back to one at a time
//     (probe) after a rejection. With a message in flight it pipelines
//     only full ones (CoreConfig.PipelineFullOnly): smaller batches wait
//     for the answer and go out together, because on a fast link with a
//     slow disk fewer, bigger messages win. It pays off only if the follower sees the
//     messages in order: net/rpc runs each call on its own goroutine, so
//     the transport's server codec hands each request to the node as it
//     is decoded, and its client codec hands each reply over the same
//     way. BenchmarkPipeline_Loopback compares depths 1 to 8,
//     BenchmarkThroughput_Loopback measures writes and ReadIndex reads
//     against the group-commit limit clients/(F+R).
//   - config.go: Config with the shipped timing (10 ms ticks, 50 ms
//     heartbeats, 300–600 ms election timeouts) and Validate.
//   - storage.go, wal_store.go, wal_format.go, wal_tail.go,
//     bolt_store.go, mem_store.go: LogStore and StableStore. WALStore,
//     what servers run on: an append-only log of checksummed records in
//     segment files, one append and one fdatasync per disk-writer
//     group; on open a torn last write is cut off, and damage that
//     whole records of a later write follow (only records restating
//     stored or older state, e.g. stale blocks, are not evidence; doubt
//     counts as damage, as cutting acknowledged records breaks safety)
//     or a missing segment is refused with what to do
//     (wal_crash_test.go and wal_tail_test.go crash-simulate this). A
//     segment's header (every stable key, written whole) ends with a
//     marker record, so damage inside a header is refused, not cut as a
//     torn write; stable records are at most 4 KiB, which bounds the
//     search. Each segment has a random salt that every record's CRC
//     covers (same framing), so bytes a client stores in a value, or
//     stale blocks of another segment, cannot pass (but by a 2^-32
//     guess) as a later write and make open refuse a torn one
//     (wal_salt_test.go); segments of the first, unsalted format are
//     read but not written to (wal_compat_test.go), so one after a
//     salted segment, or one whose records check under a salt (RSTRWAL2
//     is two bits from RSTRWAL1), is a damaged magic and refused: cut
//     back, it would drop the newest hard state (wal_magic_test.go
//     flips every header bit). An open writes on in a new segment
//     unless the newest is salted and holds only its marked header, so
//     restarts without writes add no files. A lone write waits for it
//     on the leader and a follower, so its one sync (where a bbolt
//     transaction syncs twice, data pages then meta page) is most of a
//     single client's latency. BoltStore (one bbolt file; data dirs of
//     earlier releases keep using it) and an in-memory one for tests
//     and -dev.
//   - transport.go, rpc_transport.go, mem_transport.go: Transport, the
//     net/rpc implementation (service "Raft": AppendEntries, RequestVote,
//     TimeoutNow; a reused connection per peer, per-call deadlines, an
//     injectable Dial so the rpc package can share port 8300), and
//     wire.go, rpc_codec.go: its codec, compact binary frames instead of
//     gob (a version byte, so a peer on another release is named and
//     dropped; malformed frames are counted, never fatal), bursts to one
//     peer in one write, entry data decoded without a copy;
//     BenchmarkNetTransport_AppendEntries reports its CPU per message; and
//     MemNetwork, an in-memory network whose faults (partition, isolate,
//     drop, delay, duplicate, reorder) come from internal/faults.
//   - snapshot_store.go: SnapshotStore, with FileSnapshotStore (one
//     directory per snapshot, written under a .tmp name and renamed into
//     place, SHA-256 checked on open, newest N kept) and MemSnapshotStore.
//   - snapshotter.go and node_snapshot.go: the applier asks the FSM for a
//     point-in-time snapshot once Config.SnapshotThreshold entries (or
//     SnapshotThresholdBytes) were applied since the last one and persists
//     it on its own goroutine; the raft loop then compacts the log keeping
//     TrailingLogs entries. Snapshots stream to followers in acknowledged
//     chunks (SnapshotTransport.CallSnapshot, Raft.InstallSnapshot over
//     net/rpc); a node starts from its newest intact snapshot and replays
//     the log after it.
//   - events.go: every transition is a typed Event; Node.Subscribe streams
//     them and tests dump them when an invariant breaks.
//
// # Tests as documentation
//
// testdata/*.txt are scenario scripts (election, split vote, log repair,
// Figure 8) run against cores step by step; their .golden transcripts show
// every message and transition. sim_test.go runs whole clusters of cores in
// virtual time, checking Election Safety, State Machine Safety and Leader
// Completeness on every step; chaos_test.go throws seeded crash/partition
// schedules at it. lab_test.go and regression_test.go do the same to real
// Nodes on the in-memory network; socket_test.go to Nodes on bbolt and TCP.
//
// # Not yet here
//
// Automatic promotion of caught-up nonvoters.
package raft
