package httpapi

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"roster/catalog"
)

// /v1/agent/services, /v1/agent/checks, service and check registration,
// TTL updates, maintenance mode and the agent's health of one service:
// the agent's own state, not the catalog (Consul API notes §4.1). Nothing
// here makes an RPC; anti-entropy copies the state into the catalog
// afterwards (§10.1). The handlers validate the URL, call LocalState and
// pass its errors through with the status they carry.

// LocalState is the agent's own services and checks. The agent passes its
// local state (cmd/roster/internal/local.State implements it); tests fake
// it. Every method returns copies. Errors may carry their HTTP status
// through an HTTPStatus() int method (404 unknown service or check, 400
// invalid definition); others are 500.
type LocalState interface {
	Services() map[string]catalog.NodeService
	// Service returns one service and its content hash.
	Service(id string) (svc catalog.NodeService, contentHash string, ok bool)
	// WaitServiceHash blocks until the service's content hash differs
	// from hash or ctx ends, then returns it as Service does.
	WaitServiceHash(ctx context.Context, id, hash string) (svc catalog.NodeService, contentHash string, ok bool)
	Checks() map[string]catalog.HealthCheck

	// RegisterServiceJSON and RegisterCheckJSON decode and apply a
	// registration body (either of Consul's spellings).
	RegisterServiceJSON(body []byte, replaceExistingChecks bool) error
	RegisterCheckJSON(body []byte) error
	RemoveService(id string) error
	RemoveCheck(id string) error
	// UpdateTTL sets a TTL check's status (passing, warning, critical)
	// and output, and restarts its TTL.
	UpdateTTL(checkID, status, output string) error

	EnableNodeMaintenance(reason string) error
	DisableNodeMaintenance() error
	EnableServiceMaintenance(serviceID, reason string) error
	DisableServiceMaintenance(serviceID string) error
}

// Consul's maintenance check IDs (§4.6): they make the aggregated status
// "maintenance".
const (
	nodeMaintCheckID        = "_node_maintenance"
	serviceMaintCheckPrefix = "_service_maintenance:"
)

// AgentService is a service as the agent endpoints show it: the catalog
// shape plus the content hash (for ?hash= blocking) and the datacenter.
//
// CreateIndex and ModifyIndex shadow the catalog's: they are Raft indexes,
// which the agent's own copy of a service never has, and Consul's
// api.AgentService tags them omitempty, so Consul's agent endpoints leave
// them out (buildAgentService copies the local entry's zero indexes).
// The catalog and health endpoints, which read the replicated state,
// keep them.
type AgentService struct {
	catalog.NodeService
	CreateIndex uint64 `json:",omitempty"`
	ModifyIndex uint64 `json:",omitempty"`
	ContentHash string `json:",omitempty"`
	Datacenter  string `json:",omitempty"`
}

// AgentServiceChecksInfo is one entry of /v1/agent/health/service/* (§4.8).
type AgentServiceChecksInfo struct {
	AggregatedStatus string
	Service          *AgentService
	Checks           []catalog.HealthCheck
}

// agentLocalRoutes is the route table of this file, appended to routes().
func (s *Server) agentLocalRoutes() []route {
	get, put := []string{"GET"}, []string{"PUT"}
	return []route{
		{path: "/v1/agent/services", methods: get, handle: s.agentServices},
		{path: "/v1/agent/service/register", methods: put, handle: s.agentServiceRegister()},
		{path: "/v1/agent/service/deregister/", methods: put, handle: s.agentServiceDeregister()},
		{path: "/v1/agent/service/maintenance/", methods: put, handle: s.agentServiceMaintenance},
		{path: "/v1/agent/service/", methods: get, handle: s.agentService},
		{path: "/v1/agent/checks", methods: get, handle: s.agentChecks},
		{path: "/v1/agent/check/register", methods: put, handle: s.agentCheckRegister()},
		{path: "/v1/agent/check/deregister/", methods: put, handle: s.agentCheckDeregister()},
		{path: "/v1/agent/check/pass/", methods: put, handle: s.agentCheckTTL(catalog.HealthPassing)},
		{path: "/v1/agent/check/warn/", methods: put, handle: s.agentCheckTTL(catalog.HealthWarning)},
		{path: "/v1/agent/check/fail/", methods: put, handle: s.agentCheckTTL(catalog.HealthCritical)},
		{path: "/v1/agent/check/update/", methods: put, handle: s.agentCheckUpdate()},
		{path: "/v1/agent/maintenance", methods: put, handle: s.agentNodeMaintenance},
		{path: "/v1/agent/health/service/id/", methods: get, handle: s.agentHealthByID},
		{path: "/v1/agent/health/service/name/", methods: get, handle: s.agentHealthByName},
		{path: "/v1/agent/host", methods: get, handle: s.agentHost},
		{path: "/v1/agent/reload", methods: put, handle: s.agentReload},
	}
}

