package rpc

import (
	"errors"
	"fmt"
	"slices"

	"roster/catalog"
)

// Catalog is the "Catalog" endpoint (Consul's Catalog.*): registration and
// the node and service listings.
type Catalog struct {
	c *endpointCore
}

// Register upserts a node, optionally a service on it, and checks.
func (e *Catalog) Register(args *RegisterRequest, reply *struct{}) error {
	return e.c.write("Catalog.Register", args, reply, func() error {
		if err := validateRegister(&args.Register); err != nil {
			return err
		}
		if args.Register.Node.Datacenter == "" {
			// Consul reports every node with its datacenter.
			args.Register.Node.Datacenter = e.c.d.Datacenter
		}
		_, err := e.c.propose(&args.WriteRequest, &args.Register)
		return err
	})
}

// validateRegister applies Consul's checks (nodePreApply, servicePreApply)
// with Consul's texts before anything is proposed.
func validateRegister(r *catalog.RegisterRequest) error {
	if r.Node.Node == "" {
		return errors.New("Must provide node")
	}
	if r.Node.ID != "" && !isUUID(r.Node.ID) {
		return fmt.Errorf("Bad node ID: %q is not a UUID", r.Node.ID)
	}
	if r.Node.Address == "" && !r.SkipNodeUpdate {
		return errors.New("Must provide address if SkipNodeUpdate is not set")
	}
	if svc := r.Service; svc != nil {
		if svc.ID == "" && svc.Service != "" {
			svc.ID = svc.Service
		}
		if svc.Service == "" {
			return errors.New("Must provide service name with ID")
		}
	}
	for i := range r.Checks {
		if r.Checks[i].Node == "" {
			r.Checks[i].Node = r.Node.Node
		}
	}
	return nil
}

// isUUID reports whether s is in the 8-4-4-4-12 hex form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F') {
				return false
			}
		}
	}
	return true
}

// Deregister removes a check, a service or a whole node.
func (e *Catalog) Deregister(args *DeregisterRequest, reply *struct{}) error {
	return e.c.write("Catalog.Deregister", args, reply, func() error {
		if args.Deregister.Node == "" {
			return errors.New("Must provide node")
		}
		_, err := e.c.propose(&args.WriteRequest, &args.Deregister)
		return err
	})
}

// ListDatacenters lists the known datacenters, this one first. It never
// forwards: every server knows the list.
func (e *Catalog) ListDatacenters(args *DCSpecificRequest, reply *[]string) error {
	dcs := e.c.d.Datacenters()
	out := []string{e.c.d.Datacenter}
	for _, dc := range dcs {
		if !slices.Contains(out, dc) {
			out = append(out, dc)
		}
	}
	slices.Sort(out[1:])
	*reply = out
	return nil
}

// ListNodes lists the nodes, filtered by ?node-meta= and ?filter=, sorted
// by name or by ?near=.
func (e *Catalog) ListNodes(args *NodesRequest, reply *IndexedNodes) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Catalog.ListNodes", args, args, reply); done {
		return err
	}
	f, err := compileFilter(args.Filter, catalog.Node{})
	if err != nil {
		return err
	}
	store := e.c.d.Store
	return e.c.read(&args.QueryOptions, &reply.QueryMeta, catalog.WatchTable(catalog.TableNodes), func() (uint64, error) {
		nodes, idx := store.Nodes()
		nodes = keepByNodeMeta(nodes, args.NodeMetaFilters, func(n *catalog.Node) map[string]string { return n.Meta })
		if nodes, err = applyFilter(f, nodes); err != nil {
			return 0, err
		}
		sortByNear(store, args.Near, nodes, func(n *catalog.Node) string { return n.Node })
		reply.Nodes = nodes
		return idx, nil
	})
}

