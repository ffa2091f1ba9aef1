package local

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"roster/catalog"
)

// Maintenance mode is a critical check the agent adds to the node or to a
// service (Consul API notes §4.6): critical keeps the node or service out
// of DNS and ?passing results while the check exists.
const (
	NodeMaintCheckID          = "_node_maintenance"
	ServiceMaintCheckIDPrefix = "_service_maintenance:"

	nodeMaintName        = "Node Maintenance Mode"
	serviceMaintName     = "Service Maintenance Mode"
	defaultNodeMaintNote = "Maintenance mode is enabled for this node, but no reason was provided. This is a default message."
	defaultSvcMaintNote  = "Maintenance mode is enabled for this service, but no reason was provided. This is a default message."
)

func serviceMaintID(serviceID string) string { return ServiceMaintCheckIDPrefix + serviceID }

// IsMaintenanceCheck reports whether a check ID is a maintenance check.
func IsMaintenanceCheck(checkID string) bool {
	return checkID == NodeMaintCheckID || strings.HasPrefix(checkID, ServiceMaintCheckIDPrefix)
}

// EnableNodeMaintenance puts the node into maintenance mode (PUT
// /v1/agent/maintenance?enable=true&reason=...). Enabling twice keeps the
// first reason, as Consul does.
func (s *State) EnableNodeMaintenance(reason string) error {
	if reason == "" {
		reason = defaultNodeMaintNote
	}
	return s.addMaintCheck(catalog.HealthCheck{
		Node: s.cfg.NodeName, CheckID: NodeMaintCheckID, Name: nodeMaintName, Notes: reason,
		Status: catalog.HealthCritical, Type: TypeMaintenance,
	})
}

// DisableNodeMaintenance leaves node maintenance mode; a no-op when off.
func (s *State) DisableNodeMaintenance() error {
	return s.removeMaintCheck(NodeMaintCheckID)
}

// EnableServiceMaintenance puts one service into maintenance mode (PUT
// /v1/agent/service/maintenance/<id>?enable=true&reason=...).
func (s *State) EnableServiceMaintenance(serviceID, reason string) error {
	svc, _, ok := s.Service(serviceID)
	if !ok {
		return unknownService(serviceID)
	}
	if reason == "" {
		reason = defaultSvcMaintNote
	}
	return s.addMaintCheck(catalog.HealthCheck{
		Node: s.cfg.NodeName, CheckID: serviceMaintID(serviceID), Name: serviceMaintName, Notes: reason,
		Status: catalog.HealthCritical, ServiceID: serviceID, ServiceName: svc.Service,
		ServiceTags: svc.Tags, Type: TypeMaintenance,
	})
}

// DisableServiceMaintenance ends a service's maintenance mode.
func (s *State) DisableServiceMaintenance(serviceID string) error {
	if _, _, ok := s.Service(serviceID); !ok {
		return unknownService(serviceID)
	}
	return s.removeMaintCheck(serviceMaintID(serviceID))
}

func (s *State) addMaintCheck(hc catalog.HealthCheck) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.checks[hc.CheckID]; ok && !c.deleted {
		return nil
	}
	c := &checkEntry{check: hc, criticalSince: s.cfg.Clock()}
	if err := s.persistCheck(c); err != nil {
		return err
	}
	c.rev = s.touchLocked()
	s.checks[hc.CheckID] = c
	return nil
}

func (s *State) removeMaintCheck(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.checks[id]; !ok || c.deleted {
		return nil
	}
	if err := s.unpersistCheck(id); err != nil {
		return err
	}
	s.tombstoneCheckLocked(id, s.touchLocked())
	return nil
}

// AggregatedStatus folds check statuses as Consul's AgentServiceChecksInfo
// does (§4.8): maintenance > critical > warning > passing; no checks is
// passing.
func AggregatedStatus(checks []catalog.HealthCheck) string {
	rank := map[string]int{catalog.HealthPassing: 0, catalog.HealthWarning: 1, catalog.HealthCritical: 2, catalog.HealthMaintenance: 3}
	out := catalog.HealthPassing
	for _, c := range checks {
		st := c.Status
		if IsMaintenanceCheck(c.CheckID) {
			st = catalog.HealthMaintenance
		}
		if rank[st] > rank[out] {
			out = st
		}
	}
	return out
}

// ContentHash is a digest of a service's content (not its raft indexes),
// the ContentHash of /v1/agent/service/<id> and the ?hash= of its blocking
// form: it changes exactly when the registration does.
func ContentHash(svc catalog.NodeService) string {
	svc.CreateIndex, svc.ModifyIndex = 0, 0
	b, _ := json.Marshal(svc) // a NodeService always marshals
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
