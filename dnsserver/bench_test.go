package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"roster/catalog"
)

const (
	benchServices  = 1000
	benchInstances = 3
)

// benchCatalog registers 1,000 services × 3 instances: service i runs on
// nodes i, i+1 and i+2 (of 1,000), each instance with a passing check and
// each node with a passing serfHealth.
func benchCatalog(b *testing.B) *catalog.Store {
	f := newFixture(b)
	for n := range benchServices {
		f.node(fmt.Sprintf("node-%04d", n), fmt.Sprintf("10.%d.%d.%d", n/65536, n/256%256, n%256), nil)
	}
	for i := range benchServices {
		for k := range benchInstances {
			node := fmt.Sprintf("node-%04d", (i+k)%benchServices)
			f.service(node, catalog.NodeService{Service: fmt.Sprintf("svc-%04d", i), Port: 8000 + k,
				Tags: []string{"v1"}, Weights: catalog.Weights{Passing: 1, Warning: 1}}, catalog.HealthPassing)
		}
	}
	return f.s
}

// benchQueries are questions for random services, packed and unpacked once
// so that the benchmark measures answering, not building questions.
func benchQueries(qtype uint16, n int) []*dns.Msg {
	rng := rand.New(rand.NewPCG(7, 7))
	out := make([]*dns.Msg, n)
	for i := range out {
		out[i] = query(fmt.Sprintf("svc-%04d.service.consul.", rng.IntN(benchServices)), qtype, 0)
	}
	return out
}

func benchmarkAnswer(b *testing.B, qtype uint16, wantAnswers int) {
	view := benchCatalog(b)
	p := mustPolicy(b, DefaultConfig())
	qs := benchQueries(qtype, 4096)
	rng := rand.New(rand.NewPCG(1, 1))
	cache := newLookupCache()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		out := answer(qs[i%len(qs)], view, cache, p, rng, UDP, testSerial)
		if len(out.reply.Answer) != wantAnswers {
			b.Fatalf("%d answers, want %d", len(out.reply.Answer), wantAnswers)
		}
	}
}

// BenchmarkAnswerA is the pure function for A questions of random services
// (1,000 services × 3 instances).
func BenchmarkAnswerA(b *testing.B) { benchmarkAnswer(b, dns.TypeA, benchInstances) }

// BenchmarkAnswerSRV is the same for SRV questions.
func BenchmarkAnswerSRV(b *testing.B) { benchmarkAnswer(b, dns.TypeSRV, benchInstances) }

// BenchmarkAnswerAPacked adds packing the reply into wire format, what the
// server does for each question.
func BenchmarkAnswerAPacked(b *testing.B) {
	view := benchCatalog(b)
	p := mustPolicy(b, DefaultConfig())
	qs := benchQueries(dns.TypeA, 4096)
	rng := rand.New(rand.NewPCG(1, 1))
	cache := newLookupCache()
	buf := make([]byte, dns.MaxMsgSize)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		out := answer(qs[i%len(qs)], view, cache, p, rng, UDP, testSerial)
		if _, err := out.reply.PackBuffer(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServerUDP measures queries per second over real UDP on
// 127.0.0.1: clients (2 per CPU) send A questions for random services and
// wait for each reply. It reports qps and the p99 latency seen by clients.
// The clients send prepacked questions and check replies by their header,
// allocating nothing, so allocs/op is the server's whole path per query:
// read, parse, answer, pack, write.
func BenchmarkServerUDP(b *testing.B) {
	b.Run("A", func(b *testing.B) { benchmarkServerUDP(b, dns.TypeA) })
	b.Run("SRV", func(b *testing.B) { benchmarkServerUDP(b, dns.TypeSRV) })
}

// udpQuestionsPerOp makes one benchmark op a batch of questions, so the
// figures mean something at make bench's -benchtime 1x too.
const udpQuestionsPerOp = 2000

func benchmarkServerUDP(b *testing.B, qtype uint16) {
	view := benchCatalog(b)
	_, udp, _ := startServer(b, DefaultConfig(), Deps{View: view})
	wires := packQueries(b, benchQueries(qtype, 4096))
	var mu sync.Mutex
	var latencies []time.Duration
	warmUDP(b, udp, wires)
	b.SetParallelism(2)
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer() // the catalog's setup is not the server's allocations
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.Dial("udp", udp)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		mine := make([]time.Duration, 0, 1<<16)
		buf := make([]byte, dns.MaxMsgSize)
		for i := 0; pb.Next(); {
			for range udpQuestionsPerOp {
				t0 := time.Now()
				if err := roundTrip(conn, wires[i%len(wires)], buf); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
				i++
			}
		}
		mu.Lock()
		latencies = append(latencies, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	runtime.ReadMemStats(&after)
	questions := float64(b.N) * udpQuestionsPerOp
	// Server and client in one process: this counts both sides' heap
	// allocations, the clients' few (latency slices) amortized away.
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/questions, "allocs/question")
	b.ReportMetric(questions/elapsed.Seconds(), "qps")
	if len(latencies) > 0 {
		slices.Sort(latencies)
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds()), "p99-µs")
	}
}

