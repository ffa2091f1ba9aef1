package httpapi

import (
	"net/http"

	"roster/catalog"
	"roster/rpc"
)

// /v1/status/*, /v1/operator/*, /v1/coordinate/*: the Raft view and the
// network coordinates. Status answers carry no X-Consul-* headers, as in
// Consul.

func (s *Server) dcRequest(r *http.Request) (rpc.DCSpecificRequest, error) {
	opts, err := s.parseQueryOptions(r)
	return rpc.DCSpecificRequest{QueryOptions: opts}, err
}

// dcCall makes an RPC that takes only the query options (dcRequest) and
// sets no meta headers: the status and operator reads.
func dcCall[R any](s *Server, r *http.Request, method string) (R, error) {
	var reply R
	args, err := s.dcRequest(r)
	if err == nil {
		err = s.rpc(r, method, &args, &reply)
	}
	return reply, err
}

// statusLeader is the leader's RPC address as a JSON string, "" while
// there is none.
func (s *Server) statusLeader(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	return dcCall[string](s, r, "Status.Leader")
}

func (s *Server) statusPeers(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	peers, err := dcCall[[]string](s, r, "Status.Peers")
	if err != nil {
		return nil, err
	}
	return nonNil(peers), nil
}

func (s *Server) raftConfiguration(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	reply, err := dcCall[rpc.RaftConfigurationResponse](s, r, "Operator.RaftGetConfiguration")
	if err != nil {
		return nil, err
	}
	reply.Servers = nonNil(reply.Servers)
	return reply, nil
}

// raftRemovePeer is DELETE /v1/operator/raft/peer?id=|?address=: exactly
// one of them.
func (s *Server) raftRemovePeer(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	q := r.URL.Query()
	id, addr := q.Get("id"), q.Get("address")
	if (id == "") == (addr == "") {
		return nil, errorf(http.StatusBadRequest, "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove (exactly one of them)")
	}
	args := rpc.RaftRemovePeerRequest{WriteRequest: s.parseWriteRequest(r), ID: id, Address: addr}
	method := "Operator.RaftRemovePeerByID"
	if addr != "" {
		method = "Operator.RaftRemovePeerByAddress"
	}
	if err := s.rpc(r, method, &args, &struct{}{}); err != nil {
		return nil, err
	}
	return nil, nil
}

// transferLeaderReply is Consul's answer to a leadership transfer.
type transferLeaderReply struct{ Success bool }

// raftTransferLeader is POST /v1/operator/raft/transfer-leader[?id=]: the
// leader hands leadership to voter id, or to the most up-to-date voter
// when id is empty (Raft thesis §3.10). It answers once the old leader
// has stepped down. PUT is accepted too, as for every other write.
func (s *Server) raftTransferLeader(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	args := rpc.RaftTransferLeaderRequest{WriteRequest: s.parseWriteRequest(r), ID: r.URL.Query().Get("id")}
	var ok bool
	if err := s.rpc(r, "Operator.RaftTransferLeader", &args, &ok); err != nil {
		return nil, err
	}
	return transferLeaderReply{Success: ok}, nil
}

// autopilotHealth answers 200 when the cluster is healthy and 429 with the
// same body when not (Consul's status signal; the Go client accepts both).
func (s *Server) autopilotHealth(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	reply, err := dcCall[rpc.OperatorHealthReply](s, r, "Operator.AutopilotServerHealth")
	if err != nil {
		return nil, err
	}
	reply.Servers = nonNil(reply.Servers)
	if !reply.Healthy {
		return &jsonStatus{status: http.StatusTooManyRequests, v: reply}, nil
	}
	return reply, nil
}

// coordinateDatacenter is one element of /v1/coordinate/datacenters.
type coordinateDatacenter struct {
	Datacenter  string
	AreaID      string
	Coordinates []catalog.CoordinateEntry
}

// coordinateDatacenters lists the WAN coordinates of each datacenter's
// servers. Without WAN federation there is one datacenter and no WAN
// coordinates yet.
func (s *Server) coordinateDatacenters(_ http.ResponseWriter, _ *http.Request, _ string) (any, error) {
	return []coordinateDatacenter{{Datacenter: s.localDC(), AreaID: "wan", Coordinates: []catalog.CoordinateEntry{}}}, nil
}

func (s *Server) coordinateNodes(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	args, err := s.dcRequest(r)
	if err != nil {
		return nil, err
	}
	var reply rpc.IndexedCoordinates
	if err := s.blockingRead(w, r, &args.QueryOptions, catalog.WatchTable(catalog.TableCoordinates), "Coordinate.ListNodes", &args, &reply, &reply.QueryMeta); err != nil {
		return nil, err
	}
	return nonNil(reply.Coordinates), nil
}
