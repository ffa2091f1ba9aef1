package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

type fakeAgent struct{ self Self }

func (f *fakeAgent) Self() Self            { return f.self }
func (f *fakeAgent) Members(bool) []Member { return []Member{f.self.Member} }

// startServer serves a Server on a real loopback socket and returns its
// base URL; the server is shut down when the test ends.
func startServer(t testing.TB, cfg Config) string {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		// The client may hold a connection it dialed but never used; the
		// server counts it as new, not idle, and Shutdown would wait 5s
		// for it. Closing the client's idle connections ends it at once.
		http.DefaultClient.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + l.Addr().String()
}

func testAgent() *fakeAgent {
	return &fakeAgent{self: Self{
		Config: SelfConfig{Datacenter: "dc1", NodeName: "n1", NodeID: "id-1", Server: true, Version: "0.1.0"},
		Member: Member{Name: "n1", Addr: "127.0.0.1", Port: 8301, Status: 1, Tags: map[string]string{"role": "consul"}},
		Stats:  map[string]map[string]string{"agent": {"services": "0"}},
	}}
}

func get(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestAgentSelf_EveryTopLevelValueIsAnObjectOrNull(t *testing.T) {
	base := startServer(t, Config{Agent: testAgent()})
	resp, body := get(t, "GET", base+"/v1/agent/self")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// This is how the official Go client decodes it.
	var self map[string]map[string]any
	if err := json.Unmarshal([]byte(body), &self); err != nil {
		t.Fatalf("client-style decode failed: %v\n%s", err, body)
	}
	if name, ok := self["Config"]["NodeName"].(string); !ok || name != "n1" {
		t.Fatalf("Config.NodeName = %#v, want string n1", self["Config"]["NodeName"])
	}
	if self["Config"]["Datacenter"] != "dc1" || self["Config"]["Server"] != true {
		t.Fatalf("Config = %v", self["Config"])
	}
	if self["Member"]["Name"] != "n1" || self["Member"]["Status"] != float64(1) {
		t.Fatalf("Member = %v", self["Member"])
	}
	if strings.HasSuffix(body, "\n") {
		t.Fatal("compact output must not end in a newline")
	}
}

func TestRouter_UnknownPathIs404WithConsulMessage(t *testing.T) {
	base := startServer(t, Config{Agent: testAgent()})
	resp, body := get(t, "GET", base+"/v1/nope")
	if resp.StatusCode != 404 || body != "Invalid URL path: not a recognized HTTP API endpoint" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestRouter_WrongMethodIs405WithAllow(t *testing.T) {
	base := startServer(t, Config{Agent: testAgent()})
	resp, body := get(t, "DELETE", base+"/v1/agent/self")
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "OPTIONS,GET" || body != "method DELETE not allowed" {
		t.Fatalf("got %d allow=%q body=%q", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
	resp, body = get(t, "OPTIONS", base+"/v1/agent/self")
	if resp.StatusCode != 200 || resp.Header.Get("Allow") != "OPTIONS,GET" || body != "" {
		t.Fatalf("OPTIONS got %d allow=%q body=%q", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
}

func TestPretty_IndentsWithFourSpacesAndNewline(t *testing.T) {
	base := startServer(t, Config{Agent: testAgent()})
	_, body := get(t, "GET", base+"/v1/agent/members?pretty")
	if !strings.HasPrefix(body, "[\n    {\n        \"Name\": \"n1\"") || !strings.HasSuffix(body, "]\n") {
		t.Fatalf("pretty body:\n%s", body)
	}
}

func TestConfig_ValidateNamesMissingAgent(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "Agent") {
		t.Fatalf("New(Config{}) error = %v, want one naming Agent", err)
	}
}

func TestRouter_HandlerPanicBecomes500AndServerSurvives(t *testing.T) {
	s, err := New(Config{Agent: testAgent()})
	if err != nil {
		t.Fatal(err)
	}
	s.router = newRouter(append(s.routes(), route{path: "/v1/boom", methods: []string{"GET"},
		handle: func(http.ResponseWriter, *http.Request, string) (any, error) { panic("boom") }}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	defer s.Shutdown(context.Background())
	base := "http://" + l.Addr().String()
	resp, body := get(t, "GET", base+"/v1/boom")
	if resp.StatusCode != 500 || !strings.Contains(body, "internal error") {
		t.Fatalf("panic answered %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, "GET", base+"/v1/agent/self"); resp.StatusCode != 200 {
		t.Fatalf("server did not survive a handler panic: %d", resp.StatusCode)
	}
	if s.panics.Load() != 1 {
		t.Fatalf("panics counted %d, want 1", s.panics.Load())
	}
}
