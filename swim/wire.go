package swim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Wire format (version 2: suspect and dead carry the first accuser, nack
// its sender, push-pull records the first accuser; conflict added). Every
// UDP packet is
//
//	version u8 | flags u8 | labelLen u8 | label | body
//
// where body is a sequence of messages, each
//
//	type u8 | len u16 | payload[len]
//
// so one packet carries a ping or ack plus as many piggy-backed broadcasts
// as fit (the "compound" format). With flagEncrypted the body is replaced by
// nonce[12] | AES-GCM(body) and the header is the additional data, so a
// packet cannot be moved to another cluster label either. Every length is
// checked against what is left; a short or inconsistent packet is an error
// that the core counts and drops.
const (
	wireVersion   = 2
	flagEncrypted = 1 << 0

	headerFixedBytes = 3
	msgHeaderBytes   = 3 // type u8 + len u16
	maxNameBytes     = 255
	maxTagCount      = 64
	maxTagBytes      = 255
)

type msgType uint8

const (
	msgPing msgType = iota + 1
	msgPingReq
	msgAck
	msgNack
	msgAlive
	msgSuspect
	msgDead
	msgUser
	msgConflict
	msgLeaving
	msgTypeEnd // first unused value
)

func (t msgType) String() string {
	names := [...]string{"?", "ping", "ping-req", "ack", "nack", "alive", "suspect", "dead", "user", "conflict", "leaving"}
	if t < msgTypeEnd {
		return names[t]
	}
	return fmt.Sprintf("msg(%d)", uint8(t))
}

// errTruncated is returned by the reader when a field runs past the end.
var errTruncated = errors.New("swim: truncated message")

// ping asks Target to ack Seq (SWIM §3.1). Target is named so a process
// that restarted under another name on the same address does not answer.
type ping struct {
	Seq    uint32
	Target string
	Source string
}

// pingReq asks the receiver to ping Target on the sender's behalf and relay
// the ack (SWIM §3.1 ping-req); with Nack the relay also reports failure
// (Lifeguard §IV-A), so the requester can tell "target silent" from "I am
// not hearing anyone".
type pingReq struct {
	Seq        uint32
	Target     string
	TargetAddr netip.AddrPort
	Nack       bool
	Source     string
}

type ack struct{ Seq uint32 }

// nack names its sender, the helper that could not reach the target, so
// the requester can report who answered (EventNack).
type nack struct {
	Seq  uint32
	From string
}

// alive, suspect and dead are the membership updates of SWIM §4.2. A dead
// message whose From equals Node is a graceful leave. From is the member
// that sent this accusation or verdict; First is the member that
// suspected Node first in this episode, carried along so every dead
// verdict can be traced to where the suspicion began.
type alive struct {
	Incarnation uint32
	Node        string
	Addr        netip.AddrPort
	Tags        map[string]string
}

type suspect struct {
	Incarnation uint32
	Node        string
	From        string
	First       string
}

type dead struct {
	Incarnation uint32
	Node        string
	From        string
	First       string
}

// leaving is a leave intent (Serf's messageLeave): Node, at Incarnation,
// is leaving. From is Node itself for a graceful leave, or the member that
// forced it to leave. Prune (force-leave -prune) asks every member that
// holds Node as failed or left to forget it at once.
type leaving struct {
	Incarnation uint32
	Node        string
	From        string
	Prune       bool
}

// conflict tells a member that the sender already holds its name for
// another address (Holder, at HolderIncarnation): two processes claim one
// name. It is sent directly to the claimant, never gossiped, so each
// sender is one vote in the claimant's resolution (see conflict.go).
type conflict struct {
	Node              string
	Holder            netip.AddrPort
	HolderIncarnation uint32
	From              string
}

// userMsg is a user event stamped with a Lamport time (Serf-style).
type userMsg struct {
	LTime   uint64
	Name    string
	Payload []byte
}

// ---- writer ----

type writer struct{ b []byte }

func (w *writer) u8(v uint8)   { w.b = append(w.b, v) }
func (w *writer) u16(v uint16) { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *writer) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *writer) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }

