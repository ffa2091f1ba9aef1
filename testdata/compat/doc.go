// Package compat drives a real roster binary with the official Consul Go
// client (github.com/hashicorp/consul/api). It is its own module so that
// roster's go.mod never depends on Consul; `make test` runs it.
//
// Each test starts `roster agent -dev` on free loopback ports (or uses the
// binary named by ROSTER_BIN, as `make test` does) and checks that the
// client's calls decode and behave as they do against Consul.
package compat
