// Package agent composes a roster agent out of the protocol packages and
// runs its lifecycle. It is the only place that knows every part; the parts
// know nothing of each other beyond DESIGN.md's import rules.
//
// A tour:
//
//   - config.go: Config, its documented defaults (Consul's ports and names)
//     and Validate, which names the offending flag or key.
//   - agent.go: New checks the config; Start locks the data dir, binds every
//     listener first (so a port in use fails before anything serves), then
//     starts the servers in a fixed order and reports each one as serving;
//     Shutdown stops them in reverse order. Leave is the graceful variant
//     that Consul runs on SIGINT.
//   - datadir.go: the data-dir lock (one agent per directory) and the
//     persisted node ID.
//   - events.go: the agent's own typed events (listener serving, stopped,
//     left), published on a fanout.Hub and logged with slog's fixed keys.
//   - self.go: what /v1/agent/self and /v1/agent/members report about this
//     agent.
package agent
