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
)

// Config configures a Server.
type Config struct {
	// Agent answers /v1/agent/* about the local agent. Required.
	Agent Agent
	// Logger receives request failures. Default: slog.Default().
	Logger *slog.Logger
	// Pretty indents every JSON response, as Consul's -dev mode does.
	Pretty bool
	// ReadHeaderTimeout bounds how long a client may take to send request
	// headers, so slow or stuck clients cannot pin connections. Default 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Default 90s.
	IdleTimeout time.Duration
}

// Validate reports the first missing or bad field.
func (c *Config) Validate() error {
	if c.Agent == nil {
		return errors.New("httpapi: Config.Agent is required")
	}
	if c.ReadHeaderTimeout < 0 || c.IdleTimeout < 0 {
		return errors.New("httpapi: Config.ReadHeaderTimeout and IdleTimeout must not be negative")
	}
	return nil
}

func (c *Config) withDefaults() Config {
	out := *c
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.ReadHeaderTimeout == 0 {
		out.ReadHeaderTimeout = 10 * time.Second
	}
	if out.IdleTimeout == 0 {
		out.IdleTimeout = 90 * time.Second
	}
	return out
}

// Server is the HTTP API server. Create it with New, run it with Serve.
type Server struct {
	cfg      Config
	router   *router
	http     *http.Server
	requests atomic.Uint64
	panics   atomic.Uint64
}

// New validates cfg and builds the route table.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg.withDefaults()}
	s.router = newRouter(s.routes())
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// routes is the whole API surface, in one table so it reads as an index.
func (s *Server) routes() []route {
	get := []string{"GET"}
	return []route{
		{path: "/v1/agent/self", methods: get, handle: s.agentSelf},
		{path: "/v1/agent/members", methods: get, handle: s.agentMembers},
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
// then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.http.Shutdown(ctx); err != nil {
		s.http.Close()
		return err
	}
	return nil
}

// Requests is the number of requests served so far.
func (s *Server) Requests() uint64 { return s.requests.Load() }
