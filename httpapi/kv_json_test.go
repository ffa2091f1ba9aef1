package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"

	"roster/catalog"
	"roster/internal/testkit"
)

// The hand-written KV encoding must be byte for byte json.Marshal's, or
// refuse (and leave the pair to json.Marshal).
func TestKVPairsJSON_MatchesEncodingJSON(t *testing.T) {
	rnd := testkit.Rand(t)
	alphabet := []byte("abcXYZ09/_-. <>&\"\\\x01é")
	str := func() string {
		b := make([]byte, rnd.IntN(12))
		for i := range b {
			b[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		return string(b)
	}
	refused := 0
	for range 2000 {
		p := catalog.KVPair{LockIndex: rnd.Uint64N(3), Key: str(), Flags: rnd.Uint64(), Session: str(),
			CreateIndex: rnd.Uint64(), ModifyIndex: rnd.Uint64()}
		if rnd.IntN(4) > 0 {
			p.Value = []byte(str())
		}
		pairs := []catalog.KVPair{p, {Key: "second", Value: []byte{}}}
		want, err := json.Marshal(pairs)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendKVPairsJSON(nil, pairs)
		if !ok {
			refused++
			continue
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("pairs %+v:\n got %s\nwant %s", pairs, got, want)
		}
	}
	if refused == 0 || refused == 2000 {
		t.Fatalf("%d of 2000 refused: the test does not cover both paths", refused)
	}
	for _, ok := range []bool{true, false} {
		if want, _ := json.Marshal(ok); !bytes.Equal(kvBoolBody(ok).plain, want) {
			t.Fatalf("%v encodes as %s, json.Marshal says %s", ok, kvBoolBody(ok).plain, want)
		}
	}
}
