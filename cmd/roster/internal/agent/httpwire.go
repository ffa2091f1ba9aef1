package agent

import "roster/httpapi"

// httpConfig is everything the HTTP API needs from the agent: its own
// description (Agent), the way to the servers (RPC, see rpcclient.go) and
// the gossip pools for join and leave (Membership).
func (a *Agent) httpConfig() httpapi.Config {
	return httpapi.Config{
		Agent:      a,
		RPC:        a,
		Membership: membership{a: a},
		Metrics:    a,
		NodeName:   a.cfg.NodeName,
		Datacenter: a.cfg.Datacenter,
		Logger:     a.log,
		Pretty:     a.cfg.Dev,
	}
}
