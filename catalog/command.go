package catalog

import (
	"errors"
	"fmt"
)

// Commands are the only way the replicated state changes. A server encodes
// one with EncodeCommand, hands the bytes to raft, and every server's FSM
// decodes and applies them in log order.
//
// Wire layout: one version byte (commandVersion), one CommandType byte, then
// the body in the binary codec of codec.go. A decoder that meets an unknown
// version or type refuses the entry with an error (counted by the FSM), so a
// newer server's command never half-applies on an older one.

// commandVersion is the encoding version written by this code.
const commandVersion byte = 1

// CommandType identifies the operation a command carries.
type CommandType uint8

// Command types; the numbers are on the wire, never reuse one.
const (
	CmdRegister CommandType = iota + 1
	CmdDeregister
	CmdKV
	CmdSession
	CmdTxn
	CmdCoordinates
	CmdTombstoneReap
)

func (t CommandType) String() string {
	switch t {
	case CmdRegister:
		return "register"
	case CmdDeregister:
		return "deregister"
	case CmdKV:
		return "kv"
	case CmdSession:
		return "session"
	case CmdTxn:
		return "txn"
	case CmdCoordinates:
		return "coordinates"
	case CmdTombstoneReap:
		return "tombstone-reap"
	}
	return fmt.Sprintf("command(%d)", uint8(t))
}

// Command is one of the *Request types below.
type Command interface {
	CommandType() CommandType
	encodeBody(e *encoder)
	decodeBody(d *decoder)
}

// RegisterRequest upserts a node, optionally one service on it, and checks,
// atomically (Consul's Catalog.Register). Node.Node is required; so is
// Node.Address unless SkipNodeUpdate, which leaves an existing node as is.
type RegisterRequest struct {
	Node           Node
	SkipNodeUpdate bool
	Service        *NodeService
	Checks         []HealthCheck
}

// DeregisterRequest removes a check (CheckID set), a service and its checks
// (ServiceID set) or a whole node with its services, checks and sessions.
type DeregisterRequest struct {
	Node      string
	ServiceID string
	CheckID   string
}

// KV verbs (Consul's KVOp names, used by KVRequest and in transactions).
const (
	KVSet            = "set"
	KVCAS            = "cas"
	KVLock           = "lock"
	KVUnlock         = "unlock"
	KVGet            = "get"
	KVGetOrEmpty     = "get-or-empty"
	KVGetTree        = "get-tree"
	KVCheckIndex     = "check-index"
	KVCheckSession   = "check-session"
	KVCheckNotExists = "check-not-exists"
	KVDelete         = "delete"
	KVDeleteCAS      = "delete-cas"
	KVDeleteTree     = "delete-tree"
)

// KVRequest is one KV operation. Index is the CAS index (cas, delete-cas,
// check-index); Session the lock holder (lock, unlock, check-session).
type KVRequest struct {
	Verb    string
	Key     string
	Value   []byte
	Flags   uint64
	Index   uint64
	Session string
}

// Session verbs.
const (
	SessionCreate  = "create"
	SessionDestroy = "destroy"
	SessionRenew   = "renew"
)

// SessionRequest creates, destroys or renews a session. The proposer
// generates Session.ID (a UUID) before proposing, so every server stores the
// same ID; destroy and renew only read Session.ID.
type SessionRequest struct {
	Verb    string
	Session SessionEntry
}

// Verbs of node, service, check and session operations in a transaction.
const (
	OpGet       = "get"
	OpSet       = "set"
	OpCAS       = "cas"
	OpDelete    = "delete"
	OpDeleteCAS = "delete-cas"
)

// TxnOp is one operation of a transaction; exactly one field is set.
type TxnOp struct {
	KV      *KVRequest    `json:",omitempty"`
	Node    *TxnNodeOp    `json:",omitempty"`
	Service *TxnServiceOp `json:",omitempty"`
	Check   *TxnCheckOp   `json:",omitempty"`
	Session *TxnSessionOp `json:",omitempty"`
}

// TxnNodeOp operates on a node; cas and delete-cas compare Node.ModifyIndex.
type TxnNodeOp struct {
	Verb string
	Node Node
}

