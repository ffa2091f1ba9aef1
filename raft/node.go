package raft

import (
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"roster/internal/fanout"
)

// Node is the shell around a Core: one goroutine owns the core, the ticker,
// the storage writes and the transport; a second applies committed entries
// to the FSM. Everything else talks to it through channels and reads a
// published copy of its status.
type Node struct {
	cfg    Config
	log    *slog.Logger
	logs   LogStore
	stable StableStore
	trans  Transport

	core      *Core // owned by run
	disk      *diskWriter
	diskState                           // owned by run: writes in flight, held messages
	pending   []*applyFuture            // owned by run: proposed here, not yet committed, ascending index
	queued    []*applyFuture            // owned by run: Apply calls taken, not yet proposed
	linger    lingerState               // owned by run: holding proposals for returning callers (node_linger.go)
	reads     map[uint64][]*readRequest // owned by run: ReadIndex batches by request ID
	readID    uint64                    // owned by run: last ReadIndex request ID
	transfer  *applyFuture              // owned by run: LeadershipTransfer in progress
	applier   *applier
	snaps     *snapshotter   // nil: snapshots disabled (Config.Snapshots)
	snapShell *snapshotShell // owned by run, except its WaitGroup
	hub       fanout.Hub[Event]

	applyCh     chan *applyFuture
	readCh      chan *readRequest
	confCh      chan confRequest
	transferCh  chan *applyFuture
	matchCh     chan chan map[string]uint64
	bootstrapCh chan bootstrapRequest
	shutdownCh  chan struct{}
	doneCh      chan struct{}
	shutOnce    sync.Once

	// mu guards status.
	mu     sync.Mutex
	status nodeStatus

	droppedSends atomic.Uint64 // messages to servers with no known address
	droppedMsgs  atomic.Uint64 // malformed inbound messages
}

// nodeStatus is the copy of the loop's state that API calls read.
type nodeStatus struct {
	state       State
	term        uint64
	leaderID    string
	leaderAddr  string
	commit      uint64
	lastIndex   uint64
	lastTerm    uint64
	conf        Configuration
	confIndex   uint64
	lastContact time.Time
	fatal       error // storage failure that stopped the node
}

type bootstrapRequest struct {
	conf Configuration
	err  chan error
}

// NewNode loads the hard state and log from the stores and starts the
// node. A server with no state waits (as a follower that cannot campaign)
// until BootstrapCluster or a leader contacts it. The caller keeps
// ownership of the stores and the transport and closes them after
// Shutdown.
func NewNode(cfg Config, fsm FSM, logs LogStore, stable StableStore, trans Transport) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	logger := cfg.Logger.With("node", cfg.ID)
	var snap SnapshotMeta
	var snaps *snapshotter
	if cfg.Snapshots != nil {
		var err error
		if snap, err = restoreNewest(cfg.Snapshots, fsm, logger); err != nil {
			return nil, err
		}
		snaps = newSnapshotter(cfg, fsm, logger, snap)
	}
	hs, entries, err := loadState(logs, stable, snap)
	if err != nil {
		return nil, err
	}
	core, err := NewCoreFromSnapshot(cfg.coreConfig(), hs, snap, entries, rand.New(rand.NewPCG(seedFor(cfg), 0x5eed)))
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, log: logger, logs: logs, stable: stable, trans: trans,
		core: core, disk: newDiskWriter(logs, stable), applier: newApplier(fsm, snaps, snap.Index), snaps: snaps, snapShell: newSnapshotShell(),
		applyCh: make(chan *applyFuture, cfg.MaxApplyBatch), bootstrapCh: make(chan bootstrapRequest),
		readCh: make(chan *readRequest, cfg.MaxApplyBatch), reads: map[uint64][]*readRequest{},
		confCh: make(chan confRequest), transferCh: make(chan *applyFuture),
		matchCh:    make(chan chan map[string]uint64),
		shutdownCh: make(chan struct{}), doneCh: make(chan struct{}),
	}
	n.publishStatus()
	if core.soleVoter() {
		core.Campaign() // a one-server cluster need not wait for a timeout
		if err := n.handleReady(nil); err != nil {
			n.disk.close()
			n.applier.close()
			if snaps != nil {
				snaps.close()
			}
			return nil, err
		}
	}
	go n.run()
	return n, nil
}

func seedFor(cfg Config) uint64 {
	if cfg.Seed != 0 {
		return cfg.Seed
	}
	h := fnv.New64a()
	h.Write([]byte(cfg.ID))
	return h.Sum64() ^ uint64(time.Now().UnixNano())
}

