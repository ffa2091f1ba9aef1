package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"roster/raft"
)

// benchRegister is a typical agent registration: an instance with tags,
// meta and one service check, on one of 1,000 nodes.
func benchRegister(i int) *RegisterRequest {
	node := fmt.Sprintf("node-%04d", i%1000)
	id := fmt.Sprintf("web-%d", i)
	return &RegisterRequest{
		Node: Node{Node: node, Address: "10.1.2.3", Datacenter: "dc1",
			TaggedAddresses: map[string]string{"lan": "10.1.2.3"}, Meta: map[string]string{"rack": "r1"}},
		Service: &NodeService{ID: id, Service: "web", Tags: []string{"v1", "primary"}, Port: 8080,
			Meta: map[string]string{"version": "1.2.3"}, Weights: Weights{Passing: 1, Warning: 1}},
		Checks: []HealthCheck{{CheckID: "service:" + id, Name: "web alive", Status: HealthPassing,
			ServiceID: id, Type: "ttl"}},
	}
}

// BenchmarkApplyRegister measures the FSM path of a registration as raft
// drives it: decode the entry bytes, validate, apply, hash, append to the
// delta log, stamp indexes. Encoding (the proposer's side) happens before
// the timer. One round fills a fresh store with 10k or 100k instances (the
// two registry sizes reported); every b.N iteration is one round, at
// least three rounds run so that `-benchtime 1x` still gives a median, and
// one unmeasured round comes first.
//
// Metrics: ops/s is the median round's wall-clock rate; cpu-ops/s divides
// the operations by the CPU time the whole process used (GC workers
// included), which other processes on a busy machine barely disturb.
// Target: ≥ 300,000 ops/s single-threaded.
func BenchmarkApplyRegister(b *testing.B) {
	for _, perStore := range []uint64{10_000, 100_000} {
		b.Run(fmt.Sprintf("registry=%d", perStore), func(b *testing.B) { benchApplyRegister(b, perStore) })
	}
}

func benchApplyRegister(b *testing.B, perStore uint64) {
	// Entries are encoded once, before the timer: encoding is the
	// proposer's work, and its garbage must not bill the FSM's GC.
	entries := make([]raft.Entry, perStore)
	for j := range entries {
		entries[j] = raft.Entry{Index: uint64(j) + 1, Type: raft.EntryCommand, Data: EncodeCommand(benchRegister(j))}
	}
	var rounds, warmUp roundTimes
	fill := func(times *roundTimes) {
		b.StopTimer()
		s, _ := New(Config{})
		runtime.GC() // the previous round's store is not this round's work
		b.StartTimer()
		times.start()
		for _, e := range entries {
			if r := s.Apply(e).(Result); r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		times.stop(len(entries))
	}
	// The first round of a process grows the heap from nothing and pays
	// for it in GC cycles; a server applying registrations is long past
	// that, and so is every later round here.
	fill(&warmUp)
	b.ReportAllocs()
	b.ResetTimer()
	for range max(b.N, 3) {
		fill(&rounds)
	}
	b.ReportMetric(rounds.medianRate(), "ops/s")
	b.ReportMetric(rounds.cpuRate(), "cpu-ops/s")
}

// roundTimes records the wall-clock and process CPU time of benchmark
// rounds, to report a median (robust to a noisy neighbour) and a CPU rate.
type roundTimes struct {
	wall0   time.Time
	cpu0    time.Duration
	perOp   []float64 // wall seconds per operation, one per round
	ops     int
	cpuUsed time.Duration
}

func (r *roundTimes) start() { r.wall0, r.cpu0 = time.Now(), processCPU() }

func (r *roundTimes) stop(ops int) { r.record(time.Since(r.wall0), processCPU()-r.cpu0, ops) }

// record adds a round of ops operations that took wall and cpu.
func (r *roundTimes) record(wall, cpu time.Duration, ops int) {
	r.cpuUsed += cpu
	r.perOp = append(r.perOp, wall.Seconds()/float64(ops))
	r.ops += ops
}

// medianNs is the median round's wall time per operation, in ns.
func (r *roundTimes) medianNs() float64 { return median(r.perOp) * 1e9 }

// median is the median of xs (the upper one of an even count), which it
// leaves as they are.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func (r *roundTimes) medianRate() float64 { return 1e9 / r.medianNs() }

func (r *roundTimes) cpuRate() float64 { return float64(r.ops) / r.cpuUsed.Seconds() }

func (r *roundTimes) cpuNs() float64 { return float64(r.cpuUsed.Nanoseconds()) / float64(r.ops) }

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCommandCodec compares decoding a registration in the binary
// codec with encoding/json, the reason commands are binary.
func BenchmarkCommandCodec(b *testing.B) {
	cmd := benchRegister(7)
	bin := EncodeCommand(cmd)
	js, _ := json.Marshal(cmd)
	b.Run("binary-decode", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := DecodeCommand(bin); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(bin)), "bytes/cmd")
	})
	b.Run("json-decode", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var r RegisterRequest
			if err := json.Unmarshal(js, &r); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(js)), "bytes/cmd")
	})
}

