package httpapi

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeEvents is a UserEvents that keeps fired events in memory.
type fakeEvents struct {
	mu      sync.Mutex // guards events, changed
	events  []UserEvent
	changed chan struct{}
}

func newFakeEvents() *fakeEvents { return &fakeEvents{changed: make(chan struct{})} }

func (f *fakeEvents) Fire(e UserEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e.LTime = uint64(len(f.events) + 1)
	f.events = append(f.events, e)
	close(f.changed)
	f.changed = make(chan struct{})
	return nil
}

func (f *fakeEvents) Events() ([]UserEvent, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]UserEvent(nil), f.events...), f.changed
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestEvents_FireAnswersAUUIDAndListBlocksUntilTheNext(t *testing.T) {
	ev := newFakeEvents()
	a := startAPI(t, func(c *Config) { c.Events = ev })
	if _, b := a.must(200, "GET", "/v1/event/list", nil); b != "[]" {
		t.Fatalf("empty list = %s", b)
	}
	_, body := a.must(200, "PUT", "/v1/event/fire/deploy?node=web.*", []byte("v2"))
	var fired UserEvent
	if err := json.Unmarshal([]byte(body), &fired); err != nil || !uuidRE.MatchString(fired.ID) ||
		fired.Name != "deploy" || string(fired.Payload) != "v2" || fired.NodeFilter != "web.*" || fired.Version != 1 {
		t.Fatalf("fire = %s (%v)", body, err)
	}
	resp, list := a.must(200, "GET", "/v1/event/list?name=deploy", nil)
	idx := index(t, resp)
	if want := eventIndex([]UserEvent{fired}); idx != want || !strings.Contains(list, fired.ID) {
		t.Fatalf("list index %d (want %d), body %s", idx, want, list)
	}
	done := make(chan string, 1)
	go func() {
		_, b := a.do("GET", "/v1/event/list?wait=20s&index="+strconv.FormatUint(idx, 10), nil)
		done <- b
	}()
	a.must(200, "PUT", "/v1/event/fire/second", nil)
	select {
	case b := <-done:
		if !strings.Contains(b, `"Name":"second"`) {
			t.Fatalf("woken list = %s", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocked event list did not wake on the next event")
	}
	a.must(400, "PUT", "/v1/event/fire/", nil)
}

func TestEvents_WithoutAnAgentSideAre500(t *testing.T) {
	a := startAPI(t)
	a.must(500, "PUT", "/v1/event/fire/x", nil)
	a.must(500, "GET", "/v1/event/list", nil)
}
