package catalog

import (
	"bytes"
	"strings"
	"testing"
)

// A registration under "n1" while "N1" is stored updates that node, as
// Consul's lower-cased node index makes it do: one node, the new address
// and with it the new case, both services and a check that named its node
// in yet another case. Before node writes folded case, "n1" became a second
// node.
func TestNodeName_RegistrationInOtherCaseUpdatesTheNode(t *testing.T) {
	h := newHarness(t, Config{})
	h.ok(&RegisterRequest{Node: Node{Node: "N1", Address: "10.0.0.1", Datacenter: "dc1"},
		Service: &NodeService{ID: "web-1", Service: "web", Port: 80}})
	h.ok(&RegisterRequest{Node: Node{Node: "n1", Address: "10.0.0.9", Datacenter: "dc1"},
		Service: &NodeService{ID: "web-2", Service: "web", Port: 81},
		Checks:  []HealthCheck{{Node: "N1", CheckID: "c1", Name: "c1", ServiceID: "web-2", Status: HealthPassing}}})
	nodes, _ := h.s.Nodes()
	if len(nodes) != 1 || nodes[0].Node != "n1" || nodes[0].Address != "10.0.0.9" {
		t.Fatalf("nodes = %+v, want the one node n1 at 10.0.0.9", nodes)
	}
	ns, _ := h.s.NodeServices("n1")
	if ns == nil || len(ns.Services) != 2 {
		t.Fatalf("NodeServices(n1) = %+v, want web-1 and web-2", ns)
	}
	if checks, _ := h.s.NodeChecks("N1"); len(checks) != 1 || checks[0].Node != "n1" {
		t.Fatalf("NodeChecks(N1) = %+v, want c1 on n1", checks)
	}
	if entries, _ := h.s.CheckServiceNodes("web", nil, false); len(entries) != 2 || len(entries[1].Checks) != 1 {
		t.Fatalf("web = %+v, want web-1 and web-2 (with c1) on n1", entries)
	}
	// A service or check written on its own under another case lands
	// on the same node too.
	h.ok(&RegisterRequest{Node: Node{Node: "n1"}, SkipNodeUpdate: true,
		Checks: []HealthCheck{{Node: "n1", CheckID: "c2", Name: "c2", Status: HealthPassing}}})
	if checks, _ := h.s.NodeChecks("N1"); len(checks) != 2 {
		t.Fatalf("NodeChecks(N1) = %+v, want c1 and c2", checks)
	}
	h.ok(&DeregisterRequest{Node: "n1", CheckID: "c2"})
	h.ok(&DeregisterRequest{Node: "n1"})
	if nodes, _ := h.s.Nodes(); len(nodes) != 0 {
		t.Fatalf("deregistering n1 left %+v", nodes)
	}
}

// Consul refuses a node with an ID the name of a live node with another
// ID ("Node name ... is reserved"), and allows it once that node's
// serfHealth is critical, when the stored node has no ID, or when it has
// no serfHealth check (an external node).
func TestNodeName_LiveNodeWithOtherIDKeepsItsName(t *testing.T) {
	h := newHarness(t, Config{})
	idA, idB := "aaaaaaaa-0000-0000-0000-000000000001", "bbbbbbbb-0000-0000-0000-000000000002"
	h.ok(&RegisterRequest{Node: Node{ID: idA, Node: "N1", Address: "10.0.0.1"},
		Checks: []HealthCheck{{CheckID: serfCheckID, Name: "Serf Health Status", Status: HealthPassing}}})
	for _, name := range []string{"N1", "n1"} {
		res := h.apply(&RegisterRequest{Node: Node{ID: idB, Node: name, Address: "10.0.0.2"}})
		if res.Err == nil || !strings.Contains(res.Err.Error(), "Node name "+name+" is reserved by node "+idA+" with name N1 (10.0.0.1)") {
			t.Fatalf("register %s with another ID: err = %v, want reserved", name, res.Err)
		}
	}
	res := h.apply(&TxnRequest{Ops: []TxnOp{{Node: &TxnNodeOp{Verb: OpSet, Node: Node{ID: idB, Node: "n1", Address: "x"}}}}})
	if res.OK || res.Txn == nil || len(res.Txn.Errors) != 1 || !strings.Contains(res.Txn.Errors[0].What, "reserved") {
		t.Fatal("txn node set with another ID took a live node's name")
	}
	// The same ID, or none, updates the node.
	h.ok(&RegisterRequest{Node: Node{ID: idA, Node: "n1", Address: "10.0.0.3"}})
	h.ok(&RegisterRequest{Node: Node{Node: "n1", Address: "10.0.0.4"}})
	h.ok(regCheck("n1", serfCheckID, "", HealthCritical))
	h.ok(&RegisterRequest{Node: Node{ID: idB, Node: "n1", Address: "10.0.0.2"}})
	nodes, _ := h.s.Nodes()
	if len(nodes) != 1 || nodes[0].ID != idB || nodes[0].Node != "n1" {
		t.Fatalf("nodes = %+v, want N1 taken over by %s as n1", nodes, idB)
	}
}

