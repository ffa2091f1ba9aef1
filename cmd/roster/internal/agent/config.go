package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"time"

	"roster/raft"
	"roster/swim"
)

// Default ports, as Consul's.
const (
	DefaultHTTPPort    = 8500
	DefaultDNSPort     = 8600
	DefaultServerPort  = 8300
	DefaultSerfLANPort = 8301
	DefaultSerfWANPort = 8302
)

// Ports are the agent's listening ports. -1 disables a listener where
// Consul allows it (HTTP, DNS).
type Ports struct {
	HTTP    int
	DNS     int
	Server  int
	SerfLAN int
	SerfWAN int
}

// Config is everything an agent needs. cmd/roster fills it from flags and
// config files; nothing in here reads the environment.
type Config struct {
	NodeName   string // default: the host name
	NodeID     string // default: random, persisted in DataDir
	Datacenter string // default "dc1"
	Server     bool
	Bootstrap  bool // self-elect as the only server (legacy)
	// BootstrapExpect is the number of servers to wait for before the first
	// election. Servers only.
	BootstrapExpect int
	Dev             bool // in-memory single server on loopback, pretty JSON
	UI              bool

	BindAddr      string   // cluster (gossip, RPC) address; default 0.0.0.0
	ClientAddrs   []string // HTTP and DNS bind addresses; default 127.0.0.1
	AdvertiseAddr string   // address announced to peers; default: derived from BindAddr

	StartJoin    []string // -join
	RetryJoin    []string // -retry-join
	StartJoinWAN []string // -join-wan
	DataDir      string
	Encrypt      string // base64 gossip key
	Ports        Ports
	Meta         map[string]string // node meta

	LogLevel string // trace, debug, info, warn, error
	LogJSON  bool

	Version   string
	Revision  string
	BuildDate string

	// Logger receives the agent's logs; cmd/roster builds it from LogLevel
	// and LogJSON. Default: slog.Default().
	Logger *slog.Logger

	// RetryJoinInterval is the wait between -retry-join attempts.
	// Default 30s (Consul's retry_interval).
	RetryJoinInterval time.Duration
	// ReconcileInterval is how often the leader reconciles the whole LAN
	// pool into the catalog, besides reacting to each member change.
	// Default 60s (Consul's reconcile_interval).
	ReconcileInterval time.Duration
	// ServerStabilizationTime is how long a new server stays a nonvoter
	// before the leader gives it a vote. Default 10s (autopilot's
	// server_stabilization_time).
	ServerStabilizationTime time.Duration
	// Raft tunes the Raft node (timing, batch sizes); ID and Logger are
	// filled in by the agent. Zero fields take raft's defaults.
	Raft raft.Config
	// GossipTuning, if set, adjusts a gossip pool's configuration after
	// the LAN or WAN defaults are applied (tests shorten timers with it).
	GossipTuning func(cfg *swim.Config, wan bool)
	// ServerRebalanceInterval is how often a client agent moves its RPCs
	// to a random server (plus up to half as much jitter). Default 2m.
	ServerRebalanceInterval time.Duration
	// TombstoneTTL is how long a deleted KV key's tombstone is kept before
	// the leader reaps it. Default 15m (Consul's tombstone_ttl).
	TombstoneTTL time.Duration
	// RPCHoldTimeout is how long a request waits and retries while there
	// is no leader before failing with "No cluster leader". Default 7s
	// (Consul's rpc_hold_timeout).
	RPCHoldTimeout time.Duration
	// Faults, if set, cuts network links as its plan says (partition
	// tests; see NetFaults).
	Faults *NetFaults
	// Local configures the agent's own services and checks (local_wiring.go).
	Local LocalConfig
	// Autopilot tunes the leader's dead-server cleanup (autopilot.go).
	Autopilot AutopilotConfig
}

// Defaults of the timing fields above.
const (
	DefaultRetryJoinInterval       = 30 * time.Second
	DefaultReconcileInterval       = 60 * time.Second
	DefaultServerStabilizationTime = 10 * time.Second
	DefaultRPCHoldTimeout          = 7 * time.Second
	DefaultTombstoneTTL            = 15 * time.Minute
	DefaultServerRebalanceInterval = 2 * time.Minute
	// DefaultRaftSnapshotThreshold is Consul's raft_snapshot_threshold:
	// a server snapshots its catalog (and compacts its log) once this many
	// entries were applied since the last snapshot. Raft's own default,
	// 8192, is hashicorp/raft's; Consul doubles it, and at a few thousand
	// writes a second the snapshots, their fsyncs and the log compaction
	// after them were about 6% of the servers' CPU at 8192.
	DefaultRaftSnapshotThreshold = 16384
)

// withDefaults fills the zero timing fields.
func (c Config) withDefaults() Config {
	if c.RetryJoinInterval == 0 {
		c.RetryJoinInterval = DefaultRetryJoinInterval
	}
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = DefaultReconcileInterval
	}
	if c.ServerStabilizationTime == 0 {
		c.ServerStabilizationTime = DefaultServerStabilizationTime
	}
	if c.ServerRebalanceInterval == 0 {
		c.ServerRebalanceInterval = DefaultServerRebalanceInterval
	}
	if c.TombstoneTTL == 0 {
		c.TombstoneTTL = DefaultTombstoneTTL
	}
	if c.RPCHoldTimeout == 0 {
		c.RPCHoldTimeout = DefaultRPCHoldTimeout
	}
	if c.Autopilot.DeadServerGrace == 0 {
		c.Autopilot.DeadServerGrace = DefaultDeadServerGrace
	}
	if c.Raft.SnapshotThreshold == 0 {
		c.Raft.SnapshotThreshold = DefaultRaftSnapshotThreshold
	}
	return c
}

