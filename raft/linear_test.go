package raft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"roster/internal/testkit"
)

// Linearizability of the whole Node (writes through the log, reads through
// ReadIndex, thesis §6.4) under leader changes, partitions, lossy links,
// crashes, snapshots and leadership transfers: concurrent clients record
// every operation's call and return time, and porcupine checks that some
// sequential order of the operations, each placed between its call and
// its return, explains every answer. A failing history is kept as an HTML
// visualization whose path the failure prints.

var linKeys = []string{"x", "y", "z"}

// linOpInterval paces each client (see linClient.run).
const linOpInterval = 2 * time.Millisecond

// TestPartition_LinearizableKVUnderChaos: 5 servers, 6 clients on 3 keys
// (get via ReadIndex, put, cas) for about 3 s (longer if the faults left
// too few operations to check) while a nemesis isolates leaders,
// partitions, drops, delays, duplicates and reorders messages, crashes
// and restarts servers and transfers leadership. Odd seeds run
// without check-quorum, so a deposed leader lingers and keeps answering
// (the hard case for reads: safety must not depend on leases). `make
// chaos` runs 25 seeds.
func TestPartition_LinearizableKVUnderChaos(t *testing.T) {
	seed := testkit.Seed(t)
	for i := range min(testkit.ChaosRuns(1), 25) {
		s := seed + uint64(i)
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			ops := runLinearizable(t, s, 3*time.Second)
			requireLinearizable(t, ops, artifactDir())
		})
	}
}

// runLinearizable drives a cluster with clients and the nemesis for d and
// returns the recorded history.
func runLinearizable(t *testing.T, seed uint64, d time.Duration) []porcupine.Operation {
	cfg := linConfig()
	cfg.DisableCheckQuorum = seed%2 == 1
	t.Logf("check-quorum %v", !cfg.DisableCheckQuorum)
	c := newLinCluster(t, seed, 5, cfg)
	c.leaderOf(c.ids...)
	h := newKVHistory()
	deadline := time.Now().Add(d)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wg := startClients(ctx, c, h, seed, 6, false)
	log := runNemesis(c, rand.New(rand.NewPCG(seed, 1000)), deadline)
	// On a loaded machine (make test runs every package at once, under
	// -race) the faults can leave too few completed operations to check
	// anything; the clients then go on against the healed cluster until
	// there are enough, or linExtraTime has passed.
	testkit.Poll(linExtraTime, func() error {
		if reads, acked := h.progress(); reads < linMinReads || acked < linMinAcked {
			return errors.New("too few operations yet")
		}
		return nil
	})
	cancel()
	wg.Wait()
	t.Logf("nemesis: %s", strings.Join(log, "; "))
	var snaps []string
	for _, id := range c.ids {
		if s := c.server(id); s != nil {
			snaps = append(snaps, id+"@"+s.node.Stats()["last_snapshot_index"])
		}
	}
	t.Logf("last snapshots: %s", strings.Join(snaps, " "))
	return h.operations()
}

// requireLinearizable fails the test, naming the visualization, unless
// the history is linearizable. A history with hardly any completed
// operations proves nothing, so that fails too.
func requireLinearizable(t *testing.T, ops []porcupine.Operation, dir string) {
	t.Helper()
	v, err := checkKVHistory(ops, 60*time.Second, dir, t.Name())
	if err != nil {
		t.Fatalf("checking the history: %v", err)
	}
	reads, acked := countCompleted(ops)
	t.Logf("history: %d operations (%d reads, %d acknowledged writes, %d unknown outcomes): %s",
		v.ops, reads, acked, v.unknown, v.result)
	switch v.result {
	case porcupine.Ok:
	case porcupine.Illegal:
		t.Fatalf("history is NOT linearizable; visualization: %s (raw history next to it, .json)", v.artifact)
	default:
		t.Fatalf("the checker could not decide in time; visualization: %s", v.artifact)
	}
	if reads < linMinReads || acked < linMinAcked {
		t.Fatalf("only %d reads and %d acknowledged writes completed: the cluster made too little progress to test anything", reads, acked)
	}
}

// A history needs linMinReads completed reads and linMinAcked
// acknowledged writes to prove anything; runLinearizable lets its
// clients run up to linExtraTime past the faults to reach them.
const (
	linMinReads  = 20
	linMinAcked  = 20
	linExtraTime = 20 * time.Second
)

