package local

import (
	"testing"
	"time"
)

func TestLoadConfig_ReplacesConfigSetKeepsAPIEntries(t *testing.T) {
	dir := t.TempDir()
	s := newState(t, dir, newClock())
	must(t, s.AddService(ServiceDefinition{Name: "api-svc"}, false))
	ttl := &CheckDefinition{TTL: Duration(time.Minute)}
	must(t, s.LoadConfig([]ServiceDefinition{{Name: "a", Check: ttl}, {Name: "b"}},
		[]CheckDefinition{{Name: "disk", TTL: Duration(time.Minute)}}))
	must(t, s.LoadConfig([]ServiceDefinition{{Name: "a", Port: 2, Check: ttl}}, nil))
	svcs := s.Services()
	if _, ok := svcs["b"]; ok || svcs["a"].Port != 2 {
		t.Fatalf("after reload: %v", svcs)
	}
	if _, ok := svcs["api-svc"]; !ok {
		t.Fatal("reload removed an API-registered service")
	}
	if _, ok := s.Check("disk"); ok {
		t.Fatal("check dropped from config still registered")
	}
	// A bad definition changes nothing.
	if err := s.LoadConfig([]ServiceDefinition{{Name: "c"}, {}}, nil); err == nil || StatusCode(err) != 400 {
		t.Fatalf("bad config err = %v", err)
	}
	if _, _, ok := s.Service("a"); !ok {
		t.Fatal("failed reload removed a")
	}
	// Config entries are not persisted: a restart sees only API entries
	// until the config is loaded again.
	s2 := newState(t, dir, newClock())
	if got := s2.Services(); len(got) != 1 || got["api-svc"].ID == "" {
		t.Fatalf("restart restored %v", got)
	}
}
