package rpc

import "encoding/hex"

// The request-ID table's representation. Nearly every ID is one
// NewRequestID made, a UUID in canonical text; as a map key of 36-byte
// strings (one allocation per applied write, on every server, kept for the
// dedup window) the table cost about 4% of the servers' CPU at a few
// thousand writes a second. A canonical UUID is therefore kept as its 16
// bytes; any other ID (a caller may bring its own) keeps its text.

// reqKey is a request ID as a table key: uuid for a canonical lowercase
// UUID (text empty), else the ID's text. The mapping from text is one to
// one, so two IDs share a key only if they are the same ID.
type reqKey struct {
	uuid [16]byte
	text string
}

// keyOf returns the key of the ID id (a non-empty ID; it may alias a log
// entry, since only a non-UUID ID's text is kept, as a copy).
func keyOf(id []byte) reqKey {
	if u, ok := parseUUID(id); ok {
		return reqKey{uuid: u}
	}
	return reqKey{text: string(id)}
}

// appendText appends the ID k stands for, as it was written.
func (k reqKey) appendText(b []byte) []byte {
	if k.text != "" {
		return append(b, k.text...)
	}
	t := uuidText(k.uuid)
	return append(b, t[:]...)
}

// uuidText is u in the canonical form parseUUID reads.
func uuidText(u [16]byte) [36]byte {
	var t [36]byte
	hex.Encode(t[0:8], u[0:4])
	t[8] = '-'
	hex.Encode(t[9:13], u[4:6])
	t[13] = '-'
	hex.Encode(t[14:18], u[6:8])
	t[18] = '-'
	hex.Encode(t[19:23], u[8:10])
	t[23] = '-'
	hex.Encode(t[24:36], u[10:16])
	return t
}

// parseUUID parses the canonical form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
// in lowercase hex, the only form appendText writes back, so that text and
// key convert both ways without loss.
func parseUUID(s []byte) ([16]byte, bool) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := lowerHex(s[i])
		lo, ok2 := lowerHex(s[i+1])
		if !ok1 || !ok2 {
			return u, false
		}
		u[j] = hi<<4 | lo
		i += 2
		j++
	}
	return u, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// tableEntry is one remembered ID in apply order. It carries the
// entry's log index too, so a snapshot reads the queue alone and never
// looks the table up.
type tableEntry struct {
	key        reqKey
	proposedAt int64 // unix nanos, from the log
	index      uint64
	// result is what the inner FSM answered, if known (false for entries
	// restored from a snapshot, which keeps IDs and indexes only).
	result any
	known  bool
}

// entryQueue is the table's FIFO, kept in fixed-size chunks: a single
// slice grown by append and compacted by copying moved hundreds of
// thousands of entries at a time once the table was full.
//
// A written entry never changes: push appends into the last chunk's
// spare capacity (a chunk is allocated at its full size and never moves)
// and pop only advances head. So view can hand a snapshot the live
// chunks themselves, in O(chunks) under the FSM's lock, and the snapshot
// reads them while Apply goes on; an entry popped meanwhile stays
// readable, its chunk kept alive by the view.
//
// Every entry has a sequence number, one more than the entry pushed
// before it; the table's maps name entries by it (at).
type entryQueue struct {
	chunks [][]tableEntry // chunks[0][head:] is the oldest live part
	head   int
	n      int
	first  uint64 // the sequence number of chunks[0][0]
}

const queueChunk = 4096

func (q *entryQueue) len() int { return q.n }

// push appends e and returns its sequence number.
func (q *entryQueue) push(e tableEntry) uint64 {
	last := len(q.chunks) - 1
	if last < 0 || len(q.chunks[last]) == queueChunk {
		q.chunks = append(q.chunks, make([]tableEntry, 0, queueChunk))
		last++
	}
	q.chunks[last] = append(q.chunks[last], e)
	seq := q.first + uint64(q.head+q.n)
	q.n++
	return seq
}

// front is the oldest entry and its sequence number; the queue must not
// be empty.
func (q *entryQueue) front() (*tableEntry, uint64) {
	return &q.chunks[0][q.head], q.first + uint64(q.head)
}

// at returns the live entry with sequence number seq, or nil. Every chunk
// but the last holds queueChunk entries, so seq's chunk is found by
// division.
func (q *entryQueue) at(seq uint64) *tableEntry {
	if seq < q.first+uint64(q.head) || seq-q.first >= uint64(q.head+q.n) {
		return nil
	}
	i := seq - q.first
	return &q.chunks[i/queueChunk][i%queueChunk]
}

// pop drops the oldest entry. It does not clear the slot (views may be
// reading it); a non-UUID ID's text is released with its whole chunk.
func (q *entryQueue) pop() {
	q.head++
	q.n--
	if q.head == len(q.chunks[0]) && (len(q.chunks) > 1 || q.head == queueChunk) {
		q.chunks[0] = nil
		q.chunks = q.chunks[1:]
		q.head = 0
		q.first += queueChunk
	}
}

// view returns the live entries, oldest first, as read-only slices that
// stay valid whatever the queue does afterwards.
func (q *entryQueue) view() [][]tableEntry {
	v := make([][]tableEntry, 0, len(q.chunks))
	for i, c := range q.chunks {
		if i == 0 {
			c = c[q.head:]
		}
		if len(c) > 0 {
			v = append(v, c[:len(c):len(c)])
		}
	}
	return v
}

// each calls f for every entry, oldest first.
func (q *entryQueue) each(f func(tableEntry)) {
	for _, c := range q.view() {
		for _, e := range c {
			f(e)
		}
	}
}
