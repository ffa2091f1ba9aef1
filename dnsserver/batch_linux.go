//go:build linux && (amd64 || arm64)

package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// Batched UDP on Linux: recvmmsg(2) reads up to batchSize questions in one
// system call and sendmmsg(2) writes their replies in one more. Under load
// the socket holds many questions at once, and a system call per packet
// was most of the server's CPU time (BenchmarkDNSPerf's server-cpu-µs/q).
// The reply goes to the very sockaddr the kernel filled in for the
// question: no address is parsed, except for questions sent to the slow
// path.

// batchSize is how many packets one system call reads or writes.
const batchSize = 32

// batchInSize is the largest question read in a batch. A bigger one
// (MSG_TRUNC) is counted malformed and dropped: a question is a name and
// a few options, far below this.
const batchInSize = 4096

// mmsghdr is struct mmsghdr: a msghdr and the length received or sent.
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
}

// batch is a reader's recvmmsg/sendmmsg state: slot i of the receive side
// is packet i; the send side lists the replies to send.
type batch struct {
	in     [batchSize]mmsghdr
	inIov  [batchSize]syscall.Iovec
	inBuf  [batchSize][batchInSize]byte
	names  [batchSize]syscall.RawSockaddrInet6 // large enough for IPv4 too
	out    [batchSize]mmsghdr
	outIov [batchSize]syscall.Iovec
	outBuf [batchSize][]byte // grown to the largest reply sent from the slot

	// The functions given to RawConn.Read and Write, made once (a closure
	// per call would allocate), and their results.
	recvFn, sendFn func(fd uintptr) bool
	n              int // recvFn: packets received; sendFn: replies to send
	sent           int // sendFn: replies sent so far
	errno          syscall.Errno
}

func newBatch() *batch {
	b := new(batch)
	for i := range b.in {
		b.inIov[i] = syscall.Iovec{Base: &b.inBuf[i][0]}
		b.inIov[i].SetLen(batchInSize)
		b.in[i].hdr.Iov, b.in[i].hdr.Iovlen = &b.inIov[i], 1
		b.out[i].hdr.Iov, b.out[i].hdr.Iovlen = &b.outIov[i], 1
	}
	b.recvFn, b.sendFn = b.recvmmsg, b.sendmmsg
	return b
}

// runBatched serves sock with recvmmsg/sendmmsg until it is closed. It
// returns false, having read nothing, when the socket gives no raw access.
func (r *udpReader) runBatched(ctx context.Context, l *udpLoop, sock udpSocket) bool {
	rc, err := sock.c.SyscallConn()
	if err != nil {
		return false
	}
	b := newBatch()
	failures := 0
	for {
		n, err := b.receive(rc)
		switch {
		case errors.Is(err, net.ErrClosed):
			return true
		case err != nil:
			r.s.stats.readErrors.Add(1)
			if failures++; failures >= maxConsecutiveReadErrors {
				r.s.publish(Event{Kind: EventReadFailed, Detail: err.Error()})
				return true
			}
			continue
		}
		failures = 0
		replies := r.answerBatch(ctx, l, b, n)
		if err := b.send(rc, replies); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return true
			}
			r.s.stats.writeErrors.Add(1)
		}
	}
}

// receive reads up to batchSize packets, waiting for the first.
func (b *batch) receive(rc syscall.RawConn) (int, error) {
	for i := range b.in {
		b.in[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.in[i].hdr.Namelen = uint32(unsafe.Sizeof(b.names[i]))
		b.in[i].hdr.Flags = 0
	}
	if err := rc.Read(b.recvFn); err != nil {
		return 0, err
	}
	if b.errno != 0 {
		return 0, b.errno
	}
	return b.n, nil
}

// recvmmsg is one non-blocking recvmmsg(2); false (EAGAIN) makes
// RawConn.Read wait until the socket is readable and call it again.
func (b *batch) recvmmsg(fd uintptr) bool {
	for {
		r, _, e := syscall.Syscall6(sysRecvmmsg, fd, uintptr(unsafe.Pointer(&b.in[0])), batchSize,
			syscall.MSG_DONTWAIT, 0, 0)
		b.n, b.errno = int(r), e
		if e != syscall.EINTR {
			return e != syscall.EAGAIN
		}
	}
}

// answerBatch answers packets [0, n) and lays out the replies to send;
// it returns how many there are.
func (r *udpReader) answerBatch(ctx context.Context, l *udpLoop, b *batch, n int) int {
	replies := 0
	for i := range n {
		if b.in[i].hdr.Flags&syscall.MSG_TRUNC != 0 {
			r.s.stats.malformed.Add(1)
			continue
		}
		wire, slow := r.answerPacket(b.inBuf[i][:b.in[i].n])
		if slow != nil {
			wire = r.goSlow(ctx, l, slow, peer{ap: addrPort(&b.names[i])})
		}
		if wire == nil {
			continue
		}
		b.outBuf[replies] = append(b.outBuf[replies][:0], wire...)
		out := &b.out[replies].hdr
		out.Name, out.Namelen = b.in[i].hdr.Name, b.in[i].hdr.Namelen
		b.outIov[replies].Base = &b.outBuf[replies][0]
		b.outIov[replies].SetLen(len(wire))
		replies++
	}
	return replies
}

// send writes replies [0, count), waiting while the socket's buffer is
// full. A reply the kernel refuses is skipped and counted.
func (b *batch) send(rc syscall.RawConn, count int) error {
	b.n, b.sent = count, 0
	var failed error
	for b.sent < b.n {
		if err := rc.Write(b.sendFn); err != nil {
			return err
		}
		if b.errno != 0 && b.errno != syscall.EINTR {
			failed = b.errno
			b.sent++ // skip the reply that failed
		}
	}
	return failed
}

// sendmmsg is one sendmmsg(2) of the replies not yet sent; false (EAGAIN)
// makes RawConn.Write wait until the socket is writable.
func (b *batch) sendmmsg(fd uintptr) bool {
	r, _, e := syscall.Syscall6(sysSendmmsg, fd, uintptr(unsafe.Pointer(&b.out[b.sent])), uintptr(b.n-b.sent), 0, 0, 0)
	if e == syscall.EAGAIN {
		return false
	}
	if b.errno = e; e == 0 {
		b.sent += int(r)
	}
	return true
}

// addrPort reads the address the kernel wrote into sa.
func addrPort(sa *syscall.RawSockaddrInet6) netip.AddrPort {
	raw := (*[unsafe.Sizeof(*sa)]byte)(unsafe.Pointer(sa))
	port := binary.BigEndian.Uint16(raw[2:4])
	if sa.Family == syscall.AF_INET {
		v4 := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(v4.Addr), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port)
}
