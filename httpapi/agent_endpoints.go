package httpapi

import (
	"net/http"
)

// Agent is what the HTTP API needs from the local agent. The agent package
// implements it; tests fake it.
type Agent interface {
	// Self describes the local agent for /v1/agent/self.
	Self() Self
	// Members lists the gossip members this agent knows (LAN pool, or the
	// WAN pool of servers when wan is true).
	Members(wan bool) []Member
}

// Self is the body of /v1/agent/self. Every top-level value must be a JSON
// object or null: the Go client decodes it as map[string]map[string]any.
type Self struct {
	Config      SelfConfig
	DebugConfig map[string]any
	Coord       *Coordinate
	Member      Member
	Stats       map[string]map[string]string
	Meta        map[string]string
}

// SelfConfig is the "Config" section. NodeName must be a string: the Go
// client's Agent.NodeName() type-asserts it.
type SelfConfig struct {
	Datacenter        string
	PrimaryDatacenter string
	NodeName          string
	NodeID            string
	Revision          string
	Server            bool
	Version           string
	BuildDate         string
}

// Coordinate is a Vivaldi network coordinate (Consul's shape).
type Coordinate struct {
	Vec        []float64
	Error      float64
	Adjustment float64
	Height     float64
}

// Member is one gossip pool member in Consul's AgentMember shape. Status
// uses serf's numbering: 1 alive, 2 leaving, 3 left, 4 failed.
type Member struct {
	Name        string
	Addr        string
	Port        uint16
	Tags        map[string]string
	Status      int
	ProtocolMin uint8
	ProtocolMax uint8
	ProtocolCur uint8
	DelegateMin uint8
	DelegateMax uint8
	DelegateCur uint8
}

func (s *Server) agentSelf(r *http.Request, _ string) (any, error) {
	self := s.cfg.Agent.Self()
	if self.DebugConfig == nil {
		self.DebugConfig = map[string]any{}
	}
	if self.Meta == nil {
		self.Meta = map[string]string{}
	}
	return self, nil
}

func (s *Server) agentMembers(r *http.Request, _ string) (any, error) {
	_, wan := r.URL.Query()["wan"]
	if v := r.URL.Query().Get("wan"); v == "0" || v == "false" {
		wan = false
	}
	members := s.cfg.Agent.Members(wan)
	if members == nil {
		members = []Member{}
	}
	return members, nil
}
