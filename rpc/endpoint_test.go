package rpc

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"roster/catalog"
	"roster/internal/testkit"
)

func TestEndpoints_WriteThroughFollowerIsForwardedAndAppliedOnce(t *testing.T) {
	for _, socketRaft := range []bool{false, true} {
		t.Run(fmt.Sprintf("socketRaft=%v", socketRaft), func(t *testing.T) { writeThroughFollower(t, socketRaft) })
	}
}

func writeThroughFollower(t *testing.T, socketRaft bool) {
	c := startEPCluster(t, 3, epOpts{socketRaft: socketRaft})
	f := c.follower()
	c.register(f, "n1", &catalog.NodeService{Service: "web", Port: 80})

	proposals := 0
	for _, s := range c.servers {
		proposals += s.applies.count()
		if s.view.IsLeader() && s.applies.count() != 1 {
			t.Fatalf("leader %s proposed %d times, want 1", s.id, s.applies.count())
		}
	}
	if proposals != 1 {
		t.Fatalf("%d proposals in the cluster for one write, want 1", proposals)
	}
	// Every server's catalog gets the node, applied exactly once.
	testkit.WaitFor(t, 5*time.Second, "n1 on every server", func() error {
		for _, s := range c.servers {
			if ns, _ := s.store.NodeServices("n1"); ns == nil || len(ns.Services) != 1 {
				return fmt.Errorf("%s: %+v", s.id, ns)
			}
		}
		return nil
	})
}

func TestEndpoints_ReadsDefaultStaleAndConsistent(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{})
	f := c.follower()
	c.register(f, "n1", nil)

	// Default and ?consistent reads on a follower are answered by the
	// leader, so they see the write at once, without waiting.
	for _, mode := range []struct {
		name string
		opts QueryOptions
		want string
	}{
		{"default", QueryOptions{}, ConsistencyLeader},
		{"consistent", QueryOptions{RequireConsistent: true}, ConsistencyConsistent},
	} {
		var reply IndexedNodes
		c.mustCall(f, "Catalog.ListNodes", &NodesRequest{QueryOptions: mode.opts}, &reply)
		if len(reply.Nodes) != 1 || reply.Consistency != mode.want || !reply.KnownLeader || reply.LastContact != 0 {
			t.Fatalf("%s read on a follower: %+v, want n1 answered by the leader (%s)", mode.name, reply, mode.want)
		}
	}
	// A stale read is answered locally: eventually it sees the write too,
	// and it reports the follower's view (a non-zero last contact).
	testkit.WaitFor(t, 5*time.Second, "stale read on the follower to see n1", func() error {
		var reply IndexedNodes
		if err := c.call(f, "Catalog.ListNodes", &NodesRequest{QueryOptions: QueryOptions{AllowStale: true}}, &reply); err != nil {
			return err
		}
		if len(reply.Nodes) != 1 || reply.Consistency != ConsistencyStale || !reply.KnownLeader {
			return fmt.Errorf("stale reply %+v", reply)
		}
		return nil
	})
	var bad IndexedNodes
	err := c.call(f, "Catalog.ListNodes", &NodesRequest{QueryOptions: QueryOptions{AllowStale: true, RequireConsistent: true}}, &bad)
	if !containsErr(err, "conflicting semantics") {
		t.Fatalf("stale+consistent: err %v, want Consul's conflict error", err)
	}
}

func TestKVS_BlockingGetWakesOnChange(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{})
	f := c.follower()
	var ok bool
	c.mustCall(f, "KVS.Apply", &KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet, Key: "cfg/a", Value: []byte("1")}}, &ok)
	var first IndexedDirEntries
	c.mustCall(f, "KVS.Get", &KeyRequest{Key: "cfg/a"}, &first)
	if len(first.Entries) != 1 || string(first.Entries[0].Value) != "1" {
		t.Fatalf("first get: %+v", first)
	}

	// Without a change, a short wait returns the same index.
	var same IndexedDirEntries
	c.mustCall(f, "KVS.Get", &KeyRequest{Key: "cfg/a", QueryOptions: QueryOptions{MinQueryIndex: first.Index, MaxQueryTime: 50 * time.Millisecond}}, &same)
	if same.Index != first.Index {
		t.Fatalf("unchanged key: index %d -> %d", first.Index, same.Index)
	}

	// A change to another key under a different prefix does not matter; a
	// change to the key wakes the query long before its 5 minute wait (the
	// call's own deadline is 20s).
	type result struct {
		reply IndexedDirEntries
		err   error
	}
	done := make(chan result, 1)
	go func() {
		var r IndexedDirEntries
		err := c.call(f, "KVS.Get", &KeyRequest{Key: "cfg/a", QueryOptions: QueryOptions{MinQueryIndex: first.Index, MaxQueryTime: 5 * time.Minute}}, &r)
		done <- result{r, err}
	}()
	testkit.WaitFor(t, 5*time.Second, "the get to block on the leader's catalog", func() error {
		if c.waitLeader().store.Stats().Waiters == 0 {
			return errors.New("no waiter yet")
		}
		return nil
	})
	c.mustCall(c.servers[0], "KVS.Apply", &KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet, Key: "other", Value: []byte("x")}}, &ok)
	c.mustCall(c.servers[0], "KVS.Apply", &KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet, Key: "cfg/a", Value: []byte("2")}}, &ok)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.reply.Index <= first.Index || len(r.reply.Entries) != 1 || string(r.reply.Entries[0].Value) != "2" {
		t.Fatalf("woken get: %+v, want value 2 at an index above %d", r.reply, first.Index)
	}
}

