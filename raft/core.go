package raft

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// CoreConfig tunes the pure core. Durations are in ticks: the shell decides
// how long a tick is.
type CoreConfig struct {
	ID string // this server's ID; must appear in the configuration to vote

	// ElectionTicks is the minimum election timeout; each follower draws
	// its timeout uniformly from [ElectionTicks, 2*ElectionTicks) so that
	// split votes are rare (Raft §5.2). It is also the check-quorum period
	// and the leader lease in which votes are refused.
	ElectionTicks int
	// HeartbeatTicks is how often a leader sends heartbeats. Must be well
	// below ElectionTicks (broadcastTime << electionTimeout, Raft §5.6).
	HeartbeatTicks int

	// PreVote makes a would-be candidate first ask whether it could win,
	// without changing anyone's term (thesis §9.6).
	PreVote bool
	// CheckQuorum makes a leader step down when it has not heard from a
	// majority for ElectionTicks, and makes followers that heard from a
	// leader within ElectionTicks ignore vote requests (thesis §6.2, §4.2.3).
	CheckQuorum bool

	MaxEntriesPerMsg int    // cap on entries in one MsgApp
	MaxBytesPerMsg   uint64 // soft cap on payload bytes in one MsgApp
	MaxInflight      int    // MsgApps in flight per follower when replicating
	// PipelineFullOnly: with a MsgApp in flight to a follower, send it
	// another only if that one is full (MaxEntriesPerMsg entries, or at
	// least half of MaxBytesPerMsg bytes, since the next entry may not
	// fit). Smaller batches wait for the answer and go
	// out together: fewer messages per entry when the link is fast and
	// the disk is the bottleneck, while a follower far behind still gets
	// a pipeline of full messages. Two heartbeat answers with no MsgApp
	// answer in between count the in-flight messages as lost.
	PipelineFullOnly bool

	// AsyncStorage relaxes Ready's persist-before-send contract for the
	// log (thesis §10.2.1): the shell may write Ready.Entries in the
	// background and must report each write with Persisted. The leader
	// then sends new entries to followers while its own disk write is in
	// flight and counts its own copy toward the commit quorum only once
	// it is durable. Entries committed by a majority of other servers go
	// to the FSM even before they are durable here: they are safe on that
	// majority, and the FSM is rebuilt from snapshot and log on restart.
	// Responses and votes still wait for the writes before them: the
	// shell holds them (see Node). Off, every entry counts as durable the
	// moment Ready hands it out.
	AsyncStorage bool

	// LeaseTicks > 0 turns on leader lease reads (lease.go, thesis
	// §6.4.1): for this many ticks after a majority acknowledged a
	// heartbeat, ReadIndex answers without a heartbeat round. It must be
	// below ElectionTicks by the clock-drift margin, and needs
	// CheckQuorum. 0 (the default): off.
	LeaseTicks int
}

// Validate names the first bad field.
func (c CoreConfig) Validate() error {
	switch {
	case c.ID == "":
		return errors.New("raft: CoreConfig.ID is empty; give every server a unique ID")
	case c.HeartbeatTicks <= 0:
		return fmt.Errorf("raft: CoreConfig.HeartbeatTicks = %d, want > 0", c.HeartbeatTicks)
	case c.ElectionTicks <= c.HeartbeatTicks:
		return fmt.Errorf("raft: CoreConfig.ElectionTicks = %d, want > HeartbeatTicks (%d)", c.ElectionTicks, c.HeartbeatTicks)
	case c.MaxEntriesPerMsg <= 0:
		return fmt.Errorf("raft: CoreConfig.MaxEntriesPerMsg = %d, want > 0", c.MaxEntriesPerMsg)
	case c.MaxInflight <= 0:
		return fmt.Errorf("raft: CoreConfig.MaxInflight = %d, want > 0", c.MaxInflight)
	case c.LeaseTicks < 0 || c.LeaseTicks >= c.ElectionTicks:
		return fmt.Errorf("raft: CoreConfig.LeaseTicks = %d, want 0 (off) or below ElectionTicks (%d)", c.LeaseTicks, c.ElectionTicks)
	case c.LeaseTicks > 0 && !c.CheckQuorum:
		return errors.New("raft: CoreConfig.LeaseTicks needs CheckQuorum: a lease rests on followers refusing votes while they hear from the leader")
	}
	return nil
}

