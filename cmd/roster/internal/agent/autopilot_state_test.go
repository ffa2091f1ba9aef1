package agent

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"roster/catalog"
	"roster/httpapi"
	"roster/internal/testkit"
	"roster/raft"
	"roster/rpc"
)

// autopilotHarness applies entries to the FSM chain a server runs.
type autopilotHarness struct {
	t     *testing.T
	store *catalog.Store
	ap    *autopilotFSM
	fsm   *rpc.DedupFSM
	idx   uint64
}

func newAutopilotHarness(t *testing.T) *autopilotHarness {
	store, err := catalog.New(catalog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := &autopilotHarness{t: t, store: store, ap: &autopilotFSM{inner: store}}
	h.fsm = rpc.NewDedupFSM(h.ap, 0, 0)
	return h
}

func (h *autopilotHarness) apply(id string, cmd []byte) any {
	h.idx++
	return h.fsm.Apply(raft.Entry{Index: h.idx, Term: 1, Type: raft.EntryCommand, Data: rpc.EncodeCommand(id, time.Now(), cmd)})
}

// Set replaces, CAS applies only at the stored ModifyIndex (never when
// nothing is stored, as in Consul), init only when nothing is stored; the
// indexes are the entries'; a retried request ID applies once; and the
// catalog's applied index follows the log through autopilot entries.
func TestAutopilotState_SetCASInitAndIndexes(t *testing.T) {
	h := newAutopilotHarness(t)
	conf := AutopilotSettings{CleanupDeadServers: true, MaxTrailingLogs: 250, ServerStabilizationTime: 10 * time.Second}
	if got := h.apply("", encodeAutopilot(autopilotCAS, conf)); got != false {
		t.Fatalf("CAS with nothing stored = %v, want false", got)
	}
	if got := h.apply("", encodeAutopilot(autopilotInit, conf)); got != true {
		t.Fatalf("init = %v, want true", got)
	}
	if got := h.apply("", encodeAutopilot(autopilotInit, AutopilotSettings{})); got != false {
		t.Fatalf("second init = %v, want false", got)
	}
	s, ok := h.ap.stored()
	if !ok || s.CreateIndex != 2 || s.ModifyIndex != 2 || !s.CleanupDeadServers || h.store.LastIndex() != 3 {
		t.Fatalf("stored %+v (%v), catalog index %d; want the init at 2, catalog at 3", s, ok, h.store.LastIndex())
	}
	stale := conf
	stale.MinQuorum, stale.ModifyIndex = 5, 1
	if got := h.apply("", encodeAutopilot(autopilotCAS, stale)); got != false {
		t.Fatalf("CAS at a stale index = %v, want false", got)
	}
	fresh := stale
	fresh.ModifyIndex = 2
	if got := h.apply("req-1", encodeAutopilot(autopilotCAS, fresh)); got != true {
		t.Fatalf("CAS at the stored index = %v, want true", got)
	}
	dup := h.apply("req-1", encodeAutopilot(autopilotCAS, fresh))
	if d, ok := dup.(rpc.Duplicate); !ok || d.Result != true || d.Index != 5 {
		t.Fatalf("retried CAS = %#v, want a Duplicate of index 5 reporting true", dup)
	}
	if s, _ := h.ap.stored(); s.MinQuorum != 5 || s.CreateIndex != 2 || s.ModifyIndex != 5 {
		t.Fatalf("after CAS: %+v, want MinQuorum 5, CreateIndex 2, ModifyIndex 5", s)
	}
	if res := h.apply("", []byte{autopilotMagic, 9}); res == nil {
		t.Fatal("an unknown autopilot operation applied")
	}
}

// A snapshot carries the stored configuration ahead of the catalog; a
// snapshot from before the section existed restores the catalog and
// leaves nothing stored.
func TestAutopilotState_SnapshotRestore(t *testing.T) {
	h := newAutopilotHarness(t)
	h.apply("", catalog.EncodeCommand(&catalog.KVRequest{Verb: catalog.KVSet, Key: "k", Value: []byte("v")}))
	h.apply("", encodeAutopilot(autopilotSet, AutopilotSettings{MinQuorum: 3, LastContactThreshold: time.Second}))
	snap, err := h.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	r := newAutopilotHarness(t)
	if err := r.fsm.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	want, _ := h.ap.stored()
	if got, ok := r.ap.stored(); !ok || got != want || r.store.Hash() != h.store.Hash() {
		t.Fatalf("restored %+v (%v), want %+v and the same catalog", got, ok, want)
	}
	if _, err := InspectSnapshotState(buf.Bytes()); err != nil {
		t.Fatalf("a snapshot with the autopilot section does not inspect: %v", err)
	}
	legacy := newAutopilotHarness(t)
	legacy.apply("", catalog.EncodeCommand(&catalog.KVRequest{Verb: catalog.KVSet, Key: "k", Value: []byte("v")}))
	old, _ := rpc.NewDedupFSM(legacy.store, 0, 0).Snapshot()
	buf.Reset()
	old.Persist(&buf)
	if err := r.fsm.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatalf("Restore of a snapshot without the section: %v", err)
	}
	if _, ok := r.ap.stored(); ok || r.store.Hash() != legacy.store.Hash() {
		t.Fatal("a snapshot without the section left a configuration stored or restored the wrong catalog")
	}
}