func TestKVS_CASLockAndSessionSemantics(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{})
	s := c.follower()
	c.register(s, "n1", nil, catalog.HealthCheck{CheckID: "serfHealth", Name: "Serf", Status: catalog.HealthPassing})
	kv := func(op catalog.KVRequest) (bool, error) {
		var ok bool
		err := c.call(s, "KVS.Apply", &KVSRequest{Op: op}, &ok)
		return ok, err
	}
	mustKV := func(want bool, op catalog.KVRequest) {
		t.Helper()
		ok, err := kv(op)
		if err != nil || ok != want {
			t.Fatalf("%s %s: %v, %v; want %v", op.Verb, op.Key, ok, err, want)
		}
	}
	session := func(lockDelay time.Duration) string {
		t.Helper()
		var id string
		c.mustCall(s, "Session.Apply", &SessionRequest{Op: catalog.SessionRequest{Verb: catalog.SessionCreate,
			Session: catalog.SessionEntry{Node: "n1", LockDelay: lockDelay, NodeChecks: []string{"serfHealth"}}}}, &id)
		if id == "" {
			t.Fatal("session create returned no ID")
		}
		return id
	}

	// CAS: 0 creates only if absent; otherwise the ModifyIndex must match.
	mustKV(true, catalog.KVRequest{Verb: catalog.KVCAS, Key: "k", Value: []byte("a"), Index: 0})
	mustKV(false, catalog.KVRequest{Verb: catalog.KVCAS, Key: "k", Value: []byte("b"), Index: 0})
	var got IndexedDirEntries
	c.mustCall(s, "KVS.Get", &KeyRequest{Key: "k"}, &got)
	mi := got.Entries[0].ModifyIndex
	mustKV(false, catalog.KVRequest{Verb: catalog.KVCAS, Key: "k", Value: []byte("b"), Index: mi + 100})
	mustKV(true, catalog.KVRequest{Verb: catalog.KVCAS, Key: "k", Value: []byte("b"), Index: mi})

	// Locks: one holder at a time; only the holder releases.
	s1, s2 := session(0), session(0)
	mustKV(true, catalog.KVRequest{Verb: catalog.KVLock, Key: "lock", Session: s1})
	mustKV(false, catalog.KVRequest{Verb: catalog.KVLock, Key: "lock", Session: s2})
	mustKV(false, catalog.KVRequest{Verb: catalog.KVUnlock, Key: "lock", Session: s2})
	mustKV(true, catalog.KVRequest{Verb: catalog.KVUnlock, Key: "lock", Session: s1})
	mustKV(true, catalog.KVRequest{Verb: catalog.KVLock, Key: "lock", Session: s2})
	if _, err := kv(catalog.KVRequest{Verb: catalog.KVLock, Key: "lock", Session: "no-such-session"}); !containsErr(err, "Invalid session") {
		t.Fatalf("lock with an unknown session: %v, want Invalid session", err)
	}
	if _, err := kv(catalog.KVRequest{Verb: catalog.KVLock, Key: "lock"}); !containsErr(err, "Missing session") {
		t.Fatalf("lock without a session: %v", err)
	}
	if _, err := kv(catalog.KVRequest{Verb: catalog.KVSet}); !containsErr(err, "Must provide key") {
		t.Fatalf("set without a key: %v", err)
	}

	// Destroying a session with a lock delay releases its key and refuses
	// any acquire of it for the delay, without proposing anything.
	s3 := session(30 * time.Second)
	mustKV(true, catalog.KVRequest{Verb: catalog.KVLock, Key: "delayed", Session: s3})
	var out string
	c.mustCall(s, "Session.Apply", &SessionRequest{Op: catalog.SessionRequest{Verb: catalog.SessionDestroy,
		Session: catalog.SessionEntry{ID: s3}}}, &out)
	c.mustCall(s, "KVS.Get", &KeyRequest{Key: "delayed"}, &got)
	if len(got.Entries) != 1 || got.Entries[0].Session != "" {
		t.Fatalf("after destroy the key should be released: %+v", got.Entries)
	}
	leader := c.waitLeader()
	before := leader.applies.count()
	mustKV(false, catalog.KVRequest{Verb: catalog.KVLock, Key: "delayed", Session: s1})
	if n := leader.applies.count(); n != before {
		t.Fatalf("a lock inside its lock-delay was proposed (%d -> %d)", before, n)
	}
	mustKV(true, catalog.KVRequest{Verb: catalog.KVLock, Key: "free", Session: s1})
}

