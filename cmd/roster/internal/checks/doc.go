// Package checks runs the agent's health checks and reports their results
// into the agent's local state (package local), which anti-entropy then
// copies into the catalog.
//
// Reading order:
//
//   - status.go: statusFilter, the pure heart of a check: consecutive-result
//     thresholds SuccessBeforePassing, FailuresBeforeWarning and
//     FailuresBeforeCritical decide when a probe result is reported, so one
//     flaky probe does not flap a service in and out of DNS.
//   - probes.go: one probe per check kind. HTTP: 2xx passing, 429 warning,
//     anything else critical, output "HTTP GET <url>: 200 OK Output:
//     <body>" with the body cut to 4 KiB. TCP: a connection that opens is
//     passing ("TCP connect <addr>: Success"). Script (only with
//     EnableScriptChecks): exit 0 passing, 1 warning, else critical; the
//     command runs in its own process group, which a timeout kills whole.
//   - manager.go: Manager follows the local state's check definitions
//     (starting, stopping and restarting one runner goroutine per check,
//     each first run jittered over one interval), expires TTL checks
//     ("TTL expired") and sweeps every 30s for services whose checks stayed
//     critical past DeregisterCriticalServiceAfter.
//
// Time enters through Config.Clock and randomness through Config.Rand, so
// tests drive TTL expiry and reaping without sleeping.
package checks
