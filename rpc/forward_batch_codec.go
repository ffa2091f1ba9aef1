package rpc

import (
	"encoding/binary"
	"errors"
	"fmt"

	"roster/catalog"
)

// The compact encoding of forwarded KV writes (KVS.ApplyBatch). gob sends
// a KVSRequest as a self-describing struct that the receiver decodes by
// reflection, field by field; the forwarding path carries thousands of
// them a second, so they travel as one []byte of length-prefixed fields
// instead, which gob copies as a block:
//
//	request batch: uvarint(n) { request }*n
//	request:       str(Datacenter) str(Token) str(RequestID) byte(ForwardHops)
//	               str(Verb) str(Key) bytes(Value) uvarint(Flags) uvarint(Index) str(Session)
//	reply batch:   uvarint(n) { byte(OK) str(Err) }*n
//
// where str and bytes are uvarint(len) followed by the bytes. Every length
// is checked against what is left, so a malformed batch is an error, never
// a panic or a large allocation.

// maxKVSBatch bounds the entries of one batch, sent or accepted.
const maxKVSBatch = 1024

// maxKVSBatchBytes bounds the size of a batch a follower sends: 1024
// entries of 512 KiB values would otherwise make one call of 512 MiB. A
// single write larger than this still goes, alone.
const maxKVSBatchBytes = 4 << 20

// minKVSRequestBytes is the smallest encoded request: seven empty
// length-prefixed fields, ForwardHops, and Flags and Index of zero.
const minKVSRequestBytes = 7 + 1 + 2

// kvsRequestSize is r's encoded size, give or take a few varint bytes.
func kvsRequestSize(r *KVSRequest) int {
	return 32 + len(r.Datacenter) + len(r.Token) + len(r.RequestID) +
		len(r.Op.Verb) + len(r.Op.Key) + len(r.Op.Value) + len(r.Op.Session)
}

var errKVSBatchMalformed = errors.New("rpc: malformed KVS.ApplyBatch payload")

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeKVSBatch(reqs []*KVSRequest) []byte {
	size := binary.MaxVarintLen64
	for _, r := range reqs {
		size += kvsRequestSize(r)
	}
	b := make([]byte, 0, size)
	b = binary.AppendUvarint(b, uint64(len(reqs)))
	for _, r := range reqs {
		b = appendStr(b, r.Datacenter)
		b = appendStr(b, r.Token)
		b = appendStr(b, r.RequestID)
		b = append(b, r.ForwardHops)
		b = appendStr(b, r.Op.Verb)
		b = appendStr(b, r.Op.Key)
		b = binary.AppendUvarint(b, uint64(len(r.Op.Value)))
		b = append(b, r.Op.Value...)
		b = binary.AppendUvarint(b, r.Op.Flags)
		b = binary.AppendUvarint(b, r.Op.Index)
		b = appendStr(b, r.Op.Session)
	}
	return b
}

// batchReader walks an encoded batch; the first error sticks.
type batchReader struct {
	b   []byte
	err error
}

func (r *batchReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errKVSBatchMalformed
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *batchReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errKVSBatchMalformed
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *batchReader) str() string { return string(r.bytes()) }

func (r *batchReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errKVSBatchMalformed
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// count reads an entry count, bounded by maxKVSBatch and by what is left
// (every entry takes at least minBytes).
func (r *batchReader) count(minBytes int) int {
	n := r.uvarint()
	if r.err == nil && (n > maxKVSBatch || n*uint64(minBytes) > uint64(len(r.b))) {
		r.err = fmt.Errorf("%w: %d entries announced in %d bytes", errKVSBatchMalformed, n, len(r.b))
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}

// decodeKVSBatch reverses encodeKVSBatch. Values alias data.
func decodeKVSBatch(data []byte) ([]KVSRequest, error) {
	r := &batchReader{b: data}
	n := r.count(minKVSRequestBytes)
	reqs := make([]KVSRequest, n)
	for i := range reqs {
		q := &reqs[i]
		q.Datacenter, q.Token, q.RequestID = r.str(), r.str(), r.str()
		q.ForwardHops = r.byte()
		q.Op.Verb, q.Op.Key = r.str(), r.str()
		if v := r.bytes(); len(v) > 0 {
			q.Op.Value = v
		}
		q.Op.Flags, q.Op.Index = r.uvarint(), r.uvarint()
		q.Op.Session = r.str()
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d bytes after the last entry", errKVSBatchMalformed, len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	return reqs, nil
}

// kvsResult is one forwarded write's outcome: KVS.Apply's reply, or the
// text of its error ("" for none).
type kvsResult struct {
	ok  bool
	err string
}

func encodeKVSResults(res []kvsResult) []byte {
	b := make([]byte, 0, binary.MaxVarintLen64+2*len(res))
	b = binary.AppendUvarint(b, uint64(len(res)))
	for _, x := range res {
		ok := byte(0)
		if x.ok {
			ok = 1
		}
		b = append(b, ok)
		b = appendStr(b, x.err)
	}
	return b
}

func decodeKVSResults(data []byte) ([]kvsResult, error) {
	r := &batchReader{b: data}
	n := r.count(2)
	res := make([]kvsResult, n)
	for i := range res {
		res[i].ok = r.byte() == 1
		res[i].err = r.str()
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errKVSBatchMalformed
	}
	if r.err != nil {
		return nil, r.err
	}
	return res, nil
}

// Compile-time check that the encoding covers every field: a field added
// to either struct breaks this conversion and so the build, until the
// encoding above (and this copy) are extended.
var _ = struct {
	Verb, Key string
	Value     []byte
	Flags     uint64
	Index     uint64
	Session   string
}(catalog.KVRequest{})

var _ = struct {
	Datacenter, Token, RequestID string
	ForwardHops                  uint8
}(WriteRequest{})
