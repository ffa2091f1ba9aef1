package raft

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"roster/internal/testkit"
)

// diskNode is one server on a WALStore and a FileSnapshotStore in dir.
type diskNode struct {
	t     *testing.T
	dir   string
	cfg   Config
	node  *Node
	fsm   *listFSM
	store *WALStore
	snaps *FileSnapshotStore
}

func openDiskNode(t *testing.T, dir string, cfg Config, fsm *listFSM) *diskNode {
	t.Helper()
	b, err := OpenWALStore(filepath.Join(dir, "wal"))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := NewFileSnapshotStore(filepath.Join(dir, "snapshots"), 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ID, cfg.Snapshots = "solo", fs
	n, err := NewNode(cfg, fsm, b, b, NewMemNetwork(1).Transport("solo"))
	if err != nil {
		b.Close()
		t.Fatalf("starting node: %v", err)
	}
	d := &diskNode{t: t, dir: dir, cfg: cfg, node: n, fsm: fsm, store: b, snaps: fs}
	t.Cleanup(d.stop)
	return d
}

func (d *diskNode) stop() {
	if d.node != nil {
		d.node.Shutdown()
		d.store.Close()
		d.node = nil
	}
}

// waitSnapshots waits until the store holds a snapshot at index >= at.
func (d *diskNode) waitSnapshot(at uint64) []SnapshotMeta {
	var ms []SnapshotMeta
	testkit.WaitFor(d.t, 10*time.Second, fmt.Sprintf("a snapshot at >= %d", at), func() error {
		ms, _ = d.snaps.List()
		if len(ms) == 0 || ms[0].Index < at {
			return fmt.Errorf("snapshots: %+v", ms)
		}
		return nil
	})
	return ms
}

func soloCluster(t *testing.T, cfg Config, fsm *listFSM) *diskNode {
	d := openDiskNode(t, t.TempDir(), cfg, fsm)
	if err := d.node.BootstrapCluster([]Server{{ID: "solo", Address: "solo"}}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "leadership", func() error {
		if d.node.State() != Leader {
			return fmt.Errorf("state %s", d.node.State())
		}
		return nil
	})
	return d
}

func (d *diskNode) reopen(fsm *listFSM) *diskNode {
	d.stop()
	n := openDiskNode(d.t, d.dir, d.cfg, fsm)
	testkit.WaitFor(d.t, 5*time.Second, "leadership after restart", func() error {
		if n.node.State() != Leader {
			return fmt.Errorf("state %s", n.node.State())
		}
		return nil
	})
	return n
}

// A restarted server restores the FSM from its newest snapshot and replays
// only the log after it; the stored log really was compacted.
func TestSnapshot_RestartFromSnapshotAndLog(t *testing.T) {
	cfg := labConfig()
	cfg.SnapshotThreshold, cfg.TrailingLogs = 500, 50
	d := soloCluster(t, cfg, &listFSM{})
	last := applyMany(t, d.node, "cmd", 1300)
	d.waitSnapshot(1000)
	want, _ := d.fsm.state()
	d = d.reopen(&listFSM{})
	testkit.WaitFor(t, 5*time.Second, "replay", func() error {
		if got := d.node.AppliedIndex(); got < last {
			return fmt.Errorf("applied %d of %d", got, last)
		}
		return nil
	})
	got, restores := d.fsm.state()
	if restores != 1 {
		t.Fatalf("restores = %d, want 1 (from the snapshot)", restores)
	}
	if !slices.Equal(got[:len(want)], want) {
		t.Fatalf("state after restart differs: %d commands, want %d", len(got), len(want))
	}
	if first, _ := d.store.FirstIndex(); first <= 1 {
		t.Fatalf("stored log starts at %d; it was never compacted", first)
	}
}

// A crash half way through writing a snapshot leaves the previous snapshot
// the newest and usable: a restart rebuilds everything from it and the log.
func TestSnapshot_CrashDuringWriteKeepsPrevious(t *testing.T) {
	cfg := labConfig()
	cfg.SnapshotThreshold, cfg.TrailingLogs = 500, 2000
	fsm := &listFSM{}
	d := soloCluster(t, cfg, fsm)
	applyMany(t, d.node, "a", 600)
	first := d.waitSnapshot(500)[0]
	fsm.mu.Lock()
	fsm.failPersistAt = 1000
	fsm.mu.Unlock()
	last := applyMany(t, d.node, "b", 1000)
	want, _ := fsm.state()
	d.stop() // checked before the restarted node takes snapshots of its own
	if ms, _ := d.snaps.List(); len(ms) != 1 || ms[0].ID != first.ID {
		t.Fatalf("snapshots after failed writes = %+v, want only %s", ms, first.ID)
	}
	tmp, _ := filepath.Glob(filepath.Join(d.dir, "snapshots", "*"+snapTmpSuffix))
	if len(tmp) != 0 {
		t.Fatalf("leftover partial snapshots: %v", tmp)
	}
	d = d.reopen(&listFSM{})
	testkit.WaitFor(t, 5*time.Second, "replay", func() error {
		if got := d.node.AppliedIndex(); got < last {
			return fmt.Errorf("applied %d of %d", got, last)
		}
		return nil
	})
	if got, restores := d.fsm.state(); restores != 1 || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("after restart: %d restores, %d commands; want 1 restore and the %d commands", restores, len(got), len(want))
	}
}

// A corrupt newest snapshot is skipped (logged) and the older one plus the
// log rebuild the state.
func TestSnapshot_CorruptNewestSkipped(t *testing.T) {
	cfg := labConfig()
	cfg.SnapshotThreshold, cfg.TrailingLogs = 400, 2000
	d := soloCluster(t, cfg, &listFSM{})
	last := applyMany(t, d.node, "c", 1000)
	ms := d.waitSnapshot(800)
	if len(ms) < 2 {
		t.Fatalf("want two snapshots, have %+v", ms)
	}
	want, _ := d.fsm.state()
	d.stop()
	path := filepath.Join(d.dir, "snapshots", ms[0].ID, snapStateFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d = d.reopen(&listFSM{})
	testkit.WaitFor(t, 5*time.Second, "replay", func() error {
		if got := d.node.AppliedIndex(); got < last {
			return fmt.Errorf("applied %d of %d", got, last)
		}
		return nil
	})
	if got, _ := d.fsm.state(); !slices.Equal(got[:len(want)], want) {
		t.Fatalf("state rebuilt from the older snapshot differs: %d commands, want %d", len(got), len(want))
	}
}
