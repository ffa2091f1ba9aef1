package raft

import (
	"bufio"
	"encoding/gob"
	"io"
	"net/rpc"
	"sync"
	"sync/atomic"
	"time"
)

// orderedCodec is net/rpc's gob server codec with one change: a request
// is handed to the node as soon as it is decoded, on the connection's
// reading goroutine, so the node sees each peer's requests in the order
// the peer sent them.
//
// net/rpc runs every method call on a goroutine of its own. Left to race
// there, pipelined AppendEntries reach the node reordered: the follower
// rejects the one that arrives before its predecessor (a gap in its log),
// and the leader falls back to probing one message at a time — with a
// deep pipeline, most of the time. Delivering in order makes pipelining
// pay off instead.
//
// The method goroutine (NetTransport.handle) then only waits for the
// node's answer, which it finds through the decoded body's pointer: net/rpc
// passes the same pointer to ReadRequestBody and to the method.
type orderedCodec struct {
	t      *NetTransport
	rwc    io.ReadWriteCloser
	dec    *gob.Decoder
	enc    *gob.Encoder
	encBuf *bufio.Writer
	closed bool
}

func newOrderedCodec(t *NetTransport, conn io.ReadWriteCloser) *orderedCodec {
	buf := bufio.NewWriter(conn)
	return &orderedCodec{t: t, rwc: conn, dec: gob.NewDecoder(conn), enc: gob.NewEncoder(buf), encBuf: buf}
}

func (c *orderedCodec) ReadRequestHeader(r *rpc.Request) error { return c.dec.Decode(r) }

func (c *orderedCodec) ReadRequestBody(body any) error {
	if err := c.dec.Decode(body); err != nil {
		return err
	}
	if m, ok := body.(*Message); ok && m.Type.IsRequest() {
		c.t.deliver(m)
	}
	return nil
}

func (c *orderedCodec) WriteResponse(r *rpc.Response, body any) error {
	if err := c.enc.Encode(r); err != nil {
		if c.encBuf.Flush() == nil {
			c.Close() // the stream is out of sync; drop the connection
		}
		return err
	}
	if err := c.enc.Encode(body); err != nil {
		if c.encBuf.Flush() == nil {
			c.Close()
		}
		return err
	}
	return c.encBuf.Flush()
}

func (c *orderedCodec) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	return c.rwc.Close()
}

// deliver hands req to the node and files the channel its answer will
// arrive on for the method goroutine. A request the node cannot take
// within the timeout is filed with a nil channel: handle answers
// errNoAnswer.
func (t *NetTransport) deliver(req *Message) {
	ch := make(chan Message, 1)
	r := RPC{Message: *req, respond: func(m Message) {
		select {
		case ch <- m:
		default:
		}
	}}
	timer := time.NewTimer(t.cfg.Timeout)
	defer timer.Stop()
	select {
	case t.consumer <- r:
	case <-timer.C:
		ch = nil
	case <-t.closed:
		ch = nil
	}
	t.answersMu.Lock()
	t.answers[req] = ch
	t.answersMu.Unlock()
}

// takeAnswer returns the channel deliver filed for req (ok false if req
// did not come through an orderedCodec, e.g. a shared rpc.Server).
func (t *NetTransport) takeAnswer(req *Message) (ch chan Message, ok bool) {
	t.answersMu.Lock()
	ch, ok = t.answers[req]
	delete(t.answers, req)
	t.answersMu.Unlock()
	return ch, ok
}

// replyCodec is net/rpc's gob client codec with two changes: a reply is
// handed to the node as soon as it is decoded, on the connection's
// reading goroutine (no goroutine, timer or channel per call, and replies
// arrive in the order the peer sent them); and it notes when each call in
// flight was sent, so that the peer's watchdog can drop a connection whose
// peer stopped answering. Snapshot chunk answers are left to their caller
// (CallSnapshot waits for them itself).
type replyCodec struct {
	t      *NetTransport
	rwc    io.ReadWriteCloser
	dec    *gob.Decoder
	enc    *gob.Encoder
	encBuf *bufio.Writer
	// mu guards sent: call sequence number -> when it was written.
	mu   sync.Mutex
	sent map[uint64]time.Time
	// broken: reading or writing failed; net/rpc fails every later call
	// on this client, so the peer must redial.
	broken atomic.Bool
}

func newReplyCodec(t *NetTransport, conn io.ReadWriteCloser) *replyCodec {
	buf := bufio.NewWriter(conn)
	return &replyCodec{t: t, rwc: conn, dec: gob.NewDecoder(conn), enc: gob.NewEncoder(buf), encBuf: buf,
		sent: map[uint64]time.Time{}}
}

func (c *replyCodec) WriteRequest(r *rpc.Request, body any) error {
	c.mu.Lock()
	c.sent[r.Seq] = time.Now()
	c.mu.Unlock()
	err := c.enc.Encode(r)
	if err == nil {
		err = c.enc.Encode(body)
	}
	if err == nil {
		err = c.encBuf.Flush()
	}
	if err != nil {
		c.broken.Store(true)
	}
	return err
}

func (c *replyCodec) ReadResponseHeader(r *rpc.Response) error {
	if err := c.dec.Decode(r); err != nil {
		c.broken.Store(true)
		return err
	}
	c.mu.Lock()
	delete(c.sent, r.Seq)
	c.mu.Unlock()
	if r.Error != "" {
		c.t.dropped.Add(1)
	}
	return nil
}

// ReadResponseBody decodes a successful call's reply (body is nil for a
// failed or unknown call) and passes it to the node.
func (c *replyCodec) ReadResponseBody(body any) error {
	if err := c.dec.Decode(body); err != nil {
		c.broken.Store(true)
		return err
	}
	m, ok := body.(*Message)
	if !ok || m.Type == MsgNone || m.Type == MsgSnapResp {
		return nil
	}
	select {
	case c.t.consumer <- RPC{Message: *m}:
	default:
		c.t.dropped.Add(1)
	}
	return nil
}

func (c *replyCodec) Close() error { return c.rwc.Close() }

// late reports whether a call has waited longer than timeout, and how many
// are in flight.
func (c *replyCodec) late(timeout time.Duration) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for _, at := range c.sent {
		if now.Sub(at) > timeout {
			return len(c.sent), true
		}
	}
	return len(c.sent), false
}
