package raft

import (
	"errors"
	"fmt"
)

// Leadership transfer (thesis §3.10): the leader stops taking new
// commands, brings the chosen follower's log up to date, then tells it
// (MsgTimeoutNow) to start an election at once. The follower skips
// pre-vote and marks its vote requests so that voters waive the leader
// lease; having the most up-to-date log it wins, normally within one round
// trip. A transfer that has not finished within an election timeout is
// abandoned and the leader resumes.

// ErrLeadershipTransferInProgress: the leader is handing over and refuses
// new commands meanwhile. Retry against the new leader.
var ErrLeadershipTransferInProgress = errors.New("raft: leadership transfer in progress; retry against the new leader")

// TransferLeadership starts handing leadership to voter to.
func (c *Core) TransferLeadership(to string) error {
	if c.state != Leader {
		return errProposeNotLeader
	}
	if to == c.cfg.ID || !c.conf.isVoter(to) || c.progress[to] == nil {
		return fmt.Errorf("raft: cannot transfer leadership to %q: not another voter in the configuration", to)
	}
	c.transferee, c.transferTicks, c.transferSent = to, 0, false
	c.reads.leaseRevoked = true // TimeoutNow waives stickiness: no lease this term
	c.emit(Event{Type: EventTransfer, Peer: to, Detail: "started"})
	c.maybeSendTimeoutNow(to)
	if !c.transferSent {
		c.sendAppend(to, true)
	}
	return nil
}

// maybeSendTimeoutNow fires the transfer once the target has our whole log.
func (c *Core) maybeSendTimeoutNow(id string) {
	if id != c.transferee || c.transferSent || c.progress[id].match != c.log.lastIndex() {
		return
	}
	c.transferSent = true
	c.send(Message{Type: MsgTimeoutNow, To: id})
}

// MostUpToDateVoter returns the follower whose log matches ours furthest
// ("" if none): the natural target of a transfer.
func (c *Core) MostUpToDateVoter() string {
	best, bestMatch := "", uint64(0)
	for _, id := range c.peerIDs() {
		if c.conf.isVoter(id) && (best == "" || c.progress[id].match > bestMatch) {
			best, bestMatch = id, c.progress[id].match
		}
	}
	return best
}

// Transferring returns the target of an ongoing transfer ("" if none).
func (c *Core) Transferring() string { return c.transferee }

func (c *Core) tickTransfer() {
	if c.transferee == "" {
		return
	}
	c.transferTicks++
	if c.transferTicks >= c.cfg.ElectionTicks {
		c.emit(Event{Type: EventTransfer, Peer: c.transferee, Detail: "timed out; staying leader"})
		c.transferee = ""
	}
}

// campaignTransfer starts the election a leader asked for.
func (c *Core) campaignTransfer() {
	c.transferToVote = true
	c.campaign(false)
}

// ErrLeadershipTransferFailed: the target did not take over within an
// election timeout; this node is still the leader.
var ErrLeadershipTransferFailed = errors.New("raft: leadership transfer did not complete in time; this server is still the leader")
