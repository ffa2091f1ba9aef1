package client

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"roster/catalog"
)

// decoder reads a compact delta (compact.go). The first malformed read
// sets err; later reads return zero values, so callers check err once.
type decoder struct {
	b   []byte
	err error
	sl  slots
}

func (r *decoder) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errCompact, what)
	}
	r.b = nil
}

func (r *decoder) byte(what string) byte {
	if len(r.b) == 0 {
		r.fail("truncated at " + what)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *decoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint at " + what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a length that must fit in what is left (each item takes at
// least one byte), so a forged count cannot make us allocate.
func (r *decoder) count(what string) int {
	n := r.uvarint(what)
	if n > uint64(len(r.b)) {
		r.fail(what + " exceeds the body")
		return 0
	}
	return int(n)
}

func (r *decoder) raw(what string) string {
	n := r.count(what)
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *decoder) str(prev *string, what string) string {
	a := r.uvarint(what)
	if a == 0 {
		return *prev
	}
	if a-1 > uint64(len(*prev)) {
		r.fail(what + " shares more than the previous value holds")
		return ""
	}
	s := (*prev)[:a-1] + r.raw(what)
	*prev = s
	return s
}

func (r *decoder) strings(what string) []string {
	n := r.count(what)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.raw(what)
	}
	return out
}

// DecodeCompactDelta parses a compact delta body. Bad input is an error
// wrapping errCompact, never a panic.
func DecodeCompactDelta(b []byte) (catalog.Delta, error) {
	r := &decoder{b: b}
	v := r.byte("version")
	if r.err == nil && v != compactVersion && v != compactVersionNoScheme {
		return catalog.Delta{}, fmt.Errorf("%w: version %d, this client reads %d", errCompact, v, compactVersion)
	}
	var d catalog.Delta
	if v == compactVersion {
		// Kept as sent (bounded so it fits an int): the Mirror, not the
		// decoder, says what a scheme it does not know means.
		d.HashScheme = int(min(r.uvarint("HashScheme"), 1<<31-1))
	}
	d.From = r.uvarint("From")
	d.To = d.From + r.uvarint("To")
	if len(r.b) < 32 {
		r.fail("truncated at Hash")
	} else {
		d.Hash, r.b = hex.EncodeToString(r.b[:32]), r.b[32:]
	}
	n := r.count("change count")
	if n > 0 {
		d.Changes = make([]catalog.Change, n)
	}
	prev := d.From
	for i := 0; i < n && r.err == nil; i++ {
		d.Changes[i] = r.change(prev)
		prev = d.Changes[i].Index
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail(fmt.Sprintf("%d bytes after the last change", len(r.b)))
	}
	if r.err != nil {
		return catalog.Delta{}, r.err
	}
	return d, nil
}

func (r *decoder) change(prev uint64) catalog.Change {
	head := r.byte("change head")
	c := catalog.Change{Kind: catalog.ChangeKind(head & headKindMask), Index: prev + 1}
	if head&headNextIndex == 0 {
		c.Index = prev + r.uvarint("index gap")
	}
	health := healthCodes[head>>headHealthSh&3]
	switch {
	case head&headShort != 0 && head&headLong != 0:
		r.fail("change is both short and long")
	case head&headShort != 0:
		c.Instance = &catalog.Instance{Node: r.str(&r.sl.node, "Node"), ID: r.str(&r.sl.id, "ID"),
			Service: r.str(&r.sl.service, "Service"), Health: health}
	case head&headLong != 0:
		r.long(&c, health)
	}
	return c
}

func (r *decoder) long(c *catalog.Change, health string) {
	flags := r.byte("long flags")
	if flags&longNode != 0 {
		c.Node = r.str(&r.sl.node, "Node")
	}
	if flags&longInstance != 0 {
		c.Instance = r.instance(health)
	}
	if flags&longFields != 0 {
		c.Fields = r.strings("Fields")
	}
}

func (r *decoder) instance(health string) *catalog.Instance {
	in := &catalog.Instance{Node: r.str(&r.sl.node, "Node"), ID: r.str(&r.sl.id, "ID"), Health: health}
	f := r.byte("instance fields")
	if f&fNodeAddress != 0 {
		in.NodeAddress = r.raw("NodeAddress")
	}
	if f&fDatacenter != 0 {
		in.Datacenter = r.raw("Datacenter")
	}
	if f&fService != 0 {
		in.Service = r.str(&r.sl.service, "Service")
	}
	if f&fTags != 0 {
		in.Tags = r.strings("Tags")
	}
	if f&fAddress != 0 {
		in.Address = r.raw("Address")
	}
	if f&fPort != 0 {
		p, n := binary.Varint(r.b)
		if n <= 0 || p != int64(int(p)) {
			r.fail("bad Port")
		} else {
			in.Port, r.b = int(p), r.b[n:]
		}
	}
	if f&fMeta != 0 {
		n := r.count("Meta")
		in.Meta = make(map[string]string, n)
		for range n {
			k := r.raw("Meta key")
			in.Meta[k] = r.raw("Meta value")
		}
	}
	if f&fHealth != 0 {
		in.Health = r.raw("Health")
	}
	return in
}
