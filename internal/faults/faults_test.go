package faults

import (
	"testing"
	"time"
)

func TestPlan_PartitionSeparatesGroupsAndHealRestores(t *testing.T) {
	p := New(1)
	p.Partition([]string{"a", "b"}, []string{"c"})
	cases := []struct {
		from, to string
		want     bool
	}{{"a", "b", true}, {"a", "c", false}, {"c", "b", false}, {"d", "e", true}, {"d", "a", false}}
	for _, c := range cases {
		if got := p.Decide(c.from, c.to).Deliver; got != c.want {
			t.Errorf("%s->%s deliver=%v, want %v", c.from, c.to, got, c.want)
		}
	}
	p.Heal()
	if !p.Decide("a", "c").Deliver {
		t.Fatal("Heal did not reconnect a and c")
	}
}

func TestPlan_IsolateCutsBothDirections(t *testing.T) {
	p := New(1)
	p.Isolate("x")
	if p.Decide("x", "y").Deliver || p.Decide("y", "x").Deliver {
		t.Fatal("isolated node still talks")
	}
	if !p.Decide("y", "z").Deliver {
		t.Fatal("isolation leaked to other nodes")
	}
}

func TestPlan_DropIsDirectedAndSeeded(t *testing.T) {
	run := func() (lost int) {
		p := New(7)
		p.Drop("a", "b", 0.5)
		for i := 0; i < 1000; i++ {
			if !p.Decide("a", "b").Deliver {
				lost++
			}
			if !p.Decide("b", "a").Deliver {
				t.Fatal("drop on a->b affected b->a")
			}
		}
		return lost
	}
	first, second := run(), run()
	if first != second {
		t.Fatalf("same seed lost %d then %d messages", first, second)
	}
	if first < 400 || first > 600 {
		t.Fatalf("lost %d of 1000 at p=0.5", first)
	}
}

func TestPlan_DelayWildcards(t *testing.T) {
	p := New(1)
	p.Delay(Any, "b", 5*time.Millisecond)
	p.Delay("a", "b", 9*time.Millisecond)
	if d := p.Decide("a", "b").Delay; d != 9*time.Millisecond {
		t.Fatalf("specific link delay = %v, want 9ms", d)
	}
	if d := p.Decide("c", "b").Delay; d != 5*time.Millisecond {
		t.Fatalf("wildcard delay = %v, want 5ms", d)
	}
}

func TestPlan_DuplicateAndReorder(t *testing.T) {
	p := New(3)
	p.Duplicate(1)
	p.Reorder(1)
	f := p.Decide("a", "b")
	if f.Copies != 2 || !f.Reorder {
		t.Fatalf("fate %+v, want 2 copies and reorder", f)
	}
}
