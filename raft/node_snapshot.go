package raft

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// The raft loop's half of snapshots: compacting after a snapshot is taken,
// streaming snapshots to followers, receiving them, and installing one the
// core accepted.

// SnapshotTransport is implemented by transports that can carry
// InstallSnapshot (both MemTransport and NetTransport do). CallSnapshot
// delivers one chunk (a MsgSnap) and waits for the receiver's answer: a
// snapshot travels as a sequence of calls, each chunk sent only after the
// previous one was written, so chunks never arrive out of order however
// the transport schedules requests.
type SnapshotTransport interface {
	CallSnapshot(ctx context.Context, addr string, m Message) (Message, error)
}

// snapshotShell is the node's snapshot state; all but wg are owned by run.
type snapshotShell struct {
	sending map[string]bool // followers a snapshot is being streamed to
	doneCh  chan snapSendResult
	in      *incomingSnapshot // the snapshot being received, if any
	ctx     context.Context   // cancelled at shutdown: abandons transfers
	cancel  context.CancelFunc
	wg      sync.WaitGroup // transfer goroutines
}

type snapSendResult struct {
	to   string
	resp Message
	err  error
}

// incomingSnapshot is a snapshot arriving chunk by chunk, written straight
// into a sink of the local store.
type incomingSnapshot struct {
	from   string
	leader string // the leader's ID of the snapshot
	term   uint64
	sink   SnapshotSink
	next   int64 // offset of the next expected chunk
}

func newSnapshotShell() *snapshotShell {
	ctx, cancel := context.WithCancel(context.Background())
	return &snapshotShell{sending: map[string]bool{}, doneCh: make(chan snapSendResult), ctx: ctx, cancel: cancel}
}

func (s *snapshotShell) close() {
	s.cancel()
	s.wg.Wait()
	if s.in != nil {
		s.in.sink.Cancel()
		s.in = nil
	}
}

// snapshotTaken compacts the core's log and the stored log behind a new
// durable snapshot, keeping TrailingLogs entries.
func (n *Node) snapshotTaken(meta SnapshotMeta) error {
	drop := n.core.SnapshotTaken(meta, n.cfg.TrailingLogs)
	if drop == 0 {
		return nil
	}
	first, err := n.logs.FirstIndex()
	if err != nil {
		return fmt.Errorf("raft: compacting the log: %w", err)
	}
	if first != 0 && first <= drop {
		if err := n.logs.DeleteRange(first, drop); err != nil {
			return fmt.Errorf("raft: compacting the log up to %d: %w", drop, err)
		}
	}
	n.log.Info("raft: snapshot taken, log compacted", "snapshot", meta.ID, "index", meta.Index, "log_start", drop+1)
	return nil
}

// installSnapshot makes an accepted InstallSnapshot (already durable in
// the store) this server's state: the stored log is discarded (Raft §7)
// and the FSM restored, in order with later applies.
func (n *Node) installSnapshot(meta *SnapshotMeta) error {
	first, err := n.logs.FirstIndex()
	if err != nil {
		return fmt.Errorf("raft: installing snapshot: %w", err)
	}
	last, err := n.logs.LastIndex()
	if err != nil {
		return fmt.Errorf("raft: installing snapshot: %w", err)
	}
	if first != 0 {
		if err := n.logs.DeleteRange(first, last); err != nil {
			return fmt.Errorf("raft: discarding the log for snapshot %s: %w", meta.ID, err)
		}
	}
	n.applier.enqueue(commitBatch{restore: meta})
	n.log.Info("raft: installed snapshot from leader", "snapshot", meta.ID, "index", meta.Index, "term", meta.Term)
	return nil
}

// sendSnapshot starts streaming the snapshot m names to the follower, one
// transfer per follower at a time. The outcome always reaches the core
// (finishSnapshotSend), which otherwise would wait for it forever.
func (n *Node) sendSnapshot(addr string, m Message) {
	st, ok := n.trans.(SnapshotTransport)
	if !ok || n.cfg.Snapshots == nil {
		n.log.Error("raft: a follower needs a snapshot but the transport cannot carry one", "peer", m.To)
		n.core.ReportSnapshot(m.To, true)
		return
	}
	if n.snapShell.sending[m.To] {
		return // finishSnapshotSend settles the core's wait when it ends
	}
	n.snapShell.sending[m.To] = true
	n.snapShell.wg.Add(1)
	go func() {
		defer n.snapShell.wg.Done()
		resp, err := n.streamSnapshot(st, addr, m)
		select {
		case n.snapShell.doneCh <- snapSendResult{to: m.To, resp: resp, err: err}:
		case <-n.snapShell.ctx.Done():
		}
	}()
}