func TestSession_ValidationAndRenew(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{})
	s := c.follower()
	c.register(s, "n1", nil,
		catalog.HealthCheck{CheckID: "serfHealth", Status: catalog.HealthPassing},
		catalog.HealthCheck{CheckID: "down", Status: catalog.HealthCritical})
	create := func(e catalog.SessionEntry) (string, error) {
		var id string
		err := c.call(s, "Session.Apply", &SessionRequest{Op: catalog.SessionRequest{Verb: catalog.SessionCreate, Session: e}}, &id)
		return id, err
	}
	for _, tc := range []struct {
		entry catalog.SessionEntry
		want  string
	}{
		{catalog.SessionEntry{Node: "ghost"}, "Missing node registration"},
		{catalog.SessionEntry{Node: "n1", NodeChecks: []string{"down"}}, "Check 'down' is in critical state"},
		{catalog.SessionEntry{Node: "n1", NodeChecks: []string{"nope"}}, "Missing check 'nope' registration"},
		{catalog.SessionEntry{Node: "n1", TTL: "5s"}, "Invalid Session TTL"},
		{catalog.SessionEntry{Node: "n1", TTL: "48h"}, "Invalid Session TTL"},
		{catalog.SessionEntry{Node: "n1", TTL: "soon"}, "Session TTL 'soon' invalid"},
		{catalog.SessionEntry{Node: "n1", Behavior: "explode"}, "Invalid Behavior setting 'explode'"},
	} {
		if _, err := create(tc.entry); !containsErr(err, tc.want) {
			t.Errorf("create %+v: err %v, want %q", tc.entry, err, tc.want)
		}
	}

	id, err := create(catalog.SessionEntry{Node: "n1", TTL: "15s", LockDelay: 5 * time.Minute, NodeChecks: []string{"serfHealth"}})
	if err != nil {
		t.Fatal(err)
	}
	var got IndexedSessions
	c.mustCall(s, "Session.Get", &SessionSpecificRequest{SessionID: id}, &got)
	if len(got.Sessions) != 1 || got.Sessions[0].LockDelay != catalog.MaxLockDelay || got.Sessions[0].Behavior != catalog.SessionRelease {
		t.Fatalf("session %+v: want LockDelay capped at 60s and behavior release", got.Sessions)
	}
	leader := c.waitLeader()
	if leader.timers.resetCount(id) != 1 {
		t.Fatalf("create armed the leader's TTL clock %d times, want 1", leader.timers.resetCount(id))
	}
	var renewed IndexedSessions
	c.mustCall(s, "Session.Renew", &SessionSpecificRequest{SessionID: id}, &renewed)
	if len(renewed.Sessions) != 1 || leader.timers.resetCount(id) != 2 {
		t.Fatalf("renew: %+v, resets %d", renewed.Sessions, leader.timers.resetCount(id))
	}
	var gone IndexedSessions
	c.mustCall(s, "Session.Renew", &SessionSpecificRequest{SessionID: "no-such-session"}, &gone)
	if len(gone.Sessions) != 0 {
		t.Fatalf("renew of an unknown session: %+v, want empty", gone.Sessions)
	}
	var list IndexedSessions
	c.mustCall(s, "Session.NodeSessions", &NodeSpecificRequest{Node: "n1"}, &list)
	if len(list.Sessions) != 1 || list.Sessions[0].ID != id {
		t.Fatalf("node sessions: %+v", list.Sessions)
	}
}

