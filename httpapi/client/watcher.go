package client

import (
	"compress/gzip"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"roster/catalog"
)

// Config configures a Watcher. Zero values mean the documented defaults.
type Config struct {
	// Address of the agent's HTTP API: "host:port" or a URL
	// ("http://10.0.0.1:8500"). Default 127.0.0.1:8500.
	Address string
	// HTTPClient makes the requests. Default: a client without an overall
	// timeout (pulls block for up to Wait on the server); requests end
	// with the context passed to Sync or Watch.
	HTTPClient *http.Client
	// Datacenter to mirror ("" = the agent's) and the ACL token.
	Datacenter, Token string
	// Stale lets any server answer (?stale): spreads thousands of watchers
	// over every server, at the price of reading slightly behind.
	Stale bool
	// Wait is how long one delta pull may block on the server waiting for
	// a change. Default 5m (Consul's default blocking wait).
	Wait time.Duration
	// MinBackoff and MaxBackoff bound the jittered exponential backoff
	// after a failed pull. Defaults 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// Seed seeds the backoff jitter; 0 picks a random seed.
	Seed uint64
	// JSONDeltas asks for deltas in the JSON form instead of the compact
	// binary one (compact.go). Both carry the same changes; the compact
	// form is ~10× smaller on the wire.
	JSONDeltas bool
	// OnError, if set, is called by Watch with the error of every failed
	// pull before it backs off (on Watch's goroutine; keep it short). Watch
	// retries every error, including ones that need an operator, such as
	// catalog.ErrHashScheme (client and server on different releases).
	OnError func(error)
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Wait < 0:
		return fmt.Errorf("client: Config.Wait is %v; use 0 for the default (5m) or a positive duration", c.Wait)
	case c.MinBackoff < 0 || c.MaxBackoff < 0:
		return fmt.Errorf("client: Config.MinBackoff (%v) and MaxBackoff (%v) must not be negative", c.MinBackoff, c.MaxBackoff)
	case c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff:
		return fmt.Errorf("client: Config.MinBackoff (%v) exceeds MaxBackoff (%v)", c.MinBackoff, c.MaxBackoff)
	}
	if _, err := baseURL(c.Address); err != nil {
		return err
	}
	return nil
}

func baseURL(addr string) (*url.URL, error) {
	if addr == "" {
		addr = "127.0.0.1:8500"
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("client: Config.Address %q is not host:port or an http(s) URL", addr)
	}
	return u, nil
}

// Metrics count a Watcher's work since it was created.
type Metrics struct {
	// DeltaPulls and FullPulls are completed pulls of each kind.
	DeltaPulls, FullPulls uint64
	// NotModified counts delta pulls answered 304 (nothing to apply).
	NotModified uint64
	// Fallbacks counts full pulls forced by a delta that could not be used;
	// Truncated, Gaps and HashMismatches say why.
	Fallbacks, Truncated, Gaps, HashMismatches uint64
	// Errors counts failed pulls (network, server errors).
	Errors uint64
	// SchemeMismatches counts responses refused because the server
	// computes the hashcode with another scheme (catalog.ErrHashScheme);
	// they cause no fallback, and a full registry refused once is asked
	// for again with If-None-Match, so while it stands the retries are 304s.
	SchemeMismatches uint64
	// Bytes is the response body bytes received (compressed, as sent),
	// and DeltaBytes the part of it spent on delta pulls.
	Bytes, DeltaBytes uint64
	// WireBytes and DeltaWireBytes are the same on the wire: whole
	// responses, status line, headers and chunk framing included, as read
	// from the connection. Counted only when the Watcher makes its own
	// HTTP client (Config.HTTPClient nil); 0 otherwise.
	WireBytes, DeltaWireBytes uint64
}

// Update is what one Sync did to the mirror.
type Update struct {
	// Index and Hash are the mirror's after the update.
	Index uint64
	Hash  string
	// Full is true when the mirror was (re)loaded from a full pull; Changes
	// is then empty and the caller should re-read the whole mirror.
	Full bool
	// Changes are the changes a delta applied (none when nothing changed).
	Changes []catalog.Change
}

// Watcher keeps a catalog.Mirror current with delta pulls. Sync and Watch
// must not run concurrently; the readers (Instances, Index, Hash, Metrics)
// may be called from any goroutine.
type Watcher struct {
	cfg  Config
	base *url.URL
	http *http.Client
	wire *wireCounter // nil with a caller's HTTPClient

	// mu guards mirror, loaded, metrics and rnd.
	mu      sync.Mutex
	mirror  *catalog.Mirror
	loaded  bool
	metrics Metrics
	rnd     *rand.Rand

	// refused is the hash of the last full registry refused for its hash
	// scheme and refusedErr why; only Sync's goroutine uses them.
	refused    string
	refusedErr error
}

