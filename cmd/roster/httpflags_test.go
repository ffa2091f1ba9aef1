package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// httpCommands is every command that talks to the agent's HTTP API, with
// arguments that make it send at least one request.
var httpCommands = [][]string{
	{"members"}, {"info"}, {"join", "127.0.0.1:1"}, {"leave"}, {"force-leave", "n1"},
	{"operator", "raft", "list-peers"}, {"operator", "raft", "remove-peer", "-id", "x"},
	{"operator", "raft", "transfer-leader"},
	{"kv", "get", "k"}, {"kv", "put", "k", "v"}, {"kv", "delete", "k"}, {"kv", "export"},
	{"kv", "import", `[{"key":"k","flags":0,"value":""}]`},
	{"catalog", "services"}, {"catalog", "nodes"},
	{"services", "register", "-name", "web"}, {"services", "deregister", "-id", "web"},
	{"maint"}, {"reload"}, {"event", "-name", "e"},
	{"snapshot", "save", "/dev/null"}, {"snapshot", "restore", "/dev/null"},
}

// recorder is an HTTP server that remembers every request it sees.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, r.Clone(r.Context()))
	rc.mu.Unlock()
	http.Error(w, "recorded", http.StatusInternalServerError)
}

func (rc *recorder) take() []*http.Request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := rc.reqs
	rc.reqs = nil
	return out
}

// Every HTTP command sends -token as X-Consul-Token, -datacenter as ?dc=
// and -stale as ?stale on its reads; CONSUL_HTTP_TOKEN stands in for
// -token.
func TestCLI_CommonHTTPFlagsReachEveryRequest(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	for _, viaEnv := range []bool{false, true} {
		for _, argv := range httpCommands {
			args, env := commonFlagArgs(argv, srv.URL, viaEnv)
			runRosterEnv(t, env, args...)
			reqs := rec.take()
			if len(reqs) == 0 {
				t.Errorf("%v sent no request", argv)
			}
			for _, r := range reqs {
				q := r.URL.Query()
				if got := r.Header.Get("X-Consul-Token"); got != "s3cret" {
					t.Errorf("%v: %s %s carries token %q", argv, r.Method, r.URL, got)
				}
				if q.Get("dc") != "dc9" {
					t.Errorf("%v: %s %s lacks ?dc=dc9", argv, r.Method, r.URL)
				}
				if r.Method == http.MethodGet && !q.Has("stale") && !q.Has("consistent") {
					t.Errorf("%v: read %s lacks ?stale", argv, r.URL)
				}
				if r.Method != http.MethodGet && q.Has("stale") {
					t.Errorf("%v: write %s %s carries ?stale", argv, r.Method, r.URL)
				}
			}
		}
	}
}

// commonFlagArgs inserts the common flags after the (sub)command words.
func commonFlagArgs(argv []string, addr string, tokenViaEnv bool) (args, env []string) {
	words := 1
	switch argv[0] {
	case "operator":
		words = 3
	case "kv", "catalog", "services", "snapshot":
		words = 2
	}
	flags := []string{"-http-addr", strings.TrimPrefix(addr, "http://"), "-datacenter", "dc9", "-stale"}
	if tokenViaEnv {
		env = []string{"CONSUL_HTTP_TOKEN=s3cret"}
	} else {
		flags = append(flags, "-token", "s3cret")
		env = []string{"CONSUL_HTTP_TOKEN=wrong"}
	}
	args = append(append(append([]string{}, argv[:words]...), flags...), argv[words:]...)
	return args, env
}
