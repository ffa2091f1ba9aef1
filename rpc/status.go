package rpc

import "context"

// DCSpecificRequest is the argument of endpoints that only need a
// datacenter (Status.Leader, Status.Peers), as in Consul.
type DCSpecificRequest struct {
	QueryOptions
}

// Status is the "Status" endpoint: liveness and the Raft view of the
// answering server. Status.Leader and Status.Peers answer from local state
// (as Consul's do: they must work during an election) and forward only
// for another datacenter.
type Status struct {
	cluster Cluster
	fwd     *Forwarder
	ctx     context.Context
}

// NewStatus returns the endpoint; register it with Server.Register("Status", ...).
// ctx bounds forwarded calls: pass Server.Context, which Shutdown cancels.
func NewStatus(ctx context.Context, cluster Cluster, fwd *Forwarder) *Status {
	return &Status{cluster: cluster, fwd: fwd, ctx: ctx}
}

// Ping answers at once; clients use it to check a connection.
func (s *Status) Ping(args struct{}, reply *struct{}) error { return nil }

// Leader replies with the RPC address of the leader this server knows, or
// "" during an election (Consul answers `""` at /v1/status/leader then).
func (s *Status) Leader(args *DCSpecificRequest, reply *string) error {
	args.AllowStale, args.RequireConsistent = true, false
	if done, err := s.fwd.Forward(s.ctx, "Status.Leader", args, args, reply); done {
		return err
	}
	*reply = s.cluster.LeaderAddr()
	return nil
}

// Peers replies with the addresses of the voters in the Raft configuration.
func (s *Status) Peers(args *DCSpecificRequest, reply *[]string) error {
	args.AllowStale, args.RequireConsistent = true, false
	if done, err := s.fwd.Forward(s.ctx, "Status.Peers", args, args, reply); done {
		return err
	}
	peers, err := s.cluster.Peers()
	if err != nil {
		return err
	}
	*reply = append([]string(nil), peers...)
	return nil
}
