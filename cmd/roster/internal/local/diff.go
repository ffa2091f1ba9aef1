package local

import (
	"maps"
	"slices"
	"strings"
	"time"

	"roster/catalog"
)

// This file is the algorithmic half of anti-entropy (Consul API notes
// §10.1), free of I/O: compare local state with the catalog's view of this
// node (updateSyncState), list what must be sent (pendingOps), and record
// what was sent successfully (markSynced). The Syncer in syncer.go does
// the RPCs around it.

// Entries the agent never touches in the catalog: the leader owns the
// serfHealth check (SWIM membership) and, on servers, the consul service.
const (
	SerfCheckID     = "serfHealth"
	ConsulServiceID = "consul"
)

// remoteView is the catalog's view of this node, read by a full sync.
type remoteView struct {
	node     *catalog.Node // nil: the node is not in the catalog
	services []catalog.NodeService
	checks   []catalog.HealthCheck
}

// updateSyncState compares the catalog's view with local state: catalog
// entries unknown locally become tombstones (to be deregistered), local
// entries that are missing or differ are marked out of sync (§10.1 steps
// 2–4).
func (s *State) updateSyncState(rv remoteView) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodeInSync = rv.node != nil && sameNode(s.node, *rv.node)

	remoteSvcs := map[string]catalog.NodeService{}
	for _, rs := range rv.services {
		remoteSvcs[rs.ID] = rs
	}
	for id, rs := range remoteSvcs {
		if id == ConsulServiceID {
			continue
		}
		e, ok := s.services[id]
		if !ok {
			s.services[id] = &serviceEntry{svc: rs, deleted: true}
			continue
		}
		if e.deleted {
			e.inSync = false
			continue
		}
		if e.svc.EnableTagOverride && !slices.Equal(e.svc.Tags, rs.Tags) {
			// §10.1: with EnableTagOverride the catalog's tags win.
			e.svc.Tags = slices.Clone(rs.Tags)
			s.refreshServiceChecksLocked(e.svc, s.touchLocked())
		}
		e.inSync = sameService(e.svc, rs)
	}
	for id, e := range s.services {
		if _, ok := remoteSvcs[id]; !ok {
			if e.deleted {
				delete(s.services, id)
			} else {
				e.inSync = false
			}
		}
	}
	s.updateChecksSyncStateLocked(rv.checks)
}

func (s *State) updateChecksSyncStateLocked(remote []catalog.HealthCheck) {
	remoteChecks := map[string]catalog.HealthCheck{}
	for _, rc := range remote {
		remoteChecks[rc.CheckID] = rc
	}
	for id, rc := range remoteChecks {
		if id == SerfCheckID || rc.ServiceID == ConsulServiceID {
			continue
		}
		c, ok := s.checks[id]
		if !ok {
			s.checks[id] = &checkEntry{check: rc, deleted: true}
			continue
		}
		if c.deleted {
			c.inSync = false
			continue
		}
		// An output-only change still inside its deferral window is not
		// drift: it will be sent when the window closes.
		ignoreOutput := !c.deferUntil.IsZero()
		c.inSync = sameCheck(c.check, rc, ignoreOutput)
	}
	for id, c := range s.checks {
		if _, ok := remoteChecks[id]; !ok {
			if c.deleted {
				delete(s.checks, id)
			} else {
				c.inSync = false
			}
		}
	}
}

// flushDeferred marks checks whose output deferral has run out as out of
// sync and returns the earliest remaining deferral (zero if none).
func (s *State) flushDeferred(now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next time.Time
	for _, c := range s.checks {
		if c.deferUntil.IsZero() {
			continue
		}
		if !now.Before(c.deferUntil) {
			c.deferUntil = time.Time{}
			c.inSync = false
			c.rev = s.touchLocked()
			continue
		}
		if next.IsZero() || c.deferUntil.Before(next) {
			next = c.deferUntil
		}
	}
	return next
}

// opKind says what a syncOp sends.
type opKind int

const (
	opRegisterService opKind = iota + 1
	opDeregisterService
	opRegisterCheck
	opDeregisterCheck
	opRegisterNode
)

// syncOp is one catalog write anti-entropy must make. It carries copies
// and the revisions it was built from, so markSynced can tell whether the
// entry changed while the write was in flight.
type syncOp struct {
	kind     opKind
	id       string
	register catalog.RegisterRequest
	revs     map[string]uint64 // check ID -> rev, for the checks sent along
	rev      uint64
}

