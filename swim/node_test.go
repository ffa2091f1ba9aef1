package swim

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"roster/internal/fanout"
	"roster/internal/testkit"
)

// fastConfig shortens every timer so real-time tests finish quickly.
func fastConfig(name string) Config {
	cfg := DefaultLANConfig()
	cfg.Name = name
	cfg.TickInterval = 5 * time.Millisecond
	cfg.ProbeInterval = 200 * time.Millisecond
	cfg.ProbeTimeout = 100 * time.Millisecond
	cfg.LateAckGrace = 100 * time.Millisecond
	cfg.GossipInterval = 20 * time.Millisecond
	cfg.PushPullInterval = time.Second
	cfg.ReconnectInterval = time.Second
	cfg.StreamTimeout = 2 * time.Second
	return cfg
}

// listenUDPTCP binds UDP and TCP on the same loopback port, retrying if
// another process takes the UDP half in between.
func listenUDPTCP(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err == nil {
			return pc, ln
		}
		ln.Close()
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return nil, nil
}

func startUDPNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	pc, ln := listenUDPTCP(t)
	n, err := NewUDP(cfg, pc, ln)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// agree returns nil once every node sees want for every name in states.
func agree(nodes []*Node, states map[string]State) error {
	for _, n := range nodes {
		seen := map[string]State{}
		for _, m := range n.Members() {
			seen[m.Name] = m.State
		}
		for name, want := range states {
			if seen[name] != want {
				return fmt.Errorf("%s sees %s as %v, want %v", n.cfg.Name, name, seen[name], want)
			}
		}
	}
	return nil
}

// TestUDP_FiveMembersConvergeAndDetectKill runs five shells on real UDP
// and TCP sockets on 127.0.0.1: they converge through Join, then a member
// that stops without a word is declared dead by all the others.
func TestUDP_FiveMembersConvergeAndDetectKill(t *testing.T) {
	var nodes []*Node
	var trace []Event
	for i := range 5 {
		cfg := fastConfig(fmt.Sprintf("u%d", i))
		cfg.Label = "test-cluster"
		n := startUDPNode(t, cfg)
		defer n.Shutdown()
		nodes = append(nodes, n)
	}
	obs := nodes[0].Subscribe(0)
	seed := nodes[0].LocalMember().AddrPort().String()
	for _, n := range nodes[1:] {
		if k, err := n.Join([]string{seed}); err != nil || k != 1 {
			t.Fatalf("join: %d, %v", k, err)
		}
	}
	all := map[string]State{}
	for i := range 5 {
		all[fmt.Sprintf("u%d", i)] = StateAlive
	}
	testkit.WaitFor(t, 10*time.Second, "all five alive everywhere", func() error { return agree(nodes, all) })

	nodes[4].Shutdown()
	live := nodes[:4]
	all["u4"] = StateDead
	defer func() {
		if t.Failed() {
			trace = drain(obs)
			t.Logf("u0's events:\n%s", eventsText(trace))
		}
	}()
	testkit.WaitFor(t, 20*time.Second, "u4 dead everywhere", func() error { return agree(live, all) })
	for _, e := range drain(obs) {
		if e.Kind == EventDead && e.Member.Name == "u4" && e.Member.SuspectedBy == "" {
			t.Errorf("dead verdict without its first accuser: %v", e)
		}
	}
}

// TestUDP_LeaveIsNotFailure checks a graceful leave is recorded as left.
func TestUDP_LeaveIsNotFailure(t *testing.T) {
	a := startUDPNode(t, fastConfig("a"))
	defer a.Shutdown()
	b := startUDPNode(t, fastConfig("b"))
	defer b.Shutdown()
	if _, err := b.Join([]string{a.LocalMember().AddrPort().String()}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "a sees b", func() error { return agree([]*Node{a}, map[string]State{"b": StateAlive}) })
	if err := b.Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	b.Shutdown()
	testkit.WaitFor(t, 10*time.Second, "a sees b left", func() error { return agree([]*Node{a}, map[string]State{"b": StateLeft}) })
	if got := StateLeft.SerfStatus(); got != SerfStatusLeft {
		t.Fatalf("left maps to serf status %d", got)
	}
}

// TestUDP_LabelsKeepClustersApart: a member of another cluster label
// cannot join, and its packets are counted as dropped.
func TestUDP_LabelsKeepClustersApart(t *testing.T) {
	ca := fastConfig("a")
	ca.Label = "blue"
	a := startUDPNode(t, ca)
	defer a.Shutdown()
	cb := fastConfig("b")
	cb.Label = "green"
	b := startUDPNode(t, cb)
	defer b.Shutdown()
	if k, err := b.Join([]string{a.LocalMember().AddrPort().String()}); err == nil || k != 0 {
		t.Fatalf("join across labels succeeded: %d, %v", k, err)
	}
	if len(a.Members()) != 1 {
		t.Fatalf("a learned members across labels: %v", a.Members())
	}
}