// Reloader is optionally implemented by a LocalState: Reload re-reads the
// agent's config files (PUT /v1/agent/reload, `roster reload`).
type Reloader interface {
	Reload() error
}

func (s *Server) agentReload(_ http.ResponseWriter, _ *http.Request, _ string) (any, error) {
	ls, err := s.localState()
	if err != nil {
		return nil, err
	}
	rl, ok := ls.(Reloader)
	if !ok {
		return nil, errorf(http.StatusInternalServerError, "this agent cannot reload its configuration")
	}
	if err := rl.Reload(); err != nil {
		return nil, errorf(http.StatusInternalServerError, "Failed to reload configs: %v", err)
	}
	return nil, nil
}

func (s *Server) localState() (LocalState, error) {
	if s.cfg.LocalState == nil {
		return nil, errorf(http.StatusInternalServerError, "this agent has no local state (it is starting or shutting down); retry shortly")
	}
	return s.cfg.LocalState, nil
}

// localStateFor checks that the path argument arg (a what, such as
// "service ID"; "" for routes without one) is present, then returns the
// local state: the opening of every local-state handler.
func (s *Server) localStateFor(arg, what string) (LocalState, error) {
	if what != "" {
		if err := mustArg(arg, what); err != nil {
			return nil, err
		}
	}
	return s.localState()
}

// localAction is a PUT handler that applies act to the local state and
// answers with an empty body. what names the path argument ("service ID")
// that must be present, or is "" for routes without one. act's errors are
// mapped by localError, so act may return this package's *Error for bad
// input as well as LocalState errors.
func (s *Server) localAction(what string, act func(ls LocalState, r *http.Request, arg string) error) handlerFunc {
	return func(_ http.ResponseWriter, r *http.Request, arg string) (any, error) {
		ls, err := s.localStateFor(arg, what)
		if err != nil {
			return nil, err
		}
		return nil, localError(act(ls, r, arg))
	}
}

// localError gives a LocalState error its HTTP status; an *Error of this
// package (bad input found before the local state was asked) keeps its own.
func localError(err error) error {
	if err == nil {
		return nil
	}
	var own *Error
	if errors.As(err, &own) {
		return err
	}
	var coded interface{ HTTPStatus() int }
	if errors.As(err, &coded) {
		return &Error{Code: coded.HTTPStatus(), Msg: err.Error()}
	}
	return &Error{Code: http.StatusInternalServerError, Msg: err.Error()}
}

func (s *Server) toAgentService(svc catalog.NodeService, hash string) *AgentService {
	if svc.Tags == nil {
		svc.Tags = []string{}
	}
	if svc.Meta == nil {
		svc.Meta = map[string]string{}
	}
	if svc.Weights == (catalog.Weights{}) {
		svc.Weights = catalog.Weights{Passing: 1, Warning: 1} // Consul's default for unset weights
	} else if svc.Weights.Passing <= 0 {
		svc.Weights.Passing = 1
	}
	return &AgentService{NodeService: svc, CreateIndex: svc.CreateIndex, ModifyIndex: svc.ModifyIndex,
		ContentHash: hash, Datacenter: s.localDC()}
}

