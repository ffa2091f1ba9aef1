package raft

// raftLog is the core's view of the replicated log: every entry after the
// last snapshot, held in memory, plus the commit index. It is pure data —
// the shell makes it durable from Ready.Entries.
//
// Entries live in fixed-size chunks that are never reallocated, so that
// appending never copies the log (a flat slice would copy all of it on
// every growth: milliseconds of stalled raft loop once it holds a few
// hundred thousand entries) and slice can hand out views instead of
// copies. A view is immutable: appends only write past every view, and
// truncateFrom (the one rewrite, a follower dropping a conflicting
// suffix, Raft §5.3) copies the chunk it cuts before anything is written
// over the dropped entries.
//
// Invariant: the live entries are chunks[0][off:] followed by the later
// chunks in full; their indexes run snapIndex+1, snapIndex+2, ... and
// their terms never decrease. Every chunk but the last is full.
type raftLog struct {
	snapIndex uint64 // index of the last entry folded into a snapshot (0: none)
	snapTerm  uint64
	chunks    [][]Entry // each of capacity logChunk
	off       int       // entries of chunks[0] before the first live one
	n         int       // live entries
	committed uint64    // highest index known committed (Raft §5.3)
}

// logChunk is the number of entries per chunk: large enough that most
// Ready and AppendEntries batches fall inside one chunk (a view, no copy),
// small enough that compaction frees memory promptly.
const logChunk = 4096

func (l *raftLog) firstIndex() uint64 { return l.snapIndex + 1 }

func (l *raftLog) lastIndex() uint64 { return l.snapIndex + uint64(l.n) }

func (l *raftLog) lastTerm() uint64 {
	t, _ := l.term(l.lastIndex())
	return t
}

// locate returns the chunk and position of the live entry at offset p
// (0 is the first entry after the snapshot).
func (l *raftLog) locate(p int) (chunk, pos int) {
	p += l.off
	return p / logChunk, p % logChunk
}

// at returns the entry at index i, which must be in the log.
func (l *raftLog) at(i uint64) *Entry {
	c, p := l.locate(int(i - l.snapIndex - 1))
	return &l.chunks[c][p]
}

// term returns the term of the entry at i; ok is false if i is beyond the
// log or compacted away.
func (l *raftLog) term(i uint64) (uint64, bool) {
	switch {
	case i == l.snapIndex:
		return l.snapTerm, true
	case i < l.snapIndex || i > l.lastIndex():
		return 0, false
	}
	return l.at(i).Term, true
}

// matchTerm is the log-matching check of AppendEntries (Raft §5.3): do we
// hold an entry at i with term t?
func (l *raftLog) matchTerm(i, t uint64) bool {
	lt, ok := l.term(i)
	return ok && lt == t
}

// slice returns entries [lo, hi), clamped to the log. The result is
// read-only and may share memory with the log (a view within one chunk,
// capacity capped so that appending to it copies); it never changes
// afterwards, whatever the log does.
func (l *raftLog) slice(lo, hi uint64) []Entry {
	lo = max(lo, l.firstIndex())
	hi = min(hi, l.lastIndex()+1)
	if lo >= hi {
		return nil
	}
	c0, p0 := l.locate(int(lo - l.snapIndex - 1))
	c1, p1 := l.locate(int(hi - l.snapIndex - 2))
	if c0 == c1 {
		return l.chunks[c0][p0 : p1+1 : p1+1]
	}
	out := make([]Entry, 0, hi-lo)
	out = append(out, l.chunks[c0][p0:]...)
	for c := c0 + 1; c < c1; c++ {
		out = append(out, l.chunks[c]...)
	}
	return append(out, l.chunks[c1][:p1+1]...)
}

// entry returns the entry at i (ok false if absent).
func (l *raftLog) entry(i uint64) (Entry, bool) {
	if i < l.firstIndex() || i > l.lastIndex() {
		return Entry{}, false
	}
	return *l.at(i), true
}

// append adds entries that directly follow lastIndex.
func (l *raftLog) append(es ...Entry) {
	for len(es) > 0 {
		last := len(l.chunks) - 1
		if last < 0 || len(l.chunks[last]) == logChunk {
			l.chunks = append(l.chunks, make([]Entry, 0, logChunk))
			last++
		}
		k := min(len(es), logChunk-len(l.chunks[last]))
		l.chunks[last] = append(l.chunks[last], es[:k]...)
		es = es[k:]
		l.n += k
	}
}