// TestMem_EncryptedClusterAndUserEvents runs shells on the in-memory
// network with AES-GCM: members join, tags and user events reach all,
// and a member with the wrong key is kept out.
func TestMem_EncryptedClusterAndUserEvents(t *testing.T) {
	net := NewMemNetwork(testkit.Seed(t))
	key, err := ParseKey("pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=")
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*Node
	for i := range 3 {
		cfg := fastConfig(fmt.Sprintf("m%d", i))
		cfg.SecretKey = key
		tr, err := net.Transport(netip.MustParseAddrPort(fmt.Sprintf("10.0.0.%d:8301", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		n, err := New(cfg, tr)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Shutdown()
		nodes = append(nodes, n)
	}
	obs := nodes[2].Subscribe(0)
	for _, n := range nodes[1:] {
		if _, err := n.Join([]string{"10.0.0.1:8301"}); err != nil {
			t.Fatal(err)
		}
	}
	alive := map[string]State{"m0": StateAlive, "m1": StateAlive, "m2": StateAlive}
	testkit.WaitFor(t, 10*time.Second, "encrypted cluster converges", func() error { return agree(nodes, alive) })
	if err := nodes[0].SetTags(map[string]string{"role": "server"}); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].UserEvent("deploy", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "tags and user event reach m2", func() error {
		var tagged bool
		for _, m := range nodes[2].Members() {
			tagged = tagged || (m.Name == "m0" && m.Tags["role"] == "server")
		}
		if !tagged {
			return fmt.Errorf("m2 has not seen m0's tags")
		}
		if nodes[2].Stats().UserEvents != 1 {
			return fmt.Errorf("m2 delivered %d user events", nodes[2].Stats().UserEvents)
		}
		return nil
	})
	var users int
	for _, e := range drain(obs) {
		if e.Kind == EventUser && e.User.Name == "deploy" && string(e.User.Payload) == "v2" {
			users++
		}
	}
	if users != 1 {
		t.Errorf("m2 published %d deploy events, want exactly 1", users)
	}

	bad := fastConfig("intruder")
	bad.SecretKey = make([]byte, 32)
	tr, _ := net.Transport(netip.MustParseAddrPort("10.0.0.9:8301"))
	intruder, err := New(bad, tr)
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Shutdown()
	if _, err := intruder.Join([]string{"10.0.0.1:8301"}); err == nil {
		t.Fatal("a member with the wrong key joined")
	}
	if nodes[0].Stats().DroppedCrypto == 0 {
		t.Fatal("the wrong key's push-pull was not counted as a crypto drop")
	}
}

// drain takes every event buffered in o without blocking.
func drain(o *fanout.Observer[Event]) []Event {
	var es []Event
	for range fanout.DefaultBuffer {
		select {
		case e, ok := <-o.C:
			if !ok {
				return es
			}
			es = append(es, e)
		default:
			return es
		}
	}
	return es
}

func eventsText(es []Event) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// TestPartition_MemNetworkIsolateAndHeal drives shells (not cores) over
// the in-memory network's fault verbs: an isolated member is declared
// dead by the rest, and after Heal a reconnect brings it back everywhere.
func TestPartition_MemNetworkIsolateAndHeal(t *testing.T) {
	mem := NewMemNetwork(testkit.Seed(t))
	var nodes []*Node
	names := map[string]State{}
	for i := range 4 {
		cfg := fastConfig(fmt.Sprintf("p%d", i))
		tr, err := mem.Transport(netip.MustParseAddrPort(fmt.Sprintf("10.0.1.%d:8301", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		n, err := New(cfg, tr)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Shutdown()
		nodes = append(nodes, n)
		names[cfg.Name] = StateAlive
	}
	obs := nodes[0].Subscribe(0)
	defer func() {
		if t.Failed() {
			t.Logf("p0's events:\n%s", eventsText(drain(obs)))
		}
	}()
	for _, n := range nodes[1:] {
		if _, err := n.Join([]string{"10.0.1.1:8301"}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitFor(t, 10*time.Second, "all alive", func() error { return agree(nodes, names) })
	mem.Isolate("10.0.1.4:8301")
	names["p3"] = StateDead
	testkit.WaitFor(t, 20*time.Second, "isolated p3 dead for the rest", func() error { return agree(nodes[:3], names) })
	mem.Heal()
	names["p3"] = StateAlive
	testkit.WaitFor(t, 30*time.Second, "p3 alive everywhere after heal", func() error { return agree(nodes, names) })
}