// errProposeNotLeader is returned by Core.Propose and Core.ReadIndex on a
// non-leader; the shell turns it into a *NotLeaderError naming the leader.
var errProposeNotLeader = errors.New("raft: not the leader")

// Ready is one batch of work the core hands to its shell. The shell must
// handle it in this order: persist HardState and Entries (one durable
// write), then send Messages, then apply Committed. Persisting before
// sending is what makes a vote or an acknowledgement a promise (Raft
// Figure 2: "respond to RPCs only after updating stable storage").
type Ready struct {
	HardState    HardState
	HardStateSet bool // HardState changed since the last Ready
	// Entries must be written so that every stored entry with an index >=
	// Entries[0].Index is replaced (a follower overwriting a conflicting
	// suffix, Raft §5.3).
	Entries   []Entry
	Messages  []Message
	Committed []Entry // newly committed, in log order
	// ReadStates are ReadIndex requests now confirmed: the read may be
	// served once the FSM has applied Index (thesis §6.4).
	ReadStates []ReadState
	Events     []Event
	// Snapshot, if set, is an InstallSnapshot this server accepted (Raft
	// §7): the shell must make it the newest stored snapshot and replace
	// the whole stored log by it before persisting Entries, and restore
	// the FSM from it before applying Committed.
	Snapshot *SnapshotMeta
}

// Empty reports whether there is nothing to do.
func (r *Ready) Empty() bool {
	return !r.HardStateSet && len(r.Entries) == 0 && len(r.Messages) == 0 &&
		len(r.Committed) == 0 && len(r.Events) == 0 && len(r.ReadStates) == 0 &&
		r.Snapshot == nil
}

// Core is one Raft server as a deterministic state machine: Step a
// message, Tick the clock, Propose entries, and collect a Ready. It never
// blocks, sleeps, reads a clock or touches a disk.
type Core struct {
	cfg CoreConfig
	rng *rand.Rand

	term   uint64
	vote   string
	state  State
	leader string

	log                     *raftLog
	stable                  uint64 // AsyncStorage: highest index the shell reported durable
	conf                    Configuration
	confIndex               uint64               // index of the entry that carried conf
	progress                map[string]*progress // leader only: one per other server
	votes                   map[string]bool      // (pre-)candidate only: voter -> granted
	electionElapsed         int                  // ticks since reset (leader: since last quorum check)
	ticks                   uint64               // ticks since the core started (leases)
	heartbeatElapsed        int
	randomizedElectionTicks int

	reads readIndexState // leader only: linearizable reads in flight

	// snap is the newest snapshot this server holds: what a leader sends
	// to a follower whose next entry was compacted away, and the
	// configuration in force when the log holds no configuration entry.
	snap        SnapshotMeta
	installSnap *SnapshotMeta // accepted InstallSnapshot for the next Ready

	// Leadership transfer (thesis §3.10), leader only.
	transferee     string // server we are handing leadership to ("": none)
	transferTicks  int    // ticks since the transfer began
	transferSent   bool   // MsgTimeoutNow has gone out for this transfer
	transferToVote bool   // (candidate) this election was asked for by the leader

	// Output accumulated for the next Ready.
	hardStateSet bool
	persistFrom  uint64 // first index not yet handed out for persisting (0: none)
	handedCommit uint64 // last committed index handed out in a Ready
	msgs         []Message
	events       []Event
}

// NewCore builds a core from what the shell loaded from stable storage:
// the hard state and every log entry (in order, contiguous from 1 in Raft
// I). The configuration in force is the latest EntryConfiguration in the
// log; a server with none waits to be contacted.
func NewCore(cfg CoreConfig, hs HardState, entries []Entry, rng *rand.Rand) (*Core, error) {
	return NewCoreFromSnapshot(cfg, hs, SnapshotMeta{}, entries, rng)
}

