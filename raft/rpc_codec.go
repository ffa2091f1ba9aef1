package raft

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The codecs below put net/rpc's calls for the Raft service on the wire in
// the binary frames of wire.go. net/rpc keeps doing what it is for —
// sequence numbers, matching replies to calls, one server goroutine per
// call — while the codecs remove the per-message costs that dominated a
// write's CPU: gob's reflection, a flush (a write syscall) per message,
// and a goroutine per call that sat waiting for the node's answer.

// msgAnswered marks a request the server codec has already handed to the
// node: the node's answer goes onto the wire straight from its respond
// callback, so net/rpc's method goroutine returns at once and its reply
// (carrying this type) is not written. Never sent on the wire.
const msgAnswered MessageType = 0xFE

// asyncReply is the reply every pipelined call passes to net/rpc: the
// client codec recognises it, decodes the answer into a value of its own
// and hands it to the node; nothing ever writes to it.
var asyncReply = new(Message)

// readBufferBytes sizes each connection's read buffer; flushBytes is how
// much a writer buffers before it writes without waiting for the batch
// to end.
const (
	readBufferBytes = 64 << 10
	flushBytes      = 64 << 10
)

// frameReader reads frames off a connection. Its buffer is reused for the
// next frame unless a decoded message kept pointers into it (entry data,
// a snapshot chunk), in which case the next frame gets a fresh one: entry
// data is never copied after the read, and one allocation per
// AppendEntries replaces gob's one per entry.
type frameReader struct {
	br    *bufio.Reader
	hdr   [frameHeaderLen]byte
	buf   []byte
	names nameCache
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(r, readBufferBytes)}
}

// next reads one whole frame. A clean end of stream before a frame is
// io.EOF; anything else is an error that ends the connection.
func (f *frameReader) next() (wireReader, error) {
	if _, err := io.ReadFull(f.br, f.hdr[:]); err != nil {
		return wireReader{}, err
	}
	n, err := parseFrameHeader(f.hdr[:])
	if err != nil {
		return wireReader{}, err
	}
	if cap(f.buf) < n {
		f.buf = make([]byte, n)
	}
	b := f.buf[:n]
	if _, err := io.ReadFull(f.br, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return wireReader{}, err
	}
	return wireReader{b: b, names: &f.names}, nil
}

// release gives up the buffer if r's decoded values point into it.
func (f *frameReader) release(r *wireReader) {
	if r.aliased {
		f.buf = nil
	}
}

// wireServerCodec is the server side of a raft connection. A request is
// handed to the node as soon as it is decoded, on the connection's
// reading goroutine, so the node sees each peer's requests in the order
// the peer sent them (net/rpc's per-call goroutines would reorder
// pipelined AppendEntries, and a follower rejects one that arrives before
// its predecessor). The node's answer is appended to a buffer that one
// writer goroutine per connection writes out, several answers per write
// when the node produces them together.
type wireServerCodec struct {
	t   *NetTransport
	rwc io.ReadWriteCloser
	fr  *frameReader
	req wireReader // body of the request whose header was just read
	seq uint64

	// wmu guards pending and closed.
	wmu      sync.Mutex
	pending  []byte // encoded answers waiting for the writer
	closed   bool
	doorbell chan struct{} // capacity 1: "pending is not empty"
	done     chan struct{}
}

// maxPendingBytes bounds the answers queued for a peer that stopped
// reading; beyond it the connection is closed. Dropping the answer alone
// left the peer's call pending in net/rpc for good: its in-flight count
// never went back to 0 and its watchdog later closed the connection
// anyway, once it had gone idle and healthy. Closing fails every call on
// it at once, and the peer redials.
const maxPendingBytes = 16 << 20

func newWireServerCodec(t *NetTransport, conn io.ReadWriteCloser) *wireServerCodec {
	c := &wireServerCodec{t: t, rwc: conn, fr: newFrameReader(conn),
		doorbell: make(chan struct{}, 1), done: make(chan struct{})}
	go c.writeLoop()
	return c
}

func (c *wireServerCodec) ReadRequestHeader(r *rpc.Request) error {
	fr, err := c.fr.next()
	if err != nil {
		return c.t.readFailed(c.rwc, err)
	}
	seq, method, err := fr.requestHead()
	if err != nil {
		c.t.malformed.Add(1)
		return err // without a sequence number there is no one to answer
	}
	c.req, c.seq = fr, seq
	r.Seq = seq
	if int(method) < len(wireMethodNames) && wireMethodNames[method] != "" {
		r.ServiceMethod = wireMethodNames[method]
	} else {
		r.ServiceMethod = fmt.Sprintf("%s.Method%d", rpcServiceName, method) // net/rpc answers "can't find method"
	}
	return nil
}

