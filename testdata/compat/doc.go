// Package compat drives a real roster binary with the official Consul Go
// client (github.com/hashicorp/consul/api). It is its own module so that
// roster's go.mod never depends on Consul; `make test` runs it.
//
// Each test starts `roster agent -dev` (the binary it builds, or the one
// named by ROSTER_BIN) with every port 0, reads the ports the kernel
// picked from the agent's log, and checks that the client's calls decode
// and behave as they do against Consul.
package compat
