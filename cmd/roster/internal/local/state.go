package local

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"roster/catalog"
	"roster/internal/fanout"
)

// Config configures a State.
type Config struct {
	// NodeName, NodeID, Address, Datacenter, TaggedAddresses and NodeMeta
	// describe this agent's node as anti-entropy registers it. NodeName
	// and Address are required.
	NodeName        string
	NodeID          string
	Address         string
	Datacenter      string
	TaggedAddresses map[string]string
	NodeMeta        map[string]string

	// DataDir is where services and checks are persisted
	// (<DataDir>/services, <DataDir>/checks). "" keeps them in memory only.
	DataDir string

	// CheckUpdateInterval (check_update_interval, default 5m) defers the
	// sync of output-only check changes; status changes sync at once.
	// Negative disables the deferral.
	CheckUpdateInterval time.Duration

	// EnableScriptChecks allows checks that run commands (ScriptArgs);
	// without it their registration is refused, as Consul refuses them
	// unless enable_script_checks / enable_local_script_checks is set.
	EnableScriptChecks bool

	// Clock returns the current time (default time.Now); tests inject one.
	Clock func() time.Time
	// Logger receives warnings (default slog.Default()).
	Logger *slog.Logger
}

// DefaultCheckUpdateInterval is Consul's check_update_interval.
const DefaultCheckUpdateInterval = 5 * time.Minute

