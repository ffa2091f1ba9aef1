package catalog

import (
	"context"
	"testing"
)

// Service names compare case-insensitively, as in Consul's catalog (its
// service index is lower-cased): a lookup under any case finds every
// instance whose name folds to it, stored names keep their case, and a
// waiter under one case wakes on a change under another.
func TestFold_ServiceLookupsIgnoreCase(t *testing.T) {
	h := newHarness(t, Config{})
	h.ok(regService("1", "web-1", "web", 80))
	h.ok(regService("2", "web-2", "Web", 81))
	h.ok(regService("3", "db-1", "db", 5432))
	for _, name := range []string{"web", "WEB", "wEb"} {
		nodes, _ := h.s.ServiceNodes(name, nil)
		if len(nodes) != 2 || nodes[0].ServiceName != "web" || nodes[1].ServiceName != "Web" {
			t.Fatalf("ServiceNodes(%q) = %+v, want web-1 (web) and web-2 (Web)", name, nodes)
		}
		entries, _ := h.s.CheckServiceNodes(name, nil, false)
		checks, _ := h.s.ServiceChecks(name)
		if len(entries) != 2 || checks == nil {
			t.Fatalf("CheckServiceNodes(%q) = %d entries, want 2", name, len(entries))
		}
	}
	if h.s.Index(WatchService("WEB")) != h.s.Index(WatchService("web")) {
		t.Fatal("the index of a service depends on the case it is asked in")
	}
	ws := block(t, h.s, WatchService("WEB"), WatchService("db"))
	res := h.ok(regService("2", "web-2", "Web", 82))
	expectWoken(t, ws[0], res.Index)
	expectBlocked(t, h.s, ws[1])

	h.ok(&DeregisterRequest{Node: "1", ServiceID: "web-1"})
	if nodes, _ := h.s.ServiceNodes("web", nil); len(nodes) != 1 || nodes[0].ServiceID != "web-2" {
		t.Fatalf("after removing web-1: %+v", nodes)
	}
	del := h.ok(&DeregisterRequest{Node: "2", ServiceID: "web-2"})
	if nodes, _ := h.s.ServiceNodes("WEB", nil); len(nodes) != 0 {
		t.Fatalf("after removing both: %+v", nodes)
	}
	if len(h.s.st.serviceFold) != 1 {
		t.Fatalf("serviceFold keeps removed names: %v", h.s.st.serviceFold)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if idx, _ := h.s.Wait(ctx, WatchService("Web"), 0); idx < del.Index {
		t.Fatalf("index of a removed service = %d, below its removal at %d", idx, del.Index)
	}
}

// Node-name lookups ignore case too (Consul's node index is lower-cased):
// the node, its checks and its sessions are found under any case, and a
// waiter on "N1" wakes when "n1" changes.
func TestFold_NodeLookupsIgnoreCase(t *testing.T) {
	h := newHarness(t, Config{})
	h.ok(regService("n1", "web-1", "web", 80))
	h.ok(regCheck("n1", "serfHealth", "", HealthPassing))
	h.ok(regNode("n2", "10.0.0.2"))
	for _, name := range []string{"n1", "N1"} {
		ns, idx := h.s.NodeServices(name)
		if ns == nil || ns.Node.Node != "n1" || len(ns.Services) != 1 {
			t.Fatalf("NodeServices(%q) = %+v", name, ns)
		}
		if want := h.s.Index(WatchNode("n1")); idx != want {
			t.Fatalf("NodeServices(%q) index = %d, want %d", name, idx, want)
		}
		if checks, _ := h.s.NodeChecks(name); len(checks) != 1 {
			t.Fatalf("NodeChecks(%q) = %+v", name, checks)
		}
	}
	ws := block(t, h.s, WatchNode("N1"), WatchNode("n2"))
	res := h.ok(regCheck("n1", "serfHealth", "", HealthCritical))
	expectWoken(t, ws[0], res.Index)
	expectBlocked(t, h.s, ws[1])
	h.ok(&DeregisterRequest{Node: "n1"})
	if ns, _ := h.s.NodeServices("N1"); ns != nil {
		t.Fatalf("a removed node is still found: %+v", ns)
	}
	if len(h.s.st.nodeFold) != 1 {
		t.Fatalf("nodeFold keeps removed names: %v", h.s.st.nodeFold)
	}
}
