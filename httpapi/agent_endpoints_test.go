package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// fakeMembership records the membership calls it is asked to make; fail
// makes every call fail.
type fakeMembership struct {
	mu    sync.Mutex
	calls []string
	fail  bool
}

func (m *fakeMembership) record(call string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, call)
	if m.fail {
		return errors.New("gossip says no")
	}
	return nil
}

func (m *fakeMembership) Join(addrs []string, wan bool) (int, error) {
	return len(addrs), m.record(fmt.Sprintf("join %v wan=%v", addrs, wan))
}

func (m *fakeMembership) Leave() error { return m.record("leave") }

func (m *fakeMembership) ForceLeave(node string, prune, wan bool) error {
	return m.record(fmt.Sprintf("force-leave %s prune=%v wan=%v", node, prune, wan))
}

func (m *fakeMembership) recorded() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.calls, "; ")
}

func TestAgentMembership_CallsArgumentsAndErrors(t *testing.T) {
	fm := &fakeMembership{}
	a := startAPI(t, func(c *Config) { c.Membership = fm })
	a.must(200, "PUT", "/v1/agent/join/10.0.0.2:8301?wan", nil)
	a.must(200, "PUT", "/v1/agent/force-leave/n2?prune", nil)
	a.must(200, "PUT", "/v1/agent/leave", nil)
	a.must(400, "PUT", "/v1/agent/join/", nil)
	a.must(400, "PUT", "/v1/agent/force-leave/", nil)
	want := "join [10.0.0.2:8301] wan=true; force-leave n2 prune=true wan=false; leave"
	if got := fm.recorded(); got != want {
		t.Fatalf("membership calls = %q, want %q", got, want)
	}
	fm.mu.Lock()
	fm.fail = true
	fm.mu.Unlock()
	if _, b := a.must(http.StatusInternalServerError, "PUT", "/v1/agent/leave", nil); !strings.Contains(b, "gossip says no") {
		t.Fatalf("leave error body = %q", b)
	}
}

func TestAgentMembership_WithoutPoolIs500(t *testing.T) {
	a := startAPI(t)
	for _, path := range []string{"/v1/agent/join/10.0.0.2", "/v1/agent/leave", "/v1/agent/force-leave/n2"} {
		a.must(http.StatusInternalServerError, "PUT", path, nil)
	}
}
