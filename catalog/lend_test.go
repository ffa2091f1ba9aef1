package catalog

import (
	"encoding/json"
	"fmt"
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
		r.Checks[0].Notes, r.Checks[0].Output = "notes", "output"
		r.Checks[0].Definition = HealthCheckDefinition{HTTP: "http://x/", Method: "GET",
			Header: map[string][]string{"H": {"v"}}, Interval: "10s"}
		apply(r)
		apply(benchRegister(i)) // unchanged-node re-registration
		apply(&RegisterRequest{Node: Node{Node: r.Node.Node}, SkipNodeUpdate: true,
			Checks: []HealthCheck{{CheckID: fmt.Sprintf("n%d", i), Name: "node", Status: HealthWarning}}})
	}
	read := func() string {
		nodes, _ := s.Nodes()
		checks, _, _ := s.ChecksInState(HealthAny)
		js, err := json.Marshal([]any{nodes, s.Registry(), checks, s.Hash()})
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