// New validates cfg and returns a Watcher with an empty mirror.
func New(cfg Config) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base, _ := baseURL(cfg.Address)
	if cfg.Wait == 0 {
		cfg.Wait = 5 * time.Minute
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = max(10*time.Second, cfg.MinBackoff)
	}
	if cfg.Seed == 0 {
		var b [8]byte
		crand.Read(b[:])
		cfg.Seed = binary.LittleEndian.Uint64(b[:])
	}
	w := &Watcher{cfg: cfg, base: base, http: cfg.HTTPClient, mirror: catalog.NewMirror(),
		rnd: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	if w.http == nil {
		w.wire = &wireCounter{}
		w.http = &http.Client{Transport: w.wire.transport()}
	}
	return w, nil
}

// Instances returns copies of the mirrored instances of service (all if
// ""), sorted by service, node and ID.
func (w *Watcher) Instances(service string) []catalog.Instance {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mirror.Instances(service)
}

// Index is the registry index the mirror is current as of.
func (w *Watcher) Index() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mirror.Index()
}

// Hash is the mirror's hashcode.
func (w *Watcher) Hash() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mirror.Hash()
}

// Metrics returns a copy of the counters.
func (w *Watcher) Metrics() Metrics {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.metrics
}

func (w *Watcher) count(f func(m *Metrics)) {
	w.mu.Lock()
	f(&w.metrics)
	w.mu.Unlock()
}

// Sync brings the mirror up to date once: a full pull the first time, a
// blocking delta pull (up to Config.Wait) afterwards, falling back to one
// full pull when the delta cannot be used.
func (w *Watcher) Sync(ctx context.Context) (Update, error) {
	w.mu.Lock()
	loaded, index, hash := w.loaded, w.mirror.Index(), w.mirror.Hash()
	w.mu.Unlock()
	if !loaded {
		return w.fullPull(ctx)
	}
	up, err := w.deltaPull(ctx, index, hash)
	if errors.Is(err, errFallback) {
		w.count(func(m *Metrics) { m.Fallbacks++ })
		return w.fullPull(ctx)
	}
	return up, err
}

// errFallback marks a delta that cannot be used: pull the full registry.
var errFallback = errors.New("client: delta unusable; pulling the full registry")

// Watch runs Sync until ctx ends, calling fn after every update that
// changed the mirror (fn runs on Watch's goroutine; keep it short). Failed
// pulls are reported to Config.OnError and retried after a jittered
// exponential backoff. It returns ctx.Err().
func (w *Watcher) Watch(ctx context.Context, fn func(Update)) error {
	failures := 0
	for ctx.Err() == nil {
		up, err := w.Sync(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if w.cfg.OnError != nil {
				w.cfg.OnError(err)
			}
			failures++
			if !sleepCtx(ctx, w.backoff(failures)) {
				break
			}
			continue
		}
		failures = 0
		if fn != nil && (up.Full || len(up.Changes) > 0) {
			fn(up)
		}
	}
	return ctx.Err()
}

