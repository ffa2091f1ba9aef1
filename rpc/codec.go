package rpc

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"net/rpc"
)

// The codecs below are net/rpc's gob codecs rebuilt with two additions the
// stock ones lack: a cap on the size of a single gob message (the stock
// decoder allocates whatever length a peer announces, up to 1 GiB, before
// reading it) and a hook that counts malformed input.

// DefaultMaxFrameBytes caps one gob message (a request or response body).
// Catalog listings of large clusters are the biggest legitimate frames.
const DefaultMaxFrameBytes = 64 << 20

// errFrameTooLarge is returned when a peer announces an oversized message.
var errFrameTooLarge = errors.New("rpc: gob message exceeds the frame limit")

// frameGuard sits between a connection and a gob.Decoder and follows the
// gob stream's framing (each message is a gob-encoded uint byte count then
// that many bytes) as the bytes pass, failing the read as soon as a count
// above maxFrameBytes is seen. It works for any read chunking.
type frameGuard struct {
	r             io.Reader
	maxFrameBytes uint64
	remaining     uint64 // body bytes left in the current message
	headerNeed    int    // count bytes still to come of a multi-byte count
	headerVal     uint64
}

func (g *frameGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if scanErr := g.scan(p[:n]); scanErr != nil {
		return 0, scanErr
	}
	return n, err
}

// scan advances the framing state over b. A gob uint below 0x80 is one
// byte; otherwise the first byte is the negated length (1..8) of the
// big-endian value that follows.
func (g *frameGuard) scan(b []byte) error {
	for i := 0; i < len(b); {
		if g.remaining > 0 {
			skip := min(g.remaining, uint64(len(b)-i))
			i += int(skip)
			g.remaining -= skip
			continue
		}
		c := b[i]
		i++
		if g.headerNeed == 0 {
			if c < 0x80 {
				g.remaining = uint64(c)
				continue
			}
			width := -int(int8(c))
			if width < 1 || width > 8 {
				return fmt.Errorf("rpc: malformed gob message length prefix 0x%02x", c)
			}
			g.headerNeed, g.headerVal = width, 0
			continue
		}
		g.headerVal = g.headerVal<<8 | uint64(c)
		g.headerNeed--
		if g.headerNeed == 0 {
			if g.headerVal > g.maxFrameBytes {
				return fmt.Errorf("%w: %d bytes announced, limit %d", errFrameTooLarge, g.headerVal, g.maxFrameBytes)
			}
			g.remaining = g.headerVal
		}
	}
	return nil
}

// serverCodec is net/rpc's gobServerCodec with a frame guard and a
// malformed-input hook.
type serverCodec struct {
	rwc         io.ReadWriteCloser
	dec         *gob.Decoder
	enc         *gob.Encoder
	out         *batchWriter
	onMalformed func(error)
}

func newServerCodec(rwc io.ReadWriteCloser, maxFrameBytes int, onMalformed func(error)) *serverCodec {
	out := newBatchWriter(rwc)
	guard := &frameGuard{r: rwc, maxFrameBytes: uint64(maxFrameBytes)}
	return &serverCodec{rwc: rwc, dec: gob.NewDecoder(guard), enc: gob.NewEncoder(out), out: out, onMalformed: onMalformed}
}

func (c *serverCodec) ReadRequestHeader(r *rpc.Request) error {
	return c.check(c.dec.Decode(r))
}

func (c *serverCodec) ReadRequestBody(body any) error {
	return c.check(c.dec.Decode(body))
}

// check reports decode errors that are the peer's bytes' fault. A clean
// end of stream and network errors (a reset from a client that evicted
// the connection, our own close at Shutdown) are how connections end,
// not malformed input; counting them made every client-side eviction look
// like an attack in the server's counters and warnings.
func (c *serverCodec) check(err error) error {
	if err != nil && err != io.EOF && !isNetworkError(err) && c.onMalformed != nil {
		c.onMalformed(err)
	}
	return err
}

func (c *serverCodec) WriteResponse(r *rpc.Response, body any) error {
	if err := c.enc.Encode(r); err != nil {
		c.Close()
		return err
	}
	if err := c.enc.Encode(body); err != nil {
		c.Close()
		return err
	}
	c.out.Kick()
	return nil
}

func (c *serverCodec) Close() error { return c.out.Close() }

// clientCodec is net/rpc's gobClientCodec with a frame guard and a
// malformed-input hook (a server, or whatever answers at its address, is
// as untrusted as a client).
type clientCodec struct {
	rwc         io.ReadWriteCloser
	dec         *gob.Decoder
	enc         *gob.Encoder
	out         *batchWriter
	onMalformed func(error)
}

func newClientCodec(rwc io.ReadWriteCloser, maxFrameBytes int, onMalformed func(error)) *clientCodec {
	out := newBatchWriter(rwc)
	guard := &frameGuard{r: rwc, maxFrameBytes: uint64(maxFrameBytes)}
	return &clientCodec{rwc: rwc, dec: gob.NewDecoder(guard), enc: gob.NewEncoder(out), out: out, onMalformed: onMalformed}
}

func (c *clientCodec) WriteRequest(r *rpc.Request, body any) error {
	if err := c.enc.Encode(r); err != nil {
		return err
	}
	if err := c.enc.Encode(body); err != nil {
		return err
	}
	c.out.Kick()
	return nil
}

func (c *clientCodec) ReadResponseHeader(r *rpc.Response) error { return c.check(c.dec.Decode(r)) }
func (c *clientCodec) ReadResponseBody(body any) error          { return c.check(c.dec.Decode(body)) }

// check reports decode errors that are the peer's bytes' fault (see
// serverCodec.check). net/rpc's reader then fails every pending call and
// the pool evicts the connection.
func (c *clientCodec) check(err error) error {
	if err != nil && err != io.EOF && !isNetworkError(err) && c.onMalformed != nil {
		c.onMalformed(err)
	}
	return err
}

// Close closes the batch writer, which stops its flusher goroutine and
// closes the connection. Closing only the connection left one flusher
// goroutine behind per evicted or reaped pool connection.
func (c *clientCodec) Close() error { return c.out.Close() }
