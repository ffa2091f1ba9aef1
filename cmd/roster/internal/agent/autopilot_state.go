package agent

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"roster/raft"
)

// The autopilot configuration is replicated state, as in Consul (its state
// store's autopilot-config table): `PUT /v1/operator/autopilot/configuration`
// commits it through Raft, so every server applies the same settings
// whichever one leads next. The first leader stores the settings of its
// own configuration (files and flags) when none are stored yet, which is
// what Consul's leader does on establishing leadership.
//
// It lives in autopilotFSM, a thin layer between rpc.DedupFSM and the
// catalog (the FSM chain is restoringFSM ─► rpc.DedupFSM ─► autopilotFSM ─►
// catalog.Store): its commands are wrapped with a request ID like every
// other write, so a retried PUT applies once, and its snapshot section
// precedes the catalog's.

// AutopilotSettings is the replicated autopilot configuration (Consul's
// autopilot.Config) plus roster's DeadServerGracePeriod.
type AutopilotSettings struct {
	CleanupDeadServers      bool
	LastContactThreshold    time.Duration
	MaxTrailingLogs         uint64
	MinQuorum               uint
	ServerStabilizationTime time.Duration
	RedundancyZoneTag       string
	DisableUpgradeMigration bool
	UpgradeVersionTag       string
	// DeadServerGracePeriod is how long a server stays failed before
	// cleanup removes it; 0 means DefaultDeadServerGrace.
	DeadServerGracePeriod time.Duration
	CreateIndex           uint64
	ModifyIndex           uint64
}

// autopilotMagic starts an autopilot command (after the request-ID
// envelope). Catalog commands start with their version byte, never this.
const autopilotMagic = 0xA7

// autopilotOp says how an autopilot command applies.
type autopilotOp byte

const (
	// autopilotSet replaces the configuration.
	autopilotSet autopilotOp = 1
	// autopilotCAS replaces it only if its ModifyIndex equals the
	// command's (Consul: false, too, when nothing is stored yet).
	autopilotCAS autopilotOp = 2
	// autopilotInit stores it only if nothing is stored yet (the leader's
	// first write of its configured settings).
	autopilotInit autopilotOp = 3
)

// encodeAutopilot builds the command for op with settings s; for
// autopilotCAS, s.ModifyIndex is the index to compare with.
func encodeAutopilot(op autopilotOp, s AutopilotSettings) []byte {
	body, _ := json.Marshal(s) // plain fields: cannot fail
	return append([]byte{autopilotMagic, byte(op)}, body...)
}

func decodeAutopilot(data []byte) (autopilotOp, AutopilotSettings, error) {
	var s AutopilotSettings
	if len(data) < 2 {
		return 0, s, errors.New("autopilot command is truncated")
	}
	op := autopilotOp(data[1])
	if op < autopilotSet || op > autopilotInit {
		return 0, s, fmt.Errorf("autopilot command has unknown operation %d", op)
	}
	if err := json.Unmarshal(data[2:], &s); err != nil {
		return 0, s, fmt.Errorf("autopilot command: %w", err)
	}
	return op, s, nil
}

// autopilotFSM applies autopilot commands and hands every other entry to
// the catalog.
type autopilotFSM struct {
	inner raft.FSM
	// mu guards conf, the stored configuration (nil: none yet). Apply,
	// Snapshot and Restore run serialised by rpc.DedupFSM; readers are
	// the leader loop and the endpoints.
	mu   sync.Mutex
	conf *AutopilotSettings
}

var _ raft.FSM = (*autopilotFSM)(nil)

// stored returns a copy of the stored configuration, if any.
func (f *autopilotFSM) stored() (AutopilotSettings, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conf == nil {
		return AutopilotSettings{}, false
	}
	return *f.conf, true
}

// Apply implements raft.FSM. An autopilot command returns whether it
// applied (a CAS or init may not); the catalog still sees its index go by
// (as a non-command entry), so its applied index stays the log's.
func (f *autopilotFSM) Apply(e raft.Entry) any {
	if len(e.Data) == 0 || e.Data[0] != autopilotMagic {
		return f.inner.Apply(e)
	}
	f.inner.Apply(raft.Entry{Index: e.Index, Term: e.Term, Type: raft.EntryNoop})
	op, s, err := decodeAutopilot(e.Data)
	if err != nil {
		return fmt.Errorf("entry %d: %w", e.Index, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.conf
	switch {
	case op == autopilotCAS && (old == nil || old.ModifyIndex != s.ModifyIndex):
		return false
	case op == autopilotInit && old != nil:
		return false
	}
	s.CreateIndex, s.ModifyIndex = e.Index, e.Index
	if old != nil {
		s.CreateIndex = old.CreateIndex
	}
	f.conf = &s
	return true
}

// The snapshot section: "RAP1", uvarint(len), the JSON of the stored
// configuration ("null" if none), then the catalog's snapshot. A snapshot
// without the section (taken before autopilot settings were replicated)
// restores the catalog and leaves no configuration stored; the next
// leader stores its own.
var autopilotSnapshotMagic = [4]byte{'R', 'A', 'P', '1'}

// maxAutopilotSection bounds the section a snapshot may claim.
const maxAutopilotSection = 1 << 16

type autopilotSnapshot struct {
	conf  []byte
	inner raft.FSMSnapshot
}

// Snapshot implements raft.FSM.
func (f *autopilotFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	conf, _ := json.Marshal(f.conf)
	f.mu.Unlock()
	inner, err := f.inner.Snapshot()
	if err != nil {
		return nil, err
	}
	return &autopilotSnapshot{conf: conf, inner: inner}, nil
}

func (s *autopilotSnapshot) Persist(w io.Writer) error {
	head := append(autopilotSnapshotMagic[:], binary.AppendUvarint(nil, uint64(len(s.conf)))...)
	if _, err := w.Write(append(head, s.conf...)); err != nil {
		return fmt.Errorf("writing the autopilot configuration: %w", err)
	}
	return s.inner.Persist(w)
}

func (s *autopilotSnapshot) Release() { s.inner.Release() }

// Restore implements raft.FSM.
func (f *autopilotFSM) Restore(r io.Reader) error {
	br := bufio.NewReader(r)
	var conf *AutopilotSettings
	if head, err := br.Peek(len(autopilotSnapshotMagic)); err == nil && bytes.Equal(head, autopilotSnapshotMagic[:]) {
		br.Discard(len(head))
		if conf, err = readAutopilotSection(br); err != nil {
			return err
		}
	}
	if err := f.inner.Restore(br); err != nil {
		return err
	}
	f.mu.Lock()
	f.conf = conf
	f.mu.Unlock()
	return nil
}

func readAutopilotSection(br *bufio.Reader) (*AutopilotSettings, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil || n > maxAutopilotSection {
		return nil, fmt.Errorf("snapshot: bad autopilot section length (%d, %v)", n, err)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, fmt.Errorf("snapshot: reading the autopilot section: %w", err)
	}
	var conf *AutopilotSettings
	if err := json.Unmarshal(body, &conf); err != nil {
		return nil, fmt.Errorf("snapshot: the autopilot section: %w", err)
	}
	return conf, nil
}
