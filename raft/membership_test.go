package raft

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// startEmpty starts a server with no raft state on the cluster's network;
// it waits for a leader to add it.
func (c *cluster) startEmpty(id string) {
	c.mu.Lock()
	c.stores[id] = NewMemStore()
	c.mu.Unlock()
	c.ids = append(c.ids, id)
	c.start(id)
}

// Grow 1 -> 3 and shrink back, applying all the while; every member
// converges and a server with no state can never campaign on its own.
func TestNode_MembershipGrowAndShrink(t *testing.T) {
	c := newCluster(t, 1)
	l := c.leader()
	// One change at a time (thesis §4.1): the bootstrap configuration
	// commits with the leader's first write, one fsync after it leads.
	c.applied(c.apply("first", 5*time.Second), l)
	c.startEmpty("n2")
	c.startEmpty("n3")
	if c.node("n2").State() != Follower || c.node("n2").HasExistingState() {
		t.Fatal("an empty server must wait as a follower")
	}
	for _, id := range []string{"n2", "n3"} {
		if err := waitFuture(c.node(l).AddVoter(id, id, time.Second), 5*time.Second); err != nil {
			t.Fatalf("AddVoter(%s): %v", id, err)
		}
		c.applied(c.apply("after-add-"+id, 5*time.Second), l, id)
	}
	if m := c.node(l).FollowerMatch(); m["n2"] == 0 || m["n3"] == 0 {
		t.Fatalf("FollowerMatch = %v, want both followers matched", m)
	}
	conf, _ := c.node("n3").Configuration()
	if len(conf.voters()) != 3 {
		t.Fatalf("n3 sees %v, want 3 voters", conf.Servers)
	}
	if err := waitFuture(c.node(l).RemoveServer("n3", time.Second), 5*time.Second); err != nil {
		t.Fatalf("RemoveServer: %v", err)
	}
	c.applied(c.apply("after-remove", 5*time.Second), "n1", "n2")
}

// Removing the leader: it commits its own removal, steps down, and the
// remaining servers elect a leader among themselves.
func TestNode_MembershipRemoveLeader(t *testing.T) {
	c := newCluster(t, 3)
	l1 := c.leader()
	if err := waitFuture(c.node(l1).RemoveServer(l1, time.Second), 5*time.Second); err != nil {
		t.Fatalf("RemoveServer(leader): %v", err)
	}
	rest := others(c.ids, l1)
	l2 := c.leader(rest...)
	if l2 == l1 {
		t.Fatal("removed leader still leads")
	}
	c.applied(c.apply("after", 5*time.Second), rest...)
	c.waitFor(5*time.Second, "removed leader to stop leading", func() error {
		if c.node(l1).State() == Leader {
			return errors.New("still leader")
		}
		return nil
	})
}

// One change at a time: a second change while the first is uncommitted is
// refused with a clear error; changes touching two voters are refused.
func TestCore_Membership_OneChangeAtATime(t *testing.T) {
	c := leaderCore(t)
	conf := c.conf.Clone()
	conf.Servers = append(conf.Servers, Server{ID: "d", Address: "d"})
	if _, err := c.ProposeConfiguration(conf); err != nil {
		t.Fatal(err)
	}
	conf2 := conf.Clone()
	conf2.Servers = append(conf2.Servers, Server{ID: "e", Address: "e"})
	if _, err := c.ProposeConfiguration(conf2); !errors.Is(err, ErrConfigurationChangePending) {
		t.Fatalf("second change while first uncommitted: %v", err)
	}
	two := Configuration{Servers: []Server{{ID: "a", Address: "a"}, {ID: "x", Address: "x"}, {ID: "y", Address: "y"}}}
	c2 := leaderCore(t)
	if _, err := c2.ProposeConfiguration(two); err == nil {
		t.Fatal("a change of two voters at once was accepted")
	}
}

// A change proposed by a leader that is then partitioned away never
// commits; the new leader's change does, and everyone converges on it.
func TestPartition_MembershipChangeByIsolatedLeader(t *testing.T) {
	c := newCluster(t, 3)
	c.startEmpty("n4")
	l1 := c.leader("n1", "n2", "n3")
	c.net.Isolate(l1)
	f := c.node(l1).AddVoter("n4", "n4", time.Second) // can never commit
	l2 := c.leader(others([]string{"n1", "n2", "n3"}, l1)...)
	// One change at a time (thesis §4.1): until its first write commits,
	// the new leader cannot know the configuration it holds is committed,
	// and refuses a change meanwhile.
	c.apply("l2 in office", 5*time.Second)
	if err := waitFuture(c.node(l2).AddVoter("n4", "n4", time.Second), 5*time.Second); err != nil {
		t.Fatalf("AddVoter on the new leader %s: %v", l2, err)
	}
	c.net.Heal()
	if err := waitFuture(f, 5*time.Second); err == nil {
		t.Fatal("isolated leader's change was acknowledged")
	}
	idx := c.apply("converged", 5*time.Second)
	c.applied(idx)
	for _, id := range c.ids {
		conf, _ := c.node(id).Configuration()
		if got := fmt.Sprint(len(conf.voters())); got != "4" {
			t.Fatalf("%s sees %s voters, want 4: %v", id, got, conf.Servers)
		}
	}
}
