package local

import (
	"fmt"
	"slices"
)

// LoadConfig makes the services and checks of the config files the
// current set: entries from a previous load that are no longer defined are
// removed, the others added or replaced. Entries registered through the
// HTTP API are left alone. Call it at start and on SIGHUP. Everything is
// validated before anything changes, so a bad file changes nothing.
func (s *State) LoadConfig(services []ServiceDefinition, checks []CheckDefinition) error {
	svcIDs, checkIDs, err := s.validateConfig(services, checks)
	if err != nil {
		return err
	}
	s.mu.Lock()
	var staleSvcs, staleChecks []string
	for id, e := range s.services {
		if e.fromConfig && !e.deleted && !slices.Contains(svcIDs, id) {
			staleSvcs = append(staleSvcs, id)
		}
	}
	for id, c := range s.checks {
		if c.fromConfig && !c.deleted && !slices.Contains(checkIDs, id) && c.check.ServiceID == "" {
			staleChecks = append(staleChecks, id)
		}
	}
	s.mu.Unlock()
	for _, id := range staleSvcs {
		if err := s.RemoveService(id); err != nil && StatusCode(err) != 404 {
			return err
		}
	}
	for _, id := range staleChecks {
		if err := s.RemoveCheck(id); err != nil && StatusCode(err) != 404 {
			return err
		}
	}
	for i, def := range services {
		if err := s.addService(def, true, true); err != nil {
			return fmt.Errorf("services[%d] (%s): %w", i, svcIDs[i], err)
		}
	}
	for i, def := range checks {
		if err := s.addCheck(def, true); err != nil {
			return fmt.Errorf("checks[%d] (%s): %w", i, checkIDs[i], err)
		}
	}
	return nil
}

// validateConfig checks every definition and returns the service and check
// IDs they will have.
func (s *State) validateConfig(services []ServiceDefinition, checks []CheckDefinition) (svcIDs, checkIDs []string, err error) {
	for i, def := range services {
		svc, _, err := s.buildService(def)
		if err != nil {
			return nil, nil, fmt.Errorf("services[%d] (%s): %w", i, def.Name, err)
		}
		svcIDs = append(svcIDs, svc.ID)
	}
	for i, def := range checks {
		def = def.clone()
		if def.Name == "" {
			return nil, nil, fmt.Errorf("checks[%d]: %w", i, badRequest("Missing check name"))
		}
		if err := s.validateCheck(&def); err != nil {
			return nil, nil, fmt.Errorf("checks[%d] (%s): %w", i, def.Name, err)
		}
		if def.ServiceID != "" && !slices.Contains(svcIDs, def.ServiceID) {
			if _, _, ok := s.Service(def.ServiceID); !ok {
				return nil, nil, fmt.Errorf("checks[%d] (%s): %w", i, def.Name, badRequest("ServiceID %q does not exist", def.ServiceID))
			}
		}
		checkIDs = append(checkIDs, def.normalized().ID)
	}
	return svcIDs, checkIDs, nil
}