func (c Config) withDefaults() Config {
	if c.CheckUpdateInterval == 0 {
		c.CheckUpdateInterval = DefaultCheckUpdateInterval
	}
	if c.CheckUpdateInterval < 0 {
		c.CheckUpdateInterval = 0
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	if c.NodeName == "" {
		return errors.New("local.Config.NodeName is empty: set the agent's node name")
	}
	if c.Address == "" {
		return errors.New("local.Config.Address is empty: set the address the node is registered with")
	}
	return nil
}

// State is the agent's own view of its services and checks: the source of
// truth that anti-entropy copies into the catalog (Consul API notes §10.1).
//
// Every entry carries an inSync flag (does the catalog hold exactly this?)
// and a revision (bumped on every local change), so a sync that raced with
// a change never marks the newer content as synced. Removed entries stay
// as tombstones (deleted, !inSync) until their deregistration succeeds.
type State struct {
	cfg Config

	// mu guards every field below.
	mu         sync.Mutex
	node       catalog.Node
	nodeInSync bool
	services   map[string]*serviceEntry
	checks     map[string]*checkEntry
	// rev counts local changes; entries record the rev of their last change.
	rev uint64
	// changed is closed (and replaced) on every change: HTTP blocking
	// queries and the syncer wait on it.
	changed chan struct{}

	events fanout.Hub[Event] // safe for concurrent use on its own
}

type serviceEntry struct {
	svc     catalog.NodeService
	inSync  bool
	deleted bool
	rev     uint64
	// fromConfig entries come from config files: not persisted (the files
	// are their record) and replaced as a set by LoadConfig.
	fromConfig bool
}

type checkEntry struct {
	check   catalog.HealthCheck
	def     CheckDefinition
	inSync  bool
	deleted bool
	rev     uint64
	// deferUntil is set while an output-only change waits for
	// CheckUpdateInterval before it is synced.
	deferUntil time.Time
	// ttlDeadline is when a TTL check turns critical unless updated.
	ttlDeadline time.Time
	// criticalSince is when the check last turned critical (zero if not).
	criticalSince time.Time
	fromConfig    bool
}

// New builds a State and loads the services and checks persisted in
// cfg.DataDir by a previous run.
func New(cfg Config) (*State, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &State{
		cfg: cfg,
		node: catalog.Node{
			ID: cfg.NodeID, Node: cfg.NodeName, Address: cfg.Address, Datacenter: cfg.Datacenter,
			TaggedAddresses: maps.Clone(cfg.TaggedAddresses), Meta: maps.Clone(cfg.NodeMeta),
		},
		services: map[string]*serviceEntry{},
		checks:   map[string]*checkEntry{},
		changed:  make(chan struct{}),
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// NodeName is the name of the node this state belongs to.
func (s *State) NodeName() string { return s.cfg.NodeName }

// Changed returns a channel that is closed at the next change of local
// state. Take it before reading, then wait on it (a blocking query).
func (s *State) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Index is a counter that increases on every local change; HTTP uses it
// as the X-Consul-Index of agent endpoints.
func (s *State) Index() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev
}

// touchLocked bumps the revision and wakes waiters. Callers hold mu.
func (s *State) touchLocked() uint64 {
	s.rev++
	close(s.changed)
	s.changed = make(chan struct{})
	return s.rev
}

// ---- services ---------------------------------------------------------------

// AddService registers (or replaces) a service and its checks, the work
// of PUT /v1/agent/service/register. With replaceExistingChecks the
// service's other checks (not redefined here) are removed; otherwise they
// are kept (§4.4).
func (s *State) AddService(def ServiceDefinition, replaceExistingChecks bool) error {
	return s.addService(def, replaceExistingChecks, false)
}

func (s *State) addService(def ServiceDefinition, replaceExistingChecks, fromConfig bool) error {
	svc, checks, err := s.buildService(def)
	if err != nil {
		return err
	}
	for _, c := range checks {
		c.fromConfig = fromConfig
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := map[string]bool{}
	for _, c := range checks {
		keep[c.check.CheckID] = true
	}
	var drop []string
	if replaceExistingChecks {
		for id, c := range s.checks {
			if !c.deleted && c.check.ServiceID == svc.ID && !keep[id] && id != serviceMaintID(svc.ID) {
				drop = append(drop, id)
			}
		}
	}
	if err := s.persistService(svc, fromConfig); err != nil {
		return err
	}
	for _, c := range checks {
		s.inheritLocked(c)
		if err := s.persistCheck(c); err != nil {
			return err
		}
	}
	for _, id := range drop {
		if err := s.unpersistCheck(id); err != nil {
			return err
		}
	}
	rev := s.touchLocked()
	s.services[svc.ID] = &serviceEntry{svc: svc, rev: rev, fromConfig: fromConfig}
	for _, c := range checks {
		c.rev = rev
		s.checks[c.check.CheckID] = c
	}
	for _, id := range drop {
		s.tombstoneCheckLocked(id, rev)
	}
	s.refreshServiceChecksLocked(svc, rev)
	s.emit(Event{Kind: EventServiceRegistered, ServiceID: svc.ID})
	return nil
}

// buildService validates def and turns it into the stored service and
// check entries, applying Consul's defaults (ID = Name, Weights {1,1},
// check IDs service:<id> or service:<id>:<n>, check name "Service '<name>'
// check").
func (s *State) buildService(def ServiceDefinition) (catalog.NodeService, []*checkEntry, error) {
	if def.Name == "" {
		return catalog.NodeService{}, nil, badRequest("Missing service name")
	}
	id := def.ID
	if id == "" {
		id = def.Name
	}
	if err := validateMeta(def.Meta); err != nil {
		return catalog.NodeService{}, nil, badRequest("Invalid Service Meta: %v", err)
	}
	weights := catalog.Weights{Passing: 1, Warning: 1}
	if def.Weights != nil {
		weights = *def.Weights
		if weights.Passing < 1 {
			return catalog.NodeService{}, nil, badRequest("Invalid Weights: Passing must be greater than 0")
		}
	}
	svc := catalog.NodeService{
		Kind: def.Kind, ID: id, Service: def.Name, Tags: slices.Clone(def.Tags), Address: def.Address,
		TaggedAddresses: maps.Clone(def.TaggedAddresses), Meta: maps.Clone(def.Meta), Port: def.Port,
		Weights: weights, EnableTagOverride: def.EnableTagOverride,
	}
	var defs []*CheckDefinition
	if def.Check != nil {
		defs = append(defs, def.Check)
	}
	for _, c := range def.Checks {
		if c != nil {
			defs = append(defs, c)
		}
	}
	var entries []*checkEntry
	for i, cd := range defs {
		c := cd.clone()
		if err := s.validateCheck(&c); err != nil {
			return catalog.NodeService{}, nil, err
		}
		if c.ID == "" && c.CheckID == "" {
			c.ID = "service:" + id
			if len(defs) > 1 {
				c.ID = fmt.Sprintf("service:%s:%d", id, i+1)
			}
		}
		if c.Name == "" {
			c.Name = fmt.Sprintf("Service '%s' check", def.Name)
		}
		c.ServiceID = id
		entries = append(entries, s.newCheckEntry(c.normalized(), &svc))
	}
	return svc, entries, nil
}

// RemoveService removes a service and all its checks (DELETE-like PUT
// /v1/agent/service/deregister/<id>).
func (s *State) RemoveService(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.services[id]
	if !ok || e.deleted {
		return unknownService(id)
	}
	if err := s.unpersistService(id); err != nil {
		return err
	}
	var checkIDs []string
	for cid, c := range s.checks {
		if c.check.ServiceID == id && !c.deleted {
			checkIDs = append(checkIDs, cid)
		}
	}
	for _, cid := range checkIDs {
		if err := s.unpersistCheck(cid); err != nil {
			return err
		}
	}
	rev := s.touchLocked()
	*e = serviceEntry{svc: e.svc, deleted: true, rev: rev}
	for _, cid := range checkIDs {
		s.tombstoneCheckLocked(cid, rev)
	}
	s.emit(Event{Kind: EventServiceDeregistered, ServiceID: id})
	return nil
}

// refreshServiceChecksLocked copies the service's name and tags into its
// checks (the catalog stores them denormalized).
func (s *State) refreshServiceChecksLocked(svc catalog.NodeService, rev uint64) {
	for _, c := range s.checks {
		if c.deleted || c.check.ServiceID != svc.ID {
			continue
		}
		if c.check.ServiceName != svc.Service || !slices.Equal(c.check.ServiceTags, svc.Tags) {
			c.check.ServiceName, c.check.ServiceTags = svc.Service, slices.Clone(svc.Tags)
			c.inSync, c.rev = false, rev
		}
	}
}

// Service returns a copy of a live service and its content hash (for
// hash-based blocking on /v1/agent/service/<id>).
func (s *State) Service(id string) (catalog.NodeService, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.services[id]
	if !ok || e.deleted {
		return catalog.NodeService{}, "", false
	}
	return e.svc.Clone(), ContentHash(e.svc), true
}

// Services returns copies of all live services by ID.
func (s *State) Services() map[string]catalog.NodeService {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]catalog.NodeService, len(s.services))
	for id, e := range s.services {
		if !e.deleted {
			out[id] = e.svc.Clone()
		}
	}
	return out
}

// ---- checks -----------------------------------------------------------------

// AddCheck registers (or replaces) a standalone check, the work of PUT
// /v1/agent/check/register. A ServiceID must name a local service.
func (s *State) AddCheck(def CheckDefinition) error {
	return s.addCheck(def, false)
}

func (s *State) addCheck(def CheckDefinition, fromConfig bool) error {
	def = def.clone()
	if def.Name == "" {
		return badRequest("Missing check name")
	}
	if err := s.validateCheck(&def); err != nil {
		return err
	}
	def = def.normalized()
	s.mu.Lock()
	defer s.mu.Unlock()
	var svc *catalog.NodeService
	if def.ServiceID != "" {
		e, ok := s.services[def.ServiceID]
		if !ok || e.deleted {
			return badRequest("ServiceID %q does not exist", def.ServiceID)
		}
		svc = &e.svc
	}
	c := s.newCheckEntry(def, svc)
	c.fromConfig = fromConfig
	s.inheritLocked(c)
	if err := s.persistCheck(c); err != nil {
		return err
	}
	c.rev = s.touchLocked()
	s.checks[def.ID] = c
	s.emit(Event{Kind: EventCheckRegistered, CheckID: def.ID, ServiceID: def.ServiceID})
	return nil
}

// validateCheck applies Consul's check rules and the script-check switch.
func (s *State) validateCheck(def *CheckDefinition) error {
	if err := def.Validate(); err != nil {
		return badRequest("Invalid check: %v", err)
	}
	if def.Kind() == TypeScript && !s.cfg.EnableScriptChecks {
		return badRequest("Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true")
	}
	return nil
}

// newCheckEntry builds the catalog check for a normalized definition.
func (s *State) newCheckEntry(def CheckDefinition, svc *catalog.NodeService) *checkEntry {
	hc := catalog.HealthCheck{
		Node: s.cfg.NodeName, CheckID: def.ID, Name: def.Name, Status: def.Status, Notes: def.Notes,
		ServiceID: def.ServiceID, Type: def.Kind(), Interval: def.Interval.String(),
		Timeout: def.Timeout.String(), Definition: def.catalogDefinition(),
	}
	if def.Kind() == TypeTTL {
		hc.Timeout = ""
	}
	if svc != nil {
		hc.ServiceName, hc.ServiceTags = svc.Service, slices.Clone(svc.Tags)
	}
	now := s.cfg.Clock()
	c := &checkEntry{check: hc, def: def}
	if def.TTL > 0 {
		c.ttlDeadline = now.Add(time.Duration(def.TTL))
	}
	if hc.Status == catalog.HealthCritical {
		c.criticalSince = now
	}
	return c
}

// inheritLocked keeps the status and output of a check that is being
// re-registered without an explicit status, so a reload or re-register
// does not flap a healthy check to critical.
func (s *State) inheritLocked(c *checkEntry) {
	old, ok := s.checks[c.check.CheckID]
	if !ok || old.deleted || c.def.Status != catalog.HealthCritical {
		return
	}
	c.check.Status, c.check.Output = old.check.Status, old.check.Output
	c.criticalSince = old.criticalSince
}

// RemoveCheck removes a check (PUT /v1/agent/check/deregister/<id>).
func (s *State) RemoveCheck(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.checks[id]
	if !ok || c.deleted {
		return unknownCheck(id)
	}
	if err := s.unpersistCheck(id); err != nil {
		return err
	}
	s.tombstoneCheckLocked(id, s.touchLocked())
	s.emit(Event{Kind: EventCheckDeregistered, CheckID: id})
	return nil
}

func (s *State) tombstoneCheckLocked(id string, rev uint64) {
	c := s.checks[id]
	*c = checkEntry{check: c.check, def: c.def, deleted: true, rev: rev}
}

// UpdateTTL records an application's report for a TTL check
// (/v1/agent/check/pass|warn|fail|update) and restarts its TTL.
func (s *State) UpdateTTL(id, status, output string) error {
	switch status {
	case catalog.HealthPassing, catalog.HealthWarning, catalog.HealthCritical:
	default:
		return badRequest("Invalid check status: '%s'", status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.checks[id]
	if !ok || c.deleted {
		return unknownCheck(id)
	}
	if c.def.Kind() != TypeTTL {
		return &Error{Code: 500, Msg: fmt.Sprintf("CheckID %q does not have associated TTL", id)}
	}
	c.ttlDeadline = s.cfg.Clock().Add(time.Duration(c.def.TTL))
	s.setStatusLocked(c, status, truncateOutput(output))
	if err := s.persistCheck(c); err != nil {
		s.cfg.Logger.Warn("cannot persist TTL check state; it is lost on restart", "check", id, "err", err)
	}
	return nil
}

// UpdateCheck records a check runner's result. Unknown or removed checks
// are ignored (a runner may report once more after its check is gone).
func (s *State) UpdateCheck(id, status, output string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.checks[id]
	if !ok || c.deleted {
		return
	}
	s.setStatusLocked(c, status, truncateOutput(output))
}

// setStatusLocked applies a new status/output. A status change is synced
// at once; an output-only change of an in-sync check waits up to
// CheckUpdateInterval (§10.1), so chatty outputs do not flood Raft.
func (s *State) setStatusLocked(c *checkEntry, status, output string) {
	if c.check.Status == status && c.check.Output == output {
		return
	}
	now := s.cfg.Clock()
	rev := s.touchLocked()
	if c.check.Status != status {
		if status == catalog.HealthCritical {
			c.criticalSince = now
		} else {
			c.criticalSince = time.Time{}
		}
		c.check.Status, c.check.Output = status, output
		c.inSync, c.rev, c.deferUntil = false, rev, time.Time{}
		s.emit(Event{Kind: EventCheckStatus, CheckID: c.check.CheckID, ServiceID: c.check.ServiceID, Status: status})
		return
	}
	c.check.Output = output
	if s.cfg.CheckUpdateInterval > 0 && c.inSync {
		if c.deferUntil.IsZero() {
			c.deferUntil = now.Add(s.cfg.CheckUpdateInterval)
		}
		return
	}
	c.inSync, c.rev = false, rev
}

// ExpireTTLs turns every TTL check whose TTL has run out critical with
// output "TTL expired" and returns the next deadline (zero if none).
func (s *State) ExpireTTLs(now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next time.Time
	for _, c := range s.checks {
		if c.deleted || c.ttlDeadline.IsZero() {
			continue
		}
		if !now.Before(c.ttlDeadline) {
			c.ttlDeadline = time.Time{}
			s.setStatusLocked(c, catalog.HealthCritical, "TTL expired")
			continue
		}
		if next.IsZero() || c.ttlDeadline.Before(next) {
			next = c.ttlDeadline
		}
	}
	return next
}

// Check returns a copy of a live check.
func (s *State) Check(id string) (catalog.HealthCheck, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.checks[id]
	if !ok || c.deleted {
		return catalog.HealthCheck{}, false
	}
	return c.check.Clone(), true
}

// Checks returns copies of all live checks by ID.
func (s *State) Checks() map[string]catalog.HealthCheck {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]catalog.HealthCheck, len(s.checks))
	for id, c := range s.checks {
		if !c.deleted {
			out[id] = c.check.Clone()
		}
	}
	return out
}

// ServiceChecks returns copies of the checks of one service, sorted by ID.
func (s *State) ServiceChecks(serviceID string) []catalog.HealthCheck {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []catalog.HealthCheck
	for _, c := range s.checks {
		if !c.deleted && c.check.ServiceID == serviceID {
			out = append(out, c.check.Clone())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CheckID < out[j].CheckID })
	return out
}

// CheckDefinitions returns copies of the definitions of every live check
// that has something to run (TTL, HTTP, TCP, script), by check ID. The
// check runners reconcile against it.
func (s *State) CheckDefinitions() map[string]CheckDefinition {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]CheckDefinition{}
	for id, c := range s.checks {
		if !c.deleted && c.def.Kind() != "" {
			out[id] = c.def.clone()
		}
	}
	return out
}

// ReapCritical removes the services that have a check with
// DeregisterCriticalServiceAfter that has been critical for longer than
// that, and returns their IDs (sorted).
func (s *State) ReapCritical(now time.Time) []string {
	s.mu.Lock()
	var doomed []string
	for _, c := range s.checks {
		after := time.Duration(c.def.DeregisterCriticalServiceAfter)
		if c.deleted || after <= 0 || c.check.ServiceID == "" || c.criticalSince.IsZero() {
			continue
		}
		if c.check.Status == catalog.HealthCritical && now.Sub(c.criticalSince) > after && !slices.Contains(doomed, c.check.ServiceID) {
			doomed = append(doomed, c.check.ServiceID)
		}
	}
	s.mu.Unlock()
	sort.Strings(doomed)
	var reaped []string
	for _, id := range doomed {
		if err := s.RemoveService(id); err == nil {
			reaped = append(reaped, id)
			s.emit(Event{Kind: EventServiceReaped, ServiceID: id})
			s.cfg.Logger.Info("deregistered service whose check stayed critical", "service", id)
		}
	}
	return reaped
}
