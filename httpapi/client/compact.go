package client

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"roster/catalog"
)

// The compact delta form: what GET /v1/roster/registry/delta?format=compact
// answers, and what the Watcher asks for. The JSON form spells out every
// field name of every change; a health flip of one instance is ~120 bytes
// of JSON plus ~400 of headers. A watcher following 10,000 instances pays
// that for every change, so the delta must be small next to a gzipped full
// registry (~21 bytes per instance) or it does not pay. The compact form
// is binary, costs ~7 bytes per health flip and is sent with lean headers
// (no X-Consul-*, no ETag, no Content-Type: the client asked for it by
// name), ~200 bytes on the wire for ten flips. Layout, integers as
// unsigned varints (encoding/binary) unless noted:
//
//	version   byte 0x02 (a JSON body starts with '{'; the first byte tells them apart)
//	scheme    uvarint: HashScheme, the scheme of Hash (absent in version 0x01,
//	          which decodes as scheme 0, "older than schemes")
//	From      uvarint
//	To-From   uvarint
//	Hash      32 bytes: the SHA-256 sum the hex Hash spells
//	count     uvarint, then count changes:
//	  head    byte: bits 0-2 Kind; bit 3 Index is the previous change's +1
//	          (the first's previous is From) else a uvarint gap follows;
//	          bits 4-5 Instance.Health as a code (1 passing, 2 warning,
//	          3 critical, 0 none or spelled out); bit 6 short form; bit 7 long form
//	  short   (a health flip as the store sends it: Instance{Node, ID, Service, Health}):
//	          str(Node) str(ID) str(Service)
//	  long    byte: bit 0 Change.Node, bit 1 Instance, bit 2 Fields; then
//	          str(Change.Node); the instance: str(Node) str(ID), a byte naming
//	          the non-empty fields (bit 0 NodeAddress, 1 Datacenter, 2 Service,
//	          3 Tags, 4 Address, 5 Port, 6 Meta, 7 Health spelled out) and
//	          their values; then Fields as a count and raw strings.
//
// str() front-codes a string against the previous string in the same slot
// (node names, IDs, service names): a uvarint a, 0 meaning "the same
// again", else a-1 bytes shared with the previous value, then a raw
// string (uvarint length, bytes) for the rest. Raw strings elsewhere;
// Port is a signed varint; Tags a count and raw strings; Meta a count and
// key, value raw strings in key order.

// compactVersion is the version this package writes; it also reads
// compactVersionNoScheme, the layout before the scheme field.
const (
	compactVersion         = 0x02
	compactVersionNoScheme = 0x01
)

// Bits of a change's head byte.
const (
	headKindMask  = 0x07
	headNextIndex = 0x08
	headHealthSh  = 4
	headShort     = 0x40
	headLong      = 0x80
)

// Bits of the long form's first byte.
const (
	longNode     = 0x01
	longInstance = 0x02
	longFields   = 0x04
)

// Bits of an instance's field byte, in catalog.Instance order.
const (
	fNodeAddress = 1 << iota
	fDatacenter
	fService
	fTags
	fAddress
	fPort
	fMeta
	fHealth
)

// healthCodes are the Health values with a two-bit code (index = code).
var healthCodes = [...]string{1: "passing", 2: "warning", 3: "critical"}

func healthCode(h string) byte {
	for i, s := range healthCodes {
		if i > 0 && s == h {
			return byte(i)
		}
	}
	return 0
}

// slots hold the previous string of each front-coded kind.
type slots struct{ node, id, service string }

// AppendCompactDelta appends d's compact encoding to dst. It fails only
// when d.Hash is not a hex SHA-256 sum, d.HashScheme is negative or the
// changes go back in index.
func AppendCompactDelta(dst []byte, d *catalog.Delta) ([]byte, error) {
	sum, err := hex.DecodeString(d.Hash)
	if err != nil || len(sum) != 32 {
		return dst, fmt.Errorf("client: compact delta: hash %q is not a hex SHA-256 sum", d.Hash)
	}
	if d.To < d.From {
		return dst, fmt.Errorf("client: compact delta: To %d is before From %d", d.To, d.From)
	}
	if d.HashScheme < 0 {
		return dst, fmt.Errorf("client: compact delta: hash scheme %d is negative", d.HashScheme)
	}
	dst = append(dst, compactVersion)
	dst = binary.AppendUvarint(dst, uint64(d.HashScheme))
	dst = binary.AppendUvarint(dst, d.From)
	dst = binary.AppendUvarint(dst, d.To-d.From)
	dst = append(dst, sum...)
	dst = binary.AppendUvarint(dst, uint64(len(d.Changes)))
	prev, sl := d.From, &slots{}
	for i := range d.Changes {
		c := &d.Changes[i]
		if c.Index < prev || c.Kind > headKindMask {
			return dst, fmt.Errorf("client: compact delta: change %d (index %d, kind %d) does not fit after index %d", i, c.Index, c.Kind, prev)
		}
		dst = appendChange(dst, c, prev, sl)
		prev = c.Index
	}
	return dst, nil
}

