package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"roster/cmd/roster/internal/agent"
)

// fileConfig is the subset of Consul's agent configuration keys roster
// understands, in Consul's JSON spelling. Pointers tell "absent" from a
// zero value, so a later file or a flag only overrides what it sets.
// Unknown keys are refused, naming the file and key, rather than ignored.
type fileConfig struct {
	Datacenter      *string           `json:"datacenter"`
	DataDir         *string           `json:"data_dir"`
	NodeName        *string           `json:"node_name"`
	NodeID          *string           `json:"node_id"`
	NodeMeta        map[string]string `json:"node_meta"`
	Server          *bool             `json:"server"`
	Bootstrap       *bool             `json:"bootstrap"`
	BootstrapExpect *int              `json:"bootstrap_expect"`
	BindAddr        *string           `json:"bind_addr"`
	ClientAddr      *string           `json:"client_addr"`
	AdvertiseAddr   *string           `json:"advertise_addr"`
	StartJoin       []string          `json:"start_join"`
	RetryJoin       []string          `json:"retry_join"`
	RetryInterval   *jsonDuration     `json:"retry_interval"`
	StartJoinWAN    []string          `json:"start_join_wan"`
	Encrypt         *string           `json:"encrypt"`
	LogLevel        *string           `json:"log_level"`
	LogJSON         *bool             `json:"log_json"`
	UI              *bool             `json:"ui"`
	UIConfig        *struct {
		Enabled *bool `json:"enabled"`
	} `json:"ui_config"`
	Ports *struct {
		HTTP    *int `json:"http"`
		DNS     *int `json:"dns"`
		Server  *int `json:"server"`
		SerfLAN *int `json:"serf_lan"`
		SerfWAN *int `json:"serf_wan"`
	} `json:"ports"`
	// Autopilot is Consul's autopilot block plus roster's
	// dead_server_grace_period: the settings the first leader stores in
	// the replicated autopilot configuration.
	Autopilot *struct {
		CleanupDeadServers      *bool         `json:"cleanup_dead_servers"`
		MinQuorum               *int          `json:"min_quorum"`
		DeadServerGracePeriod   *jsonDuration `json:"dead_server_grace_period"`
		LastContactThreshold    *jsonDuration `json:"last_contact_threshold"`
		MaxTrailingLogs         *uint64       `json:"max_trailing_logs"`
		ServerStabilizationTime *jsonDuration `json:"server_stabilization_time"`
		RedundancyZoneTag       *string       `json:"redundancy_zone_tag"`
		DisableUpgradeMigration *bool         `json:"disable_upgrade_migration"`
		UpgradeVersionTag       *string       `json:"upgrade_version_tag"`
	} `json:"autopilot"`
	localKeys // service(s), check(s), script-check switches: configfile_local.go
}

// loadConfigFiles reads -config-file paths and the *.json files of each
// -config-dir (in lexical order) and merges them into cfg in that order:
// scalars from later files win, lists are appended, as in Consul.
func loadConfigFiles(cfg *agent.Config, files, dirs []string) error {
	paths := append([]string(nil), files...)
	for _, d := range dirs {
		matches, err := filepath.Glob(filepath.Join(d, "*.json"))
		if err != nil {
			return fmt.Errorf("-config-dir %s: %w", d, err)
		}
		if _, err := os.Stat(d); err != nil {
			return fmt.Errorf("-config-dir: %w", err)
		}
		sort.Strings(matches)
		paths = append(paths, matches...)
	}
	for _, p := range paths {
		fc, err := parseConfigFile(p)
		if err != nil {
			return err
		}
		fc.applyTo(cfg)
	}
	return nil
}

