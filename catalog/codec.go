package catalog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"
	"unsafe"
)

// The binary codec used by commands (command.go) and snapshots
// (snapshot.go). It is deliberately plain: unsigned varints, length-prefixed
// strings and byte slices, counts before collections, fields in a fixed order.
// A register command encodes and decodes in well under a microsecond, where
// encoding/json takes several (measured by BenchmarkCommandCodec).
//
// Decoding never panics and never allocates more than the input could
// describe: every count is checked against the bytes that remain, since each
// element takes at least one byte.

// errShort is the sticky error of a truncated or inconsistent input.
var errShort = errors.New("truncated or malformed input")

// encoder appends to buf.
type encoder struct{ buf []byte }

func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) byte1(b byte)     { e.buf = append(e.buf, b) }

func (e *encoder) boolean(b bool) {
	if b {
		e.byte1(1)
	} else {
		e.byte1(0)
	}
}

func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) bytes(b []byte) {
	// 0 = nil, n+1 = n bytes: keeps nil and empty distinct, as Consul's
	// JSON does (null versus "").
	if b == nil {
		e.uvarint(0)
		return
	}
	e.uvarint(uint64(len(b)) + 1)
	e.buf = append(e.buf, b...)
}

func (e *encoder) float(f float64) {
	e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(f))
}

func (e *encoder) strs(ss []string) {
	e.uvarint(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

// strMap writes a map in sorted key order so the encoding is deterministic.
func (e *encoder) strMap(m map[string]string) {
	e.uvarint(uint64(len(m)))
	for _, k := range sortedKeys(m) {
		e.str(k)
		e.str(m[k])
	}
}

// decoder reads b from off on; the first error sticks and zero values
// follow. It advances an offset rather than reslicing b: Apply's decoder
// lives in the heap, and while the GC marks, every pointer written there
// (a resliced b) costs a write barrier, an integer none. A registration
// reads some sixty fields.
type decoder struct {
	b   []byte
	off int
	err error
	// whole, if set, is b as one string: str then returns substrings of
	// it instead of allocating one string per field. Used for small
	// inputs only, where keeping the whole input alive for as long as any
	// one field lives costs nothing.
	whole string
	// maps, if set, shares decoded string maps between records (see
	// mapIntern). Only Apply sets it.
	maps *mapIntern
	// borrowed says that whole is the caller's input itself, not a copy:
	// strings decoded now are lent and must not outlive the call, and maps
	// kept by mapIntern get strings of their own. See decodeRegister.
	borrowed bool
}

// sharedStringsMax is the largest input decoded with shared strings; above
// it (KV values up to 512 KiB) a key must not pin a copy of the value.
const sharedStringsMax = 4096

func newDecoder(b []byte) decoder {
	d := decoder{b: b}
	if len(b) <= sharedStringsMax {
		d.whole = string(b)
	}
	return d
}

// lendingDecoder decodes b with strings borrowed from it (see borrowed).
func lendingDecoder(b []byte) decoder {
	if len(b) > sharedStringsMax {
		return newDecoder(b)
	}
	return decoder{b: b, whole: unsafe.String(unsafe.SliceData(b), len(b)), borrowed: true}
}

// rest is the input not read yet.
func (d *decoder) rest() []byte { return d.b[d.off:] }

// own returns s, copied if it is borrowed from the input.
func (d *decoder) own(s string) string {
	if d.borrowed {
		return strings.Clone(s)
	}
	return s
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.off = len(d.b)
}

// uvarint reads an unsigned varint. Most are lengths and counts below 128,
// one byte: that case is short, the rest takes a further call.
func (d *decoder) uvarint() uint64 {
	if off := d.off; off < len(d.b) && d.b[off] < 0x80 {
		d.off = off + 1
		return uint64(d.b[off])
	}
	return d.uvarintLong()
}

func (d *decoder) uvarintLong() uint64 {
	v, n := binary.Uvarint(d.rest())
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.off += n
	return v
}

// varint reads a signed (zigzag) varint, as binary.Varint does, through
// uvarint's one-byte fast path.
func (d *decoder) varint() int64 {
	u := d.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (d *decoder) byte1() byte {
	if d.off >= len(d.b) {
		d.fail(errShort)
		return 0
	}
	b := d.b[d.off]
	d.off++
	return b
}

func (d *decoder) boolean() bool {
	switch d.byte1() {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail(errors.New("boolean byte is neither 0 nor 1"))
		return false
	}
}

// count reads a collection length and checks it against the input left.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)-d.off) {
		d.fail(errShort)
		return 0
	}
	return int(n)
}

// str reads a length-prefixed string. A register command holds some forty
// strings, most of them empty or short, so the usual case — a one-byte
// length and a shared input — is handled here without further calls.
func (d *decoder) str() string {
	off := d.off
	if off >= len(d.b) || d.whole == "" {
		return d.strSlow() // at the end or not shared: the general path
	}
	n := int(d.b[off])
	if n >= 0x80 || n >= len(d.b)-off {
		return d.strSlow() // long or truncated
	}
	off++
	d.off = off + n
	return d.whole[off : off+n]
}

func (d *decoder) strSlow() string {
	n := d.count()
	if n == 0 {
		return ""
	}
	var s string
	if d.whole != "" {
		s = d.whole[d.off : d.off+n]
	} else {
		s = string(d.b[d.off : d.off+n])
	}
	d.off += n
	return s
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n == 0 {
		return nil
	}
	n--
	if n > uint64(len(d.b)-d.off) {
		d.fail(errShort)
		return nil
	}
	b := slices.Clone(d.b[d.off : d.off+int(n)])
	if b == nil {
		b = []byte{}
	}
	d.off += int(n)
	return b
}

func (d *decoder) float() float64 {
	if len(d.b)-d.off < 8 {
		d.fail(errShort)
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.rest()))
	d.off += 8
	if math.IsNaN(v) || math.IsInf(v, 0) {
		d.fail(errors.New("float is NaN or infinite"))
		return 0
	}
	return v
}

