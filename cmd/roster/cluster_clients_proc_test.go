package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"roster/internal/testkit"
)

// startClientProc starts (or restarts, with the same ports and data dir)
// a client agent that joins the first server's LAN port.
func startClientProc(t *testing.T, p *serverProc, join *serverProc) {
	t.Helper()
	args := append([]string{"agent", "-node", p.name, "-bind", "127.0.0.1", "-data-dir", p.dataDir}, portArgs(p.ports)...)
	args = append(args, "-retry-join", fmt.Sprintf("127.0.0.1:%d", join.ports[3]), "-retry-interval", "100ms")
	p.cmd, p.done = exec.Command(rosterBin, args...), make(chan error, 1)
	p.stderr = new(testkit.LockedBuffer)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
}

func newClientProc(t *testing.T, name string, join *serverProc) *serverProc {
	t.Helper()
	dir, err := os.MkdirTemp("", "roster-proc-client-")
	if err != nil {
		t.Fatal(err)
	}
	// Named ports, unlike the servers' port 0: a client is restarted on
	// the same ports, and testkit's ports lie below the kernel's
	// ephemeral range, where no other process is handed them meanwhile.
	p := &serverProc{name: name, ports: testkit.FreePorts(t, 5), dataDir: dir}
	startClientProc(t, p, join)
	t.Cleanup(func() {
		stopProcs([]*serverProc{p})
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.name, p.stderr)
		}
	})
	return p
}

// getJSON decodes GET base+path into out.
func getJSON(base, path string, out any) error {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// onEveryServer polls until check holds on every server's HTTP API.
func onEveryServer(t *testing.T, servers []*serverProc, what string, check func(base string) error) {
	t.Helper()
	// A generous deadline: it bounds a hang, not the speed (gossip
	// detection and check intervals are seconds, and a starved host
	// stretches them).
	testkit.WaitFor(t, 45*time.Second, what+" on every server", func() error {
		for _, s := range servers {
			if err := check(s.base()); err != nil {
				return fmt.Errorf("%s: %v", s.name, err)
			}
		}
		return nil
	})
}

func passingWeb(want int) func(string) error {
	return func(base string) error {
		var entries []json.RawMessage
		if err := getJSON(base, "/v1/health/service/web?passing", &entries); err != nil {
			return err
		}
		if len(entries) != want {
			return fmt.Errorf("%d passing web instances, want %d", len(entries), want)
		}
		return nil
	}
}

func serfHealth(node, want string) func(string) error {
	return func(base string) error {
		var checks []struct{ CheckID, Status string }
		if err := getJSON(base, "/v1/health/node/"+node, &checks); err != nil {
			return err
		}
		for _, c := range checks {
			if c.CheckID == "serfHealth" && c.Status == want {
				return nil
			}
		}
		return fmt.Errorf("%s checks %+v, want serfHealth %s", node, checks, want)
	}
}

// Three servers and two clients, all real processes: a service registered
// on a client with an HTTP check is healthy through every server, turns
// critical when its endpoint stops, a SIGKILLed client turns critical by
// gossip, and the restarted client restores its service from its data dir.
func TestProcess_ThreeServersTwoClientsHealthAndCrashRecovery(t *testing.T) {
	servers := startServerProcs(t, 3)
	c1 := newClientProc(t, "proc-c1", servers[0])
	newClientProc(t, "proc-c2", servers[0])
	onEveryServer(t, servers, "both clients alive", func(base string) error {
		if err := serfHealth("proc-c1", "passing")(base); err != nil {
			return err
		}
		return serfHealth("proc-c2", "passing")(base)
	})

	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
	defer app.Close()
	reg := fmt.Sprintf(`{"Name":"web","Port":8080,"Check":{"HTTP":%q,"Interval":"1s","Timeout":"1s"}}`, app.URL)
	httpPut(t, c1.base()+"/v1/agent/service/register", reg)
	onEveryServer(t, servers, "web passing", passingWeb(1))

	app.Close() // the check's endpoint goes away
	onEveryServer(t, servers, "web critical", passingWeb(0))

	c1.cmd.Process.Kill()
	<-c1.done
	onEveryServer(t, servers, "proc-c1 failed by gossip", serfHealth("proc-c1", "critical"))

	startClientProc(t, c1, servers[1])
	onEveryServer(t, servers, "proc-c1 back", serfHealth("proc-c1", "passing"))
	onEveryServer(t, servers, "web restored from the client's data dir", func(base string) error {
		var nodes []struct{ Node, ServiceID string }
		if err := getJSON(base, "/v1/catalog/service/web", &nodes); err != nil {
			return err
		}
		if len(nodes) != 1 || nodes[0].Node != "proc-c1" {
			return fmt.Errorf("catalog web = %+v", nodes)
		}
		return nil
	})
}
