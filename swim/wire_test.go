package swim

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func sampleBody() []byte {
	addr := netip.MustParseAddrPort("10.1.2.3:8301")
	var b []byte
	b = encodePing(b, ping{Seq: 7, Target: "b", Source: "a"})
	b = encodePingReq(b, pingReq{Seq: 8, Target: "c", TargetAddr: addr, Nack: true, Source: "a"})
	b = encodeAck(b, ack{Seq: 9})
	b = encodeNack(b, nack{Seq: 10, From: "h"})
	b = encodeAlive(b, alive{Incarnation: 3, Node: "d", Addr: netip.MustParseAddrPort("[::1]:8302"), Tags: map[string]string{"role": "server"}})
	b = encodeSuspect(b, suspect{Incarnation: 4, Node: "e", From: "a", First: "b"})
	b = encodeDead(b, dead{Incarnation: 5, Node: "f", From: "f"})
	b = encodeUser(b, userMsg{LTime: 11, Name: "deploy", Payload: []byte("v2")})
	b = encodeConflict(b, conflict{Node: "g", Holder: addr, HolderIncarnation: 6, From: "a"})
	b = encodeLeaving(b, leaving{Incarnation: 12, Node: "i", From: "a", Prune: true})
	b = encodeLeaving(b, leaving{Incarnation: 13, Node: "j", From: "j"})
	return b
}

func TestWire_RoundTrip(t *testing.T) {
	msgs, err := decodeBody(sampleBody())
	if err != nil {
		t.Fatal(err)
	}
	want := []any{
		ping{Seq: 7, Target: "b", Source: "a"},
		pingReq{Seq: 8, Target: "c", TargetAddr: netip.MustParseAddrPort("10.1.2.3:8301"), Nack: true, Source: "a"},
		ack{Seq: 9}, nack{Seq: 10, From: "h"},
		alive{Incarnation: 3, Node: "d", Addr: netip.MustParseAddrPort("[::1]:8302"), Tags: map[string]string{"role": "server"}},
		suspect{Incarnation: 4, Node: "e", From: "a", First: "b"},
		dead{Incarnation: 5, Node: "f", From: "f"},
		userMsg{LTime: 11, Name: "deploy", Payload: []byte("v2")},
		conflict{Node: "g", Holder: netip.MustParseAddrPort("10.1.2.3:8301"), HolderIncarnation: 6, From: "a"},
		leaving{Incarnation: 12, Node: "i", From: "a", Prune: true},
		leaving{Incarnation: 13, Node: "j", From: "j"},
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", msgs, want)
	}
}

// TestWire_EveryTruncationIsAnError: no prefix of a valid body decodes
// partially; each is rejected as a whole (a prefix ending exactly on a
// message boundary is itself valid).
func TestWire_EveryTruncationIsAnError(t *testing.T) {
	body := sampleBody()
	boundaries := map[int]bool{0: true}
	for off := 0; off < len(body); {
		off += msgHeaderBytes + int(body[off+1])<<8 + int(body[off+2])
		boundaries[off] = true
	}
	for n := range len(body) {
		_, err := decodeBody(body[:n])
		if boundaries[n] != (err == nil) {
			t.Fatalf("prefix of %d bytes: err=%v, boundary=%v", n, err, boundaries[n])
		}
	}
}

// TestCore_MalformedPacketsAreCountedNotApplied feeds a core garbage,
// foreign labels and wrong versions.
func TestCore_MalformedPacketsAreCountedNotApplied(t *testing.T) {
	cfg := DefaultLANConfig()
	cfg.Name = "a"
	cfg.Label = "prod"
	c, err := NewCore(cfg, netip.MustParseAddrPort("10.0.0.1:8301"), rand.New(rand.NewPCG(1, 2)), nil)
	if err != nil {
		t.Fatal(err)
	}
	from := netip.MustParseAddrPort("10.0.0.2:8301")
	good, _ := (&framer{label: "prod"}).seal(encodeAlive(nil, alive{Node: "b", Addr: from}))
	foreign, _ := (&framer{label: "staging"}).seal(encodeAlive(nil, alive{Node: "x", Addr: from}))
	c.Step(from, []byte{1})
	c.Step(from, []byte{9, 0, 0})
	c.Step(from, foreign)
	c.Step(from, append(good[:len(good)-1:len(good)-1], 0xff, 0xff)) // bad trailing message
	c.Step(from, bytes.Repeat([]byte{1}, cfg.PacketBytes+1))
	s := c.Stats()
	if s.DroppedMalformed != 3 || s.DroppedVersion != 1 || s.DroppedLabel != 1 || s.Members != 1 {
		t.Fatalf("drops %+v", s)
	}
	c.Step(from, good)
	if _, ok := c.Member("b"); !ok {
		t.Fatal("a valid packet was not applied")
	}
}