// BenchmarkHashUpdate flips one instance's check between passing and
// critical in registries of 1k, 10k and 100k instances, through the whole
// apply path (validate, install, refresh the instance, subtract the old
// digest and add the new, append to the delta log), and measures the
// hashcode's own share of such an update.
//
// The three registries are built first, then measured in interleaved
// rounds of updateRound updates each (at least ten rounds per size, after
// unmeasured warm-up rounds that grow the transaction's buffers and settle
// the heap), so a noisy neighbour disturbs all sizes alike. Every round
// does the same work at every size: updateRound updates of instances
// spread over the whole registry, so at 100k each update meets its
// instance cold in the CPU caches, as a real update would.
//
// A round is made of pairs of slices of pairSlice updates: one slice as
// the store does them, and one of the same kind of updates (the next ones
// in the spread) with the hashcode left out (state.skipHash), in
// alternating order, so a disturbance lands on both alike. The hashcode's
// share of an update is the difference within a pair: what the update
// costs because it keeps the hashcode, its memory accesses included. A
// hashcode that scanned the registry, or read instances the update does
// not touch, would show here as growth with the registry. Ours reads 65
// bytes of the slot the update has just looked up and written (instHash),
// so its share is one SHA-256 block and two 256-bit additions at every
// size.
//
// Metrics per size: ns/update is the median slice's time per whole update
// and cpu-ns/update the process CPU time per update; flatness is the
// largest median over the smallest (1.0 is perfectly flat). ns/hash is the
// median pair's difference per update and hash-flatness its largest over
// its smallest: the acceptance figure. What grows with the
// registry is the rest of an update: the map lookups of the check, the
// check records and the slot, which no longer sit in the CPU caches, and
// GC marking a larger heap.
//
// ns/slot-load (and cpu-ns/slot-load) is the yardstick for that growth:
// the latency of one load from a slot, timed as a chain of loads each of
// which needs the one before (so none overlap), over the same spread of
// slots; slot-load-growth is its largest median over the smallest.
// BenchmarkHashArithmetic times the hashcode's work on its own.
func BenchmarkHashUpdate(b *testing.B) {
	const updateRound, pairSlice = 20_000, 500
	sizes := []int{1_000, 10_000, 100_000}
	stores := make([]*Store, len(sizes))
	slots := make([][]*instSlot, len(sizes)) // instance i's slot, for the slot loads
	for k, n := range sizes {
		// Registered through Apply, as raft delivers them, so records
		// share what the decoder shares in production (mapIntern).
		stores[k], _ = New(Config{})
		for i := range n {
			stores[k].Apply(raft.Entry{Index: uint64(i + 1), Type: raft.EntryCommand, Data: EncodeCommand(benchRegister(i))})
		}
		for i := range n {
			slots[k] = append(slots[k], stores[k].st.slots[benchNodes[i%1000]]["web-"+strconv.Itoa(i)])
		}
	}
	// Consecutive slices of a store visit each instance in turn, so
	// every update flips its instance's health.
	next := make([]int, len(sizes))
	flipSlice := func(k int, skipHash bool) (wall, cpu time.Duration) {
		stores[k].st.skipHash = skipHash
		wall0, cpu0 := time.Now(), processCPU()
		flipChecks(b, stores[k], sizes[k], next[k], pairSlice)
		next[k]++
		return time.Since(wall0), processCPU() - cpu0
	}
	// pairRound is a round of updates, done as pairs of slices: one of
	// updates, one of controls, in alternating order.
	pairRound := func(k int, rounds, controls *roundTimes) {
		for p := range updateRound / pairSlice {
			for _, skip := range [2]bool{p%2 == 1, p%2 == 0} {
				wall, cpu := flipSlice(k, skip)
				if skip {
					controls.record(wall, cpu, pairSlice)
				} else {
					rounds.record(wall, cpu, pairSlice)
				}
			}
		}
	}
	var chained int
	loadRound := func(k, round int, times *roundTimes) {
		n, next := sizes[k], 0
		times.start()
		for j := range updateRound {
			// health is at most codeCritical, so next stays 0, but the
			// next load's address waits for this one.
			next = int(slots[k][spread(n/4+round*updateRound+j+next, n)].health >> 7)
		}
		times.stop(updateRound)
		chained += next
	}
	var unmeasured roundTimes
	for k := range sizes {
		pairRound(k, &unmeasured, &unmeasured)
	}
	runtime.GC()
	rounds := make([]roundTimes, len(sizes))
	controls := make([]roundTimes, len(sizes))
	loadRounds := make([]roundTimes, len(sizes))
	b.ReportAllocs()
	b.ResetTimer()
	for round := range max(b.N, 10) {
		for k := range sizes {
			pairRound(k, &rounds[k], &controls[k])
			loadRound(k, round, &loadRounds[k])
		}
	}
	b.StopTimer()
	reportFlat(b, sizes, rounds, "update", "flatness")
	reportShare(b, sizes, rounds, controls, "hash", "hash-flatness")
	if chained != 0 {
		b.Fatalf("a slot's health is %d, above any status code", chained<<7)
	}
	reportFlat(b, sizes, loadRounds, "slot-load", "slot-load-growth")
}

