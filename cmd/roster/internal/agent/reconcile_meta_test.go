package agent

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"testing"
	"time"

	"roster/catalog"
	"roster/internal/testkit"
	"roster/swim"
)

// A member the catalog does not know yet is registered with the meta
// every agent sends (never null); a known one keeps the meta its agent
// wrote, which the leader does not own.
func TestRegistration_CarriesTheNodeMetaTheAgentWrote(t *testing.T) {
	m := member("c1", swim.StateAlive, map[string]string{"role": "node", "id": "id-2", "dc": "dc1"})
	fresh := memberRegistration(m, "dc1", catalog.HealthPassing, nil)
	if want := map[string]string{segmentMetaKey: ""}; !maps.Equal(fresh.Node.Meta, want) {
		t.Fatalf("new node meta = %v, want %v", fresh.Node.Meta, want)
	}
	agentMeta := map[string]string{"rack": "r1", segmentMetaKey: ""}
	existing := catalog.Node{Node: "c1", Meta: agentMeta}
	failed := memberRegistration(m, "dc1", catalog.HealthCritical, &existing)
	if !maps.Equal(failed.Node.Meta, agentMeta) {
		t.Fatalf("re-registration meta = %v, want the agent's %v", failed.Node.Meta, agentMeta)
	}
	failed.Node.Meta["x"] = "y"
	if _, ok := agentMeta["x"]; ok {
		t.Fatal("registration shares the catalog's meta map")
	}
}

// catalogNodeMeta reads Node.Meta of node from /v1/catalog/node/<node>,
// keeping null apart from {}.
func catalogNodeMeta(base, node string) (map[string]string, bool, error) {
	resp, err := http.Get(base + "/v1/catalog/node/" + node)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	var out struct {
		Node *struct{ Meta *map[string]string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, false, err
	}
	if out.Node == nil || out.Node.Meta == nil {
		return nil, false, nil
	}
	return *out.Node.Meta, true, nil
}

// The catalog holds the agent's configured node_meta (plus the segment
// key) and the leader's member reconcile, which re-registers the node on
// every serfHealth change, leaves it alone.
func TestAgent_NodeMetaReachesCatalogAndSurvivesLeaderReconcile(t *testing.T) {
	cfg := localTestConfig(t)
	cfg.Meta = map[string]string{"rack": "r1"}
	a := startAgent(t, cfg)
	base := "http://" + a.HTTPAddrs()[0]
	want := map[string]string{"rack": "r1", segmentMetaKey: ""}
	waitMeta := func(what string) {
		testkit.WaitFor(t, 15*time.Second, what, func() error {
			meta, ok, err := catalogNodeMeta(base, cfg.NodeName)
			if err != nil {
				return err
			}
			if !ok || !maps.Equal(meta, want) {
				return fmt.Errorf("Node.Meta = %v (present %v), want %v", meta, ok, want)
			}
			return nil
		})
	}
	waitMeta("node meta in the catalog")
	var self swim.Member
	for _, m := range a.lanNode().Members() {
		if m.Name == cfg.NodeName {
			self = m
		}
	}
	if self.Name == "" {
		t.Fatal("agent not among its own LAN members")
	}
	a.reconcileRegistration(self, catalog.HealthCritical)
	a.reconcileRegistration(self, catalog.HealthPassing)
	checks, _ := a.srv.store.NodeChecks(cfg.NodeName)
	if len(checks) == 0 {
		t.Fatal("no checks after reconcile")
	}
	ns, _ := a.srv.store.NodeServices(cfg.NodeName)
	if ns == nil || !maps.Equal(ns.Node.Meta, want) {
		t.Fatalf("after the leader re-registered the node its meta is %v, want %v", ns, want)
	}
	waitMeta("node meta after reconcile")
}
