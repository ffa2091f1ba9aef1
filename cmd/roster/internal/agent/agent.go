package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"roster/httpapi"
	"roster/internal/fanout"
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
	mu        sync.Mutex
	started   bool
	stopped   bool
	lock      *dataDirLock
	httpLns   []net.Listener
	http      *httpapi.Server
	serveErrs chan error
	wg        sync.WaitGroup
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
	return &Agent{cfg: cfg, log: log, serveErrs: make(chan error, 8)}, nil
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
	return a.startHTTP()
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

// bindListeners binds every listener before any of them serves.
func (a *Agent) bindListeners() error {
	if a.cfg.Ports.HTTP == -1 {
		return nil
	}
	for _, ip := range a.cfg.ClientAddrs {
		addr := net.JoinHostPort(ip, strconv.Itoa(a.cfg.Ports.HTTP))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("-http-port: cannot listen on %s: %w", addr, err)
		}
		a.httpLns = append(a.httpLns, l)
	}
	return nil
}

func (a *Agent) startHTTP() error {
	if len(a.httpLns) == 0 {
		return nil
	}
	srv, err := httpapi.New(httpapi.Config{Agent: a, Logger: a.log, Pretty: a.cfg.Dev})
	if err != nil {
		return err
	}
	a.http = srv
	for _, l := range a.httpLns {
		a.wg.Add(1)
		go func(l net.Listener) {
			defer a.wg.Done()
			if err := srv.Serve(l); err != nil {
				a.serveErrs <- err
			}
		}(l)
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
	a.emit(Event{Kind: EventLeaving})
	return a.Shutdown(ctx)
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
	var errs []error
	if a.http != nil {
		if err := a.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping http: %w", err))
		}
	} else {
		for _, l := range a.httpLns {
			l.Close()
		}
	}
	a.wg.Wait()
	for _, l := range a.httpLns {
		a.emit(Event{Kind: EventStopped, Component: "http", Addr: l.Addr().String()})
	}
	a.lock.release()
	a.emit(Event{Kind: EventShutdown})
	a.events.Close()
	return errors.Join(errs...)
}
