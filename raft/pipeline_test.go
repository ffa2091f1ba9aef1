package raft

import (
	"math/rand/v2"
	"testing"
)

// pipelineLeader leads a, b, c with b and c replicating (their no-op
// acknowledged), sending full messages of 4 entries.
func pipelineLeader(t *testing.T) *Core {
	t.Helper()
	cfg := CoreConfig{ID: "a", ElectionTicks: 10, HeartbeatTicks: 1, MaxEntriesPerMsg: 4, MaxInflight: 8, PipelineFullOnly: true}
	c, err := NewCore(cfg, HardState{Term: 1}, []Entry{confEntry("a", "b", "c")}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	c.Campaign()
	c.Step(Message{Type: MsgVoteResp, From: "b", Term: 2})
	c.Step(Message{Type: MsgAppResp, From: "b", Term: 2, Index: 2})
	c.Step(Message{Type: MsgAppResp, From: "c", Term: 2, Index: 2})
	c.Ready()
	return c
}

func appsTo(rd Ready, to string) []Message {
	var out []Message
	for _, m := range msgsOfType(rd, MsgApp) {
		if m.To == to {
			out = append(out, m)
		}
	}
	return out
}

// With a message in flight, a partial batch waits for the answer; a full
// one is pipelined; the answer releases what accumulated.
func TestCore_PipelineFullOnly_BatchesUntilAnswer(t *testing.T) {
	c := pipelineLeader(t)
	c.Propose([]Entry{{Data: []byte("1")}})
	if apps := appsTo(c.Ready(), "b"); len(apps) != 1 || len(apps[0].Entries) != 1 {
		t.Fatalf("first proposal: %+v, want one message with it", apps)
	}
	c.Propose([]Entry{{Data: []byte("2")}})
	if apps := appsTo(c.Ready(), "b"); len(apps) != 0 {
		t.Fatalf("partial batch sent with a message in flight: %+v", apps)
	}
	c.Propose([]Entry{{Data: []byte("3")}, {Data: []byte("4")}, {Data: []byte("5")}})
	if apps := appsTo(c.Ready(), "b"); len(apps) != 1 || len(apps[0].Entries) != 4 {
		t.Fatalf("full batch: %+v, want it pipelined", apps)
	}
	c.Propose([]Entry{{Data: []byte("6")}})
	c.Ready()
	c.Step(Message{Type: MsgAppResp, From: "b", Term: 2, Index: 3})
	c.Step(Message{Type: MsgAppResp, From: "b", Term: 2, Index: 7})
	if apps := appsTo(c.Ready(), "b"); len(apps) != 1 || len(apps[0].Entries) != 1 || apps[0].Entries[0].Index != 8 {
		t.Fatalf("after the answers: %+v, want entry 8", apps)
	}
}

// A lost message must not stall replication: two heartbeat answers with no
// AppendEntries answer free the window.
func TestCore_PipelineFullOnly_LostMessageDoesNotStall(t *testing.T) {
	c := pipelineLeader(t)
	c.Propose([]Entry{{Data: []byte("lost")}})
	c.Ready() // the message to b is lost
	c.Propose([]Entry{{Data: []byte("next")}})
	c.Ready()
	for range 2 {
		c.Step(Message{Type: MsgHeartbeatResp, From: "b", Term: 2})
	}
	if apps := appsTo(c.Ready(), "b"); len(apps) == 0 {
		t.Fatal("replication to b stalled behind a lost message")
	}
}
