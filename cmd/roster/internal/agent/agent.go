package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"roster/dnsserver"
	"roster/httpapi"
	"roster/internal/fanout"
	"roster/rpc"
	"roster/swim"
)

// Agent is one roster agent: a server or a client. Create it with New,
// then Start; stop it with Leave (graceful) or Shutdown.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	events fanout.Hub[Event]

	// idMu guards cfg.NodeID and advertise, which Start settles and HTTP
	// handlers read. It is separate from mu because Shutdown holds mu while
	// waiting for in-flight requests that read the identity.
	idMu      sync.RWMutex
	advertise string

	// mu guards the lifecycle fields below.
	mu      sync.Mutex
	started bool
	stopped bool
	lock    *dataDirLock
	httpLns []net.Listener
	// httpQueues are the further sockets sharing the ports of httpLns
	// (httplisten.go); served and closed with them, never reported.
	httpQueues []net.Listener
	http       *httpapi.Server
	serveErrs  chan error
	wg         sync.WaitGroup // HTTP serve loops and pool watchers

	srv      *serverStack // nil on client agents
	dns      *dnsserver.Server
	dnsLive  atomic.Pointer[dnsserver.Server] // dns, for RPC goroutines (DNS.Query)
	dnsSocks *dnsSockets
	pool     *rpc.Pool
	router   rpc.Router

	// gossipMu guards lan and wan, which Start sets and HTTP handlers,
	// the forwarder and the leader read.
	gossipMu           sync.RWMutex
	lan, wan           *swim.Node
	lanSocks, wanSocks *gossipSockets
	lanWatch           *memberWatch

	stop       chan struct{}  // closed at shutdown: background loops end
	bg         sync.WaitGroup // bootstrap-expect wait, retry-join
	leaderDone chan struct{}  // closed when the leader watch has ended
	leaveReq   chan struct{}  // closed when a leave was asked for over HTTP
	leaveOnce  sync.Once

	// Owned by the leader routine, one term at a time.
	nonvoterSince map[string]time.Time
	// promoteEvery is the leader's current promote-pass interval in
	// nanoseconds (0 before the first term), for tests and debugging.
	promoteEvery atomic.Int64
	// autopilotRemoved and autopilotHeld count dead servers removed, and
	// removals held back by the quorum rules (autopilot.go).
	autopilotRemoved, autopilotHeld atomic.Uint64
	sessions                        atomic.Pointer[sessionTimers]
	// restored is signalled when a snapshot restore was applied here; the
	// leader loop then reconciles again (snapshot.go).
	restored chan struct{}

	clientServer clientServerIndex
	userEvents   *userEventLog

	// local is the agent's services, checks and anti-entropy (local_wiring.go).
	local atomic.Pointer[localAgent]
}

// New validates cfg and returns an agent ready to Start.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	a := &Agent{cfg: cfg, log: log, serveErrs: make(chan error, 8), stop: make(chan struct{}),
		leaveReq: make(chan struct{}), lanWatch: newMemberWatch(), nonvoterSince: map[string]time.Time{},
		restored: make(chan struct{}, 1)}
	a.router = gossipRouter{a: a}
	a.userEvents = newUserEventLog(a)
	return a, nil
}

// Subscribe returns an observer of the agent's lifecycle events.
func (a *Agent) Subscribe(buffer int) *fanout.Observer[Event] { return a.events.Subscribe(buffer) }

// Start brings the agent up in a fixed order: data-dir lock and node ID,
// then every listener is bound (so a port in use fails before anything
// serves), then each server starts and is reported as serving. On error
// everything already started is stopped again.
func (a *Agent) Start(ctx context.Context) (err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started {
		return errors.New("agent: Start called twice")
	}
	a.started = true
	defer func() {
		if err != nil {
			a.stopLocked(context.Background())
		}
	}()
	if err := a.prepareIdentity(); err != nil {
		return err
	}
	if err := a.bindListeners(); err != nil {
		return err
	}
	if err := a.startCluster(); err != nil {
		return err
	}
	if err := a.startDNS(); err != nil {
		return err
	}
	if err := a.startLocal(); err != nil {
		return err
	}
	if err := a.startHTTP(); err != nil {
		return err
	}
	return a.startJoins()
}

