package agent

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"roster/httpapi"
	"roster/swim"
)

// Gossip: every agent is a member of its datacenter's LAN pool (serf-lan
// port, UDP probes plus TCP push-pull on the same port number); servers
// are also members of the WAN pool (serf-wan port) that links datacenters.
// The tags each member publishes are how agents find servers and how
// servers find each other for -bootstrap-expect, exactly as Consul's
// serf tags are.

// gossipSockets are the pre-bound sockets of one pool.
type gossipSockets struct {
	udp net.PacketConn
	tcp net.Listener
}

func (g *gossipSockets) close() {
	if g == nil {
		return
	}
	if g.udp != nil {
		g.udp.Close()
	}
	if g.tcp != nil {
		g.tcp.Close()
	}
}

// bindGossip binds TCP and UDP on the same port (TCP first: a port taken
// by another TCP listener is the common conflict and names the flag).
// Port 0 takes the kernel's pick (anyport.go).
func bindGossip(flagName, ip string, port int) (*gossipSockets, error) {
	var s *gossipSockets
	err := bindAnyPort(port, func() (err error) {
		s, err = bindGossipOnce(flagName, ip, port)
		return err
	})
	return s, err
}

// port is the port number the sockets are bound to.
func (g *gossipSockets) port() int { return g.udp.LocalAddr().(*net.UDPAddr).Port }

func bindGossipOnce(flagName, ip string, port int) (*gossipSockets, error) {
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot listen on %s (tcp): %w", flagName, addr, err)
	}
	udpAddr := net.JoinHostPort(ip, strconv.Itoa(tcp.Addr().(*net.TCPAddr).Port))
	udp, err := net.ListenPacket("udp", udpAddr)
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("%s: cannot listen on %s (udp): %w", flagName, udpAddr, err)
	}
	return &gossipSockets{udp: udp, tcp: tcp}, nil
}

// startPool starts one gossip pool on its sockets. The node owns the
// sockets from here on; on error they are closed.
func (a *Agent) startPool(name string, wan bool, socks *gossipSockets) (n *swim.Node, err error) {
	defer func() {
		if err != nil && n == nil {
			socks.close() // idempotent: NewUDP may have closed them already
		}
	}()
	cfg := swim.DefaultLANConfig()
	if wan {
		cfg = swim.DefaultWANConfig()
	}
	if a.cfg.GossipTuning != nil {
		a.cfg.GossipTuning(&cfg, wan)
	}
	cfg.Name = name
	cfg.Tags = a.tags()
	cfg.Logger = a.log
	port := socks.udp.LocalAddr().(*net.UDPAddr).Port
	ip, err := netip.ParseAddr(a.advertised())
	if err != nil {
		return nil, fmt.Errorf("-advertise: %q is not an IP address", a.advertised())
	}
	cfg.AdvertiseAddr = netip.AddrPortFrom(ip.Unmap(), uint16(port))
	if a.cfg.Encrypt != "" {
		if cfg.SecretKey, err = swim.ParseKey(a.cfg.Encrypt); err != nil {
			return nil, fmt.Errorf("-encrypt: %w", err)
		}
	}
	var udp net.PacketConn = socks.udp
	var tcp net.Listener = socks.tcp
	if f := a.cfg.Faults; f != nil {
		udp = &faultPacketConn{PacketConn: udp, self: a.cfg.NodeName, f: f}
		tcp = &faultListener{Listener: tcp, self: a.cfg.NodeName, f: f}
	}
	n, err = swim.NewUDP(cfg, udp, tcp)
	if err != nil {
		return nil, err
	}
	a.emit(Event{Kind: EventServing, Component: map[bool]string{false: "serf_lan", true: "serf_wan"}[wan], Addr: socks.udp.LocalAddr().String()})
	return n, nil
}

// memberWatch turns the LAN pool's events into log lines and wake-ups.
// Consumers (the leader's reconcile, the bootstrap-expect wait, the client
// server list) never read the events themselves: they re-read the current
// member list when woken, so a dropped event only delays them until the
// next one or their periodic pass.
type memberWatch struct {
	// mu guards changed and dirty.
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every member change
	dirty   map[string]bool
}

func newMemberWatch() *memberWatch {
	return &memberWatch{changed: make(chan struct{}), dirty: map[string]bool{}}
}

// wait returns a channel closed at the next change.
func (w *memberWatch) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

func (w *memberWatch) notify(member string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if member != "" {
		w.dirty[member] = true
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

// waitDirty is wait for the one reader of takeDirty (the leader loop): it
// returns an already closed channel while changed members are pending.
// A change that arrives while the reader is busy closes the channel the
// reader has not fetched yet, so with plain wait it would go unnoticed
// until the next change or the periodic full pass.
func (w *memberWatch) waitDirty() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.dirty) > 0 {
		return closedChan
	}
	return w.changed
}

// closedChan is always ready to receive.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// takeDirty returns and clears the members changed since the last call.
func (w *memberWatch) takeDirty() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.dirty))
	for n := range w.dirty {
		out = append(out, n)
	}
	clear(w.dirty)
	return out
}

