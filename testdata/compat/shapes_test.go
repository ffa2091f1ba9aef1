package compat

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// The node's meta in the catalog is the agent's node_meta plus the
// consul-network-segment key every Consul agent sets, in every answer
// that carries it: never null.
func TestCompat_NodeMetaIsTheAgentsNodeMeta(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "meta.json")
	if err := os.WriteFile(cfgFile, []byte(`{"node_meta":{"rack":"r1"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := devAgent(t, "meta-node", "-config-file", cfgFile)
	want := map[string]string{"rack": "r1", "consul-network-segment": ""}
	// The leader registers the node (with the consul service) and the
	// agent's anti-entropy writes its meta, in either order.
	waitFor(t, 15*time.Second, "node meta in every catalog answer", func() error {
		node, _, err := c.Catalog().Node("meta-node", nil)
		if err != nil || node == nil || node.Node == nil || !maps.Equal(node.Node.Meta, want) {
			return fmt.Errorf("Catalog().Node = %+v, %v; want Meta %v", node, err, want)
		}
		nodes, _, err := c.Catalog().Nodes(nil)
		if err != nil || len(nodes) != 1 || !maps.Equal(nodes[0].Meta, want) {
			return fmt.Errorf("Catalog().Nodes = %+v, %v", nodes, err)
		}
		entries, _, err := c.Health().Service("consul", "", false, nil)
		if err != nil || len(entries) != 1 || !maps.Equal(entries[0].Node.Meta, want) {
			return fmt.Errorf("Health().Service(consul) = %+v, %v", entries, err)
		}
		svcs, _, err := c.Catalog().Service("consul", "", nil)
		if err != nil || len(svcs) != 1 || !maps.Equal(svcs[0].NodeMeta, want) {
			return fmt.Errorf("Catalog().Service(consul) = %+v, %v", svcs, err)
		}
		return nil
	})
	self, err := c.Agent().Self()
	if err != nil || self["Meta"]["rack"] != "r1" {
		t.Fatalf("Agent().Self() Meta = %v, %v", self["Meta"], err)
	}
}

// Service and node names in catalog and health lookups compare
// case-insensitively, as in Consul.
func TestCompat_NamesIgnoreCase(t *testing.T) {
	c := devAgent(t, "case-node")
	reg := &api.CatalogRegistration{Node: "ext", Address: "10.0.0.9",
		Service: &api.AgentService{ID: "web-1", Service: "web", Port: 80}}
	if _, err := c.Catalog().Register(reg, nil); err != nil {
		t.Fatalf("Register: %v", err)
	}
	for _, name := range []string{"EXT", "Ext"} {
		node, _, err := c.Catalog().Node(name, nil)
		if err != nil || node == nil || node.Node == nil || node.Node.Node != "ext" || node.Services["web-1"] == nil {
			t.Fatalf("Catalog().Node(%q) = %+v, %v", name, node, err)
		}
	}
	for _, name := range []string{"WEB", "Web"} {
		svcs, _, err := c.Catalog().Service(name, "", nil)
		if err != nil || len(svcs) != 1 || svcs[0].ServiceName != "web" {
			t.Fatalf("Catalog().Service(%q) = %+v, %v", name, svcs, err)
		}
		entries, _, err := c.Health().Service(name, "", true, nil)
		if err != nil || len(entries) != 1 || entries[0].Service.ID != "web-1" {
			t.Fatalf("Health().Service(%q, passing) = %+v, %v", name, entries, err)
		}
	}
}

// The agent's own services carry no Raft indexes: Consul's agent endpoints
// leave CreateIndex and ModifyIndex out.
func TestCompat_AgentServiceHasNoRaftIndexes(t *testing.T) {
	c := devAgent(t, "idx-node")
	if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "web1", Name: "web", Port: 8080}); err != nil {
		t.Fatalf("ServiceRegister: %v", err)
	}
	var one map[string]any
	if _, err := c.Raw().Query("/v1/agent/service/web1", &one, nil); err != nil {
		t.Fatalf("GET /v1/agent/service/web1: %v", err)
	}
	var all map[string]map[string]any
	if _, err := c.Raw().Query("/v1/agent/services", &all, nil); err != nil {
		t.Fatalf("GET /v1/agent/services: %v", err)
	}
	for what, svc := range map[string]map[string]any{"service/web1": one, "services[web1]": all["web1"]} {
		if svc["ID"] != "web1" {
			t.Fatalf("%s = %v", what, svc)
		}
		for _, k := range []string{"CreateIndex", "ModifyIndex"} {
			if v, ok := svc[k]; ok {
				t.Fatalf("%s has %s = %v; Consul's agent endpoints leave it out", what, k, v)
			}
		}
	}
}
