package compat

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// The autopilot configuration round-trips through the official client:
// get, set, then check-and-set, which refuses a stale ModifyIndex, as
// `consul operator autopilot get-config` / `set-config` use it. The
// cluster run sends it to a follower, which forwards to the leader.
func TestAutopilot_GetSetAndCASConfiguration(t *testing.T) {
	checkAutopilotGetSetAndCAS(t, devAgent(t, "compat-autopilot"), "compat-autopilot")
}

func checkAutopilotGetSetAndCAS(t *testing.T, c *api.Client, _ string) {
	op := c.Operator()
	var conf *api.AutopilotConfiguration
	waitFor(t, 10*time.Second, "the stored autopilot configuration", func() error {
		var err error
		conf, err = op.AutopilotGetConfiguration(nil)
		if err == nil && conf.ModifyIndex == 0 {
			err = errorString("no configuration stored yet")
		}
		return err
	})
	if !conf.CleanupDeadServers || conf.LastContactThreshold.Duration() != 200*time.Millisecond || conf.MaxTrailingLogs != 250 {
		t.Fatalf("defaults = %+v, want Consul's (cleanup on, 200ms, 250)", conf)
	}
	conf.MinQuorum = 3
	conf.ServerStabilizationTime = api.NewReadableDuration(7 * time.Second)
	if err := op.AutopilotSetConfiguration(conf, nil); err != nil {
		t.Fatal(err)
	}
	got, err := op.AutopilotGetConfiguration(nil)
	if err != nil || got.MinQuorum != 3 || got.ServerStabilizationTime.Duration() != 7*time.Second || got.ModifyIndex <= conf.ModifyIndex {
		t.Fatalf("after set: %+v, %v", got, err)
	}
	stale := *conf // still carries the old ModifyIndex
	stale.MinQuorum = 5
	if ok, err := op.AutopilotCASConfiguration(&stale, nil); err != nil || ok {
		t.Fatalf("CAS at a stale index = %v, %v; want false", ok, err)
	}
	got.CleanupDeadServers = false
	if ok, err := op.AutopilotCASConfiguration(got, nil); err != nil || !ok {
		t.Fatalf("CAS at the current index = %v, %v; want true", ok, err)
	}
	if final, err := op.AutopilotGetConfiguration(nil); err != nil || final.CleanupDeadServers || final.MinQuorum != 3 {
		t.Fatalf("after CAS: %+v, %v", final, err)
	}
}