// startCluster starts the server stack (servers only), the gossip pools
// and the background routines that bootstrap Raft and lead.
func (a *Agent) startCluster() error {
	var err error
	if a.pool, err = rpc.NewPool(rpc.PoolConfig{MaxInFlightPerServer: maxCallsPerServer, Dial: a.dialFunc(), Logger: a.log}); err != nil {
		return err
	}
	if a.srv != nil {
		if err := a.startServer(); err != nil {
			return err
		}
	}
	if err := a.startGossip(); err != nil {
		return err
	}
	if a.srv == nil {
		a.goBackground(func() { a.rebalanceServers(a.stop) })
		return nil
	}
	switch {
	case a.cfg.Dev || a.cfg.Bootstrap:
		if err := a.bootstrapSelf(); err != nil {
			return fmt.Errorf("bootstrapping raft: %w", err)
		}
	case a.cfg.BootstrapExpect > 0:
		a.goBackground(func() { a.bootstrapExpectLoop(a.stop) })
	}
	a.leaderDone = make(chan struct{})
	go func() { defer close(a.leaderDone); a.leaderWatch(a.stop) }()
	return nil
}

// maxCallsPerServer bounds the pool's calls in flight to one server. It is
// well above the pool's default because blocking queries from the HTTP API
// hold a slot for their whole wait.
const maxCallsPerServer = 4096

func (a *Agent) goBackground(f func()) {
	a.bg.Add(1)
	go func() { defer a.bg.Done(); f() }()
}

// startGossip starts the LAN pool and, on servers, the WAN pool.
func (a *Agent) startGossip() error {
	lan, err := a.startPool(a.cfg.NodeName, false, a.lanSocks)
	a.lanSocks = nil // owned by the node now (closed by NewUDP on failure)
	if err != nil {
		return fmt.Errorf("-serf-lan-port: starting gossip: %w", err)
	}
	a.gossipMu.Lock()
	a.lan = lan
	a.gossipMu.Unlock()
	a.watchPool(lan, "lan", a.lanWatch)
	if a.wanSocks == nil {
		return nil
	}
	wan, err := a.startPool(a.cfg.NodeName+"."+a.cfg.Datacenter, true, a.wanSocks)
	a.wanSocks = nil
	if err != nil {
		return fmt.Errorf("-serf-wan-port: starting gossip: %w", err)
	}
	a.gossipMu.Lock()
	a.wan = wan
	a.gossipMu.Unlock()
	a.watchPool(wan, "wan", nil)
	return nil
}

// startJoins runs -join (an error fails the start, as in Consul) and
// starts -retry-join in the background.
func (a *Agent) startJoins() error {
	if len(a.cfg.StartJoin) > 0 {
		if _, err := a.Join(a.cfg.StartJoin, false); err != nil {
			return fmt.Errorf("-join: %w", err)
		}
	}
	if len(a.cfg.StartJoinWAN) > 0 {
		if _, err := a.Join(a.cfg.StartJoinWAN, true); err != nil {
			return fmt.Errorf("-join-wan: %w", err)
		}
	}
	if len(a.cfg.RetryJoin) > 0 {
		addrs := append([]string(nil), a.cfg.RetryJoin...)
		a.goBackground(func() { a.retryJoin(addrs, false, a.stop) })
	}
	return nil
}

