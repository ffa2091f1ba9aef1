package agent

import (
	"log/slog"
	"time"

	"roster/catalog"
)

// Tombstone reaping (Consul's tombstone GC). A deleted KV key leaves a
// tombstone so that a blocking query on its prefix sees the delete's
// index; once no watcher can still care, the leader proposes a reap of
// every tombstone at or below an index. The leader samples the catalog's
// index as time passes and reaps up to the newest sample older than
// TombstoneTTL, so every tombstone lives at least that long. Samples live
// one term: a new leader starts sampling afresh, which only delays reaps.
type tombstoneGC struct {
	ttl     time.Duration
	samples []indexSample // oldest first
}

type indexSample struct {
	at    time.Time
	index uint64
}

// observe records the index at now and returns the index up to which
// tombstones may be reaped (0: nothing yet). Samples older than the
// chosen one are dropped, so at most ttl/interval+1 are kept.
func (g *tombstoneGC) observe(now time.Time, index uint64) uint64 {
	g.samples = append(g.samples, indexSample{at: now, index: index})
	reap, keepFrom := uint64(0), 0
	for i, s := range g.samples {
		if now.Sub(s.at) < g.ttl {
			break
		}
		reap, keepFrom = s.index, i+1
	}
	g.samples = g.samples[keepFrom:]
	return reap
}

// reapTombstones runs one GC step on the leader.
func (a *Agent) reapTombstones(g *tombstoneGC, lastReaped *uint64) {
	idx := g.observe(time.Now(), a.srv.store.LastIndex())
	if idx == 0 || idx <= *lastReaped {
		return
	}
	if err := a.applyCatalog(&catalog.TombstoneReapRequest{Index: idx}); err != nil {
		a.logApplyErr("reap tombstones", err)
		return
	}
	*lastReaped = idx
	a.log.Debug("leader: reaped KV tombstones", nodeAttr(a.cfg.NodeName), slog.Uint64("index", idx))
}
