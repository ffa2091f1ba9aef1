package agent

import (
	"fmt"
	"net"
	"runtime"
	"strconv"

	"roster/httpapi"
	"roster/swim"
)

// Gossip protocol versions reported to Consul tooling. roster speaks its
// own gossip protocol; these numbers are the ones the consul CLI expects
// to see from a compatible agent.
const (
	protocolMin, protocolMax, protocolCur = 1, 5, 2
	delegateMin, delegateMax, delegateCur = 2, 5, 4
	serfStatusAlive                       = 1
)

// Self implements httpapi.Agent.
func (a *Agent) Self() httpapi.Self {
	return httpapi.Self{
		Config: httpapi.SelfConfig{
			Datacenter:        a.cfg.Datacenter,
			PrimaryDatacenter: a.cfg.Datacenter,
			NodeName:          a.cfg.NodeName,
			NodeID:            a.nodeID(),
			Revision:          a.cfg.Revision,
			Server:            a.cfg.Server,
			Version:           a.cfg.Version,
			BuildDate:         a.cfg.BuildDate,
		},
		Member: a.localMember(),
		Stats:  a.stats(),
		Meta:   a.nodeMeta(),
	}
}

// Members implements httpapi.Agent: the members of the LAN pool, or of
// the WAN pool (servers only), as gossip knows them.
func (a *Agent) Members(wan bool) []httpapi.Member {
	pool := a.lanNode()
	if wan {
		pool = a.wanNode()
	}
	if pool == nil {
		if wan {
			return nil
		}
		return []httpapi.Member{a.localMember()}
	}
	ms := pool.Members()
	out := make([]httpapi.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, toHTTPMember(m))
	}
	return out
}

func (a *Agent) nodeID() string {
	a.idMu.RLock()
	defer a.idMu.RUnlock()
	return a.cfg.NodeID
}

func (a *Agent) advertised() string {
	a.idMu.RLock()
	defer a.idMu.RUnlock()
	return a.advertise
}

func (a *Agent) localMember() httpapi.Member {
	if lan := a.lanNode(); lan != nil {
		return toHTTPMember(lan.LocalMember())
	}
	return httpapi.Member{
		Name:        a.cfg.NodeName,
		Addr:        a.advertised(),
		Port:        uint16(a.cfg.Ports.SerfLAN),
		Tags:        a.tags(),
		Status:      serfStatusAlive,
		ProtocolMin: protocolMin, ProtocolMax: protocolMax, ProtocolCur: protocolCur,
		DelegateMin: delegateMin, DelegateMax: delegateMax, DelegateCur: delegateCur,
	}
}

// tags are the gossip tags Consul tooling reads (consul members prints
// role, build, vsn and dc from them).
func (a *Agent) tags() map[string]string {
	t := map[string]string{
		"role": "node", "dc": a.cfg.Datacenter, "segment": "", "id": a.nodeID(),
		"vsn": "2", "vsn_min": "2", "vsn_max": "3", "acls": "0",
		"build": fmt.Sprintf("%s:%s", a.cfg.Version, a.cfg.Revision),
	}
	if a.cfg.Server {
		t["role"] = "consul"
		t["port"] = strconv.Itoa(a.cfg.Ports.Server)
		t["raft_vsn"] = "3"
		t["wan_join_port"] = strconv.Itoa(a.cfg.Ports.SerfWAN)
		if a.cfg.BootstrapExpect > 0 {
			t["expect"] = strconv.Itoa(a.cfg.BootstrapExpect)
		}
		if a.cfg.Bootstrap || a.cfg.Dev {
			t["bootstrap"] = "1"
		}
	}
	return t
}

func (a *Agent) stats() map[string]map[string]string {
	out := a.baseStats()
	if lan := a.lanNode(); lan != nil {
		out["serf_lan"] = serfStats(lan, a.cfg.Encrypt != "")
	}
	if wan := a.wanNode(); wan != nil {
		out["serf_wan"] = serfStats(wan, a.cfg.Encrypt != "")
	}
	if a.srv != nil && a.srv.raft != nil {
		out["raft"] = a.srv.raft.Stats()
		out["consul"]["leader"] = strconv.FormatBool(a.isLeader())
		addr, _ := a.srv.raft.Leader()
		out["consul"]["leader_addr"] = addr
		out["consul"]["bootstrap"] = strconv.FormatBool(a.cfg.Bootstrap || a.cfg.Dev)
		out["consul"]["known_datacenters"] = strconv.Itoa(len(a.datacenters()))
	} else {
		out["consul"]["known_servers"] = strconv.Itoa(len(a.router.Servers(a.cfg.Datacenter)))
	}
	return out
}

// serfStats renders a gossip pool's state under Consul's serf stat keys.
func serfStats(n *swim.Node, encrypted bool) map[string]string {
	st := n.Stats()
	failed, left := 0, 0
	for _, m := range n.Members() {
		switch m.State {
		case swim.StateDead:
			failed++
		case swim.StateLeft:
			left++
		}
	}
	return map[string]string{
		"members": strconv.Itoa(st.Members), "failed": strconv.Itoa(failed), "left": strconv.Itoa(left),
		"health_score": strconv.Itoa(st.HealthScore), "encrypted": strconv.FormatBool(encrypted),
		"member_time": "1", "event_time": "1", "query_time": "1",
		"intent_queue": "0", "event_queue": "0", "query_queue": "0", "coordinate_resets": "0",
	}
}

func (a *Agent) baseStats() map[string]map[string]string {
	return map[string]map[string]string{
		"agent": {"check_monitors": "0", "check_ttls": "0", "checks": "0", "services": "0"},
		"build": {"version": a.cfg.Version, "revision": a.cfg.Revision, "prerelease": "", "version_metadata": ""},
		"consul": {
			"server":     strconv.FormatBool(a.cfg.Server),
			"datacenter": a.cfg.Datacenter,
		},
		"runtime": {
			"arch": runtime.GOARCH, "os": runtime.GOOS, "version": runtime.Version(),
			"goroutines": strconv.Itoa(runtime.NumGoroutine()),
			"cpu_count":  strconv.Itoa(runtime.NumCPU()),
			"max_procs":  strconv.Itoa(runtime.GOMAXPROCS(0)),
		},
	}
}

// advertiseAddr picks the address announced to peers: -advertise if set,
// else -bind unless it is the wildcard, else the machine's only private
// IPv4 address, as Consul does.
func advertiseAddr(advertise, bind string) (string, error) {
	if advertise != "" {
		return advertise, nil
	}
	if ip := net.ParseIP(bind); ip != nil && !ip.IsUnspecified() {
		return bind, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("-bind: cannot list interface addresses to pick one to advertise: %w", err)
	}
	var private []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsPrivate() {
			private = append(private, n.IP.String())
		}
	}
	switch len(private) {
	case 0:
		return "", fmt.Errorf("-bind: %s advertises the machine's private IPv4 address, but there is none; set -bind or -advertise to the address peers should use", bind)
	case 1:
		return private[0], nil
	default:
		return "", fmt.Errorf("-bind: %s is ambiguous: this machine has several private IPv4 addresses %v; set -bind or -advertise to one of them", bind, private)
	}
}
