package compat

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// Each scenario runs against a dev agent (TestX) and, in
// TestCluster_FollowerServesEveryScenario, against a follower of a
// three-server cluster.
func TestKV_PutGetListDeleteCAS(t *testing.T) {
	checkKVPutGetListDeleteCAS(t, devAgent(t, "compat-kv"), "compat-kv")
}
func TestSessions_CreateInfoRenewDestroy(t *testing.T) {
	checkSessionsCreateInfoRenewDestroy(t, devAgent(t, "compat-session"), "compat-session")
}
func TestLock_ExcludesASecondHolderUntilReleased(t *testing.T) {
	checkLockExcludesASecondHolderUntilReleased(t, devAgent(t, "compat-lock"), "compat-lock")
}
func TestSemaphore_AdmitsLimitHolders(t *testing.T) {
	checkSemaphoreAdmitsLimitHolders(t, devAgent(t, "compat-sema"), "compat-sema")
}
func TestTxn_AppliesAtomicallyOrRollsBack(t *testing.T) {
	checkTxnAppliesAtomicallyOrRollsBack(t, devAgent(t, "compat-txn"), "compat-txn")
}
func TestCatalogAndHealth_RegisterListPassing(t *testing.T) {
	checkCatalogAndHealthRegisterListPassing(t, devAgent(t, "compat-catalog"), "compat-catalog")
}
func TestBlockingQuery_WakesOnChange(t *testing.T) {
	checkBlockingQueryWakesOnChange(t, devAgent(t, "compat-block"), "compat-block")
}
func TestStatus_LeaderAndPeers(t *testing.T) {
	checkStatusLeaderAndPeers(t, devAgent(t, "compat-status"), "compat-status")
}

// scenarios are the checks, by name, for the cluster run.
var scenarios = []struct {
	name string
	run  func(t *testing.T, c *api.Client, node string)
}{
	{"KV_PutGetListDeleteCAS", checkKVPutGetListDeleteCAS},
	{"Sessions_CreateInfoRenewDestroy", checkSessionsCreateInfoRenewDestroy},
	{"Lock_ExcludesASecondHolderUntilReleased", checkLockExcludesASecondHolderUntilReleased},
	{"Semaphore_AdmitsLimitHolders", checkSemaphoreAdmitsLimitHolders},
	{"Txn_AppliesAtomicallyOrRollsBack", checkTxnAppliesAtomicallyOrRollsBack},
	{"CatalogAndHealth_RegisterListPassing", checkCatalogAndHealthRegisterListPassing},
	{"BlockingQuery_WakesOnChange", checkBlockingQueryWakesOnChange},
	{"Status_LeaderAndPeers", checkStatusLeaderAndPeers},
	{"Autopilot_GetSetAndCAS", checkAutopilotGetSetAndCAS},
}

// These tests drive the HTTP API's Consul-compatible endpoints with the
// official client against a dev agent. They need the agent to route
// httpapi's RPCs to its server endpoints; until it does they fail (never
// skip), naming the call that failed.

