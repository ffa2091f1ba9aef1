package rpc

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// A protocol served through a StreamListener behaves like its own port:
// Accept gets connections dialed with DialProtocol, in both directions.
func TestStreamListener_ServesProtocolAsListener(t *testing.T) {
	var sl *StreamListener
	srv := startServer(t, Config{}, func(s *Server) {})
	sl = NewStreamListener(srv.Addr())
	if err := srv.Handle(ProtoRaft, sl.Handoff); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() {
		c, err := sl.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, io.LimitReader(c, 5))
		served <- err
	}()
	conn, err := DialProtocol(ctxTimeout(t, 5*time.Second), nil, srv.Addr().String(), ProtoRaft)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("hello"))
	got := make([]byte, 5)
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != "hello" {
		t.Fatalf("echo %q, %v", got, err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	expectClosed(t, conn) // the consumer closed it, so the server did too
	if sl.Addr().String() != srv.Addr().String() {
		t.Fatalf("Addr %v, want the shared listener's %v", sl.Addr(), srv.Addr())
	}
}

func TestStreamListener_CloseUnblocksAcceptAndHandoff(t *testing.T) {
	srv := startServer(t, Config{}, nil)
	sl := NewStreamListener(srv.Addr())
	srv.Handle(ProtoRaft, sl.Handoff)
	// Nobody accepts: the dialed connection waits in Handoff.
	conn, err := DialProtocol(ctxTimeout(t, 5*time.Second), nil, srv.Addr().String(), ProtoRaft)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sl.Close()
	sl.Close() // idempotent
	if _, err := sl.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
	expectClosed(t, conn)
}