func TestConfig_ValidateNamesTheField(t *testing.T) {
	cfg := DefaultLANConfig()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "Config.Name") {
		t.Fatalf("missing name: %v", err)
	}
	cfg.Name = "a"
	cfg.ProbeTimeout = 2 * cfg.ProbeInterval
	cfg.SecretKey = []byte("short")
	err := cfg.Validate()
	for _, f := range []string{"Config.ProbeTimeout", "Config.SecretKey"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Fatalf("want %s named in %v", f, err)
		}
	}
	for _, c := range []Config{DefaultLANConfig(), DefaultWANConfig()} {
		c.Name = "x"
		if err := c.Validate(); err != nil {
			t.Fatalf("defaults invalid: %v", err)
		}
	}
}

func TestSuspicion_TimeoutShrinksWithConfirmations(t *testing.T) {
	s := newSuspicion("a", 0, 100, 300, 3)
	prev := s.deadline
	if prev != 300 {
		t.Fatalf("starts at %d, want the maximum 300", prev)
	}
	for _, who := range []string{"b", "c", "d"} {
		if !s.confirm(who) {
			t.Fatalf("confirmation by %s not counted", who)
		}
		if s.deadline >= prev {
			t.Fatalf("deadline %d did not shrink from %d", s.deadline, prev)
		}
		prev = s.deadline
	}
	if s.deadline != 100 || s.confirm("e") || s.confirm("b") {
		t.Fatalf("after K confirmations: deadline %d, extra confirmations accepted", s.deadline)
	}
}

// FuzzDecodePacket: any byte string is either a valid packet or an error;
// never a panic, and a core stepping it stays consistent.
func FuzzDecodePacket(f *testing.F) {
	good, _ := (&framer{}).seal(sampleBody())
	f.Add(good)
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{1, 1, 0, 0, 0})
	// An alive member and a pruning intent about it: it is erased while
	// still leaving, which must take it out of numAlive.
	body := encodeAlive(nil, alive{Incarnation: 1, Node: "x", Addr: netip.MustParseAddrPort("10.0.0.9:8301")})
	pruned, _ := (&framer{}).seal(encodeLeaving(body, leaving{Incarnation: 1, Node: "x", From: "b", Prune: true}))
	f.Add(pruned)
	cfg := DefaultLANConfig()
	cfg.Name = "a"
	f.Fuzz(func(t *testing.T, pkt []byte) {
		c, err := NewCore(cfg, netip.MustParseAddrPort("10.0.0.1:8301"), rand.New(rand.NewPCG(1, 2)), nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Step(netip.MustParseAddrPort("10.0.0.2:8301"), pkt)
		for range 300 {
			c.Tick()
		}
		if c.NumAlive() < 1 || c.NumAlive() != countLive(c) {
			t.Fatalf("numAlive %d with %d live members of %d", c.NumAlive(), countLive(c), c.table.count)
		}
	})
}

// FuzzDecodePushPull: push-pull frames are parsed with the same care.
func FuzzDecodePushPull(f *testing.F) {
	cfg := DefaultLANConfig()
	cfg.Name = "b"
	peer, _ := NewCore(cfg, netip.MustParseAddrPort("10.0.0.2:8301"), rand.New(rand.NewPCG(3, 4)), nil)
	f.Add(peer.LocalState(true))
	f.Add([]byte{1, 0, 0, 0, 1, 'x', 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	cfg.Name = "a"
	f.Fuzz(func(t *testing.T, frame []byte) {
		c, _ := NewCore(cfg, netip.MustParseAddrPort("10.0.0.1:8301"), rand.New(rand.NewPCG(1, 2)), nil)
		_, _ = c.HandlePushPull(frame)
		_ = c.MergePushPull(frame, true)
		if c.NumAlive() < 1 || c.NumAlive() != countLive(c) {
			t.Fatalf("numAlive %d with %d live members of %d", c.NumAlive(), countLive(c), c.table.count)
		}
	})
}
