package checks

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sync"
	"time"

	"roster/catalog"
	"roster/cmd/roster/internal/local"
)

// Config configures a Manager. Zero values take the documented defaults.
type Config struct {
	// EnableScriptChecks lets ScriptArgs checks run (-enable-script-checks
	// or -enable-local-script-checks). Off by default: a script check is
	// arbitrary code execution.
	EnableScriptChecks bool
	// ReapInterval is how often services whose checks stayed critical past
	// DeregisterCriticalServiceAfter are deregistered (default 30s).
	ReapInterval time.Duration
	// Clock tells the time for TTL expiry and reaping (default time.Now);
	// it must be the clock the local.State was built with.
	Clock func() time.Time
	// Rand draws each check's start jitter; default seeded from the clock.
	Rand *rand.Rand
	// Logger receives runner problems (default slog.Default()).
	Logger *slog.Logger
}

// DefaultReapInterval is how often Consul's agent sweeps for services to
// deregister after their checks stayed critical.
const DefaultReapInterval = 30 * time.Second

func (c Config) withDefaults() Config {
	if c.ReapInterval == 0 {
		c.ReapInterval = DefaultReapInterval
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	if c.ReapInterval < 0 {
		return errors.New("checks.Config.ReapInterval is negative; use 0 for the default (30s)")
	}
	return nil
}

// Target is what the runners report into: the agent's local state.
type Target interface {
	CheckDefinitions() map[string]local.CheckDefinition
	Changed() <-chan struct{}
	UpdateCheck(checkID, status, output string)
	ExpireTTLs(now time.Time) time.Time
	ReapCritical(now time.Time) []string
}

var _ Target = (*local.State)(nil)

// Manager runs the health checks of a Target: one goroutine per HTTP, TCP
// or script check, TTL expiry and the critical-service reaper on the
// Manager's own goroutine. It follows the Target: a registered check
// starts, a removed one stops, a changed one restarts.
type Manager struct {
	target Target
	cfg    Config

	// runners is owned by Run's goroutine.
	runners map[string]*runner
	// randMu guards cfg.Rand (read by Run only, but tests may share it).
	randMu sync.Mutex
}

// New builds a Manager; Run starts it.
func New(target Target, cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if target == nil {
		return nil, errors.New("checks.New needs a Target (the agent's local state)")
	}
	return &Manager{target: target, cfg: cfg.withDefaults(), runners: map[string]*runner{}}, nil
}

// Run reconciles runners with the Target's definitions until ctx ends,
// then stops every runner and waits for them.
func (m *Manager) Run(ctx context.Context) {
	ttlTimer := time.NewTimer(time.Hour)
	defer ttlTimer.Stop()
	reap := time.NewTicker(m.cfg.ReapInterval)
	defer reap.Stop()
	defer m.stopAll()
	for {
		changed := m.target.Changed()
		m.reconcile(ctx)
		if next := m.target.ExpireTTLs(m.cfg.Clock()); !next.IsZero() {
			ttlTimer.Reset(max(next.Sub(m.cfg.Clock()), time.Millisecond))
		} else {
			ttlTimer.Reset(time.Hour)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-ttlTimer.C:
		case <-reap.C:
			m.target.ReapCritical(m.cfg.Clock())
		}
	}
}

// reconcile starts, stops and restarts runners to match the definitions.
func (m *Manager) reconcile(ctx context.Context) {
	defs := m.target.CheckDefinitions()
	for id, r := range m.runners {
		def, ok := defs[id]
		if !ok || !reflect.DeepEqual(def, r.def) {
			r.stop()
			delete(m.runners, id)
		}
	}
	for id, def := range defs {
		if _, ok := m.runners[id]; ok || def.Kind() == local.TypeTTL {
			continue
		}
		p, err := newProbe(def, m.cfg.EnableScriptChecks)
		if err != nil {
			m.target.UpdateCheck(id, catalog.HealthCritical, err.Error())
			m.runners[id] = &runner{def: def, stop: func() {}}
			continue
		}
		m.runners[id] = m.start(ctx, id, def, p)
	}
}

func (m *Manager) start(ctx context.Context, id string, def local.CheckDefinition, p probe) *runner {
	interval := time.Duration(def.Interval)
	m.randMu.Lock()
	// Consul staggers each check's first run over one interval so checks
	// registered together do not probe in lock step.
	jitter := time.Duration(m.cfg.Rand.Int64N(int64(interval)))
	m.randMu.Unlock()
	r := &runner{
		def:      def,
		id:       id,
		probe:    p,
		interval: interval,
		timeout:  time.Duration(def.Timeout),
		jitter:   jitter,
		filter:   newStatusFilter(def.SuccessBeforePassing, def.FailuresBeforeWarning, def.FailuresBeforeCritical),
		report:   m.target.UpdateCheck,
	}
	r.launch(ctx)
	return r
}

func (m *Manager) stopAll() {
	for id, r := range m.runners {
		r.stop()
		delete(m.runners, id)
	}
}

// runner probes one check every interval on its own goroutine.
type runner struct {
	def      local.CheckDefinition
	id       string
	probe    probe
	interval time.Duration
	timeout  time.Duration
	jitter   time.Duration
	filter   *statusFilter
	report   func(checkID, status, output string)

	stop func() // cancels the goroutine and waits for it to exit
}

func (r *runner) launch(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	done := make(chan struct{})
	r.stop = func() { cancel(); <-done }
	go func() {
		defer close(done)
		r.loop(ctx)
	}()
}

func (r *runner) loop(ctx context.Context) {
	t := time.NewTimer(r.jitter)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.runOnce(ctx)
		t.Reset(r.interval)
	}
}

func (r *runner) runOnce(ctx context.Context) {
	timeout := r.timeout
	if timeout <= 0 {
		timeout = local.DefaultCheckTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	status, output := r.probe(pctx)
	cancel()
	if ctx.Err() != nil {
		return // stopped mid-probe: the result belongs to a removed check
	}
	if st, ok := r.filter.observe(status); ok {
		r.report(r.id, st, local.TruncateOutput(output))
	}
}
