package rpc

import (
	"strings"
	"testing"
	"time"

	"roster/catalog"
	"roster/raft"
)

// Unit tests of the endpoints' pure steps, without a cluster.

func TestEndpointDeps_ValidateNamesTheMissingField(t *testing.T) {
	full := EndpointDeps{Datacenter: "dc1", Store: &catalog.Store{}, Raft: &fakeOperator{}, Operator: &fakeOperator{},
		Cluster: &fakeNode{}, Forwarder: &Forwarder{}, Blocker: &Blocker{}}
	if err := full.Validate(); err != nil {
		t.Fatalf("complete deps: %v", err)
	}
	for field, clear := range map[string]func(*EndpointDeps){
		"Datacenter": func(d *EndpointDeps) { d.Datacenter = "" },
		"Store":      func(d *EndpointDeps) { d.Store = nil },
		"Raft":       func(d *EndpointDeps) { d.Raft = nil },
		"Operator":   func(d *EndpointDeps) { d.Operator = nil },
		"Cluster":    func(d *EndpointDeps) { d.Cluster = nil },
		"Forwarder":  func(d *EndpointDeps) { d.Forwarder = nil },
		"Blocker":    func(d *EndpointDeps) { d.Blocker = nil },
	} {
		d := full
		clear(&d)
		if err := d.Validate(); err == nil || !strings.Contains(err.Error(), "EndpointDeps."+field) {
			t.Errorf("without %s: %v", field, err)
		}
	}
}

func TestValidateRegister_ConsulTextsAndDefaults(t *testing.T) {
	for _, tc := range []struct {
		req  catalog.RegisterRequest
		want string
	}{
		{catalog.RegisterRequest{}, "Must provide node"},
		{catalog.RegisterRequest{Node: catalog.Node{Node: "n", Address: "a", ID: "not-a-uuid"}}, "Bad node ID"},
		{catalog.RegisterRequest{Node: catalog.Node{Node: "n"}}, "Must provide address"},
		{catalog.RegisterRequest{Node: catalog.Node{Node: "n", Address: "a"}, Service: &catalog.NodeService{ID: "x"}}, "Must provide service name with ID"},
	} {
		if err := validateRegister(&tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.req, err, tc.want)
		}
	}
	r := catalog.RegisterRequest{Node: catalog.Node{Node: "n", ID: "3f0c2a7e-1111-4222-8333-444455556666"}, SkipNodeUpdate: true,
		Service: &catalog.NodeService{Service: "web"}, Checks: []catalog.HealthCheck{{CheckID: "c"}}}
	if err := validateRegister(&r); err != nil {
		t.Fatal(err)
	}
	if r.Service.ID != "web" || r.Checks[0].Node != "n" {
		t.Fatalf("defaults not filled: service ID %q, check node %q", r.Service.ID, r.Checks[0].Node)
	}
}

func TestRTTSeconds_VivaldiDistance(t *testing.T) {
	a := catalog.Coordinate{Vec: []float64{0, 0}, Height: 0.001}
	b := catalog.Coordinate{Vec: []float64{0.003, 0.004}, Height: 0.002}
	if got := rttSeconds(a, b); got < 0.00799 || got > 0.00801 {
		t.Fatalf("rtt %v, want 5ms + heights 3ms", got)
	}
	if rttSeconds(a, b) != rttSeconds(b, a) {
		t.Fatal("distance is not symmetric")
	}
	// A negative adjustment that would make the distance negative is ignored.
	a.Adjustment, b.Adjustment = -1, -1
	if got := rttSeconds(a, b); got <= 0 {
		t.Fatalf("rtt %v went non-positive", got)
	}
}

