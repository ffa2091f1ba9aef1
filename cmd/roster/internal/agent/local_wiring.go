package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"roster/cmd/roster/internal/checks"
	"roster/cmd/roster/internal/local"
	"roster/httpapi"
	"roster/raft"
)

// The agent's own services and checks (Consul API notes §10.1): a
// local.State that /v1/agent/* and the config files write to, a
// checks.Manager that runs the health checks into it, and a local.Syncer
// (anti-entropy) that copies it into the catalog through the agent's RPC
// path, the same one the HTTP API uses, so client agents forward to a
// server and servers call their own endpoints.
//
// Start order: cluster (RPC works), then local state, then HTTP (which
// serves it). Shutdown runs the other way: HTTP stops first so no request
// writes to a state whose runners are gone, then the checks and the
// syncer, then the cluster the syncer was talking to.

// LocalConfig configures the agent's local services and checks. Zero
// values take the documented defaults.
type LocalConfig struct {
	// Services and Checks come from the config files (`service`,
	// `services`, `check`, `checks`); they are the config-defined set at
	// start and on ReloadLocal.
	Services []local.ServiceDefinition
	Checks   []local.CheckDefinition
	// EnableScriptChecks allows checks that run commands
	// (-enable-local-script-checks / -enable-script-checks). Off by default.
	EnableScriptChecks bool
	// SyncInterval is anti-entropy's full-sync base interval (Consul's
	// ae_interval). Default 1m.
	SyncInterval time.Duration
	// SyncRetryInterval is the wait after a failed sync. Default 15s.
	SyncRetryInterval time.Duration
	// CheckUpdateInterval defers output-only check changes (Consul's
	// check_update_interval). Default 5m; negative disables the deferral.
	CheckUpdateInterval time.Duration
	// CheckReapInterval is how often services critical past their
	// DeregisterCriticalServiceAfter are removed. Default 30s.
	CheckReapInterval time.Duration
	// Reload re-reads the config files' services and checks for Reload
	// (SIGHUP, PUT /v1/agent/reload). nil: there is nothing to reload.
	Reload func() ([]local.ServiceDefinition, []local.CheckDefinition, error)
}