// str8 writes a string of at most 255 bytes; callers validate lengths
// before encoding (names and tags are checked in Config.Validate/SetTags),
// so truncation here is only a last line of defence.
func (w *writer) str8(s string) {
	if len(s) > maxNameBytes {
		s = s[:maxNameBytes]
	}
	w.u8(uint8(len(s)))
	w.b = append(w.b, s...)
}

func (w *writer) bytes16(p []byte) {
	if len(p) > 0xffff {
		p = p[:0xffff]
	}
	w.u16(uint16(len(p)))
	w.b = append(w.b, p...)
}

func (w *writer) addr(a netip.AddrPort) {
	ip := a.Addr().Unmap()
	if !ip.IsValid() {
		w.u8(0)
	} else {
		raw := ip.AsSlice()
		w.u8(uint8(len(raw)))
		w.b = append(w.b, raw...)
	}
	w.u16(a.Port())
}

func (w *writer) tags(t map[string]string) {
	if len(t) == 0 {
		w.u8(0)
		return
	}
	keys := sortedKeys(t)
	if len(keys) > maxTagCount {
		keys = keys[:maxTagCount]
	}
	w.u8(uint8(len(keys)))
	for _, k := range keys {
		w.str8(k)
		w.str8(t[k])
	}
}

// ---- reader ----

