package compat

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// The agent-local endpoints through the official client: register a
// service with a TTL check, report it, read it back, watch anti-entropy
// carry it into the catalog, then maintenance mode.
func TestAgentLocal_ServiceRegisterTTLHealthAndMaintenance(t *testing.T) {
	c := devAgent(t, "local-node")
	ag := c.Agent()
	reg := &api.AgentServiceRegistration{
		ID: "web1", Name: "web", Port: 8080, Tags: []string{"v1"}, Meta: map[string]string{"team": "a"},
		Check: &api.AgentServiceCheck{TTL: "30s", Notes: "app heartbeat"},
	}
	if err := ag.ServiceRegister(reg); err != nil {
		t.Fatalf("ServiceRegister: %v", err)
	}
	svcs, err := ag.Services()
	if err != nil || svcs["web1"] == nil || svcs["web1"].Service != "web" || svcs["web1"].Port != 8080 ||
		svcs["web1"].Meta["team"] != "a" {
		t.Fatalf("Services = %+v, %v", svcs, err)
	}
	svc, _, err := ag.Service("web1", nil)
	if err != nil || svc.ContentHash == "" {
		t.Fatalf("Service = %+v, %v", svc, err)
	}
	status, infos, err := ag.AgentHealthServiceByName("web")
	if err != nil || status != api.HealthCritical || len(infos) != 1 {
		t.Fatalf("health before the first TTL report = %q %+v %v, want critical", status, infos, err)
	}
	if err := ag.UpdateTTL("service:web1", "all good", api.HealthPassing); err != nil {
		t.Fatalf("UpdateTTL: %v", err)
	}
	checks, err := ag.Checks()
	if err != nil || checks["service:web1"] == nil || checks["service:web1"].Status != api.HealthPassing ||
		checks["service:web1"].Output != "all good" {
		t.Fatalf("Checks = %+v, %v", checks, err)
	}
	status, _, err = ag.AgentHealthServiceByName("web")
	if err != nil || status != api.HealthPassing {
		t.Fatalf("health after pass = %q %v", status, err)
	}
	waitFor(t, 15*time.Second, "web passing in the catalog", func() error {
		entries, _, err := c.Health().Service("web", "", true, nil)
		if err != nil {
			return err
		}
		if len(entries) != 1 || entries[0].Node.Node != "local-node" {
			return fmt.Errorf("passing entries = %d", len(entries))
		}
		return nil
	})

	if err := ag.EnableServiceMaintenance("web1", "deploying"); err != nil {
		t.Fatalf("EnableServiceMaintenance: %v", err)
	}
	status, info, err := ag.AgentHealthServiceByID("web1")
	if err != nil || status != api.HealthCritical || info == nil || info.AggregatedStatus != api.HealthMaint {
		t.Fatalf("health in maintenance = %q %+v %v", status, info, err)
	}
	waitFor(t, 15*time.Second, "web out of ?passing during maintenance", func() error {
		entries, _, err := c.Health().Service("web", "", true, nil)
		if err != nil {
			return err
		}
		if len(entries) != 0 {
			return fmt.Errorf("still %d passing entries", len(entries))
		}
		return nil
	})
	if err := ag.DisableServiceMaintenance("web1"); err != nil {
		t.Fatalf("DisableServiceMaintenance: %v", err)
	}
	if err := ag.ServiceDeregister("web1"); err != nil {
		t.Fatalf("ServiceDeregister: %v", err)
	}
	status, _, err = ag.AgentHealthServiceByName("web")
	if err != nil || status != api.HealthCritical {
		t.Fatalf("health of a deregistered service = %q %v, want critical (404)", status, err)
	}
}

func TestAgentLocal_CheckRegisterUpdateDeregister(t *testing.T) {
	c := devAgent(t, "check-node")
	ag := c.Agent()
	if err := ag.CheckRegister(&api.AgentCheckRegistration{ID: "mem", Name: "memory",
		AgentServiceCheck: api.AgentServiceCheck{TTL: "1m", Status: api.HealthWarning}}); err != nil {
		t.Fatalf("CheckRegister: %v", err)
	}
	if err := ag.UpdateTTL("mem", "low", api.HealthCritical); err != nil {
		t.Fatalf("UpdateTTL: %v", err)
	}
	checks, err := ag.ChecksWithFilter(`Status == "critical"`)
	if err != nil || checks["mem"] == nil || checks["mem"].Output != "low" {
		t.Fatalf("ChecksWithFilter = %+v, %v", checks, err)
	}
	if err := ag.UpdateTTL("nope", "", api.HealthPassing); err == nil {
		t.Fatal("UpdateTTL of an unknown check succeeded")
	}
	if err := ag.CheckDeregister("mem"); err != nil {
		t.Fatalf("CheckDeregister: %v", err)
	}
	if err := ag.EnableNodeMaintenance("upgrade"); err != nil {
		t.Fatalf("EnableNodeMaintenance: %v", err)
	}
	checks, err = ag.Checks()
	if err != nil || checks["_node_maintenance"] == nil || checks["_node_maintenance"].Notes != "upgrade" {
		t.Fatalf("Checks in node maintenance = %+v, %v", checks, err)
	}
	if err := ag.DisableNodeMaintenance(); err != nil {
		t.Fatalf("DisableNodeMaintenance: %v", err)
	}
	if _, err := ag.Host(); err != nil {
		t.Fatalf("Host: %v", err)
	}
}
