package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"testing"
	"time"
)

// sampleCommands has one of each command with every field set.
func sampleCommands() []Command {
	node := Node{ID: "uuid", Node: "n1", Address: "10.0.0.1", Datacenter: "dc1",
		TaggedAddresses: map[string]string{"lan": "10.0.0.1", "wan": "1.2.3.4"}, Meta: map[string]string{"rack": "r1"}}
	svc := NodeService{Kind: "connect-proxy", ID: "web1", Service: "web", Tags: []string{"v1", "v2"}, Address: "10.0.0.9",
		TaggedAddresses: map[string]ServiceAddress{"lan": {Address: "10.0.0.9", Port: 80}},
		Meta:            map[string]string{"version": "1"}, Port: 80, Weights: Weights{Passing: 3, Warning: 1}, EnableTagOverride: true}
	check := HealthCheck{Node: "n1", CheckID: "c1", Name: "http", Status: HealthPassing, Notes: "n", Output: "ok",
		ServiceID: "web1", ServiceName: "web", ServiceTags: []string{"v1"}, Type: "http", Interval: "10s", Timeout: "1s",
		ExposedPort: 21500, Definition: HealthCheckDefinition{HTTP: "http://x", Header: map[string][]string{"A": {"1", "2"}},
			Method: "GET", Interval: "10s", TLSSkipVerify: true, DeregisterCriticalServiceAfter: "1m"}}
	sess := SessionEntry{ID: "s1", Name: "lock", Node: "n1", LockDelay: 15 * time.Second, Behavior: SessionDelete, TTL: "30s",
		NodeChecks: []string{"serfHealth"}, ServiceChecks: []ServiceCheck{{ID: "c1"}}}
	return []Command{
		&RegisterRequest{Node: node, Service: &svc, Checks: []HealthCheck{check}},
		&RegisterRequest{Node: Node{Node: "n2"}, SkipNodeUpdate: true},
		&DeregisterRequest{Node: "n1", ServiceID: "web1", CheckID: "c1"},
		&KVRequest{Verb: KVCAS, Key: "k", Value: []byte{0, 1, 2}, Flags: 42, Index: 7, Session: "s1"},
		&KVRequest{Verb: KVSet, Key: "empty", Value: []byte{}},
		&SessionRequest{Verb: SessionCreate, Session: sess},
		&TxnRequest{Ops: []TxnOp{
			{KV: &KVRequest{Verb: KVGet, Key: "k"}},
			{Node: &TxnNodeOp{Verb: OpSet, Node: node}},
			{Service: &TxnServiceOp{Verb: OpCAS, Node: "n1", Service: svc}},
			{Check: &TxnCheckOp{Verb: OpDelete, Check: check}},
			{Session: &TxnSessionOp{Verb: OpDelete, Session: sess}},
		}},
		&CoordinateBatchRequest{Updates: []CoordinateEntry{{Node: "n1", Segment: "s", Coord: Coordinate{Vec: []float64{1.5, -2}, Error: 0.5, Height: 1e-5}}}},
		&TombstoneReapRequest{Index: 99},
	}
}

func TestCommand_RoundTrip(t *testing.T) {
	for _, c := range sampleCommands() {
		got, err := DecodeCommand(EncodeCommand(c))
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("%T round trip:\n got %+v\nwant %+v", c, got, c)
		}
	}
}

