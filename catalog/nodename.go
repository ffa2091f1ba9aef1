package catalog

import (
	"fmt"
	"strings"
)

// Node names are case-insensitive in Consul: its memdb node index is
// lower-cased, so a write under "n1" finds the node stored as "N1" and
// updates it rather than adding a second node. roster's tables are keyed by
// the stored name, so a write is pointed at the stored node's name before
// anything else reads it; the catalog therefore never holds two nodes whose
// names differ only in case, and the stored name keeps the case it was
// first registered with (Consul's record takes the newest case; see the
// README's differences table).
//
// Consul refuses one such write (state store ensureNoNodeWithSimilarNameTxn):
// a node that carries an ID may not take the name of a node with another
// ID while that node's serfHealth check is not critical. A node without
// an ID, or without a serfHealth check (registered from outside, not by an
// agent), or whose agent failed, may be taken over.

// serfCheckID is the node-level check the leader keeps for every gossip
// member; it tells a live agent's node from an external or failed one.
const serfCheckID = "serfHealth"

// claimNodeName rewrites n.Node to the name of the stored node it folds
// to, if there is one, and refuses a takeover Consul refuses (n is about
// to be written). It returns that stored node (nil if there is none), for
// ensureNode.
func (t *tx) claimNodeName(n *Node) (*Node, error) {
	asked := n.Node
	old := t.st.findNode(asked)
	if old == nil {
		return nil, nil
	}
	if n.ID != "" && old.ID != "" && !strings.EqualFold(n.ID, old.ID) && t.nodeAlive(old.Node) {
		return nil, fmt.Errorf("Node name %s is reserved by node %s with name %s (%s)", asked, old.ID, old.Node, old.Address)
	}
	n.Node = old.Node
	return old, nil
}

// nodeAlive reports whether node has a serfHealth check that is not
// critical.
func (t *tx) nodeAlive(node string) bool {
	c := t.st.check(node, serfCheckID)
	return c != nil && c.status != codeCritical
}
