// Package local is the agent's own state: the services and checks that
// applications registered with this agent (PUT /v1/agent/service/register,
// /v1/agent/check/register, config files), and anti-entropy, which keeps
// the servers' catalog equal to it.
//
// In Consul's model the agent, not the catalog, is the source of truth for
// its node. The catalog on the servers is a replica that anyone may write
// to (PUT /v1/catalog/register), that a partition may leave stale, and
// that an operator may wipe; the agent repairs all of that on its next
// sync. (Consul API notes §10.1; Consul's agent/local and agent/ae.)
//
// Reading order:
//
//   - defs.go: what applications send. ServiceDefinition and
//     CheckDefinition are Consul's AgentServiceRegistration and
//     AgentCheckRegistration bodies, with Validate and the defaults
//     (check IDs service:<id> and service:<id>:<n>, status critical,
//     interval ≥ 1s, timeout 10s, DeregisterCriticalServiceAfter ≥ 1m).
//   - state.go: State, the registry of local services and checks. Every
//     entry has an inSync flag and a revision; removals leave tombstones
//     until the catalog has forgotten them. Check results arrive through
//     UpdateTTL (applications) and UpdateCheck (the runners in package
//     checks); a status change is synced at once, an output-only change is
//     deferred up to check_update_interval. Changed() is a channel closed
//     on every change, for HTTP blocking queries and the syncer.
//   - decode.go: decoding definitions in both of Consul's spellings
//     (CamelCase from the HTTP API, snake_case from config files); strict
//     for config files (unknown keys are named), lenient for HTTP bodies.
//   - config.go: LoadConfig, which makes the config files' services and
//     checks the current set at start and on SIGHUP.
//   - blocking.go: blocking waits on a service's content hash (?hash=)
//     and on the local index (?index=) for the agent endpoints.
//   - events.go: typed events (registrations, status changes, reaping,
//     syncs) through a fanout hub.
//   - maint.go: node and service maintenance mode (critical checks
//     _node_maintenance and _service_maintenance:<id>), the aggregated
//     status of AgentServiceChecksInfo, and the content hash used for
//     hash-based blocking of /v1/agent/service/<id>.
//   - persist.go: one JSON file per service and per check in the data
//     directory, written atomically (temp file, fsync, rename), reloaded by
//     New so registrations survive a restart.
//   - diff.go: the algorithm, with no I/O. updateSyncState compares the
//     catalog's view of the node with local state (entries unknown locally
//     become tombstones, except the leader-owned serfHealth check and
//     consul service; differing entries go out of sync); pendingOps lists
//     the catalog writes; markSynced records a write's success unless the
//     entry changed while the write was in flight.
//   - syncer.go: the shell. Syncer.Run does a full sync at start and every
//     ae interval (1m, ×ceil(log2(N) − log2(128) + 1) above 128 nodes, plus
//     a random stagger), a partial sync right after each change (coalesced
//     within PartialSyncMinGap), and retries after RetryInterval on
//     failure. It talks to the servers through the small RPC interface with
//     the method names and types of rpc/structs.go.
//
// Errors carry the HTTP status Consul answers them with (StatusCode) and
// Consul's messages, so the HTTP layer passes them through unchanged.
package local
