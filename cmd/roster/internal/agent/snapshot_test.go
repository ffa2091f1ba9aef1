package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"roster/catalog"
	"roster/httpapi"
	"roster/internal/testkit"
	"roster/raft"
	"roster/rpc"
)

// A server that was down while the others compacted their logs catches up
// from a snapshot of the catalog (with the request-ID table beside it),
// and a server restarted from its own snapshot plus log has the same data.
func TestCluster_StoppedServerCatchesUpFromACatalogSnapshot(t *testing.T) {
	tc := newTestCluster(t, 3)
	for i := range tc.cfgs {
		tc.cfgs[i].Raft.SnapshotThreshold = 40
		tc.cfgs[i].Raft.TrailingLogs = 5
	}
	l := tc.startSettled()
	down := (l + 1) % 3
	tc.kill(down)
	const writes = 200
	for i := 0; i < writes; i++ {
		if err := putKV(tc.agents[l], fmt.Sprintf("snap/%03d", i), strconv.Itoa(i)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if st := tc.agents[l].srv.raft.Stats(); st["last_snapshot_index"] == "0" {
		t.Fatalf("the leader took no snapshot after %d writes: %v", writes, st)
	}
	tc.cfgs[down].RetryJoin = []string{lanOf(l)}
	tc.start(down)
	tc.waitConverged(15 * time.Second)
	for _, i := range []int{0, writes / 2, writes - 1} {
		if got, err := getKV(tc.agents[down], fmt.Sprintf("snap/%03d", i), "stale"); err != nil || got != strconv.Itoa(i) {
			t.Fatalf("restarted server's copy of snap/%03d = %q, %v", i, got, err)
		}
	}
}

// kvEntry is a raft entry setting key to value through the dedup envelope.
func kvEntry(index uint64, id, key, value string) raft.Entry {
	cmd := catalog.EncodeCommand(&catalog.KVRequest{Verb: catalog.KVSet, Key: key, Value: []byte(value)})
	return raft.Entry{Index: index, Type: raft.EntryCommand, Data: rpc.EncodeCommand(id, time.Unix(int64(index), 0), cmd)}
}

// An archive round-trips; any damage is refused; a restore entry replaces
// the state, and a retried copy of it (same request ID) does not roll back
// writes made after the first.
func TestSnapshot_ArchiveVerifiesAndRestoreEntryAppliesOnce(t *testing.T) {
	store, _ := catalog.New(catalog.Config{})
	fsm := &restoringFSM{inner: rpc.NewDedupFSM(store, 0, 0)}
	fsm.Apply(kvEntry(1, "w1", "k", "saved"))
	snap, _ := fsm.Snapshot()
	var state bytes.Buffer
	if err := snap.Persist(&state); err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	if err := WriteSnapshotArchive(&archive, SnapshotMeta{Index: 1, Datacenter: "dc1"}, state.Bytes()); err != nil {
		t.Fatal(err)
	}
	meta, got, err := ReadSnapshotArchive(bytes.NewReader(archive.Bytes()))
	if err != nil || !bytes.Equal(got, state.Bytes()) || meta.Index != 1 || meta.Size != int64(state.Len()) {
		t.Fatalf("round trip: meta %+v, err %v", meta, err)
	}
	b := archive.Bytes()
	for name, bad := range map[string][]byte{"truncated": b[:len(b)-9], "empty": nil, "not gzip": []byte("roster-snapshot v1\n")} {
		if _, _, err := ReadSnapshotArchive(bytes.NewReader(bad)); !errors.Is(err, ErrBadSnapshotArchive) {
			t.Errorf("%s archive: err %v, want ErrBadSnapshotArchive", name, err)
		}
	}
	if c, err := InspectSnapshotState(state.Bytes()); err != nil || c.KVs != 1 {
		t.Fatalf("inspect: %+v, %v", c, err)
	}
	fsm.Apply(kvEntry(2, "w2", "k", "changed"))
	restore := raft.Entry{Index: 3, Type: raft.EntryCommand, Data: encodeRestore("r1", state.Bytes())}
	if res := fsm.Apply(restore); res != nil {
		t.Fatalf("restore entry: %v", res)
	}
	if kv, _ := store.KVGet("k"); kv == nil || string(kv.Value) != "saved" {
		t.Fatalf("after restore k = %+v, want saved", kv)
	}
	fsm.Apply(kvEntry(4, "w3", "k", "after"))
	restore.Index = 5
	fsm.Apply(restore) // a retried copy
	if kv, _ := store.KVGet("k"); kv == nil || string(kv.Value) != "after" {
		t.Fatalf("a retried restore rolled k back to %+v", kv)
	}
}

// A restore through the RPC endpoints puts the saved state back on every
// server, and the leader reconciles at once: a client that joined after
// the save is registered again well before the periodic reconcile.
func TestCluster_SnapshotRestoreReappliesStateAndReconciles(t *testing.T) {
	tc := newTestCluster(t, 3)
	for i := range tc.cfgs {
		tc.cfgs[i].ReconcileInterval = time.Minute
	}
	tc.startAll()
	l := tc.leader(10 * time.Second)
	if err := putKV(tc.agents[l], "restore/k", "saved"); err != nil {
		t.Fatal(err)
	}
	var saved httpapi.SnapshotResponse
	if err := tc.agents[(l+1)%3].RPC(context.Background(), "Snapshot.Save", &httpapi.SnapshotRequest{}, &saved); err != nil {
		t.Fatal(err)
	}
	tc.add(tc.clientConfig("c1"))
	tc.waitSerfHealth("c1", catalog.HealthPassing, 10*time.Second)
	if err := putKV(tc.agents[l], "restore/k", "changed"); err != nil {
		t.Fatal(err)
	}
	args := &httpapi.SnapshotRestoreRequest{Archive: saved.Archive}
	if err := tc.agents[(l+2)%3].RPC(context.Background(), "Snapshot.Restore", args, &struct{}{}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the saved value on every server", func() error {
		for _, a := range tc.servers() {
			if v, err := getKV(a, "restore/k", "stale"); err != nil || v != "saved" {
				return fmt.Errorf("%s: %q %v", a.cfg.NodeName, v, err)
			}
		}
		return nil
	})
	tc.waitSerfHealth("c1", catalog.HealthPassing, 10*time.Second)
}
