package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"roster/cmd/roster/internal/agent"
)

// shutdownTimeout bounds a graceful stop so Ctrl-C always returns promptly.
const shutdownTimeout = 1500 * time.Millisecond

// agentFlags registers flags whose values are applied to an agent.Config
// only if given on the command line, so flags override config files
// without clobbering them with flag defaults.
type agentFlags struct {
	fs    *flag.FlagSet
	apply map[string]func(*agent.Config)
}

func (af *agentFlags) str(name, usage string, set func(*agent.Config, string)) {
	v := af.fs.String(name, "", usage)
	af.apply[name] = func(c *agent.Config) { set(c, *v) }
}

func (af *agentFlags) integer(name string, def int, usage string, set func(*agent.Config, int)) {
	v := af.fs.Int(name, def, usage)
	af.apply[name] = func(c *agent.Config) { set(c, *v) }
}

func (af *agentFlags) duration(name string, def time.Duration, usage string, set func(*agent.Config, time.Duration)) {
	v := af.fs.Duration(name, def, usage)
	af.apply[name] = func(c *agent.Config) { set(c, *v) }
}

func (af *agentFlags) boolean(name, usage string, set func(*agent.Config, bool)) {
	v := af.fs.Bool(name, false, usage)
	af.apply[name] = func(c *agent.Config) { set(c, *v) }
}

func (af *agentFlags) list(name, usage string, set func(*agent.Config, []string)) {
	var v stringList
	af.fs.Var(&v, name, usage)
	af.apply[name] = func(c *agent.Config) { set(c, v) }
}

// setNodeMeta adds -node-meta pairs to the node meta from config files
// (a flag wins over a file for the same key). Consul splits each pair at
// its first ':'; Config.Validate checks keys and values.
func setNodeMeta(c *agent.Config, pairs []string) {
	if c.Meta == nil {
		c.Meta = make(map[string]string, len(pairs))
	}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, ":")
		c.Meta[k] = v
	}
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func newAgentFlags(stderr io.Writer) (*agentFlags, *stringList, *stringList) {
	af := &agentFlags{fs: flag.NewFlagSet("agent", flag.ContinueOnError), apply: map[string]func(*agent.Config){}}
	af.fs.SetOutput(stderr)
	af.boolean("server", "Run as a server: hold the catalog and take part in Raft.", func(c *agent.Config, v bool) { c.Server = v })
	af.integer("bootstrap-expect", 0, "Servers to wait for before bootstrapping Raft (requires -server).", func(c *agent.Config, v int) { c.BootstrapExpect = v })
	af.boolean("bootstrap", "Elect this server on its own (legacy single-server bootstrap).", func(c *agent.Config, v bool) { c.Bootstrap = v })
	af.boolean("ui", "Serve the web UI on the HTTP port.", func(c *agent.Config, v bool) { c.UI = v })
	af.str("bind", "Cluster address for gossip and RPC (default 0.0.0.0: advertise the private IPv4).", func(c *agent.Config, v string) { c.BindAddr = v })
	af.str("client", "Space-separated addresses for HTTP and DNS (default 127.0.0.1).", func(c *agent.Config, v string) { c.ClientAddrs = strings.Fields(v) })
	af.str("advertise", "Address to announce to other agents.", func(c *agent.Config, v string) { c.AdvertiseAddr = v })
	af.str("datacenter", "Datacenter of this agent (default dc1).", func(c *agent.Config, v string) { c.Datacenter = v })
	af.str("node", "Node name (default: the host name).", func(c *agent.Config, v string) { c.NodeName = v })
	af.str("node-id", "Node UUID (default: random, persisted in -data-dir).", func(c *agent.Config, v string) { c.NodeID = v })
	af.list("node-meta", "Node meta pair key:value for this node (repeatable; a pair without ':' has an empty value).", setNodeMeta)
	af.list("join", "Address of an agent to join at start (repeatable).", func(c *agent.Config, v []string) { c.StartJoin = append(c.StartJoin, v...) })
	af.list("retry-join", "Like -join, retrying until it succeeds (repeatable).", func(c *agent.Config, v []string) { c.RetryJoin = append(c.RetryJoin, v...) })
	af.duration("retry-interval", agent.DefaultRetryJoinInterval, "Time between -retry-join attempts.", func(c *agent.Config, v time.Duration) { c.RetryJoinInterval = v })
	af.list("join-wan", "Address of a server in another datacenter to join (repeatable).", func(c *agent.Config, v []string) { c.StartJoinWAN = append(c.StartJoinWAN, v...) })
	af.str("data-dir", "Directory for the agent's state (required unless -dev).", func(c *agent.Config, v string) { c.DataDir = v })
	af.str("encrypt", "Base64 gossip encryption key.", func(c *agent.Config, v string) { c.Encrypt = v })
	af.integer("http-port", agent.DefaultHTTPPort, "HTTP API port (-1 disables).", func(c *agent.Config, v int) { c.Ports.HTTP = v })
	af.integer("dns-port", agent.DefaultDNSPort, "DNS port (-1 disables).", func(c *agent.Config, v int) { c.Ports.DNS = v })
	af.integer("server-port", agent.DefaultServerPort, "Server RPC port.", func(c *agent.Config, v int) { c.Ports.Server = v })
	af.integer("serf-lan-port", agent.DefaultSerfLANPort, "LAN gossip port.", func(c *agent.Config, v int) { c.Ports.SerfLAN = v })
	af.integer("serf-wan-port", agent.DefaultSerfWANPort, "WAN gossip port (servers).", func(c *agent.Config, v int) { c.Ports.SerfWAN = v })
	af.str("log-level", "trace, debug, info, warn or error (default info).", func(c *agent.Config, v string) { c.LogLevel = v })
	af.boolean("log-json", "Write logs as JSON.", func(c *agent.Config, v bool) { c.LogJSON = v })
	af.boolean("enable-local-script-checks", "Allow script checks defined in config files or registered over HTTP.", func(c *agent.Config, v bool) { c.Local.EnableScriptChecks = c.Local.EnableScriptChecks || v })
	af.boolean("enable-script-checks", "Allow script checks (same as -enable-local-script-checks here: the HTTP API listens on loopback by default).", func(c *agent.Config, v bool) { c.Local.EnableScriptChecks = c.Local.EnableScriptChecks || v })
	files, dirs := new(stringList), new(stringList)
	af.fs.Var(files, "config-file", "JSON config file with Consul's keys (repeatable).")
	af.fs.Var(dirs, "config-dir", "Directory of *.json config files, loaded in lexical order (repeatable).")
	return af, files, dirs
}

