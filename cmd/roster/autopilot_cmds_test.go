package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"roster/internal/testkit"
)

// operator autopilot set-config changes only the settings given, through
// a check-and-set, and get-config shows the result; a bad value fails
// naming the flag and changes nothing.
func TestCLI_AutopilotSetConfigChangesOnlyTheGivenSettings(t *testing.T) {
	addr := strings.TrimPrefix(startDevAgent(t).base, "http://")
	testkit.WaitFor(t, 10*time.Second, "set-config to apply", func() error {
		code, out, stderr := runRoster(t, "operator", "autopilot", "set-config", "-http-addr", addr,
			"-min-quorum", "2", "-cleanup-dead-servers=false", "-server-stabilization-time", "3s")
		if code != 0 || out != "Configuration updated!\n" {
			return fmt.Errorf("exit %d: %s%s", code, out, stderr)
		}
		return nil
	})
	code, _, stderr := runRoster(t, "operator", "autopilot", "set-config", "-http-addr", addr, "-last-contact-threshold", "soon")
	if code != 1 || !strings.Contains(stderr, "-last-contact-threshold") {
		t.Fatalf("bad duration: exit %d, stderr %q", code, stderr)
	}
	code, out, stderr := runRoster(t, "operator", "autopilot", "get-config", "-http-addr", addr)
	if code != 0 {
		t.Fatalf("get-config: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"CleanupDeadServers = false\n", "MinQuorum = 2\n", "ServerStabilizationTime = 3s\n",
		"LastContactThreshold = 200ms\n", "MaxTrailingLogs = 250\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("get-config lacks %q:\n%s", want, out)
		}
	}
}
