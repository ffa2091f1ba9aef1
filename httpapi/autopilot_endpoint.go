package httpapi

import (
	"net/http"

	"roster/rpc"
)

// AutopilotConfigRequest is the Autopilot.GetConfiguration RPC argument.
type AutopilotConfigRequest struct {
	rpc.QueryOptions
}

// AutopilotConfiguration is Consul's autopilot configuration as the
// leader applies it (GET /v1/operator/autopilot/configuration).
// LastContactThreshold and ServerStabilizationTime are duration strings
// as Consul's JSON has them. roster's DeadServerGracePeriod is extra; the
// Go client ignores unknown fields.
type AutopilotConfiguration struct {
	CleanupDeadServers      bool
	LastContactThreshold    string
	MaxTrailingLogs         uint64
	MinQuorum               uint
	ServerStabilizationTime string
	RedundancyZoneTag       string
	DisableUpgradeMigration bool
	UpgradeVersionTag       string
	DeadServerGracePeriod   string
	CreateIndex             uint64
	ModifyIndex             uint64
}

// autopilotConfiguration answers the leader's autopilot settings. They
// come from its configuration (files and flags), not from a replicated
// record, so PUT is not offered: change the servers' config and restart.
func (s *Server) autopilotConfiguration(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	opts, err := s.parseQueryOptions(r)
	if err != nil {
		return nil, err
	}
	var reply AutopilotConfiguration
	if err := s.rpc(r, "Autopilot.GetConfiguration", &AutopilotConfigRequest{QueryOptions: opts}, &reply); err != nil {
		return nil, err
	}
	return reply, nil
}
