//go:build !(linux && (amd64 || arm64 || 386 || arm || riscv64 || ppc64 || ppc64le || s390x || loong64))

package agent

import "net"

// listenShared binds one socket: sharing a port between accept queues is
// done on Linux only (httplisten_linux.go), on the architectures whose
// SO_REUSEPORT it knows.
func listenShared(addr string, _ int) ([]net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return []net.Listener{l}, nil
}
