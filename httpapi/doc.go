// Package httpapi serves roster's HTTP API on :8500: Consul's /v1 paths,
// JSON shapes, status codes and X-Consul-* headers, so that the official Go
// client, the consul CLI and curl scripts work unchanged.
//
// A tour, in reading order:
//
//   - server.go: Server takes a pre-bound net.Listener (DESIGN.md rule 8),
//     serves until Shutdown, and reports through Serving() when it accepts.
//   - router.go: the route table. Each route names its path (exact, or a
//     prefix ending in "/" whose remainder is the argument, like Consul's
//     /v1/kv/<key>), the methods it allows and a handler returning a value
//     or an error. The router answers what Consul answers for everything
//     else: 404 "Invalid URL path" for unknown /v1 paths, 405 with an Allow
//     header for a wrong method, 200 with Allow for OPTIONS.
//   - respond.go: one place turns a handler's result into bytes: compact
//     JSON (indented with ?pretty), an empty 200 for nil, and plain-text
//     error bodies with the status an *Error carries.
//   - agent_endpoints.go: /v1/agent/* served from the local agent's view.
//
// The package never imports raft or swim (DESIGN.md import rules): what it
// needs from the agent it asks through the small Agent interface defined
// here, so tests can fake it.
package httpapi
