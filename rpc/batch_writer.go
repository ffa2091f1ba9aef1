package rpc

import (
	"io"
	"sync"
)

// batchWriter coalesces messages from concurrent callers into fewer
// write(2) calls. Profiles of the round trip showed one write syscall per
// message taking about half of all CPU; with many calls in flight on one
// connection, the messages queued while the flusher is inside a write all
// go out in the next one. A lone caller pays one goroutine hand-off.
//
// Write only appends; Kick asks the flusher goroutine to send what is
// queued. A write error is remembered, returned by later Writes, and
// closes the connection so the peer and net/rpc's reader notice.
type batchWriter struct {
	conn io.WriteCloser
	kick chan struct{} // capacity 1: a pending wake-up
	done chan struct{} // closed by Close
	// exited is closed when flushLoop returns, so tests can prove that
	// closing a codec ends its flusher goroutine.
	exited chan struct{}

	// mu guards pending, spare, err and closed; cond (on mu) wakes writers
	// waiting for pending to drain below maxPendingBytes.
	mu      sync.Mutex
	cond    *sync.Cond
	pending []byte
	spare   []byte
	err     error
	closed  bool
}

// maxPendingBytes bounds what callers may queue ahead of a slow peer;
// beyond it Write blocks until the flusher takes the batch.
const maxPendingBytes = 1 << 20

func newBatchWriter(conn io.WriteCloser) *batchWriter {
	w := &batchWriter{conn: conn, kick: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	go w.flushLoop()
	return w
}

func (w *batchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.pending) >= maxPendingBytes && w.err == nil && !w.closed {
		// The full buffer may hold the start of a message whose writer has
		// not kicked yet (gob writes a message in several pieces); without
		// this kick nobody would ever drain it and we would wait forever.
		w.Kick()
		w.cond.Wait()
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, io.ErrClosedPipe
	}
	w.pending = append(w.pending, p...)
	return len(p), nil
}

// Kick schedules a flush of everything written so far.
func (w *batchWriter) Kick() {
	select {
	case w.kick <- struct{}{}:
	default: // a flush is already pending and will include our bytes
	}
}

func (w *batchWriter) flushLoop() {
	defer close(w.exited)
	for {
		select {
		case <-w.kick:
		case <-w.done:
			return
		}
		w.mu.Lock()
		out := w.pending
		w.pending, w.spare = w.spare[:0], nil
		w.cond.Broadcast()
		w.mu.Unlock()
		if len(out) == 0 {
			continue
		}
		_, err := w.conn.Write(out)
		w.mu.Lock()
		if cap(out) <= 4*maxPendingBytes {
			w.spare = out[:0]
		}
		if err != nil && w.err == nil {
			w.err = err
			w.cond.Broadcast()
		}
		w.mu.Unlock()
		if err != nil {
			w.conn.Close()
			return
		}
	}
}

// Close stops the flusher and closes the connection. Bytes not yet sent
// are dropped, as a closed net.Conn would drop them.
func (w *batchWriter) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.cond.Broadcast()
	w.mu.Unlock()
	close(w.done)
	return w.conn.Close()
}