// run is the node's only owner of the core.
func (n *Node) run() {
	defer close(n.doneCh)
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	var reqs []*RPC
	for {
		reqs = reqs[:0]
		select {
		case <-n.shutdownCh:
			n.stopLoop()
			return
		case <-ticker.C:
			n.core.Tick()
			n.checkDiskStall()
		case d := <-n.disk.done:
			if err := n.diskWritten(d); err != nil {
				n.fail(err)
				return
			}
		case r := <-n.trans.Consumer():
			reqs = n.step(&r, reqs)
		case meta := <-n.snapsTaken():
			if err := n.snapshotTaken(meta); err != nil {
				n.fail(err)
				return
			}
		case res := <-n.snapShell.doneCh:
			n.finishSnapshotSend(res)
		case f := <-n.applyCh:
			n.queued = append(n.queued, f)
		case <-n.linger.fire:
			n.endLinger()
		case <-n.moreToPropose():
		case r := <-n.readCh:
			n.readIndex(r)
		case req := <-n.confCh:
			n.changeConfiguration(req)
		case f := <-n.transferCh:
			n.startTransfer(f)
		case reply := <-n.matchCh:
			reply <- n.core.Status().Match
		case b := <-n.bootstrapCh:
			if err := n.handleBootstrap(b); err != nil {
				n.failOrStop(err)
				return
			}
		}
		var err error
		if reqs, err = n.takeBurst(reqs); err != nil {
			n.failOrStop(err)
			return
		}
		if !n.holdProposals() {
			n.propose()
		}
		// A Ready can produce more work (a drained disk write commits):
		// run until quiet, bounded.
		for i := 0; i < 4 && (i == 0 || n.core.HasReady()); i++ {
			if err := n.handleReady(reqs); err != nil {
				n.failOrStop(err)
				return
			}
			reqs = reqs[:0]
		}
	}
}

// maxBurst bounds how many more inputs one loop iteration takes before it
// handles the Ready: enough that a burst of answers and Apply calls turns
// into one AppendEntries per follower and one disk write, few enough that
// ticks stay on time.
const maxBurst = 256

// takeBurst takes whatever else is already waiting (messages, Apply calls,
// reads, disk reports), without blocking.
func (n *Node) takeBurst(reqs []*RPC) ([]*RPC, error) {
	for range maxBurst {
		select {
		case r := <-n.trans.Consumer():
			reqs = n.step(&r, reqs)
		case f := <-n.applyCh:
			n.queued = append(n.queued, f)
		case r := <-n.readCh:
			n.readIndex(r)
		case d := <-n.disk.done:
			if err := n.diskWritten(d); err != nil {
				return reqs, err
			}
		default:
			return reqs, nil
		}
	}
	return reqs, nil
}

// stopLoop fails everything waiting on the loop at shutdown.
func (n *Node) stopLoop() {
	n.failPending(ErrShutdown)
	n.failQueued(ErrShutdown)
	n.failReads(ErrShutdown)
	n.dropHeld()
	if n.transfer != nil {
		n.transfer.finish(nil, ErrShutdown)
	}
}

// failOrStop ends the loop: a shutdown seen while draining the disk, or a
// storage failure.
func (n *Node) failOrStop(err error) {
	if err == ErrShutdown {
		n.stopLoop()
		return
	}
	n.fail(err)
}

// step feeds an inbound message to the core and adds it to reqs if it is
// a request the core may answer in the next Ready (not a snapshot chunk the
// shell answered itself).
func (n *Node) step(r *RPC, reqs []*RPC) []*RPC {
	if r.Message.Type == MsgSnap && r.Message.Snapshot != nil && n.receiveSnapshotChunk(r) {
		return reqs
	}
	if r.Message.Type.IsRequest() {
		reqs = append(reqs, r)
	}
	m := r.Message
	if err := n.core.Step(m); err != nil {
		n.droppedMsgs.Add(1)
		n.log.Warn("dropped malformed message", "peer", m.From, "err", err)
		return reqs
	}
	if (m.Type == MsgApp || m.Type == MsgHeartbeat || m.Type == MsgSnap) && n.core.State() == Follower && n.core.Leader() == m.From {
		n.mu.Lock()
		n.status.lastContact = time.Now()
		n.mu.Unlock()
	}
	return reqs
}

// snapsTaken yields snapshots the FSM side finished (never, if disabled).
func (n *Node) snapsTaken() <-chan SnapshotMeta {
	if n.snaps == nil {
		return nil
	}
	return n.snaps.taken
}

