package rpc

import (
	"context"
	"fmt"
	"net"
	"time"
)

// Protocol is the first byte a client writes on a new connection to the
// :8300 listener. It selects who serves the rest of the connection, so one
// port carries the roster endpoints, Raft's transport and (later) snapshot
// streams, as Consul's pool.RPCType does.
type Protocol byte

const (
	// ProtoRPC selects net/rpc for the roster endpoints (Status.*, Catalog.*,
	// KVS.*, ...), served by Server itself.
	ProtoRPC Protocol = 0x01
	// ProtoRaft selects Raft's transport; the raft package registers its
	// handler with Server.Handle.
	ProtoRaft Protocol = 0x02
	// ProtoSnapshot is reserved for streaming snapshots (install and
	// operator snapshot save/restore).
	ProtoSnapshot Protocol = 0x03
)

func (p Protocol) String() string {
	switch p {
	case ProtoRPC:
		return "rpc"
	case ProtoRaft:
		return "raft"
	case ProtoSnapshot:
		return "snapshot"
	}
	return fmt.Sprintf("unknown(0x%02x)", byte(p))
}

// DialFunc opens a connection; net.Dialer.DialContext has this shape, and
// tests inject their own (for example one that refuses or stalls).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// DialProtocol dials addr with dial (a net.Dialer if nil) and writes the
// protocol byte, so the returned connection is already routed to the
// handler of p on the far side. ctx bounds both the dial and the write.
func DialProtocol(ctx context.Context, dial DialFunc, addr string, p Protocol) (net.Conn, error) {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rpc: dial %s: %w", addr, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetWriteDeadline(deadline)
	}
	if _, err := conn.Write([]byte{byte(p)}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("rpc: writing protocol byte %s to %s: %w", p, addr, err)
	}
	conn.SetWriteDeadline(time.Time{})
	return conn, nil
}
