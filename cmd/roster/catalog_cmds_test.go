package main

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"roster/internal/testkit"
)

func TestCatalogEventCmds_AgainstADevAgent(t *testing.T) {
	a := startDevAgent(t)
	addr := strings.TrimPrefix(a.base, "http://")
	code, out, errOut := runRoster(t, "services", "register", "-http-addr", addr, "-name", "web", "-port", "80", "-tag", "v2", "-tag", "v1")
	if code != 0 {
		t.Fatalf("register: exit %d, %q %q", code, out, errOut)
	}
	// Anti-entropy takes the agent's service to the catalog; poll for it.
	testkit.WaitFor(t, 10*time.Second, "web in `catalog services`", func() error {
		code, out, errOut = runRoster(t, "catalog", "services", "-http-addr", addr, "-tags")
		if code != 0 || !strings.Contains(out, "web") {
			return fmt.Errorf("exit %d, stdout %q stderr %q", code, out, errOut)
		}
		return nil
	})
	if !strings.Contains(out, "consul") || !regexp.MustCompile(`(?m)^web +v1,v2$`).MatchString(out) {
		t.Fatalf("catalog services -tags: %q", out)
	}
	if code, out, _ = runRoster(t, "catalog", "services", "-http-addr", addr, "-node", "proc-test"); code != 0 || !strings.Contains(out, "web\n") {
		t.Fatalf("catalog services -node: exit %d, %q", code, out)
	}
	if code, _, errOut = runRoster(t, "catalog", "services", "-http-addr", addr, "-node", "nosuchnode"); code != 0 || !strings.Contains(errOut, "No services match") {
		t.Fatalf("catalog services -node nosuchnode: exit %d, stderr %q", code, errOut)
	}

	code, out, _ = runRoster(t, "catalog", "nodes", "-http-addr", addr)
	if code != 0 || !regexp.MustCompile(`(?m)^Node +ID +Address +DC\nproc-test +[0-9a-f-]{8} +127\.0\.0\.1 +dc1$`).MatchString(out) {
		t.Fatalf("catalog nodes: exit %d, %q", code, out)
	}
	code, out, _ = runRoster(t, "catalog", "nodes", "-http-addr", addr, "-service", "web", "-detailed")
	if code != 0 || !strings.Contains(out, "TaggedAddresses") || !strings.Contains(out, "lan=127.0.0.1") {
		t.Fatalf("catalog nodes -service -detailed: exit %d, %q", code, out)
	}
	if code, _, errOut = runRoster(t, "catalog", "nodes", "-http-addr", addr, "-service", "nosuch"); code != 0 || !strings.Contains(errOut, "No nodes match") {
		t.Fatalf("catalog nodes -service nosuch: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ = runRoster(t, "catalog", "frobnicate"); code != 2 {
		t.Fatalf("catalog frobnicate: exit %d, want 2", code)
	}

	code, out, errOut = runRoster(t, "event", "-http-addr", addr, "-name", "deploy", "-node", "proc-.*", "v1.2")
	if code != 0 || !regexp.MustCompile(`^Event ID: [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n$`).MatchString(out) {
		t.Fatalf("event: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut = runRoster(t, "event", "-http-addr", addr); code != 1 || !strings.Contains(errOut, "Event name must be specified") {
		t.Fatalf("event without -name: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut = runRoster(t, "event", "-http-addr", addr, "-name", "x", "-node", "("); code != 1 || !strings.Contains(errOut, "node filter regexp") {
		t.Fatalf("event with a bad regexp: exit %d, stderr %q", code, errOut)
	}
}

func TestKeygen_PrintsAFreshBase64KeyOf32Bytes(t *testing.T) {
	seen := map[string]bool{}
	for range 2 {
		code, out, errOut := runRoster(t, "keygen")
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
		if code != 0 || err != nil || len(key) != 32 {
			t.Fatalf("keygen: exit %d, %q %q (%v, %d bytes)", code, out, errOut, err, len(key))
		}
		seen[out] = true
	}
	if len(seen) != 2 {
		t.Fatal("two keygen runs printed the same key")
	}
	if code, _, _ := runRoster(t, "keygen", "extra"); code != 1 {
		t.Fatalf("keygen extra: exit %d, want 1", code)
	}
}
