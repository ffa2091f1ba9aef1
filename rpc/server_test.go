package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"roster/internal/fanout"
	"roster/internal/testkit"
)

type pingOnly struct{}

func (pingOnly) Ping(args struct{}, reply *struct{}) error { return nil }

// startServer serves cfg on 127.0.0.1:0 with a "Status.Ping" endpoint;
// setup may Register or Handle more before Serve.
func startServer(t testing.TB, cfg Config, setup func(*Server)) *Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Register("Status", pingOnly{}); err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	<-srv.Ready()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv
}

func TestServer_RoutesByProtocolByte(t *testing.T) {
	srv := startServer(t, Config{}, func(s *Server) {
		err := s.Handle(ProtoRaft, func(c net.Conn) { io.Copy(c, c) })
		if err != nil {
			t.Fatal(err)
		}
	})
	addr := srv.Addr().String()
	conn, err := DialProtocol(ctxTimeout(t, 5*time.Second), nil, addr, ProtoRaft)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("append-entries"))
	got := make([]byte, len("append-entries"))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != "append-entries" {
		t.Fatalf("raft handler echoed %q, %v", got, err)
	}
	if err := newClient(t, PoolConfig{}).Call(ctxTimeout(t, 5*time.Second), addr, "Status.Ping", struct{}{}, &struct{}{}); err != nil {
		t.Fatalf("net/rpc on the same listener: %v", err)
	}
	testkit.WaitFor(t, 5*time.Second, "per-protocol counters", func() error {
		if st := srv.Stats(); st.ByProtocol[ProtoRaft] != 1 || st.ByProtocol[ProtoRPC] != 1 {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
}

// expectClosed reads from conn until the server closes it.
func expectClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, conn); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("server did not close the connection")
		}
	}
}

func TestServer_UnknownProtocolDroppedAndCounted(t *testing.T) {
	var hub fanout.Hub[Event]
	events := hub.Subscribe(16)
	srv := startServer(t, Config{Events: &hub}, nil)
	for _, b := range []byte{0x00, 0x7f, byte(ProtoSnapshot)} { // snapshot: reserved, nothing registered
		conn, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte{b, 'x', 'y'})
		expectClosed(t, conn)
		conn.Close()
	}
	testkit.WaitFor(t, 5*time.Second, "unknown protocol count", func() error {
		if n := srv.Stats().UnknownProtocol; n != 3 {
			return fmt.Errorf("UnknownProtocol = %d, want 3", n)
		}
		return nil
	})
	for _, want := range []Protocol{0x00, 0x7f, ProtoSnapshot} {
		if e := <-events.C; e.Kind != EventUnknownProtocol || e.Protocol != want {
			t.Fatalf("event %+v, want unknown-protocol %s", e, want)
		}
	}
}

func TestServer_HandshakeTimeoutClosesSilentConnection(t *testing.T) {
	srv := startServer(t, Config{HandshakeTimeout: 100 * time.Millisecond}, nil)
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	expectClosed(t, conn)
	testkit.WaitFor(t, 5*time.Second, "handshake timeout count", func() error {
		if st := srv.Stats(); st.HandshakeTimeouts != 1 || st.Active != 0 {
			return fmt.Errorf("stats %+v, want 1 handshake timeout and no active connection", st)
		}
		return nil
	})
}

func TestServer_MalformedFramesAreDroppedAndCounted(t *testing.T) {
	srv := startServer(t, Config{MaxFrameBytes: 1 << 10}, nil)
	rnd := testkit.Rand(t)
	inputs := [][]byte{
		{0xfc, 0x7f, 0xff, 0xff, 0xff}, // announces a 2 GiB message
		{0x80},                         // impossible length prefix
		append([]byte{0x05}, "\xff\xff\xff\xff\xff"...), // garbage gob
	}
	for range 20 {
		b := make([]byte, rnd.IntN(200)+1)
		for i := range b {
			b[i] = byte(rnd.UintN(256))
		}
		inputs = append(inputs, b)
	}
	for _, in := range inputs {
		conn, err := DialProtocol(ctxTimeout(t, 5*time.Second), nil, srv.Addr().String(), ProtoRPC)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write(in)
		conn.(*net.TCPConn).CloseWrite()
		expectClosed(t, conn)
		conn.Close()
	}
	testkit.WaitFor(t, 5*time.Second, "malformed frames counted", func() error {
		if st := srv.Stats(); st.MalformedFrames < 3 || st.Active != 0 {
			return fmt.Errorf("stats %+v, want >= 3 malformed and no active connection", st)
		}
		return nil
	})
	if err := newClient(t, PoolConfig{}).Call(ctxTimeout(t, 5*time.Second), srv.Addr().String(), "Status.Ping", struct{}{}, &struct{}{}); err != nil {
		t.Fatalf("server unusable after malformed input: %v", err)
	}
}

