package compat

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// TestEvents_FireAndListWithTheClient needs the agent to pass its user
// events to the HTTP API (httpapi.Config.Events); it fails until then.
func TestEvents_FireAndListWithTheClient(t *testing.T) {
	c := devAgent(t, "compat-events")
	id, _, err := c.Event().Fire(&api.UserEvent{Name: "deploy", Payload: []byte("v2")}, nil)
	if err != nil || id == "" {
		t.Fatalf("Fire = %q, %v", id, err)
	}
	var events []*api.UserEvent
	waitFor(t, 10*time.Second, "the fired event to be listed", func() error {
		var err error
		events, _, err = c.Event().List("deploy", nil)
		if err == nil && len(events) == 0 {
			return errNoEventYet
		}
		return err
	})
	last := events[len(events)-1]
	if last.ID != id || string(last.Payload) != "v2" {
		t.Fatalf("listed %+v, want ID %s", last, id)
	}
	if c.Event().IDToIndex(id) == 0 { // panics on a non-UUID ID
		t.Fatal("IDToIndex of the fired event is 0")
	}
}

var errNoEventYet = errorString("no event listed yet")
