package agent

import (
	"net"
	"testing"
	"time"
)

func TestListenHTTP_SocketsShareOnePortAndABusyPortIsRefused(t *testing.T) {
	primary, extra, err := listenHTTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(append(extra, primary))
	for _, l := range extra {
		if l.Addr().String() != primary.Addr().String() {
			t.Fatalf("queue on %s, primary on %s: want one port", l.Addr(), primary.Addr())
		}
	}
	// Every connection is accepted by one of the sockets.
	accepted := make(chan struct{}, 8)
	for _, l := range append(extra, primary) {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
				accepted <- struct{}{}
			}
		}()
	}
	for range 8 {
		c, err := net.Dial("tcp", primary.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	for i := range 8 {
		select {
		case <-accepted:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of 8 connections accepted", i)
		}
	}
	// A second agent on the same port must fail, not join the sockets.
	if p2, extra2, err := listenHTTP(primary.Addr().String()); err == nil {
		closeAll(append(extra2, p2))
		t.Fatal("a second bind of a port the HTTP API holds succeeded")
	}
}
