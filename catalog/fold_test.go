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
