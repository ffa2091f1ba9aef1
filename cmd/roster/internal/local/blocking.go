package local

import (
	"context"

	"roster/catalog"
)

// Blocking forms of the agent endpoints. Consul blocks
// /v1/agent/service/<id> on the service's content hash (?hash=) and the
// other agent listings on an index; both wait on Changed() here. The
// caller bounds the wait through ctx (?wait=, default 5m).

// WaitServiceHash returns the service once its content hash differs from
// hash (at once if it already does, or if hash is ""), or the current
// state when ctx ends. ok is false when the service does not exist.
func (s *State) WaitServiceHash(ctx context.Context, id, hash string) (svc catalog.NodeService, newHash string, ok bool) {
	for {
		changed := s.Changed()
		svc, newHash, ok = s.Service(id)
		if hash == "" || newHash != hash {
			return svc, newHash, ok
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return svc, newHash, ok
		}
	}
}

// WaitIndex returns once Index() exceeds index, or when ctx ends, with the
// current index.
func (s *State) WaitIndex(ctx context.Context, index uint64) uint64 {
	for {
		changed := s.Changed()
		if cur := s.Index(); cur > index {
			return cur
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return s.Index()
		}
	}
}
