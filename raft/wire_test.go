package raft

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/rpc"
	"reflect"
	"strings"
	"testing"
	"time"

	"roster/internal/testkit"
)

// wireSamples is one message of every shape the transport carries.
func wireSamples() []Message {
	conf := Configuration{Servers: []Server{{ID: "a", Address: "127.0.0.1:1"}, {ID: "b", Address: "127.0.0.1:2", Suffrage: Nonvoter}}}
	return []Message{
		{Type: MsgApp, From: "a", To: "b", Term: 7, Index: 41, LogTerm: 6, Commit: 40, Entries: []Entry{
			{Index: 42, Term: 7, Type: EntryCommand, Data: bytes.Repeat([]byte("x"), 100)},
			{Index: 43, Term: 7, Type: EntryNoop},
			{Index: 44, Term: 7, Type: EntryConfiguration, Data: encodeConfiguration(conf)},
		}},
		{Type: MsgAppResp, From: "b", To: "a", Term: 7, Index: 41, LogTerm: 3, Reject: true, RejectHint: 30},
		{Type: MsgHeartbeat, From: "a", To: "b", Term: 1 << 40, Commit: 1<<64 - 1, Context: 99},
		{Type: MsgHeartbeatResp, From: "b", To: "a", Term: 9, Context: 99},
		{Type: MsgVote, From: "c", To: "a", Term: 8, Index: 50, LogTerm: 7, Transfer: true},
		{Type: MsgPreVoteResp, From: "a", To: "c", Term: 8},
		{Type: MsgTimeoutNow, From: "a", To: "b", Term: 8},
		{Type: MsgSnap, From: "a", To: "b", Term: 9, Snapshot: &SnapshotMeta{ID: "9-100-1", Index: 100, Term: 9,
			Configuration: conf, ConfigurationIndex: 3, Size: 1 << 20, SHA256: strings.Repeat("ab", 32)},
			Chunk: []byte("state bytes"), ChunkOffset: 262144, ChunkLast: true},
		{Type: MsgSnapResp, From: "b", To: "a", Term: 9, Index: 100},
	}
}

