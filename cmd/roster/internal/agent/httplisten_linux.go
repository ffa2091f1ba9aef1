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

// listenShared binds n sockets to addr with SO_REUSEPORT. A plain bind
// comes first and is released at once: it fails when anything holds the
// port, including another process's SO_REUSEPORT sockets, which the shared
// sockets would otherwise join silently (two agents on one port, each
// getting a share of the connections). It also resolves port 0 to the
// port the kernel picked, so that all n sockets share that one.
func listenShared(addr string, n int) ([]net.Listener, error) {
	probe, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	bound := probe.Addr().String()
	probe.Close()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
		})
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
