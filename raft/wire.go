package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The raft wire format: what NetTransport's net/rpc codecs (rpc_codec.go)
// put on a connection instead of gob. gob describes every value by
// reflection and allocates per field; Raft sends a handful of fixed
// shapes at a high rate, so a hand-written encoding costs a fraction of
// the CPU and lets entry data be decoded without a copy.
//
// A connection carries frames. Every frame starts with the wire version
// byte and a 4-byte little-endian length of the rest:
//
//	frame    = version:1 length:4 payload
//	request  = seq:uvarint method:1 message            (client → server)
//	response = seq:uvarint errLen:uvarint err [message] (server → client; message iff errLen == 0)
//
// A message is its type, a flag byte, the sender and receiver IDs, six
// uvarints, the entries, and (flagged) the snapshot description; strings
// and byte slices are a uvarint length and the bytes:
//
//	message  = type:1 flags:1 from to term index logTerm commit rejectHint context
//	           nEntries {index term type:1 data} [snapshotMeta] [chunkOffset:varint chunk]
//
// wireVersion is chosen so that it cannot begin a gob stream (gob's first
// byte is a message length: below 0x80, or 0xF8 and above), so a peer
// still speaking the old gob codec is named as such instead of producing
// garbage.
const (
	wireVersion    byte = 0xA1
	frameHeaderLen      = 5
	// maxFrameBytes bounds one frame so that a corrupt length cannot make
	// the reader allocate without limit. AppendEntries stay near
	// Config.MaxAppendBytes (1 MiB by default) and snapshot chunks at
	// Config.SnapshotChunkBytes (256 KiB), far below it.
	maxFrameBytes = 64 << 20
)

// Method bytes: which Raft RPC a request frame calls.
const (
	wireAppendEntries byte = iota + 1
	wireRequestVote
	wireTimeoutNow
	wireInstallSnapshot
)

var wireMethodNames = [...]string{
	wireAppendEntries:   rpcServiceName + ".AppendEntries",
	wireRequestVote:     rpcServiceName + ".RequestVote",
	wireTimeoutNow:      rpcServiceName + ".TimeoutNow",
	wireInstallSnapshot: rpcServiceName + ".InstallSnapshot",
}

// wireMethodOf is the method byte that carries a message of type typ (0
// if no Raft RPC does).
func wireMethodOf(typ MessageType) byte {
	switch typ {
	case MsgApp, MsgHeartbeat:
		return wireAppendEntries
	case MsgVote, MsgPreVote:
		return wireRequestVote
	case MsgTimeoutNow:
		return wireTimeoutNow
	case MsgSnap:
		return wireInstallSnapshot
	}
	return 0
}

// Message flag bits.
const (
	flagReject byte = 1 << iota
	flagTransfer
	flagChunkLast
	flagSnapshot // a SnapshotMeta follows the entries
	flagChunk    // ChunkOffset and Chunk follow
)

var (
	errFrameTooLarge = fmt.Errorf("raft wire: frame longer than %d bytes", maxFrameBytes)
	errShortFrame    = errors.New("raft wire: frame ends in the middle of a field")
)

// errWireVersion is what a connection reports when the peer's first byte
// is not this release's wire version.
func errWireVersion(got byte) error {
	what := "an unknown encoding"
	if got < 0x80 || got >= 0xF8 {
		what = "gob (an older roster release)"
	}
	return fmt.Errorf("raft wire: peer sent version byte 0x%02x (%s), this server speaks 0x%02x: run the same roster release on all servers", got, what, wireVersion)
}

// beginFrame appends a frame header whose length endFrame fills in.
func beginFrame(b []byte) ([]byte, int) {
	start := len(b)
	return append(b, wireVersion, 0, 0, 0, 0), start
}

// endFrame patches the length of the frame begun at start; a frame over
// the limit is removed again and reported.
func endFrame(b []byte, start int) ([]byte, error) {
	n := len(b) - start - frameHeaderLen
	if n > maxFrameBytes {
		return b[:start], errFrameTooLarge
	}
	binary.LittleEndian.PutUint32(b[start+1:], uint32(n))
	return b, nil
}

