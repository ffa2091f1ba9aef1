package rpc

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"roster/catalog"
)

// Endpoint benchmarks on the three-server harness, Raft on the in-memory
// network (raft=mem) or on its socket transport sharing each server's
// loopback listener (raft=socket, comparable with raft's own
// BenchmarkApply_Loopback). Log stores are in memory: no fsync, so these
// measure the RPC + forwarding + Raft + FSM path, not the disk. Writes go
// to the leader or through a follower (one extra forwarding hop), from a
// client through the pool or, as a server's own HTTP API calls, in-process
// (Server.Call); values are 100 bytes.

func BenchmarkEndpoints_KVSApply(b *testing.B) {
	for _, raftNet := range []string{"mem", "socket"} {
		for _, via := range []string{"leader", "follower", "inproc-leader", "inproc-follower"} {
			for _, callers := range []int{1, 64} {
				name := fmt.Sprintf("raft=%s/via=%s/callers=%d", raftNet, via, callers)
				b.Run(name, func(b *testing.B) { benchKVSApply(b, raftNet == "socket", via, callers) })
			}
		}
	}
}

func benchKVSApply(b *testing.B, socketRaft bool, via string, callers int) {
	c := startEPCluster(b, 3, epOpts{socketRaft: socketRaft})
	target := c.waitLeader()
	if strings.HasSuffix(via, "follower") {
		target = c.follower()
	}
	call := func(ctx context.Context, method string, args, reply any) error {
		return c.client.Call(ctx, target.addr, method, args, reply)
	}
	if strings.HasPrefix(via, "inproc-") {
		call = target.srv.Call
	}
	value := []byte(strings.Repeat("v", 100))
	var key atomic.Int64
	lat := runCallers(b, callers, func(ctx context.Context) error {
		var ok bool
		args := &KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet,
			Key: fmt.Sprintf("bench/%d", key.Add(1)%1024), Value: value}}
		return call(ctx, "KVS.Apply", args, &ok)
	})
	reportLatency(b, lat)
}

func BenchmarkEndpoints_KVSGet(b *testing.B) {
	for _, mode := range []string{"default", "consistent", "stale"} {
		b.Run(fmt.Sprintf("raft=socket/mode=%s/callers=64", mode), func(b *testing.B) {
			c := startEPCluster(b, 3, epOpts{socketRaft: true})
			var ok bool
			c.mustCall(c.waitLeader(), "KVS.Apply", &KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet,
				Key: "bench/key", Value: []byte(strings.Repeat("v", 100))}}, &ok)
			opts := QueryOptions{RequireConsistent: mode == "consistent", AllowStale: mode == "stale"}
			// Spread callers over the three servers, as HTTP clients would be.
			var n atomic.Int64
			lat := runCallers(b, 64, func(ctx context.Context) error {
				s := c.servers[n.Add(1)%int64(len(c.servers))]
				var reply IndexedDirEntries
				return c.client.Call(ctx, s.addr, "KVS.Get", &KeyRequest{QueryOptions: opts, Key: "bench/key"}, &reply)
			})
			reportLatency(b, lat)
		})
	}
}
