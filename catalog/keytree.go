package catalog

import (
	"slices"
	"strings"
)

// keyTree is an ordered set of strings: a B-tree (Bayer & McCreight 1972;
// the insert and delete below follow Cormen et al., "Introduction to
// Algorithms", ch. 18: split a full child before descending into it, grow a
// minimal child before deleting from it, so neither ever walks back up).
//
// The store keeps every KV key that is live or has a tombstone in one, so
// that a prefix query (list, keys with a separator, delete-tree, the index
// of a prefix watch) visits only the keys under the prefix: O(log n + m)
// for m matching keys, where a map would be scanned whole. Keys are the
// only payload; the records stay in the state's maps, where a point lookup
// is one hash.
type keyTree struct {
	root *keyNode
	n    int
}

// keyTreeDegree is the B-tree's minimum degree t: a node holds between
// t-1 and 2t-1 keys (the root may hold fewer), so 100k keys sit three
// levels deep, and a node's keys fill a few cache lines.
const keyTreeDegree = 16

const (
	keyNodeMax = 2*keyTreeDegree - 1
	keyNodeMin = keyTreeDegree - 1
)

// keyNode is a B-tree node: sorted keys and, unless it is a leaf, one more
// child than keys (children[i] holds the keys between keys[i-1] and keys[i]).
type keyNode struct {
	keys     []string
	children []*keyNode
}

func (n *keyNode) leaf() bool { return len(n.children) == 0 }

// find returns the index of the first key ≥ key and whether it equals key.
func (n *keyNode) find(key string) (int, bool) {
	return slices.BinarySearch(n.keys, key)
}

// Len is the number of keys.
func (t *keyTree) Len() int { return t.n }

// insert adds key; it reports false if key was already there.
func (t *keyTree) insert(key string) bool {
	if t.root == nil {
		t.root = &keyNode{keys: []string{key}}
		t.n = 1
		return true
	}
	if len(t.root.keys) == keyNodeMax {
		mid, right := t.root.split()
		t.root = &keyNode{keys: []string{mid}, children: []*keyNode{t.root, right}}
	}
	if !t.root.insert(key) {
		return false
	}
	t.n++
	return true
}

// split moves the upper half of a full node into a new right sibling and
// returns the middle key, which the parent takes.
func (n *keyNode) split() (string, *keyNode) {
	const mid = keyNodeMax / 2
	key := n.keys[mid]
	right := &keyNode{keys: slices.Clone(n.keys[mid+1:])}
	clear(n.keys[mid:]) // let the moved strings go
	n.keys = n.keys[:mid]
	if !n.leaf() {
		right.children = slices.Clone(n.children[mid+1:])
		clear(n.children[mid+1:])
		n.children = n.children[:mid+1]
	}
	return key, right
}

// insert adds key below a node that is not full.
func (n *keyNode) insert(key string) bool {
	for {
		i, found := n.find(key)
		if found {
			return false
		}
		if n.leaf() {
			n.keys = slices.Insert(n.keys, i, key)
			return true
		}
		if len(n.children[i].keys) == keyNodeMax {
			mid, right := n.children[i].split()
			n.keys = slices.Insert(n.keys, i, mid)
			n.children = slices.Insert(n.children, i+1, right)
			switch c := strings.Compare(key, mid); {
			case c == 0:
				return false
			case c > 0:
				i++
			}
		}
		n = n.children[i]
	}
}

// remove deletes key; it reports false if key was not there.
func (t *keyTree) remove(key string) bool {
	if t.root == nil {
		return false
	}
	found := t.root.remove(key)
	if len(t.root.keys) == 0 {
		if t.root.leaf() {
			t.root = nil
		} else {
			t.root = t.root.children[0]
		}
	}
	if found {
		t.n--
	}
	return found
}