// NewCoreFromSnapshot is NewCore for a server that restored its FSM from
// snap: entries must follow snap.Index, which counts as committed.
func NewCoreFromSnapshot(cfg CoreConfig, hs HardState, snap SnapshotMeta, entries []Entry, rng *rand.Rand) (*Core, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, errors.New("raft: NewCore needs a seeded *rand.Rand")
	}
	l := &raftLog{}
	l.restore(snap.Index, snap.Term)
	for i, e := range entries {
		if e.Index != snap.Index+uint64(i)+1 {
			return nil, fmt.Errorf("raft: stored log has entry %d where %d belongs; the log store is corrupt", e.Index, snap.Index+uint64(i)+1)
		}
		if i > 0 && e.Term < entries[i-1].Term {
			return nil, fmt.Errorf("raft: stored log has term going down at index %d; the log store is corrupt", e.Index)
		}
	}
	l.append(entries...)
	raiseTerm := len(entries) == 0 && snap.Term > hs.Term
	if raiseTerm {
		// A received snapshot is made durable before the term of the
		// leader that sent it; after a crash in between, adopt that term
		// (with no vote), as the message itself would have made us do.
		hs = HardState{Term: snap.Term}
	}
	if l.lastTerm() > hs.Term {
		return nil, fmt.Errorf("raft: stored term %d is below last log term %d; the stable store is corrupt", hs.Term, l.lastTerm())
	}
	c := &Core{cfg: cfg, rng: rng, term: hs.Term, vote: hs.Vote, log: l, handedCommit: snap.Index,
		hardStateSet: raiseTerm, stable: l.lastIndex()}
	c.snap = snap
	c.snap.Configuration = snap.Configuration.Clone()
	c.reloadConfiguration()
	c.resetElectionTimer()
	return c, nil
}

// StepDown makes a leader give up office in its current term (the shell's
// verdict, e.g. its disk hangs); a follower's election timer then runs as
// usual.
func (c *Core) StepDown(why string) {
	if c.state == Leader {
		c.stepDown(c.term, why)
	}
}

// Tick advances the core's clock by one tick.
func (c *Core) Tick() {
	c.ticks++
	if c.state == Leader {
		c.tickLeader()
		return
	}
	c.electionElapsed++
	if c.electionElapsed >= c.randomizedElectionTicks && c.promotable() {
		c.electionElapsed = 0
		c.Campaign()
	}
}

func (c *Core) tickLeader() {
	c.heartbeatElapsed++
	c.electionElapsed++
	c.tickTransfer()
	if c.electionElapsed >= c.cfg.ElectionTicks {
		c.electionElapsed = 0
		// Check-quorum (thesis §6.2): a leader cut off from a majority
		// steps down so that its clients go and find the real leader.
		if c.cfg.CheckQuorum && !c.quorumActive() {
			c.stepDown(c.term, "check-quorum: no majority heard from in an election timeout")
			return
		}
		for _, pr := range c.progress {
			pr.recentActive = false
		}
	}
	if c.heartbeatElapsed >= c.cfg.HeartbeatTicks {
		c.heartbeatElapsed = 0
		if c.cfg.LeaseTicks > 0 {
			c.newRound() // each heartbeat renews the lease
		}
		c.broadcastHeartbeat()
	}
}

// Step feeds one message to the core. A malformed message is dropped with
// an error and an EventDropped; the core's state is untouched.
func (c *Core) Step(m Message) error {
	if err := m.validate(); err != nil {
		c.emit(Event{Type: EventDropped, Detail: err.Error()})
		return err
	}
	if m.To != "" && m.To != c.cfg.ID {
		err := fmt.Errorf("raft: %s for %q delivered to %q", m.Type, m.To, c.cfg.ID)
		c.emit(Event{Type: EventDropped, Detail: err.Error()})
		return err
	}
	switch {
	case m.Term > c.term:
		if !c.stepHigherTerm(m) {
			return nil
		}
	case m.Term < c.term:
		c.stepLowerTerm(m)
		return nil
	}
	switch m.Type {
	case MsgVote, MsgPreVote:
		c.handleVoteRequest(m)
	case MsgTimeoutNow:
		c.send(Message{Type: MsgTimeoutNowResp, To: m.From})
		if c.promotable() && c.state != Leader {
			c.campaignTransfer() // thesis §3.10: skip pre-vote, the leader asked
		}
	default:
		switch c.state {
		case Leader:
			c.stepLeader(m)
		case Candidate, PreCandidate:
			c.stepCandidate(m)
		default:
			c.stepFollower(m)
		}
	}
	return nil
}

