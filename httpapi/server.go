package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"roster/catalog"
)

// RPC makes one call to the servers: the agent routes it to its local
// rpc endpoints (on a server) or through its connection pool (on a client
// agent). method is an endpoint method name from rpc/structs.go
// ("KVS.Get"); args and reply are the matching pointer types. ctx ends
// with the HTTP request, so a client that hangs up abandons its blocking
// query.
type RPC interface {
	RPC(ctx context.Context, method string, args, reply any) error
}

// RPCFunc adapts a function to RPC.
type RPCFunc func(ctx context.Context, method string, args, reply any) error

// RPC calls f.
func (f RPCFunc) RPC(ctx context.Context, method string, args, reply any) error {
	return f(ctx, method, args, reply)
}

// Membership is the gossip side of /v1/agent/{join,leave,force-leave}.
type Membership interface {
	// Join contacts addrs and returns how many it joined (wan: the WAN pool).
	Join(addrs []string, wan bool) (int, error)
	// Leave leaves the cluster gracefully; the agent shuts down afterwards.
	Leave() error
	// ForceLeave marks a failed member as left (prune: forget it at once).
	ForceLeave(node string, prune, wan bool) error
}

// LocalIndex lets a server agent answer repeated hot reads without an
// RPC: when this server would answer the read itself (it leads, or the
// read is ?stale) and the cached answer's index is still the local
// catalog's index for the query, the cached bytes are current. The agent
// passes its *catalog.Store (Index) with its rpc.Cluster view of Raft
// (IsLeader, LeaderAddr, LastContact), e.g. struct{*catalog.Store; rpc.Cluster}.
type LocalIndex interface {
	// Index is the local catalog's index of w (catalog.Store.Index).
	Index(w catalog.Watch) uint64
	// IsLeader reports whether this server is the raft leader now.
	IsLeader() bool
	// LeaderAddr is the leader's address, "" while none is known.
	LeaderAddr() string
	// LastContact is how long ago this server heard from the leader.
	LastContact() time.Duration
	// Wait blocks until w's index exceeds minIndex or ctx ends, and
	// returns the index (catalog.Store.Wait). Blocking delta pulls wait
	// here, so a change wakes 10,000 of them without 10,000 RPCs.
	Wait(ctx context.Context, w catalog.Watch, minIndex uint64) (uint64, error)
}

// Defaults of Config's limits.
const (
	// DefaultMaxKVValueBytes is Consul's kv_max_value_size.
	DefaultMaxKVValueBytes = 512 * 1024
	// DefaultMaxTxnBytes is Consul's txn_max_req_len.
	DefaultMaxTxnBytes = 512 * 1024
	// DefaultMaxBodyBytes bounds every other request body (JSON).
	DefaultMaxBodyBytes = 1 << 20
)

// Config configures a Server. Zero values mean the documented defaults.
type Config struct {
	// Agent answers /v1/agent/* about the local agent. Required.
	Agent Agent
	// RPC carries every catalog, health, KV, session, txn, status,
	// operator, coordinate and roster request to the servers. When nil,
	// those routes answer 500 "No cluster leader" (an agent that has no
	// servers yet).
	RPC RPC
	// Local, on server agents, short-cuts hot reads answered from the
	// response cache (see LocalIndex). Optional: without it every read is
	// an RPC and only the encoding is cached.
	Local LocalIndex
	// Membership serves join/leave/force-leave; nil answers them with 500.
	Membership Membership
	// Events fires and lists user events (/v1/event/*); nil answers them
	// with 500.
	Events UserEvents
	// LocalState is the agent's own services and checks (/v1/agent/services,
	// checks, register, maintenance, health; agent_local.go); nil answers
	// them with 500.
	LocalState LocalState
	// Metrics feeds /v1/agent/metrics with the agent's counters (raft,
	// swim, rpc, catalog); the HTTP server adds its own. Optional.
	Metrics MetricsSource
	// NodeName and Datacenter are this agent's; they default sessions'
	// Node, ?near=_agent and which ?dc= is local. Default: Agent.Self().
	NodeName, Datacenter string

	// Logger receives request failures. Default: slog.Default().
	Logger *slog.Logger
	// Pretty indents every JSON response, as Consul's -dev mode does.
	Pretty bool

	// MaxKVValueBytes bounds a KV value (413 above). Default 512 KiB.
	MaxKVValueBytes int64
	// MaxTxnBytes bounds a /v1/txn body. Default 512 KiB.
	MaxTxnBytes int64
	// MaxBodyBytes bounds every other request body. Default 1 MiB.
	MaxBodyBytes int64

	// RateLimit is the sustained requests per second allowed per client
	// IP; above it requests get 429. 0 (the default) turns limiting off,
	// as Consul ships with no HTTP rate limit.
	RateLimit float64
	// RateBurst is how many requests a client may send at once before the
	// rate applies. Default: max(1, RateLimit).
	RateBurst int

	// CacheEntries is how many encoded responses the hot-read cache keeps
	// (one per query and index). Default 64; negative disables it.
	CacheEntries int

	// ReadHeaderTimeout bounds how long a client may take to send request
	// headers, so slow or stuck clients cannot pin connections. Default 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included. Default 60s.
	ReadTimeout time.Duration
	// WriteTimeout bounds a response, blocking included; it must exceed
	// the longest blocking query (10m plus jitter). Default 11m.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Default 90s.
	IdleTimeout time.Duration
}