// prepareIdentity locks the data dir and settles the node ID and the
// address this agent advertises.
func (a *Agent) prepareIdentity() error {
	a.idMu.Lock()
	defer a.idMu.Unlock()
	if !a.cfg.Dev {
		lock, err := lockDataDir(a.cfg.DataDir)
		if err != nil {
			return err
		}
		a.lock = lock
		if a.cfg.NodeID == "" {
			id, err := loadOrCreateNodeID(a.cfg.DataDir)
			if err != nil {
				return err
			}
			a.cfg.NodeID = id
		}
	}
	if a.cfg.NodeID == "" {
		a.cfg.NodeID = newUUID()
	}
	addr, err := advertiseAddr(a.cfg.AdvertiseAddr, a.cfg.BindAddr)
	if err != nil {
		return err
	}
	a.advertise = addr
	return nil
}

// bindListeners binds every listener before any of them serves: gossip
// (LAN, and WAN on servers), the server RPC port, then HTTP.
func (a *Agent) bindListeners() error {
	var err error
	if a.lanSocks, err = bindGossip("-serf-lan-port", a.cfg.BindAddr, a.cfg.Ports.SerfLAN); err != nil {
		return err
	}
	a.cfg.Ports.SerfLAN = a.lanSocks.port() // port 0 resolved (anyport.go)
	if a.cfg.Server && a.cfg.Ports.SerfWAN != -1 {
		if a.wanSocks, err = bindGossip("-serf-wan-port", a.cfg.BindAddr, a.cfg.Ports.SerfWAN); err != nil {
			return err
		}
		a.cfg.Ports.SerfWAN = a.wanSocks.port()
	}
	if a.cfg.Server {
		if err := a.bindServer(); err != nil {
			return err
		}
	}
	if err := a.bindDNS(); err != nil {
		return err
	}
	if a.cfg.Ports.HTTP == -1 {
		return nil
	}
	return bindAnyPort(a.cfg.Ports.HTTP, a.bindHTTP)
}

// bindHTTP binds the HTTP port on every client address. With port 0 the
// first address takes the kernel's pick and the others the same number
// (anyport.go); on failure nothing stays bound and the port stays 0.
func (a *Agent) bindHTTP() error {
	port := a.cfg.Ports.HTTP
	var lns, queues []net.Listener
	for _, ip := range a.cfg.ClientAddrs {
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		l, extra, err := listenHTTP(addr)
		if err != nil {
			closeAll(append(lns, queues...))
			return fmt.Errorf("-http-port: cannot listen on %s: %w", addr, err)
		}
		lns, queues = append(lns, l), append(queues, extra...)
		port = l.Addr().(*net.TCPAddr).Port
	}
	a.httpLns, a.httpQueues, a.cfg.Ports.HTTP = lns, queues, port
	return nil
}

func (a *Agent) startHTTP() error {
	if len(a.httpLns) == 0 {
		return nil
	}
	srv, err := httpapi.New(a.httpConfig())
	if err != nil {
		return err
	}
	a.http = srv
	for _, l := range append(a.httpQueues, a.httpLns...) {
		a.wg.Add(1)
		go func(l net.Listener) {
			defer a.wg.Done()
			if err := srv.Serve(l); err != nil {
				a.serveErrs <- err
			}
		}(l)
	}
	for _, l := range a.httpLns {
		a.emit(Event{Kind: EventServing, Component: "http", Addr: l.Addr().String()})
	}
	return nil
}

// HTTPAddrs returns the addresses the HTTP API listens on.
func (a *Agent) HTTPAddrs() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, len(a.httpLns))
	for i, l := range a.httpLns {
		out[i] = l.Addr().String()
	}
	return out
}

// Errors delivers errors from servers that stopped on their own; the
// process should shut down when one arrives.
func (a *Agent) Errors() <-chan error { return a.serveErrs }

// Leave leaves the cluster gracefully, then shuts down. This is what Consul
// does on SIGINT: peers learn at once that the node left instead of
// suspecting it failed.
func (a *Agent) Leave(ctx context.Context) error {
	err := a.leaveGossip()
	return errors.Join(err, a.Shutdown(ctx))
}

