package raft

// raftLog is the core's view of the replicated log: every entry after the
// last snapshot, held in memory, plus the commit index. It is pure data —
// the shell makes it durable from Ready.Entries.
//
// Invariant: entries[i].Index == snapIndex+1+i, terms never decrease.
// Raft II's log compaction moves snapIndex/snapTerm forward and trims the
// slice; everything here is written against that offset already.
type raftLog struct {
	snapIndex uint64 // index of the last entry folded into a snapshot (0: none)
	snapTerm  uint64
	entries   []Entry
	committed uint64 // highest index known committed (Raft §5.3)
}

func (l *raftLog) firstIndex() uint64 { return l.snapIndex + 1 }

func (l *raftLog) lastIndex() uint64 { return l.snapIndex + uint64(len(l.entries)) }

func (l *raftLog) lastTerm() uint64 {
	t, _ := l.term(l.lastIndex())
	return t
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
	return l.entries[i-l.snapIndex-1].Term, true
}

// matchTerm is the log-matching check of AppendEntries (Raft §5.3): do we
// hold an entry at i with term t?
func (l *raftLog) matchTerm(i, t uint64) bool {
	lt, ok := l.term(i)
	return ok && lt == t
}

// slice returns a copy of entries [lo, hi).
func (l *raftLog) slice(lo, hi uint64) []Entry {
	if lo < l.firstIndex() {
		lo = l.firstIndex()
	}
	if hi > l.lastIndex()+1 {
		hi = l.lastIndex() + 1
	}
	if lo >= hi {
		return nil
	}
	out := make([]Entry, hi-lo)
	copy(out, l.entries[lo-l.snapIndex-1:hi-l.snapIndex-1])
	return out
}

// entry returns the entry at i (ok false if absent).
func (l *raftLog) entry(i uint64) (Entry, bool) {
	if i < l.firstIndex() || i > l.lastIndex() {
		return Entry{}, false
	}
	return l.entries[i-l.snapIndex-1], true
}

// append adds entries that directly follow lastIndex.
func (l *raftLog) append(es ...Entry) { l.entries = append(l.entries, es...) }

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
	l.entries = l.entries[:i-l.snapIndex-1]
}

// compact drops the entries up to i (which must be in the log or be the
// current start), making (i, term(i)) the new log start.
func (l *raftLog) compact(i uint64) {
	t, ok := l.term(i)
	if !ok || i <= l.snapIndex {
		return
	}
	l.entries = append([]Entry(nil), l.entries[i-l.snapIndex:]...) // release the prefix
	l.snapIndex, l.snapTerm = i, t
}

// restore replaces the whole log by a snapshot's position (Raft §7:
// "discard the entire log").
func (l *raftLog) restore(index, term uint64) {
	l.entries, l.snapIndex, l.snapTerm, l.committed = nil, index, term, index
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