func (d *decoder) strs() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str()
	}
	return out
}

func (d *decoder) strMap() map[string]string {
	n := d.count()
	if n == 0 {
		return nil
	}
	if d.maps != nil && d.whole != "" {
		if m, ok := d.internedMap(n); ok {
			return m
		}
	}
	m := make(map[string]string, n)
	for range n {
		k := d.own(d.str())
		m[k] = d.own(d.str())
	}
	return m
}

// mapIntern shares string maps across the records Apply installs. Agents
// re-register the same node and service meta and tagged addresses over and
// over; decoding each into a fresh map was the largest allocation of a
// registration (two objects per map, three maps per register). Sharing is
// safe because records are copy-on-write (state.go): no map reachable from
// the state or from a command handed to ApplyCommand is ever written after
// decoding, and readers copy maps out (Clone).
//
// Entries are keyed by the map's encoded bytes, so equal encodings share a
// map and a lookup costs no decoding. The table is bounded: when it holds
// mapInternMax entries it starts over, so a stream of distinct maps costs
// one table clear per mapInternMax maps.
type mapIntern struct {
	m map[string]map[string]string
}

// mapInternMax bounds the table: a few thousand nodes' worth of distinct
// maps, tiny next to the registry that holds them.
const mapInternMax = 8192

// internedMap decodes an n-entry map (its count already read) through
// d.maps. ok is false when the bytes are malformed, leaving d unmoved so
// the plain decoder reports the error.
func (d *decoder) internedMap(n int) (map[string]string, bool) {
	end, ok := strMapEnd(d.rest(), n)
	if !ok {
		return nil, false
	}
	key := d.whole[d.off : d.off+end] // shares the input: no copy
	if m, ok := d.maps.m[key]; ok {
		d.off += end
		return m, true
	}
	// The map is kept, so a lent encoding is copied, once: the table's
	// key and the map's strings are that one copy.
	key = d.own(key)
	sub := decoder{b: unsafe.Slice(unsafe.StringData(key), len(key)), whole: key}
	m := make(map[string]string, n)
	for range n {
		k := sub.str()
		m[k] = sub.str()
	}
	if sub.err != nil {
		return nil, false
	}
	d.off += end
	if d.maps.m == nil || len(d.maps.m) >= mapInternMax {
		d.maps.m = make(map[string]map[string]string, 64)
	}
	d.maps.m[key] = m
	return m, true
}

// strMapsEqual is maps.Equal that first notices a map compared with
// itself: with interned maps, a re-registration's meta is usually the very
// map the stored record holds.
func strMapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer() {
		return true
	}
	return maps.Equal(a, b)
}

