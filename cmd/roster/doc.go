// Command roster is the single roster binary: the agent (server or client)
// and the command-line tools that talk to it.
//
//	roster agent -dev                         a single in-memory server
//	roster agent -server -bootstrap-expect 3 -data-dir /var/lib/roster -join 10.0.0.1
//	roster version
//
// A tour:
//
//   - main.go: the subcommand table; `roster help` and `roster <cmd> -h`.
//   - agent_cmd.go: `roster agent` flags (Consul's names and defaults),
//     signal handling (SIGINT leaves gracefully, SIGTERM shuts down, a
//     second signal exits at once).
//   - configfile.go: -config-file / -config-dir, JSON with Consul's keys;
//     flags override files.
//   - configfile_local.go: services and checks in config files (Consul's
//     service, services, check, checks keys); validate_cmd.go checks files.
//   - httpclient.go: the small HTTP client every other command uses, with
//     Consul's common options: -http-addr (CONSUL_HTTP_ADDR,
//     ROSTER_HTTP_ADDR), -token/-token-file (CONSUL_HTTP_TOKEN), -datacenter
//     and -stale, applied to every request in one place.
//   - cluster_cmds.go: members, info, join, leave, force-leave, operator
//     raft list-peers|remove-peer|transfer-leader (output column for
//     column as Consul's CLI). autopilot_cmds.go: operator autopilot
//     get-config|set-config (a check-and-set, as Consul's);
//     autopilot_state_cmd.go: operator autopilot state (Consul's layout).
//   - snapshot_cmd.go: snapshot save|restore|inspect.
//   - lock_cmd.go, semaphore.go, lock_session.go: roster lock (Consul's
//     api.Lock and api.Semaphore key layout) and kv put -acquire/-release.
//   - kv_cmds.go, kv_io_cmds.go, catalog_cmds.go, event_cmd.go,
//     services_cmds.go: kv get|put|delete|export|import, catalog services|
//     nodes, event, keygen, services register|deregister, maint, reload.
//   - watch_cmd.go: roster watch, the incremental-pull client in action.
//   - dev_cluster_cmd.go: three servers in one process on 127.0.0.2-4.
//   - version.go: version, commit and build date, injected by `make build`.
//
// The tests run the real binary (main_test.go builds it once): process
// tests start dev agents and three-server clusters on loopback ports.
//
// Only this package reads flags and the environment (DESIGN.md rule 9);
// everything else takes a Config.
package main