// stepHigherTerm applies the "if RPC request or response contains term T >
// currentTerm: set currentTerm = T, convert to follower" rule (Raft §5.1)
// with its two modern exceptions. It reports whether to keep processing.
func (c *Core) stepHigherTerm(m Message) bool {
	if m.Type == MsgVote || m.Type == MsgPreVote {
		// Leader stickiness (thesis §4.2.3): a server that heard from a
		// live leader within the minimum election timeout ignores vote
		// requests, so a server that was partitioned away cannot depose
		// a healthy leader by showing up with a higher term.
		inLease := (c.leader != "" && c.electionElapsed < c.cfg.ElectionTicks) || c.startupSticky()
		if inLease && (c.cfg.CheckQuorum || m.Type == MsgPreVote) && !m.Transfer {
			c.send(Message{Type: m.Type.Response(), To: m.From, Reject: true})
			return false
		}
	}
	switch {
	case m.Type == MsgPreVote:
		// Never change term for a pre-vote (thesis §9.6).
	case m.Type == MsgPreVoteResp && !m.Reject:
		// A granted pre-vote carries the term we asked about, not a
		// term anyone is in.
	case m.Type == MsgApp || m.Type == MsgHeartbeat || m.Type == MsgSnap:
		c.becomeFollower(m.Term, m.From)
	default:
		c.becomeFollower(m.Term, "")
	}
	return true
}

// stepLowerTerm answers a stale request with our term so that a deposed
// leader or a stale candidate learns it is behind (Raft §5.1); stale
// responses are simply dropped.
func (c *Core) stepLowerTerm(m Message) {
	if m.Type.IsRequest() {
		c.send(Message{Type: m.Type.Response(), To: m.From, Reject: true, Index: m.Index})
	}
}

func (c *Core) stepFollower(m Message) {
	switch m.Type {
	case MsgApp:
		c.electionElapsed = 0
		c.setLeader(m.From)
		c.handleAppend(m)
	case MsgHeartbeat:
		c.electionElapsed = 0
		c.setLeader(m.From)
		c.handleHeartbeat(m)
	case MsgSnap:
		c.electionElapsed = 0
		c.setLeader(m.From)
		c.handleSnapshot(m)
	}
	// Responses addressed to a past role are stale; ignore them.
}

// becomeFollower moves to term (if higher) as a follower of leader ("" if
// not yet known).
func (c *Core) becomeFollower(term uint64, leader string) {
	wasLeader := c.state == Leader
	c.setTerm(term)
	c.setState(Follower)
	c.setLeader(leader)
	c.progress, c.votes = nil, nil
	c.reads.reset()
	c.transferee = ""
	c.resetElectionTimer()
	if wasLeader {
		c.emit(Event{Type: EventStepDown, Detail: fmt.Sprintf("saw term %d", term)})
	}
}

// stepDown is becomeFollower for a leader that gives up on its own.
func (c *Core) stepDown(term uint64, why string) {
	c.setTerm(term)
	c.setState(Follower)
	c.setLeader("")
	c.progress, c.votes = nil, nil
	c.reads.reset()
	c.transferee = ""
	c.resetElectionTimer()
	c.emit(Event{Type: EventStepDown, Detail: why})
}

func (c *Core) setTerm(term uint64) {
	if term == c.term {
		return
	}
	c.term, c.vote = term, ""
	c.hardStateSet = true
	c.emit(Event{Type: EventTermChanged})
}

