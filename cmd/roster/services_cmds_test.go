package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func agentServiceIDs(t *testing.T, base string) map[string]bool {
	t.Helper()
	resp, err := http.Get(base + "/v1/agent/services")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var svcs map[string]json.RawMessage
	if err := json.Unmarshal(b, &svcs); err != nil {
		t.Fatalf("services %s: %v", b, err)
	}
	ids := map[string]bool{}
	for id := range svcs {
		ids[id] = true
	}
	return ids
}

func TestServicesMaintReload_AgainstADevAgent(t *testing.T) {
	a := startDevAgent(t)
	addr := strings.TrimPrefix(a.base, "http://")
	code, out, errOut := runRoster(t, "services", "register", "-http-addr", addr, "-name", "web", "-port", "80", "-tag", "v1")
	if code != 0 || !strings.Contains(out, "Registered service: web") {
		t.Fatalf("register: exit %d, %q %q", code, out, errOut)
	}
	file := writeFile(t, t.TempDir(), "db.json", `{"services":[{"id":"db1","name":"db","port":5432}]}`)
	if code, out, errOut = runRoster(t, "services", "register", "-http-addr", addr, file); code != 0 {
		t.Fatalf("register from file: exit %d, %q %q", code, out, errOut)
	}
	if ids := agentServiceIDs(t, a.base); !ids["web"] || !ids["db1"] {
		t.Fatalf("services after register = %v", ids)
	}
	if code, out, errOut = runRoster(t, "maint", "-http-addr", addr, "-enable", "-service", "web", "-reason", "deploy"); code != 0 {
		t.Fatalf("maint -enable: exit %d, %q %q", code, out, errOut)
	}
	if code, out, _ = runRoster(t, "maint", "-http-addr", addr); code != 0 || !strings.Contains(out, "ID: web") || !strings.Contains(out, "Reason: deploy") {
		t.Fatalf("maint list: exit %d, %q", code, out)
	}
	if code, _, _ = runRoster(t, "maint", "-http-addr", addr, "-enable", "-service", "nope"); code != 1 {
		t.Fatalf("maint of an unknown service: exit %d, want 1", code)
	}
	if code, _, _ = runRoster(t, "maint", "-http-addr", addr, "-enable", "-disable"); code != 2 {
		t.Fatalf("maint -enable -disable: exit %d, want 2", code)
	}
	if code, out, errOut = runRoster(t, "services", "deregister", "-http-addr", addr, "-id", "web"); code != 0 {
		t.Fatalf("deregister: exit %d, %q %q", code, out, errOut)
	}
	if code, out, errOut = runRoster(t, "services", "deregister", "-http-addr", addr, file); code != 0 {
		t.Fatalf("deregister from file: exit %d, %q %q", code, out, errOut)
	}
	if ids := agentServiceIDs(t, a.base); len(ids) != 0 {
		t.Fatalf("services after deregister = %v", ids)
	}
	if code, out, errOut = runRoster(t, "reload", "-http-addr", addr); code != 0 || !strings.Contains(out, "reload triggered") {
		t.Fatalf("reload: exit %d, %q %q", code, out, errOut)
	}
	if code, _, _ = runRoster(t, "services", "frobnicate"); code != 2 {
		t.Fatalf("bad subcommand: exit %d, want 2", code)
	}
}

func TestValidate_AcceptsGoodFilesAndNamesFileAndKeyOfBadOnes(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.json", `{"datacenter":"dc2","services":[{"name":"web","port":80,"check":{"ttl":"10s"}}]}`)
	code, out, errOut := runRoster(t, "validate", dir)
	if code != 0 || !strings.Contains(out, "Configuration is valid!") {
		t.Fatalf("valid dir: exit %d, %q %q", code, out, errOut)
	}
	bad := writeFile(t, t.TempDir(), "bad.json", `{"checks":[{"name":"x","http":"http://a","intervl":"1s"}]}`)
	code, _, errOut = runRoster(t, "validate", bad)
	if code != 1 || !strings.Contains(errOut, "bad.json") || !strings.Contains(errOut, "checks[0]") || !strings.Contains(errOut, "intervl") {
		t.Fatalf("bad file: exit %d, stderr %q", code, errOut)
	}
	noInterval := writeFile(t, t.TempDir(), "noint.json", `{"check":{"name":"x","http":"http://a"}}`)
	if code, _, errOut = runRoster(t, "validate", noInterval); code != 1 || !strings.Contains(errOut, "Interval") {
		t.Fatalf("http check without interval: exit %d, stderr %q", code, errOut)
	}
}
