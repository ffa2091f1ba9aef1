package swim

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"roster/internal/testkit"
)

// TestScenarios runs every script in testdata/scenarios/*.txt on the
// virtual-time simulator and compares the trace (commands, events,
// optionally packets, expectation results) with the .golden file next to
// it. Run with -rewrite to accept a new trace after reviewing the diff.
//
// Script commands (one per line, # comments):
//
//	cluster N [seed=S] [lifeguard=on|off]   must come first
//	trace packets|events                    what to print besides commands
//	run DURATION                            advance virtual time
//	kill NAME | isolate NAME | heal
//	drop FROM TO PROB | delay FROM TO DURATION   (FROM/TO may be *)
//	leave NAME | restart NAME via NAME | tags NAME k=v... | event NAME EVNAME
//	expect OBSERVER SUBJECT STATE [inc>=N]  fails the test if not so
//	view NAME                               print NAME's member table
func TestScenarios(t *testing.T) {
	scripts, err := filepath.Glob(filepath.Join("testdata", "scenarios", "*.txt"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scenario scripts found: %v", err)
	}
	for _, path := range scripts {
		name := strings.TrimSuffix(filepath.Base(path), ".txt")
		t.Run(name, func(t *testing.T) {
			got := runScript(t, path)
			testkit.Golden(t, strings.TrimSuffix(path, ".txt")+".golden", []byte(got))
		})
	}
}

type scriptRun struct {
	t            *testing.T
	s            *sim
	out          strings.Builder
	tracePackets bool
}

func runScript(t *testing.T, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &scriptRun{t: t}
	sc := bufio.NewScanner(f)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fmt.Fprintf(&r.out, "> %s\n", line)
		if err := r.exec(strings.Fields(line)); err != nil {
			t.Fatalf("%s:%d: %v\ntrace so far:\n%s", path, lineNo, err, r.out.String())
		}
	}
	return r.out.String()
}

func (r *scriptRun) exec(f []string) error {
	if f[0] != "cluster" && r.s == nil {
		return fmt.Errorf("the first command must be cluster")
	}
	switch f[0] {
	case "cluster":
		return r.cluster(f[1:])
	case "trace":
		r.tracePackets = len(f) > 1 && f[1] == "packets"
	case "run":
		d, err := time.ParseDuration(arg(f, 1))
		if err != nil {
			return err
		}
		r.s.run(d)
	case "kill":
		r.s.kill(r.s.id(arg(f, 1)))
	case "isolate":
		r.s.plan.Isolate(arg(f, 1))
	case "heal":
		r.s.plan.Heal()
	case "drop":
		p, err := strconv.ParseFloat(arg(f, 3), 64)
		if err != nil {
			return err
		}
		r.s.plan.Drop(arg(f, 1), arg(f, 2), p)
	case "delay":
		d, err := time.ParseDuration(arg(f, 3))
		if err != nil {
			return err
		}
		r.s.plan.Delay(arg(f, 1), arg(f, 2), d)
	case "leave":
		r.s.cores[r.s.id(arg(f, 1))].Leave()
	case "restart":
		r.s.restart(r.s.id(arg(f, 1)), r.s.id(arg(f, 3)))
	case "tags":
		return r.tags(f[1:])
	case "event":
		return r.s.cores[r.s.id(arg(f, 1))].UserEvent(arg(f, 2), nil)
	case "expect":
		return r.expect(f[1:])
	case "view":
		fmt.Fprintf(&r.out, "%s\n", r.s.view(r.s.id(arg(f, 1))))
	default:
		return fmt.Errorf("unknown command %q", f[0])
	}
	return nil
}

func arg(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

func (r *scriptRun) cluster(args []string) error {
	n, err := strconv.Atoi(arg(args, 0))
	if err != nil {
		return fmt.Errorf("cluster size: %v", err)
	}
	cfg := DefaultLANConfig()
	seed := uint64(1)
	for _, a := range args[1:] {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "seed":
			if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
				return err
			}
		case "lifeguard":
			cfg.Lifeguard = v == "on"
		default:
			return fmt.Errorf("unknown cluster option %q", a)
		}
	}
	r.s = newSim(n, cfg, seed)
	r.s.onEvent = func(e Event) { fmt.Fprintf(&r.out, "%s\n", e) }
	r.s.onSend = func(from, to int, data []byte) {
		if r.tracePackets {
			fmt.Fprintf(&r.out, "t=%d %s->%s %s\n", r.s.now, r.s.names[from], r.s.names[to], describePacket(data))
		}
	}
	return nil
}

func (r *scriptRun) tags(args []string) error {
	tags := map[string]string{}
	for _, kv := range args[1:] {
		k, v, _ := strings.Cut(kv, "=")
		tags[k] = v
	}
	return r.s.cores[r.s.id(arg(args, 0))].SetTags(tags)
}

func (r *scriptRun) expect(args []string) error {
	obs, subj := r.s.id(arg(args, 0)), arg(args, 1)
	m, ok := r.s.cores[obs].Member(subj)
	want := arg(args, 2)
	if !ok || m.State.String() != want {
		return fmt.Errorf("expected %s to see %s %s, it sees %v (view: %s)", args[0], subj, want, m.State, r.s.view(obs))
	}
	if inc, found := strings.CutPrefix(arg(args, 3), "inc>="); found {
		n, _ := strconv.Atoi(inc)
		if int(m.Incarnation) < n {
			return fmt.Errorf("expected %s to see %s with incarnation >= %d, got %d", args[0], subj, n, m.Incarnation)
		}
	}
	fmt.Fprintf(&r.out, "ok: %s sees %s %s/%d\n", args[0], subj, m.State, m.Incarnation)
	return nil
}

// describePacket renders a plaintext packet's messages for traces.
func describePacket(pkt []byte) string {
	f := &framer{label: ""}
	body, err := f.open(pkt)
	if err != nil {
		return "undecodable: " + err.Error()
	}
	msgs, err := decodeBody(body)
	if err != nil {
		return "malformed: " + err.Error()
	}
	parts := make([]string, 0, len(msgs))
	for _, m := range msgs {
		switch m := m.(type) {
		case ping:
			parts = append(parts, fmt.Sprintf("ping(%d)", m.Seq))
		case pingReq:
			parts = append(parts, fmt.Sprintf("ping-req(%d,%s)", m.Seq, m.Target))
		case ack:
			parts = append(parts, fmt.Sprintf("ack(%d)", m.Seq))
		case nack:
			parts = append(parts, fmt.Sprintf("nack(%d)", m.Seq))
		case alive:
			parts = append(parts, fmt.Sprintf("alive(%s/%d)", m.Node, m.Incarnation))
		case suspect:
			parts = append(parts, fmt.Sprintf("suspect(%s/%d by %s)", m.Node, m.Incarnation, m.From))
		case dead:
			parts = append(parts, fmt.Sprintf("dead(%s/%d by %s)", m.Node, m.Incarnation, m.From))
		case userMsg:
			parts = append(parts, fmt.Sprintf("user(%s@%d)", m.Name, m.LTime))
		}
	}
	return strings.Join(parts, " ")
}
