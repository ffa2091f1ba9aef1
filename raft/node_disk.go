package raft

import (
	"fmt"
	"sync/atomic"
	"time"
)

// The raft loop's half of the background disk writer (disk_writer.go).
//
// Ready used to be handled strictly in order: fsync, then send. Now the
// loop hands each Ready's hard state and entries to the writer and goes
// on. What it may send at once is what does not promise anything about
// this server's disk: a leader's AppendEntries, heartbeats, snapshots and
// TimeoutNow (the leader replicates entries while writing them itself,
// thesis §10.2.1; its own copy counts toward commit once the writer
// reports it, Core.Persisted). Everything else — AppendEntries answers,
// votes, a candidate's vote requests — is held until every write queued
// before it is durable, which is exactly the promise Raft Figure 2 asks
// for. A heartbeat answer only promises the term, so it waits only for
// the last write that carried hard state.

// diskState is the loop's bookkeeping of writes in flight (owned by run).
type diskState struct {
	diskSeq   uint64 // last write submitted
	diskDone  uint64 // every write <= this is durable
	hsSeq     uint64 // last write that carried hard state
	diskSince time.Time
	lastWrite time.Duration // how long the last group took to become durable
	held      []heldMessage // ascending seq

	// Counters for benchmarks and Stats: groups written (one fsync each),
	// writes coalesced into them, entries written.
	diskGroups, diskWrites, diskEntries atomic.Uint64
	// diskWriteMicros is a moving average of lastWrite, for Stats.
	diskWriteMicros ewma
}

// heldMessage is a message that may leave once write seq is durable; req,
// if set, is the request it answers.
type heldMessage struct {
	seq uint64
	m   Message
	req *RPC
}

// submitWrite queues rd's hard state and entries for the disk writer.
func (n *Node) submitWrite(rd *Ready) {
	if len(rd.Entries) == 0 && !rd.HardStateSet {
		return
	}
	if n.diskDone == n.diskSeq {
		n.diskSince = time.Now()
	}
	n.diskSeq++
	if rd.HardStateSet {
		n.hsSeq = n.diskSeq
	}
	n.disk.submit(diskWrite{seq: n.diskSeq, entries: rd.Entries, hs: rd.HardState, hsSet: rd.HardStateSet})
}

// holdUntil returns the write that must be durable before m may be sent.
func (n *Node) holdUntil(m Message) uint64 {
	switch m.Type {
	case MsgApp, MsgHeartbeat, MsgSnap, MsgTimeoutNow:
		return 0 // a leader's requests: the receiver's answer is the promise
	case MsgHeartbeatResp:
		return n.hsSeq
	}
	return n.diskSeq
}

// diskWritten takes the writer's report: entries durable here count
// toward a leader's commit quorum, and held messages may go.
func (n *Node) diskWritten(d diskDone) error {
	if d.err != nil {
		return d.err
	}
	n.diskGroups.Add(1)
	n.diskWrites.Add(uint64(d.writes))
	n.diskEntries.Add(uint64(d.entries))
	n.diskDone = d.seq
	now := time.Now()
	n.lastWrite, n.diskSince = now.Sub(n.diskSince), now
	n.diskWriteMicros.add(n.lastWrite)
	if d.lastIndex > 0 {
		n.core.Persisted(d.lastIndex, d.lastTerm)
	}
	i := 0
	for ; i < len(n.held) && n.held[i].seq <= n.diskDone; i++ {
		h := n.held[i]
		if h.req != nil {
			h.req.Respond(h.m)
		} else {
			n.sendMessage(h.m)
		}
		n.held[i] = heldMessage{}
	}
	n.held = append(n.held[:0], n.held[i:]...)
	return nil
}

// drainDisk waits until every submitted write is durable (before a
// snapshot install replaces the stored log, and before BootstrapCluster
// answers).
func (n *Node) drainDisk() error {
	for n.diskDone < n.diskSeq {
		select {
		case d := <-n.disk.done:
			if err := n.diskWritten(d); err != nil {
				return err
			}
		case <-n.shutdownCh:
			return ErrShutdown
		}
	}
	return nil
}

// dropHeld answers held requests with nothing (shutdown, failure), so
// their callers stop waiting.
func (n *Node) dropHeld() {
	for _, h := range n.held {
		if h.req != nil {
			h.req.Respond(Message{})
		}
	}
	n.held = nil
}

// diskStallElections is how many election timeouts a leader's disk write
// may take before the leader gives up office: generous, because a busy
// disk shared with other work can take a few hundred milliseconds for one
// fsync now and then, and stepping down for that would cost an election.
const diskStallElections = 4

// checkDiskStall makes a leader whose disk write has hung for
// diskStallElections election timeouts step down. It could keep committing
// through its followers for a while, but its unwritten log only grows in
// memory and a hung disk is usually a failing server: a leader with a
// working disk serves better. Held answers keep the stalled server from
// winning an election until its disk recovers.
func (n *Node) checkDiskStall() {
	if n.core.State() != Leader || n.diskDone == n.diskSeq {
		return
	}
	if stalled := time.Since(n.diskSince); stalled > diskStallElections*n.cfg.ElectionTimeout {
		n.core.StepDown(fmt.Sprintf("disk write stalled for %v", stalled.Round(time.Millisecond)))
	}
}
