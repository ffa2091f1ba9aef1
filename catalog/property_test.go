package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"roster/internal/testkit"
)

// cmdGen produces random but plausible commands over small name pools, so
// that commands collide on the same nodes, services, keys and sessions.
type cmdGen struct {
	r        *rand.Rand
	sessions int
}

func (g *cmdGen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }
func (g *cmdGen) pickNode() string         { return fmt.Sprintf("n%d", g.r.IntN(6)) }

// node names a node, now and then in another case: a write that changes
// a node under another case renames it (nodename.go).
func (g *cmdGen) node() string {
	if g.r.IntN(5) == 0 {
		return strings.ToUpper(g.pickNode())
	}
	return g.pickNode()
}
func (g *cmdGen) key() string { return g.pick("a/", "a/b/", "b/") + g.pick("x", "y", "z") }
func (g *cmdGen) status() string {
	return g.pick(HealthPassing, HealthPassing, HealthWarning, HealthCritical)
}
func (g *cmdGen) session() string { return fmt.Sprintf("s%d", g.r.IntN(g.sessions+1)) }

func (g *cmdGen) next() Command {
	switch g.r.IntN(14) {
	case 0, 1:
		return &RegisterRequest{Node: Node{Node: g.node(), Address: g.pick("10.0.0.1", "10.0.0.2"), Datacenter: "dc1",
			Meta: map[string]string{"rack": g.pick("r1", "r2")}}}
	case 2, 3:
		name := g.pick("web", "api", "db")
		return &RegisterRequest{Node: Node{Node: g.node(), Address: "10.0.0.1", Datacenter: "dc1"},
			Service: &NodeService{ID: name + g.pick("", "-2"), Service: name, Port: 8000 + g.r.IntN(3),
				Tags: slices.Clone([]string{"v1", "v2", "canary"}[:g.r.IntN(3)]), Meta: map[string]string{"m": g.pick("", "x")}}}
	case 4, 5:
		return g.check()
	case 6:
		d := &DeregisterRequest{Node: g.node()}
		switch g.r.IntN(3) {
		case 0:
			d.ServiceID = g.pick("web", "api", "db", "web-2")
		case 1:
			d.CheckID = g.pick("serfHealth", "svc")
		}
		return d
	case 7, 8:
		return g.kv()
	case 9:
		g.sessions++
		return &SessionRequest{Verb: SessionCreate, Session: SessionEntry{ID: fmt.Sprintf("s%d", g.sessions),
			Node: g.node(), Behavior: g.pick(SessionRelease, SessionDelete), LockDelay: time.Second,
			NodeChecks: []string{"serfHealth"}[:g.r.IntN(2)]}}
	case 10:
		return &SessionRequest{Verb: SessionDestroy, Session: SessionEntry{ID: g.session()}}
	case 11:
		ops := make([]TxnOp, 1+g.r.IntN(3))
		for i := range ops {
			if c, ok := g.check().(*RegisterRequest); ok && g.r.IntN(2) == 0 {
				ops[i] = TxnOp{Check: &TxnCheckOp{Verb: OpSet, Check: c.Checks[0]}}
			} else if g.r.IntN(4) == 0 {
				// A rename inside a transaction that a later op may fail.
				ops[i] = TxnOp{Node: &TxnNodeOp{Verb: OpSet, Node: Node{Node: g.node(),
					Address: g.pick("10.0.0.1", "10.0.0.3"), Datacenter: "dc1"}}}
			} else if g.r.IntN(6) == 0 {
				// With a set of the same node, one txn removes and
				// re-adds it.
				ops[i] = TxnOp{Node: &TxnNodeOp{Verb: OpDelete, Node: Node{Node: g.node()}}}
			} else {
				ops[i] = TxnOp{KV: g.kv()}
			}
		}
		return &TxnRequest{Ops: ops}
	case 12:
		return &CoordinateBatchRequest{Updates: []CoordinateEntry{{Node: g.node(), Coord: Coordinate{Vec: []float64{g.r.Float64()}}}}}
	default:
		return &TombstoneReapRequest{Index: uint64(g.r.IntN(50))}
	}
}

func (g *cmdGen) check() Command {
	c := HealthCheck{Node: g.node(), Status: g.status(), Output: g.pick("ok", "fine")}
	if g.r.IntN(2) == 0 {
		c.CheckID = "serfHealth"
	} else {
		c.CheckID, c.ServiceID = "svc", g.pick("web", "api", "db")
	}
	return &RegisterRequest{Node: Node{Node: c.Node}, SkipNodeUpdate: true, Checks: []HealthCheck{c}}
}

