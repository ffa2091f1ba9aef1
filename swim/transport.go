package swim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Transport carries packets (UDP in production) and push-pull streams
// (TCP on the same port number) for one member.
type Transport interface {
	// LocalAddr is the address the transport receives on.
	LocalAddr() netip.AddrPort
	// WriteTo sends one packet; delivery is best-effort.
	WriteTo(b []byte, to netip.AddrPort) error
	// Packets delivers received packets; it is closed by Close.
	Packets() <-chan InPacket
	// DialStream opens a push-pull stream.
	DialStream(to netip.AddrPort, timeout time.Duration) (net.Conn, error)
	// Streams delivers accepted push-pull streams; it is closed by Close.
	Streams() <-chan net.Conn
	Close() error
}

// InPacket is one received packet.
type InPacket struct {
	From netip.AddrPort
	Data []byte
}

var (
	_ Transport = (*NetTransport)(nil)
	_ Transport = (*MemTransport)(nil)
)

// inboxPackets bounds the packets queued between socket and core; beyond
// it packets are dropped, as a full socket buffer would.
const inboxPackets = 1024

// NetTransport is the real transport over a pre-bound UDP socket and TCP
// listener (bind both to the same port, e.g. :8301).
type NetTransport struct {
	conn    net.PacketConn
	ln      net.Listener
	local   netip.AddrPort
	packets chan InPacket
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// NewNetTransport starts reading conn and accepting on ln. It owns both and
// closes them on Close.
func NewNetTransport(conn net.PacketConn, ln net.Listener) (*NetTransport, error) {
	ua, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		return nil, fmt.Errorf("swim: packet conn is %T, want a UDP socket", conn.LocalAddr())
	}
	ta, ok := ln.Addr().(*net.TCPAddr)
	if !ok || ta.Port != ua.Port {
		return nil, fmt.Errorf("swim: TCP listener %v and UDP socket %v must share a port number", ln.Addr(), ua)
	}
	t := &NetTransport{
		conn:    conn,
		ln:      ln,
		local:   ua.AddrPort(),
		packets: make(chan InPacket, inboxPackets),
		streams: make(chan net.Conn, 16),
		done:    make(chan struct{}),
	}
	t.wg.Add(2)
	go t.readLoop()
	go t.acceptLoop()
	return t, nil
}

func (t *NetTransport) readLoop() {
	defer t.wg.Done()
	defer close(t.packets)
	buf := make([]byte, 65536)
	for {
		n, from, err := t.conn.ReadFrom(buf)
		if err != nil {
			if t.closed() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue // transient (e.g. ICMP unreachable surfaced as an error)
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		p := InPacket{From: ua.AddrPort(), Data: append([]byte(nil), buf[:n]...)}
		select {
		case t.packets <- p:
		default: // core is behind: drop like a full socket buffer
		}
	}
}

func (t *NetTransport) acceptLoop() {
	defer t.wg.Done()
	defer close(t.streams)
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.closed() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		select {
		case t.streams <- c:
		case <-t.done:
			c.Close()
			return
		}
	}
}

func (t *NetTransport) closed() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

func (t *NetTransport) LocalAddr() netip.AddrPort { return t.local }
func (t *NetTransport) Packets() <-chan InPacket  { return t.packets }
func (t *NetTransport) Streams() <-chan net.Conn  { return t.streams }

func (t *NetTransport) WriteTo(b []byte, to netip.AddrPort) error {
	_, err := t.conn.WriteTo(b, net.UDPAddrFromAddrPort(to))
	return err
}

func (t *NetTransport) DialStream(to netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", to.String(), timeout)
}

// Close stops the loops and closes the socket and listener.
func (t *NetTransport) Close() error {
	var err error
	t.once.Do(func() {
		close(t.done)
		err = errors.Join(t.conn.Close(), t.ln.Close())
		t.wg.Wait()
	})
	return err
}

// ---- stream framing ----

// writeFrame sends a u32 length prefix and the frame.
func writeFrame(w io.Writer, frame []byte) error {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(frame)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(frame)
	return err
}

// readFrame reads one length-prefixed frame of at most MaxPushPullBytes.
func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxPushPullBytes {
		return nil, fmt.Errorf("swim: push-pull frame of %d bytes exceeds %d", n, MaxPushPullBytes)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(r, frame); err != nil {
		return nil, err
	}
	return frame, nil
}