// parseFrameHeader checks a frame header and returns the payload length.
func parseFrameHeader(h []byte) (int, error) {
	if h[0] != wireVersion {
		return 0, errWireVersion(h[0])
	}
	n := binary.LittleEndian.Uint32(h[1:])
	if n > maxFrameBytes {
		return 0, errFrameTooLarge
	}
	return int(n), nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// appendMessage appends m's encoding to b.
func appendMessage(b []byte, m *Message) []byte {
	var flags byte
	if m.Reject {
		flags |= flagReject
	}
	if m.Transfer {
		flags |= flagTransfer
	}
	if m.ChunkLast {
		flags |= flagChunkLast
	}
	if m.Snapshot != nil {
		flags |= flagSnapshot
	}
	if m.Chunk != nil || m.ChunkOffset != 0 {
		flags |= flagChunk
	}
	b = append(b, byte(m.Type), flags)
	b = appendString(b, m.From)
	b = appendString(b, m.To)
	for _, v := range [...]uint64{m.Term, m.Index, m.LogTerm, m.Commit, m.RejectHint, m.Context} {
		b = binary.AppendUvarint(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Entries)))
	for i := range m.Entries {
		e := &m.Entries[i]
		b = binary.AppendUvarint(b, e.Index)
		b = binary.AppendUvarint(b, e.Term)
		b = append(b, byte(e.Type))
		b = appendBytes(b, e.Data)
	}
	if m.Snapshot != nil {
		b = appendSnapshotMeta(b, m.Snapshot)
	}
	if flags&flagChunk != 0 {
		b = binary.AppendVarint(b, m.ChunkOffset)
		b = appendBytes(b, m.Chunk)
	}
	return b
}

func appendSnapshotMeta(b []byte, s *SnapshotMeta) []byte {
	b = appendString(b, s.ID)
	b = binary.AppendUvarint(b, s.Index)
	b = binary.AppendUvarint(b, s.Term)
	b = binary.AppendUvarint(b, s.ConfigurationIndex)
	b = binary.AppendVarint(b, s.Size)
	b = appendString(b, s.SHA256)
	b = binary.AppendUvarint(b, uint64(len(s.Configuration.Servers)))
	for _, sv := range s.Configuration.Servers {
		b = appendString(b, sv.ID)
		b = appendString(b, sv.Address)
		b = append(b, byte(sv.Suffrage))
	}
	return b
}

// wireReader decodes one frame's payload. Errors are sticky: after the
// first, every read returns zero values and err says what was wrong.
type wireReader struct {
	b   []byte
	err error
	// aliased: a decoded value (entry data, a chunk) points into b, so
	// the buffer must not be reused for the next frame.
	aliased bool
	names   *nameCache
}

