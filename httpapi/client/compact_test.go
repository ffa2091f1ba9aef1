package client

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"roster/catalog"
)

const testHash = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// sampleDelta has every kind of change and every Instance field set.
func sampleDelta() catalog.Delta {
	full := &catalog.Instance{Node: "node-0001", NodeAddress: "10.0.0.1", Datacenter: "dc1", ID: "web-1", Service: "web",
		Tags: []string{"v1", "primary"}, Address: "10.0.0.9", Port: -8080, Meta: map[string]string{"b": "2", "a": ""}, Health: "passing"}
	return catalog.Delta{From: 100, To: 190, Hash: testHash, HashScheme: catalog.HashScheme, Changes: []catalog.Change{
		{Index: 101, Kind: catalog.NodeAdded, Node: "node-0001"},
		{Index: 101, Kind: catalog.InstanceAdded, Instance: full},
		{Index: 102, Kind: catalog.HealthChanged, Instance: &catalog.Instance{Node: "node-0001", ID: "web-2", Service: "web", Health: "warning"}},
		{Index: 103, Kind: catalog.HealthChanged, Instance: &catalog.Instance{Node: "node-0001", ID: "web-3", Service: "web", Health: "critical"}},
		{Index: 150, Kind: catalog.HealthChanged, Instance: &catalog.Instance{Node: "node-0002", ID: "api-1", Service: "api", Health: "maintenance?"}},
		{Index: 160, Kind: catalog.InstanceUpdated, Instance: &catalog.Instance{Node: "node-0002", ID: "api-1", Service: "api", Port: 81, Tags: []string{"x"}},
			Fields: []string{"Port", "Tags"}},
		{Index: 170, Kind: catalog.InstanceUpdated, Instance: &catalog.Instance{Node: "", ID: "", Service: ""}, Fields: []string{"Meta"}},
		{Index: 180, Kind: catalog.InstanceRemoved, Instance: full},
		{Index: 190, Kind: catalog.NodeRemoved, Node: "node-0001"},
	}}
}

func TestCompactDelta_RoundTripsEveryKindAndField(t *testing.T) {
	// A new Instance field must be added to the compact form (else a
	// mirror fed by it would mismatch and fall back on every such change).
	if n := reflect.TypeFor[catalog.Instance]().NumField(); n != 10 {
		t.Fatalf("catalog.Instance has %d fields; the compact form (compact.go) encodes 10: add the new one", n)
	}
	want := sampleDelta()
	b, err := AppendCompactDelta(nil, &want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCompactDelta(b)
	if err != nil {
		t.Fatal(err)
	}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Fatalf("round trip changed the delta:\n got %s\nwant %s", gj, wj)
	}
	if js := len(wj); len(b)*4 > js {
		t.Errorf("compact form is %d bytes, JSON %d: expected at least 4× smaller", len(b), js)
	}
}

func TestCompactDelta_HealthFlipCostsAFewBytes(t *testing.T) {
	d := catalog.Delta{From: 1000, To: 1010, Hash: testHash, HashScheme: catalog.HashScheme}
	for i := range 10 {
		d.Changes = append(d.Changes, catalog.Change{Index: uint64(1001 + i), Kind: catalog.HealthChanged,
			Instance: &catalog.Instance{Node: "node-0000", ID: "web-" + string(rune('0'+i)), Service: "web", Health: "warning"}})
	}
	b, err := AppendCompactDelta(nil, &d)
	if err != nil {
		t.Fatal(err)
	}
	// header 39 bytes; the first change spells its strings, each later one
	// is head, same node, 3-byte ID, same service: 6 bytes.
	if len(b) > 39+25+9*6 {
		t.Fatalf("ten health flips take %d bytes", len(b))
	}
}

func TestCompactDelta_RejectsWhatItCannotCarry(t *testing.T) {
	for name, d := range map[string]catalog.Delta{
		"hash not hex":      {From: 1, To: 2, Hash: "xyz"},
		"To before From":    {From: 5, To: 2, Hash: testHash},
		"negative scheme":   {From: 1, To: 2, Hash: testHash, HashScheme: -1},
		"index goes back":   {From: 5, To: 9, Hash: testHash, Changes: []catalog.Change{{Index: 4, Kind: catalog.NodeAdded}}},
		"kind out of range": {From: 5, To: 9, Hash: testHash, Changes: []catalog.Change{{Index: 6, Kind: 9}}},
	} {
		if _, err := AppendCompactDelta(nil, &d); err == nil {
			t.Errorf("%s: encoded without error", name)
		}
	}
}

func TestDecodeCompactDelta_BadInputIsAnError(t *testing.T) {
	d := sampleDelta()
	good, _ := AppendCompactDelta(nil, &d)
	for i := range len(good) {
		if _, err := DecodeCompactDelta(good[:i]); !errors.Is(err, errCompact) {
			t.Fatalf("truncated to %d bytes: err %v, want errCompact", i, err)
		}
	}
	if _, err := DecodeCompactDelta(append(good, 0)); err == nil || !strings.Contains(err.Error(), "after the last change") {
		t.Fatalf("trailing byte: %v", err)
	}
	if _, err := DecodeCompactDelta([]byte{3}); err == nil || !strings.Contains(err.Error(), "version 3") {
		t.Fatalf("unknown version: %v", err)
	}
}

// TestDecodeCompactDelta_SchemeAsSent checks the scheme field: any value
// comes back as sent, for the Mirror to judge, and a version 1 body (the
// layout before the field) decodes as scheme 0, which the Mirror refuses
// as "server older than schemes" rather than failing to decode.
func TestDecodeCompactDelta_SchemeAsSent(t *testing.T) {
	for _, scheme := range []int{0, 1, catalog.HashScheme, 300} {
		d := sampleDelta()
		d.HashScheme = scheme
		b, err := AppendCompactDelta(nil, &d)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := DecodeCompactDelta(b); err != nil || got.HashScheme != scheme {
			t.Fatalf("scheme %d came back as %d (err %v)", scheme, got.HashScheme, err)
		}
	}
	d := sampleDelta()
	d.HashScheme = 0 // one byte: dropping it leaves the version 1 layout
	b, _ := AppendCompactDelta(nil, &d)
	v1 := append([]byte{compactVersionNoScheme}, b[2:]...)
	got, err := DecodeCompactDelta(v1)
	if err != nil || got.HashScheme != 0 || got.From != d.From || len(got.Changes) != len(d.Changes) {
		t.Fatalf("version 1 body: scheme %d, From %d, %d changes, err %v", got.HashScheme, got.From, len(got.Changes), err)
	}
	if err := catalog.NewMirror().Apply(got); !errors.Is(err, catalog.ErrHashScheme) {
		t.Fatalf("mirror applying a version 1 body: %v, want ErrHashScheme", err)
	}
}

func FuzzDecodeCompactDelta(f *testing.F) {
	d := sampleDelta()
	good, _ := AppendCompactDelta(nil, &d)
	f.Add(good)
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{2, 2, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeCompactDelta(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := AppendCompactDelta(nil, &d)
		if err != nil {
			return // e.g. a decoded index gap that wraps: the encoder refuses it
		}
		d2, err := DecodeCompactDelta(again)
		if err != nil {
			t.Fatalf("re-encoded delta does not decode: %v", err)
		}
		a, _ := json.Marshal(d)
		c, _ := json.Marshal(d2)
		if string(a) != string(c) {
			t.Fatalf("re-encoding changed the delta:\n%s\n%s", a, c)
		}
	})
}
