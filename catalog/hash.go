package catalog

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"slices"
)

// The registry hashcode.
//
// Eureka's clients compare a "hashcode" built from status counts
// ("UP_3_DOWN_1_"): two registries with the same number of instances per
// status hash alike whatever the instances are, so a client that applied a
// wrong delta cannot tell. roster hashes the content instead:
//
//	content(i) = SHA-256(canonicalVersion || canonical(i without health))
//	digest(i)  = SHA-256(instanceVersion || content(i) || health(i))
//	hash       = Σ digest(i)  mod 2^256
//
// over every instance. Addition is commutative, so the order of instances
// does not matter and no sorting is needed; and it is invertible, so an
// update subtracts the old digest and adds the new one: O(1) per change,
// never a scan of the registry. A client mirror (mirror.go) keeps the same
// sum over its copy and compares.
//
// Why two levels: a health flip, by far the most frequent change, leaves
// everything but health alone. With the content digest kept beside the
// instance's digest (instHash), the flip computes the new digest from
// those 32 bytes and the new health, one SHA-256 block, and never reads the
// node and service records, their strings, tags or meta — which at 100k
// instances are cold in the CPU caches and cost more than the hashing. A
// content change (a re-registration) digests both levels. The content
// digest is collision-resistant in the content, so digest(i) still
// separates any two instances that differ in any field.
//
// Why a sum and not XOR: with XOR two identical digests cancel, so two
// copies of one instance (under different keys) would vanish from the hash.
// The key (node, service ID) is part of the canonical encoding, so digests of
// distinct instances are distinct anyway, but the sum costs nothing more.

// InstanceKey identifies a service instance: service IDs are unique per node.
type InstanceKey struct {
	Node string
	ID   string
}

// Instance is the registry content of one service instance: what a
// discovery client needs to pick and reach it. Health is the aggregate of
// the node's checks and the instance's own (critical > warning > passing;
// maintenance counts as critical; no checks means passing).
//
// Empty fields are omitted from JSON to keep deltas small; the canonical
// encoding does not distinguish nil from empty, so a round trip through
// JSON keeps the digest.
type Instance struct {
	Node        string
	NodeAddress string `json:",omitempty"`
	Datacenter  string `json:",omitempty"`
	ID          string
	Service     string
	Tags        []string          `json:",omitempty"`
	Address     string            `json:",omitempty"`
	Port        int               `json:",omitempty"`
	Meta        map[string]string `json:",omitempty"`
	Health      string            `json:",omitempty"` // set in every instance; empty in a patch that leaves it
}

// Key returns the instance's identity.
func (in *Instance) Key() InstanceKey { return InstanceKey{Node: in.Node, ID: in.ID} }

// Clone returns a deep copy.
func (in Instance) Clone() Instance {
	in.Tags = slices.Clone(in.Tags)
	in.Meta = maps.Clone(in.Meta)
	return in
}

// instanceRec is a mirror's instance with its content digest and digest.
type instanceRec struct {
	inst            Instance
	content, digest [sha256.Size]byte
}

// instHash is what the store's hashcode keeps of one instance (in its
// slot): its health (a statusCode), content digest and digest. A health
// flip reads and writes only these 65 bytes (moveHealth), so they sit
// together.
type instHash struct {
	health  uint8
	content [sha256.Size]byte
	digest  [sha256.Size]byte
}

// HashScheme numbers the way the registry hashcode is computed, so that a
// client and a server that compute it differently find out from a number
// instead of from hashes that never match. Registry and Delta carry it;
// Mirror refuses any other. 1 digested each instance in one level over its
// canonical encoding with health; 2 is the two-level scheme above. Change
// it with canonicalVersion and instanceVersion, and with anything else that
// changes the digest of some instance.
const HashScheme = 2

// canonicalVersion and instanceVersion separate this scheme's two levels
// from each other and from any later scheme (v1 digested health together
// with the content in one level). instanceVersion is short so that the
// instance level, 32 bytes of content digest and a health name, fits
// SHA-256's one-block limit of 55 bytes.
const (
	canonicalVersion = "roster-instance-v2\x00"
	instanceVersion  = "roster-inst2\x00"
)

