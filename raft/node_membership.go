package raft

import (
	"fmt"
	"time"
)

// confRequest asks the raft loop to derive and propose a new configuration.
type confRequest struct {
	change func(Configuration) (Configuration, error)
	f      *applyFuture
}

// AddVoter adds (or promotes) server id at addr as a voter. The future
// resolves when the new configuration commits. Add a server that is far
// behind as a nonvoter first and promote it once it has caught up, so the
// quorum never waits for it.
func (n *Node) AddVoter(id, addr string, timeout time.Duration) Future {
	return n.changeServers(func(c Configuration) (Configuration, error) {
		return upsertServer(c, Server{ID: id, Address: addr, Suffrage: Voter}), nil
	}, timeout)
}

// AddNonvoter adds server id at addr to receive the log without voting; an
// existing voter keeps its vote.
func (n *Node) AddNonvoter(id, addr string, timeout time.Duration) Future {
	return n.changeServers(func(c Configuration) (Configuration, error) {
		if c.isVoter(id) {
			return c, nil
		}
		return upsertServer(c, Server{ID: id, Address: addr, Suffrage: Nonvoter}), nil
	}, timeout)
}

// DemoteVoter keeps server id in the cluster without a vote.
func (n *Node) DemoteVoter(id string, timeout time.Duration) Future {
	return n.changeServers(func(c Configuration) (Configuration, error) {
		s, ok := c.Server(id)
		if !ok {
			return c, fmt.Errorf("raft: DemoteVoter: %q is not in the configuration", id)
		}
		s.Suffrage = Nonvoter
		return upsertServer(c, s), nil
	}, timeout)
}

// RemoveServer removes server id. Removing the leader itself is allowed: it
// steps down once the change commits (thesis §4.2.2).
func (n *Node) RemoveServer(id string, timeout time.Duration) Future {
	return n.changeServers(func(c Configuration) (Configuration, error) {
		out := Configuration{}
		for _, s := range c.Servers {
			if s.ID != id {
				out.Servers = append(out.Servers, s)
			}
		}
		if len(out.Servers) == len(c.Servers) {
			return c, fmt.Errorf("raft: RemoveServer: %q is not in the configuration", id)
		}
		return out, nil
	}, timeout)
}

// FollowerMatch returns, on the leader, how far each other server's log is
// known to match ours (its match index; nil on a follower). Compare with
// Stats()["last_log_index"] to decide when a nonvoter has caught up and can
// be promoted with AddVoter.
func (n *Node) FollowerMatch() map[string]uint64 {
	reply := make(chan map[string]uint64, 1)
	select {
	case n.matchCh <- reply:
		return <-reply
	case <-n.doneCh:
		return nil
	}
}

func upsertServer(c Configuration, s Server) Configuration {
	out := c.Clone()
	for i := range out.Servers {
		if out.Servers[i].ID == s.ID {
			out.Servers[i] = s
			return out
		}
	}
	out.Servers = append(out.Servers, s)
	return out
}

func (n *Node) changeServers(change func(Configuration) (Configuration, error), timeout time.Duration) Future {
	if err := n.stopped(); err != nil {
		return errorFuture{err}
	}
	req := confRequest{change: change, f: newApplyFuture(EntryConfiguration, nil)}
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	select {
	case n.confCh <- req:
		return req.f
	case <-timer:
		return errorFuture{ErrEnqueueTimeout}
	case <-n.doneCh:
		return errorFuture{ErrShutdown}
	}
}

// changeConfiguration runs on the raft loop.
func (n *Node) changeConfiguration(req confRequest) {
	if n.core.State() != Leader {
		req.f.finish(nil, n.notLeader())
		return
	}
	next, err := req.change(n.core.conf.Clone())
	if err != nil {
		req.f.finish(nil, err)
		return
	}
	index, err := n.core.ProposeConfiguration(next)
	if err != nil {
		if err == errProposeNotLeader {
			err = n.notLeader()
		}
		req.f.finish(nil, err)
		return
	}
	req.f.index, req.f.term = index, n.core.Term()
	n.pending = append(n.pending, req.f)
}
