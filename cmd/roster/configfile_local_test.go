package main

import (
	"io"
	"strings"
	"testing"
)

func TestConfig_ServicesAndChecksLoadFromConsulStyleFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "10-web.json", `{"service":{"name":"web","port":80,"tags":["v1"],
		"check":{"http":"http://127.0.0.1:80/health","interval":"10s","timeout":"1s"}}}`)
	writeFile(t, dir, "20-more.json", `{"services":[{"id":"db1","name":"db","port":5432},
		{"Name":"cache","Port":6379,"Checks":[{"TTL":"30s"}]}],
		"checks":[{"id":"disk","name":"disk","args":["/bin/true"],"interval":"30s"}],
		"enable_local_script_checks":true}`)
	cfg, err := buildAgentConfig([]string{"-config-dir", dir}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range cfg.Local.Services {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "web,db,cache" {
		t.Fatalf("services in file order = %v", names)
	}
	if len(cfg.Local.Checks) != 1 || cfg.Local.Checks[0].Name != "disk" || !cfg.Local.EnableScriptChecks {
		t.Fatalf("checks %+v, script checks %v", cfg.Local.Checks, cfg.Local.EnableScriptChecks)
	}
}

func TestConfig_BadServiceDefinitionNamesFileEntryAndKey(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "svc.json", `{"services":[{"name":"ok"},{"name":"web","colour":"blue"}]}`)
	_, err := buildAgentConfig([]string{"-config-file", p}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "svc.json") || !strings.Contains(err.Error(), "services[1]") ||
		!strings.Contains(err.Error(), "colour") {
		t.Fatalf("error = %v, want one naming svc.json, services[1] and colour", err)
	}
	p = writeFile(t, dir, "chk.json", `{"check":{"name":"x","ttl":"soon"}}`)
	if _, err := buildAgentConfig([]string{"-config-file", p}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "chk.json") || !strings.Contains(err.Error(), "key check") {
		t.Fatalf("error = %v, want one naming chk.json and key check", err)
	}
}

func TestConfig_ScriptCheckFlag(t *testing.T) {
	cfg, err := buildAgentConfig([]string{"-enable-local-script-checks"}, io.Discard)
	if err != nil || !cfg.Local.EnableScriptChecks {
		t.Fatalf("flag not applied: %v %v", cfg.Local.EnableScriptChecks, err)
	}
}