// compileFilter parses ?filter= against sample's type; "" means none.
func compileFilter(r *http.Request, sample any) (*catalog.Filter, error) {
	expr := r.URL.Query().Get("filter")
	if expr == "" {
		return nil, nil
	}
	f, err := catalog.CompileFilter(expr)
	if err == nil {
		err = f.Validate(sample)
	}
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "Failed to create boolean expression evaluator: %v", err)
	}
	return f, nil
}

// localFilter returns the local state and the compiled ?filter= (nil for
// none) of a listing of local services or checks; sample is the listed type.
func (s *Server) localFilter(r *http.Request, sample any) (LocalState, *catalog.Filter, error) {
	ls, err := s.localState()
	if err != nil {
		return nil, nil, err
	}
	f, err := compileFilter(r, sample)
	return ls, f, err
}

// filterByID keeps the entries of byID that f matches (all when f is nil;
// an entry the filter cannot evaluate is left out), each shaped by out.
func filterByID[V, O any](byID map[string]V, f *catalog.Filter, out func(id string, v V) O) map[string]O {
	kept := map[string]O{}
	for id, v := range byID {
		if f != nil {
			if ok, err := f.Match(v); err != nil || !ok {
				continue
			}
		}
		kept[id] = out(id, v)
	}
	return kept
}

// agentServices is GET /v1/agent/services[?filter=]: {"<id>": AgentService}.
func (s *Server) agentServices(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	ls, f, err := s.localFilter(r, catalog.NodeService{})
	if err != nil {
		return nil, err
	}
	return filterByID(ls.Services(), f, func(id string, svc catalog.NodeService) *AgentService {
		_, hash, _ := ls.Service(id)
		return s.toAgentService(svc, hash)
	}), nil
}

// maxHashWait caps ?wait= on hash-blocking reads, as Consul caps every
// blocking query; defaultHashWait applies when ?wait= is absent.
const (
	defaultHashWait = 5 * time.Minute
	maxHashWait     = 10 * time.Minute
)

// agentService is GET /v1/agent/service/<id>[?hash=&wait=]: the service
// with X-Consul-ContentHash; with ?hash= it blocks until the content hash
// differs (Consul's hash-based blocking).
func (s *Server) agentService(w http.ResponseWriter, r *http.Request, id string) (any, error) {
	ls, err := s.localStateFor(id, "service ID")
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	wait := defaultHashWait
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, errorf(http.StatusBadRequest, "Invalid wait time %q: use a duration such as 30s or 5m", v)
		}
		wait = min(d, maxHashWait)
	}
	var (
		svc  catalog.NodeService
		hash string
		ok   bool
	)
	if h := q.Get("hash"); h != "" {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		svc, hash, ok = ls.WaitServiceHash(ctx, id, h)
		cancel()
	} else {
		svc, hash, ok = ls.Service(id)
	}
	if !ok {
		return nil, errorf(http.StatusNotFound, "unknown service ID: %s", id)
	}
	w.Header().Set("X-Consul-ContentHash", hash)
	return s.toAgentService(svc, hash), nil
}

// agentChecks is GET /v1/agent/checks[?filter=]: {"<checkID>": AgentCheck}.
func (s *Server) agentChecks(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	ls, f, err := s.localFilter(r, catalog.HealthCheck{})
	if err != nil {
		return nil, err
	}
	return filterByID(ls.Checks(), f, func(_ string, c catalog.HealthCheck) catalog.HealthCheck {
		c.ServiceTags = nonNil(c.ServiceTags)
		return c
	}), nil
}

// agentBody reads a request body up to the agent's MaxBodyBytes.
func (s *Server) agentBody(r *http.Request) ([]byte, error) {
	return readBody(r, s.cfg.MaxBodyBytes, "the agent's MaxBodyBytes setting")
}

