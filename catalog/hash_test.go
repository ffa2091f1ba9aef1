package catalog

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"

	"roster/internal/testkit"
)

// eurekaHashcode is Eureka's registry "hashcode": the count of instances per
// status, as "STATUS_count_" sorted by status (Applications.getReconcileHashCode).
func eurekaHashcode(instances []Instance) string {
	counts := map[string]int{}
	for _, in := range instances {
		counts[strings.ToUpper(in.Health)]++
	}
	var b strings.Builder
	for _, status := range sortedKeys(counts) {
		fmt.Fprintf(&b, "%s_%d_", status, counts[status])
	}
	return b.String()
}

// TestHash_EurekaCollidesWhereContentHashDoesNot shows the missed-update
// problem: a client that missed "web moved to port 9090" and "api became
// healthy while web became unhealthy" has the same status counts as the
// server, so Eureka's check passes; the content hash catches both.
func TestHash_EurekaCollidesWhereContentHashDoesNot(t *testing.T) {
	server := []Instance{
		{Node: "n1", ID: "web1", Service: "web", Address: "10.0.0.1", Port: 9090, Health: HealthPassing},
		{Node: "n2", ID: "api1", Service: "api", Address: "10.0.0.2", Port: 80, Health: HealthCritical},
	}
	stale := []Instance{
		{Node: "n1", ID: "web1", Service: "web", Address: "10.0.0.1", Port: 8080, Health: HealthCritical},
		{Node: "n2", ID: "api1", Service: "api", Address: "10.0.0.2", Port: 80, Health: HealthPassing},
	}
	if eurekaHashcode(server) != eurekaHashcode(stale) {
		t.Fatalf("expected Eureka hashcodes to collide: %q vs %q", eurekaHashcode(server), eurekaHashcode(stale))
	}
	if HashInstances(server) == HashInstances(stale) {
		t.Fatalf("content hashcodes collide for different registries: %s", HashInstances(server))
	}
	t.Logf("eureka %q for both; content %s vs %s", eurekaHashcode(server), HashInstances(server)[:16], HashInstances(stale)[:16])
}

// TestHash_OrderIndependentAndInvertible checks the algebra the incremental
// hashcode relies on: any order gives the same sum, and subtracting what was
// added returns to the start (with carries and borrows across all limbs).
func TestHash_OrderIndependentAndInvertible(t *testing.T) {
	r := testkit.Rand(t)
	var digests [][sha256.Size]byte
	for i := range 200 {
		d := sha256.Sum256([]byte(fmt.Sprint(i, r.Uint64())))
		if i%10 == 0 {
			d = [sha256.Size]byte{} // zero and all-ones digests force full carry chains
			for j := range d {
				d[j] = 0xff
			}
		}
		digests = append(digests, d)
	}
	var forward, shuffled sum256
	for i := range digests {
		forward.add(&digests[i])
	}
	perm := r.Perm(len(digests))
	for _, i := range perm {
		shuffled.add(&digests[i])
	}
	if forward != shuffled {
		t.Fatalf("sum depends on order: %s vs %s", forward, shuffled)
	}
	for _, i := range r.Perm(len(digests)) {
		forward.sub(&digests[i])
	}
	if forward != (sum256{}) {
		t.Fatalf("adding then subtracting every digest left %s, want zero", forward)
	}
}

// TestHash_CanonicalEncodingSeparatesFields checks that moving bytes between
// adjacent fields, reordering tags or changing meta changes the digest,
// while reordering meta (a map) does not matter.
func TestHash_CanonicalEncodingSeparatesFields(t *testing.T) {
	base := Instance{Node: "ab", ID: "c", Service: "s", Tags: []string{"x", "y"}, Meta: map[string]string{"k": "v", "a": "b"}}
	variants := map[string]Instance{
		"field boundary": {Node: "a", ID: "bc", Service: "s", Tags: []string{"x", "y"}, Meta: map[string]string{"k": "v", "a": "b"}},
		"tag order":      {Node: "ab", ID: "c", Service: "s", Tags: []string{"y", "x"}, Meta: map[string]string{"k": "v", "a": "b"}},
		"tag split":      {Node: "ab", ID: "c", Service: "s", Tags: []string{"xy"}, Meta: map[string]string{"k": "v", "a": "b"}},
		"meta value":     {Node: "ab", ID: "c", Service: "s", Tags: []string{"x", "y"}, Meta: map[string]string{"k": "w", "a": "b"}},
		"health":         {Node: "ab", ID: "c", Service: "s", Tags: []string{"x", "y"}, Meta: map[string]string{"k": "v", "a": "b"}, Health: HealthCritical},
	}
	baseHash := HashInstances([]Instance{base})
	for name, v := range variants {
		if HashInstances([]Instance{v}) == baseHash {
			t.Errorf("%s: digest unchanged", name)
		}
	}
	same := base.Clone()
	same.Meta = map[string]string{"a": "b", "k": "v"}
	if HashInstances([]Instance{same}) != baseHash {
		t.Errorf("meta insertion order changed the digest")
	}
	if !slices.Equal(base.Tags, []string{"x", "y"}) {
		t.Errorf("hashing modified the instance")
	}
}

// TestHash_HealthFlipNeedsOnlyTheContentDigest checks the two-level
// digest a health flip relies on: moving a kept instHash to a new health
// gives the digest of the whole instance with that health, and the
// instance level of every stored health fits one SHA-256 block (at most
// 55 bytes of message), which is what makes a flip cost one block.
func TestHash_HealthFlipNeedsOnlyTheContentDigest(t *testing.T) {
	in := Instance{Node: "n1", NodeAddress: "10.0.0.1", Datacenter: "dc1", ID: "web-1", Service: "web",
		Tags: []string{"v1"}, Port: 8080, Meta: map[string]string{"version": "1"}, Health: HealthPassing}
	content, digest, _ := digestInstance(nil, &in)
	h := instHash{health: codePassing, content: content, digest: digest}
	var sum sum256
	sum.add(&h.digest)
	for _, code := range []uint8{codeCritical, codeWarning, codePassing} {
		sum.moveHealth(&h, code)
		want := in
		want.Health = statusName(code)
		wantContent, wantDigest, _ := digestInstance(nil, &want)
		if wantContent != content {
			t.Fatalf("content digest depends on health %s", want.Health)
		}
		if h.digest != wantDigest || h.health != code {
			t.Fatalf("flip to %s: digest %x, full digest %x", want.Health, h.digest, wantDigest)
		}
		if got := sum.String(); got != HashInstances([]Instance{want}) {
			t.Fatalf("flip to %s: sum %s, from scratch %s", want.Health, got, HashInstances([]Instance{want}))
		}
		if n := len(instanceVersion) + sha256.Size + 1 + len(want.Health); n > 55 {
			t.Errorf("instance level of %s is %d bytes, more than one SHA-256 block holds", want.Health, n)
		}
	}
}
