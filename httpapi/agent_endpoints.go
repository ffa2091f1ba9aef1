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

func (s *Server) agentSelf(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	self := s.cfg.Agent.Self()
	if self.DebugConfig == nil {
		self.DebugConfig = map[string]any{}
	}
	if self.Meta == nil {
		self.Meta = map[string]string{}
	}
	return self, nil
}

func (s *Server) agentMembers(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	members := s.cfg.Agent.Members(wanParam(r))
	if members == nil {
		members = []Member{}
	}
	return members, nil
}

// wanParam is Consul's ?wan=1 (presence, unless 0 or false).
func wanParam(r *http.Request) bool {
	q := r.URL.Query()
	v := q.Get("wan")
	return has(q, "wan") && v != "0" && v != "false"
}

func (s *Server) membership() (Membership, error) {
	if s.cfg.Membership == nil {
		return nil, errorf(http.StatusInternalServerError, "this agent cannot change its membership (no gossip pool is configured)")
	}
	return s.cfg.Membership, nil
}

// membershipAction is a PUT handler that applies act to the gossip
// membership and answers with an empty body, or 500 with act's error. what
// names the path argument that must be present ("" for routes without one).
func (s *Server) membershipAction(what string, act func(m Membership, r *http.Request, arg string) error) handlerFunc {
	return func(_ http.ResponseWriter, r *http.Request, arg string) (any, error) {
		if what != "" {
			if err := mustArg(arg, what); err != nil {
				return nil, err
			}
		}
		m, err := s.membership()
		if err != nil {
			return nil, err
		}
		if err := act(m, r, arg); err != nil {
			return nil, errorf(http.StatusInternalServerError, "%v", err)
		}
		return nil, nil
	}
}

// agentJoin is PUT /v1/agent/join/<addr>[?wan].
func (s *Server) agentJoin() handlerFunc {
	return s.membershipAction("address", func(m Membership, r *http.Request, addr string) error {
		_, err := m.Join([]string{addr}, wanParam(r))
		return err
	})
}

// agentLeave is PUT /v1/agent/leave.
func (s *Server) agentLeave() handlerFunc {
	return s.membershipAction("", func(m Membership, _ *http.Request, _ string) error {
		return m.Leave()
	})
}

// agentForceLeave is PUT /v1/agent/force-leave/<node>[?prune][&wan].
func (s *Server) agentForceLeave() handlerFunc {
	return s.membershipAction("node", func(m Membership, r *http.Request, node string) error {
		_, prune := r.URL.Query()["prune"]
		return m.ForceLeave(node, prune, wanParam(r))
	})
}