func checkKVPutGetListDeleteCAS(t *testing.T, c *api.Client, node string) {
	kv := c.KV()
	if _, err := kv.Put(&api.KVPair{Key: "app/config", Value: []byte("v1"), Flags: 42}, nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	kv.Put(&api.KVPair{Key: "app/dir/leaf", Value: []byte("x")}, nil)
	pair, meta, err := kv.Get("app/config", nil)
	if err != nil || pair == nil || string(pair.Value) != "v1" || pair.Flags != 42 || meta.LastIndex == 0 {
		t.Fatalf("Get = %+v, %+v, %v", pair, meta, err)
	}
	if missing, _, err := kv.Get("app/nope", nil); err != nil || missing != nil {
		t.Fatalf("Get of a missing key = %+v, %v; want nil, nil", missing, err)
	}
	pairs, _, err := kv.List("app/", nil)
	if err != nil || len(pairs) != 2 {
		t.Fatalf("List = %+v, %v", pairs, err)
	}
	keys, _, err := kv.Keys("app/", "/", nil)
	if err != nil || strings.Join(keys, ",") != "app/config,app/dir/" {
		t.Fatalf("Keys = %v, %v", keys, err)
	}
	stale := *pair
	pair.Value = []byte("v2")
	if ok, _, err := kv.CAS(pair, nil); err != nil || !ok {
		t.Fatalf("CAS with the current index = %v, %v", ok, err)
	}
	stale.Value = []byte("lost")
	if ok, _, err := kv.CAS(&stale, nil); err != nil || ok {
		t.Fatalf("CAS with a stale index = %v, %v; want false", ok, err)
	}
	if _, err := kv.DeleteTree("app/", nil); err != nil {
		t.Fatalf("DeleteTree: %v", err)
	}
	if pairs, _, _ := kv.List("app/", nil); len(pairs) != 0 {
		t.Fatalf("after DeleteTree: %+v", pairs)
	}
}

func checkSessionsCreateInfoRenewDestroy(t *testing.T, c *api.Client, node string) {
	s := c.Session()
	id, _, err := s.Create(&api.SessionEntry{Name: "test", TTL: "15s", LockDelay: time.Second}, nil)
	if err != nil || id == "" {
		t.Fatalf("Create = %q, %v", id, err)
	}
	info, _, err := s.Info(id, nil)
	if err != nil || info == nil || info.Name != "test" || info.LockDelay != time.Second || info.Node != node {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	if renewed, _, err := s.Renew(id, nil); err != nil || renewed == nil || renewed.ID != id {
		t.Fatalf("Renew = %+v, %v", renewed, err)
	}
	if _, err := s.Destroy(id, nil); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if renewed, _, err := s.Renew(id, nil); err != nil || renewed != nil {
		t.Fatalf("Renew after destroy = %+v, %v; want nil, nil (404)", renewed, err)
	}
	list, _, err := s.List(nil)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, e := range list {
		if e.ID == id {
			t.Fatalf("destroyed session %s still listed", id)
		}
	}
}

func checkLockExcludesASecondHolderUntilReleased(t *testing.T, c *api.Client, node string) {
	l1, err := c.LockKey("service/leader")
	if err != nil {
		t.Fatal(err)
	}
	lost, err := l1.Lock(nil)
	if err != nil || lost == nil {
		t.Fatalf("first Lock = %v", err)
	}
	l2, _ := c.LockOpts(&api.LockOptions{Key: "service/leader", LockTryOnce: true, LockWaitTime: 200 * time.Millisecond})
	if ch, err := l2.Lock(nil); err != nil || ch != nil {
		t.Fatalf("second Lock while held = %v, %v; want nil, nil", ch, err)
	}
	if err := l1.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	l3, _ := c.LockOpts(&api.LockOptions{Key: "service/leader", LockTryOnce: true, LockWaitTime: 5 * time.Second})
	if ch, err := l3.Lock(nil); err != nil || ch == nil {
		t.Fatalf("Lock after release = %v, %v", ch, err)
	}
	l3.Unlock()
}

func checkSemaphoreAdmitsLimitHolders(t *testing.T, c *api.Client, node string) {
	var held []*api.Semaphore
	for i := range 2 {
		s, err := c.SemaphorePrefix("service/sema", 2)
		if err != nil {
			t.Fatal(err)
		}
		if ch, err := s.Acquire(nil); err != nil || ch == nil {
			t.Fatalf("Acquire %d = %v", i, err)
		}
		held = append(held, s)
	}
	third, _ := c.SemaphoreOpts(&api.SemaphoreOptions{Prefix: "service/sema", Limit: 2, SemaphoreTryOnce: true, SemaphoreWaitTime: 200 * time.Millisecond})
	if ch, err := third.Acquire(nil); err != nil || ch != nil {
		t.Fatalf("third Acquire with limit 2 = %v, %v; want nil, nil", ch, err)
	}
	for _, s := range held {
		if err := s.Release(); err != nil {
			t.Fatalf("Release: %v", err)
		}
	}
}

func checkTxnAppliesAtomicallyOrRollsBack(t *testing.T, c *api.Client, node string) {
	ok, resp, _, err := c.Txn().Txn(api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "t/a", Value: []byte("1")}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "t/b", Value: []byte("2")}},
	}, nil)
	if err != nil || !ok || len(resp.Results) != 2 {
		t.Fatalf("Txn = %v, %+v, %v", ok, resp, err)
	}
	ok, resp, _, err = c.Txn().Txn(api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "t/c", Value: []byte("3")}},
		{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: "t/a", Index: 1 << 40, Value: []byte("x")}},
	}, nil)
	if err != nil || ok || len(resp.Errors) != 1 || resp.Errors[0].OpIndex != 1 {
		t.Fatalf("failing Txn = %v, %+v, %v; want rolled back with one error at op 1", ok, resp, err)
	}
	if p, _, _ := c.KV().Get("t/c", nil); p != nil {
		t.Fatalf("rolled-back write is visible: %+v", p)
	}
}