// LeaveRequested is closed when a leave was asked for over the HTTP API
// (/v1/agent/leave); the process should then call Shutdown.
func (a *Agent) LeaveRequested() <-chan struct{} { return a.leaveReq }

func (a *Agent) requestLeave() { a.leaveOnce.Do(func() { close(a.leaveReq) }) }

// leaveTimeout bounds the leadership hand-over of a graceful leave;
// leaveBroadcastTimeout bounds the wait for the gossip leave announcement
// to go out, as Serf's BroadcastTimeout (5 s) does in Consul. The wait
// ends as soon as the announcement is sent, so it only runs long when the
// host is starved or nobody answers.
const (
	leaveTimeout          = 500 * time.Millisecond
	leaveBroadcastTimeout = 5 * time.Second
)

// leaveGossip hands over Raft leadership if this server leads a cluster
// of several voters (the new leader then removes it from the
// configuration when it sees it leave), then announces the leave in the
// gossip pools.
func (a *Agent) leaveGossip() error {
	a.emit(Event{Kind: EventLeaving})
	if a.isLeader() {
		conf, _ := a.srv.raft.Configuration()
		if len(conf.Servers) > 1 {
			if err := a.srv.raft.LeadershipTransfer("", leaveTimeout).Error(); err != nil {
				a.log.Warn("leave: leadership transfer failed; the others will elect a new leader after a timeout",
					nodeAttr(a.cfg.NodeName), slog.String("error", err.Error()))
			}
		}
	}
	var errs []error
	for _, n := range []*swim.Node{a.wanNode(), a.lanNode()} {
		if n != nil {
			if err := n.Leave(leaveBroadcastTimeout); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Shutdown stops every component in the reverse of the start order. It is
// idempotent. Components still busy when ctx ends are closed forcefully.
func (a *Agent) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stopLocked(ctx)
}

func (a *Agent) stopLocked(ctx context.Context) error {
	if a.stopped {
		return nil
	}
	a.stopped = true
	close(a.stop)
	var errs []error
	if a.http != nil {
		if err := a.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping http: %w", err))
		}
	} else {
		closeAll(a.httpLns)
		closeAll(a.httpQueues)
	}
	for _, l := range a.httpLns {
		a.emit(Event{Kind: EventStopped, Component: "http", Addr: l.Addr().String()})
	}
	a.stopLocal()
	errs = append(errs, a.stopDNS(), a.stopCluster(ctx))
	a.wg.Wait()
	a.lock.release()
	a.emit(Event{Kind: EventShutdown})
	a.events.Close()
	return errors.Join(errs...)
}

// stopCluster stops, in order: the leader routine (before gossip, so it
// never reconciles an empty member list), the gossip pools, background
// loops, the server stack and the pool.
func (a *Agent) stopCluster(ctx context.Context) error {
	if a.srv != nil && a.srv.cancel != nil {
		a.srv.cancel() // ends forwarded calls and bootstrap probes
	}
	if a.leaderDone != nil {
		<-a.leaderDone
	}
	a.lanSocks.close()
	a.wanSocks.close()
	a.gossipMu.RLock()
	pools := []*swim.Node{a.wan, a.lan}
	a.gossipMu.RUnlock()
	for i, n := range pools {
		if n != nil {
			n.Shutdown()
			a.emit(Event{Kind: EventStopped, Component: [...]string{"serf_wan", "serf_lan"}[i]})
		}
	}
	// Background loops notice stop at their next step; a join blocked in a
	// dial is bounded by the gossip stream timeout, so it is not awaited
	// past ctx.
	bgDone := make(chan struct{})
	go func() { a.bg.Wait(); close(bgDone) }()
	select {
	case <-bgDone:
	case <-ctx.Done():
	}
	err := a.stopServer(ctx)
	if a.pool != nil {
		a.pool.Shutdown()
	}
	return err
}
