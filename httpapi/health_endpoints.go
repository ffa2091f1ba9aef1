package httpapi

import (
	"net/http"

	"roster/catalog"
	"roster/rpc"
)

// /v1/health/*: checks and instances with their health. All are blocking
// reads. /v1/health/service/<name> is the hottest read of a discovery
// system (every client polls it), so its encoded answer is cached per
// query and index (cache.go).

func (s *Server) healthNode(w http.ResponseWriter, r *http.Request, node string) (any, error) {
	args, err := s.nodeRequest(r, node)
	if err != nil {
		return nil, err
	}
	return s.checksRead(w, r, &args.QueryOptions, catalog.WatchNode(node), "Health.NodeChecks", &args)
}

func (s *Server) healthChecks(w http.ResponseWriter, r *http.Request, service string) (any, error) {
	args, err := s.serviceRequest(r, service)
	if err != nil {
		return nil, err
	}
	return s.checksRead(w, r, &args.QueryOptions, catalog.WatchService(service), "Health.ServiceChecks", &args)
}

func (s *Server) healthService(w http.ResponseWriter, r *http.Request, service string) (any, error) {
	args, err := s.serviceRequest(r, service)
	if err != nil {
		return nil, err
	}
	return cachedServiceRead(s, w, r, &args, "Health.ServiceNodes", func(reply *rpc.IndexedCheckServiceNodes) (*rpc.QueryMeta, any) {
		return &reply.QueryMeta, serviceEntriesOut(reply.Nodes)
	})
}

// serviceEntriesOut gives entries Consul's empty values.
func serviceEntriesOut(entries []catalog.ServiceEntry) []catalog.ServiceEntry {
	for i := range entries {
		e := &entries[i]
		e.Checks = checksOut(e.Checks)
		e.Service.Tags = nonNil(e.Service.Tags)
	}
	return nonNil(entries)
}

// healthStates are the states /v1/health/state/<state> accepts.
var healthStates = map[string]bool{catalog.HealthAny: true, catalog.HealthPassing: true,
	catalog.HealthWarning: true, catalog.HealthCritical: true}

func (s *Server) healthState(w http.ResponseWriter, r *http.Request, state string) (any, error) {
	if !healthStates[state] {
		return nil, errorf(http.StatusBadRequest, "Invalid state %q: use any, passing, warning or critical", state)
	}
	opts, err := s.parseQueryOptions(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	args := rpc.ChecksInStateRequest{QueryOptions: opts, State: state, NodeMetaFilters: parseNodeMeta(q), Near: s.near(q)}
	return s.checksRead(w, r, &args.QueryOptions, catalog.WatchTable(catalog.TableChecks), "Health.ChecksInState", &args)
}

// checksRead makes a blocking read of health checks and answers them with
// Consul's empty values.
func (s *Server) checksRead(w http.ResponseWriter, r *http.Request, opts *rpc.QueryOptions, watch catalog.Watch,
	method string, args any) ([]catalog.HealthCheck, error) {
	var reply rpc.IndexedHealthChecks
	if err := s.blockingRead(w, r, opts, watch, method, args, &reply, &reply.QueryMeta); err != nil {
		return nil, err
	}
	return checksOut(reply.HealthChecks), nil
}

// checksOut gives checks Consul's empty values: [] for no checks, and
// ServiceTags [] (not null) on node-level checks.
func checksOut(checks []catalog.HealthCheck) []catalog.HealthCheck {
	for i := range checks {
		checks[i].ServiceTags = nonNil(checks[i].ServiceTags)
	}
	return nonNil(checks)
}