// pendingOps lists the writes that bring the catalog in line with local
// state, in Consul's order: services (with their out-of-sync checks),
// service deregistrations, checks, check deregistrations, then the node
// itself if nothing else carried it.
func (s *State) pendingOps() []syncOp {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ops []syncOp
	for _, id := range sortedKeys(s.services) {
		e := s.services[id]
		switch {
		case e.inSync:
		case e.deleted:
			ops = append(ops, syncOp{kind: opDeregisterService, id: id, rev: e.rev})
		default:
			ops = append(ops, s.serviceOpLocked(e))
		}
	}
	for _, id := range sortedKeys(s.checks) {
		c := s.checks[id]
		if c.inSync || s.carriedByServiceLocked(c) {
			continue
		}
		if c.deleted {
			ops = append(ops, syncOp{kind: opDeregisterCheck, id: id, rev: c.rev})
			continue
		}
		svc := (*catalog.NodeService)(nil)
		if e, ok := s.services[c.check.ServiceID]; ok && !e.deleted {
			svc = ptr(e.svc.Clone())
		}
		ops = append(ops, syncOp{kind: opRegisterCheck, id: id, rev: c.rev, register: catalog.RegisterRequest{
			Node: s.node.Clone(), Service: svc, Checks: []catalog.HealthCheck{c.check.Clone()},
		}})
	}
	if !s.nodeInSync {
		ops = append(ops, syncOp{kind: opRegisterNode, rev: s.rev, register: catalog.RegisterRequest{Node: s.node.Clone()}})
	}
	return ops
}

// carriedByServiceLocked reports whether a check goes out with its
// service's registration (the service is out of sync and live).
func (s *State) carriedByServiceLocked(c *checkEntry) bool {
	if c.deleted || c.check.ServiceID == "" {
		return false
	}
	e, ok := s.services[c.check.ServiceID]
	return ok && !e.deleted && !e.inSync
}

func (s *State) serviceOpLocked(e *serviceEntry) syncOp {
	op := syncOp{kind: opRegisterService, id: e.svc.ID, rev: e.rev, revs: map[string]uint64{}}
	op.register = catalog.RegisterRequest{Node: s.node.Clone(), Service: ptr(e.svc.Clone())}
	for _, cid := range sortedKeys(s.checks) {
		c := s.checks[cid]
		if !c.deleted && c.check.ServiceID == e.svc.ID && !c.inSync {
			op.register.Checks = append(op.register.Checks, c.check.Clone())
			op.revs[cid] = c.rev
		}
	}
	return op
}

// markSynced records that op was applied by the catalog. Entries changed
// since op was built stay out of sync. A register carried the node, so
// the node is in sync afterwards.
func (s *State) markSynced(op syncOp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch op.kind {
	case opRegisterService:
		if e, ok := s.services[op.id]; ok && !e.deleted && e.rev == op.rev {
			e.inSync = true
		}
		for cid, rev := range op.revs {
			if c, ok := s.checks[cid]; ok && !c.deleted && c.rev == rev {
				c.inSync = true
			}
		}
	case opDeregisterService:
		if e, ok := s.services[op.id]; ok && e.deleted {
			delete(s.services, op.id)
		}
	case opRegisterCheck:
		if c, ok := s.checks[op.id]; ok && !c.deleted && c.rev == op.rev {
			c.inSync = true
		}
	case opDeregisterCheck:
		if c, ok := s.checks[op.id]; ok && c.deleted {
			delete(s.checks, op.id)
		}
	}
	if op.kind == opRegisterService || op.kind == opRegisterCheck || op.kind == opRegisterNode {
		s.nodeInSync = true
	}
}

// skipNodeUpdate is whether registers may leave the node record alone.
func (s *State) skipNodeUpdate() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodeInSync
}

func sameNode(a, b catalog.Node) bool {
	return a.ID == b.ID && a.Address == b.Address && sameStrMap(a.TaggedAddresses, b.TaggedAddresses) && sameStrMap(a.Meta, b.Meta)
}

func sameService(a, b catalog.NodeService) bool {
	return a.Kind == b.Kind && a.ID == b.ID && a.Service == b.Service && sameStrs(a.Tags, b.Tags) &&
		a.Address == b.Address && a.Port == b.Port && a.Weights == b.Weights &&
		a.EnableTagOverride == b.EnableTagOverride && sameStrMap(a.Meta, b.Meta) &&
		(len(a.TaggedAddresses) == 0 && len(b.TaggedAddresses) == 0 || maps.Equal(a.TaggedAddresses, b.TaggedAddresses))
}

// sameCheck compares node names ignoring case, as Consul's
// HealthCheck.IsSame does: the catalog's node may spell this agent's name
// in another case (catalog/nodename.go).
func sameCheck(a, b catalog.HealthCheck, ignoreOutput bool) bool {
	return strings.EqualFold(a.Node, b.Node) && a.CheckID == b.CheckID && a.Name == b.Name && a.Status == b.Status &&
		a.Notes == b.Notes && (ignoreOutput || a.Output == b.Output) && a.ServiceID == b.ServiceID &&
		a.ServiceName == b.ServiceName && sameStrs(a.ServiceTags, b.ServiceTags) && a.Type == b.Type
}

func sameStrs(a, b []string) bool { return len(a) == 0 && len(b) == 0 || slices.Equal(a, b) }

func sameStrMap(a, b map[string]string) bool {
	return len(a) == 0 && len(b) == 0 || maps.Equal(a, b)
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func ptr[T any](v T) *T { return &v }
