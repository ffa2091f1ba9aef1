package agent

import (
	"roster/catalog"
	"roster/httpapi"
	"roster/rpc"
)

// httpConfig is everything the HTTP API needs from the agent: its own
// description (Agent), the way to the servers (RPC, see rpcclient.go), the
// gossip pools for join, leave and user events, its metrics and, on
// servers, the local catalog index that lets hot reads skip the RPC.
func (a *Agent) httpConfig() httpapi.Config {
	cfg := httpapi.Config{
		Agent:      a,
		RPC:        a,
		Membership: membership{a: a},
		Events:     a.userEvents,
		LocalState: a.httpLocalState(),
		Metrics:    a,
		NodeName:   a.cfg.NodeName,
		Datacenter: a.cfg.Datacenter,
		Logger:     a.log,
		Pretty:     a.cfg.Dev,
	}
	if a.srv != nil {
		cfg.Local = localIndex{Store: a.srv.store, Cluster: a.srv.view}
	}
	return cfg
}

// localIndex is the server's catalog and Raft view as httpapi.LocalIndex.
type localIndex struct {
	*catalog.Store
	rpc.Cluster
}
