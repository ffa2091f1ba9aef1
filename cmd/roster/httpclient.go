package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// The CLI commands other than `agent` talk to an agent's HTTP API, as
// Consul's do, and take Consul's common HTTP API options:
//
//	-http-addr   else CONSUL_HTTP_ADDR, else ROSTER_HTTP_ADDR, else 127.0.0.1:8500
//	-token       else -token-file, else CONSUL_HTTP_TOKEN; sent as X-Consul-Token
//	-datacenter  sent as ?dc= on every request
//	-stale       sent as ?stale on reads (GET), ignored for writes as in Consul

const defaultHTTPAddr = "127.0.0.1:8500"

// apiClient is a minimal client of the agent's HTTP API. Every request is
// built by newRequest, so the common options reach every call.
type apiClient struct {
	base  string
	token string
	dc    string
	stale bool
	http  *http.Client
}

// httpFlags are the common options, registered on each command's FlagSet.
type httpFlags struct {
	addr, token, tokenFile, dc *string
	stale                      *bool
}

// httpAddrFlag registers the common HTTP API options on fs and returns a
// constructor for the client, to call after parsing.
func httpAddrFlag(fs *flag.FlagSet) func() *apiClient {
	f := httpFlags{
		addr:      fs.String("http-addr", "", "Address of the agent's HTTP API (default: $CONSUL_HTTP_ADDR, $ROSTER_HTTP_ADDR or "+defaultHTTPAddr+")."),
		token:     fs.String("token", "", "ACL token to send (default: $CONSUL_HTTP_TOKEN)."),
		tokenFile: fs.String("token-file", "", "File holding the ACL token (default: $CONSUL_HTTP_TOKEN_FILE)."),
		dc:        fs.String("datacenter", "", "Datacenter to query (default: the agent's)."),
		stale:     fs.Bool("stale", false, "Let any server answer reads, not only the leader (faster, may be slightly behind)."),
	}
	return func() *apiClient { return f.client() }
}

func (f httpFlags) client() *apiClient {
	a := firstNonEmpty(*f.addr, os.Getenv("CONSUL_HTTP_ADDR"), os.Getenv("ROSTER_HTTP_ADDR"), defaultHTTPAddr)
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	return &apiClient{base: strings.TrimRight(a, "/"), token: f.resolveToken(), dc: *f.dc, stale: *f.stale,
		http: &http.Client{Timeout: 30 * time.Second}}
}

// resolveToken applies Consul's precedence: -token, -token-file,
// CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE. An unreadable token file
// yields no token; the agent's answer then says what was denied.
func (f httpFlags) resolveToken() string {
	if *f.token != "" {
		return *f.token
	}
	if *f.tokenFile != "" {
		return readToken(*f.tokenFile)
	}
	if t := os.Getenv("CONSUL_HTTP_TOKEN"); t != "" {
		return t
	}
	return readToken(os.Getenv("CONSUL_HTTP_TOKEN_FILE"))
}

func readToken(file string) string {
	if file == "" {
		return ""
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// newRequest builds a request with the common options applied: ?dc= on
// every call, ?stale on reads, the token as X-Consul-Token.
func (c *apiClient) newRequest(method, path string, query url.Values, body io.Reader) (*http.Request, error) {
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	if c.dc != "" && q.Get("dc") == "" {
		q.Set("dc", c.dc)
	}
	if c.stale && method == http.MethodGet && !q.Has("consistent") {
		q.Set("stale", "")
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("X-Consul-Token", c.token)
	}
	return req, nil
}

// send performs req, mapping a transport failure to the CLI's message.
func (c *apiClient) send(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the agent at %s: %w (is it running? set -http-addr or CONSUL_HTTP_ADDR)", c.base, err)
	}
	return resp, nil
}

// do sends a request and decodes a JSON reply into out (if non-nil). A
// non-2xx answer is an error carrying the body, as Consul's CLI shows it.
func (c *apiClient) do(method, path string, query url.Values, out any) error {
	code, body, err := c.rawDo(method, path, query, nil)
	if err != nil {
		return err
	}
	if code/100 != 2 {
		return statusErr(code, body)
	}
	if out == nil || len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding the answer to %s %s: %w", method, path, err)
	}
	return nil
}

// sendJSON is do with a JSON request body and no decoded answer.
func (c *apiClient) sendJSON(method, path string, query url.Values, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	code, out, err := c.rawDo(method, path, query, b)
	if err == nil && code/100 != 2 {
		err = statusErr(code, out)
	}
	return err
}

// rawDo sends body and returns the status and body as they are: unlike
// do a 404 or a `false` is an answer for the caller to read, not an
// error. Only a transport failure is an error.
func (c *apiClient) rawDo(method, path string, query url.Values, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := c.newRequest(method, path, query, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := c.send(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, kvMaxResponseBytes))
	return resp.StatusCode, out, err
}

// statusErr formats a non-2xx answer as Consul's CLI shows it.
func statusErr(code int, body []byte) error {
	return fmt.Errorf("Unexpected response code: %d (%s)", code, strings.TrimSpace(string(body)))
}
