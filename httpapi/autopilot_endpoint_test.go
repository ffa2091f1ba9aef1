package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// autopilotRPC is a leader holding one autopilot configuration: what the
// agent's Autopilot endpoint does, without Raft.
type autopilotRPC struct {
	mu   sync.Mutex // guards conf
	conf AutopilotConfiguration
}

func (f *autopilotRPC) RPC(_ context.Context, method string, args, reply any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch method {
	case "Autopilot.GetConfiguration":
		*reply.(*AutopilotConfiguration) = f.conf
	case "Autopilot.SetConfiguration":
		a := args.(*AutopilotSetConfigRequest)
		if a.CAS && a.Config.ModifyIndex != f.conf.ModifyIndex {
			*reply.(*bool) = false
			return nil
		}
		idx := f.conf.ModifyIndex + 1
		f.conf = a.Config
		f.conf.ModifyIndex = idx
		*reply.(*bool) = true
	default:
		return fmt.Errorf("rpc: can't find method %s", method)
	}
	return nil
}

// PUT replaces the configuration and answers true; with ?cas= it answers
// whether it applied. Durations are accepted as strings or nanoseconds and
// answered as strings; a bad body or cas is 400 with Consul's message.
func TestAutopilotConfiguration_PutCASAndGet(t *testing.T) {
	b := &autopilotRPC{conf: AutopilotConfiguration{ModifyIndex: 7}}
	base := startServer(t, Config{Agent: testAgent(), RPC: b})
	a := &api{t: t, base: base}
	body := `{"CleanupDeadServers":true,"LastContactThreshold":"1s","MaxTrailingLogs":100,"MinQuorum":3,"ServerStabilizationTime":5000000000}`
	if _, out := a.must(200, "PUT", "/v1/operator/autopilot/configuration", []byte(body)); out != "true" {
		t.Fatalf("PUT = %q, want true", out)
	}
	_, out := a.must(200, "GET", "/v1/operator/autopilot/configuration", nil)
	var got AutopilotConfiguration
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if !got.CleanupDeadServers || got.LastContactThreshold != "1s" || got.ServerStabilizationTime != "5s" ||
		got.MaxTrailingLogs != 100 || got.MinQuorum != 3 || got.ModifyIndex != 8 {
		t.Fatalf("GET after PUT = %+v", got)
	}
	if _, out := a.must(200, "PUT", "/v1/operator/autopilot/configuration?cas=7", []byte(body)); out != "false" {
		t.Fatalf("PUT ?cas=7 at index 8 = %q, want false", out)
	}
	if _, out := a.must(200, "PUT", "/v1/operator/autopilot/configuration?cas=8", []byte(`{"MinQuorum":5}`)); out != "true" {
		t.Fatalf("PUT ?cas=8 at index 8 = %q, want true", out)
	}
	for _, tc := range []struct{ query, body, want string }{
		{"", `{"LastContactThreshold":"soon"}`, "Error parsing autopilot config: LastContactThreshold"},
		{"", `{"MaxTrailingLogs":"many"}`, "Error parsing autopilot config"},
		{"", `{"ServerStabilizationTime":"-1s"}`, "is negative"},
		{"?cas=x", `{}`, "Error parsing cas value"},
	} {
		resp, out := a.do("PUT", "/v1/operator/autopilot/configuration"+tc.query, []byte(tc.body))
		if resp.StatusCode != 400 || !strings.Contains(out, tc.want) {
			t.Errorf("PUT%s %s = %d %q, want 400 containing %q", tc.query, tc.body, resp.StatusCode, out, tc.want)
		}
	}
	a.must(405, "DELETE", "/v1/operator/autopilot/configuration", nil)
}

// GET /v1/operator/autopilot/state answers Consul's api.AutopilotState
// through the real RPC stack: exactly its field names, durations as
// strings, StableSince as RFC 3339, and no enterprise-only fields.
func TestStack_AutopilotStateInConsulShape(t *testing.T) {
	a, _ := stackAPI(t)
	for _, path := range []string{"/v1/operator/autopilot/state", "/v1/operator/autopilot/state?stale"} {
		_, body := a.must(200, "GET", path, nil)
		var st map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("%s: %v in %s", path, err, body)
		}
		want := []string{"FailureTolerance", "Healthy", "Leader", "OptimisticFailureTolerance", "Servers", "Voters"}
		if got := slices.Sorted(maps.Keys(st)); !slices.Equal(got, want) {
			t.Fatalf("%s: fields %v, want %v", path, got, want)
		}
		if string(st["Healthy"]) != "true" || string(st["FailureTolerance"]) != "0" ||
			string(st["Leader"]) != `"server-1"` || string(st["Voters"]) != `["server-1"]` {
			t.Fatalf("%s: %s", path, body)
		}
		var servers map[string]map[string]any
		if err := json.Unmarshal(st["Servers"], &servers); err != nil {
			t.Fatal(err)
		}
		s := servers["server-1"]
		if len(servers) != 1 || s["ID"] != "server-1" || s["Status"] != "leader" || s["LastContact"] != "0s" ||
			s["NodeType"] != "voter" || s["Healthy"] != true || s["ReadReplica"] != false {
			t.Fatalf("%s: servers %v", path, servers)
		}
		if _, err := time.Parse(time.RFC3339Nano, s["StableSince"].(string)); err != nil {
			t.Fatalf("%s: StableSince %v: %v", path, s["StableSince"], err)
		}
	}
	a.must(405, "PUT", "/v1/operator/autopilot/state", nil)
}