func TestEndpoints_RetriedWriteWithSameRequestIDAppliedOnce(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{})
	f := c.follower()
	const reqID = "3f0c2a7e-1111-4222-8333-444455556666"
	op := catalog.KVRequest{Verb: catalog.KVCAS, Key: "once", Value: []byte("first"), Index: 0}
	for i := range 2 {
		var ok bool
		c.mustCall(f, "KVS.Apply", &KVSRequest{WriteRequest: WriteRequest{RequestID: reqID}, Op: op}, &ok)
		// The retry reports the first outcome (true) although a fresh
		// create-only CAS would now fail.
		if !ok {
			t.Fatalf("attempt %d: false, want the first outcome (true)", i)
		}
		op.Value = []byte("second")
	}
	var fresh bool
	c.mustCall(f, "KVS.Apply", &KVSRequest{Op: op}, &fresh)
	if fresh {
		t.Fatal("a new create-only CAS on an existing key succeeded")
	}
	leader := c.waitLeader()
	c.waitApplied(leader.store.LastIndex())
	for _, s := range c.servers {
		p, _ := s.store.KVGet("once")
		if p == nil || string(p.Value) != "first" {
			t.Fatalf("%s: %+v, want the first write only", s.id, p)
		}
		if d := s.fsm.Stats().Duplicates; d != 1 {
			t.Fatalf("%s: %d duplicates, want 1", s.id, d)
		}
	}
}

func TestEndpoints_FiltersAndValidation(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{})
	s := c.follower()
	c.register(s, "n1", &catalog.NodeService{Service: "web", Tags: []string{"primary"}},
		catalog.HealthCheck{CheckID: "serfHealth", Status: catalog.HealthPassing})
	c.register(s, "n2", &catalog.NodeService{Service: "web", Tags: []string{"secondary"}},
		catalog.HealthCheck{CheckID: "serfHealth", Status: catalog.HealthCritical})

	var nodes IndexedNodes
	c.mustCall(s, "Catalog.ListNodes", &NodesRequest{QueryOptions: QueryOptions{Filter: `Meta.rack == "2"`}}, &nodes)
	if len(nodes.Nodes) != 1 || nodes.Nodes[0].Node != "n2" {
		t.Fatalf("filtered nodes: %+v", nodes.Nodes)
	}
	c.mustCall(s, "Catalog.ListNodes", &NodesRequest{NodeMetaFilters: map[string]string{"rack": "1"}}, &nodes)
	if len(nodes.Nodes) != 1 || nodes.Nodes[0].Node != "n1" {
		t.Fatalf("node-meta nodes: %+v", nodes.Nodes)
	}
	for _, expr := range []string{`NoSuchField == 1`, `Meta.rack ==`} {
		err := c.call(s, "Catalog.ListNodes", &NodesRequest{QueryOptions: QueryOptions{Filter: expr}}, &nodes)
		if err == nil || !strings.HasPrefix(err.Error(), "Failed to create boolean expression evaluator") {
			t.Fatalf("filter %q: err %v", expr, err)
		}
	}

	var sn IndexedServiceNodes
	c.mustCall(s, "Catalog.ServiceNodes", &ServiceSpecificRequest{ServiceName: "web", ServiceTags: []string{"primary"}}, &sn)
	if len(sn.ServiceNodes) != 1 || sn.ServiceNodes[0].Node != "n1" {
		t.Fatalf("tag filter: %+v", sn.ServiceNodes)
	}
	var entries IndexedCheckServiceNodes
	c.mustCall(s, "Health.ServiceNodes", &ServiceSpecificRequest{ServiceName: "web", PassingOnly: true}, &entries)
	if len(entries.Nodes) != 1 || entries.Nodes[0].Node.Node != "n1" {
		t.Fatalf("passing only: %+v", entries.Nodes)
	}
	c.mustCall(s, "Health.ServiceNodes", &ServiceSpecificRequest{ServiceName: "web", QueryOptions: QueryOptions{Filter: `Service.Tags contains "secondary"`}}, &entries)
	if len(entries.Nodes) != 1 || entries.Nodes[0].Node.Node != "n2" {
		t.Fatalf("health filter: %+v", entries.Nodes)
	}
	var checks IndexedHealthChecks
	c.mustCall(s, "Health.ChecksInState", &ChecksInStateRequest{State: catalog.HealthCritical}, &checks)
	if len(checks.HealthChecks) != 1 || checks.HealthChecks[0].Node != "n2" {
		t.Fatalf("critical checks: %+v", checks.HealthChecks)
	}
	var services IndexedServices
	c.mustCall(s, "Catalog.ListServices", &NodesRequest{NodeMetaFilters: map[string]string{"rack": "2"}}, &services)
	if tags := services.Services["web"]; len(tags) != 1 || tags[0] != "secondary" {
		t.Fatalf("services on rack 2: %+v", services.Services)
	}

	for _, tc := range []struct {
		method string
		args   any
		reply  any
		want   string
	}{
		{"Catalog.Register", &RegisterRequest{}, &struct{}{}, "Must provide node"},
		{"Catalog.Register", &RegisterRequest{Register: catalog.RegisterRequest{Node: catalog.Node{Node: "x"}}}, &struct{}{}, "Must provide address"},
		{"Catalog.Deregister", &DeregisterRequest{}, &struct{}{}, "Must provide node"},
		{"Catalog.ServiceNodes", &ServiceSpecificRequest{}, &IndexedServiceNodes{}, "Must provide service name"},
		{"Health.ServiceNodes", &ServiceSpecificRequest{}, &IndexedCheckServiceNodes{}, "Must provide service name"},
		{"Health.ChecksInState", &ChecksInStateRequest{State: "sad"}, &IndexedHealthChecks{}, "Invalid state"},
		{"Catalog.NodeServices", &NodeSpecificRequest{}, &IndexedNodeServices{}, "Must provide node"},
	} {
		if err := c.call(s, tc.method, tc.args, tc.reply); !containsErr(err, tc.want) {
			t.Errorf("%s %+v: err %v, want %q", tc.method, tc.args, err, tc.want)
		}
	}
}