// Validate reports the first missing or bad field.
func (c *Config) Validate() error {
	switch {
	case c.Agent == nil:
		return errors.New("httpapi: Config.Agent is required")
	case c.ReadHeaderTimeout < 0 || c.IdleTimeout < 0 || c.ReadTimeout < 0 || c.WriteTimeout < 0:
		return errors.New("httpapi: Config timeouts (ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout) must not be negative")
	case c.MaxKVValueBytes < 0 || c.MaxTxnBytes < 0 || c.MaxBodyBytes < 0:
		return errors.New("httpapi: Config.MaxKVValueBytes, MaxTxnBytes and MaxBodyBytes must not be negative (0 = default)")
	case c.RateLimit < 0 || c.RateBurst < 0:
		return fmt.Errorf("httpapi: Config.RateLimit (%g) and RateBurst (%d) must not be negative; 0 turns limiting off", c.RateLimit, c.RateBurst)
	}
	return nil
}

func (c *Config) withDefaults() Config {
	out := *c
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.NodeName == "" || out.Datacenter == "" {
		self := out.Agent.Self()
		out.NodeName = cmpOr(out.NodeName, self.Config.NodeName)
		out.Datacenter = cmpOr(out.Datacenter, self.Config.Datacenter)
	}
	out.MaxKVValueBytes = cmpOr(out.MaxKVValueBytes, DefaultMaxKVValueBytes)
	out.MaxTxnBytes = cmpOr(out.MaxTxnBytes, DefaultMaxTxnBytes)
	out.MaxBodyBytes = cmpOr(out.MaxBodyBytes, DefaultMaxBodyBytes)
	if out.RateBurst == 0 {
		out.RateBurst = max(1, int(out.RateLimit))
	}
	out.CacheEntries = cmpOr(out.CacheEntries, 64)
	out.ReadHeaderTimeout = cmpOr(out.ReadHeaderTimeout, 10*time.Second)
	out.ReadTimeout = cmpOr(out.ReadTimeout, 60*time.Second)
	out.WriteTimeout = cmpOr(out.WriteTimeout, 11*time.Minute)
	out.IdleTimeout = cmpOr(out.IdleTimeout, 90*time.Second)
	return out
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Server is the HTTP API server. Create it with New, run it with Serve.
type Server struct {
	cfg      Config
	router   *router
	http     *http.Server
	limiter  *rateLimiter
	cache    *responseCache
	flights  flights // cache fills in progress (cache.go)
	stats    *httpStats
	requests atomic.Uint64
	panics   atomic.Uint64
	// deltaWaiters counts blocking delta pulls in flight (wake-up jitter,
	// roster_endpoints.go).
	deltaWaiters atomic.Int64
}

// New validates cfg and builds the route table.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg.withDefaults(), stats: newHTTPStats()}
	s.limiter = newRateLimiter(s.cfg.RateLimit, s.cfg.RateBurst)
	s.cache = newResponseCache(s.cfg.CacheEntries)
	s.router = newRouter(append(s.routes(), s.agentLocalRoutes()...))
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// routes is the whole API surface, in one table so it reads as an index.
func (s *Server) routes() []route {
	get, put, del := []string{"GET"}, []string{"PUT"}, []string{"DELETE"}
	getPutDel := []string{"GET", "PUT", "DELETE"}
	return []route{
		{path: "/v1/agent/self", methods: get, handle: s.agentSelf},
		{path: "/v1/agent/members", methods: get, handle: s.agentMembers},
		{path: "/v1/agent/join/", methods: put, handle: s.agentJoin()},
		{path: "/v1/agent/leave", methods: put, handle: s.agentLeave()},
		{path: "/v1/agent/force-leave/", methods: put, handle: s.agentForceLeave()},
		{path: "/v1/agent/metrics", methods: get, handle: s.agentMetrics},

		{path: "/v1/kv/", methods: getPutDel, handle: s.kv},
		{path: "/v1/txn", methods: put, handle: s.txn},

		{path: "/v1/catalog/register", methods: put, handle: s.catalogRegister},
		{path: "/v1/catalog/deregister", methods: put, handle: s.catalogDeregister},
		{path: "/v1/catalog/datacenters", methods: get, handle: s.catalogDatacenters},
		{path: "/v1/catalog/nodes", methods: get, handle: s.catalogNodes},
		{path: "/v1/catalog/services", methods: get, handle: s.catalogServices},
		{path: "/v1/catalog/service/", methods: get, handle: s.catalogService},
		{path: "/v1/catalog/node/", methods: get, handle: s.catalogNode},
		{path: "/v1/catalog/node-services/", methods: get, handle: s.catalogNodeServices},

		{path: "/v1/health/node/", methods: get, handle: s.healthNode},
		{path: "/v1/health/checks/", methods: get, handle: s.healthChecks},
		{path: "/v1/health/service/", methods: get, handle: s.healthService},
		{path: "/v1/health/state/", methods: get, handle: s.healthState},

		{path: "/v1/session/create", methods: put, handle: s.sessionCreate},
		{path: "/v1/session/destroy/", methods: put, handle: s.sessionDestroy},
		{path: "/v1/session/renew/", methods: put, handle: s.sessionRenew},
		{path: "/v1/session/info/", methods: get, handle: s.sessionInfo},
		{path: "/v1/session/node/", methods: get, handle: s.sessionNode},
		{path: "/v1/session/list", methods: get, handle: s.sessionList},

		{path: "/v1/event/fire/", methods: put, handle: s.eventFire},
		{path: "/v1/event/list", methods: get, handle: s.eventList},

		{path: "/v1/status/leader", methods: get, handle: s.statusLeader},
		{path: "/v1/status/peers", methods: get, handle: s.statusPeers},
		{path: "/v1/operator/raft/configuration", methods: get, handle: s.raftConfiguration},
		{path: "/v1/operator/raft/peer", methods: del, handle: s.raftRemovePeer},
		{path: "/v1/operator/raft/transfer-leader", methods: []string{"POST", "PUT"}, handle: s.raftTransferLeader},
		{path: "/v1/snapshot", methods: []string{"GET", "PUT"}, handle: s.snapshot},
		{path: "/v1/operator/autopilot/configuration", methods: []string{"GET", "PUT"}, handle: s.autopilotConfiguration},
		{path: "/v1/operator/autopilot/health", methods: get, handle: s.autopilotHealth},
		{path: "/v1/operator/autopilot/state", methods: get, handle: s.autopilotState},
		{path: "/v1/coordinate/datacenters", methods: get, handle: s.coordinateDatacenters},
		{path: "/v1/coordinate/nodes", methods: get, handle: s.coordinateNodes},

		{path: "/v1/roster/registry", methods: get, handle: s.rosterRegistry},
		{path: "/v1/roster/registry/delta", methods: get, handle: s.rosterDelta},
	}
}

// Serve accepts connections on l until Shutdown. It returns nil after a
// clean shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.http.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("httpapi: serving on %s: %w", l.Addr(), err)
}

// Shutdown stops accepting, lets in-flight requests finish until ctx ends,
// then closes what is left. Blocking queries in flight end when their
// connections close.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.http.Shutdown(ctx); err != nil {
		s.http.Close()
		return err
	}
	return nil
}

// Requests is the number of requests served so far.
func (s *Server) Requests() uint64 { return s.requests.Load() }

// call makes an RPC, or fails as an agent without servers would.
func (s *Server) rpc(r *http.Request, method string, args, reply any) error {
	if s.cfg.RPC == nil {
		return errorf(http.StatusInternalServerError, "No cluster leader")
	}
	return s.cfg.RPC.RPC(r.Context(), method, args, reply)
}
