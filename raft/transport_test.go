package raft

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/rpc"
	"strings"
	"testing"
	"time"

	"roster/internal/testkit"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// The rpc package shares one listener between raft and its own endpoints,
// choosing by a first protocol byte. This test plays that role: the
// server reads the byte and hands the rest of the connection to
// ServeConn; the client's injected Dial writes the byte first.
func TestNetTransport_ProtocolByteMultiplexing(t *testing.T) {
	const raftByte = 0x01
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server, err := NewNetTransport(NetTransportConfig{LocalAddr: l.Addr().String(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(conn)
				b, err := br.ReadByte()
				if err != nil || b != raftByte {
					conn.Close()
					return
				}
				server.ServeConn(&bufferedConn{Conn: conn, r: br})
			}()
		}
	}()
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		if _, err := conn.Write([]byte{raftByte}); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
	client, err := NewNetTransport(NetTransportConfig{LocalAddr: "client", Dial: dial, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// The "node" behind server answers every request.
	go func() {
		for r := range server.Consumer() {
			m := r.Message
			r.Respond(Message{Type: m.Type.Response(), From: "srv", To: m.From, Term: m.Term, Index: 42})
		}
	}()
	client.Send(l.Addr().String(), Message{Type: MsgVote, From: "cli", To: "srv", Term: 3})
	select {
	case r := <-client.Consumer():
		if r.Message.Type != MsgVoteResp || r.Message.Index != 42 {
			t.Fatalf("reply = %+v", r.Message)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reply through the multiplexed connection")
	}
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Register puts the Raft service on a caller's rpc.Server.
func TestNetTransport_RegisterOnSharedServer(t *testing.T) {
	tr, err := NewNetTransport(NetTransportConfig{LocalAddr: "x", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	s := rpc.NewServer()
	if err := tr.Register(s); err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	go s.ServeConn(a)
	go func() {
		r := <-tr.Consumer()
		r.Respond(Message{Type: MsgHeartbeatResp, From: "x", To: r.Message.From, Term: r.Message.Term})
	}()
	c := rpc.NewClient(b)
	defer c.Close()
	var resp Message
	if err := c.Call("Raft.AppendEntries", &Message{Type: MsgHeartbeat, From: "y", Term: 1}, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Type != MsgHeartbeatResp {
		t.Fatalf("resp = %+v", resp)
	}
}

// A peer that accepts connections but never answers must not pin calls:
// the per-call deadline drops them and the connection is replaced.
func TestNetTransport_DeadlineOnSilentPeer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c // read nothing, answer nothing
		}
	}()
	tr, err := NewNetTransport(NetTransportConfig{LocalAddr: "me", Timeout: 100 * time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.Send(l.Addr().String(), Message{Type: MsgHeartbeat, From: "me", Term: 1})
	testkit.WaitFor(t, 5*time.Second, "the silent call to be dropped", func() error {
		if tr.Dropped() == 0 {
			return errors.New("still waiting")
		}
		return nil
	})
	tr.Send(l.Addr().String(), Message{Type: MsgHeartbeat, From: "me", Term: 1})
	testkit.WaitFor(t, 5*time.Second, "a fresh connection after the deadline", func() error {
		if len(accepted) < 2 {
			return errors.New("no redial yet")
		}
		return nil
	})
	for len(accepted) > 0 {
		(<-accepted).Close()
	}
}

// Server side: a node that never answers makes the handler give up at the
// deadline instead of holding the call forever.
func TestNetTransport_HandlerDeadline(t *testing.T) {
	tr, err := NewNetTransport(NetTransportConfig{LocalAddr: "x", Timeout: 50 * time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var resp Message
	err = tr.handle(&Message{Type: MsgVote, From: "y", Term: 1}, &resp)
	if !errors.Is(err, errNoAnswer) {
		t.Fatalf("handle with no node: %v, want errNoAnswer", err)
	}
	if err := tr.handle(&Message{Type: MsgVoteResp, From: "y"}, &resp); err == nil {
		t.Fatal("a response sent as a request was accepted")
	}
}

func TestConfig_ValidateNamesField(t *testing.T) {
	cases := map[string]Config{
		"Config.ID":              {},
		"Config.TickInterval":    {ID: "a", TickInterval: time.Microsecond},
		"Config.ElectionTimeout": {ID: "a", HeartbeatTimeout: time.Second, ElectionTimeout: time.Second},
	}
	for field, cfg := range cases {
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate(%+v) = %v, want it to name %s", cfg, err, field)
		}
	}
	if err := DefaultConfig("a").Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

// FuzzCoreStep feeds arbitrary messages to a core: it may reject them but
// must never panic or break its own invariants.
func FuzzCoreStep(f *testing.F) {
	f.Add(uint8(MsgApp), "b", uint64(2), uint64(1), uint64(1), uint64(2), uint64(2), []byte("x"), uint64(5), false, uint64(0))
	f.Add(uint8(MsgVote), "c", uint64(3), uint64(9), uint64(2), uint64(0), uint64(0), []byte{}, uint64(0), false, uint64(0))
	f.Add(uint8(MsgAppResp), "b", uint64(2), uint64(1), uint64(1), uint64(0), uint64(0), []byte{}, uint64(0), true, uint64(1))
	f.Fuzz(func(t *testing.T, typ uint8, from string, term, index, logTerm, eIndex, eTerm uint64, data []byte, commit uint64, reject bool, hint uint64) {
		c := newFuzzCore(t)
		m := Message{Type: MessageType(typ), From: from, Term: term, Index: index, LogTerm: logTerm,
			Commit: commit, Reject: reject, RejectHint: hint}
		if len(data) > 0 {
			m.Entries = []Entry{{Index: eIndex, Term: eTerm, Type: EntryCommand, Data: data}}
		}
		c.Step(m)
		c.Tick()
		rd := c.Ready()
		if c.CommitIndex() > c.LastIndex() {
			t.Fatalf("commit %d beyond last index %d", c.CommitIndex(), c.LastIndex())
		}
		for i, e := range rd.Entries {
			if i > 0 && e.Index != rd.Entries[i-1].Index+1 {
				t.Fatalf("non-contiguous entries to persist: %+v", rd.Entries)
			}
		}
	})
}

func newFuzzCore(t *testing.T) *Core {
	entries := []Entry{confEntry("a", "b", "c"), {Index: 2, Term: 2, Type: EntryNoop}}
	c, err := NewCore(CoreConfig{ID: "a", ElectionTicks: 10, HeartbeatTicks: 1, MaxEntriesPerMsg: 10, MaxInflight: 4,
		PreVote: true, CheckQuorum: true}, HardState{Term: 2}, entries, testRand(1))
	if err != nil {
		t.Fatal(err)
	}
	c.Campaign()
	return c
}

// FuzzDecodeEntry: stored bytes never crash the loader.
func FuzzDecodeEntry(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 1, 'x'})
	f.Add([]byte{1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeEntry(1, b)
		decodeHardState(b)
		decodeConfiguration(b)
	})
}

// A peer that stops reading answers gets its connection closed once they
// pass maxPendingBytes, rather than answers dropped that its calls would
// wait for until the watchdog closed the connection later.
func TestNetTransport_AnswerBacklogClosesTheConnection(t *testing.T) {
	tr, err := NewNetTransport(NetTransportConfig{LocalAddr: "x", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	server, peer := net.Pipe() // the peer never reads: the writer blocks
	defer peer.Close()
	c := newWireServerCodec(tr, server)
	defer c.Close()
	// Answers the writer could not send (it is woken only by queue).
	c.wmu.Lock()
	c.pending = make([]byte, maxPendingBytes+1)
	c.wmu.Unlock()
	c.queue(1, "", &Message{Type: MsgAppResp, From: "x", Term: 1})
	testkit.WaitFor(t, 5*time.Second, "the connection closed", func() error {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		if !c.closed {
			return fmt.Errorf("still open with %d bytes of answers pending", len(c.pending))
		}
		return nil
	})
	if n := tr.Dropped(); n == 0 {
		t.Fatal("the answer past the limit was not counted as dropped")
	}
}