// reportShare reports, per size, the median over pairs of the difference
// per operation between a round and its control (the share of an
// operation that the controls leave out; the median, so that a pair a GC
// cycle or a neighbour hit on one side only does not count), and the
// flatness of the medians: the largest over the smallest. There is no
// CPU-time figure: process CPU time includes the GC workers, whose cycles
// land on one side of a pair or the other and swamp the difference.
func reportShare(b *testing.B, sizes []int, rounds, controls []roundTimes, what, flatness string) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for k, n := range sizes {
		diff := make([]float64, len(rounds[k].perOp))
		for i := range diff {
			diff[i] = rounds[k].perOp[i] - controls[k].perOp[i]
		}
		ns := median(diff) * 1e9
		lo, hi = min(lo, ns), max(hi, ns)
		b.ReportMetric(ns, fmt.Sprintf("ns/%s-%dk", what, n/1000))
	}
	b.ReportMetric(hi/lo, flatness)
}

// BenchmarkHealthFlip is BenchmarkHashUpdate's whole update at one size
// per sub-benchmark, for profiling where an update's time grows with the
// registry: go test -run '^$' -bench 'HealthFlip/instances=100000'
// -cpuprofile cpu.out ./catalog, then the same at 1000, and compare
// go tool pprof -top -cum for validateCheck, refresh and moveHealth.
func BenchmarkHealthFlip(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			s, _ := New(Config{})
			for i := range n {
				s.Apply(raft.Entry{Index: uint64(i + 1), Type: raft.EntryCommand, Data: EncodeCommand(benchRegister(i))})
			}
			const perRound = 10_000
			flipChecks(b, s, n, 0, perRound) // warm-up
			b.ReportAllocs()
			b.ResetTimer()
			rounds := (b.N + perRound - 1) / perRound // whole rounds: every flip changes health
			for round := 1; round <= rounds; round++ {
				flipChecks(b, s, n, round, perRound)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rounds*perRound), "ns/flip")
		})
	}
}

