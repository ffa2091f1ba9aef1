package main

import (
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
// Consul's do. The address comes from -http-addr, else CONSUL_HTTP_ADDR,
// else ROSTER_HTTP_ADDR, else 127.0.0.1:8500.

const defaultHTTPAddr = "127.0.0.1:8500"

// apiClient is a minimal client of the agent's HTTP API.
type apiClient struct {
	base string
	http *http.Client
}

// httpAddrFlag registers -http-addr on fs and returns a constructor for the
// client, to call after parsing.
func httpAddrFlag(fs *flag.FlagSet) func() *apiClient {
	addr := fs.String("http-addr", "", "Address of the agent's HTTP API (default: $CONSUL_HTTP_ADDR, $ROSTER_HTTP_ADDR or "+defaultHTTPAddr+").")
	return func() *apiClient {
		a := *addr
		for _, env := range []string{"CONSUL_HTTP_ADDR", "ROSTER_HTTP_ADDR"} {
			if a == "" {
				a = os.Getenv(env)
			}
		}
		if a == "" {
			a = defaultHTTPAddr
		}
		if !strings.Contains(a, "://") {
			a = "http://" + a
		}
		return &apiClient{base: strings.TrimRight(a, "/"), http: &http.Client{Timeout: 30 * time.Second}}
	}
}

// do sends a request and decodes a JSON reply into out (if non-nil). A
// non-2xx answer is an error carrying the body, as Consul's CLI shows it.
func (c *apiClient) do(method, path string, query url.Values, out any) error {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the agent at %s: %w (is it running? set -http-addr or CONSUL_HTTP_ADDR)", c.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("Unexpected response code: %d (%s)", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if out == nil || len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding the answer to %s %s: %w", method, path, err)
	}
	return nil
}