// buildAgentConfig parses args into a Config: defaults, then -dev, then
// config files, then the flags given explicitly.
func buildAgentConfig(args []string, stderr io.Writer) (agent.Config, error) {
	af, files, dirs := newAgentFlags(stderr)
	dev := af.fs.Bool("dev", false, "Run a single in-memory server on loopback, for development.")
	af.fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: roster agent [options]\n\nRuns a roster agent. Options:")
		af.fs.PrintDefaults()
	}
	if err := af.fs.Parse(args); err != nil {
		return agent.Config{}, err
	}
	if af.fs.NArg() > 0 {
		return agent.Config{}, fmt.Errorf("unexpected argument %q: roster agent takes only flags", af.fs.Arg(0))
	}
	cfg := agent.DefaultConfig()
	if *dev {
		cfg.ApplyDev()
		cfg.LogLevel = "debug"
	}
	if err := loadConfigFiles(&cfg, *files, *dirs); err != nil {
		return cfg, err
	}
	af.fs.Visit(func(f *flag.Flag) {
		if apply, ok := af.apply[f.Name]; ok {
			apply(&cfg)
		}
	})
	if cfg.NodeName == "" {
		cfg.NodeName, _ = os.Hostname()
	}
	cfg.Version, cfg.Revision, cfg.BuildDate = version, commit, buildDate
	return cfg, nil
}

func runAgent(args []string, stdout, stderr io.Writer) int {
	cfg, err := buildAgentConfig(args, stderr)
	if err != nil {
		if code := exitUsage(err); code == 0 || err == flag.ErrHelp {
			return code
		}
		fmt.Fprintf(stderr, "roster agent: %v\n", err)
		return 1
	}
	logger, level, err := newReloadableLogger(stderr, cfg.LogLevel, cfg.LogJSON)
	if err != nil {
		fmt.Fprintf(stderr, "roster agent: %v\n", err)
		return 1
	}
	cfg.Logger = logger
	defer startPprof(logger)()
	cfg.Local.Reload = configReloader(args, level, logger)
	a, err := agent.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "roster agent: %v\n", err)
		return 1
	}
	defer reloadOnHangup(a, logger)()
	return serveUntilSignal(a, cfg, stderr)
}

// serveUntilSignal starts the agent and waits. SIGINT leaves the cluster
// gracefully, SIGTERM shuts down without leaving (Consul's defaults); a
// second signal exits at once.
func serveUntilSignal(a *agent.Agent, cfg agent.Config, stderr io.Writer) int {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := a.Start(context.Background()); err != nil {
		fmt.Fprintf(stderr, "roster agent: %v\n", err)
		return 1
	}
	cfg.Logger.Info("agent started", "node", cfg.NodeName, "datacenter", cfg.Datacenter, "server", cfg.Server, "version", cfg.Version)
	var sig os.Signal
	select {
	case sig = <-sigs:
	case <-a.LeaveRequested():
		cfg.Logger.Info("left the cluster on request; shutting down", "node", cfg.NodeName)
	case err := <-a.Errors():
		cfg.Logger.Error("a listener failed; shutting down", "error", err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if sig == syscall.SIGINT {
			done <- a.Leave(ctx)
		} else {
			done <- a.Shutdown(ctx)
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			cfg.Logger.Warn("shutdown was not clean", "error", err)
			return 1
		}
		return 0
	case <-sigs:
		fmt.Fprintln(stderr, "roster agent: second signal, exiting at once")
		return 1
	}
}

// newLogger builds the agent's slog.Logger.
func newLogger(w io.Writer, level string, asJSON bool) (*slog.Logger, error) {
	l, _, err := newReloadableLogger(w, level, asJSON)
	return l, err
}

// newReloadableLogger is newLogger plus the level variable behind it, so
// a reload (SIGHUP, PUT /v1/agent/reload) can change the level in place.
func newReloadableLogger(w io.Writer, level string, asJSON bool) (*slog.Logger, *slog.LevelVar, error) {
	lvl, err := parseLogLevel(level)
	if err != nil {
		return nil, nil, err
	}
	lv := new(slog.LevelVar)
	lv.Set(lvl)
	opts := &slog.HandlerOptions{Level: lv}
	if asJSON {
		return slog.New(slog.NewJSONHandler(w, opts)), lv, nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), lv, nil
}

// parseLogLevel maps Consul's level names (and "err") to slog levels.
func parseLogLevel(level string) (slog.Level, error) {
	levels := map[string]slog.Level{"trace": slog.LevelDebug - 4, "debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "err": slog.LevelError, "error": slog.LevelError}
	lvl, ok := levels[strings.ToLower(level)]
	if !ok {
		return 0, fmt.Errorf("-log-level: %q is not one of trace, debug, info, warn, error", level)
	}
	return lvl, nil
}
