package catalog

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"roster/raft"
)

// TestApply_KeepsNoPartOfTheEntry proves that Apply keeps nothing that
// aliases a raft entry's bytes (it may only read them during the call,
// raft.FSM): after the entries are overwritten, every read returns what it
// returned before.
func TestApply_KeepsNoPartOfTheEntry(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var entries [][]byte
	apply := func(cmd Command) {
		b := EncodeCommand(cmd)
		entries = append(entries, b)
		if r := s.Apply(raft.Entry{Index: uint64(len(entries)), Type: raft.EntryCommand, Data: b}).(Result); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	for i := range 6 {
		r := benchRegister(i)
		r.Node.Node = fmt.Sprintf("node-%d", i%3)
		r.Node.ID = fmt.Sprintf("id-%d", i%3)
		r.Node.Meta = map[string]string{"rack": fmt.Sprintf("r%d", i)} // a new node record, and a new map, each time
		r.Node.TaggedAddresses = map[string]string{"wan": fmt.Sprintf("192.0.2.%d", i)}
		r.Service.Address = fmt.Sprintf("10.9.0.%d", i)
		r.Service.Tags = []string{"a", "b", "c"}
		r.Service.TaggedAddresses = map[string]ServiceAddress{"lan": {Address: "10.8.0.1", Port: 1}}
		r.Service.Meta = map[string]string{"v": fmt.Sprint(i)}
		r.Checks[0].Notes, r.Checks[0].Output = "notes", "output"
		r.Checks[0].Definition = HealthCheckDefinition{HTTP: "http://x/", Method: "GET",
			Header: map[string][]string{"H": {"v"}}, Interval: "10s"}
		apply(r)
		apply(benchRegister(i)) // unchanged-node re-registration
		apply(&RegisterRequest{Node: Node{Node: r.Node.Node}, SkipNodeUpdate: true,
			Checks: []HealthCheck{{CheckID: fmt.Sprintf("n%d", i), Name: "node", Status: HealthWarning}}})
	}
	many := benchRegister(99) // many checks: decoded into a new slice, not the reused buffer (decodeRegisterInto)
	for i := range 12 {
		many.Checks = append(many.Checks, HealthCheck{CheckID: fmt.Sprintf("c%d", i), Name: "n", Notes: "x",
			Output: fmt.Sprint(i), ServiceID: many.Service.ID, Type: "http", Interval: "1s", Timeout: "2s",
			Status: HealthPassing, Definition: HealthCheckDefinition{HTTP: fmt.Sprintf("http://h/%d", i)}})
	}
	apply(many)
	long := benchRegister(100) // a node whose strings overflow its record's room
	long.Node.Node = "node-with-a-long-name-" + fmt.Sprint(make([]int, 20))
	long.Node.ID = "6f1c2a9e-5d4b-4c3a-9f8e-7d6c5b4a3f2e"
	apply(long)
	// A rename (nodename.go) rekeys the node, its services, checks,
	// session and coordinate under the new name, which the entry spells.
	apply(&SessionRequest{Verb: SessionCreate, Session: SessionEntry{ID: "11111111-2222-3333-4444-555555555555",
		Node: "node-1", Behavior: SessionRelease}})
	apply(&CoordinateBatchRequest{Updates: []CoordinateEntry{{Node: "node-1", Coord: Coordinate{Vec: []float64{1}}}}})
	renamed := benchRegister(1)
	renamed.Node.Node, renamed.Node.ID = "NODE-1", "id-1"
	renamed.Node.Meta = map[string]string{"rack": "moved"}
	apply(renamed)
	if ns, _ := s.NodeServices("node-1"); ns == nil || ns.Node.Node != "NODE-1" {
		t.Fatalf("node-1 after the rename: %+v, want it named NODE-1", ns)
	}
	read := func() string {
		nodes, _ := s.Nodes()
		checks, _, _ := s.ChecksInState(HealthAny)
		entries, _ := s.CheckServiceNodes("web", nil, false)
		sessions, _ := s.NodeSessions("node-1")
		coords, _ := s.Coordinates()
		js, err := json.Marshal([]any{nodes, s.Registry(), checks, entries, s.Hash(), sessions, coords})
		if err != nil {
			t.Fatal(err)
		}
		return string(js)
	}
	before := read()
	for _, b := range entries {
		for i := range b {
			b[i] = 0xff
		}
	}
	if after := read(); after != before {
		t.Fatalf("reads changed after the entries were overwritten:\nbefore %s\nafter  %s", before, after)
	}
}

// TestApply_HoldsNoEntryAfterward checks that Apply's reused registration
// and the buffer behind it are cleared once it returns, for a registration
// with a service and one check, one check without a service, and one that
// fails to decode: what they held was borrowed from the entry, and kept it
// alive until the next registration.
func TestApply_HoldsNoEntryAfterward(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	nodeCheck := &RegisterRequest{Node: Node{Node: "node-0"}, SkipNodeUpdate: true,
		Checks: []HealthCheck{{CheckID: "n", Name: "node", Status: HealthWarning}}}
	bad := EncodeCommand(benchRegister(1))
	for i, b := range [][]byte{EncodeCommand(benchRegister(0)), EncodeCommand(nodeCheck), bad[:len(bad)-3]} {
		s.Apply(raft.Entry{Index: uint64(i + 1), Type: raft.EntryCommand, Data: b})
		if !reflect.ValueOf(s.reg).IsZero() || !reflect.ValueOf(s.regBuf).IsZero() {
			t.Fatalf("entry %d: after Apply, reg %+v, regBuf %+v", i, s.reg, s.regBuf)
		}
	}
	if st := s.Stats(); st.Malformed != 1 {
		t.Fatalf("stats %+v: want the truncated entry refused as malformed", st)
	}
}

// TestApply_UnchangedReregistrationAllocatesNothing proves that an agent's
// periodic re-registration of an unchanged instance stores nothing new:
// the only allocation left is Apply's boxed Result.
func TestApply_UnchangedReregistrationAllocatesNothing(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	b := EncodeCommand(benchRegister(1))
	idx := uint64(0)
	apply := func() {
		idx++
		if r := s.Apply(raft.Entry{Index: idx, Type: raft.EntryCommand, Data: b}).(Result); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	apply()
	if allocs := testing.AllocsPerRun(100, apply); allocs > 1 {
		t.Fatalf("re-registering an unchanged instance made %.1f allocations, want at most 1 (the Result)", allocs)
	}
}