// remove deletes key from the subtree of n, which holds more than the
// minimum number of keys (or is the root).
func (n *keyNode) remove(key string) bool {
	for {
		i, found := n.find(key)
		if n.leaf() {
			if found {
				n.keys = slices.Delete(n.keys, i, i+1)
			}
			return found
		}
		if found {
			// Replace key by its predecessor, the largest key of the
			// left subtree, then delete that one from there.
			if len(n.children[i].keys) > keyNodeMin {
				n.keys[i] = n.children[i].removeMax()
				return true
			}
			if len(n.children[i+1].keys) > keyNodeMin {
				n.keys[i] = n.children[i+1].removeMin()
				return true
			}
			n.merge(i) // key moves down into the merged child
			n = n.children[i]
			continue
		}
		n = n.growChild(i)
	}
}

// growChild makes sure children[i] holds more than the minimum, borrowing
// a key through the parent from a sibling or merging with one, and returns
// the child that now covers the keys children[i] covered.
func (n *keyNode) growChild(i int) *keyNode {
	child := n.children[i]
	if len(child.keys) > keyNodeMin {
		return child
	}
	if i > 0 && len(n.children[i-1].keys) > keyNodeMin {
		left := n.children[i-1]
		child.keys = slices.Insert(child.keys, 0, n.keys[i-1])
		n.keys[i-1] = left.keys[len(left.keys)-1]
		left.keys[len(left.keys)-1] = ""
		left.keys = left.keys[:len(left.keys)-1]
		if !left.leaf() {
			child.children = slices.Insert(child.children, 0, left.children[len(left.children)-1])
			left.children[len(left.children)-1] = nil
			left.children = left.children[:len(left.children)-1]
		}
		return child
	}
	if i < len(n.keys) && len(n.children[i+1].keys) > keyNodeMin {
		right := n.children[i+1]
		child.keys = append(child.keys, n.keys[i])
		n.keys[i] = right.keys[0]
		right.keys = slices.Delete(right.keys, 0, 1)
		if !right.leaf() {
			child.children = append(child.children, right.children[0])
			right.children = slices.Delete(right.children, 0, 1)
		}
		return child
	}
	if i == len(n.keys) {
		i-- // the last child merges with its left sibling
	}
	n.merge(i)
	return n.children[i]
}

// merge joins children[i], keys[i] and children[i+1] into children[i].
func (n *keyNode) merge(i int) {
	left, right := n.children[i], n.children[i+1]
	left.keys = append(append(left.keys, n.keys[i]), right.keys...)
	left.children = append(left.children, right.children...)
	n.keys = slices.Delete(n.keys, i, i+1)
	n.children = slices.Delete(n.children, i+1, i+2)
}

// removeMax deletes and returns the largest key under n (which holds more
// than the minimum).
func (n *keyNode) removeMax() string {
	for !n.leaf() {
		n = n.growChild(len(n.children) - 1)
	}
	key := n.keys[len(n.keys)-1]
	n.keys[len(n.keys)-1] = ""
	n.keys = n.keys[:len(n.keys)-1]
	return key
}

// removeMin deletes and returns the smallest key under n (which holds more
// than the minimum).
func (n *keyNode) removeMin() string {
	for !n.leaf() {
		n = n.growChild(0)
	}
	key := n.keys[0]
	n.keys = slices.Delete(n.keys, 0, 1)
	return key
}

// ascend calls fn for each key ≥ from in order until fn returns false.
func (t *keyTree) ascend(from string, fn func(string) bool) {
	if t.root != nil {
		t.root.ascend(from, fn)
	}
}

func (n *keyNode) ascend(from string, fn func(string) bool) bool {
	i, _ := n.find(from)
	for ; i <= len(n.keys); i++ {
		// Every key of children[i] for a later i is above from, so the
		// search inside it lands on its first key.
		if !n.leaf() && !n.children[i].ascend(from, fn) {
			return false
		}
		if i < len(n.keys) && !fn(n.keys[i]) {
			return false
		}
	}
	return true
}

// ascendPrefix calls fn for each key that starts with prefix, in order,
// until fn returns false.
func (t *keyTree) ascendPrefix(prefix string, fn func(string) bool) {
	t.ascend(prefix, func(k string) bool {
		return strings.HasPrefix(k, prefix) && fn(k)
	})
}

// prefixEnd returns the smallest string above every string that starts
// with prefix, and false if there is none (prefix is empty or all 0xff).
func prefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}