// TxnServiceOp operates on a service of Node; cas compares ModifyIndex.
type TxnServiceOp struct {
	Verb    string
	Node    string
	Service NodeService
}

// TxnCheckOp operates on a check; cas compares Check.ModifyIndex.
type TxnCheckOp struct {
	Verb  string
	Check HealthCheck
}

// TxnSessionOp deletes (invalidates) a session.
type TxnSessionOp struct {
	Verb    string
	Session SessionEntry
}

// TxnRequest applies Ops atomically: all of them or none (Consul's Txn.Apply).
type TxnRequest struct {
	Ops []TxnOp
}

// CoordinateBatchRequest stores a batch of node coordinates.
type CoordinateBatchRequest struct {
	Updates []CoordinateEntry
}

// TombstoneReapRequest forgets KV tombstones at or below Index. The leader
// proposes it once tombstones are older than every blocking query that could
// still care (Consul's tombstone GC).
type TombstoneReapRequest struct {
	Index uint64
}

// maxTxnOps bounds a transaction, as Consul's txn endpoint does.
const maxTxnOps = 128

// EncodeCommand returns the wire form of c.
func EncodeCommand(c Command) []byte {
	e := encoder{buf: make([]byte, 0, 256)}
	e.byte1(commandVersion)
	e.byte1(byte(c.CommandType()))
	c.encodeBody(&e)
	return e.buf
}

// ErrMalformedCommand wraps every decoding failure.
var ErrMalformedCommand = errors.New("malformed catalog command")

// DecodeCommand parses the wire form of a command. Malformed input is an
// error, never a panic.
func DecodeCommand(b []byte) (Command, error) { return decodeCommand(b, nil) }

// decodeCommand decodes b, sharing string maps through maps if it is set.
func decodeCommand(b []byte, maps *mapIntern) (Command, error) {
	var d decoder
	return decodeCommandWith(&d, b, maps, nil, nil)
}

// decodeCommandWith is decodeCommand with a caller-owned decoder: Apply
// reuses one, which would otherwise escape to the heap on every command
// (it is handed to decodeBody through an interface).
//
// A register command is decoded into reg if it is set (Apply's reused
// request); the caller must then be done with the previous one.
func decodeCommandWith(d *decoder, b []byte, maps *mapIntern, reg *RegisterRequest, buf *registerSvcCheck) (Command, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes, need at least a version and a type byte", ErrMalformedCommand, len(b))
	}
	if b[0] != commandVersion {
		return nil, fmt.Errorf("%w: encoding version %d, this server reads version %d (upgrade it)",
			ErrMalformedCommand, b[0], commandVersion)
	}
	var c Command
	if CommandType(b[1]) != CmdRegister {
		if c = newCommand(CommandType(b[1])); c == nil {
			return nil, fmt.Errorf("%w: unknown command type %d", ErrMalformedCommand, b[1])
		}
	}
	if c == nil && reg != nil {
		*d = lendingDecoder(b[2:]) // see decodeRegister
	} else {
		*d = newDecoder(b[2:])
	}
	d.maps = maps
	if c == nil {
		c = decodeRegister(d, reg, buf)
	} else {
		c.decodeBody(d)
	}
	if err := d.done(c.CommandType().String()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedCommand, err)
	}
	return c, nil
}

func newCommand(t CommandType) Command {
	switch t {
	case CmdRegister:
		return &RegisterRequest{}
	case CmdDeregister:
		return &DeregisterRequest{}
	case CmdKV:
		return &KVRequest{}
	case CmdSession:
		return &SessionRequest{}
	case CmdTxn:
		return &TxnRequest{}
	case CmdCoordinates:
		return &CoordinateBatchRequest{}
	case CmdTombstoneReap:
		return &TombstoneReapRequest{}
	}
	return nil
}

func (*RegisterRequest) CommandType() CommandType        { return CmdRegister }
func (*DeregisterRequest) CommandType() CommandType      { return CmdDeregister }
func (*KVRequest) CommandType() CommandType              { return CmdKV }
func (*SessionRequest) CommandType() CommandType         { return CmdSession }
func (*TxnRequest) CommandType() CommandType             { return CmdTxn }
func (*CoordinateBatchRequest) CommandType() CommandType { return CmdCoordinates }
func (*TombstoneReapRequest) CommandType() CommandType   { return CmdTombstoneReap }