// DefaultConfig returns Consul's defaults for a client agent.
func DefaultConfig() Config {
	return Config{
		Datacenter:  "dc1",
		BindAddr:    "0.0.0.0",
		ClientAddrs: []string{"127.0.0.1"},
		Ports: Ports{
			HTTP: DefaultHTTPPort, DNS: DefaultDNSPort, Server: DefaultServerPort,
			SerfLAN: DefaultSerfLANPort, SerfWAN: DefaultSerfWANPort,
		},
		LogLevel: "info",
	}
}

// ApplyDev switches c to -dev mode as Consul does: a server that binds
// loopback only, keeps data in memory and pretty-prints JSON.
func (c *Config) ApplyDev() {
	c.Dev = true
	c.Server = true
	c.UI = true
	c.BindAddr = "127.0.0.1"
	c.ClientAddrs = []string{"127.0.0.1"}
}

var datacenterRE = regexp.MustCompile(`^[a-z0-9_-]+$`)

// Validate reports the first problem, naming the flag that fixes it.
func (c *Config) Validate() error {
	if err := c.validateRoles(); err != nil {
		return err
	}
	if c.NodeName == "" {
		return errors.New("-node: a node name is required (it defaults to the host name)")
	}
	if !datacenterRE.MatchString(c.Datacenter) {
		return fmt.Errorf("-datacenter: %q is invalid: use lower-case letters, digits, '-' and '_'", c.Datacenter)
	}
	if err := c.validateAddrs(); err != nil {
		return err
	}
	if err := ValidateNodeMeta(c.Meta); err != nil {
		return err
	}
	if c.Encrypt != "" {
		if _, err := swim.ParseKey(c.Encrypt); err != nil {
			return fmt.Errorf("-encrypt: %v", err)
		}
	}
	if c.RetryJoinInterval < 0 || c.ReconcileInterval < 0 || c.ServerStabilizationTime < 0 || c.RPCHoldTimeout < 0 || c.TombstoneTTL < 0 || c.ServerRebalanceInterval < 0 {
		return errors.New("agent: Config.RetryJoinInterval, ReconcileInterval, ServerStabilizationTime, RPCHoldTimeout, TombstoneTTL and ServerRebalanceInterval must not be negative (0 = default)")
	}
	if c.Autopilot.DeadServerGrace < 0 || c.Autopilot.MinQuorum < 0 || c.Autopilot.LastContactThreshold < 0 || c.Autopilot.ServerHealthInterval < 0 {
		return errors.New("autopilot: dead_server_grace_period, min_quorum, last_contact_threshold and ServerHealthInterval must not be negative (0 = default)")
	}
	return c.validatePorts()
}

func (c *Config) validateRoles() error {
	switch {
	case c.BootstrapExpect < 0:
		return fmt.Errorf("-bootstrap-expect: %d is negative", c.BootstrapExpect)
	case c.BootstrapExpect > 0 && !c.Server:
		return errors.New("-bootstrap-expect requires -server: only servers take part in the Raft bootstrap")
	case c.Bootstrap && !c.Server:
		return errors.New("-bootstrap requires -server")
	case c.Bootstrap && c.BootstrapExpect > 0:
		return errors.New("-bootstrap and -bootstrap-expect cannot be used together: pick one")
	case c.Dev && c.BootstrapExpect > 0:
		return errors.New("-bootstrap-expect cannot be used with -dev: a dev agent is always a single server")
	case !c.Dev && c.DataDir == "":
		return errors.New("-data-dir is required unless -dev is given: the agent keeps its state there")
	}
	return nil
}

func (c *Config) validateAddrs() error {
	if net.ParseIP(c.BindAddr) == nil {
		return fmt.Errorf("-bind: %q is not an IP address", c.BindAddr)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		return fmt.Errorf("-advertise: %q is not an IP address", c.AdvertiseAddr)
	}
	if len(c.ClientAddrs) == 0 {
		return errors.New("-client: at least one address is required")
	}
	for _, a := range c.ClientAddrs {
		if net.ParseIP(a) == nil {
			return fmt.Errorf("-client: %q is not an IP address", a)
		}
	}
	return nil
}

func (c *Config) validatePorts() error {
	checks := []struct {
		flag    string
		port    int
		canSkip bool
	}{
		{"-http-port", c.Ports.HTTP, true},
		{"-dns-port", c.Ports.DNS, true},
		{"-server-port", c.Ports.Server, false},
		{"-serf-lan-port", c.Ports.SerfLAN, false},
		{"-serf-wan-port", c.Ports.SerfWAN, true},
	}
	for _, p := range checks {
		if p.port == -1 && p.canSkip {
			continue
		}
		if p.port < 0 || p.port > 65535 {
			return fmt.Errorf("%s: %d is not a port (1-65535, 0 for any free one%s)", p.flag, p.port, map[bool]string{true: ", or -1 to disable"}[p.canSkip])
		}
	}
	return nil
}