func TestWire_RoundTripEveryMessageShape(t *testing.T) {
	for _, m := range wireSamples() {
		b, err := appendRequestFrame(nil, 12345, wireAppendEntries, &m)
		if err != nil {
			t.Fatal(err)
		}
		n, err := parseFrameHeader(b[:frameHeaderLen])
		if err != nil || n != len(b)-frameHeaderLen {
			t.Fatalf("%s: header length %d, err %v; frame is %d bytes", m.Type, n, err, len(b))
		}
		r := wireReader{b: b[frameHeaderLen:], names: &nameCache{}}
		seq, method, err := r.requestHead()
		if err != nil || seq != 12345 || method != wireAppendEntries {
			t.Fatalf("%s: head = %d %d %v", m.Type, seq, method, err)
		}
		var got Message
		if err := r.message(&got); err != nil {
			t.Fatalf("%s: %v", m.Type, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%s round trip:\n got %+v\nwant %+v", m.Type, got, m)
		}
		if (len(m.Entries) > 0 && m.Entries[0].Data != nil || m.Chunk != nil) != r.aliased {
			t.Fatalf("%s: aliased = %v", m.Type, r.aliased)
		}
	}
}

// A server ID decoded twice on one connection is the same string: no
// allocation per message for From and To.
func TestWire_NamesAreInterned(t *testing.T) {
	names := &nameCache{}
	m := Message{Type: MsgHeartbeatResp, From: "server-b", To: "server-a", Term: 1}
	b, _ := appendResponseFrame(nil, 1, "", &m)
	allocs := testing.AllocsPerRun(100, func() {
		r := wireReader{b: b[frameHeaderLen:], names: names}
		r.responseHead()
		var got Message
		if err := r.message(&got); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("decoding a heartbeat answer allocates %.0f times, want 0", allocs)
	}
}

func TestWire_ErrorResponse(t *testing.T) {
	b, _ := appendResponseFrame(nil, 7, "boom", nil)
	r := wireReader{b: b[frameHeaderLen:]}
	seq, msg, err := r.responseHead()
	if err != nil || seq != 7 || msg != "boom" || len(r.b) != 0 {
		t.Fatalf("got %d %q %v, %d bytes left", seq, msg, err, len(r.b))
	}
}

func TestWire_VersionMismatchNamesGob(t *testing.T) {
	_, err := parseFrameHeader([]byte{0x1f, 0, 0, 0, 0}) // how a gob stream starts
	if err == nil || !strings.Contains(err.Error(), "gob") || !strings.Contains(err.Error(), "same roster release") {
		t.Fatalf("err = %v, want it to name gob and the fix", err)
	}
	if _, err := parseFrameHeader([]byte{wireVersion, 0xff, 0xff, 0xff, 0xff}); !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("a 4 GiB length: %v, want errFrameTooLarge", err)
	}
}

// FuzzWireDecode: whatever arrives off the wire, decoding returns a
// message or an error and never panics or allocates beyond the frame.
func FuzzWireDecode(f *testing.F) {
	for _, m := range wireSamples() {
		b, _ := appendRequestFrame(nil, 3, wireAppendEntries, &m)
		f.Add(b[frameHeaderLen:])
		b, _ = appendResponseFrame(nil, 3, "", &m)
		f.Add(b[frameHeaderLen:])
	}
	f.Add([]byte{1, 1, byte(MsgApp), 0, 1, 'a', 0, 1, 1, 1, 1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := wireReader{b: b, names: &nameCache{}}
		if _, _, err := r.requestHead(); err == nil {
			var m Message
			if err := r.message(&m); err == nil {
				// What decoded must encode back to the same bytes' meaning.
				again, err := appendRequestFrame(nil, 1, 1, &m)
				if err != nil {
					t.Fatal(err)
				}
				r2 := wireReader{b: again[frameHeaderLen:]}
				r2.requestHead()
				var m2 Message
				if err := r2.message(&m2); err != nil || !reflect.DeepEqual(m, m2) {
					t.Fatalf("re-encoding changed the message: %v\n%+v\n%+v", err, m, m2)
				}
			}
		}
		r = wireReader{b: b}
		if _, _, err := r.responseHead(); err == nil {
			var m Message
			r.message(&m)
		}
	})
}

// A peer that writes garbage, or speaks gob, has its connection dropped
// and counted; the server keeps serving others.
func TestNetTransport_DropsMalformedAndMismatchedPeers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := ListenNetTransport(l, NetTransportConfig{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	go answerAll(tr)

	// An old release: net/rpc with gob.
	gobClient, err := rpc.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var resp Message
	if err := gobClient.Call("Raft.AppendEntries", &Message{Type: MsgHeartbeat, From: "old", Term: 1}, &resp); err == nil {
		t.Fatal("a gob call was answered")
	}
	gobClient.Close()

	// A frame of the right version whose message is cut short: answered
	// with an error, the connection stays usable.
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bad, _ := beginFrame(nil)
	bad = append(bad, 5, wireAppendEntries, byte(MsgHeartbeat), 0, 200)
	binary.LittleEndian.PutUint32(bad[1:], uint32(len(bad)-frameHeaderLen))
	good, _ := appendRequestFrame(nil, 6, wireAppendEntries, &Message{Type: MsgHeartbeat, From: "new", Term: 1})
	if _, err := conn.Write(append(bad, good...)); err != nil {
		t.Fatal(err)
	}
	fr := newFrameReader(conn)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	answers := map[uint64]string{}
	for len(answers) < 2 {
		r, err := fr.next()
		if err != nil {
			t.Fatal(err)
		}
		seq, msg, err := r.responseHead()
		if err != nil {
			t.Fatal(err)
		}
		answers[seq] = msg
	}
	if answers[5] == "" || answers[6] != "" {
		t.Fatalf("answers = %v, want an error for 5 and a reply for 6", answers)
	}
	testkit.WaitFor(t, 5*time.Second, "both bad inputs counted", func() error {
		if tr.Malformed() < 2 {
			return errors.New("not yet")
		}
		return nil
	})
}

// answerAll plays the node: it answers every request.
func answerAll(tr *NetTransport) {
	for r := range tr.Consumer() {
		m := r.Message
		r.Respond(Message{Type: m.Type.Response(), From: "srv", To: m.From, Term: m.Term})
	}
}

// The other direction: this release dialing a server of an older release
// (net/rpc with gob), which hangs up on frames it cannot parse. The
// client names the likely cause instead of redialing in silence.
func TestNetTransport_OldServerNamedInLog(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	old := rpc.NewServer()
	if err := old.RegisterName(rpcServiceName, &gobRaft{}); err != nil {
		t.Fatal(err)
	}
	go old.Accept(l)
	logs := &testkit.LockedBuffer{}
	tr, err := NewNetTransport(NetTransportConfig{LocalAddr: "new", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	testkit.WaitFor(t, 5*time.Second, "a log line naming an older release", func() error {
		tr.Send(l.Addr().String(), Message{Type: MsgHeartbeat, From: "new", Term: 1})
		if !strings.Contains(logs.String(), "older roster release") {
			return errors.New("not logged yet")
		}
		return nil
	})
}

// gobRaft is the Raft service as an older release served it.
type gobRaft struct{}

func (gobRaft) AppendEntries(req *Message, resp *Message) error {
	*resp = Message{Type: req.Type.Response(), From: "old", Term: req.Term}
	return nil
}

// Entry data is decoded without a copy, pointing into the frame's buffer:
// the next frame must then land in a fresh buffer, never over entries the
// node may still hold. Frames without entries reuse the buffer.
func TestWire_DecodedEntriesSurviveTheNextFrame(t *testing.T) {
	var stream []byte
	for i, fill := range []string{"a", "b"} {
		m := Message{Type: MsgApp, From: "l", Term: 1, Index: uint64(i), Entries: []Entry{
			{Index: uint64(i) + 1, Term: 1, Data: bytes.Repeat([]byte(fill), 100)}}}
		stream, _ = appendRequestFrame(stream, uint64(i), wireAppendEntries, &m)
	}
	hb := Message{Type: MsgHeartbeat, From: "l", Term: 1}
	for i := range 2 {
		stream, _ = appendRequestFrame(stream, uint64(i+2), wireAppendEntries, &hb)
	}
	fr := newFrameReader(bytes.NewReader(stream))
	var kept []Message
	var hbBuf []byte
	for range 4 {
		r, err := fr.next()
		if err != nil {
			t.Fatal(err)
		}
		r.requestHead()
		var m Message
		if err := r.message(&m); err != nil {
			t.Fatal(err)
		}
		fr.release(&r)
		if m.Type == MsgApp {
			kept = append(kept, m)
			continue
		}
		if hbBuf != nil && &fr.buf[0] != &hbBuf[0] {
			t.Fatal("a frame without entries did not reuse the buffer")
		}
		hbBuf = fr.buf
	}
	for i, fill := range []string{"a", "b"} {
		if got := kept[i].Entries[0].Data; !bytes.Equal(got, bytes.Repeat([]byte(fill), 100)) {
			t.Fatalf("entry %d was overwritten by a later frame: %q", i, got)
		}
	}
}
