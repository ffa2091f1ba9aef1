package raft

// Transport carries messages between servers. Requests are answered: the
// receiving shell calls RPC.Respond with the core's response, and the
// sending side's transport delivers that response to its own Consumer as
// a one-way RPC. Delivery is best effort — Raft tolerates loss,
// duplication and reordering — and Send never blocks for long.
//
// Implementations: NetTransport (net/rpc over TCP, production) and
// MemTransport (an in-memory network with fault injection, tests).
type Transport interface {
	// Send delivers m to the server at addr, best effort.
	Send(addr string, m Message)
	// Consumer yields inbound requests and responses.
	Consumer() <-chan RPC
	// LocalAddr is the address other servers use to reach this one.
	LocalAddr() string
}

// RPC is one inbound message. For a request, Respond must be called once
// with the answer (a zero Message if there is none).
type RPC struct {
	Message Message
	respond func(Message)
}

// Respond answers a request; it does nothing for a response.
func (r RPC) Respond(m Message) {
	if r.respond != nil {
		r.respond(m)
	}
}

// NewRPC builds an RPC for transports outside this package; respond may be
// nil for a one-way message.
func NewRPC(m Message, respond func(Message)) RPC { return RPC{Message: m, respond: respond} }