// watchPool logs the pool's member events and wakes the watchers, until
// the pool shuts down and closes the observer.
func (a *Agent) watchPool(n *swim.Node, pool string, w *memberWatch) {
	obs := n.Subscribe(256)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for e := range obs.C {
			if e.Kind == swim.EventUser && e.User != nil && pool == "lan" {
				a.userEvents.deliver(e.User)
				continue
			}
			switch e.Kind {
			case swim.EventJoin, swim.EventAlive, swim.EventDead, swim.EventLeft, swim.EventReap, swim.EventUpdate:
				a.log.Info("member "+e.Kind.String(), slog.String("pool", pool), nodeAttr(a.cfg.NodeName),
					slog.String("member", e.Member.Name), slog.String("addr", e.Member.AddrPort().String()))
				if w != nil {
					w.notify(e.Member.Name)
				}
			case swim.EventConflict:
				a.logNameConflict(pool, e)
			}
		}
	}()
}

// logNameConflict reports two members claiming one node name. The member
// that yielded (Serf's losing side) stops gossiping in that pool, so its
// services stop being reachable through it: an operator has to rename it.
func (a *Agent) logNameConflict(pool string, e swim.Event) {
	attrs := []any{slog.String("pool", pool), nodeAttr(a.cfg.NodeName),
		slog.String("member", e.Member.Name), slog.String("other_addr", e.ConflictAddr.String()), slog.String("reported_by", e.From)}
	if e.Yielded {
		a.log.Error("node name conflict: another member holds this agent's name; this agent stopped gossiping in the pool. Give it a unique -node name and restart it", attrs...)
		return
	}
	a.log.Warn("node name conflict: a member at another address claims a name held here; it was told to yield", attrs...)
}

// toHTTPMember renders a swim member in Consul's AgentMember shape.
func toHTTPMember(m swim.Member) httpapi.Member {
	return httpapi.Member{
		Name:        m.Name,
		Addr:        m.Addr.String(),
		Port:        m.Port,
		Tags:        m.Tags,
		Status:      m.State.SerfStatus(),
		ProtocolMin: protocolMin, ProtocolMax: protocolMax, ProtocolCur: protocolCur,
		DelegateMin: delegateMin, DelegateMax: delegateMax, DelegateCur: delegateCur,
	}
}

// serverInfo is what a member's tags say about a server.
type serverInfo struct {
	Name       string
	ID         string
	Datacenter string
	RPCAddr    string // ip:server-port
	Expect     int
	Bootstrap  bool
	Status     swim.State
}

// parseServer reads a member's tags; ok is false for non-servers and for
// servers whose tags are incomplete (logged by the caller's context).
func parseServer(m swim.Member) (serverInfo, bool) {
	if m.Tags["role"] != "consul" {
		return serverInfo{}, false
	}
	port, err := strconv.Atoi(m.Tags["port"])
	if err != nil || port <= 0 || port > 65535 || m.Tags["id"] == "" {
		return serverInfo{}, false
	}
	expect, _ := strconv.Atoi(m.Tags["expect"])
	return serverInfo{
		Name: m.Name, ID: m.Tags["id"], Datacenter: m.Tags["dc"],
		RPCAddr: net.JoinHostPort(m.Addr.String(), strconv.Itoa(port)),
		Expect:  expect, Bootstrap: m.Tags["bootstrap"] == "1", Status: m.State,
	}, true
}

// aliveServers lists the alive (or merely suspect) servers of dc in
// members, sorted by name so that an index into the list is stable.
func aliveServers(members []swim.Member, dc string) []serverInfo {
	var out []serverInfo
	for _, m := range members {
		s, ok := parseServer(m)
		if ok && s.Datacenter == dc && (m.State == swim.StateAlive || m.State == swim.StateSuspect) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(x, y serverInfo) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// gossipRouter answers rpc.Router from the gossip pools: the local
// datacenter's servers from the LAN pool, others from the WAN pool.
type gossipRouter struct{ a *Agent }

func (r gossipRouter) Servers(dc string) []string {
	pool := r.a.lanNode()
	if dc != r.a.cfg.Datacenter {
		pool = r.a.wanNode()
	}
	if pool == nil {
		return nil
	}
	var out []string
	for _, s := range aliveServers(pool.Members(), dc) {
		out = append(out, s.RPCAddr)
	}
	return out
}

func (a *Agent) lanNode() *swim.Node {
	a.gossipMu.RLock()
	defer a.gossipMu.RUnlock()
	return a.lan
}

func (a *Agent) wanNode() *swim.Node {
	a.gossipMu.RLock()
	defer a.gossipMu.RUnlock()
	return a.wan
}

// retryJoin keeps trying addrs until one answers or the agent stops, as
// Consul's -retry-join does.
func (a *Agent) retryJoin(addrs []string, wan bool, stop <-chan struct{}) {
	interval := a.cfg.RetryJoinInterval
	for attempt := 1; ; attempt++ {
		n, err := a.Join(addrs, wan)
		if err == nil {
			a.log.Info("retry-join succeeded", nodeAttr(a.cfg.NodeName), slog.Int("joined", n), slog.Int("attempt", attempt))
			return
		}
		a.log.Warn("retry-join failed; will retry", nodeAttr(a.cfg.NodeName), slog.String("error", err.Error()), slog.Duration("interval", interval))
		t := time.NewTimer(interval)
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// withDefaultPort appends port to addresses given without one, as
// Consul's -join accepts a bare host.
func withDefaultPort(addrs []string, port int) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(a, strconv.Itoa(port))
		}
		out = append(out, a)
	}
	return out
}