// ReadRequestBody decodes the request and passes it to the node. A
// malformed body is counted and answered with an error (the frame length
// keeps the stream in step, so the connection stays up).
func (c *wireServerCodec) ReadRequestBody(body any) error {
	fr := c.req
	c.req = wireReader{}
	m, ok := body.(*Message)
	if !ok {
		return nil // net/rpc discards the body of a call it cannot serve
	}
	err := fr.message(m)
	c.fr.release(&fr)
	if err == nil && !m.Type.IsRequest() {
		err = fmt.Errorf("raft: %s is not a request", m.Type)
	}
	if err != nil {
		c.t.malformed.Add(1)
		return err
	}
	seq := c.seq
	if !c.t.deliver(*m, func(a Message) { c.answer(seq, a) }) {
		c.answer(seq, Message{})
	}
	m.Type = msgAnswered
	return nil
}

// answer queues the node's answer to call seq (a zero Message: the node
// had none) for the writer.
func (c *wireServerCodec) answer(seq uint64, m Message) {
	if m.Type == MsgNone {
		c.queue(seq, errNoAnswer.Error(), nil)
		return
	}
	c.queue(seq, "", &m)
}

func (c *wireServerCodec) queue(seq uint64, errMsg string, m *Message) {
	c.wmu.Lock()
	if c.closed || len(c.pending) > maxPendingBytes {
		backlog := !c.closed
		c.wmu.Unlock()
		c.t.dropped.Add(1)
		if backlog {
			c.t.cfg.Logger.Warn("raft transport: closing a connection whose peer stopped reading answers",
				"remote", remoteAddr(c.rwc), "pending_bytes", maxPendingBytes)
			c.Close()
		}
		return
	}
	var err error
	c.pending, err = appendResponseFrame(c.pending, seq, errMsg, m)
	if err != nil {
		c.pending, _ = appendResponseFrame(c.pending, seq, err.Error(), nil)
	}
	c.wmu.Unlock()
	select {
	case c.doorbell <- struct{}{}:
	default: // already rung: the writer will see this answer too
	}
}

// WriteResponse is net/rpc's reply: nothing for a request the node
// answered through answer, otherwise (an error, or a call that came some
// other way) the reply itself.
func (c *wireServerCodec) WriteResponse(r *rpc.Response, body any) error {
	m, _ := body.(*Message)
	switch {
	case r.Error != "":
		c.queue(r.Seq, r.Error, nil)
	case m == nil:
		c.queue(r.Seq, "raft: reply is not a Message", nil)
	case m.Type != msgAnswered:
		c.queue(r.Seq, "", m)
	}
	return nil
}

// writeLoop writes whatever answers have accumulated, in one write each
// time it wakes: the two buffers swap, so encoding never waits for the
// socket.
func (c *wireServerCodec) writeLoop() {
	var out []byte
	for {
		select {
		case <-c.doorbell:
		case <-c.done:
			return
		}
		c.wmu.Lock()
		out, c.pending = c.pending, out[:0]
		c.wmu.Unlock()
		if len(out) == 0 {
			continue
		}
		if _, err := c.rwc.Write(out); err != nil {
			c.Close()
			return
		}
		if cap(out) > 4*flushBytes {
			out = nil // a burst is over: do not keep its buffer
		}
	}
}

func (c *wireServerCodec) Close() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.done)
	return c.rwc.Close()
}

// readFailed turns a connection's read error into what net/rpc expects
// (io.EOF for a clean end), counting and logging a peer that speaks
// another wire version or sent an impossible frame.
func (t *NetTransport) readFailed(conn any, err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || isNetErr(err) {
		return err
	}
	t.malformed.Add(1)
	t.cfg.Logger.Warn("raft transport: dropping connection", "remote", remoteAddr(conn), "err", err)
	return err
}

func remoteAddr(conn any) string {
	if c, ok := conn.(net.Conn); ok && c.RemoteAddr() != nil {
		return c.RemoteAddr().String()
	}
	return "unknown"
}

// deliver hands a request to the node, waiting up to the timeout when the
// node's queue is full (the reading goroutine then stops reading, which
// pushes back on the peer). It reports false if the node did not take it.
func (t *NetTransport) deliver(m Message, respond func(Message)) bool {
	r := RPC{Message: m, respond: respond}
	select {
	case t.consumer <- r:
		return true
	default:
	}
	timer := time.NewTimer(t.cfg.Timeout)
	defer timer.Stop()
	select {
	case t.consumer <- r:
		return true
	case <-timer.C:
	case <-t.closed:
	}
	return false
}

