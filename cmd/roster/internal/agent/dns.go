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

// bindDNS binds UDP and TCP on every client address.
func (a *Agent) bindDNS() error {
	if a.cfg.Ports.DNS == -1 {
		return nil
	}
	a.dnsSocks = &dnsSockets{}
	for _, ip := range a.cfg.ClientAddrs {
		addr := net.JoinHostPort(ip, strconv.Itoa(a.cfg.Ports.DNS))
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			return fmt.Errorf("-dns-port: cannot listen on %s (udp): %w", addr, err)
		}
		a.dnsSocks.udp = append(a.dnsSocks.udp, udp)
		tcp, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("-dns-port: cannot listen on %s (tcp): %w", addr, err)
		}
		a.dnsSocks.tcp = append(a.dnsSocks.tcp, tcp)
	}
	return nil
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
