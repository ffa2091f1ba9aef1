package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"roster/catalog"
	"roster/httpapi/client"
)

// benchConn is the agent benchmarks' client: one HTTP/1.1 keep-alive
// connection over real TCP, used by one goroutine at a time, as a watcher
// in a process of its own has. It writes the request line and headers
// itself and parses each answer with net/http's own parser
// (http.ReadResponse), so the agent sees exactly what an http.Client
// sends; what it leaves out is http.Transport's machinery around the
// connection: a read and a write goroutine per connection and channel
// hand-offs per request. Ten thousand clients in this one process would
// otherwise spend more CPU than the agent spends serving them, on the
// same two cores, and the benchmark would measure its own client.
type benchConn struct {
	addr string // host:port
	host string // the Host header

	// mu guards conn (Close comes from another goroutine).
	mu     sync.Mutex
	conn   net.Conn
	closed bool

	br  *bufio.Reader
	req []byte       // the request being written, reused
	buf bytes.Buffer // the last body, reused
}

// benchDialer dials without TCP keep-alive probes (curl's default): on
// loopback they find nothing, and setting them is four system calls per
// connection the agent's figures do not need the client to pay.
var benchDialer = net.Dialer{Timeout: 30 * time.Second, KeepAlive: -1}

// newBenchConn returns a client of base ("http://host:port"); it dials on
// its first request and again after an error.
func newBenchConn(base string) *benchConn {
	addr := strings.TrimPrefix(base, "http://")
	return &benchConn{addr: addr, host: addr}
}

// get sends GET path (with its query) and returns the response (its body
// read) and the body, valid until the next call. A gzipped body stays
// gzipped.
func (c *benchConn) get(path string) (*http.Response, []byte, error) {
	conn, err := c.connect()
	if err != nil {
		return nil, nil, err
	}
	c.req = append(c.req[:0], "GET "...)
	c.req = append(c.req, path...)
	c.req = append(c.req, " HTTP/1.1\r\nHost: "...)
	c.req = append(c.req, c.host...)
	c.req = append(c.req, "\r\nUser-Agent: roster-bench\r\nAccept-Encoding: gzip\r\n\r\n"...)
	if _, err := conn.Write(c.req); err != nil {
		c.drop()
		return nil, nil, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.drop()
		return nil, nil, err
	}
	c.buf.Reset()
	_, err = c.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.drop()
	}
	return resp, c.buf.Bytes(), err
}

// connect returns the open connection or dials one.
func (c *benchConn) connect() (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, net.ErrClosed
	}
	if c.conn != nil {
		return c.conn, nil
	}
	conn, err := benchDialer.Dial("tcp", c.addr)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	if c.br == nil {
		c.br = bufio.NewReaderSize(conn, 1024)
	} else {
		c.br.Reset(conn)
	}
	return conn, nil
}

// drop closes the connection after an error; the next request redials.
func (c *benchConn) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// Close closes the connection for good: a request in flight fails.
func (c *benchConn) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// closeWith closes c when ctx ends (no goroutine until then).
func (c *benchConn) closeWith(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, c.Close)
}

// mustOK fails unless the answer is a 200.
func mustOK(path string, resp *http.Response, body []byte, err error) error {
	switch {
	case err != nil:
		return fmt.Errorf("GET %s: %w", path, err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s %s", path, resp.Status, body)
	}
	return nil
}

// compactRange reads the range (From, To] a compact delta covers from its
// opening (client/compact.go), without decoding the changes: the light
// watchers keep no mirror to apply them to.
func compactRange(body []byte) (from, to uint64, ok bool) {
	if len(body) < 1 || body[0] != 0x02 {
		return 0, 0, false
	}
	_, k := binary.Uvarint(body[1:]) // the hash scheme
	if k <= 0 {
		return 0, 0, false
	}
	body = body[1+k:]
	from, n := binary.Uvarint(body)
	if n <= 0 {
		return 0, 0, false
	}
	span, m := binary.Uvarint(body[n:])
	return from, from + span, m > 0
}

// TestCompactRange_ReadsTheClientsEncoding keeps compactRange in step with
// the compact form's opening, which the benchmarks alone would not notice.
func TestCompactRange_ReadsTheClientsEncoding(t *testing.T) {
	d := catalog.Delta{From: 300, To: 1000, Hash: strings.Repeat("ab", 32), HashScheme: catalog.HashScheme}
	b, err := client.AppendCompactDelta(nil, &d)
	if err != nil {
		t.Fatal(err)
	}
	if from, to, ok := compactRange(b); !ok || from != d.From || to != d.To {
		t.Fatalf("compactRange = (%d, %d], %v; want (%d, %d]", from, to, ok, d.From, d.To)
	}
}
