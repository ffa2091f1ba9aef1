package raft

import (
	"encoding/json"
	"fmt"
)

// MessageType names one Raft message. Requests (MsgApp, MsgHeartbeat,
// MsgVote, MsgPreVote, MsgTimeoutNow) are answered by exactly one response
// from the core, so a request/response transport such as net/rpc can return
// the answer as the call's reply.
type MessageType uint8

const (
	MsgNone MessageType = iota
	// MsgVote is RequestVote (Raft §5.2): Index/LogTerm are the
	// candidate's last log index and term (§5.4.1).
	MsgVote
	MsgVoteResp
	// MsgPreVote asks "would you vote for me?" without anyone changing
	// term (thesis §9.6). Term is the term the candidate would use.
	MsgPreVote
	MsgPreVoteResp
	// MsgApp is AppendEntries (Raft §5.3): Index/LogTerm identify the
	// entry preceding Entries, Commit is the leader's commit index.
	MsgApp
	MsgAppResp
	// MsgHeartbeat is an empty AppendEntries without the consistency
	// check; Commit is capped at what the follower is known to hold.
	MsgHeartbeat
	MsgHeartbeatResp
	// MsgTimeoutNow tells a follower to start an election at once
	// (thesis §3.10). Reserved for leadership transfer.
	MsgTimeoutNow
	MsgTimeoutNowResp
	// MsgSnap is InstallSnapshot (Raft §7): Snapshot describes the state
	// the follower's log is to be replaced with. The shell streams the
	// state itself in chunks (Chunk*) and steps the core once, with the
	// last chunk. The answer is a MsgSnapResp whose Index is the
	// follower's commit index afterwards.
	MsgSnap
	MsgSnapResp
)

var messageTypeNames = [...]string{
	MsgNone: "None", MsgVote: "Vote", MsgVoteResp: "VoteResp",
	MsgPreVote: "PreVote", MsgPreVoteResp: "PreVoteResp", MsgApp: "App",
	MsgAppResp: "AppResp", MsgHeartbeat: "Heartbeat", MsgHeartbeatResp: "HeartbeatResp",
	MsgTimeoutNow: "TimeoutNow", MsgTimeoutNowResp: "TimeoutNowResp",
	MsgSnap: "Snap", MsgSnapResp: "SnapResp",
}

