package swim

import (
	"math"
	"slices"
)

// broadcast is one framed message waiting to be piggy-backed (SWIM §4.1:
// "infection-style" dissemination on the failure detector's own packets).
type broadcast struct {
	// key identifies what the message is about; a newer broadcast with the
	// same key replaces an older one (an alive for a node supersedes its
	// suspect), so stale news is never spread after fresh news.
	key       string
	msg       []byte
	transmits int
	id        uint64 // insertion order: larger is newer
}

// broadcastQueue holds pending broadcasts. Invariant: at most one entry per
// key.
type broadcastQueue struct {
	items  []*broadcast
	nextID uint64
}

// push queues msg under key, replacing any pending broadcast with the same
// key. It returns the new broadcast's id.
func (q *broadcastQueue) push(key string, msg []byte) uint64 {
	q.items = slices.DeleteFunc(q.items, func(b *broadcast) bool { return b.key == key })
	q.nextID++
	q.items = append(q.items, &broadcast{key: key, msg: msg, id: q.nextID})
	return q.nextID
}

// fill appends pending broadcasts to body while it stays within
// limitBytes, least-transmitted first and, among equals, newest first (so
// fresh news spreads fastest). Each broadcast taken counts a transmit;
// those that reach retransmitLimit are dropped from the queue.
func (q *broadcastQueue) fill(body []byte, limitBytes, retransmitLimit int) []byte {
	if len(q.items) == 0 || len(body) >= limitBytes {
		return body
	}
	slices.SortFunc(q.items, func(a, b *broadcast) int {
		if a.transmits != b.transmits {
			return a.transmits - b.transmits
		}
		if a.id > b.id {
			return -1
		}
		return 1
	})
	kept := q.items[:0]
	for _, b := range q.items {
		if len(body)+len(b.msg) <= limitBytes {
			body = append(body, b.msg...)
			b.transmits++
		}
		if b.transmits < retransmitLimit {
			kept = append(kept, b)
		}
	}
	clear(q.items[len(kept):])
	q.items = kept
	return body
}

// transmitted reports whether broadcast id has been sent at least once (or
// is no longer pending because it was sent out or superseded). Leave uses
// it to know its announcement has gone out.
func (q *broadcastQueue) transmitted(id uint64) bool {
	for _, b := range q.items {
		if b.id == id {
			return b.transmits > 0
		}
	}
	return true
}

func (q *broadcastQueue) len() int { return len(q.items) }

// retransmitLimit is RetransmitMult × ceil(log10(N+1)) (SWIM §4.1: a
// broadcast is gossiped O(log N) times so it reaches every member with
// high probability).
func retransmitLimit(mult, n int) int {
	return mult * int(math.Ceil(math.Log10(float64(n+1))))
}
