package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"roster/internal/testkit"
)

// holdUntil is a child command that creates started, then exits 0 once
// release exists (or 9 after ~20s, so a broken test cannot hang).
func holdUntil(started, release string) string {
	return fmt.Sprintf(`touch %s; for i in $(seq 1 400); do [ -f %s ] && exit 0; sleep 0.05; done; exit 9`, started, release)
}

// startLock starts `roster lock` in the background.
func startLock(t *testing.T, addr string, args ...string) (*exec.Cmd, *testkit.LockedBuffer, chan int) {
	t.Helper()
	cmd := exec.Command(rosterBin, append([]string{"lock", "-http-addr", addr}, args...)...)
	out := new(testkit.LockedBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		cmd.Wait()
		done <- cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, out, done
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, "the child to create "+filepath.Base(path), func() error {
		_, err := os.Stat(path)
		return err
	})
}

func waitExit(t *testing.T, done chan int, out *testkit.LockedBuffer) int {
	t.Helper()
	select {
	case code := <-done:
		return code
	case <-time.After(15 * time.Second):
		t.Fatalf("roster lock still running; output:\n%s", out)
	}
	return -1
}

// The lock runs its child with the lock held, excludes a second holder
// (which times out), releases when the child exits and passes the
// child's exit code through.
func TestLock_ExcludesSecondHolderReleasesOnExitAndPassesExitCode(t *testing.T) {
	a := startDevAgent(t)
	addr := strings.TrimPrefix(a.base, "http://")
	dir := t.TempDir()
	started, release := filepath.Join(dir, "started"), filepath.Join(dir, "release")
	_, out, done := startLock(t, addr, "svc/leader", holdUntil(started, release))
	waitFile(t, started)
	code, _, stderr := runRoster(t, "lock", "-http-addr", addr, "-timeout", "300ms", "svc/leader", "true")
	if code != 1 || !strings.Contains(stderr, "Lock acquisition failed: timeout") {
		t.Fatalf("second holder: exit %d, stderr %q", code, stderr)
	}
	code, kv, _ := runRoster(t, "kv", "get", "-http-addr", addr, "-detailed", "svc/leader/.lock")
	if code != 0 || strings.Contains(kv, "Session     -") {
		t.Fatalf("lock key while held:\n%s", kv)
	}
	os.WriteFile(release, nil, 0o600)
	if code := waitExit(t, done, out); code != 0 {
		t.Fatalf("holder exited %d; output:\n%s", code, out)
	}
	code, _, stderr = runRoster(t, "lock", "-http-addr", addr, "-timeout", "5s", "svc/leader", "exit 7")
	if code != 7 {
		t.Fatalf("lock after release with a child exiting 7: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ = runRoster(t, "lock", "-http-addr", addr, "-child-exit-code", "svc/leader", "exit 7"); code != 2 {
		t.Fatalf("-child-exit-code: exit %d, want 2", code)
	}
	if code, out, _ := runRoster(t, "kv", "get", "-http-addr", addr, "-recurse", "svc/"); code != 0 || out != "" {
		t.Fatalf("keys left behind after the locks: %q", out)
	}
}

// With -n 2 two holders run at once and a third waits (times out).
func TestLock_SemaphoreAdmitsNHolders(t *testing.T) {
	a := startDevAgent(t)
	addr := strings.TrimPrefix(a.base, "http://")
	dir := t.TempDir()
	release := filepath.Join(dir, "release")
	var dones []chan int
	var outs []*testkit.LockedBuffer
	for i := range 2 {
		started := filepath.Join(dir, fmt.Sprint("started", i))
		_, out, done := startLock(t, addr, "-n", "2", "jobs", holdUntil(started, release))
		waitFile(t, started)
		dones, outs = append(dones, done), append(outs, out)
	}
	code, _, stderr := runRoster(t, "lock", "-http-addr", addr, "-n", "2", "-timeout", "300ms", "jobs", "true")
	if code != 1 || !strings.Contains(stderr, "timeout") {
		t.Fatalf("third holder of a 2-semaphore: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr = runRoster(t, "lock", "-http-addr", addr, "-n", "3", "-timeout", "10s", "jobs", "true"); code != 1 || !strings.Contains(stderr, "limit conflict") {
		t.Fatalf("a holder with another limit: exit %d, stderr %q", code, stderr)
	}
	os.WriteFile(release, nil, 0o600)
	for i, done := range dones {
		if code := waitExit(t, done, outs[i]); code != 0 {
			t.Fatalf("holder %d exited %d; output:\n%s", i, code, outs[i])
		}
	}
	if code, _, stderr = runRoster(t, "lock", "-http-addr", addr, "-n", "2", "-timeout", "5s", "jobs", "true"); code != 0 {
		t.Fatalf("holder after release: exit %d, stderr %q", code, stderr)
	}
}

// kv put -acquire/-release take and give back a key's lock.
func TestKVPut_AcquireAndReleaseWithASession(t *testing.T) {
	a := startDevAgent(t)
	addr := strings.TrimPrefix(a.base, "http://")
	req, _ := http.NewRequest("PUT", a.base+"/v1/session/create", strings.NewReader(`{"TTL":"30s"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	session := created.ID
	if session == "" {
		t.Fatalf("session create: %s", resp.Status)
	}
	code, out, stderr := runRoster(t, "kv", "put", "-http-addr", addr, "-acquire", "-session", session, "k", "v1")
	if code != 0 || out != "Success! Lock acquired on: k\n" {
		t.Fatalf("acquire: exit %d, %q %q", code, out, stderr)
	}
	if code, _, stderr = runRoster(t, "kv", "put", "-http-addr", addr, "-acquire", "k", "v2"); code != 1 || !strings.Contains(stderr, "Did not acquire") {
		t.Fatalf("acquire by another session: exit %d, stderr %q", code, stderr)
	}
	code, out, _ = runRoster(t, "kv", "get", "-http-addr", addr, "-detailed", "k")
	if code != 0 || !strings.Contains(out, session) || !strings.Contains(out, "LockIndex   1") {
		t.Fatalf("kv get -detailed after acquire:\n%s", out)
	}
	if code, out, _ = runRoster(t, "kv", "put", "-http-addr", addr, "-release", "-session", session, "k", "v3"); code != 0 || out != "Success! Lock released on: k\n" {
		t.Fatalf("release: exit %d, %q", code, out)
	}
	if code, _, stderr = runRoster(t, "kv", "put", "-http-addr", addr, "-release", "k"); code != 1 || !strings.Contains(stderr, "Missing -session") {
		t.Fatalf("release without -session: exit %d, %q", code, stderr)
	}
	if code, out, _ = runRoster(t, "kv", "get", "-http-addr", addr, "k"); code != 0 || out != "v3\n" {
		t.Fatalf("value after release: %q", out)
	}
}

// When the lock's session is destroyed behind its back, roster lock sees
// the lock lost, stops the child and exits 1.
func TestLock_LostLockStopsTheChild(t *testing.T) {
	a := startDevAgent(t)
	addr := strings.TrimPrefix(a.base, "http://")
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	_, out, done := startLock(t, addr, "svc/lost", holdUntil(started, filepath.Join(dir, "never")))
	waitFile(t, started)
	var sessions []struct{ ID, Name string }
	if err := getJSON(a.base, "/v1/session/list", &sessions); err != nil || len(sessions) != 1 {
		t.Fatalf("sessions %+v, %v", sessions, err)
	}
	req, _ := http.NewRequest("PUT", a.base+"/v1/session/destroy/"+sessions[0].ID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code := waitExit(t, done, out); code != 1 || !strings.Contains(out.String(), "Lock lost") {
		t.Fatalf("after the session was destroyed: exit %d, output:\n%s", code, out)
	}
}

// Only with -pass-stdin does the child read roster's standard input.
func TestLock_PassStdin(t *testing.T) {
	a := startDevAgent(t)
	addr := strings.TrimPrefix(a.base, "http://")
	for _, pass := range []bool{false, true} {
		args := []string{"lock", "-http-addr", addr, fmt.Sprintf("-pass-stdin=%t", pass), "stdin/test", "cat"}
		cmd := exec.Command(rosterBin, args...)
		cmd.Stdin = strings.NewReader("from-stdin")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("-pass-stdin=%t: %v", pass, err)
		}
		if got, want := string(out), map[bool]string{false: "", true: "from-stdin"}[pass]; got != want {
			t.Fatalf("-pass-stdin=%t: child read %q, want %q", pass, got, want)
		}
	}
}
