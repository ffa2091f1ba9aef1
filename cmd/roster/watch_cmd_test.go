package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"roster/internal/testkit"
)

// httpPut sends body to url with PUT and fails the test unless it gets 200.
func httpPut(t *testing.T, url, body string) {
	t.Helper()
	req, err := http.NewRequest("PUT", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT %s: %s", url, resp.Status)
	}
}

func catalogRegister(t *testing.T, base, node, addr string) {
	t.Helper()
	httpPut(t, base+"/v1/catalog/register", fmt.Sprintf(`{"Node":%q,"Address":%q,"Service":{"Service":"web","Port":80}}`, node, addr))
}

// roster watch prints the registry once, then each change as a delta, and
// reports on exit that it pulled the full registry only once.
func TestWatch_PrintsFullRegistryThenEachChangeByDelta(t *testing.T) {
	a := startDevAgent(t)
	defer stopAgent(t, a, syscall.SIGTERM)
	catalogRegister(t, a.base, "n1", "10.0.0.1")

	var out, errOut testkit.LockedBuffer
	w := exec.Command(rosterBin, "watch", "-service", "web", "-http-addr", strings.TrimPrefix(a.base, "http://"))
	w.Stdout, w.Stderr = &out, &errOut
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Process.Kill()
	testkit.WaitFor(t, 10*time.Second, "the full registry with n1", func() error {
		if !strings.Contains(out.String(), "full registry") || !strings.Contains(out.String(), "web/web on n1 10.0.0.1:80") {
			return fmt.Errorf("output so far:\n%s%s", out.String(), errOut.String())
		}
		return nil
	})
	catalogRegister(t, a.base, "n2", "10.0.0.2")
	testkit.WaitFor(t, 10*time.Second, "n2 to arrive as a delta", func() error {
		if !strings.Contains(out.String(), "instance-added web/web on n2 10.0.0.2:80") {
			return fmt.Errorf("output so far:\n%s", out.String())
		}
		return nil
	})
	w.Process.Signal(syscall.SIGINT)
	if err := w.Wait(); err != nil {
		t.Fatalf("watch exit: %v\n%s", err, errOut.String())
	}
	if s := errOut.String(); !strings.Contains(s, "1 full (0 fallbacks)") {
		t.Fatalf("watch counters: %q", s)
	}
}
