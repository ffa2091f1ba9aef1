//go:build !linux

package main

import "os/exec"

// dieWithParent is Linux-only (Pdeathsig); elsewhere cleanup relies on the
// benchmark's own Cleanup.
func dieWithParent(*exec.Cmd) {}
