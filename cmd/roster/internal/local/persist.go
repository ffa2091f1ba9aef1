package local

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"roster/catalog"
)

// Persistence mirrors Consul's: one JSON file per service and per check
// under <data-dir>/services and <data-dir>/checks, named by a digest of
// the ID (IDs may contain any character). Files are written to a temporary
// name, synced and renamed, so a crash leaves either the old or the new
// file, never a torn one.

const (
	servicesDir = "services"
	checksDir   = "checks"
)

type persistedService struct {
	Service catalog.NodeService
}

type persistedCheck struct {
	Check      catalog.HealthCheck
	Definition CheckDefinition
	// TTLRemaining is how much of a TTL check's TTL was left when saved.
	TTLRemaining time.Duration `json:",omitempty"`
}

func fileName(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:]) + ".json"
}

// persistService saves an API-registered service; a config-file service
// is not saved (its file is its record), and a stale copy is removed.
func (s *State) persistService(svc catalog.NodeService, fromConfig bool) error {
	if fromConfig {
		return s.unpersistService(svc.ID)
	}
	return s.writeEntry(servicesDir, svc.ID, persistedService{Service: svc})
}

func (s *State) persistCheck(c *checkEntry) error {
	if c.fromConfig {
		return s.unpersistCheck(c.check.CheckID)
	}
	p := persistedCheck{Check: c.check, Definition: c.def}
	if !c.ttlDeadline.IsZero() {
		p.TTLRemaining = c.ttlDeadline.Sub(s.cfg.Clock())
	}
	return s.writeEntry(checksDir, c.check.CheckID, p)
}

func (s *State) unpersistService(id string) error { return s.removeEntry(servicesDir, id) }
func (s *State) unpersistCheck(id string) error   { return s.removeEntry(checksDir, id) }

func (s *State) writeEntry(kind, id string, v any) error {
	if s.cfg.DataDir == "" {
		return nil
	}
	dir := filepath.Join(s.cfg.DataDir, kind)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot create %s: %w; check the data directory's permissions", dir, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cannot encode %s %q: %w", kind, id, err)
	}
	path := filepath.Join(dir, fileName(id))
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("cannot persist %s %q: %w", kind, id, err)
	}
	_, werr := tmp.Write(b)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cannot persist %s %q: %w", kind, id, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cannot persist %s %q: %w", kind, id, err)
	}
	return nil
}

func (s *State) removeEntry(kind, id string) error {
	if s.cfg.DataDir == "" {
		return nil
	}
	err := os.Remove(filepath.Join(s.cfg.DataDir, kind, fileName(id)))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot remove persisted %s %q: %w", kind, id, err)
	}
	return nil
}

// load reads what a previous run persisted. Everything loaded starts out
// of sync: the first anti-entropy run compares it with the catalog. A
// corrupt file is skipped with a warning (and left for inspection) rather
// than blocking the agent's start.
func (s *State) load() error {
	if s.cfg.DataDir == "" {
		return nil
	}
	now := s.cfg.Clock()
	err := s.readDir(servicesDir, func(b []byte) error {
		var p persistedService
		if err := json.Unmarshal(b, &p); err != nil {
			return err
		}
		if p.Service.ID == "" {
			return errors.New("service without ID")
		}
		s.services[p.Service.ID] = &serviceEntry{svc: p.Service}
		return nil
	})
	if err != nil {
		return err
	}
	return s.readDir(checksDir, func(b []byte) error {
		var p persistedCheck
		if err := json.Unmarshal(b, &p); err != nil {
			return err
		}
		if p.Check.CheckID == "" {
			return errors.New("check without ID")
		}
		p.Check.Node = s.cfg.NodeName
		c := &checkEntry{check: p.Check, def: p.Definition}
		if p.Definition.TTL > 0 {
			c.ttlDeadline = now.Add(max(p.TTLRemaining, 0))
		}
		if c.check.Status == catalog.HealthCritical {
			c.criticalSince = now
		}
		s.checks[p.Check.CheckID] = c
		return nil
	})
}

func (s *State) readDir(kind string, decode func([]byte) error) error {
	dir := filepath.Join(s.cfg.DataDir, kind)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read persisted %s in %s: %w", kind, dir, err)
	}
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".json" {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err == nil {
			err = decode(b)
		}
		if err != nil {
			s.cfg.Logger.Warn("skipping unreadable persisted entry; remove it or fix its JSON", "file", path, "err", err)
		}
	}
	return nil
}
