package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"roster/internal/testkit"
)

// testConfig is a dev-style config on port 0 everywhere: each listener
// binds the kernel's pick at Start, and a test reads the ports back with
// Agent.Ports. A port chosen free beforehand and released could be taken
// by any other process before the agent binds it (anyport.go).
func testConfig(t *testing.T) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ApplyDev()
	cfg.NodeName = "test-node"
	cfg.Ports = Ports{}
	cfg.Version, cfg.Revision = "0.0.0-test", "abc123"
	return cfg
}

func startAgent(t *testing.T, cfg Config) *Agent {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, a) })
	return a
}

func shutdown(t *testing.T, a *Agent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestAgent_DevServesSelf(t *testing.T) {
	a := startAgent(t, testConfig(t))
	resp, err := http.Get("http://" + a.HTTPAddrs()[0] + "/v1/agent/self")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var self map[string]map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&self); err != nil {
		t.Fatal(err)
	}
	if self["Config"]["NodeName"] != "test-node" || self["Config"]["Datacenter"] != "dc1" || self["Config"]["Server"] != true {
		t.Fatalf("Config = %v", self["Config"])
	}
	if self["Member"]["Addr"] != "127.0.0.1" {
		t.Fatalf("Member = %v", self["Member"])
	}
	tags, _ := self["Member"]["Tags"].(map[string]any)
	if tags["role"] != "consul" || tags["build"] != "0.0.0-test:abc123" {
		t.Fatalf("Member.Tags = %v", tags)
	}
}

func TestAgent_ReportsServingAndShutdownEvents(t *testing.T) {
	a, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	obs := a.Subscribe(16)
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	shutdown(t, a)
	var kinds []string
	for e := range obs.C { // closed by Shutdown
		kinds = append(kinds, string(e.Kind)+":"+e.Component)
	}
	want := "serving:rpc serving:serf_lan serving:serf_wan serving:dns serving:http " +
		"stopped:http stopped:dns stopped:serf_wan stopped:serf_lan stopped:rpc shutdown:"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
}

func TestAgent_PortInUseNamesTheFlag(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := testConfig(t)
	cfg.Ports.HTTP = l.Addr().(*net.TCPAddr).Port
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Start(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "-http-port: ") {
		t.Fatalf("Start error = %v, want one starting with -http-port", err)
	}
}

// Port 0 binds the kernel's pick, and the agent publishes the port it got
// wherever the configured one would go, so a process started with port 0
// is as reachable as one given numbers (anyport.go).
func TestAgent_PortZeroBindsKernelPicksAndPublishesThem(t *testing.T) {
	a, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	obs := a.Subscribe(16)
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, a) })
	p := a.Ports()
	served := map[string]string{}
	timeout := time.After(10 * time.Second)
	for len(served) < 5 {
		select {
		case e := <-obs.C:
			if e.Kind == EventServing {
				served[e.Component] = e.Addr
			}
		case <-timeout:
			t.Fatalf("serving events %v, want one per listener", served)
		}
	}
	for comp, port := range map[string]int{"http": p.HTTP, "dns": p.DNS, "rpc": p.Server, "serf_lan": p.SerfLAN, "serf_wan": p.SerfWAN} {
		if port == 0 || served[comp] != net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) {
			t.Errorf("%s serving on %q, published port %d", comp, served[comp], port)
		}
	}
	self := a.Self().Member
	if int(self.Port) != p.SerfLAN || self.Tags["port"] != strconv.Itoa(p.Server) || self.Tags["wan_join_port"] != strconv.Itoa(p.SerfWAN) {
		t.Errorf("member %+v, want port %d and tags port=%d wan_join_port=%d", self, p.SerfLAN, p.Server, p.SerfWAN)
	}
	// Gossip and DNS hold the number for UDP as well as TCP.
	for _, port := range []int{p.SerfLAN, p.SerfWAN, p.DNS} {
		if c, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			c.Close()
			t.Errorf("udp port %d is free: the agent bound only tcp there", port)
		}
	}
}

func TestAgent_DataDirLockedAgainstSecondAgent(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t)
	cfg.Dev, cfg.DataDir = false, dir
	startAgent(t, cfg)

	cfg2 := testConfig(t)
	cfg2.Dev, cfg2.DataDir = false, dir
	b, err := New(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "in use by another roster agent") {
		t.Fatalf("second agent on the same data dir: %v", err)
	}
}

func TestAgent_NodeIDPersistsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t)
	cfg.Dev, cfg.DataDir = false, dir
	a := startAgent(t, cfg)
	first := a.Self().Config.NodeID
	shutdown(t, a)

	b := startAgent(t, cfg) // on new ports: cfg still says 0
	if got := b.Self().Config.NodeID; got != first || !uuidRE.MatchString(got) {
		t.Fatalf("node ID after restart %q, want %q (a UUID)", got, first)
	}
}