func TestTxn_ApplyRollbackAndRead(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{})
	s := c.follower()
	var resp TxnResponse
	c.mustCall(s, "Txn.Apply", &TxnRequest{Ops: []catalog.TxnOp{
		{KV: &catalog.KVRequest{Verb: catalog.KVSet, Key: "a", Value: []byte("1")}},
		{KV: &catalog.KVRequest{Verb: catalog.KVSet, Key: "b", Value: []byte("2")}},
	}}, &resp)
	if len(resp.Errors) != 0 || len(resp.Results) != 2 {
		t.Fatalf("txn: %+v", resp)
	}
	resp = TxnResponse{}
	c.mustCall(s, "Txn.Apply", &TxnRequest{Ops: []catalog.TxnOp{
		{KV: &catalog.KVRequest{Verb: catalog.KVSet, Key: "c", Value: []byte("3")}},
		{KV: &catalog.KVRequest{Verb: catalog.KVCheckIndex, Key: "a", Index: 999999}},
	}}, &resp)
	if len(resp.Errors) != 1 || resp.Errors[0].OpIndex != 1 || resp.Results != nil {
		t.Fatalf("failing txn: %+v, want one error at op 1 and no results", resp)
	}
	resp = TxnResponse{}
	c.mustCall(s, "Txn.Read", &TxnReadRequest{Ops: []catalog.TxnOp{
		{KV: &catalog.KVRequest{Verb: catalog.KVGet, Key: "a"}},
		{KV: &catalog.KVRequest{Verb: catalog.KVGetOrEmpty, Key: "c"}},
	}}, &resp)
	if len(resp.Errors) != 0 || len(resp.Results) != 1 || string(resp.Results[0].KV.Value) != "1" {
		t.Fatalf("read txn: %+v (key c must not exist after the rollback)", resp)
	}
	err := c.call(s, "Txn.Read", &TxnReadRequest{Ops: []catalog.TxnOp{
		{KV: &catalog.KVRequest{Verb: catalog.KVSet, Key: "a"}}}}, &resp)
	if !containsErr(err, "writes") {
		t.Fatalf("write op in Txn.Read: %v", err)
	}
}