// ListServices maps each service name to the union of its tags. With
// ?node-meta= only instances on matching nodes count; ?filter= applies to
// the instances (catalog.ServiceNode), as in Consul.
func (e *Catalog) ListServices(args *NodesRequest, reply *IndexedServices) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Catalog.ListServices", args, args, reply); done {
		return err
	}
	f, err := compileFilter(args.Filter, catalog.ServiceNode{})
	if err != nil {
		return err
	}
	store := e.c.d.Store
	return e.c.read(&args.QueryOptions, &reply.QueryMeta, catalog.WatchTable(catalog.TableServices), func() (uint64, error) {
		services, idx := store.Services()
		if f != nil || len(args.NodeMetaFilters) > 0 {
			if services, err = e.servicesWhere(f, args.NodeMetaFilters, services); err != nil {
				return 0, err
			}
		}
		reply.Services = services
		return idx, nil
	})
}

// servicesWhere rebuilds the name → tags map from the instances that pass
// the node-meta and expression filters.
func (e *Catalog) servicesWhere(f *catalog.Filter, meta map[string]string, all map[string][]string) (map[string][]string, error) {
	out := map[string][]string{}
	for name := range all {
		instances, _ := e.c.d.Store.ServiceNodes(name, nil)
		instances = keepByNodeMeta(instances, meta, func(s *catalog.ServiceNode) map[string]string { return s.NodeMeta })
		instances, err := applyFilter(f, instances)
		if err != nil {
			return nil, err
		}
		if len(instances) == 0 {
			continue
		}
		tags := []string{}
		for _, in := range instances {
			for _, t := range in.ServiceTags {
				if !slices.Contains(tags, t) {
					tags = append(tags, t)
				}
			}
		}
		slices.Sort(tags)
		out[name] = tags
	}
	return out, nil
}

// ServiceNodes lists the instances of one service with their nodes.
func (e *Catalog) ServiceNodes(args *ServiceSpecificRequest, reply *IndexedServiceNodes) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Catalog.ServiceNodes", args, args, reply); done {
		return err
	}
	if args.ServiceName == "" {
		return errors.New("Must provide service name")
	}
	f, err := compileFilter(args.Filter, catalog.ServiceNode{})
	if err != nil {
		return err
	}
	store := e.c.d.Store
	return e.c.read(&args.QueryOptions, &reply.QueryMeta, catalog.WatchService(args.ServiceName), func() (uint64, error) {
		nodes, idx := store.ServiceNodes(args.ServiceName, args.ServiceTags)
		nodes = keepByNodeMeta(nodes, args.NodeMetaFilters, func(s *catalog.ServiceNode) map[string]string { return s.NodeMeta })
		if nodes, err = applyFilter(f, nodes); err != nil {
			return 0, err
		}
		sortByNear(store, args.Near, nodes, func(s *catalog.ServiceNode) string { return s.Node })
		reply.ServiceNodes = nodes
		return idx, nil
	})
}

// NodeServices returns a node and its services (nil for an unknown node);
// ?filter= applies to the services.
func (e *Catalog) NodeServices(args *NodeSpecificRequest, reply *IndexedNodeServices) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Catalog.NodeServices", args, args, reply); done {
		return err
	}
	if args.Node == "" {
		return errors.New("Must provide node")
	}
	f, err := compileFilter(args.Filter, catalog.NodeService{})
	if err != nil {
		return err
	}
	store := e.c.d.Store
	return e.c.read(&args.QueryOptions, &reply.QueryMeta, catalog.WatchNode(args.Node), func() (uint64, error) {
		ns, idx := store.NodeServices(args.Node)
		if ns != nil && f != nil {
			if ns.Services, err = applyFilter(f, ns.Services); err != nil {
				return 0, err
			}
		}
		reply.NodeServices = ns
		return idx, nil
	})
}

// Health is the "Health" endpoint (Consul's Health.*): checks and
// instances with their health.
type Health struct {
	c *endpointCore
}

// NodeChecks lists a node's checks.
func (e *Health) NodeChecks(args *NodeSpecificRequest, reply *IndexedHealthChecks) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Health.NodeChecks", args, args, reply); done {
		return err
	}
	if args.Node == "" {
		return errors.New("Must provide node")
	}
	return e.checks(&args.QueryOptions, reply, catalog.WatchNode(args.Node), nil, "", func() ([]catalog.HealthCheck, uint64, error) {
		checks, idx := e.c.d.Store.NodeChecks(args.Node)
		return checks, idx, nil
	})
}