// setAutopilot writes conf through a (forwarded to the leader if a
// follows) and returns whether it applied.
func setAutopilot(a *Agent, conf httpapi.AutopilotConfiguration, cas bool) (bool, error) {
	var ok bool
	err := a.RPC(context.Background(), "Autopilot.SetConfiguration", &httpapi.AutopilotSetConfigRequest{Config: conf, CAS: cas}, &ok)
	return ok, err
}

// The configuration is replicated: a PUT through a follower reaches every
// server, and a new leader applies it although its own config says
// otherwise. Here every server is configured with cleanup off; the stored
// configuration turns it on with a 300ms grace, the leader is killed, and
// the next leader removes it from Raft.
func TestAutopilot_ReplicatedConfigurationRulesEveryLeader(t *testing.T) {
	tc := newTestCluster(t, 3)
	for i := range tc.cfgs {
		tc.cfgs[i].Autopilot.DisableCleanupDeadServers = true
	}
	l := tc.startSettled()
	follower := tc.agents[(l+1)%3]
	var before httpapi.AutopilotConfiguration
	testkit.WaitFor(t, 5*time.Second, "the leader to store its settings", func() error {
		if err := follower.RPC(context.Background(), "Autopilot.GetConfiguration", &httpapi.AutopilotConfigRequest{}, &before); err != nil {
			return err
		}
		if before.ModifyIndex == 0 || before.CleanupDeadServers {
			return fmt.Errorf("configuration %+v", before)
		}
		return nil
	})
	want := before
	want.CleanupDeadServers, want.DeadServerGracePeriod = true, "300ms"
	if ok, err := setAutopilot(follower, want, true); err != nil || !ok {
		t.Fatalf("CAS through a follower = %v, %v", ok, err)
	}
	if ok, err := setAutopilot(follower, want, true); err != nil || ok {
		t.Fatalf("a second CAS at the same index = %v, %v; want false", ok, err)
	}
	testkit.WaitFor(t, 5*time.Second, "every server to store the new configuration", func() error {
		for _, a := range tc.agents {
			if s, _ := a.srv.ap.stored(); !s.CleanupDeadServers || s.DeadServerGracePeriod != 300*time.Millisecond {
				return fmt.Errorf("%s stores %+v", a.cfg.NodeName, s)
			}
		}
		return nil
	})
	tc.kill(l)
	testkit.WaitFor(t, 15*time.Second, "the new leader to remove the old one", func() error {
		if n := raftServerCount(tc.agents[tc.leader(5*time.Second)]); n != 2 {
			return fmt.Errorf("%d servers in raft", n)
		}
		return nil
	})
}