// The catalog never holds two nodes that differ only in case, whatever the
// order of writes (txn included; each write here changes the address, so
// the node takes each write's case), and a snapshot of it restores to the
// same state and hash.
func TestNodeName_FoldedWritesSurviveSnapshotRestore(t *testing.T) {
	h := newHarness(t, Config{})
	h.ok(regService("Web-Node", "web-1", "web", 80))
	h.ok(regService("web-node", "web-2", "web", 81))
	h.ok(regService("WEB-NODE", "web-1", "web", 82))
	h.ok(&TxnRequest{Ops: []TxnOp{{Node: &TxnNodeOp{Verb: OpSet, Node: Node{Node: "wEb-NoDe", Address: "10.9.9.9"}}}}})
	nodes, _ := h.s.Nodes()
	if len(nodes) != 1 || nodes[0].Node != "wEb-NoDe" || nodes[0].Address != "10.9.9.9" {
		t.Fatalf("nodes = %+v, want wEb-NoDe alone at 10.9.9.9", nodes)
	}
	if got, _ := h.s.ServiceNodes("web", nil); len(got) != 2 {
		t.Fatalf("web instances = %+v, want 2", got)
	}
	restored := newHarness(t, Config{})
	if err := restored.s.Restore(bytes.NewReader(stateBytes(t, h.s))); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if restored.s.Hash() != h.s.Hash() || !bytes.Equal(stateBytes(t, restored.s), stateBytes(t, h.s)) {
		t.Fatal("restored state or hash differs from the original")
	}
}

// Txn service and check ops and session creation find a node under any
// case too; before they folded, "n1" was "Missing node registration" while
// "N1" was stored.
func TestNodeName_TxnAndSessionsFoldTheNodeName(t *testing.T) {
	h := newHarness(t, Config{})
	h.ok(&RegisterRequest{Node: Node{Node: "N1", Address: "10.0.0.1"}})
	res := h.apply(&TxnRequest{Ops: []TxnOp{
		{Service: &TxnServiceOp{Verb: OpSet, Node: "n1", Service: NodeService{ID: "web-1", Service: "web"}}},
		{Check: &TxnCheckOp{Verb: OpSet, Check: HealthCheck{Node: "n1", CheckID: "c1", Name: "c1", Status: HealthPassing}}},
	}})
	if res.Err != nil || res.Txn == nil || len(res.Txn.Errors) != 0 {
		t.Fatalf("txn on n1: %+v", res)
	}
	if ns, _ := h.s.NodeServices("N1"); ns == nil || len(ns.Services) != 1 {
		t.Fatalf("NodeServices(N1) = %+v, want web-1", ns)
	}
	if checks, _ := h.s.NodeChecks("N1"); len(checks) != 1 || checks[0].Node != "N1" {
		t.Fatalf("NodeChecks(N1) = %+v, want c1 on N1", checks)
	}
	h.ok(&SessionRequest{Verb: SessionCreate, Session: SessionEntry{ID: "11111111-2222-3333-4444-555555555555", Node: "n1"}})
	if ss, _ := h.s.NodeSessions("N1"); len(ss) != 1 || ss[0].Node != "N1" {
		t.Fatalf("NodeSessions(N1) = %+v, want the session on N1", ss)
	}
}

// A coordinate sent for "n1" is stored for the node registered as "N1",
// not dropped as a coordinate of an unknown node.
func TestNodeName_CoordinatesFoldTheNodeName(t *testing.T) {
	h := newHarness(t, Config{})
	h.ok(&RegisterRequest{Node: Node{Node: "N1", Address: "10.0.0.1"}})
	h.ok(&CoordinateBatchRequest{Updates: []CoordinateEntry{{Node: "n1", Coord: Coordinate{Vec: []float64{0.5}}}}})
	if coords, _ := h.s.Coordinates(); len(coords) != 1 || coords[0].Node != "N1" {
		t.Fatalf("coordinates = %+v, want one for N1", coords)
	}
}
