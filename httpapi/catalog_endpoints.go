package httpapi

import (
	"encoding/json"
	"net/http"

	"roster/catalog"
	"roster/rpc"
)

// /v1/catalog/*: the replicated node and service registry.

// catalogRegistration is Consul's CatalogRegistration body. Service uses
// AgentService's field names (the name is "Service"), which NodeService
// shares; Check and Checks are HealthChecks.
type catalogRegistration struct {
	ID              string
	Node            string
	Address         string
	Datacenter      string
	TaggedAddresses map[string]string
	NodeMeta        map[string]string
	Service         *catalog.NodeService
	Check           *catalog.HealthCheck
	Checks          []catalog.HealthCheck
	SkipNodeUpdate  bool
}

// decodeJSONBody decodes an optional JSON body of at most MaxBodyBytes.
func (s *Server) decodeJSONBody(r *http.Request, v any) error {
	body, err := s.agentBody(r)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return decodeError(err)
	}
	return nil
}

func (s *Server) catalogRegister(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	var in catalogRegistration
	if err := s.decodeJSONBody(r, &in); err != nil {
		return nil, err
	}
	req := catalog.RegisterRequest{
		Node: catalog.Node{ID: in.ID, Node: in.Node, Address: in.Address, Datacenter: cmpOr(in.Datacenter, s.localDC()),
			TaggedAddresses: in.TaggedAddresses, Meta: in.NodeMeta},
		SkipNodeUpdate: in.SkipNodeUpdate,
		Service:        in.Service,
	}
	if svc := req.Service; svc != nil && svc.Weights == (catalog.Weights{}) {
		svc.Weights = catalog.Weights{Passing: 1, Warning: 1} // Consul's default
	}
	if in.Check != nil {
		req.Checks = append(req.Checks, *in.Check)
	}
	req.Checks = append(req.Checks, in.Checks...)
	wr := s.parseWriteRequest(r)
	if in.Datacenter != "" && in.Datacenter != s.localDC() {
		wr.Datacenter = in.Datacenter
	}
	args := rpc.RegisterRequest{WriteRequest: wr, Register: req}
	if err := s.rpc(r, "Catalog.Register", &args, &struct{}{}); err != nil {
		return nil, err
	}
	return true, nil
}

// catalogDeregistration is Consul's CatalogDeregistration body.
type catalogDeregistration struct {
	Node       string
	ServiceID  string
	CheckID    string
	Datacenter string
}

func (s *Server) catalogDeregister(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	var in catalogDeregistration
	if err := s.decodeJSONBody(r, &in); err != nil {
		return nil, err
	}
	wr := s.parseWriteRequest(r)
	if in.Datacenter != "" && in.Datacenter != s.localDC() {
		wr.Datacenter = in.Datacenter
	}
	args := rpc.DeregisterRequest{WriteRequest: wr,
		Deregister: catalog.DeregisterRequest{Node: in.Node, ServiceID: in.ServiceID, CheckID: in.CheckID}}
	if err := s.rpc(r, "Catalog.Deregister", &args, &struct{}{}); err != nil {
		return nil, err
	}
	return true, nil
}

// catalogDatacenters lists the datacenters the servers know (no meta
// headers, as in Consul).
func (s *Server) catalogDatacenters(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	dcs, err := dcCall[[]string](s, r, "Catalog.ListDatacenters")
	if err != nil {
		return nil, err
	}
	return nonNil(dcs), nil
}

func (s *Server) nodesRequest(r *http.Request) (rpc.NodesRequest, error) {
	opts, err := s.parseQueryOptions(r)
	q := r.URL.Query()
	return rpc.NodesRequest{QueryOptions: opts, NodeMetaFilters: parseNodeMeta(q), Near: s.near(q)}, err
}

func (s *Server) catalogNodes(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	args, err := s.nodesRequest(r)
	if err != nil {
		return nil, err
	}
	var reply rpc.IndexedNodes
	if err := s.blockingRead(w, r, &args.QueryOptions, catalog.WatchTable(catalog.TableNodes), "Catalog.ListNodes", &args, &reply, &reply.QueryMeta); err != nil {
		return nil, err
	}
	return nonNil(reply.Nodes), nil
}

