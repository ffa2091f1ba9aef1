package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/miekg/dns"

	"roster/dnsserver"
	"roster/rpc"
)

// DNS questions that the local catalog cannot answer travel over RPC, as
// Consul's do: a client agent (which holds no catalog) asks a server of
// its datacenter, and a question for another datacenter
// (web.service.dc2.consul) is asked of a random server there. The
// question and the answer cross the wire in DNS wire format, so the
// answering server applies exactly the rules it applies to its own
// clients; the asking agent then fits the reply to its client's UDP or
// TCP size limit.

// dnsForwardTimeout bounds one forwarded question, well under the usual
// resolver timeout (5s for glibc) so a client gets SERVFAIL, not silence.
const dnsForwardTimeout = 2 * time.Second

// DNSQueryRequest is the argument of the DNS.Query RPC.
type DNSQueryRequest struct {
	// Datacenter whose catalog should answer.
	Datacenter string
	// Msg is the question in DNS wire format.
	Msg []byte
	// Forwarded is set by a server that passes the question on to another
	// datacenter, so the receiver answers itself and never forwards again.
	Forwarded bool
}

// dnsEndpoint is the DNS.Query RPC endpoint, registered on servers.
type dnsEndpoint struct{ a *Agent }

// Query answers a forwarded DNS question from this server's catalog, or
// passes it on once to a server of the datacenter it names.
func (e *dnsEndpoint) Query(args *DNSQueryRequest, reply *[]byte) error {
	req := new(dns.Msg)
	if err := req.Unpack(args.Msg); err != nil {
		return fmt.Errorf("DNS.Query: malformed DNS message: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dnsForwardTimeout)
	defer cancel()
	var out *dns.Msg
	if args.Datacenter != e.a.cfg.Datacenter && !args.Forwarded {
		var err error
		if out, err = e.a.askDatacenter(ctx, args.Datacenter, req, true); err != nil {
			return err
		}
	} else {
		srv := e.a.dnsServer()
		if srv == nil {
			return errors.New("DNS.Query: this server is not answering DNS (it is starting or stopping)")
		}
		out = srv.Reply(ctx, req, dnsserver.TCP)
	}
	b, err := out.Pack()
	if err != nil {
		return fmt.Errorf("DNS.Query: packing the answer: %v", err)
	}
	*reply = b
	return nil
}

// ForwardDNS implements dnsserver.Forwarder: a client asks a server of its
// own datacenter (which forwards further for another datacenter); a server
// whose catalog is too stale asks its leader, whose catalog is current by
// definition, so a question makes at most two hops; a server asks a
// random server of another datacenter directly.
func (a *Agent) ForwardDNS(ctx context.Context, dc string, req *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, dnsForwardTimeout)
	defer cancel()
	switch {
	case a.srv == nil:
		return a.askVia(ctx, func(args *DNSQueryRequest, reply *[]byte) error {
			return a.RPC(ctx, "DNS.Query", args, reply)
		}, dc, req, false)
	case dc == a.cfg.Datacenter:
		leader := a.srv.view.LeaderAddr()
		if leader == "" {
			return nil, rpc.ErrNoLeader
		}
		return a.askVia(ctx, func(args *DNSQueryRequest, reply *[]byte) error {
			return a.pool.Call(ctx, leader, "DNS.Query", args, reply)
		}, dc, req, true)
	}
	return a.askDatacenter(ctx, dc, req, true)
}

// dnsServer is the agent's DNS server once it serves, else nil.
func (a *Agent) dnsServer() *dnsserver.Server { return a.dnsLive.Load() }

// askDatacenter sends req to a random known server of dc.
func (a *Agent) askDatacenter(ctx context.Context, dc string, req *dns.Msg, forwarded bool) (*dns.Msg, error) {
	servers := a.router.Servers(dc)
	if len(servers) == 0 {
		return nil, rpc.ErrNoDCPath
	}
	addr := servers[rand.IntN(len(servers))]
	return a.askVia(ctx, func(args *DNSQueryRequest, reply *[]byte) error {
		return a.pool.Call(ctx, addr, "DNS.Query", args, reply)
	}, dc, req, forwarded)
}

func (a *Agent) askVia(ctx context.Context, call func(*DNSQueryRequest, *[]byte) error, dc string, req *dns.Msg, forwarded bool) (*dns.Msg, error) {
	msg, err := req.Pack()
	if err != nil {
		return nil, err
	}
	var raw []byte
	if err := call(&DNSQueryRequest{Datacenter: dc, Msg: msg, Forwarded: forwarded}, &raw); err != nil {
		return nil, err
	}
	out := new(dns.Msg)
	if err := out.Unpack(raw); err != nil {
		return nil, fmt.Errorf("forwarded DNS answer from %s is malformed: %v", dc, err)
	}
	return out, nil
}