// countCompleted counts the reads and the writes of ops whose outcome is
// known.
func countCompleted(ops []porcupine.Operation) (reads, acked int) {
	for _, op := range ops {
		switch {
		case op.Output.(kvOutput).Unknown:
		case op.Input.(kvInput).Op == kvGet:
			reads++
		default:
			acked++
		}
	}
	return reads, acked
}

// startClients starts n clients (the last one stale if asked) that run
// until ctx ends. Every other client only reads: a client busy waiting out
// a write stuck on a deposed leader reads nothing meanwhile, and the reads
// during such windows are the ones that matter.
func startClients(ctx context.Context, c *linCluster, h *kvHistory, seed uint64, n int, lastStale bool) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := range n {
		cl := &linClient{c: c, h: h, lane: h.client(), name: fmt.Sprintf("c%d", i), readPct: 20 + 80*(i%2),
			rng: rand.New(rand.NewPCG(seed, uint64(i))), seen: map[string]string{}, stale: lastStale && i == n-1}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl.run(ctx, 10_000)
		}()
	}
	return &wg
}

// linClient issues one operation at a time and records each.
type linClient struct {
	c    *linCluster
	h    *kvHistory
	rng  *rand.Rand
	lane int
	name string
	// readPct is the share of gets among its operations; the rest are half
	// puts, half cas.
	readPct int
	seen    map[string]string // last value this client read or wrote, per key
	// stale makes reads bypass ReadIndex and read whichever server's FSM
	// (the checker must catch that; see the negative test).
	stale bool
}

// run issues at most one operation per linOpInterval until ctx ends: an
// unpaced client on the in-memory network would do thousands a second,
// making histories slow to check, or, capped by count, stop before the
// faults it should witness.
func (cl *linClient) run(ctx context.Context, maxOps int) {
	pace := time.NewTicker(linOpInterval)
	defer pace.Stop()
	for i := 0; i < maxOps; i++ {
		select {
		case <-ctx.Done():
			return
		case <-pace.C:
		}
		key := linKeys[cl.rng.IntN(len(linKeys))]
		in := kvInput{Op: kvGet, Key: key}
		switch r := cl.rng.IntN(100); {
		case r < cl.readPct:
		case r%2 == 0:
			in = kvInput{Op: kvPut, Key: key, Value: fmt.Sprintf("%s.%d", cl.name, i)}
		default:
			in = kvInput{Op: kvCAS, Key: key, Expect: cl.seen[key], Value: fmt.Sprintf("%s.%d", cl.name, i)}
		}
		cl.do(in)
	}
}

// do performs in and records it, unless it certainly had no effect (then
// it is as if it never happened).
func (cl *linClient) do(in kvInput) {
	call := cl.h.now()
	var out kvOutput
	var via string
	var ok bool
	if in.Op == kvGet {
		out, via, ok = cl.read(in.Key)
	} else {
		out, via, ok = cl.write(in)
	}
	if !ok {
		return
	}
	cl.h.add(cl.lane, in, out, call, cl.h.now(), cl.name+"@"+via)
	switch {
	case out.Unknown:
		cl.lane = cl.h.client() // the old operation may still take effect
	case in.Op == kvGet:
		cl.seen[in.Key] = out.Value
	case in.Op == kvPut || out.OK:
		cl.seen[in.Key] = in.Value
	}
}

// write submits in to a server that believes it leads. A refusal before
// the command reached the log (not the leader, a transfer in progress, a
// full queue) is retried elsewhere; any other failure leaves the outcome
// unknown.
func (cl *linClient) write(in kvInput) (kvOutput, string, bool) {
	data, err := json.Marshal(in)
	if err != nil {
		cl.c.t.Errorf("encoding %+v: %v", in, err)
		return kvOutput{}, "", false
	}
	for range 5 {
		s := cl.c.awaitLeader(cl.rng, time.Second)
		if s == nil {
			return kvOutput{}, "", false
		}
		f := s.node.Apply(data, 100*time.Millisecond)
		err := waitFuture(f, 500*time.Millisecond)
		switch {
		case err == nil:
			swapped, isBool := f.Response().(bool)
			if !isBool {
				cl.c.t.Errorf("%s applied %+v with response %v", s.id, in, f.Response())
			}
			return kvOutput{OK: swapped}, s.id, true
		case errors.Is(err, ErrNotLeader), errors.Is(err, ErrLeadershipTransferInProgress), errors.Is(err, ErrEnqueueTimeout):
			continue
		default:
			return kvOutput{Unknown: true}, s.id, true
		}
	}
	return kvOutput{}, "", false
}

