package agent

import (
	"context"
	"errors"
	"time"

	"roster/raft"
	"roster/rpc"
)

// raftView is the local Raft node as the rpc package sees it (rpc.Cluster).
// Raft addresses are RPC addresses: Raft shares the :8300 listener, so the
// leader's Raft address is where forwarded requests go.
type raftView struct {
	node        *raft.Node
	readTimeout time.Duration // bounds one ReadIndex round
}

var _ rpc.Cluster = (*raftView)(nil)

func (v *raftView) IsLeader() bool { return v.node.State() == raft.Leader }

func (v *raftView) LeaderAddr() string {
	addr, _ := v.node.Leader()
	return addr
}

func (v *raftView) LastContact() time.Duration {
	if v.IsLeader() {
		return 0
	}
	t := v.node.LastContact()
	if t.IsZero() {
		// Never heard from a leader: as stale as it gets. Reads bounded by
		// ?max_stale then go to the leader.
		return time.Duration(1<<63 - 1)
	}
	return time.Since(t)
}

var _ rpc.ReadIndexCluster = (*raftView)(nil)

// ConsistentRead runs Raft's ReadIndex (thesis §6.4). A lost leadership is
// reported as rpc.ErrNoLeader so the forwarder retries with a fresh view.
func (v *raftView) ConsistentRead(ctx context.Context) error {
	_, err := v.ReadIndex(ctx)
	return err
}

// ReadIndex is ConsistentRead returning the read index, which the leader
// hands to followers serving ?consistent reads themselves (rpc's
// follower_read.go).
func (v *raftView) ReadIndex(ctx context.Context) (uint64, error) {
	timeout := v.readTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		return 0, ctx.Err()
	}
	idx, err := v.node.ReadIndex(timeout)
	if errors.Is(err, raft.ErrNotLeader) {
		return 0, rpc.ErrNoLeader
	}
	return idx, err
}

// WaitApplied waits until this server's FSM applied index (a follower
// read's step 4).
func (v *raftView) WaitApplied(ctx context.Context, index uint64) error {
	return v.node.WaitApplied(ctx, index)
}

// Peers lists the voters' addresses, as Status.Peers reports them.
func (v *raftView) Peers() ([]string, error) {
	conf, _ := v.node.Configuration()
	var out []string
	for _, s := range conf.Servers {
		if s.Suffrage == raft.Voter {
			out = append(out, s.Address)
		}
	}
	return out, nil
}