func appendChange(dst []byte, c *catalog.Change, prev uint64, sl *slots) []byte {
	head := byte(c.Kind)
	if c.Index == prev+1 {
		head |= headNextIndex
	}
	code := byte(0)
	if c.Instance != nil {
		code = healthCode(c.Instance.Health)
	}
	head |= code << headHealthSh
	short := isShort(c, code)
	switch {
	case short:
		head |= headShort
	case c.Node != "" || c.Instance != nil || len(c.Fields) > 0:
		head |= headLong
	}
	dst = append(dst, head)
	if head&headNextIndex == 0 {
		dst = binary.AppendUvarint(dst, c.Index-prev)
	}
	if short {
		dst = sl.appendStr(dst, &sl.node, c.Instance.Node)
		dst = sl.appendStr(dst, &sl.id, c.Instance.ID)
		return sl.appendStr(dst, &sl.service, c.Instance.Service)
	}
	if head&headLong != 0 {
		dst = appendLong(dst, c, code, sl)
	}
	return dst
}

// isShort: a change carrying just the instance's key, service and coded
// health (what the store sends for a health flip).
func isShort(c *catalog.Change, code byte) bool {
	in := c.Instance
	return in != nil && code != 0 && c.Node == "" && len(c.Fields) == 0 &&
		in.NodeAddress == "" && in.Datacenter == "" && len(in.Tags) == 0 &&
		in.Address == "" && in.Port == 0 && len(in.Meta) == 0
}

func appendLong(dst []byte, c *catalog.Change, code byte, sl *slots) []byte {
	var flags byte
	if c.Node != "" {
		flags |= longNode
	}
	if c.Instance != nil {
		flags |= longInstance
	}
	if len(c.Fields) > 0 {
		flags |= longFields
	}
	dst = append(dst, flags)
	if c.Node != "" {
		dst = sl.appendStr(dst, &sl.node, c.Node)
	}
	if c.Instance != nil {
		dst = appendInstance(dst, c.Instance, code, sl)
	}
	if len(c.Fields) > 0 {
		dst = appendStrings(dst, c.Fields)
	}
	return dst
}

func appendInstance(dst []byte, in *catalog.Instance, code byte, sl *slots) []byte {
	dst = sl.appendStr(dst, &sl.node, in.Node)
	dst = sl.appendStr(dst, &sl.id, in.ID)
	var f byte
	for bit, set := range [...]bool{in.NodeAddress != "", in.Datacenter != "", in.Service != "", len(in.Tags) > 0,
		in.Address != "", in.Port != 0, len(in.Meta) > 0, in.Health != "" && code == 0} {
		if set {
			f |= 1 << bit
		}
	}
	dst = append(dst, f)
	if f&fNodeAddress != 0 {
		dst = appendRaw(dst, in.NodeAddress)
	}
	if f&fDatacenter != 0 {
		dst = appendRaw(dst, in.Datacenter)
	}
	if f&fService != 0 {
		dst = sl.appendStr(dst, &sl.service, in.Service)
	}
	if f&fTags != 0 {
		dst = appendStrings(dst, in.Tags)
	}
	if f&fAddress != 0 {
		dst = appendRaw(dst, in.Address)
	}
	if f&fPort != 0 {
		dst = binary.AppendVarint(dst, int64(in.Port))
	}
	if f&fMeta != 0 {
		keys := make([]string, 0, len(in.Meta))
		for k := range in.Meta {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = binary.AppendUvarint(dst, uint64(len(keys)))
		for _, k := range keys {
			dst = appendRaw(appendRaw(dst, k), in.Meta[k])
		}
	}
	if f&fHealth != 0 {
		dst = appendRaw(dst, in.Health)
	}
	return dst
}

// appendStr front-codes s against *prev and makes s the new previous.
func (sl *slots) appendStr(dst []byte, prev *string, s string) []byte {
	if s == *prev {
		return append(dst, 0)
	}
	shared := 0
	for shared < len(s) && shared < len(*prev) && s[shared] == (*prev)[shared] {
		shared++
	}
	*prev = s
	dst = binary.AppendUvarint(dst, uint64(shared)+1)
	return appendRaw(dst, s[shared:])
}

func appendRaw(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ss)))
	for _, s := range ss {
		dst = appendRaw(dst, s)
	}
	return dst
}

// errCompact is what every malformed compact body reports.
var errCompact = errors.New("client: malformed compact delta")
