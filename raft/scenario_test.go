package raft

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"roster/internal/testkit"
)

// TestScenario runs every testdata/*.txt script against a cluster of cores
// and compares the transcript with testdata/*.golden. Scripts read as a
// protocol walkthrough; run with -rewrite after an intended change and
// review the diff.
//
// Commands (one per line, # comments):
//
//	cluster n1 n2 n3 [prevote=off] [checkquorum=off] [maxentries=N]
//	campaign n1          start an election on n1 now
//	tick n1 [k]          advance n1's clock k ticks (default 1)
//	deliver              deliver queued messages, and their consequences, in FIFO order
//	step                 deliver only the messages queued now
//	timeout n1           tick n1 until its election timer fires
//	drop                 lose every queued message
//	propose n1 data      leader n1 appends a command
//	partition a b | c d  split the network;  isolate n1;  heal
//	crash n1             n1 stops (its disk survives);  restart n1
//	status               one line per server
//	log n1               n1's log as index/term
func TestScenario(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no scenario scripts in testdata/")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			got := runScenario(t, f)
			testkit.Golden(t, strings.TrimSuffix(f, ".txt")+".golden", []byte(got))
		})
	}
}

func runScenario(t *testing.T, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out strings.Builder
	var s *sim
	sc := bufio.NewScanner(f)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			out.WriteString(sc.Text() + "\n")
			continue
		}
		fmt.Fprintf(&out, "> %s\n", line)
		args := strings.Fields(line)
		if args[0] == "cluster" {
			s = scenarioCluster(t, args[1:])
			s.out = &out
			continue
		}
		if s == nil {
			t.Fatalf("%s:%d: first command must be cluster", path, lineNo)
		}
		if err := scenarioCommand(s, args, &out); err != nil {
			t.Fatalf("%s:%d: %v", path, lineNo, err)
		}
	}
	return out.String()
}

func scenarioCluster(t *testing.T, args []string) *sim {
	cfg := CoreConfig{ElectionTicks: 10, HeartbeatTicks: 2, PreVote: true, CheckQuorum: true,
		MaxEntriesPerMsg: 100, MaxInflight: 8}
	var ids []string
	for _, a := range args {
		switch {
		case a == "prevote=off":
			cfg.PreVote = false
		case a == "checkquorum=off":
			cfg.CheckQuorum = false
		case strings.HasPrefix(a, "maxentries="):
			cfg.MaxEntriesPerMsg, _ = strconv.Atoi(strings.TrimPrefix(a, "maxentries="))
		default:
			ids = append(ids, a)
		}
	}
	s := newSim(t, 1, cfg, ids...)
	s.manual = true
	s.maxLatency = 0 // every message is due at once; "deliver" moves them
	return s
}

func scenarioCommand(s *sim, args []string, out *strings.Builder) error {
	node := func() (*simNode, error) {
		if len(args) < 2 || s.nodes[args[1]] == nil {
			return nil, fmt.Errorf("%s needs a known server", args[0])
		}
		return s.nodes[args[1]], nil
	}
	switch args[0] {
	case "campaign", "tick", "timeout", "crash", "restart", "propose", "log":
		n, err := node()
		if err != nil {
			return err
		}
		return scenarioNodeCommand(s, n, args, out)
	case "deliver":
		s.deliverDue()
	case "step":
		s.deliverOnce()
	case "drop":
		s.inbox = nil
	case "partition":
		var groups [][]string
		cur := []string{}
		for _, a := range args[1:] {
			if a == "|" {
				groups, cur = append(groups, cur), []string{}
				continue
			}
			cur = append(cur, a)
		}
		s.plan.Partition(append(groups, cur)...)
	case "isolate":
		s.plan.Isolate(args[1])
	case "heal":
		s.plan.Heal()
	case "status":
		for _, id := range s.ids {
			n := s.nodes[id]
			if !n.up {
				fmt.Fprintf(out, "  %s down\n", id)
				continue
			}
			fmt.Fprintf(out, "  %s\n", n.core)
		}
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
	return nil
}

func scenarioNodeCommand(s *sim, n *simNode, args []string, out *strings.Builder) error {
	switch args[0] {
	case "campaign":
		n.core.Campaign()
		s.flush(n)
	case "tick":
		k := 1
		if len(args) > 2 {
			k, _ = strconv.Atoi(args[2])
		}
		for range k {
			n.core.Tick()
			s.flush(n)
		}
	case "timeout":
		state, term := n.core.State(), n.core.Term()
		for range 2 * s.cfg.ElectionTicks {
			if n.core.State() != state || n.core.Term() != term {
				break
			}
			n.core.Tick()
			s.flush(n)
		}
	case "crash":
		s.crash(n.id)
	case "restart":
		s.restart(n.id)
	case "propose":
		if len(args) < 3 {
			return fmt.Errorf("propose needs data")
		}
		if _, _, ok := s.propose(n.id, args[2]); !ok {
			fmt.Fprintf(out, "  refused: %s is not the leader\n", n.id)
		}
	case "log":
		var parts []string
		for _, e := range n.core.Entries(1, n.core.LastIndex()+1) {
			parts = append(parts, fmt.Sprintf("%d/t%d", e.Index, e.Term))
		}
		fmt.Fprintf(out, "  %s: %s\n", n.id, strings.Join(parts, " "))
	}
	return nil
}
