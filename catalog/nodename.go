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
// names differ only in case.
//
// Which case the node keeps follows Consul's state store (catalog.go
// ensureRegistrationTxn and ensureNodeTxn): a write that changes nothing
// but the case is no change (ChangesNode and Node.IsSame compare the name
// with strings.EqualFold), so the node keeps its name; a write that
// changes the node (address, ID, meta, ...) inserts the request's record,
// which replaces the stored row under the lower-cased key, so the node
// takes the case of that write. roster then rekeys the node and everything
// stored under its name in one step of the apply path (renameNode).
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

// renameNode installs rec, the new record of the stored node old whose
// name it spells in another case, and moves everything stored under the
// old name to the new one: the node's services, checks, sessions and
// coordinate. Records keep their indexes (a move is not a write of them);
// sessions and the coordinate, which name their node, are installed as
// copies with the new name.
//
// Every move goes through the transaction's journalled setters, so a
// failed command rolls the whole rename back, and the derived indexes
// (slots, byService, nodeFold, the session indexes) follow as they do for
// any write. The delta log sees each instance removed under its old key
// and added under the new one, since an instance's key (Node, ID) never
// changes in a patch; the hashcode moves by the same difference. Renames
// are rare (a node's name changes case together with its content), so the
// moves take no shortcuts.
func (t *tx) renameNode(old, rec *Node) {
	st := t.st
	from, to := old.Node, rec.Node
	svcIDs := st.nodeServiceIDs(from)
	svcs := make([]*NodeService, len(svcIDs))
	for i, id := range svcIDs {
		svcs[i] = st.service(from, id)
	}
	checkIDs := sortedKeys(st.checks[from])
	checks := make([]*checkRec, len(checkIDs))
	for i, id := range checkIDs {
		checks[i] = st.check(from, id)
	}
	sessionIDs := sortedKeys(st.sessionsByNode[from])
	coord := st.coords[from]

	for _, id := range checkIDs {
		t.removeCheck(from, id)
	}
	for _, id := range svcIDs {
		t.removeService(from, id)
	}
	t.removeCoordinate(from)
	t.removeNode(from)

	t.setNode(rec)
	for _, svc := range svcs {
		t.setService(to, svc, nil, nil)
	}
	for i, c := range checks {
		look := st.lookupCheck(to, checkIDs[i])
		t.setCheck(to, c, &look, nil)
	}
	for _, id := range sessionIDs {
		s := *st.sessions[id]
		s.Node = to
		t.setSession(&s)
	}
	if coord != nil {
		c := *coord
		c.Node = to
		t.setCoordinate(&c)
	}
}
