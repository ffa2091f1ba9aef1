package raft

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// The sequential specification the linearizability tests check recorded
// histories against (Herlihy & Wing's linearizability; the checker is
// porcupine, after Lowe's and Wing & Gong's algorithms): a map of string
// registers with get, put and compare-and-set. A missing key reads as "".

type kvOp uint8

const (
	kvGet kvOp = iota
	kvPut
	kvCAS
)

// kvInput is one client request; it is also the FSM command, JSON encoded.
type kvInput struct {
	Op     kvOp   `json:"op"`
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`  // put, cas: the new value
	Expect string `json:"expect,omitempty"` // cas: the value it must replace
}

// kvOutput is what the client saw. Unknown marks a write whose outcome the
// client never learned (a timeout, a lost leadership): it may or may not
// have taken effect, at any time after its call.
type kvOutput struct {
	Value   string // get: the value read
	OK      bool   // cas: whether it swapped
	Unknown bool
}

// kvStep applies in to the register's state, reporting whether out is a
// possible answer. An unknown outcome is always possible: the model takes
// the step the state dictates.
func kvStep(state string, in kvInput, out kvOutput) (bool, string) {
	switch in.Op {
	case kvGet:
		return out.Unknown || out.Value == state, state
	case kvPut:
		return true, in.Value
	case kvCAS:
		swapped := state == in.Expect
		next := state
		if swapped {
			next = in.Value
		}
		return out.Unknown || out.OK == swapped, next
	}
	return false, state
}

// kvModel is the per-key register: the map is linearizable iff each key
// is (linearizability is local, Herlihy & Wing §3.3), which keeps the
// search small.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(kvInput).Key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		return kvStep(state.(string), input.(kvInput), output.(kvOutput))
	},
	Hash: func(state any) uint64 {
		h := fnv.New64a()
		h.Write([]byte(state.(string)))
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		res := ""
		switch {
		case out.Unknown:
			res = " -> ?"
		case in.Op == kvGet:
			res = fmt.Sprintf(" -> %q", out.Value)
		case in.Op == kvCAS:
			res = fmt.Sprintf(" -> %v", out.OK)
		}
		switch in.Op {
		case kvGet:
			return fmt.Sprintf("get(%s)%s", in.Key, res)
		case kvPut:
			return fmt.Sprintf("put(%s, %q)%s", in.Key, in.Value, res)
		default:
			return fmt.Sprintf("cas(%s, %q, %q)%s", in.Key, in.Expect, in.Value, res)
		}
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state) },
}

// kvHistory records operations as clients complete them. Times are
// nanoseconds on the monotonic clock since the history began; an
// operation's interval must contain the moment it took effect.
type kvHistory struct {
	start time.Time
	// mu guards ops and nextClient.
	mu         sync.Mutex
	ops        []porcupine.Operation
	nextClient int
}

func newKVHistory() *kvHistory { return &kvHistory{start: time.Now()} }

// now is the timestamp to record for a call or a return.
func (h *kvHistory) now() int64 { return int64(time.Since(h.start)) }

// client allocates a visualization lane. A client that saw an unknown
// outcome takes a new lane: its old operation may still be "running".
func (h *kvHistory) client() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextClient++
	return h.nextClient - 1
}

func (h *kvHistory) add(client int, in kvInput, out kvOutput, call, ret int64, via string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret, Metadata: via})
}

// progress counts the reads and writes completed so far with a known
// outcome.
func (h *kvHistory) progress() (reads, acked int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return countCompleted(h.ops)
}

// operations returns the history ready for the checker: an unknown outcome
// returns after everything else (it may take effect at any later time,
// and nothing is observed after the last return).
func (h *kvHistory) operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	var end int64
	for _, op := range h.ops {
		end = max(end, op.Return)
	}
	ops := make([]porcupine.Operation, len(h.ops))
	for i, op := range h.ops {
		if op.Output.(kvOutput).Unknown {
			op.Return = end + 1
		}
		ops[i] = op
	}
	return ops
}

// linearizabilityVerdict is the outcome of checking a history.
type linearizabilityVerdict struct {
	result  porcupine.CheckResult
	ops     int
	unknown int
	// artifact is the visualization written for a history that is not
	// (proven) linearizable, "" otherwise.
	artifact string
}

// checkKVHistory checks ops against kvModel. When the answer is not Ok it
// writes porcupine's HTML visualization (open it in a browser: the
// longest linearizable prefix of each key and where it breaks) and the raw
// history as JSON under dir, named after name.
func checkKVHistory(ops []porcupine.Operation, timeout time.Duration, dir, name string) (linearizabilityVerdict, error) {
	v := linearizabilityVerdict{result: porcupine.CheckOperationsTimeout(kvModel, ops, timeout), ops: len(ops)}
	for _, op := range ops {
		if op.Output.(kvOutput).Unknown {
			v.unknown++
		}
	}
	if v.result == porcupine.Ok {
		return v, nil
	}
	// Check again, keeping what the visualization needs (slower).
	_, info := porcupine.CheckOperationsVerbose(kvModel, ops, timeout)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return v, err
	}
	base := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(name))
	if err := porcupine.VisualizePath(kvModel, info, base+".html"); err != nil {
		return v, fmt.Errorf("writing the visualization: %w", err)
	}
	raw, err := json.MarshalIndent(ops, "", " ")
	if err != nil {
		return v, err
	}
	if err := os.WriteFile(base+".json", raw, 0o644); err != nil {
		return v, err
	}
	v.artifact = base + ".html"
	return v, nil
}

// ArtifactsEnv names the directory where failing histories are kept (CI
// uploads it); without it they go to a fresh directory under os.TempDir.
const artifactsEnv = "ROSTER_ARTIFACTS"

func artifactDir() string {
	if d := os.Getenv(artifactsEnv); d != "" {
		return filepath.Join(d, "linearizability")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("roster-linearizability-%d", os.Getpid()))
}