func TestOperator_ConfigurationHealthAndTransfer(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{})
	f := c.follower()
	var conf RaftConfigurationResponse
	c.mustCall(f, "Operator.RaftGetConfiguration", &DCSpecificRequest{}, &conf)
	leaders := 0
	for _, s := range conf.Servers {
		if s.Leader {
			leaders++
		}
		if !s.Voter || s.ProtocolVersion != "3" {
			t.Fatalf("server %+v", s)
		}
	}
	if len(conf.Servers) != 3 || leaders != 1 {
		t.Fatalf("configuration %+v", conf)
	}

	testkit.WaitFor(t, 5*time.Second, "autopilot to call the cluster healthy", func() error {
		var h OperatorHealthReply
		if err := c.call(f, "Operator.AutopilotServerHealth", &DCSpecificRequest{}, &h); err != nil {
			return err
		}
		if !h.Healthy || h.FailureTolerance != 1 || len(h.Servers) != 3 {
			return fmt.Errorf("health %+v", h)
		}
		return nil
	})

	err := c.call(f, "Operator.RaftRemovePeerByID", &RaftRemovePeerRequest{ID: "nobody"}, &struct{}{})
	if !containsErr(err, "was not found in the Raft configuration") {
		t.Fatalf("remove unknown peer: %v", err)
	}

	old := c.waitLeader()
	var ok bool
	c.mustCall(f, "Operator.RaftTransferLeader", &RaftTransferLeaderRequest{}, &ok)
	if !ok {
		t.Fatal("transfer answered false")
	}
	if now := c.waitLeader(); now == old {
		t.Fatalf("leadership still on %s after a transfer", old.id)
	}
}

func TestRoster_RegistryAndDelta(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{})
	s := c.follower()
	var reg RegistryResponse
	c.mustCall(s, "Roster.Registry", &DCSpecificRequest{}, &reg)
	c.register(s, "n1", &catalog.NodeService{Service: "web"})
	var d DeltaResponse
	c.mustCall(s, "Roster.Delta", &DeltaRequest{Since: reg.Registry.Index}, &d)
	if d.Truncated || len(d.Delta.Changes) == 0 || d.Delta.From != reg.Registry.Index {
		t.Fatalf("delta %+v", d)
	}
	var full RegistryResponse
	c.mustCall(s, "Roster.Registry", &DCSpecificRequest{}, &full)
	if full.Registry.Hash != d.Delta.Hash || len(full.Registry.Instances) != 1 {
		t.Fatalf("registry %+v vs delta hash %s", full.Registry, d.Delta.Hash)
	}
	c.mustCall(s, "Roster.Delta", &DeltaRequest{Since: full.Registry.Index + 1000}, &d)
	if !d.Truncated {
		t.Fatalf("delta from the future: %+v, want truncated", d)
	}
}

func TestPartition_MinorityRefusesWrites(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{holdTimeout: time.Second})
	old := c.waitLeader()
	c.register(old, "n1", &catalog.NodeService{Service: "web"})
	c.net.Isolate(old.addr)
	t.Logf("isolated leader %s", old.id)

	// The isolated server steps down (check-quorum) and, knowing no leader,
	// refuses the write with Consul's error once the hold timeout passes.
	var ok bool
	err := c.call(old, "KVS.Apply", &KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet, Key: "k", Value: []byte("v")}}, &ok)
	if !IsNoLeader(err) {
		t.Fatalf("write on the minority: %v, want %q", err, ErrNoLeader)
	}
	// The majority elects a leader and takes writes.
	var others []*epServer
	for _, s := range c.servers {
		if s != old {
			others = append(others, s)
		}
	}
	testkit.WaitFor(t, 10*time.Second, "the majority to take a write", func() error {
		return c.call(others[0], "KVS.Apply", &KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet, Key: "k", Value: []byte("majority")}}, &ok)
	})
	if p, _ := old.store.KVGet("k"); p != nil && string(p.Value) == "v" {
		t.Fatalf("the minority applied its write: %+v", p)
	}
	// After the heal every catalog converges on the majority's write.
	c.net.Heal()
	testkit.WaitFor(t, 10*time.Second, "catalogs to converge", func() error {
		for _, s := range c.servers {
			if p, _ := s.store.KVGet("k"); p == nil || string(p.Value) != "majority" {
				return fmt.Errorf("%s has %+v", s.id, p)
			}
			if s.store.LastIndex() != others[0].store.LastIndex() || s.store.Hash() != others[0].store.Hash() {
				return fmt.Errorf("%s at index %d hash %s, %s at %d hash %s", s.id, s.store.LastIndex(), s.store.Hash(),
					others[0].id, others[0].store.LastIndex(), others[0].store.Hash())
			}
		}
		return nil
	})
}