// truncateFrom drops every entry at index >= i. Never called on committed
// entries: a leader that is correct never contradicts a committed entry
// (Leader Completeness, Raft §5.4), so the caller treats it as a bug.
func (l *raftLog) truncateFrom(i uint64) {
	if i <= l.snapIndex {
		i = l.snapIndex + 1
	}
	if i > l.lastIndex() {
		return
	}
	keep := int(i - l.snapIndex - 1)
	if keep == 0 {
		l.chunks, l.off, l.n = nil, 0, 0
		return
	}
	c, p := l.locate(keep - 1)
	// A fresh copy of the cut chunk: views handed out by slice may cover
	// the dropped entries, and new entries must not overwrite them.
	cut := make([]Entry, p+1, logChunk)
	copy(cut, l.chunks[c][:p+1])
	l.chunks = append(l.chunks[:c:c], cut)
	l.n = keep
}

// compact drops the entries up to i (which must be in the log or be the
// current start), making (i, term(i)) the new log start.
func (l *raftLog) compact(i uint64) {
	t, ok := l.term(i)
	if !ok || i <= l.snapIndex {
		return
	}
	drop := int(i - l.snapIndex)
	c, p := l.locate(drop) // where the new first entry is (or would be)
	if drop == l.n {
		c, p = len(l.chunks), 0
	}
	// Release whole chunks before the new start.
	l.chunks = append([][]Entry(nil), l.chunks[min(c, len(l.chunks)):]...)
	l.off, l.n = p, l.n-drop
	if l.n == 0 {
		l.chunks, l.off = nil, 0
	}
	if l.off > 0 {
		l.dropDeadPrefix()
	}
	l.snapIndex, l.snapTerm = i, t
}

// dropDeadPrefix moves chunk 0's live entries into a fresh chunk, at the
// same positions, so that the compacted entries before off (up to 4095,
// each with its Data, which the zero-copy wire codec leaves pointing into
// a whole AppendEntries frame) are no longer reachable from the log: the
// old chunk is freed once the last view of it goes. Clearing the old
// chunk in place instead would change views that still cover it. Costs a
// copy of at most one chunk per compaction, which comes with a snapshot.
func (l *raftLog) dropDeadPrefix() {
	old := l.chunks[0]
	fresh := make([]Entry, len(old), logChunk)
	copy(fresh[l.off:], old[l.off:])
	l.chunks[0] = fresh
}

// restore replaces the whole log by a snapshot's position (Raft §7:
// "discard the entire log").
func (l *raftLog) restore(index, term uint64) {
	l.chunks, l.off, l.n = nil, 0, 0
	l.snapIndex, l.snapTerm, l.committed = index, term, index
}

// isUpToDate is the election restriction of Raft §5.4.1: a candidate's log
// (lastIdx, lastTerm) is at least as up-to-date as ours if its last term is
// higher, or equal with an index at least as large.
func (l *raftLog) isUpToDate(lastIdx, lastTerm uint64) bool {
	return lastTerm > l.lastTerm() || (lastTerm == l.lastTerm() && lastIdx >= l.lastIndex())
}

// findConflict returns the index of the first entry in es that is absent
// from our log or disagrees with it in term (0 if every entry is present).
func (l *raftLog) findConflict(es []Entry) uint64 {
	for _, e := range es {
		if !l.matchTerm(e.Index, e.Term) {
			return e.Index
		}
	}
	return 0
}

// findConflictByTerm returns the largest index <= i whose term is <= t
// (and that term). Follower and leader both use it so that one rejected
// AppendEntries skips a whole run of entries from a term the other side
// does not have (the fast back-off of Raft §5.3; etcd-io/raft's variant).
func (l *raftLog) findConflictByTerm(i, t uint64) (uint64, uint64) {
	if i > l.lastIndex() {
		i = l.lastIndex()
	}
	for ; i > l.snapIndex; i-- {
		if lt, _ := l.term(i); lt <= t {
			return i, lt
		}
	}
	return l.snapIndex, l.snapTerm
}
