package compat

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// -node-meta (repeatable) puts the pairs on the agent's node: in
// /v1/catalog/node/:node, in /v1/agent/self's Meta and as ?node-meta=
// filters on catalog nodes, catalog service and health service, which
// leave out a node without them.
func TestNodeMeta_FlagReachesCatalogSelfAndFilters(t *testing.T) {
	const node = "compat-meta"
	c := devAgent(t, node, "-node-meta", "rack:r1", "-node-meta", "env:prod")
	want := map[string]string{"rack": "r1", "env": "prod"}
	waitFor(t, 10*time.Second, "node meta in the catalog", func() error {
		n, _, err := c.Catalog().Node(node, nil)
		if err == nil && !hasMeta(n.Node.Meta, want) {
			err = errorString("catalog meta " + fmtMap(n.Node.Meta))
		}
		return err
	})
	self, err := c.Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	if meta, _ := self["Meta"]; !hasMetaAny(meta, want) {
		t.Fatalf("agent/self Meta = %v, want %v", meta, want)
	}
	if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{Name: "web", Port: 80}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Catalog().Register(&api.CatalogRegistration{Node: "external", Address: "10.1.1.1",
		NodeMeta: map[string]string{"rack": "r2"}, Service: &api.AgentService{Service: "web", Port: 81}}, nil); err != nil {
		t.Fatal(err)
	}
	q := &api.QueryOptions{NodeMeta: map[string]string{"rack": "r1"}}
	waitFor(t, 10*time.Second, "the agent's web instance", func() error {
		svcs, _, err := c.Catalog().Service("web", "", nil)
		if err == nil && len(svcs) != 2 {
			err = errorString("want 2 web instances")
		}
		return err
	})
	nodes, _, err := c.Catalog().Nodes(q)
	if err != nil || len(nodes) != 1 || nodes[0].Node != node {
		t.Fatalf("catalog nodes ?node-meta=rack:r1 = %v, %v; want %s only", nodes, err, node)
	}
	svcs, _, err := c.Catalog().Service("web", "", q)
	if err != nil || len(svcs) != 1 || svcs[0].Node != node {
		t.Fatalf("catalog service web ?node-meta=rack:r1 = %v, %v; want the instance on %s", svcs, err, node)
	}
	entries, _, err := c.Health().Service("web", "", false, &api.QueryOptions{NodeMeta: map[string]string{"rack": "r2"}})
	if err != nil || len(entries) != 1 || entries[0].Node.Node != "external" {
		t.Fatalf("health service web ?node-meta=rack:r2 = %v, %v; want the external instance", entries, err)
	}
}

func hasMeta(got, want map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// hasMetaAny reads agent/self's Meta, which the client decodes as
// map[string]interface{}.
func hasMetaAny(got map[string]interface{}, want map[string]string) bool {
	for k, v := range want {
		if s, _ := got[k].(string); s != v {
			return false
		}
	}
	return true
}

func fmtMap(m map[string]string) string {
	s := "{"
	for k, v := range m {
		s += k + ":" + v + " "
	}
	return s + "}"
}