// A client resetting its connection (what a pool does when it evicts one)
// is the end of a connection, not a malformed frame.
func TestServer_ConnectionResetIsNotMalformed(t *testing.T) {
	srv := startServer(t, Config{}, nil)
	conn, err := DialProtocol(ctxTimeout(t, 5*time.Second), nil, srv.Addr().String(), ProtoRPC)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "the server to route the connection", func() error {
		if n := srv.Stats().ByProtocol[ProtoRPC]; n != 1 {
			return fmt.Errorf("%d rpc connections routed", n)
		}
		return nil
	})
	conn.(*net.TCPConn).SetLinger(0) // close with RST
	conn.Close()
	testkit.WaitFor(t, 5*time.Second, "the server to drop the connection", func() error {
		if a := srv.Stats().Active; a != 0 {
			return fmt.Errorf("%d active", a)
		}
		return nil
	})
	if st := srv.Stats(); st.MalformedFrames != 0 {
		t.Fatalf("stats %+v: a reset was counted as a malformed frame", st)
	}
}

func TestServer_HandleRejectsOwnAndDuplicateProtocols(t *testing.T) {
	srv, err := NewServer(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle(ProtoRPC, func(net.Conn) {}); err == nil {
		t.Fatal("Handle(ProtoRPC) accepted; the server serves it itself")
	}
	if err := srv.Handle(ProtoRaft, func(net.Conn) {}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle(ProtoRaft, func(net.Conn) {}); err == nil {
		t.Fatal("second handler for ProtoRaft accepted")
	}
}

func TestServer_ShutdownClosesHandedOffConnections(t *testing.T) {
	entered := make(chan struct{})
	srv, err := NewServer(Config{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle(ProtoRaft, func(c net.Conn) {
		close(entered)
		io.Copy(io.Discard, c) // blocks until the connection is closed
	})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(l) }()
	conn, err := DialProtocol(ctxTimeout(t, 5*time.Second), nil, l.Addr().String(), ProtoRaft)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	<-entered
	if err := srv.Shutdown(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := <-serveErr; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
	expectClosed(t, conn)
}

func TestConfig_ValidateNamesField(t *testing.T) {
	if err := (Config{HandshakeTimeout: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "HandshakeTimeout") {
		t.Fatalf("got %v", err)
	}
	if err := (Config{MaxFrameBytes: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "MaxFrameBytes") {
		t.Fatalf("got %v", err)
	}
}

// FuzzServerConn feeds arbitrary bytes to a server connection: it must
// close the connection or answer, never panic or hang.
func FuzzServerConn(f *testing.F) {
	f.Add([]byte{0x01, 0xfc, 0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0x01, 0x05, 0xff, 0x81, 0x03, 0x01, 0x01})
	f.Add([]byte{0x02})
	f.Add([]byte{0xff, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		srv, err := NewServer(Config{Logger: quietLogger(), MaxFrameBytes: 1 << 16})
		if err != nil {
			t.Fatal(err)
		}
		srv.Register("Status", pingOnly{})
		client, server := net.Pipe()
		if !srv.track(server) {
			t.Fatal("track refused")
		}
		done := make(chan struct{})
		go func() {
			srv.serveConn(server)
			close(done)
		}()
		go io.Copy(io.Discard, client) // drain any response
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		client.Write(data)
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("serveConn did not return after the peer closed")
		}
	})
}

// FuzzFrameGuard: the framing check must not depend on how reads are
// chunked, and must agree on the total bytes passed.
func FuzzFrameGuard(f *testing.F) {
	f.Add([]byte{0x03, 1, 2, 3, 0xfe, 0x01, 0x00})
	f.Add([]byte{0xfc, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := &frameGuard{r: bytes.NewReader(data), maxFrameBytes: 512}
		_, errWhole := io.ReadAll(whole)
		split := &frameGuard{r: &oneByteReader{data: data}, maxFrameBytes: 512}
		_, errSplit := io.ReadAll(split)
		if (errWhole == nil) != (errSplit == nil) {
			t.Fatalf("chunking changed the verdict: whole=%v split=%v", errWhole, errSplit)
		}
	})
}

type oneByteReader struct{ data []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.data[0]
	r.data = r.data[1:]
	return 1, nil
}

// parker is an endpoint that waits for its context, as a blocking query
// does.
type parker struct {
	ctx    context.Context
	parked chan struct{}
}

func (p *parker) Park(args int, reply *int) error {
	p.parked <- struct{}{}
	<-p.ctx.Done()
	return p.ctx.Err()
}

// Handlers waiting on the server's Context end at Shutdown, so Shutdown
// does not hang until a blocking query's wait runs out.
func TestServer_ShutdownEndsHandlersParkedOnContext(t *testing.T) {
	srv, err := NewServer(Config{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	p := &parker{ctx: srv.Context(), parked: make(chan struct{}, 1)}
	srv.Register("Parker", p)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	<-srv.Ready()
	pool := newClient(t, PoolConfig{})
	go pool.Call(ctxTimeout(t, 30*time.Second), srv.Addr().String(), "Parker.Park", 1, new(int))
	select {
	case <-p.parked:
	case <-time.After(10 * time.Second):
		t.Fatal("handler never started")
	}
	if err := srv.Shutdown(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatalf("Shutdown with a parked handler: %v", err)
	}
}

// Shutdown before Serve must not leave Ready waiters hanging, and the
// late Serve reports ErrServerClosed like any other after Shutdown.
func TestServer_ShutdownBeforeServe(t *testing.T) {
	srv, err := NewServer(Config{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("Ready never closed after Shutdown")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v, want ErrServerClosed", err)
	}
}
