package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"
)

// autopilotConfig is /v1/operator/autopilot/configuration's body, as the
// CLI reads and writes it.
type autopilotConfig struct {
	CleanupDeadServers                            bool
	LastContactThreshold, ServerStabilizationTime string
	MaxTrailingLogs                               uint64
	MinQuorum                                     uint
	RedundancyZoneTag, UpgradeVersionTag          string
	DisableUpgradeMigration                       bool
	DeadServerGracePeriod                         string
	CreateIndex, ModifyIndex                      uint64
}

// runAutopilotGetConfig prints the autopilot configuration the servers
// hold, as Consul's `operator autopilot get-config` does.
func runAutopilotGetConfig(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("operator autopilot get-config", "Prints the autopilot configuration the servers apply.", stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	var c autopilotConfig
	if err := client().do("GET", "/v1/operator/autopilot/configuration", nil, &c); err != nil {
		return fail(stderr, "querying Autopilot configuration: %v", err)
	}
	fmt.Fprintf(stdout, "CleanupDeadServers = %t\n", c.CleanupDeadServers)
	fmt.Fprintf(stdout, "LastContactThreshold = %s\n", c.LastContactThreshold)
	fmt.Fprintf(stdout, "MaxTrailingLogs = %d\n", c.MaxTrailingLogs)
	fmt.Fprintf(stdout, "MinQuorum = %d\n", c.MinQuorum)
	fmt.Fprintf(stdout, "ServerStabilizationTime = %s\n", c.ServerStabilizationTime)
	fmt.Fprintf(stdout, "RedundancyZoneTag = %q\n", c.RedundancyZoneTag)
	fmt.Fprintf(stdout, "DisableUpgradeMigration = %t\n", c.DisableUpgradeMigration)
	fmt.Fprintf(stdout, "UpgradeVersionTag = %q\n", c.UpgradeVersionTag)
	fmt.Fprintf(stdout, "DeadServerGracePeriod = %s\n", c.DeadServerGracePeriod)
	return 0
}

// runAutopilotSetConfig changes the settings given as flags, as Consul's
// `operator autopilot set-config`: read the configuration, change it,
// write it back with ?cas= so a concurrent change is not overwritten.
func runAutopilotSetConfig(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("operator autopilot set-config", "Changes the autopilot configuration; settings not given keep their value.", stderr)
	set := map[string]func(*autopilotConfig, string) error{}
	add := func(name, usage string, apply func(*autopilotConfig, string) error) {
		fs.String(name, "", usage)
		set[name] = apply
	}
	add("cleanup-dead-servers", "true or false: remove failed servers from Raft.", func(c *autopilotConfig, v string) (err error) {
		c.CleanupDeadServers, err = strconv.ParseBool(v)
		return err
	})
	add("max-trailing-logs", "Entries a server may trail the leader and still be healthy.", func(c *autopilotConfig, v string) (err error) {
		c.MaxTrailingLogs, err = strconv.ParseUint(v, 10, 64)
		return err
	})
	add("min-quorum", "Fewest voters dead-server cleanup may leave.", func(c *autopilotConfig, v string) error {
		n, err := strconv.ParseUint(v, 10, 32)
		c.MinQuorum = uint(n)
		return err
	})
	add("last-contact-threshold", "Longest a healthy server may go without hearing from the leader (duration).", durationSetter(func(c *autopilotConfig) *string { return &c.LastContactThreshold }))
	add("server-stabilization-time", "How long a new server must be healthy before it gets a vote (duration).", durationSetter(func(c *autopilotConfig) *string { return &c.ServerStabilizationTime }))
	add("dead-server-grace-period", "How long a server must be failed before cleanup removes it (duration; roster's own).", durationSetter(func(c *autopilotConfig) *string { return &c.DeadServerGracePeriod }))
	add("redundancy-zone-tag", "Node meta key of redundancy zones (stored; roster does not use zones).", func(c *autopilotConfig, v string) error { c.RedundancyZoneTag = v; return nil })
	add("upgrade-version-tag", "Node meta key of upgrade versions (stored; roster does not migrate).", func(c *autopilotConfig, v string) error { c.UpgradeVersionTag = v; return nil })
	add("disable-upgrade-migration", "true or false (stored; roster does not migrate).", func(c *autopilotConfig, v string) (err error) {
		c.DisableUpgradeMigration, err = strconv.ParseBool(v)
		return err
	})
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	var c autopilotConfig
	if err := client().do("GET", "/v1/operator/autopilot/configuration", nil, &c); err != nil {
		return fail(stderr, "querying Autopilot configuration: %v", err)
	}
	var bad error
	fs.Visit(func(f *flag.Flag) {
		if apply := set[f.Name]; apply != nil && bad == nil {
			if err := apply(&c, f.Value.String()); err != nil {
				bad = fmt.Errorf("-%s: %q: %v", f.Name, f.Value.String(), err)
			}
		}
	})
	if bad != nil {
		fmt.Fprintln(stderr, bad)
		return 1
	}
	return putAutopilotCAS(client(), c, stdout, stderr)
}

func durationSetter(field func(*autopilotConfig) *string) func(*autopilotConfig, string) error {
	return func(c *autopilotConfig, v string) error {
		d, err := time.ParseDuration(v)
		if err == nil && d < 0 {
			err = fmt.Errorf("negative")
		}
		*field(c) = d.String()
		return err
	}
}

func putAutopilotCAS(client *apiClient, c autopilotConfig, stdout, stderr io.Writer) int {
	q := url.Values{"cas": {strconv.FormatUint(c.ModifyIndex, 10)}}
	body, _ := json.Marshal(c) // plain fields: cannot fail
	code, out, err := client.rawDo("PUT", "/v1/operator/autopilot/configuration", q, body)
	if err == nil && code/100 != 2 {
		err = statusErr(code, out)
	}
	if err != nil {
		return fail(stderr, "setting Autopilot configuration: %v", err)
	}
	if !bytes.Contains(out, []byte("true")) {
		fmt.Fprintln(stdout, "Configuration could not be atomically updated, please try again")
		return 1
	}
	fmt.Fprintln(stdout, "Configuration updated!")
	return 0
}
