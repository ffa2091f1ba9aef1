package catalog

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// nodeCaseIDs are the node IDs of TestNodeName_WhichCaseTheNodeKeeps,
// and nodeCaseSession the ID of nodeCaseSetup's session.
const (
	nodeCaseIDA     = "aaaaaaaa-0000-0000-0000-000000000001"
	nodeCaseIDB     = "bbbbbbbb-0000-0000-0000-000000000002"
	nodeCaseSession = "11111111-2222-3333-4444-555555555555"
)

// newNodeCaseHarness is a store holding nodeCaseSetup's registrations
// and a mirror loaded with its registry.
func newNodeCaseHarness(t *testing.T) (*harness, *Mirror) {
	t.Helper()
	h := newHarness(t, Config{})
	for _, cmd := range nodeCaseSetup() {
		h.ok(cmd)
	}
	m := NewMirror()
	if err := m.Load(h.s.Registry()); err != nil {
		t.Fatal(err)
	}
	return h, m
}

// nodeCaseSetup is a node as an agent registers it: "web-1" with ID A, a
// service, a live serfHealth, a service check, a session bound to
// serfHealth and a coordinate.
func nodeCaseSetup() []Command {
	node := Node{ID: nodeCaseIDA, Node: "web-1", Address: "10.0.0.1", Datacenter: "dc1"}
	return []Command{
		&RegisterRequest{Node: node, Service: &NodeService{ID: "web", Service: "web", Port: 80},
			Checks: []HealthCheck{
				{CheckID: serfCheckID, Name: "Serf Health Status", Status: HealthPassing},
				{CheckID: "service:web", Name: "web", ServiceID: "web", Status: HealthPassing},
			}},
		&SessionRequest{Verb: SessionCreate, Session: SessionEntry{ID: nodeCaseSession,
			Node: "web-1", NodeChecks: []string{serfCheckID}, Behavior: SessionRelease}},
		&CoordinateBatchRequest{Updates: []CoordinateEntry{{Node: "web-1", Coord: Coordinate{Vec: []float64{0.5}}}}},
	}
}

