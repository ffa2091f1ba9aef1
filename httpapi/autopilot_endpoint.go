package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"roster/rpc"
)

// AutopilotConfigRequest is the Autopilot.GetConfiguration RPC argument.
type AutopilotConfigRequest struct {
	rpc.QueryOptions
}

// AutopilotConfiguration is Consul's autopilot configuration as the
// servers hold it in the replicated state (GET and PUT
// /v1/operator/autopilot/configuration). LastContactThreshold,
// ServerStabilizationTime and DeadServerGracePeriod are duration strings
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

// AutopilotSetConfigRequest is the Autopilot.SetConfiguration RPC
// argument. With CAS the write applies only if the stored configuration's
// ModifyIndex equals Config.ModifyIndex; the reply says whether it did.
type AutopilotSetConfigRequest struct {
	rpc.WriteRequest
	Config AutopilotConfiguration
	CAS    bool
}

// autopilotConfiguration serves GET (the stored configuration) and PUT
// (replace it, ?cas=index for check-and-set), as Consul does: a PUT
// answers true, or with ?cas= whether the write applied.
func (s *Server) autopilotConfiguration(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	if r.Method == http.MethodPut {
		return s.autopilotSetConfiguration(r)
	}
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

func (s *Server) autopilotSetConfiguration(r *http.Request) (any, error) {
	args := AutopilotSetConfigRequest{WriteRequest: s.parseWriteRequest(r)}
	var body autopilotBody
	if err := s.decodeJSONBody(r, &body); err != nil {
		return nil, errorf(http.StatusBadRequest, "Error parsing autopilot config: %v", err)
	}
	conf, err := body.configuration()
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "Error parsing autopilot config: %v", err)
	}
	args.Config = conf
	if q := r.URL.Query(); q.Has("cas") {
		cas, err := strconv.ParseUint(q.Get("cas"), 10, 64)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "Error parsing cas value: %v", err)
		}
		args.Config.ModifyIndex, args.CAS = cas, true
	}
	var ok bool
	if err := s.rpc(r, "Autopilot.SetConfiguration", &args, &ok); err != nil {
		return nil, err
	}
	return ok || !args.CAS, nil
}

// autopilotBody is a PUT body. Durations arrive as Go duration strings
// (the Go client's ReadableDuration) or as nanosecond numbers.
type autopilotBody struct {
	CleanupDeadServers      bool
	LastContactThreshold    json.RawMessage
	MaxTrailingLogs         uint64
	MinQuorum               uint
	ServerStabilizationTime json.RawMessage
	RedundancyZoneTag       string
	DisableUpgradeMigration bool
	UpgradeVersionTag       string
	DeadServerGracePeriod   json.RawMessage
}

func (b *autopilotBody) configuration() (AutopilotConfiguration, error) {
	c := AutopilotConfiguration{CleanupDeadServers: b.CleanupDeadServers, MaxTrailingLogs: b.MaxTrailingLogs,
		MinQuorum: b.MinQuorum, RedundancyZoneTag: b.RedundancyZoneTag,
		DisableUpgradeMigration: b.DisableUpgradeMigration, UpgradeVersionTag: b.UpgradeVersionTag}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		out  *string
	}{
		{"LastContactThreshold", b.LastContactThreshold, &c.LastContactThreshold},
		{"ServerStabilizationTime", b.ServerStabilizationTime, &c.ServerStabilizationTime},
		{"DeadServerGracePeriod", b.DeadServerGracePeriod, &c.DeadServerGracePeriod},
	} {
		d, err := jsonDuration(f.raw)
		if err != nil {
			return c, fmt.Errorf("%s: %v", f.name, err)
		}
		if d < 0 {
			return c, fmt.Errorf("%s: %v is negative", f.name, d)
		}
		*f.out = d.String()
	}
	return c, nil
}

// jsonDuration reads a duration string ("10s"), a number of nanoseconds,
// or nothing (0).
func jsonDuration(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return time.ParseDuration(s)
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf("%s is neither a duration string nor a number of nanoseconds", raw)
	}
	return time.Duration(n), nil
}

// autopilotState serves GET /v1/operator/autopilot/state: Consul's
// api.AutopilotState as the leader tracks it (the RPC goes to the leader,
// ?stale or not). Voters and Servers are never null, as in Consul.
func (s *Server) autopilotState(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	reply, err := dcCall[rpc.AutopilotStateReply](s, r, "Operator.AutopilotState")
	if err != nil {
		return nil, err
	}
	reply.Voters = nonNil(reply.Voters)
	if reply.Servers == nil {
		reply.Servers = map[string]rpc.AutopilotServer{}
	}
	return reply, nil
}
