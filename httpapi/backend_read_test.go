package httpapi

import (
	"context"
	"errors"
	"fmt"

	"roster/catalog"
	"roster/rpc"
)

// read answers the read methods of the rpc contract from the store.
func (b *storeRPC) read(ctx context.Context, method string, args, reply any) error {
	st := b.store
	switch method {
	case "KVS.Get":
		a, r := args.(*rpc.KeyRequest), reply.(*rpc.IndexedDirEntries)
		return b.query(ctx, &a.QueryOptions, &r.QueryMeta, catalog.WatchKVKey(a.Key), func() uint64 {
			p, idx := st.KVGet(a.Key)
			r.Entries = nil
			if p != nil {
				r.Entries = []catalog.KVPair{*p}
			}
			return idx
		})
	case "KVS.List":
		a, r := args.(*rpc.KeyRequest), reply.(*rpc.IndexedDirEntries)
		return b.query(ctx, &a.QueryOptions, &r.QueryMeta, catalog.WatchKV(a.Key), func() (idx uint64) {
			r.Entries, idx = st.KVList(a.Key)
			return idx
		})
	case "KVS.ListKeys":
		a, r := args.(*rpc.KeyListRequest), reply.(*rpc.IndexedKeyList)
		return b.query(ctx, &a.QueryOptions, &r.QueryMeta, catalog.WatchKV(a.Prefix), func() (idx uint64) {
			r.Keys, idx = st.KVKeys(a.Prefix, a.Separator)
			return idx
		})
	case "Catalog.ListNodes":
		a, r := args.(*rpc.NodesRequest), reply.(*rpc.IndexedNodes)
		return b.query(ctx, &a.QueryOptions, &r.QueryMeta, catalog.WatchTable(catalog.TableNodes), func() (idx uint64) {
			r.Nodes, idx = st.Nodes()
			return idx
		})
	case "Catalog.ListServices":
		a, r := args.(*rpc.NodesRequest), reply.(*rpc.IndexedServices)
		return b.query(ctx, &a.QueryOptions, &r.QueryMeta, catalog.WatchTable(catalog.TableServices), func() (idx uint64) {
			r.Services, idx = st.Services()
			return idx
		})
	case "Catalog.ServiceNodes":
		a, r := args.(*rpc.ServiceSpecificRequest), reply.(*rpc.IndexedServiceNodes)
		return b.query(ctx, &a.QueryOptions, &r.QueryMeta, catalog.WatchService(a.ServiceName), func() (idx uint64) {
			r.ServiceNodes, idx = st.ServiceNodes(a.ServiceName, a.ServiceTags)
			return idx
		})
	case "Catalog.NodeServices":
		a, r := args.(*rpc.NodeSpecificRequest), reply.(*rpc.IndexedNodeServices)
		return b.query(ctx, &a.QueryOptions, &r.QueryMeta, catalog.WatchNode(a.Node), func() (idx uint64) {
			r.NodeServices, idx = st.NodeServices(a.Node)
			return idx
		})
	}
	return b.readHealth(ctx, method, args, reply)
}

func (b *storeRPC) readHealth(ctx context.Context, method string, args, reply any) error {
	st := b.store
	switch method {
	case "Health.NodeChecks":
		a, r := args.(*rpc.NodeSpecificRequest), reply.(*rpc.IndexedHealthChecks)
		return b.query(ctx, &a.QueryOptions, &r.QueryMeta, catalog.WatchNode(a.Node), func() (idx uint64) {
			r.HealthChecks, idx = st.NodeChecks(a.Node)
			return idx
		})
	case "Health.ServiceChecks":
		a, r := args.(*rpc.ServiceSpecificRequest), reply.(*rpc.IndexedHealthChecks)
		return b.query(ctx, &a.QueryOptions, &r.QueryMeta, catalog.WatchService(a.ServiceName), func() (idx uint64) {
			r.HealthChecks, idx = st.ServiceChecks(a.ServiceName)
			return idx
		})
	case "Health.ServiceNodes":
		a, r := args.(*rpc.ServiceSpecificRequest), reply.(*rpc.IndexedCheckServiceNodes)
		return b.query(ctx, &a.QueryOptions, &r.QueryMeta, catalog.WatchService(a.ServiceName), func() (idx uint64) {
			r.Nodes, idx = st.CheckServiceNodes(a.ServiceName, a.ServiceTags, a.PassingOnly)
			return idx
		})
	case "Health.ChecksInState":
		a, r := args.(*rpc.ChecksInStateRequest), reply.(*rpc.IndexedHealthChecks)
		var err error
		qerr := b.query(ctx, &a.QueryOptions, &r.QueryMeta, catalog.WatchTable(catalog.TableChecks), func() (idx uint64) {
			r.HealthChecks, idx, err = st.ChecksInState(a.State)
			return idx
		})
		return errors.Join(qerr, err)
	}
	return b.readOther(ctx, method, args, reply)
}