// spread maps the i-th update of a run to an instance of an n-instance
// registry, spread over all of it.
func spread(i, n int) int { return (i * 7919) % n }

// flipChecks applies round's perRound check flips to s, a registry of
// benchRegister's first n instances.
func flipChecks(b *testing.B, s *Store, n, round, perRound int) {
	idx := s.LastIndex()
	for j := range perRound {
		i := round*perRound + j
		inst := spread(i, n)
		status := HealthCritical
		if (i/n)%2 == 1 {
			status = HealthPassing
		}
		idx++
		// Fresh strings, as a command decoded from a raft entry has:
		// names kept in a table would be cold in the cache at 100k and
		// bill the registry for the benchmark's input.
		id := "web-" + strconv.Itoa(inst)
		r := s.ApplyCommand(idx, &RegisterRequest{Node: Node{Node: benchNodes[inst%1000]}, SkipNodeUpdate: true,
			Checks: []HealthCheck{{CheckID: "service:" + id, ServiceID: id, Status: status, Type: "ttl", Name: "web alive"}}})
		if r.Err != nil {
			b.Fatal(r.Err)
		}
	}
}

// reportFlat reports the median ns per operation and the CPU time per
// operation of each size's rounds, and their flatness: the largest median
// over the smallest.
func reportFlat(b *testing.B, sizes []int, rounds []roundTimes, what, flatness string) {
	lo, hi := math.Inf(1), 0.0
	for k, n := range sizes {
		ns := rounds[k].medianNs()
		lo, hi = min(lo, ns), max(hi, ns)
		b.ReportMetric(ns, fmt.Sprintf("ns/%s-%dk", what, n/1000))
		b.ReportMetric(rounds[k].cpuNs(), fmt.Sprintf("cpu-ns/%s-%dk", what, n/1000))
	}
	b.ReportMetric(hi/lo, flatness)
}

// benchNodes are the node names of benchRegister, formatted once.
var benchNodes = func() (names []string) {
	for i := range 1000 {
		names = append(names, fmt.Sprintf("node-%04d", i))
	}
	return names
}()

// BenchmarkHashArithmetic isolates the hashcode's own work per change for
// instances drawn from registries of 1k to 100k, held in a plain array:
// kind=health is a health flip (one SHA-256 block over the content digest
// and the health, subtract the old digest, add the new), kind=content a
// change of content (canonical encoding and both digest levels). Both do
// the same work at every size; what differs is whether the record is still
// in the CPU caches (at 100k, in steps of 7919 records, it is not).
// BenchmarkHashUpdate shows the whole apply path around them.
func BenchmarkHashArithmetic(b *testing.B) {
	for _, kind := range []string{"health", "content"} {
		for _, n := range []int{1_000, 10_000, 100_000} {
			b.Run(fmt.Sprintf("kind=%s/instances=%d", kind, n), func(b *testing.B) { benchHashArithmetic(b, kind, n) })
		}
	}
}

