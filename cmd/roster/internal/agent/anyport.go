package agent

import (
	"errors"
	"syscall"
)

// Port 0 on any of the agent's ports binds a port the kernel picks, as a
// server under test binds ":0" (DESIGN.md rule 8). The agent logs each
// port it got (the "serving" lines, one per listener) and publishes it
// wherever the configured port would go (gossip tags, /v1/agent/self), so
// a test that starts the binary reads its ports from the log instead of
// naming ports that were free a moment ago, which any other process may
// take before the agent binds them.
//
// Gossip and DNS need one number for TCP and UDP alike: the kernel picks
// it for one protocol, and the other may hold it already. With port 0 such
// a bind is retried on a fresh pick, a bounded number of times; a port
// given by number is never retried, since in use is then the user's error.

// anyPortTries bounds the picks for a port 0 that must be free twice.
const anyPortTries = 16

// bindAnyPort calls bind, a bind of the configured port, until it
// succeeds; with port 0 a failure because the pick was in use is retried,
// at most anyPortTries times in all, and any other failure is returned.
func bindAnyPort(port int, bind func() error) error {
	for tries := 1; ; tries++ {
		err := bind()
		if err == nil || port != 0 || tries >= anyPortTries || !errors.Is(err, syscall.EADDRINUSE) {
			return err
		}
	}
}

// Ports returns the ports the agent serves on: once Start has returned,
// each port 0 is the port the kernel picked (and -1 still marks a
// disabled listener). It lets a caller that runs agents in-process (tests,
// dev-cluster) start them on port 0 and then name their addresses, for a
// join or a restart on the same ports, instead of choosing ports first.
// Start writes the ports under mu and nothing changes them afterwards.
func (a *Agent) Ports() Ports {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg.Ports
}