// ServiceChecks lists the checks of every instance of a service.
func (e *Health) ServiceChecks(args *ServiceSpecificRequest, reply *IndexedHealthChecks) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Health.ServiceChecks", args, args, reply); done {
		return err
	}
	if args.ServiceName == "" {
		return errors.New("Must provide service name")
	}
	return e.checks(&args.QueryOptions, reply, catalog.WatchService(args.ServiceName), args.NodeMetaFilters, args.Near,
		func() ([]catalog.HealthCheck, uint64, error) {
			checks, idx := e.c.d.Store.ServiceChecks(args.ServiceName)
			return checks, idx, nil
		})
}

// ChecksInState lists the checks in a state (any, passing, warning,
// critical).
func (e *Health) ChecksInState(args *ChecksInStateRequest, reply *IndexedHealthChecks) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Health.ChecksInState", args, args, reply); done {
		return err
	}
	switch args.State {
	case catalog.HealthAny, catalog.HealthPassing, catalog.HealthWarning, catalog.HealthCritical:
	default:
		return fmt.Errorf("Invalid state %q; use any, passing, warning or critical", args.State)
	}
	return e.checks(&args.QueryOptions, reply, catalog.WatchTable(catalog.TableChecks), args.NodeMetaFilters, args.Near,
		func() ([]catalog.HealthCheck, uint64, error) {
			return e.c.d.Store.ChecksInState(args.State)
		})
}

// checks is the common body of the three check listings. Node-meta
// filtering needs each check's node, looked up once per read.
func (e *Health) checks(opts *QueryOptions, reply *IndexedHealthChecks, watch catalog.Watch,
	nodeMeta map[string]string, near string, list func() ([]catalog.HealthCheck, uint64, error)) error {
	f, err := compileFilter(opts.Filter, catalog.HealthCheck{})
	if err != nil {
		return err
	}
	store := e.c.d.Store
	return e.c.read(opts, &reply.QueryMeta, watch, func() (uint64, error) {
		checks, idx, err := list()
		if err != nil {
			return 0, err
		}
		if len(nodeMeta) > 0 {
			metas := nodeMetas(store)
			checks = keepByNodeMeta(checks, nodeMeta, func(c *catalog.HealthCheck) map[string]string { return metas[c.Node] })
		}
		if checks, err = applyFilter(f, checks); err != nil {
			return 0, err
		}
		sortByNear(store, near, checks, func(c *catalog.HealthCheck) string { return c.Node })
		reply.HealthChecks = checks
		return idx, nil
	})
}

func nodeMetas(store *catalog.Store) map[string]map[string]string {
	nodes, _ := store.Nodes()
	out := make(map[string]map[string]string, len(nodes))
	for _, n := range nodes {
		out[n.Node] = n.Meta
	}
	return out
}

// ServiceNodes lists a service's instances with their node and checks;
// ?passing drops instances with any non-passing check.
func (e *Health) ServiceNodes(args *ServiceSpecificRequest, reply *IndexedCheckServiceNodes) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Health.ServiceNodes", args, args, reply); done {
		return err
	}
	if args.ServiceName == "" {
		return errors.New("Must provide service name")
	}
	f, err := compileFilter(args.Filter, catalog.ServiceEntry{})
	if err != nil {
		return err
	}
	store := e.c.d.Store
	return e.c.read(&args.QueryOptions, &reply.QueryMeta, catalog.WatchService(args.ServiceName), func() (uint64, error) {
		entries, idx := store.CheckServiceNodes(args.ServiceName, args.ServiceTags, args.PassingOnly)
		entries = keepByNodeMeta(entries, args.NodeMetaFilters, func(s *catalog.ServiceEntry) map[string]string { return s.Node.Meta })
		if entries, err = applyFilter(f, entries); err != nil {
			return 0, err
		}
		sortByNear(store, args.Near, entries, func(s *catalog.ServiceEntry) string { return s.Node.Node })
		reply.Nodes = entries
		return idx, nil
	})
}