func TestCoordinate_UpdateAndNear(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{})
	s := c.follower()
	for _, n := range []string{"n1", "n2", "n3"} {
		c.register(s, n, nil)
	}
	coord := func(x float64) catalog.Coordinate { return catalog.Coordinate{Vec: []float64{x, 0}, Height: 1e-5} }
	c.mustCall(s, "Coordinate.Update", &CoordinateUpdateRequest{Updates: []catalog.CoordinateEntry{
		{Node: "n1", Coord: coord(0)}, {Node: "n2", Coord: coord(0.5)}, {Node: "n3", Coord: coord(0.1)},
	}}, &struct{}{})
	var coords IndexedCoordinates
	c.mustCall(s, "Coordinate.ListNodes", &DCSpecificRequest{}, &coords)
	if len(coords.Coordinates) != 3 {
		t.Fatalf("coordinates %+v", coords)
	}
	var nodes IndexedNodes
	c.mustCall(s, "Catalog.ListNodes", &NodesRequest{Near: "n2"}, &nodes)
	var order []string
	for _, n := range nodes.Nodes {
		order = append(order, n.Node)
	}
	if strings.Join(order, ",") != "n2,n3,n1" {
		t.Fatalf("near n2: %v, want n2,n3,n1", order)
	}
	err := c.call(s, "Coordinate.Update", &CoordinateUpdateRequest{Updates: []catalog.CoordinateEntry{{}}}, &struct{}{})
	if !containsErr(err, "Must provide node") {
		t.Fatalf("update without node: %v", err)
	}
	var dcs []string
	c.mustCall(s, "Catalog.ListDatacenters", &DCSpecificRequest{}, &dcs)
	if len(dcs) != 1 || dcs[0] != "dc1" {
		t.Fatalf("datacenters %v", dcs)
	}
	var st RaftStats
	c.mustCall(s, "Status.RaftStats", struct{}{}, &st)
	if st.ID != s.id || st.LastIndex == 0 {
		t.Fatalf("raft stats %+v", st)
	}
	var leader string
	c.mustCall(s, "Status.Leader", &DCSpecificRequest{}, &leader)
	if leader != c.waitLeader().addr {
		t.Fatalf("Status.Leader %q", leader)
	}
}

// TestEndpoints_BlockingReadsWakeOnTheirChange proves each read method
// watches what its result depends on: a query blocked at the current index
// with a 5 minute wait returns once a write touches its data.
func TestEndpoints_BlockingReadsWakeOnTheirChange(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{})
	s := c.follower()
	for _, tc := range blockingCases(c, s) {
		first := tc.reply()
		c.mustCall(s, tc.method, tc.args, first)
		idx := metaOf(first).Index
		opts := optionsOf(tc.args)
		opts.MinQueryIndex, opts.MaxQueryTime = idx, 5*time.Minute
		if d, isDelta := tc.args.(*DeltaRequest); isDelta {
			d.Since = idx
		}
		done := make(chan error, 1)
		woken := tc.reply()
		go func() { done <- c.call(s, tc.method, tc.args, woken) }()
		// Change only once the query is parked on a catalog watch, so the
		// test proves a wake-up rather than a late arrival.
		testkit.WaitFor(t, 5*time.Second, tc.method+" to block", func() error {
			for _, srv := range c.servers {
				if srv.store.Stats().Waiters > 0 {
					return nil
				}
			}
			return errors.New("no waiter on any catalog")
		})
		tc.change()
		if err := <-done; err != nil {
			t.Fatalf("%s blocked at %d: %v (not woken by its change?)", tc.method, idx, err)
		}
		if got := metaOf(woken).Index; got <= idx {
			t.Fatalf("%s woke with index %d, want above %d", tc.method, got, idx)
		}
	}
}

type blockingCase struct {
	method string
	args   any
	reply  func() any
	change func()
}

