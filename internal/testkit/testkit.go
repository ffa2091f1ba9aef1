package testkit

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("seed", 0, "seed for randomized tests (0 = pick one from the clock and print it)")

// Seed returns the -seed flag, or a fresh clock-derived seed if it is 0.
// The seed is logged through t so a failure can be replayed.
func Seed(t testing.TB) uint64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -seed %d)", seed, seed)
	return seed
}

// Rand returns a deterministic generator seeded with Seed(t).
func Rand(t testing.TB) *rand.Rand {
	t.Helper()
	seed := Seed(t)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free when
// asked, for TCP and UDP alike. They are held open together while
// choosing, so they are distinct.
//
// Prefer port 0 for a server that is never restarted: a port chosen here
// is released when FreePorts returns, and until the server binds it
// another test binary's FreePorts may pick it. Bind port 0 instead and
// read the bound port back: in-process agents through Agent.Ports, agent
// processes from their "serving" log lines, listeners from Addr().
// FreePorts is for a server a test restarts on the same ports (a port of
// the ephemeral range, free between the stop and the restart, may be
// taken by any outgoing connection; see ListenStable for a listener held
// from the start), and for programs that must be told every port before
// any starts: etcd members, whose --initial-cluster names each peer's
// URL (the etcd comparison benchmark in cmd/roster).
//
// The ports come from below the kernel's ephemeral range when it leaves
// room, where no outgoing connection is handed them as a source port; a
// random start keeps parallel test binaries apart.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	next := quietPorts()
	for tries := 0; len(ports) < n; tries++ {
		if tries > 10000 {
			t.Fatalf("testkit: no %d free loopback ports after %d tries", n, tries)
		}
		addr := "127.0.0.1:0"
		if p := next(); p != 0 {
			addr = fmt.Sprintf("127.0.0.1:%d", p)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		held = append(held, l)
		port := l.Addr().(*net.TCPAddr).Port
		// The same number must also be free for UDP (gossip and DNS bind both).
		if u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			u.Close()
			ports = append(ports, port)
		}
	}
	return ports
}

// ListenStable returns a TCP listener on 127.0.0.1, bound at once, on a
// port below the kernel's ephemeral range when it leaves room. It is for
// a test that will close the listener and bind the same address again (a
// restarted node keeping the address its peers know it by): a port of
// the ephemeral range, released for that moment, may be taken by any
// outgoing connection on the machine as its source port, and the rebind
// then fails with "address already in use". Ports below the range are
// never handed out that way.
func ListenStable(t testing.TB) net.Listener {
	t.Helper()
	next := quietPorts()
	for tries := 0; tries <= 10000; tries++ {
		addr := "127.0.0.1:0"
		if p := next(); p != 0 {
			addr = fmt.Sprintf("127.0.0.1:%d", p)
		}
		if l, err := net.Listen("tcp", addr); err == nil {
			return l
		}
	}
	t.Fatalf("testkit: no free loopback port after 10000 tries")
	return nil
}

// quietPorts returns a generator of candidate ports below the ephemeral
// range, from a random start, or one that returns 0 ("let the kernel
// pick") where the range is unknown or leaves fewer than 2,000 ports.
func quietPorts() func() int {
	low := ephemeralLow()
	const floor = 10000
	if low-floor < 2000 {
		return func() int { return 0 }
	}
	span := low - floor
	p := rand.IntN(span)
	return func() int {
		p = (p + 1) % span
		return floor + p
	}
}

// ephemeralLow is the first port of Linux's ephemeral range, or 0.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	var low, high int
	if _, err := fmt.Sscan(string(b), &low, &high); err != nil {
		return 0
	}
	return low
}

// PollInterval is how often WaitFor re-checks its condition.
const PollInterval = 10 * time.Millisecond

// WaitFor calls cond every PollInterval until it returns nil or timeout
// passes, then fails the test with the last error cond returned and what.
// cond returns an error describing what it is still waiting for.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
	}
}

// Poll is WaitFor without a test: it returns nil once cond does, or cond's
// last error once timeout has passed. Benchmarks and tools use it.
func Poll(timeout time.Duration, cond func() error) error {
	return PollEvery(PollInterval, timeout, cond)
}

// PollEvery is Poll with its own re-check interval, for measurements that
// need a finer resolution than PollInterval (a startup time in ms, say).
func PollEvery(interval, timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		<-ticker.C
	}
}

// ChaosEnv is the environment variable that `make chaos` sets to the number
// of seeds (or rounds) each chaos test should run.
const ChaosEnv = "ROSTER_CHAOS"

// ChaosRuns returns how many seeds or rounds a randomized chaos test should
// run: quick (a few, for `make test`) unless ROSTER_CHAOS=N asks for more.
func ChaosRuns(quick int) int {
	if n, err := strconv.Atoi(os.Getenv(ChaosEnv)); err == nil && n > 0 {
		return n
	}
	return quick
}

// Chaos reports whether the test runs under `make chaos`; long soak tests
// call t.Skip unless it is true.
func Chaos() bool { return os.Getenv(ChaosEnv) != "" }

// LockedBuffer is a bytes.Buffer that a logger or a child process may
// write while the test reads it.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what has been written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
