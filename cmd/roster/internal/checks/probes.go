package checks

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"roster/catalog"
	"roster/cmd/roster/internal/local"
)

// A probe runs a check once and returns its status and output. ctx carries
// the check's timeout.
type probe func(ctx context.Context) (status, output string)

// newProbe builds the probe for a definition, or an error for a kind this
// agent cannot run.
func newProbe(def local.CheckDefinition, scriptsEnabled bool) (probe, error) {
	switch def.Kind() {
	case local.TypeHTTP:
		return httpProbe(def), nil
	case local.TypeTCP:
		return tcpProbe(def.TCP), nil
	case local.TypeScript:
		if !scriptsEnabled {
			return nil, errors.New("script checks are disabled on this agent (enable_script_checks)")
		}
		args := def.ScriptArgs
		if len(args) == 0 {
			args = def.Args
		}
		return scriptProbe(args, time.Duration(def.Timeout)), nil
	}
	return nil, fmt.Errorf("check kind %q has no runner", def.Kind())
}

// httpProbe: 2xx passing, 429 warning (the service asks for less load),
// anything else or no answer critical (Consul API notes §4.5).
func httpProbe(def local.CheckDefinition) probe {
	transport := &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: def.TLSSkipVerify, ServerName: def.TLSServerName},
		DisableKeepAlives: true,
		Proxy:             nil,
	}
	client := &http.Client{Transport: transport}
	if def.DisableRedirects {
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	method := def.Method
	if method == "" {
		method = http.MethodGet
	}
	return func(ctx context.Context) (string, string) {
		req, err := http.NewRequestWithContext(ctx, method, def.HTTP, strings.NewReader(def.Body))
		if err != nil {
			return catalog.HealthCritical, err.Error()
		}
		for k, vs := range def.Header {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		if req.Header.Get("User-Agent") == "" {
			req.Header.Set("User-Agent", "Consul Health Check")
		}
		if req.Header.Get("Accept") == "" {
			req.Header.Set("Accept", "text/plain, text/*, */*")
		}
		resp, err := client.Do(req)
		if err != nil {
			return catalog.HealthCritical, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, local.MaxCheckOutputBytes))
		output := fmt.Sprintf("HTTP %s %s: %s Output: %s", method, def.HTTP, resp.Status, body)
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode <= 299:
			return catalog.HealthPassing, output
		case resp.StatusCode == http.StatusTooManyRequests:
			return catalog.HealthWarning, output
		}
		return catalog.HealthCritical, output
	}
}

// tcpProbe: a connection that opens is passing.
func tcpProbe(addr string) probe {
	return func(ctx context.Context) (string, string) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return catalog.HealthCritical, err.Error()
		}
		conn.Close()
		return catalog.HealthPassing, fmt.Sprintf("TCP connect %s: Success", addr)
	}
}

// scriptProbe runs a command: exit 0 passing, 1 warning, anything else
// critical; the combined output is the check output. The command runs in
// its own process group so a timeout kills it and everything it started.
func scriptProbe(args []string, timeout time.Duration) probe {
	return func(ctx context.Context) (string, string) {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		// Grandchildren holding the output pipe must not keep us waiting.
		cmd.WaitDelay = time.Second
		out := &cappedBuffer{limit: local.MaxCheckOutputBytes}
		cmd.Stdout, cmd.Stderr = out, out
		err := cmd.Run()
		if ctx.Err() != nil {
			// Consul's wording.
			return catalog.HealthCritical, fmt.Sprintf("Timed out (%s) running check", timeout)
		}
		var exitErr *exec.ExitError
		switch {
		case err == nil:
			return catalog.HealthPassing, out.String()
		case errors.As(err, &exitErr) && exitErr.ExitCode() == 1:
			return catalog.HealthWarning, out.String()
		case errors.As(err, &exitErr):
			return catalog.HealthCritical, out.String()
		}
		return catalog.HealthCritical, err.Error()
	}
}

// cappedBuffer keeps the first limit bytes written and discards the rest
// (the writer never fails, so the command is not killed by SIGPIPE).
type cappedBuffer struct {
	buf       bytes.Buffer
	limit     int
	truncated bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	room := b.limit - b.buf.Len()
	if room < len(p) {
		b.truncated = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	b.buf.Write(p)
	return len(p), nil
}

func (b *cappedBuffer) String() string {
	if b.truncated {
		return b.buf.String() + "\n... (truncated)"
	}
	return b.buf.String()
}
