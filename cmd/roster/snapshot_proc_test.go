package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"roster/internal/testkit"
)

// waitLeaderAll waits until every server names the same leader.
func waitLeaderAll(t *testing.T, procs []*serverProc) {
	t.Helper()
	testkit.WaitFor(t, 15*time.Second, "one leader named by every server", func() error {
		var first string
		for i, p := range procs {
			l, err := statusLeader(p.base())
			if err != nil || l == "" {
				return fmt.Errorf("%s: leader %q (%v)", p.name, l, err)
			}
			if i == 0 {
				first = l
			} else if l != first {
				return fmt.Errorf("%s names %s, %s names %s", procs[0].name, first, p.name, l)
			}
		}
		return nil
	})
}

// staleKV reads key from one server's own state (?stale); "" if absent.
func staleKV(base, key string) (string, error) {
	resp, err := http.Get(base + "/v1/kv/" + key + "?raw&stale")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		return string(b), nil
	case http.StatusNotFound:
		return "", nil
	}
	return "", fmt.Errorf("%s: %s", resp.Status, b)
}

// A snapshot saved from one server and restored through another puts the
// saved data back on all three servers: changed keys revert, deleted keys
// return, keys written after the save are gone.
func TestProcess_SnapshotSaveChangeRestoreOnThreeServers(t *testing.T) {
	procs := startServerProcs(t, 3)
	waitLeaderAll(t, procs)
	env := func(i int) []string { return []string{"CONSUL_HTTP_ADDR=" + procs[i].base()} }
	for _, kv := range [][2]string{{"app/a", "1"}, {"app/b", "2"}} {
		if code, _, stderr := runRosterEnv(t, env(0), "kv", "put", kv[0], kv[1]); code != 0 {
			t.Fatalf("kv put %s: %s", kv[0], stderr)
		}
	}
	file := filepath.Join(t.TempDir(), "backup.snap")
	code, out, stderr := runRosterEnv(t, env(1), "snapshot", "save", file)
	if code != 0 || !strings.HasPrefix(out, "Saved and verified snapshot to index ") {
		t.Fatalf("snapshot save: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	code, out, stderr = runRoster(t, "snapshot", "inspect", file)
	if code != 0 || !regexp.MustCompile(`(?m)^KV entries +2\n`).MatchString(out) || !regexp.MustCompile(`(?m)^Datacenter +dc1\n`).MatchString(out) {
		t.Fatalf("snapshot inspect: exit %d, stderr %q, output:\n%s", code, stderr, out)
	}
	runRosterEnv(t, env(0), "kv", "put", "app/a", "changed")
	runRosterEnv(t, env(0), "kv", "delete", "app/b")
	runRosterEnv(t, env(0), "kv", "put", "app/c", "new")

	code, out, stderr = runRosterEnv(t, env(2), "snapshot", "restore", file)
	if code != 0 || out != "Restored snapshot\n" {
		t.Fatalf("snapshot restore: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	want := map[string]string{"app/a": "1", "app/b": "2", "app/c": ""}
	testkit.WaitFor(t, 10*time.Second, "the saved keys on every server", func() error {
		for _, p := range procs {
			for k, v := range want {
				if got, err := staleKV(p.base(), k); err != nil || got != v {
					return fmt.Errorf("%s: %s = %q (%v), want %q", p.name, k, got, err, v)
				}
			}
		}
		return nil
	})
	// The cluster keeps working after a restore.
	if code, _, stderr := runRosterEnv(t, env(1), "kv", "put", "app/d", "after"); code != 0 {
		t.Fatalf("kv put after restore: %s", stderr)
	}
	checkBadSnapshotsRefused(t, env(0), file)
}

// A corrupt or foreign file is refused before anything changes.
func checkBadSnapshotsRefused(t *testing.T, env []string, good string) {
	t.Helper()
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bad := map[string][]byte{"truncated": b[:len(b)/2], "text": []byte("hello"), "empty": nil}
	for name, body := range bad {
		f := filepath.Join(dir, name)
		os.WriteFile(f, body, 0o600)
		if code, _, stderr := runRosterEnv(t, env, "snapshot", "restore", f); code != 1 || !strings.Contains(stderr, "Error restoring snapshot") {
			t.Errorf("restore of a %s file: exit %d, stderr %q", name, code, stderr)
		}
		if code, _, stderr := runRoster(t, "snapshot", "inspect", f); code != 1 || !strings.Contains(stderr, "Error inspecting snapshot") {
			t.Errorf("inspect of a %s file: exit %d, stderr %q", name, code, stderr)
		}
	}
}