func (s *Server) catalogServices(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	args, err := s.nodesRequest(r)
	if err != nil {
		return nil, err
	}
	var reply rpc.IndexedServices
	if err := s.blockingRead(w, r, &args.QueryOptions, catalog.WatchTable(catalog.TableServices), "Catalog.ListServices", &args, &reply, &reply.QueryMeta); err != nil {
		return nil, err
	}
	if reply.Services == nil {
		reply.Services = map[string][]string{}
	}
	for name, tags := range reply.Services {
		reply.Services[name] = nonNil(tags)
	}
	return reply.Services, nil
}

// serviceRequest reads the parameters of the per-service reads.
func (s *Server) serviceRequest(r *http.Request, name string) (rpc.ServiceSpecificRequest, error) {
	opts, err := s.queryOptionsFor(r, name, "service")
	if err != nil {
		return rpc.ServiceSpecificRequest{}, err
	}
	q := r.URL.Query()
	passing, err := boolParam(q, "passing")
	return rpc.ServiceSpecificRequest{QueryOptions: opts, ServiceName: name, ServiceTags: q["tag"],
		PassingOnly: passing, NodeMetaFilters: parseNodeMeta(q), Near: s.near(q)}, err
}

func (s *Server) catalogService(w http.ResponseWriter, r *http.Request, name string) (any, error) {
	args, err := s.serviceRequest(r, name)
	if err != nil {
		return nil, err
	}
	return cachedServiceRead(s, w, r, &args, "Catalog.ServiceNodes", func(reply *rpc.IndexedServiceNodes) (*rpc.QueryMeta, any) {
		return &reply.QueryMeta, nonNil(reply.ServiceNodes)
	})
}

func (s *Server) nodeServices(w http.ResponseWriter, r *http.Request, node string) (*catalog.NodeServices, error) {
	args, err := s.nodeRequest(r, node)
	if err != nil {
		return nil, err
	}
	var reply rpc.IndexedNodeServices
	if err := s.blockingRead(w, r, &args.QueryOptions, catalog.WatchNode(node), "Catalog.NodeServices", &args, &reply, &reply.QueryMeta); err != nil {
		return nil, err
	}
	return reply.NodeServices, nil
}

// catalogNode is /v1/catalog/node/<node>: the node with its services keyed
// by ID, or JSON null (200) for an unknown node, as Consul answers.
func (s *Server) catalogNode(w http.ResponseWriter, r *http.Request, node string) (any, error) {
	ns, err := s.nodeServices(w, r, node)
	if err != nil || ns == nil {
		return json.RawMessage("null"), err
	}
	out := struct {
		Node     catalog.Node
		Services map[string]catalog.NodeService
	}{Node: ns.Node, Services: make(map[string]catalog.NodeService, len(ns.Services))}
	for _, svc := range ns.Services {
		svc.Tags = nonNil(svc.Tags)
		out.Services[svc.ID] = svc
	}
	return out, nil
}

// catalogNodeServices is /v1/catalog/node-services/<node>: the list form.
func (s *Server) catalogNodeServices(w http.ResponseWriter, r *http.Request, node string) (any, error) {
	ns, err := s.nodeServices(w, r, node)
	if err != nil || ns == nil {
		return json.RawMessage("null"), err
	}
	ns.Services = nonNil(ns.Services)
	return ns, nil
}

// nonNil turns a nil slice into an empty one: Consul answers [] for an
// empty result, never null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// boolParam reads a presence flag that may also carry a value
// (?passing, ?passing=1, ?passing=false).
func boolParam(q map[string][]string, name string) (bool, error) {
	v, ok := q[name]
	if !ok {
		return false, nil
	}
	if len(v) == 0 || v[0] == "" {
		return true, nil
	}
	switch v[0] {
	case "1", "t", "T", "true", "TRUE", "True":
		return true, nil
	case "0", "f", "F", "false", "FALSE", "False":
		return false, nil
	}
	return false, errorf(http.StatusBadRequest, "Invalid value for ?%s: %q is not a boolean", name, v[0])
}