func checkCatalogAndHealthRegisterListPassing(t *testing.T, c *api.Client, node string) {
	for i, status := range []string{api.HealthPassing, api.HealthCritical} {
		node := []string{"ext-1", "ext-2"}[i]
		_, err := c.Catalog().Register(&api.CatalogRegistration{Node: node, Address: "10.0.0.1",
			Service: &api.AgentService{ID: "web", Service: "web", Tags: []string{"v1"}, Port: 80},
			Check:   &api.AgentCheck{CheckID: "web", Name: "web", Status: status, ServiceID: "web"}}, nil)
		if err != nil {
			t.Fatalf("Register %s: %v", node, err)
		}
	}
	services, _, err := c.Catalog().Services(nil)
	if err != nil || strings.Join(services["web"], ",") != "v1" {
		t.Fatalf("Services = %v, %v", services, err)
	}
	instances, _, err := c.Catalog().Service("web", "", nil)
	if err != nil || len(instances) != 2 || instances[0].ServicePort != 80 {
		t.Fatalf("Service = %+v, %v", instances, err)
	}
	healthy, _, err := c.Health().Service("web", "", true, nil)
	if err != nil || len(healthy) != 1 || healthy[0].Node.Node != "ext-1" || healthy[0].Checks.AggregatedStatus() != api.HealthPassing {
		t.Fatalf("Health().Service passing = %+v, %v", healthy, err)
	}
	if _, err := c.Catalog().Deregister(&api.CatalogDeregistration{Node: "ext-2"}, nil); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	if nodes, _, _ := c.Catalog().Nodes(nil); containsNode(nodes, "ext-2") {
		t.Fatalf("ext-2 still listed after deregistration: %+v", nodes)
	}
}

func containsNode(nodes []*api.Node, name string) bool {
	for _, n := range nodes {
		if n.Node == name {
			return true
		}
	}
	return false
}

func checkBlockingQueryWakesOnChange(t *testing.T, c *api.Client, node string) {
	kv := c.KV()
	kv.Put(&api.KVPair{Key: "watched", Value: []byte("1")}, nil)
	_, meta, err := kv.Get("watched", nil)
	if err != nil {
		t.Fatal(err)
	}
	// No change: the read parks for its wait and returns the same index.
	_, same, err := kv.Get("watched", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 300 * time.Millisecond})
	if err != nil || same.LastIndex != meta.LastIndex {
		t.Fatalf("blocking Get without a change = %+v, %v; want index %d", same, err, meta.LastIndex)
	}
	type result struct {
		pair *api.KVPair
		meta *api.QueryMeta
		err  error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		p, m, err := kv.Get("watched", (&api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 20 * time.Second}).WithContext(ctx))
		done <- result{p, m, err}
	}()
	// Whether the read parks before or after this write, it must return
	// with the new value and a higher index.
	kv.Put(&api.KVPair{Key: "watched", Value: []byte("2")}, nil)
	select {
	case r := <-done:
		if r.err != nil || r.pair == nil || !bytes.Equal(r.pair.Value, []byte("2")) || r.meta.LastIndex <= meta.LastIndex {
			t.Fatalf("woke with %+v, %+v, %v", r.pair, r.meta, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocking Get did not return within 10s of the change")
	}
}

func checkStatusLeaderAndPeers(t *testing.T, c *api.Client, node string) {
	var leader string
	waitFor(t, 10*time.Second, "a leader", func() error {
		var err error
		leader, err = c.Status().Leader()
		if err == nil && leader == "" {
			return errNoLeaderYet
		}
		return err
	})
	peers, err := c.Status().Peers()
	if err != nil || len(peers) == 0 || !contains(peers, leader) {
		t.Fatalf("Peers = %v, %v; leader %q", peers, err, leader)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

var errNoLeaderYet = errorString("leader is empty")

type errorString string

func (e errorString) Error() string { return string(e) }
