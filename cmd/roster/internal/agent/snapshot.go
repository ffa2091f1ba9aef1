package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"roster/httpapi"
	"roster/raft"
	"roster/rpc"
)

// Snapshot save and restore (/v1/snapshot, `roster snapshot`).
//
// Save: the leader (or any server, ?stale) takes a point-in-time copy of
// its state machine — the request-ID table and the catalog, the same
// bytes its Raft snapshots hold — and wraps it in an archive
// (snapshot_archive.go).
//
// Restore: Consul installs the archive as a new Raft snapshot and forces
// it onto the followers. roster instead commits it as one log entry: the
// leader verifies the archive (checksum, and a trial restore into a
// scratch catalog), then proposes a restore entry; every server's FSM
// replaces its whole state with the archive's when that entry applies.
// The outcome is the same — every server holds the archive's state,
// followed by whatever is written after it — with no second replication
// path, and a server that was down catches up from the log or a later
// snapshot like after any other write. The cost is that the state must fit
// one log entry (MaxSnapshotStateBytes).

// restoreMagic starts a restore log entry. rpc.DedupFSM's envelope starts
// with 0xD1, so the two never collide.
const restoreMagic = 0x5E

// restoringFSM is the FSM every server runs: rpc.DedupFSM plus the
// restore entry. Restores are de-duplicated by request ID like writes (a
// retried restore must not roll back writes made after the first copy).
type restoringFSM struct {
	inner *rpc.DedupFSM

	// mu guards recent: the request IDs of the latest restores applied.
	mu     sync.Mutex
	recent []string
}

var _ raft.FSM = (*restoringFSM)(nil)

// recentRestores bounds restoringFSM.recent; restores are rare.
const recentRestores = 16

// encodeRestore builds a restore entry: magic, request ID, state.
func encodeRestore(requestID string, state []byte) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(requestID)+len(state))
	b = append(b, restoreMagic)
	b = binary.AppendUvarint(b, uint64(len(requestID)))
	b = append(b, requestID...)
	return append(b, state...)
}

func decodeRestore(data []byte) (requestID string, state []byte, err error) {
	n, k := binary.Uvarint(data[1:])
	if k <= 0 || n > uint64(len(data)-1-k) {
		return "", nil, errors.New("restore entry has a bad request ID length")
	}
	rest := data[1+k:]
	return string(rest[:n]), rest[n:], nil
}

// Apply implements raft.FSM.
func (f *restoringFSM) Apply(e raft.Entry) any {
	if len(e.Data) == 0 || e.Data[0] != restoreMagic {
		return f.inner.Apply(e)
	}
	id, state, err := decodeRestore(e.Data)
	if err != nil {
		return fmt.Errorf("entry %d: %w", e.Index, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != "" && slices.Contains(f.recent, id) {
		return nil // a retried copy: the first one already took effect
	}
	if err := f.inner.Restore(bytes.NewReader(state)); err != nil {
		return fmt.Errorf("entry %d: restoring the snapshot: %w", e.Index, err)
	}
	if id != "" {
		f.recent = append(f.recent, id)
		if len(f.recent) > recentRestores {
			f.recent = f.recent[1:]
		}
	}
	return nil
}

// Snapshot implements raft.FSM.
func (f *restoringFSM) Snapshot() (raft.FSMSnapshot, error) { return f.inner.Snapshot() }

// Restore implements raft.FSM.
func (f *restoringFSM) Restore(r io.Reader) error { return f.inner.Restore(r) }

// snapshotEndpoint is the "Snapshot" RPC endpoint of servers.
type snapshotEndpoint struct{ a *Agent }

// snapshotTimeout bounds committing a restore entry.
const snapshotTimeout = 30 * time.Second

// Save answers an archive of this server's state; the Forwarder sends the
// call to the leader unless ?stale.
func (e *snapshotEndpoint) Save(args *httpapi.SnapshotRequest, reply *httpapi.SnapshotResponse) error {
	s := e.a.srv
	if done, err := s.fwd.Forward(s.ctx, "Snapshot.Save", args, args, reply); done {
		return err
	}
	if err := args.Validate(); err != nil {
		return err
	}
	index, term := s.store.LastIndex(), s.raft.Term()
	snap, err := s.fsm.Snapshot()
	if err != nil {
		return fmt.Errorf("taking the snapshot: %w", err)
	}
	defer snap.Release()
	var state bytes.Buffer
	if err := snap.Persist(&capWriter{w: &state, left: MaxSnapshotStateBytes}); err != nil {
		return fmt.Errorf("taking the snapshot: %w", err)
	}
	now := time.Now()
	meta := SnapshotMeta{ID: fmt.Sprintf("%d-%d-%d", term, index, now.UnixMilli()), Index: index, Term: term,
		Datacenter: e.a.cfg.Datacenter, Node: e.a.cfg.NodeName, Created: now.UTC()}
	var archive bytes.Buffer
	if err := WriteSnapshotArchive(&archive, meta, state.Bytes()); err != nil {
		return err
	}
	reply.Archive = archive.Bytes()
	reply.Index = index
	reply.KnownLeader = s.view.LeaderAddr() != ""
	reply.LastContact = s.view.LastContact()
	reply.Consistency = args.Consistency()
	return nil
}

// Restore verifies an archive on the leader and commits it as a restore
// entry, answering once it has been applied here.
func (e *snapshotEndpoint) Restore(args *httpapi.SnapshotRestoreRequest, reply *struct{}) error {
	s := e.a.srv
	if done, err := s.fwd.Forward(s.ctx, "Snapshot.Restore", args, args, reply); done {
		return err
	}
	meta, state, err := ReadSnapshotArchive(bytes.NewReader(args.Archive))
	if err != nil {
		return err
	}
	if _, err := InspectSnapshotState(state); err != nil {
		return err
	}
	f := s.raft.Apply(encodeRestore(args.RequestID, state), snapshotTimeout)
	if err := f.Error(); err != nil {
		return err
	}
	if err, ok := f.Response().(error); ok {
		return err
	}
	e.a.log.Info("restored a snapshot", nodeAttr(e.a.cfg.NodeName), "snapshot", meta.ID, "index", f.Index())
	return nil
}

// capWriter fails a write that would pass left bytes.
type capWriter struct {
	w    io.Writer
	left int
}

func (c *capWriter) Write(p []byte) (int, error) {
	if len(p) > c.left {
		return 0, fmt.Errorf("the state is larger than %d bytes, the most a snapshot archive may hold", MaxSnapshotStateBytes)
	}
	c.left -= len(p)
	return c.w.Write(p)
}
