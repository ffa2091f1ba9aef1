package raft

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"
)

// BenchmarkNetTransport_AppendEntries measures the transport alone: one
// server sends AppendEntries of `entries` 100-byte entries (0: heartbeats)
// to another over loopback, up to 32 in flight, and a stand-in node
// answers each at once. Each b.N iteration is 10,000 messages, so `make
// bench` (-benchtime 1x) measures something. cpu-µs/msg is the process's
// CPU (both ends: encode, syscalls, decode, net/rpc) per request and
// answer, allocs/msg likewise (both include the benchmark building each
// message); unlike msgs/s they barely move when other work competes for
// the cores.
func BenchmarkNetTransport_AppendEntries(b *testing.B) {
	for _, entries := range []int{0, 1, 16} {
		b.Run(fmt.Sprintf("entries=%d", entries), func(b *testing.B) {
			benchTransport(b, entries)
		})
	}
}

func benchTransport(b *testing.B, entries int) {
	const window = 32
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	follower, err := ListenNetTransport(l, NetTransportConfig{Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer follower.Close()
	leader, err := NewNetTransport(NetTransportConfig{LocalAddr: "leader", Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer leader.Close()
	go func() {
		for r := range follower.Consumer() {
			m := r.Message
			r.Respond(Message{Type: m.Type.Response(), From: "f", To: m.From, Term: m.Term, Index: m.Index + uint64(len(m.Entries))})
		}
	}()
	data := make([]byte, 100)
	send := func(i int) {
		m := Message{Type: MsgApp, From: "leader", To: "f", Term: 1, Index: uint64(i * entries), LogTerm: 1, Commit: uint64(i)}
		if entries == 0 {
			m.Type = MsgHeartbeat
		}
		for j := range entries {
			m.Entries = append(m.Entries, Entry{Index: m.Index + uint64(j) + 1, Term: 1, Type: EntryCommand, Data: data})
		}
		leader.Send(follower.LocalAddr(), m)
	}
	awaitReply := func() {
		select {
		case <-leader.Consumer():
		case <-time.After(5 * time.Second):
			b.Fatal("no answer within 5s")
		}
	}
	for i := range window { // warm up the connection
		send(i)
		awaitReply()
	}
	const perIter = 10000
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	cpu0, start, mallocs0 := processCPU(), time.Now(), mem.Mallocs
	sent, answered := window, window
	for b.Loop() {
		for range perIter {
			for sent-answered >= window {
				awaitReply()
				answered++
			}
			send(sent)
			sent++
		}
	}
	for ; answered < sent; answered++ {
		awaitReply()
	}
	msgs := float64(b.N * perIter)
	b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Microsecond)/msgs, "cpu-µs/msg")
	b.ReportMetric(msgs/time.Since(start).Seconds(), "msgs/s")
	runtime.ReadMemStats(&mem)
	b.ReportMetric(float64(mem.Mallocs-mallocs0)/msgs, "allocs/msg")
	b.ReportMetric(0, "ns/op")
}