// reader decodes fields and remembers the first error; after an error
// every read returns zero values, so decoders can read straight through and
// check r.err once.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errTruncated
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) u8() uint8 {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if p := r.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (r *reader) str8() string { return string(r.take(int(r.u8()))) }

func (r *reader) bytes16() []byte {
	p := r.take(int(r.u16()))
	if p == nil {
		return nil
	}
	return append([]byte(nil), p...)
}

func (r *reader) addr() netip.AddrPort {
	n := int(r.u8())
	if n != 0 && n != 4 && n != 16 {
		r.fail(fmt.Errorf("swim: bad address length %d", n))
		return netip.AddrPort{}
	}
	raw := r.take(n)
	port := r.u16()
	if r.err != nil {
		return netip.AddrPort{}
	}
	ip, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(ip, port)
}

func (r *reader) tags() map[string]string {
	n := int(r.u8())
	if n > maxTagCount {
		r.fail(fmt.Errorf("swim: %d tags exceed the limit of %d", n, maxTagCount))
		return nil
	}
	if n == 0 {
		return nil
	}
	t := make(map[string]string, n)
	for i := 0; i < n && r.err == nil; i++ {
		k := r.str8()
		t[k] = r.str8()
	}
	return t
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// ---- messages ----

// appendMsg appends one framed message (type, length, payload) to b.
func appendMsg(b []byte, t msgType, payload func(w *writer)) []byte {
	start := len(b)
	w := writer{b: append(b, byte(t), 0, 0)}
	payload(&w)
	n := len(w.b) - start - msgHeaderBytes
	binary.BigEndian.PutUint16(w.b[start+1:], uint16(n))
	return w.b
}

func encodePing(b []byte, m ping) []byte {
	return appendMsg(b, msgPing, func(w *writer) {
		w.u32(m.Seq)
		w.str8(m.Target)
		w.str8(m.Source)
	})
}

func encodePingReq(b []byte, m pingReq) []byte {
	return appendMsg(b, msgPingReq, func(w *writer) {
		w.u32(m.Seq)
		w.str8(m.Target)
		w.addr(m.TargetAddr)
		w.u8(boolByte(m.Nack))
		w.str8(m.Source)
	})
}

func encodeAck(b []byte, m ack) []byte {
	return appendMsg(b, msgAck, func(w *writer) { w.u32(m.Seq) })
}

func encodeNack(b []byte, m nack) []byte {
	return appendMsg(b, msgNack, func(w *writer) {
		w.u32(m.Seq)
		w.str8(m.From)
	})
}

func encodeAlive(b []byte, m alive) []byte {
	return appendMsg(b, msgAlive, func(w *writer) {
		w.u32(m.Incarnation)
		w.str8(m.Node)
		w.addr(m.Addr)
		w.tags(m.Tags)
	})
}

func encodeSuspect(b []byte, m suspect) []byte {
	return appendMsg(b, msgSuspect, func(w *writer) {
		w.u32(m.Incarnation)
		w.str8(m.Node)
		w.str8(m.From)
		w.str8(m.First)
	})
}

func encodeDead(b []byte, m dead) []byte {
	return appendMsg(b, msgDead, func(w *writer) {
		w.u32(m.Incarnation)
		w.str8(m.Node)
		w.str8(m.From)
		w.str8(m.First)
	})
}

func encodeLeaving(b []byte, m leaving) []byte {
	return appendMsg(b, msgLeaving, func(w *writer) {
		w.u32(m.Incarnation)
		w.str8(m.Node)
		w.str8(m.From)
		prune := uint8(0)
		if m.Prune {
			prune = 1
		}
		w.u8(prune)
	})
}

func encodeConflict(b []byte, m conflict) []byte {
	return appendMsg(b, msgConflict, func(w *writer) {
		w.str8(m.Node)
		w.addr(m.Holder)
		w.u32(m.HolderIncarnation)
		w.str8(m.From)
	})
}

func encodeUser(b []byte, m userMsg) []byte {
	return appendMsg(b, msgUser, func(w *writer) {
		w.u64(m.LTime)
		w.str8(m.Name)
		w.bytes16(m.Payload)
	})
}

// decodeMsg decodes one message payload of type t. Unknown types are an
// error: a newer peer's optional messages would need a new wire version.
func decodeMsg(t msgType, p []byte) (any, error) {
	r := reader{b: p}
	var m any
	switch t {
	case msgPing:
		m = ping{Seq: r.u32(), Target: r.str8(), Source: r.str8()}
	case msgPingReq:
		m = pingReq{Seq: r.u32(), Target: r.str8(), TargetAddr: r.addr(), Nack: r.u8() != 0, Source: r.str8()}
	case msgAck:
		m = ack{Seq: r.u32()}
	case msgNack:
		m = nack{Seq: r.u32(), From: r.str8()}
	case msgAlive:
		m = alive{Incarnation: r.u32(), Node: r.str8(), Addr: r.addr(), Tags: r.tags()}
	case msgSuspect:
		m = suspect{Incarnation: r.u32(), Node: r.str8(), From: r.str8(), First: r.str8()}
	case msgDead:
		m = dead{Incarnation: r.u32(), Node: r.str8(), From: r.str8(), First: r.str8()}
	case msgUser:
		m = userMsg{LTime: r.u64(), Name: r.str8(), Payload: r.bytes16()}
	case msgConflict:
		m = conflict{Node: r.str8(), Holder: r.addr(), HolderIncarnation: r.u32(), From: r.str8()}
	case msgLeaving:
		m = leaving{Incarnation: r.u32(), Node: r.str8(), From: r.str8(), Prune: r.u8() != 0}
	default:
		return nil, fmt.Errorf("swim: unknown message type %d", uint8(t))
	}
	if r.err != nil {
		return nil, fmt.Errorf("swim: decoding %v: %w", t, r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("swim: %v has %d trailing bytes", t, len(r.b))
	}
	return m, nil
}

// decodeBody decodes every framed message in a packet body. Any framing
// or decoding error rejects the whole packet: a packet is either understood
// completely or dropped and counted, never half applied.
func decodeBody(body []byte) ([]any, error) {
	var msgs []any
	for len(body) > 0 {
		if len(body) < msgHeaderBytes {
			return nil, errTruncated
		}
		t := msgType(body[0])
		n := int(binary.BigEndian.Uint16(body[1:]))
		if len(body) < msgHeaderBytes+n {
			return nil, fmt.Errorf("swim: %v claims %d bytes, %d left: %w", t, n, len(body)-msgHeaderBytes, errTruncated)
		}
		m, err := decodeMsg(t, body[msgHeaderBytes:msgHeaderBytes+n])
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
		body = body[msgHeaderBytes+n:]
	}
	return msgs, nil
}

func boolByte(v bool) uint8 {
	if v {
		return 1
	}
	return 0
}
