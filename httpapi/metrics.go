package httpapi

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// /v1/agent/metrics: the agent's counters, gauges and latency summaries, as
// Consul's JSON (go-metrics' in-memory sink shape) or, with
// ?format=prometheus, the Prometheus text exposition format.

// MetricKind says how a Metric is exposed.
type MetricKind uint8

// Kinds of metrics.
const (
	// Counter only goes up (Prometheus counter; a Consul "Counters" entry).
	Counter MetricKind = iota + 1
	// Gauge is a current value (Prometheus gauge; a Consul "Gauges" entry).
	Gauge
	// Summary is a distribution of observations, in milliseconds for
	// latencies (Prometheus summary with _sum and _count; a Consul
	// "Samples" entry).
	Summary
)

// Metric is one series. Name is dotted as in Consul ("roster.raft.apply");
// Prometheus output replaces dots with underscores.
type Metric struct {
	Name   string
	Kind   MetricKind
	Help   string
	Labels map[string]string
	// Value is a counter's or gauge's value.
	Value float64
	// Count, Sum, Min, Max describe a Summary's observations.
	Count    uint64
	Sum      float64
	Min, Max float64
}

// MetricsSource is what the agent plugs in: a snapshot of every
// subsystem's metrics (raft, swim, rpc, catalog). Called per request; it
// must return copies.
type MetricsSource interface {
	Metrics() []Metric
}

// httpStats are the HTTP server's own metrics.
type httpStats struct {
	// mu guards byStatus and latency.
	mu       sync.Mutex
	byStatus map[int]uint64
	latency  Metric
}

func newHTTPStats() *httpStats {
	return &httpStats{
		byStatus: map[int]uint64{},
		latency: Metric{Name: "roster.http.request_ms", Kind: Summary,
			Help: "HTTP request latency in milliseconds", Min: math.Inf(1), Max: math.Inf(-1)},
	}
}

func (h *httpStats) observe(status int, d time.Duration) {
	ms := float64(d.Microseconds()) / 1000
	h.mu.Lock()
	defer h.mu.Unlock()
	h.byStatus[status]++
	h.latency.Count++
	h.latency.Sum += ms
	h.latency.Min = min(h.latency.Min, ms)
	h.latency.Max = max(h.latency.Max, ms)
}

func (h *httpStats) metrics() []Metric {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := []Metric{h.latency}
	if out[0].Count == 0 {
		out[0].Min, out[0].Max = 0, 0
	}
	for code, n := range h.byStatus {
		out = append(out, Metric{Name: "roster.http.requests", Kind: Counter,
			Help: "HTTP requests by status code", Labels: map[string]string{"code": strconv.Itoa(code)}, Value: float64(n)})
	}
	return out
}

// allMetrics merges the agent's metrics with the HTTP server's, sorted by
// name and labels so output is stable.
func (s *Server) allMetrics() []Metric {
	var ms []Metric
	if s.cfg.Metrics != nil {
		ms = append(ms, s.cfg.Metrics.Metrics()...)
	}
	ms = append(ms, s.stats.metrics()...)
	ms = append(ms, Metric{Name: "roster.http.cache_hits", Kind: Counter, Help: "Responses served from the encoded-response cache", Value: float64(s.cache.hits.Load())})
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].Name != ms[j].Name {
			return ms[i].Name < ms[j].Name
		}
		return labelString(ms[i].Labels) < labelString(ms[j].Labels)
	})
	return ms
}

func (s *Server) agentMetrics(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	ms := s.allMetrics()
	if r.URL.Query().Get("format") == "prometheus" {
		return &rawBody{status: http.StatusOK, contentType: "text/plain; version=0.0.4; charset=utf-8", body: prometheusText(ms)}, nil
	}
	return consulMetrics(ms, time.Now()), nil
}

// prometheusText writes the text exposition format (version 0.0.4).
func prometheusText(ms []Metric) []byte {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	lastName := ""
	for _, m := range ms {
		name := promName(m.Name)
		if name != lastName {
			if m.Help != "" {
				fmt.Fprintf(w, "# HELP %s %s\n", name, strings.ReplaceAll(m.Help, "\n", " "))
			}
			fmt.Fprintf(w, "# TYPE %s %s\n", name, promType(m.Kind))
			lastName = name
		}
		labels := promLabels(m.Labels)
		if m.Kind == Summary {
			fmt.Fprintf(w, "%s_sum%s %s\n", name, labels, promFloat(m.Sum))
			fmt.Fprintf(w, "%s_count%s %d\n", name, labels, m.Count)
			continue
		}
		fmt.Fprintf(w, "%s%s %s\n", name, labels, promFloat(m.Value))
	}
	w.Flush()
	return buf.Bytes()
}

func promType(k MetricKind) string {
	switch k {
	case Counter:
		return "counter"
	case Summary:
		return "summary"
	}
	return "gauge"
}

// promName maps a dotted name to Prometheus' [a-zA-Z_:][a-zA-Z0-9_:]*.
func promName(name string) string {
	b := []byte(name)
	for i, c := range b {
		ok := c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}

func promLabels(labels map[string]string) string {
	if len(labels) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(labels))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%s", promName(k), strconv.Quote(labels[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func promFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func labelString(labels map[string]string) string { return promLabels(labels) }

// Consul's /v1/agent/metrics JSON (go-metrics MetricsSummary).
type consulMetricsSummary struct {
	Timestamp string
	Gauges    []consulGauge
	Points    []struct{}
	Counters  []consulSampled
	Samples   []consulSampled
}

type consulGauge struct {
	Name   string
	Value  float64
	Labels map[string]string
}

type consulSampled struct {
	Name   string
	Count  uint64
	Rate   float64
	Sum    float64
	Min    float64
	Max    float64
	Mean   float64
	Stddev float64
	Labels map[string]string
}

func consulMetrics(ms []Metric, now time.Time) consulMetricsSummary {
	out := consulMetricsSummary{Timestamp: now.UTC().Truncate(10 * time.Second).String(),
		Gauges: []consulGauge{}, Points: []struct{}{}, Counters: []consulSampled{}, Samples: []consulSampled{}}
	for _, m := range ms {
		labels := m.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		switch m.Kind {
		case Counter:
			out.Counters = append(out.Counters, consulSampled{Name: m.Name, Count: uint64(m.Value), Sum: m.Value,
				Min: m.Value, Max: m.Value, Mean: m.Value, Labels: labels})
		case Summary:
			mean := 0.0
			if m.Count > 0 {
				mean = m.Sum / float64(m.Count)
			}
			out.Samples = append(out.Samples, consulSampled{Name: m.Name, Count: m.Count, Sum: m.Sum,
				Min: m.Min, Max: m.Max, Mean: mean, Labels: labels})
		default:
			out.Gauges = append(out.Gauges, consulGauge{Name: m.Name, Value: m.Value, Labels: labels})
		}
	}
	return out
}
