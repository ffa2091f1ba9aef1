package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"roster/cmd/roster/internal/agent"
)

// `roster dev-cluster` runs a whole cluster of servers in one process for
// demos and experiments: by default three servers on the loopback aliases
// 127.0.0.2, 127.0.0.3 and 127.0.0.4 (Linux routes all of 127.0.0.0/8 to
// lo without any setup), each on Consul's default ports, so every tool
// works against any of them:
//
//	roster dev-cluster
//	CONSUL_HTTP_ADDR=127.0.0.3:8500 roster members
//	curl 127.0.0.4:8500/v1/status/leader
//	dig @127.0.0.2 -p 8600 consul.service.consul
//
// With -one-ip every server shares one address and server i's ports are
// offset by 10*i instead. A port given as 0 is the kernel's pick on each
// server (the HTTP addresses are printed). Ctrl-C makes every server leave
// and stop.

type devClusterOpts struct {
	servers  int
	firstIP  netip.Addr
	oneIP    bool
	dataDir  string
	logLevel string
	ports    agent.Ports
}

func parseDevClusterFlags(args []string, stderr io.Writer) (devClusterOpts, error) {
	fs := flag.NewFlagSet("dev-cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	servers := fs.Int("servers", 3, "Number of servers (each runs with -bootstrap-expect of this number).")
	ip := fs.String("ip", "127.0.0.2", "Address of the first server; the next ones count up from it.")
	oneIP := fs.Bool("one-ip", false, "Put every server on -ip and offset server i's ports by 10*i.")
	dataDir := fs.String("data-dir", "", "Directory for the servers' data dirs (default: a temporary one, removed at exit).")
	logLevel := fs.String("log-level", "info", "trace, debug, info, warn or error.")
	o := devClusterOpts{}
	fs.IntVar(&o.ports.HTTP, "http-port", agent.DefaultHTTPPort, "HTTP port of the first server.")
	fs.IntVar(&o.ports.DNS, "dns-port", agent.DefaultDNSPort, "DNS port of the first server (-1 disables).")
	fs.IntVar(&o.ports.Server, "server-port", agent.DefaultServerPort, "RPC port of the first server.")
	fs.IntVar(&o.ports.SerfLAN, "serf-lan-port", agent.DefaultSerfLANPort, "LAN gossip port of the first server.")
	fs.IntVar(&o.ports.SerfWAN, "serf-wan-port", agent.DefaultSerfWANPort, "WAN gossip port of the first server.")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: roster dev-cluster [options]\n\nRuns several servers in one process on loopback, for demos. Options:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	addr, err := netip.ParseAddr(*ip)
	if err != nil || !addr.Is4() {
		return o, fmt.Errorf("-ip: %q is not an IPv4 address", *ip)
	}
	if *servers < 1 || *servers > 9 {
		return o, fmt.Errorf("-servers: %d is out of range (1-9)", *servers)
	}
	o.servers, o.firstIP, o.oneIP, o.dataDir, o.logLevel = *servers, addr, *oneIP, *dataDir, *logLevel
	return o, nil
}

// serverConfig is server i's configuration.
func (o devClusterOpts) serverConfig(i int) agent.Config {
	cfg := agent.DefaultConfig()
	cfg.NodeName = fmt.Sprintf("roster-s%d", i+1)
	cfg.Server, cfg.BootstrapExpect, cfg.UI = true, o.servers, true
	cfg.DataDir = filepath.Join(o.dataDir, cfg.NodeName)
	ip, offset := o.firstIP, 0
	if o.oneIP {
		offset = 10 * i
	} else {
		for range i {
			ip = ip.Next()
		}
	}
	cfg.BindAddr, cfg.ClientAddrs = ip.String(), []string{ip.String()}
	// Port 0 stays 0 on every server: each binds the kernel's pick.
	off := func(port int) int {
		if port <= 0 {
			return port
		}
		return port + offset
	}
	cfg.Ports = agent.Ports{HTTP: off(o.ports.HTTP), DNS: off(o.ports.DNS), Server: off(o.ports.Server),
		SerfLAN: off(o.ports.SerfLAN), SerfWAN: off(o.ports.SerfWAN)}
	cfg.LogLevel = o.logLevel
	cfg.Version, cfg.Revision, cfg.BuildDate = version, commit, buildDate
	return cfg
}

func runDevCluster(args []string, stdout, stderr io.Writer) int {
	o, err := parseDevClusterFlags(args, stderr)
	if err != nil {
		if code := exitUsage(err); code == 0 || errors.Is(err, flag.ErrHelp) {
			return code
		}
		fmt.Fprintf(stderr, "roster dev-cluster: %v\n", err)
		return 1
	}
	if o.dataDir == "" {
		dir, err := os.MkdirTemp("", "roster-dev-cluster-")
		if err != nil {
			fmt.Fprintf(stderr, "roster dev-cluster: %v\n", err)
			return 1
		}
		defer os.RemoveAll(dir)
		o.dataDir = dir
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	agents, err := startDevCluster(o, stderr)
	defer stopDevCluster(agents)
	if err != nil {
		fmt.Fprintf(stderr, "roster dev-cluster: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "==> %d servers started (data in %s); their HTTP APIs:\n", len(agents), o.dataDir)
	for i, a := range agents {
		fmt.Fprintf(stdout, "    %s  http://%s\n", o.serverConfig(i).NodeName, a.HTTPAddrs()[0])
	}
	fmt.Fprintf(stdout, "==> try: CONSUL_HTTP_ADDR=%s roster members; Ctrl-C stops the cluster\n", agents[0].HTTPAddrs()[0])
	<-sigs
	fmt.Fprintln(stdout, "==> leaving and stopping every server")
	return 0
}

func startDevCluster(o devClusterOpts, stderr io.Writer) ([]*agent.Agent, error) {
	var agents []*agent.Agent
	var firstLAN string
	for i := range o.servers {
		cfg := o.serverConfig(i)
		logger, err := newLogger(stderr, cfg.LogLevel, false)
		if err != nil {
			return agents, err
		}
		cfg.Logger = logger.With("agent", cfg.NodeName)
		if i > 0 {
			cfg.RetryJoin = []string{firstLAN}
			cfg.RetryJoinInterval = time.Second
		}
		a, err := agent.New(cfg)
		if err != nil {
			return agents, fmt.Errorf("%s: %w", cfg.NodeName, err)
		}
		if err := a.Start(context.Background()); err != nil {
			return agents, fmt.Errorf("%s: %w (on Linux every 127.x.y.z address is local; elsewhere use -one-ip)", cfg.NodeName, err)
		}
		agents = append(agents, a)
		if i == 0 { // the port it bound: with -serf-lan-port 0, the kernel's pick
			firstLAN = net.JoinHostPort(cfg.BindAddr, fmt.Sprint(a.Ports().SerfLAN))
		}
	}
	return agents, nil
}

func stopDevCluster(agents []*agent.Agent) {
	for _, a := range agents {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		a.Leave(ctx)
		cancel()
	}
}
