package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"roster/rpc"
)

// How the HTTP API reaches the servers (httpapi.RPC):
//
//   - On a server the call goes to this server's endpoints in-process
//     (rpc.Server.Call): the same endpoint → Forwarder → leader path as a
//     request arriving from another agent, without encoding, a loopback
//     round trip or a pool slot, so a server's HTTP clients (parked
//     blocking queries included) never compete with its forwarded calls
//     for the pool's per-server limits.
//   - On a client it goes through the pool to one server of the local
//     datacenter, picked from the LAN pool's member tags. The agent sticks
//     to that server and moves to the next one when a call fails in
//     transport (rpc.TransportError), as Consul's client does.
//
// The pool ends a call that outlives its context by closing the shared
// connection (net/rpc cannot cancel one call), and an in-process call
// cannot be cancelled at all once its endpoint runs. An HTTP client
// hanging up on a blocking query must not do that to everyone else's
// calls, and a caller stopping (anti-entropy at shutdown) must not wait
// out a forwarder's hold timeout, so the call runs on its own goroutine
// under a detached context with its own deadline, and only the caller
// returns early.

// errNoServers is Consul's client error when it knows no server.
var errNoServers = errors.New("No known Consul servers")

// maxReadCall bounds one read: the longest blocking wait plus its jitter
// plus a retry budget. Writes are bounded by maxWriteCall.
const (
	maxReadCall  = rpc.MaxQueryTime + rpc.MaxQueryTime/rpc.JitterFraction + 30*time.Second
	maxWriteCall = 90 * time.Second
)

// RPC implements httpapi.RPC.
//
// One exception to the goroutine above: on a server, a call that cannot
// block for long (not a blocking query) from a caller without a deadline
// of its own (an HTTP request) runs on the caller's goroutine. Such a
// caller waits for the answer anyway, the endpoint's own bounds (hold and
// apply timeouts, Server.Context at shutdown) end the call, and the extra
// goroutine, its stack growth and two hand-offs were a measurable share of
// a KV request's CPU and latency.
func (a *Agent) RPC(ctx context.Context, method string, args, reply any) error {
	if srv := a.localRPC(); srv != nil && !rpc.IsBlockingQuery(args) {
		if _, bounded := ctx.Deadline(); !bounded {
			return srv.Call(ctx, method, args, reply)
		}
	}
	timeout := maxWriteCall
	if info, ok := args.(rpc.Info); ok && info.IsRead() {
		timeout = maxReadCall
	}
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- a.rpcOnce(callCtx, method, args, reply)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rpcOnce sends one call, rotating over the known servers on a client.
func (a *Agent) rpcOnce(ctx context.Context, method string, args, reply any) error {
	if srv := a.localRPC(); srv != nil {
		return srv.Call(ctx, method, args, reply)
	}
	servers := a.router.Servers(a.cfg.Datacenter)
	if len(servers) == 0 {
		return errNoServers
	}
	var errs []error
	for range len(servers) {
		i := int(a.clientServer.Load() % uint64(len(servers)))
		err := a.pool.Call(ctx, servers[i], method, args, reply)
		var te *rpc.TransportError
		if err == nil || !errors.As(err, &te) || ctx.Err() != nil {
			return err
		}
		errs = append(errs, err)
		a.clientServer.Add(1)
		a.log.Warn("rpc to server failed; trying the next one", nodeAttr(a.cfg.NodeName),
			slog.String("server", servers[i]), slog.String("error", err.Error()))
	}
	return fmt.Errorf("rpc %s: every known server failed: %w", method, errors.Join(errs...))
}

// localRPC is this server's RPC server, nil on a client (or on a server
// whose stack failed to start, which never serves HTTP).
func (a *Agent) localRPC() *rpc.Server {
	if a.srv == nil {
		return nil
	}
	return a.srv.rpcSrv
}

// membership is the agent seen as httpapi.Membership (a separate type
// because Agent.Leave takes a context and shuts down synchronously).
type membership struct{ a *Agent }

// Join joins the LAN pool (or, on servers, the WAN pool).
func (m membership) Join(addrs []string, wan bool) (int, error) { return m.a.Join(addrs, wan) }

// Leave leaves the gossip pools gracefully, then asks the process to shut
// down (LeaveRequested); the HTTP reply goes out first.
func (m membership) Leave() error {
	err := m.a.leaveGossip()
	m.a.requestLeave()
	return err
}

// Join contacts addrs (gossip addresses, host:port) in the LAN pool or,
// with wan, the WAN pool.
func (a *Agent) Join(addrs []string, wan bool) (int, error) {
	pool := a.lanNode()
	if wan {
		pool = a.wanNode()
		if pool == nil {
			return 0, errors.New("join -wan: only servers are members of the WAN pool")
		}
	}
	if pool == nil {
		return 0, errors.New("join: the agent is not running")
	}
	return pool.Join(withDefaultPort(addrs, map[bool]int{false: DefaultSerfLANPort, true: DefaultSerfWANPort}[wan]))
}

// clientServerIndex is the client's sticky server choice.
type clientServerIndex = atomic.Uint64

// rebalanceServers moves a client to a random server every
// ServerRebalanceInterval (plus up to half of it in jitter), so that
// clients started together, or piled onto the survivors of a server
// failure, spread out again over the servers, as Consul's clients do.
func (a *Agent) rebalanceServers(stop <-chan struct{}) {
	for {
		wait := a.cfg.ServerRebalanceInterval + rand.N(a.cfg.ServerRebalanceInterval/2+1)
		t := time.NewTimer(wait)
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		}
		if n := len(a.router.Servers(a.cfg.Datacenter)); n > 1 {
			a.clientServer.Store(rand.Uint64N(uint64(n)))
		}
	}
}