// strMapEnd returns the length of the 2n length-prefixed strings at the
// start of b, or false if b is too short for them.
func strMapEnd(b []byte, n int) (int, bool) {
	pos := 0
	for range 2 * n {
		l, w := binary.Uvarint(b[pos:])
		if w <= 0 || l > uint64(len(b)-pos-w) {
			return 0, false
		}
		pos += w + int(l)
	}
	return pos, true
}

// done reports the sticky error, or an error if bytes are left over.
func (d *decoder) done(what string) error {
	if d.err != nil {
		return fmt.Errorf("decode %s: %w", what, d.err)
	}
	if left := len(d.b) - d.off; left != 0 {
		return fmt.Errorf("decode %s: %d unexpected trailing bytes", what, left)
	}
	return nil
}

func encNode(e *encoder, n *Node) {
	e.str(n.ID)
	e.str(n.Node)
	e.str(n.Address)
	e.str(n.Datacenter)
	e.strMap(n.TaggedAddresses)
	e.strMap(n.Meta)
	e.uvarint(n.CreateIndex)
	e.uvarint(n.ModifyIndex)
}

func decNode(d *decoder, n *Node) {
	n.ID = d.str()
	n.Node = d.str()
	n.Address = d.str()
	n.Datacenter = d.str()
	n.TaggedAddresses = d.strMap()
	n.Meta = d.strMap()
	n.CreateIndex = d.uvarint()
	n.ModifyIndex = d.uvarint()
}

func encService(e *encoder, s *NodeService) {
	e.str(s.Kind)
	e.str(s.ID)
	e.str(s.Service)
	e.strs(s.Tags)
	e.str(s.Address)
	e.uvarint(uint64(len(s.TaggedAddresses)))
	for _, k := range sortedKeys(s.TaggedAddresses) {
		e.str(k)
		e.str(s.TaggedAddresses[k].Address)
		e.varint(int64(s.TaggedAddresses[k].Port))
	}
	e.strMap(s.Meta)
	e.varint(int64(s.Port))
	e.varint(int64(s.Weights.Passing))
	e.varint(int64(s.Weights.Warning))
	e.boolean(s.EnableTagOverride)
	e.uvarint(s.CreateIndex)
	e.uvarint(s.ModifyIndex)
}

func decService(d *decoder, s *NodeService) { decServiceTags(d, s, nil) }

// decServiceTags is decService that decodes one or two tags into tagBuf
// (if set) instead of a new slice, leaving s.Tags nil; it returns how many.
func decServiceTags(d *decoder, s *NodeService, tagBuf *[2]string) (inBuf int) {
	s.Kind = d.str()
	s.ID = d.str()
	s.Service = d.str()
	if n := d.count(); tagBuf != nil && n > 0 && n <= len(tagBuf) {
		for i := range n {
			tagBuf[i] = d.str()
		}
		inBuf = n
	} else if n > 0 {
		s.Tags = make([]string, n)
		for i := range s.Tags {
			s.Tags[i] = d.str()
		}
	}
	s.Address = d.str()
	if n := d.count(); n > 0 {
		s.TaggedAddresses = make(map[string]ServiceAddress, n)
		for range n {
			k := d.str()
			s.TaggedAddresses[k] = ServiceAddress{Address: d.str(), Port: int(d.varint())}
		}
	}
	s.Meta = d.strMap()
	s.Port = int(d.varint())
	s.Weights.Passing = int(d.varint())
	s.Weights.Warning = int(d.varint())
	s.EnableTagOverride = d.boolean()
	s.CreateIndex = d.uvarint()
	s.ModifyIndex = d.uvarint()
	return inBuf
}

func encCheck(e *encoder, c *HealthCheck) {
	for _, s := range [...]string{c.Node, c.CheckID, c.Name, c.Status, c.Notes,
		c.Output, c.ServiceID, c.ServiceName} {
		e.str(s)
	}
	e.strs(c.ServiceTags)
	e.str(c.Type)
	e.str(c.Interval)
	e.str(c.Timeout)
	e.varint(int64(c.ExposedPort))
	encDefinition(e, &c.Definition)
	e.uvarint(c.CreateIndex)
	e.uvarint(c.ModifyIndex)
}

func decCheck(d *decoder, c *HealthCheck) {
	for _, p := range [...]*string{&c.Node, &c.CheckID, &c.Name, &c.Status, &c.Notes,
		&c.Output, &c.ServiceID, &c.ServiceName} {
		*p = d.str()
	}
	c.ServiceTags = d.strs()
	c.Type = d.str()
	c.Interval = d.str()
	c.Timeout = d.str()
	c.ExposedPort = int(d.varint())
	decDefinition(d, &c.Definition)
	c.CreateIndex = d.uvarint()
	c.ModifyIndex = d.uvarint()
}

