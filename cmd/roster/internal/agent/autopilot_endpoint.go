package agent

import (
	"errors"
	"fmt"
	"time"

	"roster/httpapi"
	"roster/rpc"
)

// autopilotEndpoint is the "Autopilot" RPC endpoint of servers: the
// replicated autopilot configuration (autopilot_state.go).
type autopilotEndpoint struct{ a *Agent }

// GetConfiguration answers the stored configuration (the Forwarder sends
// the call to the leader unless ?stale). Until a leader stored one it
// answers this server's configured settings with index 0.
func (e *autopilotEndpoint) GetConfiguration(args *httpapi.AutopilotConfigRequest, reply *httpapi.AutopilotConfiguration) error {
	s := e.a.srv
	if done, err := s.fwd.Forward(s.ctx, "Autopilot.GetConfiguration", args, args, reply); done {
		return err
	}
	if err := args.Validate(); err != nil {
		return err
	}
	*reply = autopilotToWire(e.a.autopilotSettings())
	return nil
}

// SetConfiguration commits a new configuration through Raft on the
// leader; the reply says whether it applied (false only for a CAS whose
// index is stale).
func (e *autopilotEndpoint) SetConfiguration(args *httpapi.AutopilotSetConfigRequest, reply *bool) error {
	s := e.a.srv
	if done, err := s.fwd.Forward(s.ctx, "Autopilot.SetConfiguration", args, args, reply); done {
		return err
	}
	conf, err := autopilotFromWire(args.Config)
	if err != nil {
		return err
	}
	op := autopilotSet
	if args.CAS {
		op = autopilotCAS
	}
	f := s.raft.Apply(rpc.EncodeCommand(args.RequestID, time.Now(), encodeAutopilot(op, conf)), leaderApplyWait)
	if err := f.Error(); err != nil {
		return err
	}
	switch r := f.Response().(type) {
	case bool:
		*reply = r
	case rpc.Duplicate: // a retry of a write that already applied
		ok, known := r.Result.(bool)
		*reply = ok || !known
	case error:
		return r
	default:
		return fmt.Errorf("autopilot: unexpected apply result %T", r)
	}
	return nil
}

func autopilotToWire(s AutopilotSettings) httpapi.AutopilotConfiguration {
	return httpapi.AutopilotConfiguration{
		CleanupDeadServers:      s.CleanupDeadServers,
		LastContactThreshold:    s.LastContactThreshold.String(),
		MaxTrailingLogs:         s.MaxTrailingLogs,
		MinQuorum:               s.MinQuorum,
		ServerStabilizationTime: s.ServerStabilizationTime.String(),
		RedundancyZoneTag:       s.RedundancyZoneTag,
		DisableUpgradeMigration: s.DisableUpgradeMigration,
		UpgradeVersionTag:       s.UpgradeVersionTag,
		DeadServerGracePeriod:   s.deadServerGrace().String(),
		CreateIndex:             s.CreateIndex,
		ModifyIndex:             s.ModifyIndex,
	}
}

// autopilotFromWire parses the wire form's durations (the HTTP handler
// already normalised them; an RPC caller may not have).
func autopilotFromWire(c httpapi.AutopilotConfiguration) (AutopilotSettings, error) {
	s := AutopilotSettings{CleanupDeadServers: c.CleanupDeadServers, MaxTrailingLogs: c.MaxTrailingLogs,
		MinQuorum: c.MinQuorum, RedundancyZoneTag: c.RedundancyZoneTag,
		DisableUpgradeMigration: c.DisableUpgradeMigration, UpgradeVersionTag: c.UpgradeVersionTag,
		ModifyIndex: c.ModifyIndex}
	for _, f := range []struct {
		name string
		in   string
		out  *time.Duration
	}{
		{"LastContactThreshold", c.LastContactThreshold, &s.LastContactThreshold},
		{"ServerStabilizationTime", c.ServerStabilizationTime, &s.ServerStabilizationTime},
		{"DeadServerGracePeriod", c.DeadServerGracePeriod, &s.DeadServerGracePeriod},
	} {
		if f.in == "" {
			continue
		}
		d, err := time.ParseDuration(f.in)
		if err != nil || d < 0 {
			return s, errors.Join(fmt.Errorf("autopilot: %s %q is not a non-negative duration", f.name, f.in), err)
		}
		*f.out = d
	}
	return s, nil
}