// agentServiceRegister is PUT /v1/agent/service/register
// [?replace-existing-checks=true].
func (s *Server) agentServiceRegister() handlerFunc {
	return s.localAction("", func(ls LocalState, r *http.Request, _ string) error {
		body, err := s.agentBody(r)
		if err != nil {
			return err
		}
		replace, err := boolParam(r.URL.Query(), "replace-existing-checks")
		if err != nil {
			return err
		}
		return ls.RegisterServiceJSON(body, replace)
	})
}

// agentServiceDeregister is PUT /v1/agent/service/deregister/<id>.
func (s *Server) agentServiceDeregister() handlerFunc {
	return s.localAction("service ID", func(ls LocalState, _ *http.Request, id string) error {
		return ls.RemoveService(id)
	})
}

// agentCheckRegister is PUT /v1/agent/check/register.
func (s *Server) agentCheckRegister() handlerFunc {
	return s.localAction("", func(ls LocalState, r *http.Request, _ string) error {
		body, err := s.agentBody(r)
		if err != nil {
			return err
		}
		return ls.RegisterCheckJSON(body)
	})
}

// agentCheckDeregister is PUT /v1/agent/check/deregister/<id>.
func (s *Server) agentCheckDeregister() handlerFunc {
	return s.localAction("check ID", func(ls LocalState, _ *http.Request, id string) error {
		return ls.RemoveCheck(id)
	})
}

// agentCheckTTL serves PUT /v1/agent/check/{pass,warn,fail}/<id>?note=:
// the note becomes the check's output.
func (s *Server) agentCheckTTL(status string) handlerFunc {
	return s.localAction("check ID", func(ls LocalState, r *http.Request, id string) error {
		return ls.UpdateTTL(id, status, r.URL.Query().Get("note"))
	})
}

// checkUpdate is the body of PUT /v1/agent/check/update/<id>.
type checkUpdate struct {
	Status string
	Output string
}

// agentCheckUpdate is PUT /v1/agent/check/update/<id> with a checkUpdate body.
func (s *Server) agentCheckUpdate() handlerFunc {
	return s.localAction("check ID", func(ls LocalState, r *http.Request, id string) error {
		var u checkUpdate
		if err := s.decodeJSONBody(r, &u); err != nil {
			return err
		}
		return ls.UpdateTTL(id, u.Status, u.Output)
	})
}

// maintenanceParams reads ?enable= (required, a bool) and ?reason=, with
// Consul's messages.
func maintenanceParams(r *http.Request) (enable bool, reason string, err error) {
	q := r.URL.Query()
	if !has(q, "enable") {
		return false, "", errorf(http.StatusBadRequest, "Missing value for enable")
	}
	enable, perr := strconv.ParseBool(q.Get("enable"))
	if perr != nil {
		return false, "", errorf(http.StatusBadRequest, "Invalid value for enable: %q", q.Get("enable"))
	}
	return enable, q.Get("reason"), nil
}

// agentNodeMaintenance is PUT /v1/agent/maintenance?enable=&reason=.
// The parameters are checked before the local state is asked for.
func (s *Server) agentNodeMaintenance(w http.ResponseWriter, r *http.Request, arg string) (any, error) {
	enable, reason, err := maintenanceParams(r)
	if err != nil {
		return nil, err
	}
	return s.localAction("", func(ls LocalState, _ *http.Request, _ string) error {
		if enable {
			return ls.EnableNodeMaintenance(reason)
		}
		return ls.DisableNodeMaintenance()
	})(w, r, arg)
}

// agentServiceMaintenance is PUT /v1/agent/service/maintenance/<id>
// ?enable=&reason=; the ID, then the parameters are checked, then the
// local state is asked for.
func (s *Server) agentServiceMaintenance(w http.ResponseWriter, r *http.Request, id string) (any, error) {
	if err := mustArg(id, "service ID"); err != nil {
		return nil, err
	}
	enable, reason, err := maintenanceParams(r)
	if err != nil {
		return nil, err
	}
	return s.localAction("", func(ls LocalState, _ *http.Request, id string) error {
		if enable {
			return ls.EnableServiceMaintenance(id, reason)
		}
		return ls.DisableServiceMaintenance(id)
	})(w, r, id)
}