// propose takes every Apply call that arrived in this loop iteration (and
// whatever else is queued), up to MaxApplyBatch, into one log append: one
// AppendEntries per follower and one disk write, so concurrent callers
// share the fsync (group commit).
func (n *Node) propose() {
	for len(n.queued) > 0 && len(n.queued) < n.cfg.MaxApplyBatch {
		select {
		case g := <-n.applyCh:
			n.queued = append(n.queued, g)
			continue
		default:
		}
		break
	}
	if len(n.queued) == 0 {
		return
	}
	batch := n.queued
	n.queued = nil
	if k := n.cfg.MaxApplyBatch; k > 0 && len(batch) > k {
		// More than one append's worth (queued grows by whole bursts,
		// and more while proposals are held): the rest go next
		// iteration (moreToPropose), in a slice of their own so that
		// this batch and the rest never share an array.
		n.queued = append([]*applyFuture(nil), batch[k:]...)
		batch = batch[:k:k]
	}
	if n.core.State() != Leader {
		err := n.notLeader()
		for _, g := range batch {
			g.finish(nil, err)
		}
		return
	}
	es := make([]Entry, len(batch))
	for i, g := range batch {
		es[i] = Entry{Type: g.typ, Data: g.data}
	}
	last, err := n.core.Propose(es)
	if err != nil {
		if err == errProposeNotLeader {
			err = n.notLeader()
		}
		for _, g := range batch {
			g.finish(nil, err)
		}
		return
	}
	first := last - uint64(len(batch)) + 1
	for i, g := range batch {
		g.index, g.term = first+uint64(i), n.core.Term()
	}
	n.pending = append(n.pending, batch...)
}

// readyCh is always ready: a select case on it does not block.
var readyCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// moreToPropose is ready while commands left queued by a full batch wait
// to be proposed and nothing holds them, so the loop does not block on
// its inputs (or the next tick) with them in hand.
func (n *Node) moreToPropose() <-chan struct{} {
	if len(n.queued) == 0 || n.linger.expect > 0 {
		return nil
	}
	return readyCh
}

func (n *Node) notLeader() error {
	id := n.core.Leader()
	return &NotLeaderError{LeaderID: id, LeaderAddress: n.core.serverAddr(id)}
}

// handleBootstrap answers a BootstrapCluster call once the new state is
// durable (and, for a single voter, it has taken office), so the caller
// sees the result. It returns only errors that stop the node.
func (n *Node) handleBootstrap(b bootstrapRequest) error {
	if err := n.bootstrap(b.conf); err != nil {
		b.err <- err
		return nil
	}
	err := n.handleReady(nil)
	if err == nil {
		err = n.drainDisk()
	}
	b.err <- err
	return err
}

func (n *Node) bootstrap(conf Configuration) error {
	if err := n.core.Bootstrap(conf); err != nil {
		return err
	}
	n.log.Info("bootstrapped cluster", "servers", len(conf.Servers))
	if n.core.soleVoter() {
		n.core.Campaign()
	}
	return nil
}

