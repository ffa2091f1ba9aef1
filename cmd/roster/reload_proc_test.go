package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"roster/internal/testkit"
)

// agentServices is the set of service IDs /v1/agent/services lists.
func agentServices(base string) (map[string]bool, error) {
	resp, err := http.Get(base + "/v1/agent/services")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var m map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for id := range m {
		out[id] = true
	}
	return out, nil
}

// SIGHUP re-reads the config directory: the log level changes in place
// (down: a successful reload's info line is not logged; up again: it is)
// and the services become the files' new set. The agent starts at info
// level, whose "serving" lines give the test its ports (port 0).
func TestProcess_SIGHUPReloadsLogLevelAndServices(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "agent.json")
	write := func(level string, services ...string) {
		var defs []string
		for _, s := range services {
			defs = append(defs, fmt.Sprintf(`{"name": %q, "port": 80}`, s))
		}
		body := fmt.Sprintf(`{"log_level": %q, "services": [%s]}`, level, strings.Join(defs, ","))
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("info", "web")
	a := startDevAgent(t, "-config-dir", dir)
	defer func() {
		if t.Failed() {
			t.Logf("agent stderr:\n%s", a.stderr)
		}
	}()
	waitServices := func(want ...string) {
		t.Helper()
		testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("agent services %v", want), func() error {
			got, err := agentServices(a.base)
			if err != nil {
				return err
			}
			if len(got) != len(want) {
				return fmt.Errorf("services %v", got)
			}
			for _, w := range want {
				if !got[w] {
					return fmt.Errorf("services %v lack %s", got, w)
				}
			}
			return nil
		})
	}
	waitLog := func(what, line string) {
		t.Helper()
		testkit.WaitFor(t, 5*time.Second, what, func() error {
			if !strings.Contains(a.stderr.String(), line) {
				return fmt.Errorf("no %q line yet", line)
			}
			return nil
		})
	}
	const reloaded = "reloaded services and checks" // logged at info level
	waitServices("web")
	write("error", "web", "api")
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitServices("web", "api")
	write("loud", "db")
	a.cmd.Process.Signal(syscall.SIGHUP)
	// Reloads run one at a time: once the failed one has logged, the one
	// before has logged its info line, unless the level hid it.
	waitLog("the failed reload's error line", "reload failed")
	waitServices("web", "api") // a bad file changes nothing
	if log := a.stderr.String(); strings.Contains(log, reloaded) {
		t.Fatalf("log_level error still logged the reload's info line:\n%s", log)
	}
	write("info", "web")
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitLog("the reload's info line", reloaded)
	waitServices("web")
}

// operator autopilot get-config shows the leader's settings, config-file
// values included.
func TestCLI_AutopilotGetConfigShowsTheConfiguredValues(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "ap.json")
	os.WriteFile(conf, []byte(`{"autopilot":{"cleanup_dead_servers":false,"min_quorum":2,"dead_server_grace_period":"45s","max_trailing_logs":300}}`), 0o600)
	addr := strings.TrimPrefix(startDevAgent(t, "-config-file", conf).base, "http://")
	var out string
	testkit.WaitFor(t, 10*time.Second, "get-config to answer", func() error {
		code, o, stderr := runRoster(t, "operator", "autopilot", "get-config", "-http-addr", addr)
		if code != 0 {
			return fmt.Errorf("exit %d: %s", code, stderr)
		}
		out = o
		return nil
	})
	for _, want := range []string{"CleanupDeadServers = false\n", "MinQuorum = 2\n", "DeadServerGracePeriod = 45s\n", "MaxTrailingLogs = 300\n", "LastContactThreshold = 200ms\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("get-config lacks %q:\n%s", want, out)
		}
	}
}