// streamSnapshot sends the snapshot in chunks and returns the core's
// answer to the last one.
func (n *Node) streamSnapshot(st SnapshotTransport, addr string, m Message) (Message, error) {
	_, rc, err := n.cfg.Snapshots.Open(m.Snapshot.ID)
	if err != nil {
		return Message{}, err
	}
	defer rc.Close()
	buf := make([]byte, n.cfg.SnapshotChunkBytes)
	var off int64
	for {
		k, err := io.ReadFull(rc, buf)
		last := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !last {
			return Message{}, err
		}
		c := m
		c.Chunk, c.ChunkOffset, c.ChunkLast = buf[:k], off, last
		// A lost chunk or answer shows as a timeout; the transfer then
		// restarts, so the bound is short (a chunk is one small write).
		ctx, cancel := context.WithTimeout(n.snapShell.ctx, max(time.Second, 2*n.cfg.ElectionTimeout))
		resp, err := st.CallSnapshot(ctx, addr, c)
		cancel()
		if err != nil {
			return Message{}, fmt.Errorf("sending snapshot chunk at %d: %w", off, err)
		}
		if last {
			return resp, nil
		}
		if resp.Type != MsgSnapResp || resp.Reject {
			return Message{}, fmt.Errorf("follower refused snapshot chunk at %d", off)
		}
		off += int64(k)
	}
}

func (n *Node) finishSnapshotSend(r snapSendResult) {
	delete(n.snapShell.sending, r.to)
	if r.err != nil || r.resp.Type != MsgSnapResp {
		n.log.Warn("raft: sending snapshot failed; will retry", "peer", r.to, "err", r.err)
		n.core.ReportSnapshot(r.to, true)
		return
	}
	if err := n.core.Step(r.resp); err != nil {
		n.droppedMsgs.Add(1)
	}
	// If the answer did not settle the follower (it belongs to an older
	// term, or a newer snapshot was asked for while this one streamed),
	// go back to probing rather than wait for a transfer that is over.
	n.core.ReportSnapshot(r.to, true)
}

// receiveSnapshotChunk writes one chunk of an incoming snapshot. It
// reports whether the chunk was fully handled here (answered with an
// acknowledgement); the last chunk, once the snapshot is durable, goes on
// to the core with Snapshot.ID naming the local copy.
func (n *Node) receiveSnapshotChunk(r *RPC) bool {
	m := &r.Message
	ack := Message{Type: MsgSnapResp, From: n.cfg.ID, To: m.From, Term: n.core.Term(), Index: uint64(m.ChunkOffset)}
	if err := n.writeChunk(m); err != nil {
		n.log.Warn("raft: refusing snapshot chunk", "peer", m.From, "offset", m.ChunkOffset, "err", err)
		ack.Reject = true
		r.Respond(ack)
		return true
	}
	if !m.ChunkLast {
		r.Respond(ack)
		return true
	}
	in := n.snapShell.in
	n.snapShell.in = nil
	if err := in.sink.Close(); err != nil {
		n.log.Error("raft: storing received snapshot failed", "err", err)
		ack.Reject = true
		r.Respond(ack)
		return true
	}
	meta := *m.Snapshot
	meta.ID = in.sink.ID()
	m.Snapshot, m.Chunk = &meta, nil
	return false
}

func (n *Node) writeChunk(m *Message) error {
	if n.cfg.Snapshots == nil {
		return errors.New("this server has no snapshot store configured")
	}
	if m.Term < n.core.Term() {
		return fmt.Errorf("snapshot from term %d, we are in %d", m.Term, n.core.Term())
	}
	in := n.snapShell.in
	if m.ChunkOffset == 0 {
		if in != nil {
			in.sink.Cancel() // a restarted transfer
		}
		s := m.Snapshot
		sink, err := n.cfg.Snapshots.Create(s.Index, s.Term, s.Configuration, s.ConfigurationIndex)
		if err != nil {
			return err
		}
		in = &incomingSnapshot{from: m.From, leader: s.ID, term: m.Term, sink: sink}
		n.snapShell.in = in
	}
	if in == nil || in.from != m.From || in.leader != m.Snapshot.ID || in.term != m.Term || in.next != m.ChunkOffset {
		return fmt.Errorf("chunk at %d is not the next one of the snapshot being received", m.ChunkOffset)
	}
	if _, err := in.sink.Write(m.Chunk); err != nil {
		in.sink.Cancel()
		n.snapShell.in = nil
		return err
	}
	in.next += int64(len(m.Chunk))
	return nil
}

func (n *Node) snapshotIndex() uint64 {
	if n.snaps == nil {
		return 0
	}
	return n.snaps.latest.Load()
}

func (n *Node) snapshotTerm() uint64 {
	if n.snaps == nil {
		return 0
	}
	return n.snaps.term.Load()
}