// blockingCases seeds the catalog and returns one case per read method:
// its request and a write that changes its result.
func blockingCases(c *epCluster, s *epServer) []blockingCase {
	c.register(s, "n1", &catalog.NodeService{Service: "web"}, catalog.HealthCheck{CheckID: "serfHealth", Status: catalog.HealthPassing})
	var ok bool
	c.mustCall(s, "KVS.Apply", &KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet, Key: "app/x", Value: []byte("1")}}, &ok)

	// Each change registers a new node: re-registering an identical one
	// changes nothing, and must wake nobody.
	nodes := 1
	registerNode := func() {
		nodes++
		c.register(s, fmt.Sprintf("n%d", nodes), &catalog.NodeService{Service: "web"})
	}
	status := []string{catalog.HealthCritical, catalog.HealthWarning, catalog.HealthPassing}
	checkChanges := 0
	failCheck := func() {
		checkChanges++
		c.register(s, "n1", nil, catalog.HealthCheck{CheckID: "serfHealth", Status: status[checkChanges%3]})
	}
	setKV := func() {
		c.mustCall(s, "KVS.Apply", &KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet, Key: "app/y", Value: []byte("2")}}, &ok)
	}
	return []blockingCase{
		{"Catalog.ListNodes", &NodesRequest{}, func() any { return &IndexedNodes{} }, registerNode},
		{"Catalog.ListServices", &NodesRequest{}, func() any { return &IndexedServices{} }, func() {
			c.register(s, "n1", &catalog.NodeService{Service: "db"})
		}},
		{"Catalog.ServiceNodes", &ServiceSpecificRequest{ServiceName: "web"}, func() any { return &IndexedServiceNodes{} }, registerNode},
		{"Catalog.NodeServices", &NodeSpecificRequest{Node: "n1"}, func() any { return &IndexedNodeServices{} }, func() {
			c.register(s, "n1", &catalog.NodeService{Service: "cache"})
		}},
		{"Health.ServiceNodes", &ServiceSpecificRequest{ServiceName: "web"}, func() any { return &IndexedCheckServiceNodes{} }, failCheck},
		{"Health.NodeChecks", &NodeSpecificRequest{Node: "n1"}, func() any { return &IndexedHealthChecks{} }, failCheck},
		{"Health.ChecksInState", &ChecksInStateRequest{State: catalog.HealthAny}, func() any { return &IndexedHealthChecks{} }, failCheck},
		{"KVS.List", &KeyRequest{Key: "app/"}, func() any { return &IndexedDirEntries{} }, setKV},
		{"KVS.ListKeys", &KeyListRequest{Prefix: "app/"}, func() any { return &IndexedKeyList{} }, setKV},
		{"Session.List", &DCSpecificRequest{}, func() any { return &IndexedSessions{} }, func() {
			var id string
			c.mustCall(s, "Session.Apply", &SessionRequest{Op: catalog.SessionRequest{Verb: catalog.SessionCreate,
				Session: catalog.SessionEntry{Node: "n1"}}}, &id)
		}},
		{"Coordinate.ListNodes", &DCSpecificRequest{}, func() any { return &IndexedCoordinates{} }, func() {
			c.mustCall(s, "Coordinate.Update", &CoordinateUpdateRequest{Updates: []catalog.CoordinateEntry{{Node: "n1"}}}, &struct{}{})
		}},
		{"Roster.Delta", &DeltaRequest{}, func() any { return &DeltaResponse{} }, registerNode},
	}
}

func metaOf(reply any) QueryMeta {
	return reflect.ValueOf(reply).Elem().FieldByName("QueryMeta").Interface().(QueryMeta)
}

func optionsOf(args any) *QueryOptions {
	return reflect.ValueOf(args).Elem().FieldByName("QueryOptions").Addr().Interface().(*QueryOptions)
}

// TestEndpoints_WritesAcrossLeaderTransferAppliedOnce: writes sent to
// every server while leadership moves all succeed (they are held and
// retried) and each takes effect exactly once: a KV set applied twice
// would show a ModifyIndex above its CreateIndex.
func TestEndpoints_WritesAcrossLeaderTransferAppliedOnce(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{})
	old := c.waitLeader()
	const writers, perWriter = 4, 25
	errs := make(chan error, writers)
	started := make(chan struct{}, writers*perWriter)
	for w := range writers {
		go func() {
			for i := range perWriter {
				var ok bool
				s := c.servers[(w+i)%len(c.servers)]
				args := &KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet, Key: fmt.Sprintf("w%d/%d", w, i), Value: []byte("v")}}
				started <- struct{}{}
				if err := c.call(s, "KVS.Apply", args, &ok); err != nil || !ok {
					errs <- fmt.Errorf("writer %d write %d via %s: %v %v", w, i, s.id, ok, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers * perWriter / 4 {
		<-started
	}
	var ok bool
	c.mustCall(c.follower(), "Operator.RaftTransferLeader", &RaftTransferLeaderRequest{}, &ok)
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	leader := c.waitLeader()
	if leader == old {
		t.Fatalf("leadership did not move from %s", old.id)
	}
	c.waitApplied(leader.store.LastIndex())
	for _, s := range c.servers {
		pairs, _ := s.store.KVList("w")
		if len(pairs) != writers*perWriter {
			t.Fatalf("%s has %d keys, want %d", s.id, len(pairs), writers*perWriter)
		}
		for _, p := range pairs {
			if p.CreateIndex != p.ModifyIndex {
				t.Fatalf("%s: key %s applied more than once (create %d, modify %d)", s.id, p.Key, p.CreateIndex, p.ModifyIndex)
			}
		}
		if s.store.Hash() != leader.store.Hash() {
			t.Fatalf("%s hash differs from the leader's", s.id)
		}
	}
}
