package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
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
// (an info line appears only once the level allows it) and the services
// become the files' new set.
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
	write("error", "web")
	p := testkit.FreePorts(t, 5)
	cmd := exec.Command(rosterBin, append(devArgs(p), "-config-dir", dir)...)
	stderr := new(testkit.LockedBuffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("agent stderr:\n%s", stderr)
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", p[0])
	waitServices := func(want ...string) {
		t.Helper()
		testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("agent services %v", want), func() error {
			got, err := agentServices(base)
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
	waitServices("web")
	if log := stderr.String(); strings.Contains(log, "level=INFO") {
		t.Fatalf("log_level error still logged info lines:\n%s", log)
	}
	write("info", "web", "api")
	cmd.Process.Signal(syscall.SIGHUP)
	waitServices("web", "api")
	testkit.WaitFor(t, 5*time.Second, "the reload's info line", func() error {
		if !strings.Contains(stderr.String(), "reloaded services and checks") {
			return fmt.Errorf("no info line yet")
		}
		return nil
	})
	write("loud", "db")
	cmd.Process.Signal(syscall.SIGHUP)
	testkit.WaitFor(t, 5*time.Second, "the failed reload's error line", func() error {
		if !strings.Contains(stderr.String(), "reload failed") {
			return fmt.Errorf("no error line yet")
		}
		return nil
	})
	waitServices("web", "api") // a bad file changes nothing
}

// operator autopilot get-config shows the leader's settings, config-file
// values included.
func TestCLI_AutopilotGetConfigShowsTheConfiguredValues(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "ap.json")
	os.WriteFile(conf, []byte(`{"autopilot":{"cleanup_dead_servers":false,"min_quorum":2,"dead_server_grace_period":"45s","max_trailing_logs":300}}`), 0o600)
	p := testkit.FreePorts(t, 5)
	cmd := exec.Command(rosterBin, append(devArgs(p), "-config-file", conf)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	addr := fmt.Sprintf("127.0.0.1:%d", p[0])
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