// backoff is min(MaxBackoff, MinBackoff·2^(n-1)), then uniformly jittered
// down to half, so watchers that failed together do not retry together.
func (w *Watcher) backoff(failures int) time.Duration {
	d := w.cfg.MinBackoff << min(failures-1, 20)
	if d <= 0 || d > w.cfg.MaxBackoff {
		d = w.cfg.MaxBackoff
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return d/2 + time.Duration(w.rnd.Int64N(int64(d/2)+1))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// fullPull pulls the full registry and loads it. A registry refused for
// its hash scheme is remembered: the next full pull sends its hash as
// If-None-Match, and a 304 (the server's registry, so its scheme, is as it
// was) is refused again without a body.
func (w *Watcher) fullPull(ctx context.Context) (Update, error) {
	resp, body, _, err := w.get(ctx, "/v1/roster/registry", nil, w.refused)
	if err != nil {
		return Update{}, err
	}
	if resp.StatusCode == http.StatusNotModified && w.refused != "" {
		w.count(func(m *Metrics) { m.SchemeMismatches++ })
		return Update{}, w.refusedErr
	}
	if resp.StatusCode != http.StatusOK {
		w.count(func(m *Metrics) { m.Errors++ })
		return Update{}, fmt.Errorf("client: full pull: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var reg catalog.Registry
	if err := json.Unmarshal(body, &reg); err != nil {
		w.count(func(m *Metrics) { m.Errors++ })
		return Update{}, fmt.Errorf("client: full pull: decoding the registry: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.metrics.FullPulls++
	w.refused, w.refusedErr = "", nil
	if err := w.mirror.Load(reg); err != nil {
		err = fmt.Errorf("client: full pull: %w", err)
		if errors.Is(err, catalog.ErrHashScheme) {
			// The mirror is untouched (and stays loaded if it was). An
			// empty registry hashes to zero in every scheme, so its hash
			// cannot tell an upgraded server: it is pulled again, cheaply.
			w.metrics.SchemeMismatches++
			if len(reg.Instances) > 0 {
				w.refused, w.refusedErr = reg.Hash, err
			}
			return Update{}, err
		}
		w.loaded = false
		w.metrics.HashMismatches++
		return Update{}, err
	}
	w.loaded = true
	return Update{Index: w.mirror.Index(), Hash: w.mirror.Hash(), Full: true}, nil
}

func (w *Watcher) deltaPull(ctx context.Context, index uint64, hash string) (Update, error) {
	q := url.Values{"since": {strconv.FormatUint(index, 10)}, "wait": {fmt.Sprintf("%dms", w.cfg.Wait.Milliseconds())}}
	if !w.cfg.JSONDeltas {
		q.Set("format", "compact")
	}
	resp, body, n, err := w.get(ctx, "/v1/roster/registry/delta", q, hash)
	if err != nil {
		return Update{}, err
	}
	w.count(func(m *Metrics) { m.DeltaBytes += uint64(n.body); m.DeltaWireBytes += uint64(n.wire) })
	switch resp.StatusCode {
	case http.StatusGone:
		w.count(func(m *Metrics) { m.Truncated++ })
		return Update{}, errFallback
	case http.StatusNotModified:
		return w.notModified(resp, index, hash)
	case http.StatusOK:
	default:
		w.count(func(m *Metrics) { m.Errors++ })
		return Update{}, fmt.Errorf("client: delta pull: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	d, err := decodeDelta(body)
	if err != nil {
		w.count(func(m *Metrics) { m.Errors++ })
		return Update{}, fmt.Errorf("client: delta pull: decoding: %w", err)
	}
	return w.apply(d)
}

// decodeDelta reads either form: a JSON body starts with '{', a compact
// one with its version byte.
func decodeDelta(body []byte) (catalog.Delta, error) {
	if len(body) > 0 && body[0] == '{' {
		var d catalog.Delta
		err := json.Unmarshal(body, &d)
		return d, err
	}
	return DecodeCompactDelta(body)
}

// notModified handles 304: no registry change; the index moves to the
// server's (X-Consul-Index) by applying an empty delta, which also checks
// that the hash still holds. The server's hash equals the mirror's, so its
// scheme is taken to be the mirror's too.
func (w *Watcher) notModified(resp *http.Response, index uint64, hash string) (Update, error) {
	w.count(func(m *Metrics) { m.NotModified++ })
	to, err := strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
	if err != nil || to <= index {
		w.count(func(m *Metrics) { m.DeltaPulls++ })
		return Update{Index: index, Hash: hash}, nil
	}
	return w.apply(catalog.Delta{From: index, To: to, Hash: hash, HashScheme: catalog.HashScheme})
}

func (w *Watcher) apply(d catalog.Delta) (Update, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.metrics.DeltaPulls++
	if err := w.mirror.Apply(d); err != nil {
		if errors.Is(err, catalog.ErrHashScheme) {
			// Not a fallback: a full pull would be refused as well. The
			// mirror is untouched; Watch backs off and asks again.
			w.metrics.SchemeMismatches++
			return Update{}, fmt.Errorf("client: delta pull: %w", err)
		}
		if errors.Is(err, catalog.ErrGap) {
			w.metrics.Gaps++
		} else {
			w.metrics.HashMismatches++
		}
		return Update{}, fmt.Errorf("%w: %v", errFallback, err)
	}
	return Update{Index: w.mirror.Index(), Hash: w.mirror.Hash(), Changes: d.Changes}, nil
}

// sizes are one response's bytes: its body as sent (compressed) and the
// whole response on the wire (0 without a wireCounter).
type sizes struct{ body, wire int64 }

// get makes one request and returns its body, decompressed, and its
// sizes. It asks for gzip itself so it can count the compressed bytes.
func (w *Watcher) get(ctx context.Context, path string, q url.Values, ifNoneMatch string) (*http.Response, []byte, sizes, error) {
	if q == nil {
		q = url.Values{}
	}
	if w.cfg.Datacenter != "" {
		q.Set("dc", w.cfg.Datacenter)
	}
	if w.cfg.Stale {
		q.Set("stale", "")
	}
	u := *w.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, sizes{}, err
	}
	req.Header.Set("Accept-Encoding", "gzip")
	if w.cfg.Token != "" {
		req.Header.Set("X-Consul-Token", w.cfg.Token)
	}
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", `"`+ifNoneMatch+`"`)
	}
	wireBefore := w.wire.total()
	resp, err := w.http.Do(req)
	if err != nil {
		w.count(func(m *Metrics) { m.Errors++ })
		return nil, nil, sizes{}, fmt.Errorf("client: GET %s: %w", path, err)
	}
	body, n, err := readBody(resp)
	resp.Body.Close()
	// Sync is sequential, so what the connections read in between is this
	// response (the server sends nothing unasked).
	sz := sizes{body: n, wire: w.wire.total() - wireBefore}
	w.count(func(m *Metrics) { m.Bytes += uint64(sz.body); m.WireBytes += uint64(sz.wire) })
	if err != nil {
		w.count(func(m *Metrics) { m.Errors++ })
		return nil, nil, sz, fmt.Errorf("client: GET %s: reading the response: %w", path, err)
	}
	return resp, body, sz, nil
}

// readBody returns the decompressed body and the bytes read off the wire.
func readBody(resp *http.Response) ([]byte, int64, error) {
	cr := &countingReader{r: resp.Body}
	var r io.Reader = cr
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(cr)
		if err != nil {
			return nil, cr.n, err
		}
		r = zr
	}
	body, err := io.ReadAll(r)
	return body, cr.n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
