package catalog

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unsafe"
)

// checkRec is a check as the store keeps it. The public HealthCheck is
// 448 bytes of mostly empty strings (a TTL check leaves the whole
// Definition unset), and one is stored per check, so the store keeps this
// compact form instead and builds a HealthCheck only when it hands one out
// (check, view). Its node is the key it is stored under. Like every record, a checkRec is never modified once
// installed (state.go): a change installs a new one.
type checkRec struct {
	// svc is the service record as it was when the check was last
	// written (nil for a node-level check): its ID is the check's
	// ServiceID, and Consul copies the service's name and tags into a
	// check when it is written, so they are svc.Service and svc.Tags. A
	// pointer rather than copies, since a check usually outlives no
	// version of its service; a restored check whose name and tags no
	// longer match its service gets a record of its own (restoredCheck).
	svc *NodeService
	// strs holds the check's remaining strings, each as a uvarint length
	// and the bytes, in the order of checkStrings: one allocation, and an
	// empty field costs one byte.
	strs        string
	header      map[string][]string // Definition.Header
	exposedPort int
	createIndex uint64
	modifyIndex uint64
	status      uint8 // statusCode: stored checks are passing, warning or critical
	flags       uint8 // the Definition's booleans (checkFlags)
}

// checkStrings lists the string fields of c that checkRec.strs holds, in
// its order. CheckID comes first: it is read most.
func checkStrings(c *HealthCheck) [numCheckStrings]*string {
	d := &c.Definition
	return [...]*string{&c.CheckID, &c.Name, &c.Notes, &c.Output, &c.Type,
		&c.Interval, &c.Timeout, &d.HTTP, &d.Method, &d.Body, &d.TLSServerName, &d.TCP,
		&d.UDP, &d.GRPC, &d.OSService, &d.Interval, &d.Timeout, &d.DeregisterCriticalServiceAfter}
}

const numCheckStrings = 18

// Bits of checkRec.flags.
const (
	flagTLSSkipVerify = 1 << iota
	flagTCPUseTLS
	flagGRPCUseTLS
)

func checkFlags(d *HealthCheckDefinition) uint8 {
	var f uint8
	if d.TLSSkipVerify {
		f |= flagTLSSkipVerify
	}
	if d.TCPUseTLS {
		f |= flagTCPUseTLS
	}
	if d.GRPCUseTLS {
		f |= flagGRPCUseTLS
	}
	return f
}

// statusName is the status a statusCode stands for.
func statusName(code uint8) string {
	switch code {
	case codePassing:
		return HealthPassing
	case codeWarning:
		return HealthWarning
	case codeCritical:
		return HealthCritical
	}
	return ""
}

// checkRecRoom is the room for a check's strings inside its record: 48
// bytes take a usual service check (ID "service:<id>", a name, a type and
// the 18 length bytes) and keep the record in the 112-byte size class.
const checkRecRoom = 48

// roomyCheckRec is a check record with room for its strings.
type roomyCheckRec struct {
	checkRec
	strs [checkRecRoom]byte
}

// newCheckRec returns the record to store for c (validated, its Node the
// stored node's name) with service record svc (whose ID is c's
// ServiceID; nil if c has none). It copies c's strings
// into its own, so c may borrow them from a raft entry; ownHeader says
// that c's Definition.Header does too and must be copied as well.
func newCheckRec(c *HealthCheck, svc *NodeService, ownHeader bool) *checkRec {
	fields := checkStrings(c)
	n := 0
	for _, f := range fields {
		n += uvarintLen(len(*f)) + len(*f)
	}
	var rec *checkRec
	var buf []byte
	if n <= checkRecRoom { // the record and its strings in one allocation
		r := new(roomyCheckRec)
		rec, buf = &r.checkRec, r.strs[:0]
	} else {
		rec, buf = new(checkRec), make([]byte, 0, n)
	}
	for _, f := range fields {
		buf = binary.AppendUvarint(buf, uint64(len(*f)))
		buf = append(buf, *f...)
	}
	*rec = checkRec{
		strs:        unsafe.String(unsafe.SliceData(buf), len(buf)),
		header:      c.Definition.Header,
		exposedPort: c.ExposedPort,
		createIndex: c.CreateIndex,
		modifyIndex: c.ModifyIndex,
		status:      statusCode(c.Status),
		flags:       checkFlags(&c.Definition),
		svc:         svc,
	}
	if len(rec.header) == 0 {
		rec.header = nil
	} else if ownHeader {
		rec.header = make(map[string][]string, len(c.Definition.Header))
		for k, vs := range c.Definition.Header {
			own := make([]string, len(vs))
			for i, v := range vs {
				own[i] = strings.Clone(v)
			}
			rec.header[strings.Clone(k)] = own
		}
	}
	return rec
}