func (r *RegisterRequest) encodeBody(e *encoder) {
	encNode(e, &r.Node)
	e.boolean(r.SkipNodeUpdate)
	e.boolean(r.Service != nil)
	if r.Service != nil {
		encService(e, r.Service)
	}
	e.uvarint(uint64(len(r.Checks)))
	for i := range r.Checks {
		encCheck(e, &r.Checks[i])
	}
}

// decodeBody reads a registration as decodeRegister does (the one reader
// of this format; decodeCommandWith calls it directly).
func (r *RegisterRequest) decodeBody(d *decoder) { decodeRegister(d, r, nil) }

// Registrations are the bulk of the log, and each used to cost four
// allocations before it was applied (request, service, check slice, tags).
// decodeRegister decodes the service into a local first, then allocates
// it with its single check and up to two tags (the usual shapes: an agent
// registering an instance with one check, or updating one check) as one
// object. The parts share a lifetime in practice: the store installs them
// as records together, and a record that outlives its sibling keeps at
// most one request's worth of memory alive. Apply decodes into a request
// and a registerSvcCheck it reuses instead, and the store copies the
// records it keeps (pack.go); the registerSvc shape is for other decoders.
type (
	registerSvcCheck struct {
		svc  NodeService
		chk  [1]HealthCheck
		tags [2]string
	}
	registerSvc struct {
		svc  NodeService
		tags [2]string
	}
)

// decodeRegister decodes a RegisterRequest body into r (a new request if
// r is nil), reading exactly what decodeBody reads.
//
// When Apply decodes into its reused request, strings are borrowed from
// the raft entry (lendingDecoder) and the store copies the ones it keeps
// (pack.go).
//
// buf, if set, holds the service and a single check instead of a new
// object (Apply's reused one; the store copies what it keeps, see
// tx.lent), so that re-registering an unchanged instance allocates
// nothing.
func decodeRegister(d *decoder, r *RegisterRequest, buf *registerSvcCheck) *RegisterRequest {
	if r == nil {
		r = &RegisterRequest{}
	} else {
		*r = RegisterRequest{}
	}
	decNode(d, &r.Node)
	r.SkipNodeUpdate = d.boolean()
	hasSvc := d.boolean()
	if buf != nil {
		decodeRegisterInto(d, r, buf, hasSvc)
		return r
	}
	var svc NodeService
	var tags [2]string
	nTags := 0 // tags held in the array rather than svc.Tags
	if hasSvc {
		nTags = decServiceTags(d, &svc, &tags)
	}
	n := d.count()
	switch {
	case hasSvc && n == 1:
		b := &registerSvcCheck{svc: svc, tags: tags}
		r.Service, r.Checks = &b.svc, b.chk[:]
		if nTags > 0 {
			b.svc.Tags = b.tags[:nTags:nTags]
		}
	case hasSvc:
		b := &registerSvc{svc: svc, tags: tags}
		r.Service = &b.svc
		if nTags > 0 {
			b.svc.Tags = b.tags[:nTags:nTags]
		}
	}
	if n > 0 && r.Checks == nil {
		r.Checks = make([]HealthCheck, n)
	}
	for i := range r.Checks {
		decCheck(d, &r.Checks[i])
	}
	return r
}

// decodeRegisterInto is the rest of decodeRegister (the node and the two
// flags are read) decoding into buf, Apply's reused buffer, which holds
// any shape of service and single check. The service is decoded in place:
// buf lives in the heap, so copying a service decoded elsewhere into it
// would pay the GC's write barrier for each of its pointers once more.
func decodeRegisterInto(d *decoder, r *RegisterRequest, buf *registerSvcCheck, hasSvc bool) {
	if hasSvc {
		buf.svc = NodeService{}
		buf.tags = [2]string{}
		if nTags := decServiceTags(d, &buf.svc, &buf.tags); nTags > 0 {
			buf.svc.Tags = buf.tags[:nTags:nTags]
		}
		r.Service = &buf.svc
	}
	switch n := d.count(); n {
	case 0:
	case 1:
		buf.chk[0] = HealthCheck{}
		r.Checks = buf.chk[:]
	default:
		r.Checks = make([]HealthCheck, n)
	}
	for i := range r.Checks {
		decCheck(d, &r.Checks[i])
	}
}

