package agent

import "roster/httpapi"

// httpConfig is everything the HTTP API needs from the agent.
func (a *Agent) httpConfig() httpapi.Config {
	return httpapi.Config{Agent: a, Logger: a.log, Pretty: a.cfg.Dev}
}