func TestAgent_CorruptNodeIDIsRefusedWithAdvice(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, nodeIDFileName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Dev, cfg.DataDir = false, dir
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "fix or delete the file") {
		t.Fatalf("Start = %v, want refusal with advice", err)
	}
}

func TestConfig_ValidateNamesTheFlag(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"bootstrap-expect without server", func(c *Config) { c.Server = false; c.Dev = false; c.DataDir = "/x"; c.BootstrapExpect = 3 }, "-bootstrap-expect requires -server"},
		{"server without data dir", func(c *Config) { c.Dev = false }, "-data-dir is required"},
		{"bootstrap-expect in dev", func(c *Config) { c.BootstrapExpect = 3 }, "-bootstrap-expect cannot be used with -dev"},
		{"bad datacenter", func(c *Config) { c.Datacenter = "DC 1" }, "-datacenter"},
		{"bad bind", func(c *Config) { c.BindAddr = "nope" }, "-bind"},
		{"bad port", func(c *Config) { c.Ports.Server = 70000 }, "-server-port"},
		{"negative port", func(c *Config) { c.Ports.HTTP = -2 }, "-http-port"},
		{"disabled serf lan", func(c *Config) { c.Ports.SerfLAN = -1 }, "-serf-lan-port"},
		{"no node name", func(c *Config) { c.NodeName = "" }, "-node"},
		{"bad gossip key", func(c *Config) { c.Encrypt = "c2hvcnQ=" }, "-encrypt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			tc.modify(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	ok := testConfig(t)
	ok.Ports.DNS = -1
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
}

func TestAgent_DevLeadsAtOnceAndSelfReportsRaftAndSerfStats(t *testing.T) {
	a := startAgent(t, testConfig(t))
	if !a.isLeader() {
		t.Fatal("a -dev agent is not leader when Start returns")
	}
	resp, err := http.Get("http://" + a.HTTPAddrs()[0] + "/v1/agent/self")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var self struct{ Stats map[string]map[string]string }
	if err := json.NewDecoder(resp.Body).Decode(&self); err != nil {
		t.Fatal(err)
	}
	if self.Stats["raft"]["state"] != "Leader" || self.Stats["raft"]["num_peers"] != "0" {
		t.Fatalf("raft stats %v", self.Stats["raft"])
	}
	if self.Stats["serf_lan"]["members"] != "1" || self.Stats["consul"]["leader"] != "true" {
		t.Fatalf("serf_lan %v, consul %v", self.Stats["serf_lan"], self.Stats["consul"])
	}
	ms := a.Members(false)
	if len(ms) != 1 || ms[0].Name != "test-node" || ms[0].Status != 1 || ms[0].Tags["role"] != "consul" {
		t.Fatalf("members %+v", ms)
	}
	if wan := a.Members(true); len(wan) != 1 || wan[0].Name != "test-node.dc1" {
		t.Fatalf("wan members %+v", wan)
	}
}

func TestAgent_MetricsIncludeRaftGossipAndCatalog(t *testing.T) {
	a := startAgent(t, testConfig(t))
	names := map[string]float64{}
	for _, m := range a.Metrics() {
		names[m.Name] = m.Value
	}
	for _, want := range []string{"roster.raft.leader", "roster.serf.lan.members", "roster.serf.lan.refutations", "roster.serf.lan.missed_nacks", "roster.serf.wan.name_conflicts", "roster.catalog.index", "roster.rpc.pool.calls"} {
		if _, ok := names[want]; !ok {
			t.Fatalf("metrics lack %s: %v", want, names)
		}
	}
	if names["roster.raft.leader"] != 1 {
		t.Fatalf("a -dev agent reports roster.raft.leader = %v", names["roster.raft.leader"])
	}
}

func TestAgent_DevAnswersConsulServiceOverDNS(t *testing.T) {
	a := startAgent(t, testConfig(t))
	c := new(dns.Client)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Ports().DNS))
	testkit.WaitFor(t, 5*time.Second, "consul.service.consul to name the server", func() error {
		r, _, err := c.Exchange(new(dns.Msg).SetQuestion("consul.service.consul.", dns.TypeA), addr)
		if err != nil {
			return err
		}
		if len(r.Answer) != 1 {
			return fmt.Errorf("answers %v", r.Answer)
		}
		if a, ok := r.Answer[0].(*dns.A); !ok || a.A.String() != "127.0.0.1" {
			return fmt.Errorf("answer %v", r.Answer[0])
		}
		return nil
	})
}