// read answers from a self-believed leader's FSM once ReadIndex confirms
// it (or at once, in stale mode). A failed read has no effect, so it is
// retried elsewhere and, failing that, dropped.
func (cl *linClient) read(key string) (kvOutput, string, bool) {
	if cl.stale {
		s := cl.c.server(cl.c.ids[cl.rng.IntN(len(cl.c.ids))])
		if s == nil {
			return kvOutput{}, "", false
		}
		return kvOutput{Value: s.fsm.get(key)}, s.id + "(stale)", true
	}
	for range 5 {
		s := cl.c.awaitLeader(cl.rng, time.Second)
		if s == nil {
			return kvOutput{}, "", false
		}
		if _, err := s.node.ReadIndex(500 * time.Millisecond); err == nil {
			return kvOutput{Value: s.fsm.get(key)}, s.id, true
		}
	}
	return kvOutput{}, "", false
}

// runNemesis alternates faults and healing until deadline: a fault holds
// for 400–800 ms (long enough for the majority to elect a new leader and
// commit while the old one still answers), then the network heals, crashed
// servers restart, and after 100–300 ms the next fault comes; now and then
// faults stack instead. At the end everything heals. It returns what it
// did, with the self-believed leaders after each step.
func runNemesis(c *linCluster, rng *rand.Rand, deadline time.Time) []string {
	var log []string
	note := func(what string) {
		var ls []string
		for _, l := range c.leaders() {
			ls = append(ls, fmt.Sprintf("%s/t%d", l.id, l.node.Term()))
		}
		log = append(log, fmt.Sprintf("%s %s (leaders %v)", time.Now().Format("05.000"), what, ls))
	}
	for step := 0; step < 50 && time.Now().Before(deadline); step++ {
		note(nemesisFault(c, rng))
		pollUntil(time.Now().Add(time.Duration(400+rng.IntN(400)) * time.Millisecond))
		if rng.IntN(4) == 0 {
			continue // stack the next fault on this one
		}
		nemesisHeal(c)
		note("heal")
		pollUntil(time.Now().Add(time.Duration(100+rng.IntN(200)) * time.Millisecond))
	}
	nemesisHeal(c)
	return log
}

func nemesisHeal(c *linCluster) {
	c.net.Heal()
	for _, id := range c.down() {
		c.start(id)
	}
}

// nemesisFault injects one fault. Most cut the newest leader off from the
// majority, since that is when a stale read could happen: the old leader
// keeps its state (and, without check-quorum, its role) while the majority
// elects another leader and moves on.
func nemesisFault(c *linCluster, rng *rand.Rand) string {
	ids := append([]string(nil), c.ids...)
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	leader := c.newestLeader()
	if i := slices.Index(ids, leader); i >= 0 {
		ids[0], ids[i] = ids[i], ids[0]
	}
	switch rng.IntN(10) {
	case 0, 1, 2:
		if leader != "" {
			c.net.Isolate(leader)
			return "isolate leader " + leader
		}
	case 3, 8, 9:
		k := 1 + rng.IntN(len(ids)/2) // a minority of 1 or 2, with the leader
		c.net.Partition(ids[:k], ids[k:])
		return fmt.Sprintf("partition %v | %v", ids[:k], ids[k:])
	case 4:
		if s := c.server(leader); s != nil {
			s.node.LeadershipTransfer(ids[1], 100*time.Millisecond)
			return "transfer " + leader + " -> " + ids[1]
		}
	case 5:
		if len(c.down()) == 0 {
			c.crash(ids[0])
			return "crash " + ids[0]
		}
	case 6:
		c.net.Drop(ids[0], ids[1], 0.5)
		c.net.Delay(ids[1], ids[0], 20*time.Millisecond)
		return fmt.Sprintf("drop %s->%s, delay %s->%s", ids[0], ids[1], ids[1], ids[0])
	case 7:
		c.net.Duplicate(0.1)
		c.net.Reorder(0.3)
		return "duplicate + reorder"
	}
	return ""
}