// handleReady performs one Ready in the order that keeps promises: hand
// the hard state and entries to the disk writer, send what may go before
// they are durable (a leader's AppendEntries, thesis §10.2.1) and hold the
// rest until they are (node_disk.go), then apply.
func (n *Node) handleReady(reqs []*RPC) error {
	// An answer goes to the oldest unanswered request of its kind from its
	// peer; answers to one peer are interchangeable (each names what it
	// answers), so pairing by order is enough.
	answered := make([]bool, len(reqs))
	defer func() {
		for i, r := range reqs {
			if !answered[i] {
				r.Respond(Message{}) // no answer: let the caller stop waiting
			}
		}
	}()
	if !n.core.HasReady() {
		return nil
	}
	wasLeader := n.status.state == Leader
	rd := n.core.Ready()
	if rd.Snapshot != nil {
		// The install replaces the stored log: let earlier writes land first.
		if err := n.drainDisk(); err != nil {
			return err
		}
		if err := n.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	n.submitWrite(&rd)
	for _, m := range rd.Messages {
		var req *RPC
		for i, r := range reqs {
			if !answered[i] && m.To == r.Message.From && m.Type == r.Message.Type.Response() {
				req, answered[i] = r, true
				break
			}
		}
		if seq := n.holdUntil(m); seq > n.diskDone {
			n.held = append(n.held, heldMessage{seq: seq, m: m, req: req})
			continue
		}
		if req != nil {
			req.Respond(m)
			continue
		}
		n.sendMessage(m)
	}
	if len(rd.Committed) > 0 {
		b := n.matchFutures(rd.Committed)
		n.applier.enqueue(b)
		n.expectCallers(b.matched)
	}
	n.confirmReads(rd.ReadStates)
	n.checkTransfer()
	if wasLeader && n.core.State() != Leader {
		n.failPending(ErrLeadershipLost)
		n.failReads(ErrLeadershipLost)
	}
	n.publishEvents(rd.Events)
	n.publishStatus()
	return nil
}

// sendMessage hands a request to the transport (snapshots to their own
// streaming goroutine).
func (n *Node) sendMessage(m Message) {
	addr := n.core.serverAddr(m.To)
	if addr == "" {
		n.droppedSends.Add(1)
		if m.Type == MsgSnap {
			n.core.ReportSnapshot(m.To, true)
		}
		return
	}
	if m.Type == MsgSnap {
		n.sendSnapshot(addr, m)
		return
	}
	n.trans.Send(addr, m)
}

// matchFutures pairs committed entries with the futures of the commands
// this node proposed. A future whose slot was committed with a different
// term lost its entry to another leader's (Raft §5.3 overwrite).
func (n *Node) matchFutures(committed []Entry) commitBatch {
	b := commitBatch{entries: committed, futures: make([]*applyFuture, len(committed))}
	for i, e := range committed {
		for len(n.pending) > 0 && n.pending[0].index < e.Index {
			n.pending[0].finish(nil, ErrLeadershipLost)
			n.pending = n.pending[1:]
		}
		if len(n.pending) == 0 || n.pending[0].index != e.Index {
			continue
		}
		f := n.pending[0]
		n.pending = n.pending[1:]
		if f.term != e.Term {
			f.finish(nil, ErrLeadershipLost)
			continue
		}
		b.futures[i] = f
		b.matched++
	}
	return b
}

func (n *Node) failPending(err error) {
	for _, f := range n.pending {
		f.finish(nil, err)
	}
	n.pending = nil
}

// failQueued fails the Apply calls taken but not yet proposed (held by
// node_linger.go) when the loop stops.
func (n *Node) failQueued(err error) {
	for _, f := range n.queued {
		f.finish(nil, err)
	}
	n.queued = nil
	n.endLinger()
}

// fail stops the node after a storage error: continuing could break a
// promise made to a peer.
func (n *Node) fail(err error) {
	n.log.Error("raft stopped: storage failed; fix the disk and restart", "err", err)
	n.failPending(err)
	n.failQueued(err)
	n.failReads(err)
	n.dropHeld()
	n.mu.Lock()
	n.status.fatal, n.status.state = err, Shutdown
	n.mu.Unlock()
}

func (n *Node) publishEvents(events []Event) {
	if len(events) == 0 {
		return // most Readies carry none: skip the clock read
	}
	now := time.Now()
	for _, e := range events {
		e.Time = now
		switch e.Type {
		case EventStateChanged, EventLeaderChanged, EventStepDown, EventTermChanged:
			n.log.Info("raft "+e.Type.String(), "term", e.Term, "state", e.State.String(), "leader", e.Leader, "detail", e.Detail)
		case EventDropped:
			n.log.Warn("raft dropped message", "term", e.Term, "detail", e.Detail)
		}
		n.hub.Publish(e)
	}
}

func (n *Node) publishStatus() {
	c := n.core
	n.mu.Lock()
	defer n.mu.Unlock()
	s := &n.status
	s.state, s.term, s.leaderID = c.State(), c.Term(), c.Leader()
	s.leaderAddr = c.serverAddr(s.leaderID)
	s.commit, s.lastIndex, s.lastTerm = c.log.committed, c.log.lastIndex(), c.log.lastTerm()
	if s.confIndex != c.confIndex || (s.conf.Servers == nil && c.conf.Servers != nil) {
		s.conf, s.confIndex = c.conf.Clone(), c.confIndex
	}
}

// readIndex takes r and every other queued read into one ReadIndex request:
// one heartbeat round confirms them all.
func (n *Node) readIndex(r *readRequest) {
	batch := []*readRequest{r}
	for len(batch) < n.cfg.MaxApplyBatch {
		select {
		case r2 := <-n.readCh:
			batch = append(batch, r2)
			continue
		default:
		}
		break
	}
	n.readID++
	if err := n.core.ReadIndex(n.readID); err != nil {
		err := n.notLeader()
		for _, r := range batch {
			r.finish(0, err)
		}
		return
	}
	n.reads[n.readID] = batch
}

func (n *Node) confirmReads(states []ReadState) {
	for _, rs := range states {
		for _, r := range n.reads[rs.ID] {
			r.finish(rs.Index, nil)
		}
		delete(n.reads, rs.ID)
	}
}

func (n *Node) failReads(err error) {
	for id, batch := range n.reads {
		for _, r := range batch {
			r.finish(0, err)
		}
		delete(n.reads, id)
	}
}
