package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfig_FlagsOverrideFilesAndLaterFilesWin(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.json", `{"datacenter":"east","node_name":"from-a","retry_join":["10.0.0.1"],"ports":{"http":9500}}`)
	writeFile(t, dir, "b.json", `{"node_name":"from-b","retry_join":["10.0.0.2"],"server":true,"data_dir":"/tmp/x"}`)
	writeFile(t, dir, "ignored.txt", `not json`)
	cfg, err := buildAgentConfig([]string{"-config-dir", dir, "-datacenter", "west"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Datacenter != "west" {
		t.Errorf("flag did not override file: datacenter %q", cfg.Datacenter)
	}
	if cfg.NodeName != "from-b" {
		t.Errorf("later file did not win: node %q", cfg.NodeName)
	}
	if strings.Join(cfg.RetryJoin, ",") != "10.0.0.1,10.0.0.2" {
		t.Errorf("lists not appended in file order: %v", cfg.RetryJoin)
	}
	if cfg.Ports.HTTP != 9500 || cfg.Ports.DNS != 8600 || !cfg.Server {
		t.Errorf("ports %+v server %v", cfg.Ports, cfg.Server)
	}
}

func TestConfig_FlagDefaultsDoNotClobberFiles(t *testing.T) {
	p := writeFile(t, t.TempDir(), "c.json", `{"ports":{"dns":9600},"log_level":"warn"}`)
	cfg, err := buildAgentConfig([]string{"-config-file", p}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Ports.DNS != 9600 || cfg.LogLevel != "warn" {
		t.Fatalf("file values lost: dns port %d, log level %q", cfg.Ports.DNS, cfg.LogLevel)
	}
}

func TestConfig_BadFilesNameFileAndKey(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"unknown.json":  `{"datacenter":"dc1","colour":"blue"}`,
		"type.json":     `{"bootstrap_expect":"three"}`,
		"syntax.json":   "{\n\"server\": true,\n}",
		"trailing.json": `{} {}`,
	}
	wants := map[string]string{
		"unknown.json":  `unknown key "colour"`,
		"type.json":     `key "bootstrap_expect"`,
		"syntax.json":   "line 3",
		"trailing.json": "after the top-level object",
	}
	for name, body := range cases {
		p := writeFile(t, dir, name, body)
		_, err := buildAgentConfig([]string{"-config-file", p}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), wants[name]) {
			t.Errorf("%s: error %v, want it to name the file and %q", name, err, wants[name])
		}
	}
	if _, err := buildAgentConfig([]string{"-config-file", filepath.Join(dir, "c.hcl")}, io.Discard); err == nil || !strings.Contains(err.Error(), "only JSON") {
		t.Errorf("HCL file: %v", err)
	}
}

func TestConfig_DevAppliesBeforeFiles(t *testing.T) {
	p := writeFile(t, t.TempDir(), "d.json", `{"client_addr":"127.0.0.2 127.0.0.3"}`)
	cfg, err := buildAgentConfig([]string{"-dev", "-config-file", p}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Dev || !cfg.Server || strings.Join(cfg.ClientAddrs, " ") != "127.0.0.2 127.0.0.3" {
		t.Fatalf("dev=%v server=%v client=%v", cfg.Dev, cfg.Server, cfg.ClientAddrs)
	}
}

func TestConfig_RetryIntervalIsADurationStringAndTheFlagWins(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "a.json", `{"retry_interval":"5s"}`)
	cfg, err := buildAgentConfig([]string{"-config-file", p}, io.Discard)
	if err != nil || cfg.RetryJoinInterval != 5*time.Second {
		t.Fatalf("retry_interval from file: %v, %v", cfg.RetryJoinInterval, err)
	}
	cfg, err = buildAgentConfig([]string{"-config-file", p, "-retry-interval", "250ms"}, io.Discard)
	if err != nil || cfg.RetryJoinInterval != 250*time.Millisecond {
		t.Fatalf("-retry-interval over file: %v, %v", cfg.RetryJoinInterval, err)
	}
	bad := writeFile(t, dir, "bad.json", `{"retry_interval":"soon"}`)
	if _, err := buildAgentConfig([]string{"-config-file", bad}, io.Discard); err == nil || !strings.Contains(err.Error(), "bad.json") || !strings.Contains(err.Error(), "not a duration") {
		t.Fatalf("bad retry_interval: %v", err)
	}
}

func TestConfig_AutopilotBlock(t *testing.T) {
	p := writeFile(t, t.TempDir(), "ap.json", `{"autopilot":{"cleanup_dead_servers":false,"min_quorum":3,"dead_server_grace_period":"45s"}}`)
	cfg, err := buildAgentConfig([]string{"-config-file", p}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if ap := cfg.Autopilot; !ap.DisableCleanupDeadServers || ap.MinQuorum != 3 || ap.DeadServerGrace != 45*time.Second {
		t.Fatalf("autopilot %+v", ap)
	}
	// Consul's other autopilot keys seed the replicated configuration.
	p = writeFile(t, t.TempDir(), "ap2.json", `{"autopilot":{"last_contact_threshold":"1s","max_trailing_logs":500,
		"server_stabilization_time":"3s","redundancy_zone_tag":"zone","disable_upgrade_migration":true,"upgrade_version_tag":"build"}}`)
	cfg, err = buildAgentConfig([]string{"-config-file", p}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if ap := cfg.Autopilot; ap.LastContactThreshold != time.Second || ap.MaxTrailingLogs != 500 || cfg.ServerStabilizationTime != 3*time.Second ||
		ap.RedundancyZoneTag != "zone" || !ap.DisableUpgradeMigration || ap.UpgradeVersionTag != "build" {
		t.Fatalf("autopilot %+v, stabilization %v", ap, cfg.ServerStabilizationTime)
	}
	bad := writeFile(t, t.TempDir(), "bad.json", `{"autopilot":{"cleanup_dead":true}}`)
	if _, err := buildAgentConfig([]string{"-config-file", bad}, io.Discard); err == nil || !strings.Contains(err.Error(), "cleanup_dead") {
		t.Fatalf("unknown autopilot key: %v", err)
	}
}

// -node-meta is repeatable, splits at the first ':' (a pair without one has
// an empty value, as Consul's flag) and adds to node_meta from files, a
// flag winning for the same key.
func TestConfig_NodeMetaFlagAddsToFileMeta(t *testing.T) {
	p := writeFile(t, t.TempDir(), "m.json", `{"node_meta":{"rack":"file","env":"file"}}`)
	cfg, err := buildAgentConfig([]string{"-config-file", p, "-node-meta", "rack:r1", "-node-meta", "url:http://x:80", "-node-meta", "bare"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"rack": "r1", "env": "file", "url": "http://x:80", "bare": ""}
	if len(cfg.Meta) != len(want) {
		t.Fatalf("Meta = %v, want %v", cfg.Meta, want)
	}
	for k, v := range want {
		if got, ok := cfg.Meta[k]; !ok || got != v {
			t.Fatalf("Meta = %v, want %v", cfg.Meta, want)
		}
	}
}