// healthChecksFor returns a service's checks plus the node's own checks
// (node maintenance included), sorted by check ID: what Consul's agent
// health endpoints aggregate.
func healthChecksFor(all map[string]catalog.HealthCheck, serviceID string) []catalog.HealthCheck {
	out := []catalog.HealthCheck{}
	for _, c := range all {
		if c.ServiceID == serviceID || c.ServiceID == "" {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CheckID < out[j].CheckID })
	return out
}

// aggregatedStatus folds checks by Consul's priority (§4.8): maintenance
// > critical > warning > passing; no checks is passing.
func aggregatedStatus(checks []catalog.HealthCheck) string {
	rank := map[string]int{catalog.HealthPassing: 0, catalog.HealthWarning: 1, catalog.HealthCritical: 2, catalog.HealthMaintenance: 3}
	out := catalog.HealthPassing
	for _, c := range checks {
		st := c.Status
		if c.CheckID == nodeMaintCheckID || strings.HasPrefix(c.CheckID, serviceMaintCheckPrefix) {
			st = catalog.HealthMaintenance
		}
		if rank[st] > rank[out] {
			out = st
		}
	}
	return out
}

// healthStatusCode is Consul's status code for an aggregated status: 200
// passing, 429 warning, 503 critical or maintenance.
func healthStatusCode(status string) int {
	switch status {
	case catalog.HealthPassing:
		return http.StatusOK
	case catalog.HealthWarning:
		return http.StatusTooManyRequests
	}
	return http.StatusServiceUnavailable
}

// healthAnswer writes the agent health result: the aggregated status as
// text with ?format=text, else v as JSON, both under code.
func healthAnswer(r *http.Request, code int, status string, v any) any {
	if r.URL.Query().Get("format") == "text" {
		return &rawBody{status: code, contentType: "text/plain", body: []byte(status)}
	}
	return &jsonStatus{status: code, v: v}
}

// agentHealthByID is GET /v1/agent/health/service/id/<id>[?format=text].
func (s *Server) agentHealthByID(_ http.ResponseWriter, r *http.Request, id string) (any, error) {
	ls, err := s.localStateFor(id, "service ID")
	if err != nil {
		return nil, err
	}
	svc, hash, ok := ls.Service(id)
	if !ok {
		reason := "ServiceId " + id + " not found"
		return healthAnswer(r, http.StatusNotFound, reason,
			AgentServiceChecksInfo{AggregatedStatus: catalog.HealthCritical}), nil
	}
	checks := healthChecksFor(ls.Checks(), id)
	status := aggregatedStatus(checks)
	info := AgentServiceChecksInfo{AggregatedStatus: status, Service: s.toAgentService(svc, hash), Checks: checks}
	return healthAnswer(r, healthStatusCode(status), status, info), nil
}

// agentHealthByName is GET /v1/agent/health/service/name/<name>: every
// local instance of the service; the status code is the worst of them.
func (s *Server) agentHealthByName(_ http.ResponseWriter, r *http.Request, name string) (any, error) {
	ls, err := s.localStateFor(name, "service name")
	if err != nil {
		return nil, err
	}
	all := ls.Checks()
	infos := []AgentServiceChecksInfo{}
	code, worst := http.StatusOK, catalog.HealthPassing
	for id, svc := range ls.Services() {
		if svc.Service != name {
			continue
		}
		_, hash, _ := ls.Service(id)
		checks := healthChecksFor(all, id)
		status := aggregatedStatus(checks)
		infos = append(infos, AgentServiceChecksInfo{AggregatedStatus: status, Service: s.toAgentService(svc, hash), Checks: checks})
		if c := healthStatusCode(status); c > code || (c == code && status == catalog.HealthMaintenance) {
			code, worst = c, status
		}
	}
	if len(infos) == 0 {
		return healthAnswer(r, http.StatusNotFound, "ServiceName "+name+" Not Found", infos), nil
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Service.ID < infos[j].Service.ID })
	return healthAnswer(r, code, worst, infos), nil
}
