package rpc

import (
	"io"
	"net"
	"testing"
	"time"
)

// discardConn accepts and drops every write.
type discardConn struct{}

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }
func (discardConn) Close() error                { return nil }

// Closing a pool connection's codec must end its flusher goroutine; each
// evicted or reaped connection used to leave one behind for good.
func TestClientCodec_CloseStopsFlusher(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := newClientCodec(a, DefaultMaxFrameBytes, nil)
	c.Close()
	select {
	case <-c.out.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("flusher goroutine still running after the codec was closed")
	}
}

// A writer that fills the buffer with the first piece of a message (no
// Kick yet) and writes the next piece must not wait forever.
func TestBatchWriter_FullBufferWithoutKickStillDrains(t *testing.T) {
	w := newBatchWriter(discardConn{})
	defer w.Close()
	done := make(chan error, 1)
	go func() {
		big := make([]byte, maxPendingBytes)
		if _, err := w.Write(big); err != nil {
			done <- err
			return
		}
		_, err := w.Write([]byte("rest of the message"))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil && err != io.ErrClosedPipe {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second Write blocked on a full buffer that nobody flushes")
	}
}
