// Package catalog is roster's replicated state: nodes, services, health
// checks, KV entries and sessions, with Consul's semantics, stamped with
// the raft index of every change so that clients can block until something
// they care about changes. It is the state machine raft applies committed
// commands to (raft.FSM), and it adds two things Consul lacks: a ring-buffer
// delta log of registry changes and a content hashcode of the registry, so
// that registry clients can pull only what changed and still prove they are
// in sync.
//
// # A tour, in reading order
//
//  1. types.go — the records, spelled as Consul's JSON (Node, NodeService
//     whose name field is Service, ServiceNode, HealthCheck, KVPair,
//     SessionEntry with LockDelay in nanoseconds, ServiceEntry).
//  2. command.go, codec.go — the commands (RegisterRequest,
//     DeregisterRequest, KVRequest, SessionRequest, TxnRequest,
//     CoordinateBatchRequest, TombstoneReapRequest) and their wire form: a
//     version byte, a type byte, a plain binary body. Decoding never panics
//     (fuzzed by FuzzDecodeCommand). Apply's decoder shares string maps
//     with equal encodings (mapIntern): agents re-send the same meta. It
//     decodes a registration into a reused request with strings borrowed
//     from the raft entry; the store copies only the records it stores,
//     each with its strings in one allocation (pack.go), so an unchanged
//     re-registration allocates nothing.
//  3. store.go — Store, Config and Apply: decode, run the command inside a
//     transaction, commit or roll back, stamp the index. Result is what the
//     proposing server gets back.
//  4. state.go — the tables and their derived indexes. Records are
//     copy-on-write: never changed in place once installed. That one
//     invariant is what makes snapshots cheap and reads safe. Derived data
//     per instance (its service record, its checks, its cached content as
//     the records it was built from, and its digests) lives in one slot per
//     key, allocated from a slab and indexed per node; each check's cell
//     in the checks table points at its slot and packs its status and
//     create index, so a status update finds everything with the one
//     lookup of the check (made once, by validation) and reads no old
//     record. checkrec.go: a check is stored in a compact form (its
//     strings packed in one allocation, its status a byte, its service's
//     ID, name and tags by pointer) and built into the public HealthCheck
//     only when a read hands it out.
//  5. tx.go — the write path every command takes: journal for rollback,
//     bookkeeping of what was touched, and at commit the registry changes
//     (which instances' content moved) that feed the delta log and hash.
//     An instance whose node and service did not change gets only its
//     health recomputed, from its slot.
//  6. register.go, kv.go, session.go, txn.go — Consul's rules for each
//     command, written as validation first, mutation second.
//     nodename.go: node names ignore case, as in Consul; a write that
//     changes a node under another case of its name gives it that case,
//     and everything stored under the old name moves with it, in the
//     same transaction (renameNode).
//     keytree.go is the ordered index of KV keys (a B-tree holding every
//     live or tombstoned key), so list, keys with a separator, delete-tree
//     and a prefix's watch index cost O(log n + m) for m keys under the
//     prefix instead of a scan of every key.
//  7. watch.go — blocking queries: Wait(ctx, Watch, index) on a table, a
//     service, a node, a KV prefix or key, built on one channel per topic,
//     closed by the commit that touches it (no polling; a change wakes only
//     its topic's waiters).
//  8. read.go — Reader and its parts: every read returns copies and the
//     index that Wait uses for the same data.
//  9. hash.go, delta.go, mirror.go — the registry hashcode (sum mod 2^256 of
//     one SHA-256 digest per instance, updated in O(1) per change), the
//     delta ring with its (From, To] ranges and its compact changes (an
//     update is a patch of the fields that moved), and the client-side
//     Mirror that applies deltas and verifies both. An instance's digest
//     has two levels: a content digest over the canonical encoding of all
//     but its health, then SHA-256 of that and the health. A health flip
//     hashes one block from the content digest kept in the slot and reads
//     none of the instance's records.
//  10. snapshot.go — raft snapshots: pointers copied under the lock, bytes
//     written without it; Restore rebuilds derived state and the hash.
//  11. events.go — every applied entry as an Event for observers.
//
// # Determinism
//
// Every server applies the same commands in the same order and must end in
// the same state, byte for byte (the property test checks snapshots). So
// Apply reads no clock and no randomness, and iterates maps only in sorted
// order where the order is visible (journal, delta log, snapshot). The
// proposer supplies anything non-deterministic: session IDs, and the
// decision to refuse a lock acquisition inside a lock-delay window
// (Store.LockDelayed, the one use of Config.Clock; see session.go). Session
// TTL timers live in the leader's loop, which proposes a destroy when one
// fires.
//
// # Blocking queries and delta pulls, end to end
//
// A Consul-style blocking read: data, idx := store.ServiceNodes(name, tags);
// if the client's ?index= is not below idx, Wait(ctx, WatchService(name),
// clientIndex) and read again. Report max(idx, 1) as X-Consul-Index.
//
// A delta pull: a client starts with Registry() (instances, Index, Hash),
// then repeatedly Wait(ctx, WatchRegistry(), index) and Since(index), which
// returns the changes in (index, To] with the hash at To, or ErrTruncated
// (HTTP 410) when the ring no longer reaches back — then one full pull.
// Both answers carry HashScheme, the number of the way Hash is computed
// (2: the two-level digests above); Mirror.Load and Apply first refuse
// another scheme, or none (a server older than the field), with
// ErrHashScheme, since no pull can reconcile two schemes: one side must be
// upgraded. Mirror.Apply then checks From against its index (a gap is
// caught before any content is compared) and its own incremental hash
// against Hash.
//
// # Measuring it (bench_test.go)
//
// The benchmarks run rounds and report medians, and the ones that compare
// sizes interleave them, so a busy machine disturbs every size alike; all
// of them give figures at -benchtime 1x.
//
//   - BenchmarkApplyRegister: raft entries holding encoded registrations
//     through Apply (decode, validate, apply, hash, delta log, indexes) into
//     a fresh store of 10k or 100k instances; ops/s (median round) and
//     cpu-ops/s (operations per second of process CPU time).
//   - BenchmarkHashUpdate: a health flip through the whole apply path in
//     registries of 1k, 10k and 100k instances; ns/update per size and
//     flatness (slowest size over fastest), and the same for the
//     hashcode's share of the flip (ns/hash, hash-flatness: the difference
//     between flips and the same flips with the hashcode left out, paired
//     slice by slice). The hash work is the same at every size and reads
//     only the slot's 65 bytes of health and digests, which the flip has
//     just brought in; what grows is the rest of the update's cache
//     misses: at 100k every instance an update meets is cold in the CPU
//     caches. The check's cell and the instance's slot keep those to the
//     check's lookup and one slot.
//   - BenchmarkHealthFlip: the same health flip at one size per
//     sub-benchmark, to profile (-cpuprofile) where an update's time grows:
//     at 100k it is the check's lookup and the slot and service it leads
//     to (validation), and GC marking a larger heap; the hash part is flat.
//   - BenchmarkKVPrefix: list, keys with a separator, watch index and
//     delete-tree on a 100-key prefix in stores of 1k and 100k keys.
//   - BenchmarkWatchers10k: 10,000 blocked waiters, one change; cold-wakes
//     (must be 0), bytes/waiter, heap-bytes/waiter and wake-µs.
//   - BenchmarkDeltaVsFull: JSON size of a full pull over a 10-change delta.
//
// # What is deliberately not here
//
// The ?filter= expression evaluator lives beside this code (filter*.go) and
// is applied by the HTTP layer to the copies Reader returns. ACLs,
// prepared queries and Connect are outside the catalog for now.
package catalog