func (r *wireReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *wireReader) u8() byte {
	if len(r.b) < 1 {
		r.fail(errShortFrame)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *wireReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errShortFrame)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// varint reads a zig-zag encoded int64 (binary.AppendVarint's format).
func (r *wireReader) varint() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

// bytes returns the next length-prefixed field, pointing into the frame.
func (r *wireReader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail(errShortFrame)
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

// data returns a byte field for the caller to keep: nil when empty (as
// gob decodes it), otherwise aliasing the frame.
func (r *wireReader) data() []byte {
	p := r.bytes()
	if len(p) == 0 {
		return nil
	}
	r.aliased = true
	return p
}

func (r *wireReader) str() string {
	p := r.bytes()
	if r.names != nil {
		return r.names.intern(p)
	}
	return string(p)
}

// count reads an element count and checks it against the bytes left,
// each element taking at least min bytes, so that a corrupt count cannot
// allocate more than the frame could hold.
func (r *wireReader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min) {
		r.fail(fmt.Errorf("raft wire: count %d exceeds what the frame holds", n))
		return 0
	}
	return int(n)
}

// message decodes a message into m (overwriting all of it).
func (r *wireReader) message(m *Message) error {
	*m = Message{Type: MessageType(r.u8())}
	flags := r.u8()
	m.Reject, m.Transfer, m.ChunkLast = flags&flagReject != 0, flags&flagTransfer != 0, flags&flagChunkLast != 0
	m.From = r.str()
	m.To = r.str()
	m.Term, m.Index, m.LogTerm = r.uvarint(), r.uvarint(), r.uvarint()
	m.Commit, m.RejectHint, m.Context = r.uvarint(), r.uvarint(), r.uvarint()
	if n := r.count(4); n > 0 {
		m.Entries = make([]Entry, n)
		for i := range m.Entries {
			e := &m.Entries[i]
			e.Index, e.Term, e.Type = r.uvarint(), r.uvarint(), EntryType(r.u8())
			e.Data = r.data()
		}
	}
	if flags&flagSnapshot != 0 {
		m.Snapshot = r.snapshotMeta()
	}
	if flags&flagChunk != 0 {
		m.ChunkOffset = r.varint()
		m.Chunk = r.bytes()
		if m.Chunk != nil {
			r.aliased = true
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Errorf("raft wire: %d bytes after the message", len(r.b)))
	}
	if r.err != nil {
		*m = Message{}
	}
	return r.err
}

func (r *wireReader) snapshotMeta() *SnapshotMeta {
	s := &SnapshotMeta{ID: r.str()}
	s.Index, s.Term, s.ConfigurationIndex = r.uvarint(), r.uvarint(), r.uvarint()
	s.Size = r.varint()
	s.SHA256 = r.str()
	if n := r.count(3); n > 0 {
		s.Configuration.Servers = make([]Server, n)
		for i := range s.Configuration.Servers {
			sv := &s.Configuration.Servers[i]
			sv.ID, sv.Address, sv.Suffrage = r.str(), r.str(), Suffrage(r.u8())
		}
	}
	return s
}

// nameCache hands out the same string for the same server ID, so that a
// connection decoding thousands of messages from one peer allocates its
// From and To once. Small and per connection: a peer has few names.
type nameCache struct {
	names [8]string
	next  int
}

func (c *nameCache) intern(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	for _, s := range c.names {
		if s == string(p) { // compiles to a comparison, no allocation
			return s
		}
	}
	if len(p) > 256 {
		return string(p) // not a server ID worth keeping
	}
	s := string(p)
	c.names[c.next] = s
	c.next = (c.next + 1) % len(c.names)
	return s
}

// appendRequestFrame appends a request frame for method to b.
func appendRequestFrame(b []byte, seq uint64, method byte, m *Message) ([]byte, error) {
	b, start := beginFrame(b)
	b = binary.AppendUvarint(b, seq)
	b = append(b, method)
	b = appendMessage(b, m)
	return endFrame(b, start)
}

// appendResponseFrame appends a response frame: the message m if errMsg
// is empty, else the error alone.
func appendResponseFrame(b []byte, seq uint64, errMsg string, m *Message) ([]byte, error) {
	b, start := beginFrame(b)
	b = binary.AppendUvarint(b, seq)
	b = appendString(b, errMsg)
	if errMsg == "" {
		b = appendMessage(b, m)
	}
	return endFrame(b, start)
}

// requestHead reads a request frame's seq and method byte, leaving
// the message in r.
func (r *wireReader) requestHead() (seq uint64, method byte, err error) {
	seq = r.uvarint()
	method = r.u8()
	return seq, method, r.err
}

// responseHead reads a response frame's seq and error text, leaving the
// message (if any) in r.
func (r *wireReader) responseHead() (seq uint64, errMsg string, err error) {
	seq = r.uvarint()
	p := r.bytes()
	if len(p) > 0 {
		errMsg = string(p)
	}
	return seq, errMsg, r.err
}
