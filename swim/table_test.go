package swim

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"unsafe"

	"roster/internal/testkit"
)

// TestTable_PrivateSlotsAreReused: a real node's table reuses the slot of
// a reaped member, so a churning cluster does not grow the table.
func TestTable_PrivateSlotsAreReused(t *testing.T) {
	tab := memberTable{dir: newDirectory(false)}
	a := tab.add(&identity{name: "a"}, StateAlive, 0, 0)
	b := tab.add(&identity{name: "b"}, StateDead, 3, 0)
	slotB := b.slot
	tab.remove(b)
	if tab.get("b") != nil || tab.count != 1 {
		t.Fatalf("removed member still there (count %d)", tab.count)
	}
	c := tab.add(&identity{name: "c"}, StateAlive, 0, 0)
	if c.slot != slotB || tab.slots() != 2 {
		t.Fatalf("new member got slot %d of %d, want the freed slot %d", c.slot, tab.slots(), slotB)
	}
	if got := tab.get("a"); got != a || got.name != "a" {
		t.Fatalf("a moved: %+v", got)
	}
}

// TestTable_SharedChunksAreCopiedOnWrite: tables started from shared
// chunks (the simulator's) see their own writes only.
func TestTable_SharedChunksAreCopiedOnWrite(t *testing.T) {
	dir := newDirectory(true)
	tmpl := memberTable{dir: dir}
	for _, n := range []string{"a", "b", "c"} {
		tmpl.add(&identity{name: n}, StateAlive, 0, 0)
	}
	x, y := memberTable{dir: dir}, memberTable{dir: dir}
	x.share(tmpl.chunks, 3, tmpl.get("a"))
	y.share(tmpl.chunks, 3, tmpl.get("b"))
	m := x.own(x.get("c"))
	m.state, m.incarnation = StateDead, 7
	if got := y.get("c"); got.state != StateAlive || got.incarnation != 0 {
		t.Fatalf("a write in one table leaked into another: %+v", got)
	}
	if got := x.get("c"); got.state != StateDead || got.incarnation != 7 {
		t.Fatalf("the write was lost: %+v", got)
	}
	tab := memberTable{dir: dir}
	tab.share(tmpl.chunks, 3, tmpl.get("a"))
	tab.remove(tab.get("b"))
	if tmpl.get("b") == nil || y.get("b") == nil {
		t.Fatal("removing from one table removed from the shared chunks")
	}
}

// TestProbe_EveryMemberOncePerRound: the incremental shuffle still probes
// every live member exactly once per round (SWIM §4.3), with a joiner
// taken into the round it joined in.
func TestProbe_EveryMemberOncePerRound(t *testing.T) {
	cfg := DefaultLANConfig()
	cfg.Name = "self"
	c, err := NewCore(cfg, netip.MustParseAddrPort("10.0.0.1:8301"), rand.New(rand.NewPCG(testkit.Seed(t), 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"a", "b", "c", "d", "e", "f", "g"}
	for i, n := range names {
		c.handleAlive(alive{Node: n, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)}), 8301)})
	}
	for round := range 20 {
		seen := map[string]int{}
		for i := 0; i < len(names); i++ {
			if round == 10 && i == 3 { // a joiner mid-round is probed within that round
				c.handleAlive(alive{Node: "h", Addr: netip.MustParseAddrPort("10.0.1.99:8301")})
				names = append(names, "h")
			}
			m := c.nextProbeTarget()
			if m == nil {
				t.Fatal("no probe target")
			}
			seen[m.name]++
		}
		for _, n := range names {
			if seen[n] != 1 {
				t.Fatalf("round %d: %s probed %d times (%v)", round, n, seen[n], seen)
			}
		}
	}
}

// TestMemberState_Is32Bytes: the record stays 32 bytes (table.go's
// budget; the 10,000-member simulations depend on it) as fields are added.
func TestMemberState_Is32Bytes(t *testing.T) {
	if got := unsafe.Sizeof(memberState{}); got != 32 {
		t.Fatalf("memberState is %d bytes, want 32", got)
	}
}
