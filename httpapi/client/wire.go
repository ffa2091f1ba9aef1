package client

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// wireCounter counts the bytes a Watcher's connections read: whole
// responses, headers included, which is what a watcher really pays per
// pull (a delta's headers can outweigh its body).
type wireCounter struct {
	n atomic.Int64
}

// total is the bytes read so far (0 for a nil counter).
func (c *wireCounter) total() int64 {
	if c == nil {
		return 0
	}
	return c.n.Load()
}

// transport is http.DefaultTransport's configuration with counted
// connections.
func (c *wireCounter) transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countedConn{Conn: conn, n: &c.n}, nil
	}
	return tr
}

type countedConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}