// TestNodeName_WhichCaseTheNodeKeeps pins, through Apply and ApplyCommand
// and the read API, the case a node keeps when a write names it in another
// case, as Consul's state store decides it (nodename.go): a write that
// changes the node gives it the write's case, one that changes nothing but
// the case, or does not write the node, leaves it; a node with another ID
// may not take a live node's name. Whatever the outcome, every read under
// any case answers with the one stored name (the node, its services,
// checks, sessions and coordinate), the registry's hash is its from-scratch
// value, a mirror following the deltas agrees, and a snapshot restores to
// the same store.
func TestNodeName_WhichCaseTheNodeKeeps(t *testing.T) {
	txnSet := func(n Node, more ...TxnOp) *TxnRequest {
		return &TxnRequest{Ops: append([]TxnOp{{Node: &TxnNodeOp{Verb: OpSet, Node: n}}}, more...)}
	}
	cases := []struct {
		name     string
		write    Command
		wantName string // the stored name afterwards
		wantID   string
		wantErr  string // a substring of the command's error
		changes  bool   // whether the write changes the catalog
	}{
		{name: "same content, other case",
			write:    &RegisterRequest{Node: Node{ID: nodeCaseIDA, Node: "WEB-1", Address: "10.0.0.1", Datacenter: "dc1"}},
			wantName: "web-1", wantID: nodeCaseIDA},
		{name: "new address, other case",
			write:    &RegisterRequest{Node: Node{ID: nodeCaseIDA, Node: "WEB-1", Address: "10.0.0.2", Datacenter: "dc1"}},
			wantName: "WEB-1", wantID: nodeCaseIDA, changes: true},
		{name: "new meta, other case, with a new service",
			write: &RegisterRequest{Node: Node{ID: nodeCaseIDA, Node: "Web-1", Address: "10.0.0.1", Datacenter: "dc1",
				Meta: map[string]string{"rack": "r2"}}, Service: &NodeService{ID: "api", Service: "api", Port: 81}},
			wantName: "Web-1", wantID: nodeCaseIDA, changes: true},
		{name: "a new service, node unchanged, other case",
			write: &RegisterRequest{Node: Node{ID: nodeCaseIDA, Node: "Web-1", Address: "10.0.0.1", Datacenter: "dc1"},
				Service: &NodeService{ID: "api", Service: "api", Port: 81}},
			wantName: "web-1", wantID: nodeCaseIDA, changes: true},
		{name: "SkipNodeUpdate, other case",
			write: &RegisterRequest{Node: Node{Node: "WEB-1", Address: "10.9.9.9"}, SkipNodeUpdate: true,
				Checks: []HealthCheck{{Node: "WEB-1", CheckID: "service:web", Name: "web", ServiceID: "web", Status: HealthWarning}}},
			wantName: "web-1", wantID: nodeCaseIDA, changes: true},
		{name: "no ID, other case",
			write:    &RegisterRequest{Node: Node{Node: "WEB-1", Address: "10.0.0.1", Datacenter: "dc1"}},
			wantName: "WEB-1", wantID: "", changes: true},
		{name: "another ID while serfHealth passes",
			write:    &RegisterRequest{Node: Node{ID: nodeCaseIDB, Node: "WEB-1", Address: "10.0.0.7", Datacenter: "dc1"}},
			wantName: "web-1", wantID: nodeCaseIDA,
			wantErr: "Node name WEB-1 is reserved by node " + nodeCaseIDA + " with name web-1 (10.0.0.1)"},
		{name: "txn set, new address, other case",
			write:    txnSet(Node{ID: nodeCaseIDA, Node: "WEB-1", Address: "10.0.0.2", Datacenter: "dc1"}),
			wantName: "WEB-1", wantID: nodeCaseIDA, changes: true},
		{name: "txn set, other case, then a failing op",
			write: txnSet(Node{ID: nodeCaseIDA, Node: "WEB-1", Address: "10.0.0.2", Datacenter: "dc1"},
				TxnOp{Service: &TxnServiceOp{Verb: OpSet, Node: "nowhere", Service: NodeService{ID: "x", Service: "x"}}}),
			wantName: "web-1", wantID: nodeCaseIDA, wantErr: "Missing node registration"},
	}
	for _, tc := range cases {
		for _, via := range []string{"Apply", "ApplyCommand"} {
			t.Run(tc.name+"/"+via, func(t *testing.T) {
				h, m := newNodeCaseHarness(t)
				before := h.idx
				var res Result
				if via == "Apply" {
					res = h.apply(tc.write)
				} else {
					h.idx++
					res = h.s.ApplyCommand(h.idx, tc.write)
				}
				err := res.Err
				if err == nil && res.Txn != nil && len(res.Txn.Errors) > 0 {
					err = errorString(res.Txn.Errors[0].What)
				}
				switch {
				case tc.wantErr == "" && err != nil:
					t.Fatalf("write: %v", err)
				case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
					t.Fatalf("write: err = %v, want %q", err, tc.wantErr)
				}
				if got := h.s.Index(WatchTable(TableNodes)) > before || h.s.Index(WatchTable(TableChecks)) > before ||
					h.s.Index(WatchTable(TableServices)) > before; got != tc.changes {
					t.Fatalf("the write moved the catalog's indexes: %v, want %v", got, tc.changes)
				}
				checkNodeCase(t, h.s, tc.wantName, tc.wantID)
				if err := m.Apply(mustSince(t, h.s, m.Index())); err != nil || m.Hash() != h.s.Hash() {
					t.Fatalf("mirror: %v; hash %s, store %s", err, m.Hash(), h.s.Hash())
				}
				restoreCopy(t, h)
			})
		}
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// checkNodeCase checks that the store holds one node, named want with ID
// id, and that every read under any case of its name answers with that
// name.
func checkNodeCase(t *testing.T, s *Store, want, id string) {
	t.Helper()
	nodes, _ := s.Nodes()
	if len(nodes) != 1 || nodes[0].Node != want || nodes[0].ID != id || nodes[0].CreateIndex != 1 {
		t.Fatalf("nodes = %+v, want %s (ID %q) created at 1", nodes, want, id)
	}
	for _, asked := range []string{"web-1", "WEB-1", "wEb-1"} {
		ns, idx := s.NodeServices(asked)
		if ns == nil || ns.Node.Node != want || idx != s.Index(WatchNode(want)) {
			t.Fatalf("NodeServices(%s) = %+v at %d", asked, ns, idx)
		}
		checks, _ := s.NodeChecks(asked)
		if len(checks) != 2 {
			t.Fatalf("NodeChecks(%s) = %+v, want serfHealth and service:web", asked, checks)
		}
		for _, c := range checks {
			if c.Node != want {
				t.Fatalf("NodeChecks(%s): check %s is on %q, want %q", asked, c.CheckID, c.Node, want)
			}
		}
		if ss, _ := s.NodeSessions(asked); len(ss) != 1 || ss[0].Node != want {
			t.Fatalf("NodeSessions(%s) = %+v, want one on %s", asked, ss, want)
		}
	}
	sn, _ := s.ServiceNodes("web", nil)
	if len(sn) != 1 || sn[0].Node != want || sn[0].CreateIndex != 1 || sn[0].ModifyIndex != 1 {
		t.Fatalf("ServiceNodes(web) = %+v, want web on %s, created and modified at 1 (a move is no write)", sn, want)
	}
	entries, _ := s.CheckServiceNodes("web", nil, false)
	if len(entries) != 1 || entries[0].Node.Node != want || len(entries[0].Checks) != 2 ||
		entries[0].Checks[0].Node != want || entries[0].Checks[1].Node != want {
		t.Fatalf("CheckServiceNodes(web) = %+v, want web and its checks on %s", entries, want)
	}
	if coords, _ := s.Coordinates(); len(coords) != 1 || coords[0].Node != want {
		t.Fatalf("Coordinates() = %+v, want one for %s", coords, want)
	}
	if got := recomputeHash(s); s.Hash() != got {
		t.Fatalf("hash %s, recomputed %s", s.Hash(), got)
	}
	if len(s.st.nodeFold) != 1 || len(s.st.nodeFold[foldName(want)]) != 1 {
		t.Fatalf("nodeFold = %v, want %s alone", s.st.nodeFold, want)
	}
}

// TestNodeName_NodeEventsAreNetPerCommand pins the delta log's node events
// for commands that remove and re-add a name (delta.go): replaying a
// command's node events on the node set before it gives the node set after
// it, whatever the order of the command's own steps. Two renames in one
// transaction (web-1 to WEB-1 and back) and a node delete followed by a
// set of the same node leave the node present, so they report nothing;
// before the events were netted, such a command ended with "node removed"
// for a node the catalog holds.
func TestNodeName_NodeEventsAreNetPerCommand(t *testing.T) {
	nodeSet := func(n Node) TxnOp { return TxnOp{Node: &TxnNodeOp{Verb: OpSet, Node: n}} }
	nodeDel := func(name string) TxnOp { return TxnOp{Node: &TxnNodeOp{Verb: OpDelete, Node: Node{Node: name}}} }
	web1 := func(name, addr string) Node {
		return Node{ID: nodeCaseIDA, Node: name, Address: addr, Datacenter: "dc1"}
	}
	cases := []struct {
		name  string
		write Command
		want  []string // the command's node events, kind:node
	}{
		{name: "one rename",
			write: &RegisterRequest{Node: web1("WEB-1", "10.0.0.2")},
			want:  []string{"node-added:WEB-1", "node-removed:web-1"}},
		{name: "two renames back to the first case",
			write: &TxnRequest{Ops: []TxnOp{nodeSet(web1("WEB-1", "10.0.0.2")), nodeSet(web1("web-1", "10.0.0.3"))}}},
		{name: "two renames to a third case",
			write: &TxnRequest{Ops: []TxnOp{nodeSet(web1("WEB-1", "10.0.0.2")), nodeSet(web1("Web-1", "10.0.0.3"))}},
			want:  []string{"node-added:Web-1", "node-removed:web-1"}},
		{name: "delete then set",
			write: &TxnRequest{Ops: []TxnOp{nodeDel("web-1"), nodeSet(web1("web-1", "10.0.0.2"))}}},
		{name: "delete then set in another case",
			write: &TxnRequest{Ops: []TxnOp{nodeDel("web-1"), nodeSet(web1("WEB-1", "10.0.0.2"))}},
			want:  []string{"node-added:WEB-1", "node-removed:web-1"}},
		{name: "rename then delete",
			write: &TxnRequest{Ops: []TxnOp{nodeSet(web1("WEB-1", "10.0.0.2")), nodeDel("WEB-1")}},
			want:  []string{"node-removed:web-1"}},
		{name: "a new node set then deleted",
			write: &TxnRequest{Ops: []TxnOp{nodeSet(Node{Node: "db-1", Address: "10.0.0.9"}), nodeDel("db-1")}}},
		{name: "a new node and a delete",
			write: &TxnRequest{Ops: []TxnOp{nodeSet(Node{Node: "db-1", Address: "10.0.0.9"}), nodeDel("web-1")}},
			want:  []string{"node-added:db-1", "node-removed:web-1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, m := newNodeCaseHarness(t)
			before := nodeNames(h.s)
			if res := h.ok(tc.write); res.Txn != nil && len(res.Txn.Errors) > 0 {
				t.Fatalf("write: %s", res.Txn.Errors[0].What)
			}
			d := mustSince(t, h.s, h.idx-1)
			var got []string
			for _, c := range d.Changes {
				if c.Kind == NodeAdded || c.Kind == NodeRemoved {
					got = append(got, c.Kind.String()+":"+c.Node)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("node events %v, want %v", got, tc.want)
			}
			checkNodeEvents(t, d, before, nodeNames(h.s))
			if err := m.Apply(d); err != nil || m.Hash() != h.s.Hash() {
				t.Fatalf("mirror: %v; hash %s, store %s", err, m.Hash(), h.s.Hash())
			}
		})
	}
}

// nodeNames is the set of the store's node names.
func nodeNames(s *Store) map[string]bool {
	nodes, _ := s.Nodes()
	set := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		set[n.Node] = true
	}
	return set
}

// checkNodeEvents checks the delta log's contract for node events
// (delta.go) on delta d, which took the node set from before to after:
// each event changes the presence of its node (no "added" for a present
// node, no "removed" for an absent one), replaying them gives after, and
// within one index a node's "added" comes before any instance change on
// it and its "removed" after them. before is updated in place.
func checkNodeEvents(t *testing.T, d Delta, before, after map[string]bool) {
	t.Helper()
	removed := map[string]uint64{} // node -> index of its removal
	for _, c := range d.Changes {
		switch c.Kind {
		case NodeAdded:
			if before[c.Node] {
				t.Fatalf("index %d: node-added %s, which is present; changes %+v", c.Index, c.Node, d.Changes)
			}
			before[c.Node] = true
		case NodeRemoved:
			if !before[c.Node] {
				t.Fatalf("index %d: node-removed %s, which is absent; changes %+v", c.Index, c.Node, d.Changes)
			}
			delete(before, c.Node)
			removed[c.Node] = c.Index
		default:
			node := c.Instance.Node
			if !before[node] {
				t.Fatalf("index %d: %s on %s, which is absent; changes %+v", c.Index, c.Kind, node, d.Changes)
			}
			if idx, ok := removed[node]; ok && idx == c.Index {
				t.Fatalf("index %d: %s on %s after its node-removed; changes %+v", c.Index, c.Kind, node, d.Changes)
			}
		}
	}
	if !maps.Equal(before, after) {
		t.Fatalf("node events replayed give %v, the store holds %v; changes %+v", sortedKeys(before), sortedKeys(after), d.Changes)
	}
}