func benchHashArithmetic(b *testing.B, kind string, n int) {
	recs := make([]instanceRec, n)
	hashes := make([]instHash, n)
	var sum sum256
	var scratch []byte
	for i := range recs {
		r := benchRegister(i)
		recs[i].inst = Instance{Node: r.Node.Node, NodeAddress: r.Node.Address, ID: r.Service.ID,
			Service: r.Service.Service, Tags: r.Service.Tags, Port: r.Service.Port, Meta: r.Service.Meta, Health: HealthPassing}
		recs[i].content, recs[i].digest, scratch = digestInstance(scratch, &recs[i].inst)
		hashes[i] = instHash{health: codePassing, content: recs[i].content, digest: recs[i].digest}
		sum.add(&recs[i].digest)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := (i * 7919) % n
		if kind == "health" {
			sum.moveHealth(&hashes[j], codeCritical+codePassing-hashes[j].health)
			continue
		}
		rec := &recs[j]
		sum.sub(&rec.digest)
		rec.inst.Port++
		rec.content, rec.digest, scratch = digestInstance(scratch, &rec.inst)
		sum.add(&rec.digest)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/update")
}

// BenchmarkDeltaVsFull compares the JSON size of a full registry pull with
// a delta pull for 10,000 instances and 10 changes. Target: delta ≥ 1,000×
// smaller. Health changes are the steady-state case; full instance updates
// (re-registrations with new content) are reported too.
func BenchmarkDeltaVsFull(b *testing.B) {
	for _, kind := range []string{"health", "update"} {
		b.Run(kind, func(b *testing.B) {
			s, _ := New(Config{})
			const n = 10_000
			for i := range n {
				s.ApplyCommand(uint64(i+1), benchRegister(i))
			}
			since := s.LastIndex()
			for c := range 10 {
				i := c * 997
				var cmd Command = &RegisterRequest{Node: Node{Node: fmt.Sprintf("node-%04d", i%1000)}, SkipNodeUpdate: true,
					Checks: []HealthCheck{{CheckID: fmt.Sprintf("service:web-%d", i), ServiceID: fmt.Sprintf("web-%d", i),
						Status: HealthCritical, Type: "ttl", Name: "web alive"}}}
				if kind == "update" {
					r := benchRegister(i)
					r.Service.Port = 9090
					cmd = r
				}
				if r := s.ApplyCommand(uint64(n+c+1), cmd); r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			var fullBytes, deltaBytes int
			b.ResetTimer()
			for range b.N {
				full, _ := json.Marshal(s.Registry())
				d, err := s.Since(since)
				if err != nil || len(d.Changes) != 10 {
					b.Fatalf("delta: %d changes, %v", len(d.Changes), err)
				}
				delta, _ := json.Marshal(d)
				fullBytes, deltaBytes = len(full), len(delta)
			}
			b.ReportMetric(float64(fullBytes), "full-bytes")
			b.ReportMetric(float64(deltaBytes), "delta-bytes")
			b.ReportMetric(float64(fullBytes)/float64(deltaBytes), "ratio")
		})
	}
}

// BenchmarkWatchers10k blocks 10,000 waiters — 10 on the service that
// changes, 9,990 on other services — then changes that service b.N times.
// Each change must wake exactly the 10 affected waiters; cold-wakes counts
// any other waiter that woke (must be 0). Memory per waiter is the heap and
// stack growth divided by the number of waiters (goroutine stacks included,
// which dominate; heap-bytes/waiter is the rest: the store's bookkeeping
// and the goroutines' own records). wake-µs is the median time from the
// commit's return to the last of the 10 affected waiters running again;
// µs/change adds the apply itself.
func BenchmarkWatchers10k(b *testing.B) {
	const total, hot = 10_000, 10
	s, _ := New(Config{})
	var idx uint64
	apply := func(cmd Command) {
		idx++
		if r := s.ApplyCommand(idx, cmd); r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	for i := range total {
		apply(benchRegister(i))
		apply(&RegisterRequest{Node: Node{Node: fmt.Sprintf("node-%04d", i%1000)},
			SkipNodeUpdate: true, Service: &NodeService{ID: fmt.Sprintf("svc-%d", i), Service: fmt.Sprintf("svc-%d", i)}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var coldWakes atomic.Int64
	hotWoke := make(chan struct{}, hot)
	heap0, stack0 := memInUse()
	for i := range total {
		w, isHot := WatchService(fmt.Sprintf("svc-%d", i)), i < hot
		if isHot {
			w = WatchService("hot")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			min := s.Index(w)
			for {
				got, err := s.Wait(ctx, w, min)
				if err != nil {
					return
				}
				min = got
				if !isHot {
					coldWakes.Add(1)
				}
				hotWoke <- struct{}{}
			}
		}()
	}
	for s.Stats().Waiters < total {
		runtime.Gosched()
	}
	heap1, stack1 := memInUse()
	wakes := make([]float64, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		apply(&RegisterRequest{Node: Node{Node: "node-0001"}, SkipNodeUpdate: true,
			Service: &NodeService{ID: "hot", Service: "hot", Port: i}})
		committed := time.Now()
		for range hot {
			<-hotWoke
		}
		wakes = append(wakes, float64(time.Since(committed).Nanoseconds())/1e3)
	}
	b.StopTimer()
	cancel()
	wg.Wait()
	b.ReportMetric(float64(heap1-heap0+stack1-stack0)/total, "bytes/waiter")
	b.ReportMetric(float64(heap1-heap0)/total, "heap-bytes/waiter")
	b.ReportMetric(float64(coldWakes.Load()), "cold-wakes")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/change")
	b.ReportMetric(median(wakes), "wake-µs")
}

// memInUse returns the heap and the goroutine stacks in use, after a GC.
func memInUse() (heap, stack uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse
}

// BenchmarkKVPrefix runs the prefix queries on a prefix holding 100 keys in
// 10 directories, in stores padded with 1k or 100k other keys: list the
// prefix, roll it up with a separator, read its watch index, and write 10
// keys then delete-tree them. The ordered key index makes each
// O(log n + m) for m keys under the prefix, so the times stay close while
// the store grows 100-fold; flatness is the 100k time over the 1k time.
func BenchmarkKVPrefix(b *testing.B) {
	queries := []struct {
		name string
		run  func(s *Store, idx *uint64) int
		want int
	}{
		{"list-100", func(s *Store, _ *uint64) int { l, _ := s.KVList("cfg/"); return len(l) }, 100},
		{"keys-sep", func(s *Store, _ *uint64) int { k, _ := s.KVKeys("cfg/", "/"); return len(k) }, 10},
		{"watch-index", func(s *Store, _ *uint64) int { s.Index(WatchKV("cfg/")); return 0 }, 0},
		{"set10-delete-tree", func(s *Store, idx *uint64) int {
			for j := range 10 {
				*idx++
				s.ApplyCommand(*idx, &KVRequest{Verb: KVSet, Key: fmt.Sprintf("tmp/%d", j), Value: []byte("v")})
			}
			*idx++
			s.ApplyCommand(*idx, &KVRequest{Verb: KVDeleteTree, Key: "tmp/"})
			l, _ := s.KVList("tmp/")
			return len(l)
		}, 0},
	}
	sizes := []int{1_000, 100_000}
	stores := make([]*Store, len(sizes))
	idxs := make([]uint64, len(sizes))
	for k, n := range sizes {
		stores[k], _ = New(Config{})
		for i := range n + 100 {
			key := fmt.Sprintf("app/%03d/k%06d", i%1000, i)
			if i >= n {
				key = fmt.Sprintf("cfg/%d/k%d", i%10, i)
			}
			idxs[k]++
			stores[k].ApplyCommand(idxs[k], &KVRequest{Verb: KVSet, Key: key, Value: []byte("v")})
		}
	}
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			const perRound = 200
			rounds := make([]roundTimes, len(sizes))
			for range max(b.N, 3) {
				for k := range sizes { // interleaved: noise hits both sizes
					rounds[k].start()
					for range perRound {
						if got := q.run(stores[k], &idxs[k]); got != q.want {
							b.Fatalf("%s: %d results, want %d", q.name, got, q.want)
						}
					}
					rounds[k].stop(perRound)
				}
			}
			for k, n := range sizes {
				b.ReportMetric(rounds[k].medianNs(), fmt.Sprintf("ns/op-%dk", n/1000))
			}
			b.ReportMetric(rounds[1].medianNs()/rounds[0].medianNs(), "flatness")
		})
	}
}
