package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkAgentLocal_TTLPassSyncedToCatalog measures the cost of one
// application heartbeat that changes a check's status on a dev agent:
// PUT /v1/agent/check/{pass,fail} over HTTP, then the anti-entropy write
// that carries it into the catalog (SyncNow waits for it). It reports
// heartbeats per second end to end.
func BenchmarkAgentLocal_TTLPassSyncedToCatalog(b *testing.B) {
	cfg := DefaultConfig()
	cfg.ApplyDev()
	cfg.NodeName = "bench-node"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Ports = Ports{DNS: -1} // the others on port 0: the kernel's picks
	a, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	base := "http://" + a.HTTPAddrs()[0]
	put := func(path, body string) {
		req, _ := http.NewRequest("PUT", base+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("PUT %s: %v %v", path, err, resp)
		}
		resp.Body.Close()
	}
	put("/v1/agent/service/register", `{"Name":"hb","Check":{"TTL":"1h"}}`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		put(fmt.Sprintf("/v1/agent/check/%s/service:hb", [2]string{"pass", "fail"}[i%2]), "")
		if err := a.SyncNow(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "heartbeats/s")
}