func (r *DeregisterRequest) encodeBody(e *encoder) {
	e.str(r.Node)
	e.str(r.ServiceID)
	e.str(r.CheckID)
}

func (r *DeregisterRequest) decodeBody(d *decoder) {
	r.Node = d.str()
	r.ServiceID = d.str()
	r.CheckID = d.str()
}

func (r *KVRequest) encodeBody(e *encoder) {
	e.str(r.Verb)
	e.str(r.Key)
	e.bytes(r.Value)
	e.uvarint(r.Flags)
	e.uvarint(r.Index)
	e.str(r.Session)
}

func (r *KVRequest) decodeBody(d *decoder) {
	r.Verb = d.str()
	r.Key = d.str()
	r.Value = d.bytes()
	r.Flags = d.uvarint()
	r.Index = d.uvarint()
	r.Session = d.str()
}

func (r *SessionRequest) encodeBody(e *encoder) {
	e.str(r.Verb)
	encSession(e, &r.Session)
}

func (r *SessionRequest) decodeBody(d *decoder) {
	r.Verb = d.str()
	decSession(d, &r.Session)
}

// Transaction op tags on the wire.
const (
	txnTagKV byte = iota + 1
	txnTagNode
	txnTagService
	txnTagCheck
	txnTagSession
)

func (r *TxnRequest) encodeBody(e *encoder) {
	e.uvarint(uint64(len(r.Ops)))
	for _, op := range r.Ops {
		switch {
		case op.KV != nil:
			e.byte1(txnTagKV)
			op.KV.encodeBody(e)
		case op.Node != nil:
			e.byte1(txnTagNode)
			e.str(op.Node.Verb)
			encNode(e, &op.Node.Node)
		case op.Service != nil:
			e.byte1(txnTagService)
			e.str(op.Service.Verb)
			e.str(op.Service.Node)
			encService(e, &op.Service.Service)
		case op.Check != nil:
			e.byte1(txnTagCheck)
			e.str(op.Check.Verb)
			encCheck(e, &op.Check.Check)
		case op.Session != nil:
			e.byte1(txnTagSession)
			e.str(op.Session.Verb)
			encSession(e, &op.Session.Session)
		default:
			e.byte1(0) // an empty op; apply reports it as an error
		}
	}
}

func (r *TxnRequest) decodeBody(d *decoder) {
	n := d.count()
	if n == 0 {
		return
	}
	r.Ops = make([]TxnOp, n)
	for i := range r.Ops {
		op := &r.Ops[i]
		switch tag := d.byte1(); tag {
		case 0:
		case txnTagKV:
			op.KV = &KVRequest{}
			op.KV.decodeBody(d)
		case txnTagNode:
			op.Node = &TxnNodeOp{Verb: d.str()}
			decNode(d, &op.Node.Node)
		case txnTagService:
			op.Service = &TxnServiceOp{Verb: d.str(), Node: d.str()}
			decService(d, &op.Service.Service)
		case txnTagCheck:
			op.Check = &TxnCheckOp{Verb: d.str()}
			decCheck(d, &op.Check.Check)
		case txnTagSession:
			op.Session = &TxnSessionOp{Verb: d.str()}
			decSession(d, &op.Session.Session)
		default:
			d.fail(fmt.Errorf("txn op %d has unknown tag %d", i, tag))
			return
		}
	}
}

func (r *CoordinateBatchRequest) encodeBody(e *encoder) {
	e.uvarint(uint64(len(r.Updates)))
	for i := range r.Updates {
		encCoordinate(e, &r.Updates[i])
	}
}

func (r *CoordinateBatchRequest) decodeBody(d *decoder) {
	if n := d.count(); n > 0 {
		r.Updates = make([]CoordinateEntry, n)
		for i := range r.Updates {
			decCoordinate(d, &r.Updates[i])
		}
	}
}

func (r *TombstoneReapRequest) encodeBody(e *encoder) { e.uvarint(r.Index) }
func (r *TombstoneReapRequest) decodeBody(d *decoder) { r.Index = d.uvarint() }