func (c *Core) setState(s State) {
	if s == c.state {
		return
	}
	c.state = s
	c.emit(Event{Type: EventStateChanged})
}

func (c *Core) setLeader(id string) {
	if id == c.leader {
		return
	}
	c.leader = id
	c.emit(Event{Type: EventLeaderChanged, Leader: id})
}

// resetElectionTimer draws a fresh timeout from [E, 2E) (Raft §5.2).
func (c *Core) resetElectionTimer() {
	c.electionElapsed = 0
	c.heartbeatElapsed = 0
	c.randomizedElectionTicks = c.cfg.ElectionTicks + c.rng.IntN(c.cfg.ElectionTicks)
}

// promotable reports whether this server may stand for election: a voter,
// or any server while the latest configuration it holds is uncommitted.
// The second case matters when a leader demoted or removed itself and lost
// office before the change committed: the servers with the newest log may
// then be non-voters (or non-members) in it, and the voters may lack the
// entry, so without them no one could ever win. Such a candidate counts
// votes over the voters of its latest configuration, wins, commits the
// change and steps down (hashicorp/raft makes the same exception).
func (c *Core) promotable() bool {
	return c.conf.isVoter(c.cfg.ID) || (c.confIndex > 0 && c.confIndex > c.log.committed)
}

func (c *Core) send(m Message) {
	m.From = c.cfg.ID
	if m.Term == 0 {
		m.Term = c.term
	}
	c.msgs = append(c.msgs, m)
}

func (c *Core) emit(e Event) {
	e.Node, e.Term, e.State = c.cfg.ID, c.term, c.state
	c.events = append(c.events, e)
}

// reloadConfiguration makes the latest configuration entry in the log the
// one in force. Configurations take effect when appended, not committed
// (thesis §4.1), so a truncation can roll back to an older one.
func (c *Core) reloadConfiguration() {
	// Without a configuration entry in the log, the one in force is the
	// snapshot's: compaction only drops entries up to a snapshot's index,
	// so any configuration newer than the snapshot's is still in the log.
	c.conf, c.confIndex = c.snap.Configuration.Clone(), c.snap.ConfigurationIndex
	defer c.syncProgress()
	for i := c.log.lastIndex(); i >= c.log.firstIndex(); i-- {
		e, _ := c.log.entry(i)
		if e.Type != EntryConfiguration {
			continue
		}
		conf, err := decodeConfiguration(e.Data)
		if err != nil {
			c.emit(Event{Type: EventDropped, Detail: fmt.Sprintf("configuration entry %d: %v", i, err)})
			continue
		}
		c.conf, c.confIndex = conf, i
		return
	}
}

// appendEntries adds entries after lastIndex and schedules them for
// persisting.
func (c *Core) appendEntries(es []Entry) {
	if len(es) == 0 {
		return
	}
	if c.persistFrom == 0 || es[0].Index < c.persistFrom {
		c.persistFrom = es[0].Index
	}
	c.log.append(es...)
	for _, e := range es {
		if e.Type == EntryConfiguration {
			c.reloadConfiguration()
			break
		}
	}
}

// durableIndex is the last index known to be on this server's disk: with
// AsyncStorage what the shell reported through Persisted, otherwise
// everything in the log (Ready's contract made it durable before anything
// could depend on it).
func (c *Core) durableIndex() uint64 {
	if !c.cfg.AsyncStorage {
		return c.log.lastIndex()
	}
	return min(c.stable, c.log.lastIndex())
}

// Persisted tells the core that the shell's background write of the log up
// to index (whose entry has term) is durable (AsyncStorage only). A report
// about an entry that has since been overwritten (a follower truncating a
// conflicting suffix) is ignored: the newer write will report itself. On a
// leader, its own durable copy may complete a commit quorum.
func (c *Core) Persisted(index, term uint64) {
	// At or below the log start the entry is committed and compacted: it
	// cannot have been overwritten, and its term is gone.
	if index <= c.stable || (index > c.log.snapIndex && !c.log.matchTerm(index, term)) {
		return
	}
	c.stable = index
	if c.state == Leader && c.maybeCommit() {
		c.broadcastAppend() // tell followers the new commit index
	}
}

