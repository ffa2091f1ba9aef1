//go:build linux && (amd64 || arm64 || 386 || arm || riscv64 || ppc64 || ppc64le || s390x || loong64)

package agent

import (
	"context"
	"net"
	"syscall"
)

// soReusePort is SO_REUSEPORT on these architectures (asm-generic
// socket.h); the syscall package does not name it.
const soReusePort = 0xf

// Keep-alive probes of accepted HTTP connections, as Go sets them on
// every accepted connection by default (net.ListenConfig.KeepAlive 0):
// first probe after 15 s idle, then every 15 s, dead after 9 unanswered.
// They find the peers of parked blocking queries that vanished without a
// FIN (a crashed host), which would otherwise hold a goroutine until
// their wait ends.
const (
	keepAliveIdleSecs     = 15
	keepAliveIntervalSecs = 15
	keepAliveProbes       = 9
)

// listenShared binds n sockets to addr with SO_REUSEPORT. A plain bind
// comes first and is released at once: it fails when anything holds the
// port, including another process's SO_REUSEPORT sockets, which the shared
// sockets would otherwise join silently (two agents on one port, each
// getting a share of the connections). It also resolves port 0 to the
// port the kernel picked, so that all n sockets share that one.
//
// The keep-alive settings go on the listening sockets, once: Linux copies
// a listener's socket options to every connection it accepts, and Go,
// told not to (KeepAlive -1), then skips the four setsockopt calls per
// accepted connection it would make. Ten thousand watchers reconnecting
// at once are forty thousand system calls fewer, on a path where each
// connection costs the agent a few dozen.
func listenShared(addr string, n int) ([]net.Listener, error) {
	probe, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	bound := probe.Addr().String()
	probe.Close()
	lc := net.ListenConfig{KeepAlive: -1, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = setListenerOptions(int(fd)) })
		if err != nil {
			return err
		}
		return serr
	}}
	ls := make([]net.Listener, 0, n)
	for range n {
		l, err := lc.Listen(context.Background(), "tcp", bound)
		if err != nil {
			closeAll(ls)
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// setListenerOptions sets SO_REUSEPORT and the keep-alive options that
// accepted connections inherit.
func setListenerOptions(fd int) error {
	opts := []struct{ level, name, value int }{
		{syscall.SOL_SOCKET, soReusePort, 1},
		{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, keepAliveIdleSecs},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, keepAliveIntervalSecs},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepAliveProbes},
	}
	for _, o := range opts {
		if err := syscall.SetsockoptInt(fd, o.level, o.name, o.value); err != nil {
			return err
		}
	}
	return nil
}