func (g *cmdGen) kv() *KVRequest {
	r := &KVRequest{Key: g.key(), Value: []byte(g.pick("1", "2")), Session: g.session(), Index: uint64(g.r.IntN(30))}
	r.Verb = g.pick(KVSet, KVSet, KVCAS, KVLock, KVLock, KVUnlock, KVDelete, KVDeleteCAS, KVDeleteTree)
	if r.Verb == KVDeleteTree {
		r.Key = g.pick("a/", "b/", "a/b/")
	}
	return r
}

// recomputeHash derives every instance from the health read path, which
// shares no code with the incremental bookkeeping, and hashes from scratch.
func recomputeHash(s *Store) string {
	var all []Instance
	services, _ := s.Services()
	for name := range services {
		entries, _ := s.CheckServiceNodes(name, nil, false)
		for _, e := range entries {
			health := HealthPassing
			for _, c := range e.Checks {
				if c.Status == HealthCritical {
					health = HealthCritical
					break
				}
				if c.Status == HealthWarning {
					health = HealthWarning
				}
			}
			all = append(all, Instance{Node: e.Node.Node, NodeAddress: e.Node.Address, Datacenter: e.Node.Datacenter,
				ID: e.Service.ID, Service: e.Service.Service, Tags: e.Service.Tags, Address: e.Service.Address,
				Port: e.Service.Port, Meta: e.Service.Meta, Health: health})
		}
	}
	return HashInstances(all)
}

// TestProperty_RandomCommands applies random command sequences and checks
// after every step: the incremental hashcode equals a from-scratch
// recomputation; a mirror fed with Since deltas ends with the leader's
// hashcode; a mirror that misses a delta detects the gap and one that loses
// a change inside a delta detects it (or provably lost nothing); and a
// snapshot taken at a random point restores to an identical store that
// keeps applying identically; the deltas' node events give the store's
// node set; a command that did not apply left every map and index as it
// was; and the derived indexes equal those a restore rebuilds.
func TestProperty_RandomCommands(t *testing.T) {
	runs := testkit.ChaosRuns(4)
	for run := range runs {
		t.Run(fmt.Sprint("run", run), func(t *testing.T) { propertyRun(t, 400) })
	}
}

func propertyRun(t *testing.T, steps int) {
	r := testkit.Rand(t)
	g := &cmdGen{r: r}
	leader := newHarness(t, Config{DeltaCapacity: 1 << 14})
	var restored *harness
	snapAt := 1 + r.IntN(steps-1)
	mirror := NewMirror()
	nodes := map[string]bool{} // the node set the mirrored deltas' node events give
	detected := 0              // lost changes the lossy mirror caught by hash
	var trace []string
	defer func() {
		if t.Failed() {
			t.Logf("last commands:\n%s", lastN(trace, 15))
		}
	}()
	for step := 1; step <= steps; step++ {
		cmd := g.next()
		trace = append(trace, fmt.Sprintf("%d: %T %+v", step, cmd, cmd))
		before := dumpIndexes(leader.s.st)
		res := leader.apply(cmd)
		if after := dumpIndexes(leader.s.st); (!res.OK || res.Err != nil) && after != before {
			t.Fatalf("step %d: a command that did not apply changed the state:\n%s\n---\n%s", step, before, after)
		}
		if restored != nil {
			again := restored.apply(cloneCommand(t, cmd, leader.idx))
			if fmt.Sprint(res.OK, res.Err) != fmt.Sprint(again.OK, again.Err) {
				t.Fatalf("step %d: leader %v/%v, restored store %v/%v", step, res.OK, res.Err, again.OK, again.Err)
			}
		}
		if got, want := leader.s.Hash(), recomputeHash(leader.s); got != want {
			t.Fatalf("step %d: incremental hash %s, recomputed %s", step, got, want)
		}
		if r.IntN(4) == 0 || step == steps {
			detected += followMirror(t, leader.s, mirror, nodes, r)
		}
		if step == snapAt {
			restored = restoreCopy(t, leader)
		} else if step%50 == 0 {
			restoreCopy(t, leader) // the derived indexes match a rebuild
		}
	}
	if restored != nil {
		assertSameStore(t, leader.s, restored.s)
	}
	if mirror.Hash() != leader.s.Hash() {
		t.Fatalf("mirror ended at %s, leader at %s", mirror.Hash(), leader.s.Hash())
	}
	if detected == 0 {
		t.Fatalf("no lost change was ever detected: the generator makes no registry changes")
	}
	t.Logf("%d lost changes detected by hash; %d instances at the end", detected, len(leader.s.Registry().Instances))
}

