package rpc

import (
	"time"

	"roster/raft"
)

// RaftAdapter presents a *raft.Node as the RaftApplier and RaftOperator
// the endpoints use: futures become blocking calls.
type RaftAdapter struct {
	node *raft.Node
	id   string
}

var (
	_ RaftApplier  = (*RaftAdapter)(nil)
	_ RaftOperator = (*RaftAdapter)(nil)
	_ AsyncApplier = (*RaftAdapter)(nil)
)

// NewRaftAdapter wraps n, whose Raft ID is id (raft.Config.ID).
func NewRaftAdapter(n *raft.Node, id string) *RaftAdapter { return &RaftAdapter{node: n, id: id} }

// LocalID implements RaftOperator.
func (a *RaftAdapter) LocalID() string { return a.id }

// Apply proposes cmd and waits until it is committed and applied here.
func (a *RaftAdapter) Apply(cmd []byte, timeout time.Duration) (uint64, any, error) {
	f := a.node.Apply(cmd, timeout)
	if err := f.Error(); err != nil {
		return 0, nil, err
	}
	return f.Index(), f.Response(), nil
}

// ApplyAsync implements AsyncApplier: cmd is proposed now, the returned
// func waits for it as Apply does.
func (a *RaftAdapter) ApplyAsync(cmd []byte, timeout time.Duration) func() (uint64, any, error) {
	f := a.node.Apply(cmd, timeout)
	return func() (uint64, any, error) {
		if err := f.Error(); err != nil {
			return 0, nil, err
		}
		return f.Index(), f.Response(), nil
	}
}

// Configuration implements RaftOperator.
func (a *RaftAdapter) Configuration() (raft.Configuration, uint64) { return a.node.Configuration() }

// LeaderID implements RaftOperator.
func (a *RaftAdapter) LeaderID() string {
	_, id := a.node.Leader()
	return id
}

// RemoveServer implements RaftOperator.
func (a *RaftAdapter) RemoveServer(id string, timeout time.Duration) error {
	return a.node.RemoveServer(id, timeout).Error()
}

// TransferLeadership implements RaftOperator (Raft thesis §3.10).
func (a *RaftAdapter) TransferLeadership(id string, timeout time.Duration) error {
	return a.node.LeadershipTransfer(id, timeout).Error()
}

// Stats implements RaftOperator.
func (a *RaftAdapter) Stats() map[string]string { return a.node.Stats() }
