//go:build linux && (amd64 || arm64 || 386 || arm || riscv64 || ppc64 || ppc64le || s390x || loong64)

package agent

import (
	"net"
	"syscall"
	"testing"
)

// The listener sets keep-alive once and Go no longer sets it per
// connection: this checks the kernel really hands the settings on to
// every accepted connection.
func TestListenHTTP_AcceptedConnectionsInheritKeepAlive(t *testing.T) {
	primary, extra, err := listenHTTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closeAll(extra) // every connection then goes to primary
	defer primary.Close()
	c, err := net.Dial("tcp", primary.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := primary.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw, err := s.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ level, name, value int }{
		"SO_KEEPALIVE":  {syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		"TCP_KEEPIDLE":  {syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, keepAliveIdleSecs},
		"TCP_KEEPINTVL": {syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, keepAliveIntervalSecs},
		"TCP_KEEPCNT":   {syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepAliveProbes},
	}
	for name, o := range want {
		var got int
		var gerr error
		if err := raw.Control(func(fd uintptr) { got, gerr = syscall.GetsockoptInt(int(fd), o.level, o.name) }); err != nil || gerr != nil {
			t.Fatalf("%s: %v %v", name, err, gerr)
		}
		if got != o.value {
			t.Errorf("accepted connection's %s = %d, want %d (inherited from the listener)", name, got, o.value)
		}
	}
}