// parseConfigFile decodes one JSON file strictly.
func parseConfigFile(path string) (*fileConfig, error) {
	if !strings.HasSuffix(path, ".json") {
		return nil, fmt.Errorf("config file %s: only JSON files (*.json) are supported", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var fc fileConfig
	if err := dec.Decode(&fc); err != nil {
		return nil, fmt.Errorf("config file %s: %s", path, describeJSONError(b, err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config file %s: unexpected data after the top-level object", path)
	}
	if err := fc.decodeLocal(path); err != nil {
		return nil, err
	}
	return &fc, nil
}

// describeJSONError turns encoding/json errors into messages that name the
// key or the line.
func describeJSONError(b []byte, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line := 1 + bytes.Count(b[:min(int(syn.Offset), len(b))], []byte("\n"))
		return fmt.Sprintf("line %d: %v", line, syn)
	case errors.As(err, &typ):
		return fmt.Sprintf("key %q: expected %s, got JSON %s", typ.Field, typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		key := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return fmt.Sprintf("unknown key %s (roster does not support it)", key)
	}
	return err.Error()
}

func setString(dst *string, src *string) {
	if src != nil {
		*dst = *src
	}
}

func setBool(dst *bool, src *bool) {
	if src != nil {
		*dst = *src
	}
}

func setInt(dst *int, src *int) {
	if src != nil {
		*dst = *src
	}
}

func (fc *fileConfig) applyTo(c *agent.Config) {
	fc.applyLocal(c)
	setString(&c.Datacenter, fc.Datacenter)
	setString(&c.DataDir, fc.DataDir)
	setString(&c.NodeName, fc.NodeName)
	setString(&c.NodeID, fc.NodeID)
	setBool(&c.Server, fc.Server)
	setBool(&c.Bootstrap, fc.Bootstrap)
	setInt(&c.BootstrapExpect, fc.BootstrapExpect)
	setString(&c.BindAddr, fc.BindAddr)
	if fc.ClientAddr != nil {
		c.ClientAddrs = strings.Fields(*fc.ClientAddr)
	}
	setString(&c.AdvertiseAddr, fc.AdvertiseAddr)
	c.StartJoin = append(c.StartJoin, fc.StartJoin...)
	c.RetryJoin = append(c.RetryJoin, fc.RetryJoin...)
	if fc.RetryInterval != nil {
		c.RetryJoinInterval = time.Duration(*fc.RetryInterval)
	}
	c.StartJoinWAN = append(c.StartJoinWAN, fc.StartJoinWAN...)
	setString(&c.Encrypt, fc.Encrypt)
	setString(&c.LogLevel, fc.LogLevel)
	setBool(&c.LogJSON, fc.LogJSON)
	setBool(&c.UI, fc.UI)
	if fc.UIConfig != nil {
		setBool(&c.UI, fc.UIConfig.Enabled)
	}
	for k, v := range fc.NodeMeta {
		if c.Meta == nil {
			c.Meta = map[string]string{}
		}
		c.Meta[k] = v
	}
	if ap := fc.Autopilot; ap != nil {
		if ap.CleanupDeadServers != nil {
			c.Autopilot.DisableCleanupDeadServers = !*ap.CleanupDeadServers
		}
		setInt(&c.Autopilot.MinQuorum, ap.MinQuorum)
		if ap.DeadServerGracePeriod != nil {
			c.Autopilot.DeadServerGrace = time.Duration(*ap.DeadServerGracePeriod)
		}
		applyAutopilotExtras(c, fc)
	}
	if p := fc.Ports; p != nil {
		setInt(&c.Ports.HTTP, p.HTTP)
		setInt(&c.Ports.DNS, p.DNS)
		setInt(&c.Ports.Server, p.Server)
		setInt(&c.Ports.SerfLAN, p.SerfLAN)
		setInt(&c.Ports.SerfWAN, p.SerfWAN)
	}
}

// jsonDuration is a Go duration string in a config file ("30s"), as
// Consul writes them.
type jsonDuration time.Duration

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("expected a duration string such as \"30s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (use e.g. \"30s\")", s)
	}
	*d = jsonDuration(v)
	return nil
}

// applyAutopilotExtras applies the autopilot keys beyond cleanup, quorum
// and grace (Consul's names; server_stabilization_time is the agent's
// ServerStabilizationTime).
func applyAutopilotExtras(c *agent.Config, fc *fileConfig) {
	ap := fc.Autopilot
	if ap.LastContactThreshold != nil {
		c.Autopilot.LastContactThreshold = time.Duration(*ap.LastContactThreshold)
	}
	if ap.MaxTrailingLogs != nil {
		c.Autopilot.MaxTrailingLogs = *ap.MaxTrailingLogs
	}
	if ap.ServerStabilizationTime != nil {
		c.ServerStabilizationTime = time.Duration(*ap.ServerStabilizationTime)
	}
	setString(&c.Autopilot.RedundancyZoneTag, ap.RedundancyZoneTag)
	setBool(&c.Autopilot.DisableUpgradeMigration, ap.DisableUpgradeMigration)
	setString(&c.Autopilot.UpgradeVersionTag, ap.UpgradeVersionTag)
}