// appendCanonical appends the canonical encoding of in's content, all but
// its health: every field in a fixed order, strings length-prefixed (so
// "ab"+"c" differs from "a"+"bc"), tags in registration order (order is
// content: DNS and clients see it), meta sorted by key.
func appendCanonical(buf []byte, in *Instance) []byte {
	buf = append(buf, canonicalVersion...)
	for _, s := range [...]string{in.Node, in.NodeAddress, in.Datacenter, in.ID,
		in.Service, in.Address} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = binary.AppendVarint(buf, int64(in.Port))
	buf = binary.AppendUvarint(buf, uint64(len(in.Tags)))
	for _, t := range in.Tags {
		buf = binary.AppendUvarint(buf, uint64(len(t)))
		buf = append(buf, t...)
	}
	buf = binary.AppendUvarint(buf, uint64(len(in.Meta)))
	if len(in.Meta) == 1 { // the common case, without sorting
		for k, v := range in.Meta {
			buf = appendKV(buf, k, v)
		}
		return buf
	}
	for _, k := range sortedKeys(in.Meta) {
		buf = appendKV(buf, k, in.Meta[k])
	}
	return buf
}

func appendKV(buf []byte, k, v string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(k)))
	buf = append(buf, k...)
	buf = binary.AppendUvarint(buf, uint64(len(v)))
	return append(buf, v...)
}

// digestInstance returns in's content digest and digest (see the top of
// this file); scratch is a reusable buffer, returned grown.
func digestInstance(scratch []byte, in *Instance) (content, digest [sha256.Size]byte, _ []byte) {
	scratch = appendCanonical(scratch[:0], in)
	content = sha256.Sum256(scratch)
	return content, healthDigest(&content, in.Health), scratch
}

// healthDigest is the digest of the instance whose content digest is
// content, with health: SHA-256(instanceVersion || content || health),
// health length-prefixed. For the three health names that is one SHA-256
// block, encoded on the stack.
func healthDigest(content *[sha256.Size]byte, health string) [sha256.Size]byte {
	var block [64]byte
	buf := append(block[:0], instanceVersion...)
	buf = append(buf, content[:]...)
	buf = binary.AppendUvarint(buf, uint64(len(health)))
	buf = append(buf, health...)
	return sha256.Sum256(buf)
}

// moveHealth is the hashcode's part of a health change: the digest of h's
// instance with health (a statusCode) replaces the old one in the sum and
// in h. It reads h alone, none of the instance's records.
// BenchmarkHashUpdate measures its share of an update.
func (s *sum256) moveHealth(h *instHash, health uint8) {
	digest := healthDigest(&h.content, statusName(health))
	s.sub(&h.digest)
	s.add(&digest)
	h.health, h.digest = health, digest
}

// sum256 is a 256-bit unsigned integer, most significant limb first (the
// digest read as a big-endian number).
type sum256 [4]uint64

func digestLimbs(d *[sha256.Size]byte) sum256 {
	var v sum256
	for i := range v {
		v[i] = binary.BigEndian.Uint64(d[i*8:])
	}
	return v
}

// add sets s = s + d mod 2^256.
func (s *sum256) add(d *[sha256.Size]byte) {
	v := digestLimbs(d)
	var carry uint64
	for i := 3; i >= 0; i-- {
		sum := s[i] + v[i]
		c1 := uint64(0)
		if sum < s[i] {
			c1 = 1
		}
		sum2 := sum + carry
		if sum2 < sum {
			c1 = 1
		}
		s[i], carry = sum2, c1
	}
}

// sub sets s = s - d mod 2^256.
func (s *sum256) sub(d *[sha256.Size]byte) {
	v := digestLimbs(d)
	var borrow uint64
	for i := 3; i >= 0; i-- {
		diff := s[i] - v[i]
		b1 := uint64(0)
		if s[i] < v[i] {
			b1 = 1
		}
		diff2 := diff - borrow
		if diff < borrow {
			b1 = 1
		}
		s[i], borrow = diff2, b1
	}
}

// String is the hashcode as 64 hex digits.
func (s sum256) String() string {
	var b [32]byte
	for i, limb := range s {
		binary.BigEndian.PutUint64(b[i*8:], limb)
	}
	return hex.EncodeToString(b[:])
}

// HashInstances computes the hashcode of a set of instances from scratch.
// Tests compare it with the incrementally maintained one; clients may use it
// to check a full pull.
func HashInstances(instances []Instance) string {
	var sum sum256
	var scratch []byte
	for i := range instances {
		var d [sha256.Size]byte
		_, d, scratch = digestInstance(scratch, &instances[i])
		sum.add(&d)
	}
	return sum.String()
}