// TestCommand_ApplyDecoderMatches: Apply's decoder, which reuses one
// request and one service-and-check buffer, decodes every command as
// DecodeCommand does, whatever the command decoded before it left there.
func TestCommand_ApplyDecoderMatches(t *testing.T) {
	cmds := sampleCommands()
	checkOnly := &RegisterRequest{Node: Node{Node: "n3"}, SkipNodeUpdate: true,
		Checks: []HealthCheck{{Node: "n3", CheckID: "c", Status: HealthWarning}}}
	plain := benchRegister(3)
	plain.Service.Tags = []string{"only"}
	twoChecks := benchRegister(4)
	twoChecks.Checks = append(twoChecks.Checks, HealthCheck{CheckID: "c2", Status: HealthPassing})
	cmds = append(cmds, checkOnly, plain, cmds[0], twoChecks, plain, checkOnly)
	var (
		d    decoder
		maps mapIntern
		reg  RegisterRequest
		buf  registerSvcCheck
	)
	for i, c := range cmds {
		b := EncodeCommand(c)
		want, err := DecodeCommand(b)
		if err != nil {
			t.Fatalf("command %d (%T): %v", i, c, err)
		}
		got, err := decodeCommandWith(&d, b, &maps, &reg, &buf)
		if err != nil {
			t.Fatalf("command %d (%T): %v", i, c, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("command %d (%T) through the reused buffers:\n got %+v\nwant %+v", i, c, got, want)
		}
	}
}

func TestCommand_DecodeRefusesBadInput(t *testing.T) {
	good := EncodeCommand(sampleCommands()[0])
	cases := map[string][]byte{
		"empty":         nil,
		"version only":  {commandVersion},
		"future":        {commandVersion + 1, byte(CmdKV)},
		"unknown type":  {commandVersion, 200},
		"truncated":     good[:len(good)-3],
		"trailing":      append(bytes.Clone(good), 0),
		"huge count":    {commandVersion, byte(CmdTxn), 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad bool":      {commandVersion, byte(CmdRegister), 0, 0, 0, 0, 0, 0, 0, 0, 7},
		"bad txn tag":   {commandVersion, byte(CmdTxn), 1, 9},
		"string beyond": {commandVersion, byte(CmdDeregister), 0x40, 'a'},
	}
	for name, b := range cases {
		if _, err := DecodeCommand(b); !errors.Is(err, ErrMalformedCommand) {
			t.Errorf("%s: err %v, want ErrMalformedCommand", name, err)
		}
	}
}

// TestTypes_ConsulJSONFieldNames pins the JSON shapes Consul clients decode.
func TestTypes_ConsulJSONFieldNames(t *testing.T) {
	sess, _ := json.Marshal(SessionEntry{ID: "x", LockDelay: 15 * time.Second})
	if !bytes.Contains(sess, []byte(`"LockDelay":15000000000`)) {
		t.Errorf("SessionEntry JSON %s: LockDelay must be integer nanoseconds", sess)
	}
	svc, _ := json.Marshal(NodeService{ID: "web1", Service: "web"})
	if !bytes.Contains(svc, []byte(`"Service":"web"`)) || bytes.Contains(svc, []byte(`"Kind"`)) {
		t.Errorf("NodeService JSON %s: name field is Service, Kind omitted when empty", svc)
	}
	kv, _ := json.Marshal(KVPair{Key: "k", Value: []byte("hi")})
	if !bytes.Contains(kv, []byte(`"Value":"aGk="`)) || bytes.Contains(kv, []byte(`"Session"`)) {
		t.Errorf("KVPair JSON %s: Value base64, Session omitted when empty", kv)
	}
	d, _ := json.Marshal(Change{Kind: HealthChanged})
	var back Change
	if err := json.Unmarshal(d, &back); err != nil || back.Kind != HealthChanged || !bytes.Contains(d, []byte(`"health-changed"`)) {
		t.Errorf("Change JSON %s round trip: %+v, %v", d, back, err)
	}
}

// FuzzDecodeCommand: malformed input is an error, never a panic, and what
// decodes re-encodes to a command that decodes to the same value.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range sampleCommands() {
		f.Add(EncodeCommand(c))
	}
	f.Add([]byte{commandVersion, byte(CmdTxn), 3, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		again, err := DecodeCommand(EncodeCommand(c))
		if err != nil {
			t.Fatalf("re-encoding a decoded %T fails to decode: %v", c, err)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("%T changed across re-encoding", c)
		}
		// Applying any decodable command must not panic either.
		h := newHarness(t, Config{})
		h.ok(regService("n1", "web1", "web", 80))
		h.s.ApplyCommand(2, c)
	})
}

// FuzzRestore: a corrupt snapshot is an error, never a panic.
func FuzzRestore(f *testing.F) {
	h := newKVHarness(f)
	h.ok(regService("n1", "web1", "web", 80))
	h.ok(kvSet("a/b", "v"))
	f.Add(snapshotBytes(f, h.s))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, _ := New(Config{})
		_ = s.Restore(bytes.NewReader(b))
	})
}

// TestDecode_InternedMapsShareOnlyEqualContent checks the Apply decoder's
// map sharing: equal encodings share one map, different ones never do, and
// a truncated map is still refused.
func TestDecode_InternedMapsShareOnlyEqualContent(t *testing.T) {
	var interned mapIntern
	reg := func(meta map[string]string) *RegisterRequest {
		return &RegisterRequest{Node: Node{Node: "n1", Address: "10.0.0.1", Meta: meta}}
	}
	decode := func(b []byte) *RegisterRequest {
		t.Helper()
		c, err := decodeCommand(b, &interned)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		return c.(*RegisterRequest)
	}
	a := decode(EncodeCommand(reg(map[string]string{"rack": "r1", "zone": "z"})))
	b := decode(EncodeCommand(reg(map[string]string{"zone": "z", "rack": "r1"})))
	c := decode(EncodeCommand(reg(map[string]string{"rack": "r2", "zone": "z"})))
	if reflect.ValueOf(a.Node.Meta).UnsafePointer() != reflect.ValueOf(b.Node.Meta).UnsafePointer() {
		t.Errorf("equal meta decoded into two maps")
	}
	if !maps.Equal(c.Node.Meta, map[string]string{"rack": "r2", "zone": "z"}) || !maps.Equal(a.Node.Meta, b.Node.Meta) {
		t.Errorf("interned meta wrong: a=%v b=%v c=%v", a.Node.Meta, b.Node.Meta, c.Node.Meta)
	}
	full := EncodeCommand(reg(map[string]string{"rack": "r1", "zone": "z"}))
	for n := 2; n < len(full); n++ {
		if _, err := decodeCommand(full[:n], &interned); err == nil {
			t.Fatalf("truncated to %d of %d bytes: decoded without error", n, len(full))
		}
	}
}

func TestStrMapsEqual(t *testing.T) {
	m := map[string]string{"a": "1"}
	for _, tc := range []struct {
		a, b map[string]string
		want bool
	}{
		{nil, map[string]string{}, true},
		{m, m, true},
		{m, map[string]string{"a": "1"}, true},
		{m, map[string]string{"a": "2"}, false},
		{m, map[string]string{"b": "1"}, false},
		{m, nil, false},
	} {
		if got := strMapsEqual(tc.a, tc.b); got != tc.want {
			t.Errorf("strMapsEqual(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