// followMirror brings m up to date with one delta, first proving that a
// copy of the mirror which loses a change or a whole delta notices. nodes
// is the node set m's deltas gave so far: the delta's node events must
// take it to the store's (checkNodeEvents).
func followMirror(t *testing.T, s *Store, m *Mirror, nodes map[string]bool, r *rand.Rand) (detected int) {
	t.Helper()
	d, err := s.Since(m.Index())
	if err != nil {
		t.Fatalf("Since(%d): %v", m.Index(), err)
	}
	checkNodeEvents(t, d, nodes, nodeNames(s))
	if len(d.Changes) > 0 {
		lossy := copyMirror(m)
		drop := r.IntN(len(d.Changes))
		partial := d
		partial.Changes = slices.Delete(slices.Clone(d.Changes), drop, drop+1)
		err := lossy.Apply(partial)
		if err == nil && !sameInstances(lossy.Instances(""), s.Registry().Instances) {
			t.Fatalf("mirror lost change %+v without noticing", d.Changes[drop])
		}
		if err != nil && !errors.Is(err, ErrHashMismatch) {
			t.Fatalf("lossy mirror: %v, want ErrHashMismatch", err)
		}
		if err != nil {
			detected++
		}
		skipper := copyMirror(m)
		next := Delta{From: d.To, To: d.To + 1, Hash: d.Hash, HashScheme: d.HashScheme}
		if err := skipper.Apply(next); !errors.Is(err, ErrGap) && d.To != m.Index() {
			t.Fatalf("mirror skipping (%d, %d] applied the next delta: %v", d.From, d.To, err)
		}
	}
	if err := m.Apply(d); err != nil {
		t.Fatalf("mirror apply (%d, %d] with %d changes: %v", d.From, d.To, len(d.Changes), err)
	}
	return detected
}

func copyMirror(m *Mirror) *Mirror {
	c := NewMirror()
	if err := c.Load(Registry{Index: m.Index(), Hash: m.Hash(), HashScheme: HashScheme, Instances: m.Instances("")}); err != nil {
		panic(err) // a mirror's own content always hashes to its own hash
	}
	return c
}

// restoreCopy snapshots h's store into a fresh one and checks they match.
func restoreCopy(t *testing.T, h *harness) *harness {
	t.Helper()
	c := newHarness(t, Config{DeltaCapacity: 1 << 14})
	if err := c.s.Restore(bytes.NewReader(snapshotBytes(t, h.s))); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	c.idx = h.idx
	assertSameStore(t, h.s, c.s)
	// The derived indexes kept write by write equal those the restore
	// built from scratch.
	if a, b := dumpState(h.s.st), dumpState(c.s.st); a != b {
		t.Fatalf("derived indexes differ from a restore's:\n%s\n---\n%s", a, b)
	}
	if _, err := c.s.Since(h.idx - 1); h.idx > 0 && !errors.Is(err, ErrTruncated) {
		t.Fatalf("restored store answered Since(%d) = %v; its log starts at %d", h.idx-1, err, h.idx)
	}
	return c
}

func assertSameStore(t *testing.T, a, b *Store) {
	t.Helper()
	if !bytes.Equal(snapshotBytes(t, a), snapshotBytes(t, b)) {
		t.Fatalf("snapshots differ")
	}
	if a.Hash() != b.Hash() || !reflect.DeepEqual(a.Registry(), b.Registry()) {
		t.Fatalf("registries differ: %s vs %s", a.Hash(), b.Hash())
	}
}

// cloneCommand re-decodes cmd, as a second server would see it.
func cloneCommand(t *testing.T, cmd Command, _ uint64) Command {
	c, err := DecodeCommand(EncodeCommand(cmd))
	if err != nil {
		t.Fatalf("re-decode: %v", err)
	}
	return c
}

func lastN(xs []string, n int) string {
	var b bytes.Buffer
	for _, x := range xs[max(0, len(xs)-n):] {
		b.WriteString(x + "\n")
	}
	return b.String()
}

// TestProperty_MirrorFallsBackOnTruncation: with a tiny ring the mirror
// meets ErrTruncated and recovers with exactly one full pull.
func TestProperty_MirrorFallsBackOnTruncation(t *testing.T) {
	h := newHarness(t, Config{DeltaCapacity: 4})
	m := NewMirror()
	if err := m.Load(h.s.Registry()); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		h.ok(regService(fmt.Sprint("n", i), "web", "web", 80))
	}
	if _, err := h.s.Since(m.Index()); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Since(%d) with a 4-change ring after 20 changes: %v, want ErrTruncated", m.Index(), err)
	}
	if err := m.Load(h.s.Registry()); err != nil || m.Len() != 10 {
		t.Fatalf("full pull: %v, %d instances", err, m.Len())
	}
	h.ok(regCheck("n3", "c", "web", HealthCritical))
	d := mustSince(t, h.s, m.Index())
	if len(d.Changes) != 1 || d.Changes[0].Kind != HealthChanged {
		t.Fatalf("delta %+v, want one health-changed", d)
	}
	if err := m.Apply(d); err != nil {
		t.Fatalf("apply after fallback: %v", err)
	}
}

func sameInstances(a, b []Instance) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}
