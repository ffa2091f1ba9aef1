package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

// `roster force-leave [-prune] [-wan] NODE` sends Consul's request:
// PUT /v1/agent/force-leave/NODE with ?prune and ?wan for the flags, and
// exits 0 with no output when the agent says 200.
func TestCLI_ForceLeaveFlagsBecomeQueryParameters(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, r.Method+" "+r.URL.EscapedPath()+" "+r.URL.Query().Encode())
	}))
	defer srv.Close()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"web-7"}, "PUT /v1/agent/force-leave/web-7 "},
		{[]string{"-prune", "web-7"}, "PUT /v1/agent/force-leave/web-7 prune=1"},
		{[]string{"-wan", "-prune", "s2.dc1"}, "PUT /v1/agent/force-leave/s2.dc1 " + url.Values{"prune": {"1"}, "wan": {"1"}}.Encode()},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		args := append([]string{"-http-addr", srv.URL}, c.args...)
		if code := runForceLeave(args, &stdout, &stderr); code != 0 || stdout.Len() != 0 {
			t.Fatalf("force-leave %v: exit %d, stdout %q, stderr %q", c.args, code, stdout.String(), stderr.String())
		}
		mu.Lock()
		last := got[len(got)-1]
		mu.Unlock()
		if last != c.want {
			t.Fatalf("force-leave %v sent %q, want %q", c.args, last, c.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := runForceLeave([]string{"-http-addr", srv.URL}, &stdout, &stderr); code != 1 || !bytes.Contains(stderr.Bytes(), []byte("single node name")) {
		t.Fatalf("force-leave without a node: exit %d, stderr %q", code, stderr.String())
	}
}
