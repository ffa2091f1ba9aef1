package agent

import "roster/rpc"

// registerEndpoints registers the server's RPC endpoints.
func (a *Agent) registerEndpoints(s *serverStack) error {
	return s.rpcSrv.Register("Status", rpc.NewStatus(s.ctx, s.view, s.fwd))
}