// HasReady reports whether Ready would return work.
func (c *Core) HasReady() bool {
	return c.hardStateSet || c.persistFrom != 0 || len(c.msgs) > 0 ||
		c.log.committed > c.handedCommit || len(c.events) > 0 || len(c.reads.ready) > 0 ||
		c.installSnap != nil
}

// Ready returns and clears the accumulated work.
func (c *Core) Ready() Ready {
	rd := Ready{Messages: c.msgs, Events: c.events, ReadStates: c.reads.ready, Snapshot: c.installSnap}
	c.reads.ready, c.installSnap = nil, nil
	if c.hardStateSet {
		rd.HardState, rd.HardStateSet = HardState{Term: c.term, Vote: c.vote}, true
	}
	if c.persistFrom != 0 {
		rd.Entries = c.log.slice(c.persistFrom, c.log.lastIndex()+1)
	}
	if c.log.committed > c.handedCommit {
		rd.Committed = c.log.slice(c.handedCommit+1, c.log.committed+1)
		c.handedCommit = c.log.committed
	}
	c.msgs, c.events, c.hardStateSet, c.persistFrom = nil, nil, false, 0
	return rd
}

// Status is a copy of the core's externally visible state.
type Status struct {
	ID          string
	Term        uint64
	Vote        string
	State       State
	Leader      string
	Commit      uint64
	LastIndex   uint64
	LastTerm    uint64
	Config      Configuration
	ConfigIndex uint64
	Match       map[string]uint64 // leader only: per follower
}

// Status returns a copy of the current state.
func (c *Core) Status() Status {
	s := Status{ID: c.cfg.ID, Term: c.term, Vote: c.vote, State: c.state, Leader: c.leader,
		Commit: c.log.committed, LastIndex: c.log.lastIndex(), LastTerm: c.log.lastTerm(),
		Config: c.conf.Clone(), ConfigIndex: c.confIndex}
	if c.state == Leader {
		s.Match = map[string]uint64{}
		for id, pr := range c.progress {
			s.Match[id] = pr.match
		}
	}
	return s
}

// Entries returns a copy of the log entries in [lo, hi) that the core holds.
func (c *Core) Entries(lo, hi uint64) []Entry { return c.log.slice(lo, hi) }

// Bootstrap makes conf the first entry of an empty log (index 1, term 1),
// as hashicorp/raft does: every server of a new cluster bootstraps with the
// same configuration, and the first leader's no-op commits it. It refuses
// if the server already has state.
func (c *Core) Bootstrap(conf Configuration) error {
	if err := conf.Validate(); err != nil {
		return err
	}
	if c.term != 0 || c.log.lastIndex() != 0 {
		return ErrCantBootstrap
	}
	c.setTerm(1)
	c.appendEntries([]Entry{{Index: 1, Term: 1, Type: EntryConfiguration, Data: encodeConfiguration(conf)}})
	return nil
}

// ErrCantBootstrap is returned by Bootstrap on a server that already has a
// term or log entries: it is (or was) part of a cluster and must rejoin
// it, not found a new one.
var ErrCantBootstrap = errors.New("raft: bootstrap refused: this server already has raft state (term or log); it rejoins its cluster instead")

// Cheap accessors for the shell's hot path (Status copies the configuration).

func (c *Core) State() State        { return c.state }
func (c *Core) Term() uint64        { return c.term }
func (c *Core) Leader() string      { return c.leader }
func (c *Core) ID() string          { return c.cfg.ID }
func (c *Core) CommitIndex() uint64 { return c.log.committed }
func (c *Core) LastIndex() uint64   { return c.log.lastIndex() }
func (c *Core) soleVoter() bool     { v := c.conf.voters(); return len(v) == 1 && v[0] == c.cfg.ID }
func (c *Core) serverAddr(id string) string {
	s, _ := c.conf.Server(id)
	return s.Address
}
