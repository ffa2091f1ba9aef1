package catalog

import (
	"strings"
	"testing"
)

// TestRegister_Semantics runs each Consul registration rule as a case: some
// setup commands, the command under test, and what must hold afterwards.
func TestRegister_Semantics(t *testing.T) {
	cases := []struct {
		name    string
		setup   []Command
		cmd     Command
		wantErr string
		check   func(t *testing.T, h *harness)
	}{{
		name: "node is created with both indexes at the raft index",
		cmd:  regNode("n1", "10.0.0.1"),
		check: func(t *testing.T, h *harness) {
			nodes, idx := h.s.Nodes()
			if len(nodes) != 1 || nodes[0].CreateIndex != 1 || nodes[0].ModifyIndex != 1 || idx != 1 {
				t.Fatalf("nodes %+v index %d, want n1 created at 1", nodes, idx)
			}
		},
	}, {
		name:  "re-registering an identical node moves no index",
		setup: []Command{regNode("n1", "10.0.0.1")},
		cmd:   regNode("n1", "10.0.0.1"),
		check: func(t *testing.T, h *harness) {
			if _, idx := h.s.Nodes(); idx != 1 {
				t.Fatalf("nodes index %d after identical re-register, want 1", idx)
			}
		},
	}, {
		name:  "changing a node keeps CreateIndex and bumps ModifyIndex",
		setup: []Command{regNode("n1", "10.0.0.1")},
		cmd:   regNode("n1", "10.0.0.2"),
		check: func(t *testing.T, h *harness) {
			nodes, _ := h.s.Nodes()
			if nodes[0].CreateIndex != 1 || nodes[0].ModifyIndex != 2 || nodes[0].Address != "10.0.0.2" {
				t.Fatalf("node %+v, want created 1 modified 2 at 10.0.0.2", nodes[0])
			}
		},
	}, {
		name: "service without ID takes its name as ID",
		cmd:  regService("n1", "", "web", 80),
		check: func(t *testing.T, h *harness) {
			ns, _ := h.s.NodeServices("n1")
			if ns == nil || len(ns.Services) != 1 || ns.Services[0].ID != "web" {
				t.Fatalf("node services %+v, want one service with ID web", ns)
			}
		},
	}, {
		name:    "missing node name is refused",
		cmd:     &RegisterRequest{Node: Node{Address: "1.2.3.4"}},
		wantErr: "Must provide node",
	}, {
		name:    "missing address is refused",
		cmd:     &RegisterRequest{Node: Node{Node: "n1"}},
		wantErr: "Must provide address",
	}, {
		name:    "SkipNodeUpdate needs an existing node",
		cmd:     regCheck("ghost", "c1", "", HealthPassing),
		wantErr: "not found",
	}, {
		name: "a check for a missing service fails the whole registration",
		cmd: &RegisterRequest{Node: Node{Node: "n1", Address: "a"},
			Checks: []HealthCheck{{CheckID: "c", ServiceID: "nope"}}},
		wantErr: "Missing service registration",
		check: func(t *testing.T, h *harness) {
			if nodes, _ := h.s.Nodes(); len(nodes) != 0 {
				t.Fatalf("node was created by a failed registration: %+v", nodes)
			}
		},
	}, {
		name:  "check defaults: node from the request, status critical, service name and tags",
		setup: []Command{regService("n1", "web1", "web", 80, "v1")},
		cmd: &RegisterRequest{Node: Node{Node: "n1"}, SkipNodeUpdate: true,
			Checks: []HealthCheck{{CheckID: "c", ServiceID: "web1"}, {CheckID: "m", Status: HealthMaintenance}}},
		check: func(t *testing.T, h *harness) {
			checks, _ := h.s.NodeChecks("n1")
			if len(checks) != 2 {
				t.Fatalf("checks %+v, want 2", checks)
			}
			c, m := checks[0], checks[1]
			if c.Node != "n1" || c.Status != HealthCritical || c.ServiceName != "web" || len(c.ServiceTags) != 1 {
				t.Fatalf("check %+v, want node n1, critical, service web with tag v1", c)
			}
			if m.Status != HealthCritical {
				t.Fatalf("maintenance check stored as %q, want critical", m.Status)
			}
		},
	}, {
		name: "deregistering a node removes its services, checks, sessions and coordinate",
		setup: []Command{
			regService("n1", "web1", "web", 80), regCheck("n1", "serfHealth", "", HealthPassing),
			regCheck("n1", "svc", "web1", HealthPassing), regService("n2", "web2", "web", 80),
			&SessionRequest{Verb: SessionCreate, Session: SessionEntry{ID: "s1", Node: "n1", NodeChecks: []string{"serfHealth"}}},
			&CoordinateBatchRequest{Updates: []CoordinateEntry{{Node: "n1", Coord: Coordinate{Vec: []float64{1}}}}},
		},
		cmd: &DeregisterRequest{Node: "n1"},
		check: func(t *testing.T, h *harness) {
			if ns, _ := h.s.NodeServices("n1"); ns != nil {
				t.Fatalf("node n1 still there: %+v", ns)
			}
			if checks, _ := h.s.NodeChecks("n1"); len(checks) != 0 {
				t.Fatalf("checks left: %+v", checks)
			}
			if sess, _ := h.s.Sessions(); len(sess) != 0 {
				t.Fatalf("sessions left: %+v", sess)
			}
			if coords, _ := h.s.Coordinates(); len(coords) != 0 {
				t.Fatalf("coordinates left: %+v", coords)
			}
			if sn, _ := h.s.ServiceNodes("web", nil); len(sn) != 1 || sn[0].Node != "n2" {
				t.Fatalf("web instances %+v, want only n2's", sn)
			}
		},
	}, {
		name: "deregistering a service removes its checks but not node checks",
		setup: []Command{
			regService("n1", "web1", "web", 80), regCheck("n1", "serfHealth", "", HealthPassing),
			regCheck("n1", "svc", "web1", HealthPassing),
		},
		cmd: &DeregisterRequest{Node: "n1", ServiceID: "web1"},
		check: func(t *testing.T, h *harness) {
			checks, _ := h.s.NodeChecks("n1")
			if len(checks) != 1 || checks[0].CheckID != "serfHealth" {
				t.Fatalf("checks %+v, want only serfHealth", checks)
			}
		},
	}, {
		name:  "deregistering a check removes only it",
		setup: []Command{regNode("n1", "a"), regCheck("n1", "a", "", HealthPassing), regCheck("n1", "b", "", HealthPassing)},
		cmd:   &DeregisterRequest{Node: "n1", CheckID: "a"},
		check: func(t *testing.T, h *harness) {
			checks, _ := h.s.NodeChecks("n1")
			if len(checks) != 1 || checks[0].CheckID != "b" {
				t.Fatalf("checks %+v, want only b", checks)
			}
		},
	}, {
		name: "a critical node check makes every instance on the node fail ?passing",
		setup: []Command{
			regService("n1", "web1", "web", 80), regService("n1", "api1", "api", 81),
			regService("n2", "web2", "web", 80),
		},
		cmd: regCheck("n1", "serfHealth", "", HealthCritical),
		check: func(t *testing.T, h *harness) {
			all, _ := h.s.CheckServiceNodes("web", nil, false)
			passing, _ := h.s.CheckServiceNodes("web", nil, true)
			if len(all) != 2 || len(passing) != 1 || passing[0].Node.Node != "n2" {
				t.Fatalf("web: %d entries, %d passing %+v; want 2 and only n2 passing", len(all), len(passing), passing)
			}
			if len(all[0].Checks) != 1 || all[0].Checks[0].CheckID != "serfHealth" {
				t.Fatalf("n1 web entry checks %+v, want the node-level serfHealth", all[0].Checks)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			for _, c := range tc.setup {
				h.ok(c)
			}
			res := h.apply(tc.cmd)
			switch {
			case tc.wantErr == "" && res.Err != nil:
				t.Fatalf("unexpected error: %v", res.Err)
			case tc.wantErr != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", res.Err, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t, h)
			}
		})
	}
}

// TestRegister_TagFilterIsCaseInsensitiveAND checks ?tag= semantics.
func TestRegister_TagFilterIsCaseInsensitiveAND(t *testing.T) {
	h := newHarness(t, Config{})
	h.ok(regService("n1", "w1", "web", 80, "v1", "Primary"))
	h.ok(regService("n2", "w2", "web", 80, "v1"))
	if sn, _ := h.s.ServiceNodes("web", []string{"v1"}); len(sn) != 2 {
		t.Fatalf("tag v1: %d instances, want 2", len(sn))
	}
	if sn, _ := h.s.ServiceNodes("web", []string{"V1", "primary"}); len(sn) != 1 || sn[0].Node != "n1" {
		t.Fatalf("tags V1+primary: %+v, want only n1", sn)
	}
	services, _ := h.s.Services()
	if got := strings.Join(services["web"], ","); got != "Primary,v1" {
		t.Fatalf("catalog services tags %q, want the sorted union Primary,v1", got)
	}
}

// TestRegister_ReadsReturnCopies proves callers cannot corrupt the store.
func TestRegister_ReadsReturnCopies(t *testing.T) {
	h := newHarness(t, Config{})
	r := regService("n1", "w1", "web", 80, "v1")
	r.Service.Meta = map[string]string{"k": "v"}
	h.ok(r)
	sn, _ := h.s.ServiceNodes("web", nil)
	sn[0].ServiceTags[0] = "mutated"
	sn[0].ServiceMeta["k"] = "mutated"
	again, _ := h.s.ServiceNodes("web", nil)
	if again[0].ServiceTags[0] != "v1" || again[0].ServiceMeta["k"] != "v" {
		t.Fatalf("store content changed through a returned copy: %+v", again[0])
	}
}

// TestApply_MalformedCommandIsCountedNotApplied covers the decoder path.
func TestApply_MalformedCommandIsCountedNotApplied(t *testing.T) {
	h := newHarness(t, Config{})
	res := h.s.Apply(rawEntry(1, []byte{commandVersion, byte(CmdRegister), 0xff}))
	if r := res.(Result); r.Err == nil {
		t.Fatalf("malformed command applied: %+v", r)
	}
	if st := h.s.Stats(); st.Malformed != 1 || st.Index != 1 {
		t.Fatalf("stats %+v, want 1 malformed and index 1", st)
	}
	if r := h.s.ApplyCommand(1, regNode("n", "a")); r.Err == nil {
		t.Fatalf("re-applying index 1 succeeded; want ErrStaleIndex")
	}
}