func uvarintLen(n int) int {
	l := 1
	for ; n >= 0x80; n >>= 7 {
		l++
	}
	return l
}

// nextStr splits the first length-prefixed string off s.
func nextStr(s string) (field, rest string) {
	if len(s) > 0 && s[0] < 0x80 { // the usual one-byte length
		n := int(s[0])
		return s[1 : 1+n], s[1+n:]
	}
	n, w := binary.Uvarint(unsafe.Slice(unsafe.StringData(s), len(s)))
	return s[w : w+int(n)], s[w+int(n):]
}

func (r *checkRec) checkID() string {
	id, _ := nextStr(r.strs)
	return id
}

func (r *checkRec) serviceID() string {
	if r.svc == nil {
		return ""
	}
	return r.svc.ID
}

// serviceName returns the check's ServiceName.
func (r *checkRec) serviceName() string {
	if r.svc == nil {
		return ""
	}
	return r.svc.Service
}

// view returns the check, on node, as a HealthCheck sharing the record's
// tags and header: for the store's own use (encoding), never handed out.
func (r *checkRec) view(node string) HealthCheck {
	c := HealthCheck{
		Node:        node,
		Status:      statusName(r.status),
		ExposedPort: r.exposedPort,
		CreateIndex: r.createIndex,
		ModifyIndex: r.modifyIndex,
	}
	if r.svc != nil {
		c.ServiceID, c.ServiceName, c.ServiceTags = r.svc.ID, r.svc.Service, r.svc.Tags
	}
	s := r.strs
	for _, f := range checkStrings(&c) {
		*f, s = nextStr(s)
	}
	d := &c.Definition
	d.Header = r.header
	d.TLSSkipVerify = r.flags&flagTLSSkipVerify != 0
	d.TCPUseTLS = r.flags&flagTCPUseTLS != 0
	d.GRPCUseTLS = r.flags&flagGRPCUseTLS != 0
	return c
}

// check returns the check, on node, as a HealthCheck of the caller's own.
func (r *checkRec) check(node string) HealthCheck {
	c := r.view(node)
	return c.Clone()
}

// sameContent reports whether storing c (on r's node) with service
// record svc would store what r holds, indexes and status aside (the caller compares the
// status codes first: a status change is the common update, and deciding
// it early leaves the rest of a cold record unread).
func (r *checkRec) sameContent(c *HealthCheck, svc *NodeService) bool {
	if r.exposedPort != c.ExposedPort || r.flags != checkFlags(&c.Definition) ||
		r.serviceID() != c.ServiceID || !sameServiceNameTags(r.svc, svc) ||
		!maps.EqualFunc(r.header, c.Definition.Header, slices.Equal[[]string]) {
		return false
	}
	s := r.strs
	for _, f := range checkStrings(c) {
		var field string
		field, s = nextStr(s)
		if field != *f {
			return false
		}
	}
	return true
}

// sameServiceNameTags reports whether a and b (either may be nil, which
// stands for an empty name and no tags) have equal names and tags.
func sameServiceNameTags(a, b *NodeService) bool {
	if a == b {
		return true
	}
	var an, bn string
	var at, bt []string
	if a != nil {
		an, at = a.Service, a.Tags
	}
	if b != nil {
		bn, bt = b.Service, b.Tags
	}
	return an == bn && slices.Equal(at, bt)
}

// restoredCheck returns the record of a check read from a snapshot (its
// strings its own), on a state whose services are restored already.
func (st *state) restoredCheck(c *HealthCheck) (*checkRec, error) {
	switch c.Status {
	case HealthPassing, HealthWarning, HealthCritical:
	default:
		return nil, fmt.Errorf("check %q on node %q has status %q; a stored check is passing, warning or critical",
			c.CheckID, c.Node, c.Status)
	}
	var svc *NodeService
	if c.ServiceID != "" {
		svc = st.service(c.Node, c.ServiceID)
		if svc == nil || svc.Service != c.ServiceName || !slices.Equal(svc.Tags, c.ServiceTags) {
			// The service changed since the check was written.
			svc = &NodeService{ID: c.ServiceID, Service: c.ServiceName, Tags: c.ServiceTags}
		}
	}
	return newCheckRec(c, svc, false), nil
}
