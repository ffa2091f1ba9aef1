package raft

import (
	"errors"
	"fmt"
)

// Membership changes one server at a time (thesis §4.1). Adding or removing
// a single voter changes the majority so little that every majority of the
// old configuration overlaps every majority of the new one; so the new
// configuration can take effect the moment it is appended, on every server,
// with no joint consensus. Two rules keep that true:
//
//   - at most one change is uncommitted at any time, and
//   - a leader first commits an entry of its own term (its no-op) before
//     proposing a change, which closes the hole found after the thesis was
//     published (raft-dev, "bug in single-server membership changes", 2015).

// ErrConfigurationChangePending: another membership change has not
// committed yet. Retry when it has.
var ErrConfigurationChangePending = errors.New("raft: a configuration change is still uncommitted; retry when it commits")

// ProposeConfiguration appends conf as the new configuration and returns
// its index. conf must differ from the current one by at most one voter.
func (c *Core) ProposeConfiguration(conf Configuration) (uint64, error) {
	if c.state != Leader {
		return 0, errProposeNotLeader
	}
	if err := conf.Validate(); err != nil {
		return 0, err
	}
	if c.confIndex > c.log.committed {
		return 0, ErrConfigurationChangePending
	}
	if t, _ := c.log.term(c.log.committed); t != c.term {
		return 0, ErrConfigurationChangePending // our no-op has not committed yet
	}
	if d := voterDiff(c.conf, conf); d > 1 {
		return 0, fmt.Errorf("raft: configuration change touches %d voters; change one server at a time", d)
	}
	c.appendLocal([]Entry{{Type: EntryConfiguration, Data: encodeConfiguration(conf)}})
	c.broadcastAppend()
	return c.log.lastIndex(), nil
}

// voterDiff counts voters present in exactly one of a and b.
func voterDiff(a, b Configuration) int {
	in := map[string]int{}
	for _, id := range a.voters() {
		in[id]++
	}
	for _, id := range b.voters() {
		in[id]--
	}
	d := 0
	for _, v := range in {
		if v != 0 {
			d++
		}
	}
	return d
}

// syncProgress makes the leader's per-follower progress match the
// configuration in force: new servers start probing from our last index,
// removed ones are forgotten.
func (c *Core) syncProgress() {
	if c.state != Leader {
		return
	}
	want := map[string]bool{}
	for _, s := range c.conf.Servers {
		if s.ID == c.cfg.ID {
			continue
		}
		want[s.ID] = true
		if c.progress[s.ID] == nil {
			c.progress[s.ID] = newProgress(c.log.lastIndex()+1, c.cfg.MaxInflight)
		}
	}
	for id := range c.progress {
		if !want[id] {
			delete(c.progress, id)
		}
	}
}

// maybeStepDownRemoved: a leader that committed its own removal steps down
// (thesis §4.2.2); until then it keeps replicating without counting itself.
func (c *Core) maybeStepDownRemoved() {
	if c.state == Leader && !c.conf.isVoter(c.cfg.ID) && c.confIndex <= c.log.committed {
		c.stepDown(c.term, "removed from the configuration")
	}
}
