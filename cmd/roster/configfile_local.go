package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"roster/cmd/roster/internal/agent"
	"roster/cmd/roster/internal/local"
)

// localKeys are the config-file keys that define the agent's own
// services and checks, in Consul's spelling: `service` and `check` hold
// one definition, `services` and `checks` a list. The definitions are
// decoded strictly by package local (either key spelling; unknown keys
// are errors naming the file, the entry and the key).
type localKeys struct {
	Service                 json.RawMessage   `json:"service"`
	Services                []json.RawMessage `json:"services"`
	Check                   json.RawMessage   `json:"check"`
	Checks                  []json.RawMessage `json:"checks"`
	EnableLocalScriptChecks *bool             `json:"enable_local_script_checks"`
	EnableScriptChecks      *bool             `json:"enable_script_checks"`

	// Decoded by decodeLocal.
	services []local.ServiceDefinition
	checks   []local.CheckDefinition
}

// decodeLocal decodes the service and check definitions of the file at
// path, so errors name the file and the entry.
func (lk *localKeys) decodeLocal(path string) error {
	svcs := lk.Services
	if len(lk.Service) > 0 {
		svcs = append([]json.RawMessage{lk.Service}, svcs...)
	}
	for i, raw := range svcs {
		def, err := local.DecodeServiceDefinition(raw)
		if err != nil {
			return fmt.Errorf("config file %s: %s: %v", path, entryName("service", "services", i, len(lk.Service) > 0), err)
		}
		lk.services = append(lk.services, def)
	}
	checks := lk.Checks
	if len(lk.Check) > 0 {
		checks = append([]json.RawMessage{lk.Check}, checks...)
	}
	for i, raw := range checks {
		def, err := local.DecodeCheckDefinition(raw)
		if err != nil {
			return fmt.Errorf("config file %s: %s: %v", path, entryName("check", "checks", i, len(lk.Check) > 0), err)
		}
		lk.checks = append(lk.checks, def)
	}
	return nil
}

// entryName names the i-th decoded definition by its key in the file:
// the single `service` comes first when present, then `services[n]`.
func entryName(single, list string, i int, hasSingle bool) string {
	if hasSingle {
		if i == 0 {
			return "key " + single
		}
		i--
	}
	return fmt.Sprintf("key %s[%d]", list, i)
}

// applyLocal appends the file's definitions (files add to each other, as
// in Consul) and applies the script-check switches.
func (lk *localKeys) applyLocal(c *agent.Config) {
	c.Local.Services = append(c.Local.Services, lk.services...)
	c.Local.Checks = append(c.Local.Checks, lk.checks...)
	for _, b := range []*bool{lk.EnableLocalScriptChecks, lk.EnableScriptChecks} {
		if b != nil && *b {
			c.Local.EnableScriptChecks = true
		}
	}
}

// configReloader re-reads the agent's config files the way the command
// line named them, for Agent.Reload (SIGHUP and PUT /v1/agent/reload, as
// Consul's reload): the log level takes effect at once, the services and
// checks are returned for the agent to apply. A file that does not parse
// changes nothing.
func configReloader(args []string, level *slog.LevelVar, log *slog.Logger) func() ([]local.ServiceDefinition, []local.CheckDefinition, error) {
	return func() ([]local.ServiceDefinition, []local.CheckDefinition, error) {
		cfg, err := buildAgentConfig(args, io.Discard)
		if err != nil {
			return nil, nil, err
		}
		lvl, err := parseLogLevel(cfg.LogLevel)
		if err != nil {
			return nil, nil, err
		}
		if old := level.Level(); old != lvl {
			level.Set(lvl)
			log.Log(context.Background(), max(lvl, old), "log level changed by reload", "from", old, "to", lvl)
		}
		return cfg.Local.Services, cfg.Local.Checks, nil
	}
}

// reloadOnHangup reloads the config files' services and checks on SIGHUP
// (Consul's reload); registrations made over HTTP are kept. A bad file is
// logged and changes nothing. The returned function stops watching.
func reloadOnHangup(a *agent.Agent, log *slog.Logger) (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-sigs:
			}
			if err := a.Reload(); err != nil {
				log.Error("reload failed; the previous services and checks stay", "error", err)
				continue
			}
			log.Info("reloaded services and checks from the config files")
		}
	}()
	return func() { signal.Stop(sigs); close(done) }
}
