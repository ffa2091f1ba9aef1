package agent

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"roster/dnsserver"
)

// The DNS interface (:8600). Servers answer from their local catalog,
// stale reads allowed as Consul's DNS does by default. Client agents hold
// no catalog: they forward each question to a server of their datacenter
// (dns_forward.go), as Consul's clients do.

// dnsSockets are the DNS interface's pre-bound sockets, one pair per
// client address.
type dnsSockets struct {
	udp []net.PacketConn
	tcp []net.Listener
}

func (d *dnsSockets) close() {
	for _, c := range d.udp {
		c.Close()
	}
	for _, l := range d.tcp {
		l.Close()
	}
}

// bindDNS binds UDP and TCP on every client address. Port 0 takes the
// kernel's pick for the first address and that number for the rest
// (anyport.go).
func (a *Agent) bindDNS() error {
	if a.cfg.Ports.DNS == -1 {
		return nil
	}
	return bindAnyPort(a.cfg.Ports.DNS, func() error {
		socks, port, err := bindDNSSockets(a.cfg.ClientAddrs, a.cfg.Ports.DNS)
		if err == nil {
			a.dnsSocks, a.cfg.Ports.DNS = socks, port
		}
		return err
	})
}

// bindDNSSockets binds one attempt; on failure nothing stays bound.
func bindDNSSockets(ips []string, port int) (*dnsSockets, int, error) {
	socks := &dnsSockets{}
	for _, ip := range ips {
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			socks.close()
			return nil, 0, fmt.Errorf("-dns-port: cannot listen on %s (udp): %w", addr, err)
		}
		socks.udp = append(socks.udp, udp)
		port = udp.LocalAddr().(*net.UDPAddr).Port
		addr = net.JoinHostPort(ip, strconv.Itoa(port))
		tcp, err := net.Listen("tcp", addr)
		if err != nil {
			socks.close()
			return nil, 0, fmt.Errorf("-dns-port: cannot listen on %s (tcp): %w", addr, err)
		}
		socks.tcp = append(socks.tcp, tcp)
	}
	return socks, port, nil
}

// startDNS serves the bound DNS sockets. A server builds its DNS answerer
// even when its own port is disabled, because client agents and other
// datacenters ask it questions over RPC (DNS.Query).
func (a *Agent) startDNS() error {
	if a.dnsSocks == nil && a.srv == nil {
		return nil
	}
	cfg := dnsserver.DefaultConfig()
	cfg.Datacenter = a.cfg.Datacenter
	deps := dnsserver.Deps{Forwarder: a}
	if a.srv != nil {
		deps.View, deps.Staleness = a.srv.store, staleness{a.srv.view}
	}
	srv, err := dnsserver.New(cfg, deps)
	if err != nil {
		return err
	}
	a.dns = srv
	a.dnsLive.Store(srv)
	if a.dnsSocks == nil {
		return nil
	}
	for i := range a.dnsSocks.udp {
		if err := srv.Serve(a.dnsSocks.udp[i], a.dnsSocks.tcp[i]); err != nil {
			return err
		}
		a.emit(Event{Kind: EventServing, Component: "dns", Addr: a.dnsSocks.udp[i].LocalAddr().String()})
	}
	return nil
}

// stopDNS stops answering and closes the sockets.
func (a *Agent) stopDNS() error {
	var err error
	a.dnsLive.Store(nil)
	if a.dns != nil {
		err = a.dns.Close()
		if a.dnsSocks != nil {
			a.emit(Event{Kind: EventStopped, Component: "dns"})
		}
	}
	if a.dnsSocks != nil {
		a.dnsSocks.close()
	}
	return err
}

// staleness adapts the Raft view for dnsserver.
type staleness struct{ v *raftView }

func (s staleness) LastLeaderContact() time.Duration { return s.v.LastContact() }
