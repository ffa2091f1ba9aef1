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
//   - version.go: version, commit and build date, injected by `make build`.
//
// Only this package reads flags and the environment (DESIGN.md rule 9);
// everything else takes a Config.
package main
