package agent

import (
	"context"
	"log/slog"
)

// Server health tracking (Consul's autopilot state, raft-autopilot's
// state updater): for each term of leadership the leader runs the
// rpc.AutopilotTracker its endpoints answer from. It probes every server's
// Raft stats each AutopilotConfig.ServerHealthInterval (default 2s) and
// keeps each server's health with StableSince = when that health last
// changed, so GET /v1/operator/autopilot/state and /health read the
// tracked state and send no probes; followers forward them to the leader.
// Tracking starts after the leader's barrier and stored settings, with a
// first round at once; until that round completes the state is empty
// (Healthy false, no servers), as Consul's is before its autopilot has
// run. Losing leadership stops it and forgets the state: the next leader
// tracks afresh.

// trackServerHealth starts tracking for the leadership that ctx spans and
// returns the function that stops it and waits until it has stopped, so
// no probe outlives the term.
func (a *Agent) trackServerHealth(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.srv.autopilot.Lead(ctx); err != nil {
			a.log.Warn("autopilot: server health tracking did not start", nodeAttr(a.cfg.NodeName),
				slog.String("error", err.Error()))
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
