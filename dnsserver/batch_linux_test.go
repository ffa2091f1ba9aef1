//go:build linux && (amd64 || arm64)

package dnsserver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/miekg/dns"
)

func TestBatch_BurstIsAnsweredAndOversizedQuestionsDropped(t *testing.T) {
	s, udp, _ := startServer(t, DefaultConfig(), Deps{View: standardFixture(t).s})
	conn, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	oversized := make([]byte, batchInSize+1)
	copy(oversized, []byte{0xab, 0xcd, 0x01, 0x00, 0, 1})
	if _, err := conn.Write(oversized); err != nil {
		t.Fatal(err)
	}
	// A burst larger than a batch, written before any reply is read.
	const burst = 3 * batchSize
	for i := range burst {
		req := query("web.service.consul.", dns.TypeA, 0)
		req.Id = uint16(i)
		wire, _ := req.Pack()
		if _, err := conn.Write(wire); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[uint16]bool{}
	buf := make([]byte, 512)
	for range burst {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("%d of %d replies: %v", len(seen), burst, err)
		}
		var r dns.Msg
		if err := r.Unpack(buf[:n]); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 || seen[r.Id] {
			t.Fatalf("reply %v (%v)", &r, err)
		}
		seen[r.Id] = true
	}
	if got := s.Stats().Malformed; got != 1 {
		t.Errorf("Malformed %d, want 1 (the oversized question)", got)
	}
}

func TestBatch_AddrPortReadsTheKernelsSockaddr(t *testing.T) {
	for _, want := range []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5353"), netip.MustParseAddrPort("[::1]:53")} {
		var sa6 syscallSockaddr
		sa6.set(want)
		if got := addrPort(&sa6.RawSockaddrInet6); got != want {
			t.Errorf("addrPort %v, want %v", got, want)
		}
	}
}

// syscallSockaddr builds sockaddrs as the kernel writes them (for tests).
type syscallSockaddr struct{ syscall.RawSockaddrInet6 }

func (s *syscallSockaddr) set(ap netip.AddrPort) {
	raw := (*[unsafe.Sizeof(s.RawSockaddrInet6)]byte)(unsafe.Pointer(&s.RawSockaddrInet6))
	if ap.Addr().Is4() {
		v4 := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&s.RawSockaddrInet6))
		v4.Family, v4.Addr = syscall.AF_INET, ap.Addr().As4()
	} else {
		s.Family, s.Addr = syscall.AF_INET6, ap.Addr().As16()
	}
	binary.BigEndian.PutUint16(raw[2:4], ap.Port())
}