func encDefinition(e *encoder, def *HealthCheckDefinition) {
	e.uvarint(uint64(len(def.Header)))
	for _, k := range sortedKeys(def.Header) {
		e.str(k)
		e.strs(def.Header[k])
	}
	for _, s := range [...]string{def.HTTP, def.Method, def.Body, def.TLSServerName,
		def.TCP, def.UDP, def.GRPC, def.OSService, def.Interval, def.Timeout,
		def.DeregisterCriticalServiceAfter} {
		e.str(s)
	}
	e.boolean(def.TLSSkipVerify)
	e.boolean(def.TCPUseTLS)
	e.boolean(def.GRPCUseTLS)
}

func decDefinition(d *decoder, def *HealthCheckDefinition) {
	if n := d.count(); n > 0 {
		def.Header = make(map[string][]string, n)
		for range n {
			k := d.str()
			def.Header[k] = d.strs()
		}
	}
	for _, p := range [...]*string{&def.HTTP, &def.Method, &def.Body, &def.TLSServerName,
		&def.TCP, &def.UDP, &def.GRPC, &def.OSService, &def.Interval, &def.Timeout,
		&def.DeregisterCriticalServiceAfter} {
		*p = d.str()
	}
	def.TLSSkipVerify = d.boolean()
	def.TCPUseTLS = d.boolean()
	def.GRPCUseTLS = d.boolean()
}

func encKVPair(e *encoder, p *KVPair) {
	e.uvarint(p.LockIndex)
	e.str(p.Key)
	e.uvarint(p.Flags)
	e.bytes(p.Value)
	e.str(p.Session)
	e.uvarint(p.CreateIndex)
	e.uvarint(p.ModifyIndex)
}

func decKVPair(d *decoder, p *KVPair) {
	p.LockIndex = d.uvarint()
	p.Key = d.str()
	p.Flags = d.uvarint()
	p.Value = d.bytes()
	p.Session = d.str()
	p.CreateIndex = d.uvarint()
	p.ModifyIndex = d.uvarint()
}

func encSession(e *encoder, s *SessionEntry) {
	e.str(s.ID)
	e.str(s.Name)
	e.str(s.Node)
	e.varint(int64(s.LockDelay))
	e.str(s.Behavior)
	e.str(s.TTL)
	e.strs(s.NodeChecks)
	e.uvarint(uint64(len(s.ServiceChecks)))
	for _, c := range s.ServiceChecks {
		e.str(c.ID)
		e.str(c.Namespace)
	}
	e.uvarint(s.CreateIndex)
	e.uvarint(s.ModifyIndex)
}

func decSession(d *decoder, s *SessionEntry) {
	s.ID = d.str()
	s.Name = d.str()
	s.Node = d.str()
	s.LockDelay = time.Duration(d.varint())
	s.Behavior = d.str()
	s.TTL = d.str()
	s.NodeChecks = d.strs()
	if n := d.count(); n > 0 {
		s.ServiceChecks = make([]ServiceCheck, n)
		for i := range s.ServiceChecks {
			s.ServiceChecks[i] = ServiceCheck{ID: d.str(), Namespace: d.str()}
		}
	}
	s.CreateIndex = d.uvarint()
	s.ModifyIndex = d.uvarint()
}

func encCoordinate(e *encoder, c *CoordinateEntry) {
	e.str(c.Node)
	e.str(c.Segment)
	e.uvarint(uint64(len(c.Coord.Vec)))
	for _, f := range c.Coord.Vec {
		e.float(f)
	}
	e.float(c.Coord.Error)
	e.float(c.Coord.Adjustment)
	e.float(c.Coord.Height)
}

func decCoordinate(d *decoder, c *CoordinateEntry) {
	c.Node = d.str()
	c.Segment = d.str()
	if n := d.count(); n > 0 {
		c.Coord.Vec = make([]float64, n)
		for i := range c.Coord.Vec {
			c.Coord.Vec[i] = d.float()
		}
	}
	c.Coord.Error = d.float()
	c.Coord.Adjustment = d.float()
	c.Coord.Height = d.float()
}

// sortedKeys returns m's keys in order (maps iterate randomly; encodings and
// hashes must not).
func sortedKeys[V any](m map[string]V) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