// wireClientCodec is the client side of a raft connection. A reply is
// handed to the node as soon as it is decoded, on the connection's
// reading goroutine (no goroutine, timer or channel per call, and replies
// arrive in the order the peer sent them). Requests are buffered and
// written when the sender has no more queued for this peer (flush), so a
// burst of messages to one peer costs one write. Snapshot chunk answers
// go to their caller instead (CallSnapshot waits for them itself).
type wireClientCodec struct {
	t    *NetTransport
	addr string // the peer, for log lines
	rwc  io.ReadWriteCloser
	fr   *frameReader
	resp wireReader // body of the reply whose header was just read

	// wmu guards wbuf and serialises writes to rwc.
	wmu  sync.Mutex
	wbuf []byte

	// inflight and answered let the peer's watchdog notice a connection
	// whose peer stopped answering.
	inflight atomic.Int64
	answered atomic.Uint64
	// broken: reading or writing failed; net/rpc fails every later call
	// on this client, so the peer must redial.
	broken atomic.Bool
}

func newWireClientCodec(t *NetTransport, addr string, conn io.ReadWriteCloser) *wireClientCodec {
	return &wireClientCodec{t: t, addr: addr, rwc: conn, fr: newFrameReader(conn)}
}

// WriteRequest encodes the call into the write buffer; flush sends it.
func (c *wireClientCodec) WriteRequest(r *rpc.Request, body any) error {
	m, ok := body.(*Message)
	var method byte
	if ok {
		method = wireMethodOf(m.Type)
	}
	if method == 0 || wireMethodNames[method] != r.ServiceMethod {
		return fmt.Errorf("raft: cannot encode a call of %s with %T", r.ServiceMethod, body)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	if c.wbuf, err = appendRequestFrame(c.wbuf, r.Seq, method, m); err != nil {
		return err
	}
	c.inflight.Add(1)
	if len(c.wbuf) >= flushBytes {
		return c.flushLocked()
	}
	return nil
}

// flush writes the buffered requests.
func (c *wireClientCodec) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.flushLocked()
}

func (c *wireClientCodec) flushLocked() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	_, err := c.rwc.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	if cap(c.wbuf) > 4*flushBytes {
		c.wbuf = nil
	}
	if err != nil {
		c.broken.Store(true)
		c.rwc.Close() // fails the calls in flight at once
	}
	return err
}

func (c *wireClientCodec) ReadResponseHeader(r *rpc.Response) error {
	fr, err := c.fr.next()
	if err != nil {
		c.broken.Store(true)
		if (err == io.EOF || errors.Is(err, syscall.ECONNRESET)) && c.answered.Load() == 0 && c.inflight.Load() > 0 {
			// A server of an older release cannot parse these frames
			// and hangs up; say so rather than redial in silence.
			c.t.cfg.Logger.Warn("raft transport: peer closed the connection without answering any call; "+
				"if it runs an older roster release it cannot read this wire version",
				"peer", c.addr, "wire_version", fmt.Sprintf("0x%02x", wireVersion))
		}
		return c.t.readFailed(c.rwc, err)
	}
	seq, errMsg, err := fr.responseHead()
	if err != nil {
		c.broken.Store(true)
		c.t.malformed.Add(1)
		return err
	}
	c.resp = fr
	c.answered.Add(1)
	c.inflight.Add(-1)
	r.Seq, r.Error = seq, errMsg
	if errMsg != "" {
		c.t.dropped.Add(1)
	}
	return nil
}

// ReadResponseBody decodes a successful call's reply (body is nil for a
// failed or unknown call): a pipelined call's goes to the node, a
// snapshot chunk's into the caller's reply. A malformed reply to a
// pipelined call is counted and dropped (Raft retries).
func (c *wireClientCodec) ReadResponseBody(body any) error {
	fr := c.resp
	c.resp = wireReader{}
	if body == nil {
		return nil
	}
	if body != any(asyncReply) {
		m, ok := body.(*Message)
		if !ok {
			return fmt.Errorf("raft: cannot decode a reply into %T", body)
		}
		if err := fr.message(m); err != nil {
			c.t.malformed.Add(1)
			return err
		}
		c.fr.release(&fr)
		return nil
	}
	var m Message
	if err := fr.message(&m); err != nil {
		c.t.malformed.Add(1)
		return nil
	}
	c.fr.release(&fr)
	if m.Type == MsgNone {
		return nil
	}
	select {
	case c.t.consumer <- RPC{Message: m}:
	default:
		c.t.dropped.Add(1)
	}
	return nil
}

func (c *wireClientCodec) Close() error { return c.rwc.Close() }