func (t MessageType) String() string {
	if int(t) < len(messageTypeNames) {
		return messageTypeNames[t]
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// IsRequest reports whether the type is answered by a response.
func (t MessageType) IsRequest() bool {
	switch t {
	case MsgVote, MsgPreVote, MsgApp, MsgHeartbeat, MsgTimeoutNow, MsgSnap:
		return true
	}
	return false
}

// Response is the type that answers request type t (MsgNone if t is not a
// request).
func (t MessageType) Response() MessageType {
	if t.IsRequest() {
		return t + 1
	}
	return MsgNone
}

// Message is the single envelope every Raft exchange travels in. Which
// fields matter depends on Type (see the MessageType constants).
type Message struct {
	Type MessageType
	From string // server ID of the sender
	To   string // server ID of the receiver
	Term uint64 // sender's current term (Raft §5.1); the candidate's next term for MsgPreVote

	// Index and LogTerm: for MsgApp the entry preceding Entries; for votes
	// the candidate's last entry; for a successful MsgAppResp Index is the
	// follower's last index that now matches the leader; for a rejected
	// MsgAppResp Index echoes the rejected prevIndex.
	Index   uint64
	LogTerm uint64
	Entries []Entry
	Commit  uint64

	Reject bool
	// RejectHint and LogTerm on a rejected MsgAppResp let the leader skip a
	// whole conflicting term per round trip (Raft §5.3, last paragraphs).
	RejectHint uint64
	// Context on MsgHeartbeat is the leader's read round, echoed in the
	// response so that the acknowledgements confirm pending ReadIndex
	// requests (thesis §6.4).
	Context uint64
	// Transfer on MsgVote marks an election the leader asked for
	// (leadership transfer, thesis §3.10): voters skip the leader-lease
	// check that would otherwise make them ignore it.
	Transfer bool

	// Snapshot on MsgSnap names the snapshot being installed.
	Snapshot *SnapshotMeta
	// Chunk, ChunkOffset and ChunkLast carry a MsgSnap's state between
	// shells (the core never reads them): bytes [ChunkOffset,
	// ChunkOffset+len(Chunk)) of the snapshot, and whether they are the
	// end of it.
	Chunk       []byte
	ChunkOffset int64
	ChunkLast   bool
}

func (m Message) String() string {
	s := fmt.Sprintf("%s %s->%s t%d", m.Type, m.From, m.To, m.Term)
	switch m.Type {
	case MsgApp:
		s += fmt.Sprintf(" prev=%d/%d n=%d commit=%d", m.Index, m.LogTerm, len(m.Entries), m.Commit)
	case MsgVote, MsgPreVote:
		s += fmt.Sprintf(" last=%d/%d", m.Index, m.LogTerm)
	case MsgHeartbeat:
		s += fmt.Sprintf(" commit=%d", m.Commit)
		if m.Context != 0 {
			s += fmt.Sprintf(" round=%d", m.Context)
		}
	case MsgAppResp:
		if m.Reject {
			s += fmt.Sprintf(" reject idx=%d hint=%d/%d", m.Index, m.RejectHint, m.LogTerm)
		} else {
			s += fmt.Sprintf(" idx=%d", m.Index)
		}
	case MsgSnap:
		if m.Snapshot != nil {
			s += fmt.Sprintf(" snap=%d/%d", m.Snapshot.Index, m.Snapshot.Term)
		}
	case MsgSnapResp:
		s += fmt.Sprintf(" idx=%d", m.Index)
		if m.Reject {
			s += " reject"
		}
	case MsgVoteResp, MsgPreVoteResp:
		if m.Reject {
			s += " reject"
		} else {
			s += " grant"
		}
	}
	return s
}

// validate rejects a message a correct peer can never send, so that garbage
// off the wire is dropped and counted instead of corrupting state.
func (m *Message) validate() error {
	if m.Type == MsgNone || int(m.Type) >= len(messageTypeNames) {
		return fmt.Errorf("raft: unknown message type %d", m.Type)
	}
	if m.From == "" {
		return fmt.Errorf("raft: %s message without a sender", m.Type)
	}
	if m.Type != MsgApp && len(m.Entries) > 0 {
		return fmt.Errorf("raft: %s message from %s carries entries", m.Type, m.From)
	}
	if m.Type == MsgSnap && (m.Snapshot == nil || m.Snapshot.Index == 0 || m.Snapshot.Term > m.Term) {
		return fmt.Errorf("raft: Snap from %s without a valid snapshot description", m.From)
	}
	for i, e := range m.Entries {
		if e.Index != m.Index+uint64(i)+1 {
			return fmt.Errorf("raft: App from %s has entry %d at slot %d, want %d", m.From, e.Index, i, m.Index+uint64(i)+1)
		}
		if e.Term > m.Term || (i > 0 && e.Term < m.Entries[i-1].Term) || e.Term < m.LogTerm {
			return fmt.Errorf("raft: App from %s has entry %d with impossible term %d", m.From, e.Index, e.Term)
		}
	}
	return nil
}

// HardState is what a server must have on stable storage before it answers
// any message (Raft Figure 2, "Persistent state on all servers").
type HardState struct {
	Term uint64 // latest term this server has seen
	Vote string // candidate that received our vote in Term, or ""
}

// State is a server's role.
type State uint8

const (
	Follower State = iota
	PreCandidate
	Candidate
	Leader
	Shutdown
)

func (s State) String() string {
	switch s {
	case Follower:
		return "Follower"
	case PreCandidate:
		return "PreCandidate"
	case Candidate:
		return "Candidate"
	case Leader:
		return "Leader"
	case Shutdown:
		return "Shutdown"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Suffrage says whether a server's vote counts.
type Suffrage uint8

const (
	// Voter takes part in elections and in the commit quorum.
	Voter Suffrage = iota
	// Nonvoter receives the log but does not count toward any quorum
	// (used to let a new server catch up before it votes; Raft II).
	Nonvoter
)

func (s Suffrage) String() string {
	if s == Nonvoter {
		return "Nonvoter"
	}
	return "Voter"
}

// Server is one member of the cluster configuration.
type Server struct {
	ID       string // stable identity (Consul uses the node ID)
	Address  string // where the transport reaches it, e.g. "10.0.0.1:8300"
	Suffrage Suffrage
}

// Configuration is the set of servers; it lives in the log as an
// EntryConfiguration entry and the latest one in the log is in force.
type Configuration struct {
	Servers []Server
}

// Clone returns a deep copy.
func (c Configuration) Clone() Configuration {
	return Configuration{Servers: append([]Server(nil), c.Servers...)}
}

// Server returns the member with id.
func (c Configuration) Server(id string) (Server, bool) {
	for _, s := range c.Servers {
		if s.ID == id {
			return s, true
		}
	}
	return Server{}, false
}

// isVoter reports whether id is a voter.
func (c Configuration) isVoter(id string) bool {
	s, ok := c.Server(id)
	return ok && s.Suffrage == Voter
}

// voters lists the voting IDs.
func (c Configuration) voters() []string {
	var ids []string
	for _, s := range c.Servers {
		if s.Suffrage == Voter {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// Validate checks that IDs and addresses are present and unique and that
// there is at least one voter.
func (c Configuration) Validate() error {
	ids, addrs := map[string]bool{}, map[string]bool{}
	voters := 0
	for i, s := range c.Servers {
		if s.ID == "" {
			return fmt.Errorf("raft: configuration server %d has an empty ID", i)
		}
		if s.Address == "" {
			return fmt.Errorf("raft: configuration server %q has an empty Address", s.ID)
		}
		if ids[s.ID] || addrs[s.Address] {
			return fmt.Errorf("raft: configuration lists server %q / %q twice", s.ID, s.Address)
		}
		ids[s.ID], addrs[s.Address] = true, true
		if s.Suffrage == Voter {
			voters++
		}
	}
	if voters == 0 {
		return fmt.Errorf("raft: configuration has no voter; list at least one Server with Suffrage Voter")
	}
	return nil
}

// encodeConfiguration is the payload of an EntryConfiguration entry.
func encodeConfiguration(c Configuration) []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a struct of strings and ints always marshals
	}
	return b
}

// decodeConfiguration parses an EntryConfiguration payload.
func decodeConfiguration(b []byte) (Configuration, error) {
	var c Configuration
	if err := json.Unmarshal(b, &c); err != nil {
		return Configuration{}, fmt.Errorf("raft: malformed configuration entry: %w", err)
	}
	return c, nil
}