// TestPartition_LinearizabilityCheckerFlagsStaleRead proves the check can
// fail: a deposed leader, cut off from the majority, still holds the old
// value; a read served from its local state without ReadIndex returns it
// after a newer write was acknowledged, and the checker must reject the
// history (and write its visualization). The same history with the read
// done through ReadIndex on the new leader passes.
func TestPartition_LinearizabilityCheckerFlagsStaleRead(t *testing.T) {
	c := newLinCluster(t, testkit.Seed(t), 3, linConfig())
	old := c.leaderOf(c.ids...)
	h := newKVHistory()
	rng := rand.New(rand.NewPCG(1, 2))
	cl := &linClient{c: c, h: h, lane: h.client(), name: "w", rng: rng, seen: map[string]string{}}
	cl.do(kvInput{Op: kvPut, Key: "x", Value: "v1"})
	testkit.WaitFor(t, 5*time.Second, "v1 applied everywhere", func() error {
		for _, id := range c.ids {
			if got := c.server(id).fsm.get("x"); got != "v1" {
				return fmt.Errorf("%s has x=%q", id, got)
			}
		}
		return nil
	})
	c.net.Isolate(old.id)
	if _, err := old.node.ReadIndex(300 * time.Millisecond); err == nil {
		t.Fatalf("isolated leader %s confirmed a read", old.id)
	}
	fresh := c.leaderOf(others(c.ids, old.id)...)
	// Check-quorum deposes the old leader; until then a write could go to
	// it and stay unacknowledged.
	testkit.WaitFor(t, 5*time.Second, old.id+" to step down", func() error {
		if old.node.State() == Leader {
			return errors.New("still leader")
		}
		return nil
	})
	cl.do(kvInput{Op: kvPut, Key: "x", Value: "v2"})
	if len(h.ops) != 2 || h.ops[1].Output.(kvOutput).Unknown {
		t.Fatalf("the writes were not both acknowledged: %+v", h.ops)
	}
	good := append([]porcupine.Operation(nil), h.operations()...)

	call := h.now()
	h.add(1, kvInput{Op: kvGet, Key: "x"}, kvOutput{Value: old.fsm.get("x")}, call, h.now(), old.id+"(local, no ReadIndex)")
	v, err := checkKVHistory(h.operations(), 10*time.Second, t.TempDir(), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	if v.result != porcupine.Illegal || v.artifact == "" {
		t.Fatalf("stale read of %s from deposed leader %s: checker said %s (artifact %q), want Illegal",
			h.ops[2].Output.(kvOutput).Value, old.id, v.result, v.artifact)
	}
	t.Logf("stale read flagged; visualization %s", v.artifact)

	if _, err := fresh.node.ReadIndex(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	call = h.now()
	good = append(good, porcupine.Operation{ClientId: 1, Input: kvInput{Op: kvGet, Key: "x"},
		Output: kvOutput{Value: fresh.fsm.get("x")}, Call: call, Return: h.now()})
	if v, err := checkKVHistory(good, 10*time.Second, t.TempDir(), t.Name()); err != nil || v.result != porcupine.Ok {
		t.Fatalf("read through ReadIndex on %s: %s, %v; want Ok", fresh.id, v.result, err)
	}
	c.net.Heal()
}

// TestPartition_LinearizabilityStaleReadsCaughtUnderChaos runs the chaos
// workload with reads served from any server's local state: under
// partitions such reads go stale, and the checker must say so. It is the
// end-to-end proof that the main test's clients, history and checker can
// fail.
func TestPartition_LinearizabilityStaleReadsCaughtUnderChaos(t *testing.T) {
	seed := testkit.Seed(t)
	c := newLinCluster(t, seed, 3, linConfig())
	c.leaderOf(c.ids...)
	h := newKVHistory()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	wg := startClients(ctx, c, h, seed, 2, true)
	// Keep one follower behind: it misses every write, so its local reads
	// go stale as soon as a write is acknowledged without it.
	lagger := others(c.ids, c.leaderOf(c.ids...).id)[0]
	c.net.Isolate(lagger)
	var v linearizabilityVerdict
	testkit.WaitFor(t, 5*time.Second, "the checker to reject a history with stale reads", func() error {
		var err error
		if v, err = checkKVHistory(h.operations(), 5*time.Second, t.TempDir(), t.Name()); err != nil {
			return err
		}
		if v.result != porcupine.Illegal {
			return fmt.Errorf("%d operations so far, checker says %s", v.ops, v.result)
		}
		return nil
	})
	cancel() // stop the clients early
	wg.Wait()
	c.net.Heal()
	t.Logf("stale reads flagged after %d operations; visualization %s", v.ops, v.artifact)
}