// localAgent is the running local state and its two routines.
type localAgent struct {
	state  *local.State
	syncer *local.Syncer
	checks *checks.Manager
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startLocal builds the local state (reloading what a previous run
// persisted in the data dir), applies the config-file definitions and
// starts the check runners, anti-entropy and the server watch that
// triggers a full sync when servers appear.
func (a *Agent) startLocal() error {
	st, err := a.newLocalState()
	if err != nil {
		return err
	}
	lc := a.cfg.Local
	if err := st.LoadConfig(lc.Services, lc.Checks); err != nil {
		return fmt.Errorf("services and checks of the config files: %w", err)
	}
	syncer, err := local.NewSyncer(st, a, local.SyncConfig{
		Interval: lc.SyncInterval, RetryInterval: lc.SyncRetryInterval,
		ClusterSize: func() int { return len(a.Members(false)) }, Logger: a.log,
	})
	if err != nil {
		return err
	}
	mgr, err := checks.New(st, checks.Config{EnableScriptChecks: lc.EnableScriptChecks, ReapInterval: lc.CheckReapInterval, Logger: a.log})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	la := &localAgent{state: st, syncer: syncer, checks: mgr, cancel: cancel}
	la.wg.Add(3)
	go func() { defer la.wg.Done(); mgr.Run(ctx) }()
	go func() { defer la.wg.Done(); syncer.Run(ctx) }()
	go func() { defer la.wg.Done(); a.syncOnNewServers(ctx, syncer) }()
	if a.srv != nil {
		la.wg.Add(1)
		go func() { defer la.wg.Done(); a.syncOnNewLeader(ctx, syncer) }()
	}
	a.local.Store(la)
	return nil
}

// newLocalState builds the State for this agent's identity. -dev keeps
// registrations in memory only, as Consul's -dev has no data dir.
func (a *Agent) newLocalState() (*local.State, error) {
	a.idMu.RLock()
	nodeID, addr := a.cfg.NodeID, a.advertise
	a.idMu.RUnlock()
	dir := a.cfg.DataDir
	if a.cfg.Dev {
		dir = ""
	}
	return local.New(local.Config{
		NodeName: a.cfg.NodeName, NodeID: nodeID, Address: addr, Datacenter: a.cfg.Datacenter,
		// The same tagged addresses the leader registers for members
		// (memberRegistration), so the two writers never undo each other.
		TaggedAddresses: map[string]string{"lan": addr, "lan_ipv4": addr, "wan": addr, "wan_ipv4": addr},
		NodeMeta:        a.nodeMeta(),
		DataDir:         dir, CheckUpdateInterval: a.cfg.Local.CheckUpdateInterval,
		EnableScriptChecks: a.cfg.Local.EnableScriptChecks, Logger: a.log,
	})
}

// syncOnNewServers asks for a full sync whenever the number of alive
// servers in the LAN pool grows: at the first server a client discovers,
// and after a partition heals, as Consul's agent does on a server join.
func (a *Agent) syncOnNewServers(ctx context.Context, s *local.Syncer) {
	known := 0
	for {
		changed := a.lanWatch.wait()
		if n := len(gossipRouter{a: a}.Servers(a.cfg.Datacenter)); n != known {
			if n > known {
				s.TriggerFullSync()
			}
			known = n
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// syncOnNewLeader asks for a full sync whenever a server learns of a new
// leader: the first sync of a server that started before its cluster
// elected one may have failed with "No cluster leader", and a new leader
// may have been elected from a minority that missed our last writes.
func (a *Agent) syncOnNewLeader(ctx context.Context, s *local.Syncer) {
	obs := a.srv.raft.Subscribe(16)
	defer obs.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-obs.C:
			if !ok {
				return
			}
			if e.Type == raft.EventLeaderChanged && e.Leader != "" {
				s.TriggerFullSync()
			}
		}
	}
}

// stopLocal stops the check runners and anti-entropy and waits for them.
// Safe when startLocal never ran.
func (a *Agent) stopLocal() {
	if la := a.local.Load(); la != nil {
		la.cancel()
		la.wg.Wait()
	}
}

// LocalState is the agent's own services and checks (nil before Start).
func (a *Agent) LocalState() *local.State {
	if la := a.local.Load(); la != nil {
		return la.state
	}
	return nil
}

// SyncNow runs a full anti-entropy sync at once and returns its outcome
// (tests, and the reload path).
func (a *Agent) SyncNow(ctx context.Context) error {
	la := a.local.Load()
	if la == nil {
		return errors.New("agent: not started")
	}
	return la.syncer.SyncFull(ctx)
}

// ReloadLocal makes services and checks the config-defined set (SIGHUP,
// /v1/agent/reload): entries of earlier config files that are gone are
// removed; those registered over HTTP stay. Nothing changes on error.
func (a *Agent) ReloadLocal(services []local.ServiceDefinition, checkDefs []local.CheckDefinition) error {
	la := a.local.Load()
	if la == nil {
		return errors.New("agent: not started")
	}
	if err := la.state.LoadConfig(services, checkDefs); err != nil {
		return fmt.Errorf("services and checks of the config files: %w", err)
	}
	la.syncer.TriggerFullSync()
	return nil
}

// Reload re-reads the config files through LocalConfig.Reload and makes
// their services and checks the current set (SIGHUP, /v1/agent/reload).
func (a *Agent) Reload() error {
	if a.cfg.Local.Reload == nil {
		return errors.New("agent: started without config files, nothing to reload")
	}
	services, checkDefs, err := a.cfg.Local.Reload()
	if err != nil {
		return err
	}
	return a.ReloadLocal(services, checkDefs)
}

// localHTTP is the local state as the HTTP API sees it, plus reload.
type localHTTP struct {
	*local.State
	a *Agent
}

func (l localHTTP) Reload() error { return l.a.Reload() }

// httpLocalState is what /v1/agent/services, checks, register and
// maintenance serve from; nil before startLocal.
func (a *Agent) httpLocalState() httpapi.LocalState {
	if la := a.local.Load(); la != nil {
		return localHTTP{State: la.state, a: a}
	}
	return nil
}