func TestReadTxn_ChecksAndRollback(t *testing.T) {
	store, err := catalog.New(catalog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if res := store.ApplyCommand(5, &catalog.KVRequest{Verb: catalog.KVSet, Key: "a", Value: []byte("1")}); res.Err != nil {
		t.Fatal(res.Err)
	}
	resp := readTxn(store, []catalog.TxnOp{
		{KV: &catalog.KVRequest{Verb: catalog.KVGet, Key: "a"}},
		{KV: &catalog.KVRequest{Verb: catalog.KVCheckIndex, Key: "a", Index: 5}},
		{KV: &catalog.KVRequest{Verb: catalog.KVCheckNotExists, Key: "b"}},
		{KV: &catalog.KVRequest{Verb: catalog.KVGetOrEmpty, Key: "b"}},
	})
	if len(resp.Errors) != 0 || len(resp.Results) != 2 || resp.Results[1].KV.Value != nil {
		t.Fatalf("reads: %+v (check-index must return the pair without its value)", resp)
	}
	resp = readTxn(store, []catalog.TxnOp{
		{KV: &catalog.KVRequest{Verb: catalog.KVGet, Key: "a"}},
		{KV: &catalog.KVRequest{Verb: catalog.KVGet, Key: "missing"}},
		{KV: &catalog.KVRequest{Verb: catalog.KVCheckSession, Key: "a", Session: "s"}},
	})
	if resp.Results != nil || len(resp.Errors) != 2 || resp.Errors[0].OpIndex != 1 || resp.Errors[1].OpIndex != 2 {
		t.Fatalf("failing reads: %+v, want errors at ops 1 and 2 and no results", resp)
	}
}

// fakeOperator is a RaftOperator (and RaftApplier) with canned answers.
type fakeOperator struct {
	stats map[string]string
}

func (f *fakeOperator) Apply([]byte, time.Duration) (uint64, any, error) { return 0, nil, nil }
func (f *fakeOperator) Configuration() (raft.Configuration, uint64)      { return raft.Configuration{}, 0 }
func (f *fakeOperator) LocalID() string                                  { return "me" }
func (f *fakeOperator) LeaderID() string                                 { return "me" }
func (f *fakeOperator) RemoveServer(string, time.Duration) error         { return nil }
func (f *fakeOperator) TransferLeadership(string, time.Duration) error   { return nil }
func (f *fakeOperator) Stats() map[string]string                         { return f.stats }

func TestLocalRaftStats_ParsesConsulStatKeys(t *testing.T) {
	for _, tc := range []struct {
		lastContact string
		want        time.Duration
	}{{"0", 0}, {"never", -1}, {"12ms", 12 * time.Millisecond}, {"garbage", -1}} {
		st := localRaftStats(&fakeOperator{stats: map[string]string{"term": "7", "last_log_index": "42",
			"last_contact": tc.lastContact, "state": "Follower", "protocol_version": "3"}})
		if st.ID != "me" || st.LastTerm != 7 || st.LastIndex != 42 || st.LastContact != tc.want {
			t.Errorf("last_contact %q: %+v, want LastContact %v", tc.lastContact, st, tc.want)
		}
	}
}

func TestOperatorJudge_AutopilotHealthRules(t *testing.T) {
	op := newOperator(&endpointCore{d: EndpointDeps{Datacenter: "dc1"}.withDefaults()}, nil)
	leader := &RaftStats{ID: "l", LastTerm: 3, LastIndex: 1000}
	voter := raft.Server{ID: "f", Address: "f:8300", Suffrage: raft.Voter}
	for _, tc := range []struct {
		name    string
		st      *RaftStats
		healthy bool
	}{
		{"current", &RaftStats{LastTerm: 3, LastIndex: 990, LastContact: 20 * time.Millisecond}, true},
		{"no answer", nil, false},
		{"silent leader", &RaftStats{LastTerm: 3, LastIndex: 1000, LastContact: time.Second}, false},
		{"never heard", &RaftStats{LastTerm: 3, LastIndex: 1000, LastContact: -1}, false},
		{"old term", &RaftStats{LastTerm: 2, LastIndex: 1000, LastContact: time.Millisecond}, false},
		{"trailing", &RaftStats{LastTerm: 3, LastIndex: 700, LastContact: time.Millisecond}, false},
	} {
		h := op.judge(voter, tc.st, leader, false, healthThresholds{healthLastContactThreshold, healthMaxTrailingLogs})
		if h.Healthy != tc.healthy || !h.Voter {
			t.Errorf("%s: %+v, want healthy=%v", tc.name, h, tc.healthy)
		}
	}
	// The thresholds come from the autopilot configuration: looser ones
	// accept the silent and the trailing server, tighter ones refuse the
	// current one.
	loose := healthThresholds{lastContact: 2 * time.Second, maxTrailing: 500}
	for _, st := range []*RaftStats{{LastTerm: 3, LastIndex: 1000, LastContact: time.Second}, {LastTerm: 3, LastIndex: 700, LastContact: time.Millisecond}} {
		if h := op.judge(voter, st, leader, false, loose); !h.Healthy {
			t.Errorf("%+v with LastContactThreshold 2s, MaxTrailingLogs 500: unhealthy", st)
		}
	}
	tight := healthThresholds{lastContact: 10 * time.Millisecond, maxTrailing: 5}
	if h := op.judge(voter, &RaftStats{LastTerm: 3, LastIndex: 990, LastContact: 20 * time.Millisecond}, leader, false, tight); h.Healthy {
		t.Error("a server 20ms and 10 entries behind is healthy with LastContactThreshold 10ms, MaxTrailingLogs 5")
	}
}

// A server's gossip status gates its health as in Consul's autopilot
// delegate: alive and leaving (a graceful leave in progress) count as
// alive, failed and left do not, whatever its Raft stats say.
func TestOperatorJudge_GossipStatusGatesHealth(t *testing.T) {
	leader := &RaftStats{ID: "l", LastTerm: 3, LastIndex: 1000}
	current := &RaftStats{LastTerm: 3, LastIndex: 1000, LastContact: time.Millisecond}
	voter := raft.Server{ID: "f", Address: "f:8300", Suffrage: raft.Voter}
	for status, want := range map[string]bool{"alive": true, "leaving": true, "failed": false, "left": false, "none": false} {
		op := newOperator(&endpointCore{d: EndpointDeps{Datacenter: "dc1",
			SerfStatus: func(string) string { return status }}.withDefaults()}, nil)
		h := op.judge(voter, current, leader, false, healthThresholds{healthLastContactThreshold, healthMaxTrailingLogs})
		if h.Healthy != want || h.SerfStatus != status {
			t.Errorf("gossip status %q: %+v, want healthy=%v", status, h, want)
		}
	}
}
