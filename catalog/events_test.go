package catalog

import (
	"strings"
	"testing"
)

// TestEvents_EveryEntryIsPublished checks the event of each outcome.
func TestEvents_EveryEntryIsPublished(t *testing.T) {
	h := newHarness(t, Config{})
	obs := h.s.Subscribe(16)
	defer obs.Close()
	h.ok(regService("n1", "web1", "web", 80))                         // applied, 2 changes
	h.apply(&KVRequest{Verb: KVCAS, Key: "k", Index: 9})              // refused (cas)
	h.apply(&RegisterRequest{Node: Node{Address: "x"}})               // refused (error)
	h.s.Apply(rawEntry(4, []byte{commandVersion, byte(CmdKV), 0x7f})) // malformed
	h.idx = 4
	want := []struct {
		kind    EventKind
		changes int
		err     string
	}{{EventApplied, 2, ""}, {EventRefused, 0, ""}, {EventRefused, 0, "Must provide node"}, {EventMalformed, 0, "malformed"}}
	for i, w := range want {
		e := <-obs.C
		if e.Kind != w.kind || e.Changes != w.changes || e.Index != uint64(i+1) || !strings.Contains(e.Err, w.err) {
			t.Fatalf("event %d = %+v, want kind %s with %d changes and error %q", i, e, w.kind, w.changes, w.err)
		}
	}
}

func TestConfig_ValidateNamesTheBadField(t *testing.T) {
	for field, cfg := range map[string]Config{
		"DeltaCapacity": {DeltaCapacity: -1},
		"MaxValueBytes": {MaxValueBytes: -5},
	} {
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("New(%+v) = %v, want an error naming %s", cfg, err, field)
		}
	}
}