// warmUDP asks every question once, so the server's lookup cache and
// readers' scratch space are filled before allocations are counted.
func warmUDP(b *testing.B, addr string, wires [][]byte) {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, dns.MaxMsgSize)
	for _, w := range wires {
		if err := roundTrip(conn, w, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func packQueries(b *testing.B, qs []*dns.Msg) [][]byte {
	out := make([][]byte, len(qs))
	for i, q := range qs {
		wire, err := q.Pack()
		if err != nil {
			b.Fatal(err)
		}
		out[i] = wire
	}
	return out
}

// roundTrip sends one packed question and checks the reply's header: same
// ID, a response, NOERROR, three answers.
func roundTrip(conn net.Conn, wire, buf []byte) error {
	if _, err := conn.Write(wire); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	h, ok := readHeader(buf[:n])
	switch {
	case !ok || h.Id != binary.BigEndian.Uint16(wire):
		return errors.New("reply too short or for another question")
	case h.Bits&0x800f != 0x8000 || h.Ancount != benchInstances:
		return fmt.Errorf("reply bits %#x with %d answers, want NOERROR with %d", h.Bits, h.Ancount, benchInstances)
	}
	return nil
}

// BenchmarkReplyParallel is the handler without sockets, on every CPU: the
// ceiling the UDP server could reach.
func BenchmarkReplyParallel(b *testing.B) {
	view := benchCatalog(b)
	s, err := New(DefaultConfig(), Deps{View: view, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	qs := benchQueries(dns.TypeA, 4096)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if r := s.Reply(context.Background(), qs[i%len(qs)], UDP); len(r.Answer) != benchInstances {
				b.Errorf("%d answers", len(r.Answer))
				return
			}
		}
	})
}

// BenchmarkAnswerNode is a node A question: it reads the node through
// catalog.NodeServices, which copies the node's services too.
func BenchmarkAnswerNode(b *testing.B) {
	view := benchCatalog(b)
	p := mustPolicy(b, DefaultConfig())
	cache := newLookupCache()
	rng := rand.New(rand.NewPCG(1, 1))
	qs := make([]*dns.Msg, 1024)
	for i := range qs {
		qs[i] = query(fmt.Sprintf("node-%04d.node.consul.", rng.IntN(benchServices)), dns.TypeA, 0)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if out := answer(qs[i%len(qs)], view, cache, p, rng, UDP, testSerial); len(out.reply.Answer) != 1 {
			b.Fatalf("%v", out.reply)
		}
	}
}

// BenchmarkAnswerPTR is a reverse lookup. The catalog has no index by
// address; the cache builds one (copying every node and instance) when the
// node or service table changes, and uncached each question pays that.
func BenchmarkAnswerPTR(b *testing.B) {
	b.Run("cached", func(b *testing.B) { benchmarkPTR(b, newLookupCache()) })
	b.Run("uncached", func(b *testing.B) { benchmarkPTR(b, nil) })
}

func benchmarkPTR(b *testing.B, cache *lookupCache) {
	view := benchCatalog(b)
	p := mustPolicy(b, DefaultConfig())
	rng := rand.New(rand.NewPCG(1, 1))
	req := query("200.1.0.10.in-addr.arpa.", dns.TypePTR, 0)
	b.ReportAllocs()
	for b.Loop() {
		if out := answer(req, view, cache, p, rng, UDP, testSerial); len(out.reply.Answer) != 1 {
			b.Fatalf("%v", out.reply)
		}
	}
}

// BenchmarkUDPPacket is the UDP handler without the socket: parse, answer,
// pack, for prepacked questions (A and SRV of random services). Its
// allocs/op are BenchmarkServerUDP's without the read and write.
func BenchmarkUDPPacket(b *testing.B) {
	for _, qt := range []uint16{dns.TypeA, dns.TypeSRV} {
		b.Run(dns.TypeToString[qt], func(b *testing.B) {
			s, err := New(DefaultConfig(), Deps{View: benchCatalog(b), Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			r := s.newUDPReader()
			wires := packQueries(b, benchQueries(qt, 4096))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if wire, _ := r.answerPacket(wires[i%len(wires)]); len(wire) == 0 {
					b.Fatal("no reply")
				}
			}
		})
	}
}
