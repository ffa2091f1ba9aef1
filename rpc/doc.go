// Package rpc is how roster servers talk to each other and how agents talk
// to servers: one TCP listener (port 8300, as Consul) carrying net/rpc for
// the endpoints and, on the same port, Raft's transport.
//
// # Reading order
//
//  1. protocol.go: the first byte of every connection names its protocol
//     (ProtoRPC 0x01, ProtoRaft 0x02, ProtoSnapshot 0x03, reserved).
//     DialProtocol writes it; the raft package dials through it.
//
//  2. server.go: Server owns the listener. It reads the byte under a
//     handshake deadline, serves ProtoRPC itself with net/rpc and hands
//     other protocols to the handler registered with Handle. Unknown bytes,
//     silent connections and malformed frames are dropped and counted.
//
//     stream_listener.go turns one protocol back into a net.Listener
//     (Server.Handle(ProtoRaft, l.Handoff)), so Raft's transport takes a
//     listener and a dial func like any server and never sees the byte.
//
//  3. codec.go and batch_writer.go: net/rpc's gob codecs, rebuilt with a frame limit (a peer
//     cannot make us allocate a gigabyte by announcing one), a
//     malformed-input hook, and writes from concurrent calls coalesced
//     into fewer syscalls.
//
//  4. envelope.go: QueryOptions, QueryMeta, WriteRequest and WriteMeta,
//     embedded by every endpoint's arguments and replies. They carry what
//     Consul's ?dc, ?stale, ?consistent, ?index, ?wait, ?token, ?filter and
//     X-Consul-* headers need, and Consul's error strings ("No cluster
//     leader", "No path to datacenter") verbatim.
//
//  5. pool.go: the client side. One multiplexed connection per server,
//     limits on calls in flight per server (blocking queries apart, so
//     long watches cannot starve writes), deadlines enforced here (net/rpc
//     has no context), eviction of any connection that errs, idle reaping.
//     Writes get their RequestID here, in the caller's args, so a caller's
//     own retries are de-duplicated too.
//
//     pool_abandon.go: a call that times out is abandoned, not its
//     connection, so the other calls sharing it (minutes-long blocking
//     queries among them) carry on; a liveness probe on the same
//     connection evicts it if the server stopped answering.
//
//  6. forward.go: every endpoint starts with Forwarder.Forward, which
//     decides who answers (see Forwarding below; routeFor is the pure
//     decision). While there is no leader, or the leader cannot be
//     reached, it retries with jittered exponential backoff for up to
//     HoldTimeout (Consul's rpc_hold_timeout, 7s), then returns "No
//     cluster leader".
//
//     forward_batch.go: forwarded KV writes that arrive while
//     WriteBatchesInFlight (2) batches are on their way to a server leave
//     together as one KVS.ApplyBatch call (at most 1024 writes, 4 MiB) in
//     a compact encoding (forward_batch_codec.go); the leader proposes a
//     whole batch before waiting for it. A batch runs to the latest
//     deadline among its writes; each write stops waiting at its own.
//     Retries and request IDs stay per write.
//
//  7. dedup.go, dedup_snapshot.go: why retrying a write is safe. Each
//     write carries a RequestID; the FSM every server runs (DedupFSM, a
//     wrapper around the catalog's) applies an ID at most once (Raft
//     thesis §6.3) and forgets IDs by log time, identically on every
//     replica. The table and the inner FSM are snapshotted under one lock
//     with Apply, so a snapshot never holds a write without its ID; the
//     table's part is a view of its append-only chunks, so that lock is
//     held for O(chunks), and generated IDs are stored as 16 bytes.
//
//  8. blocking.go: Blocker.Query gives endpoints Consul's blocking queries
//     (wait for index > MinQueryIndex, up to 5m by default, 10m at most,
//     plus up to wait/16 jitter), ?consistent ReadIndex rounds and the
//     QueryMeta headers. Watches are channels closed on change.
//
//  9. status.go: the Status endpoint (Ping, Leader, Peers), the first real
//     endpoint and the pattern the others follow (see Writing an endpoint).
//
//  10. inproc.go: Server.Call, the in-process entry a server's own HTTP
//     API uses; inproc_direct.go calls the hottest methods (KVS.*,
//     Txn.Apply) through typed functions instead of net/rpc's reflective
//     dispatch. follower_read.go: ?consistent reads served on followers
//     after a batched Status.ReadIndex call to the leader (thesis §6.4),
//     one apply wait per batch.
//
// # Shutdown order
//
// Server.Shutdown first cancels Server.Context, then closes the listener
// and every connection, then waits for the handlers: net/rpc does not
// finish a connection until its running handlers return. Endpoints must
// therefore take Server.Context (e.ctx below) for Forward and
// Blocker.Query, or a parked blocking query holds Shutdown for its whole
// wait. Shut the Server down before the Pool its Forwarder uses: the
// cancelled context ends forwarded calls, then the pool closes its
// connections.
//
// # Forwarding
//
//	request                      answered by
//	?dc=<other>                  a random known server of that datacenter
//	write                        the leader (forwarded if needed)
//	read, default consistency    the leader (forwarded if needed)
//	read, ?consistent            the leader, after a ReadIndex round; a
//	                             catalog read on a follower is answered
//	                             there once it applied the leader's read
//	                             index (follower_read.go), else forwarded
//	read, ?stale                 this server (the leader if ?max_stale is exceeded)
//
// A server's own HTTP API calls its endpoints in-process (inproc.go,
// Server.Call): same dispatch and forwarding, no encoding, no pool slot.
//
// # Writing an endpoint
//
//	func (e *KVS) Get(args *KeyRequest, reply *IndexedDirEntries) error {
//		if done, err := e.fwd.Forward(e.ctx, "KVS.Get", args, args, reply); done {
//			return err
//		}
//		return e.blocker.Query(e.ctx, &args.QueryOptions, &reply.QueryMeta,
//			func() (uint64, <-chan struct{}, error) {
//				// read local state into reply; return its index and watch
//			})
//	}
//
// Writes embed WriteRequest, wrap their command with EncodeCommand(args.RequestID,
// now, cmd) before raft.Apply, and treat a Duplicate result as the first
// outcome. If raft refuses the Apply because this server lost leadership,
// return ErrNoLeader: the forwarding server then retries on the new leader,
// which is safe because of the RequestID. Arguments and replies travel as
// pointers (the pool recognises writes and blocking reads by the embedded
// envelope's pointer methods). A caller of Pool.Call for a blocking read
// sets its deadline from BlockingCallTimeout, or DefaultCallTimeout (60s)
// cuts a 5-minute wait short.
//
// # Seams
//
// Cluster (IsLeader, LeaderAddr, LastContact, ConsistentRead, Peers, and
// optionally ReadIndexCluster for follower reads) is the local Raft node
// seen through an adapter; Router lists the servers of
// each datacenter (LAN pool now, WAN pool later); Caller is the Pool. Tests
// fake all three with three in-process servers on loopback.
//
// # Wire format and cost
//
// net/rpc with gob over one TCP connection per server pair, calls
// pipelined on it. Profiles of BenchmarkRoundTrip showed the write(2)
// syscall per message dominating (about half of CPU) while gob's encode
// and decode were under a fifth, so batch_writer.go coalesces writes
// instead of replacing the codec. The one hot exception is forwarded KV
// writes (thousands a second under load): they travel batched, as one
// []byte that gob copies as a block (forward_batch.go).
package rpc