func (b *storeRPC) readOther(ctx context.Context, method string, args, reply any) error {
	st := b.store
	switch method {
	case "Session.Get", "Session.Renew":
		a, r := args.(*rpc.SessionSpecificRequest), reply.(*rpc.IndexedSessions)
		return b.query(ctx, &a.QueryOptions, &r.QueryMeta, catalog.WatchTable(catalog.TableSessions), func() uint64 {
			s, idx := st.Session(a.SessionID)
			r.Sessions = nil
			if s != nil {
				r.Sessions = []catalog.SessionEntry{*s}
			}
			return idx
		})
	case "Session.List":
		a, r := args.(*rpc.DCSpecificRequest), reply.(*rpc.IndexedSessions)
		return b.query(ctx, &a.QueryOptions, &r.QueryMeta, catalog.WatchTable(catalog.TableSessions), func() (idx uint64) {
			r.Sessions, idx = st.Sessions()
			return idx
		})
	case "Session.NodeSessions":
		a, r := args.(*rpc.NodeSpecificRequest), reply.(*rpc.IndexedSessions)
		return b.query(ctx, &a.QueryOptions, &r.QueryMeta, catalog.WatchTable(catalog.TableSessions), func() (idx uint64) {
			r.Sessions, idx = st.NodeSessions(a.Node)
			return idx
		})
	case "Coordinate.ListNodes":
		a, r := args.(*rpc.DCSpecificRequest), reply.(*rpc.IndexedCoordinates)
		return b.query(ctx, &a.QueryOptions, &r.QueryMeta, catalog.WatchTable(catalog.TableCoordinates), func() (idx uint64) {
			r.Coordinates, idx = st.Coordinates()
			return idx
		})
	case "Roster.Registry":
		a, r := args.(*rpc.DCSpecificRequest), reply.(*rpc.RegistryResponse)
		return b.query(ctx, &a.QueryOptions, &r.QueryMeta, catalog.WatchRegistry(), func() uint64 {
			r.Registry = st.Registry()
			return r.Registry.Index
		})
	case "Roster.Delta":
		a, r := args.(*rpc.DeltaRequest), reply.(*rpc.DeltaResponse)
		return b.query(ctx, &a.QueryOptions, &r.QueryMeta, catalog.WatchRegistry(), func() uint64 {
			d, err := st.Since(a.Since)
			r.Delta, r.Truncated = d, errors.Is(err, catalog.ErrTruncated)
			return st.Index(catalog.WatchRegistry())
		})
	}
	return b.readStatus(method, args, reply)
}

func (b *storeRPC) readStatus(method string, args, reply any) error {
	switch method {
	case "Status.Leader":
		*reply.(*string) = "127.0.0.1:8300"
	case "Catalog.ListDatacenters":
		*reply.(*[]string) = []string{"dc1"}
	case "Status.Peers":
		*reply.(*[]string) = []string{"127.0.0.1:8300"}
	case "Operator.RaftGetConfiguration":
		*reply.(*rpc.RaftConfigurationResponse) = rpc.RaftConfigurationResponse{Index: 1, Servers: []rpc.RaftServer{
			{ID: "id-1", Node: "n1", Address: "127.0.0.1:8300", Leader: true, ProtocolVersion: "3", Voter: true, LastIndex: 1}}}
	case "Operator.RaftRemovePeerByID", "Operator.RaftRemovePeerByAddress":
		a := args.(*rpc.RaftRemovePeerRequest)
		if a.ID != "id-1" && a.Address != "127.0.0.1:8300" {
			return fmt.Errorf("Unknown raft peer: no server with ID %q or address %q", a.ID, a.Address)
		}
	case "Operator.RaftTransferLeader":
		if id := args.(*rpc.RaftTransferLeaderRequest).ID; id != "" && id != "id-2" {
			return fmt.Errorf("Cannot transfer leadership to %q: it is not a voter in the Raft configuration", id)
		}
		*reply.(*bool) = true
	case "Operator.AutopilotServerHealth":
		*reply.(*rpc.OperatorHealthReply) = rpc.OperatorHealthReply{Healthy: true, Servers: []rpc.ServerHealth{
			{ID: "id-1", Name: "n1", Address: "127.0.0.1:8300", SerfStatus: "alive", Version: "0.1.0", Leader: true,
				LastContact: "0s", LastTerm: 2, LastIndex: 10, Healthy: true, Voter: true, StableSince: "2026-01-01T00:00:00Z"}}}
	default:
		return fmt.Errorf("rpc: can't find method %s", method)
	}
	return nil
}
