package httpapi

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// rateLimiter is a token bucket per client IP: each IP may send burst
// requests at once and rate per second sustained; beyond that it gets 429
// (Consul answers 429 for its RPC rate limit and per-client connection
// cap). Off when rate is 0.
//
// The map of buckets is bounded: when it reaches maxRateClients, buckets
// that have refilled completely (their clients went quiet) are dropped;
// if none has, the whole map is reset, which at worst lets a client burst
// once more. Memory never grows with the number of distinct clients.
type rateLimiter struct {
	rate  float64 // tokens per second; 0 = unlimited
	burst float64

	// mu guards buckets.
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

const maxRateClients = 65536

func newRateLimiter(rate float64, burst int) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(burst), buckets: map[string]*bucket{}}
}

// allow takes one token from ip's bucket at time now.
func (l *rateLimiter) allow(ip string, now time.Time) bool {
	if l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[ip]
	if b == nil {
		if len(l.buckets) >= maxRateClients {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[ip] = b
	}
	b.refill(now, l.rate, l.burst)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (b *bucket) refill(now time.Time, rate, burst float64) {
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = min(burst, b.tokens+elapsed*rate)
		b.last = now
	}
}

// evict drops full buckets, or everything if none is full. Caller holds mu.
func (l *rateLimiter) evict(now time.Time) {
	for ip, b := range l.buckets {
		b.refill(now, l.rate, l.burst)
		if b.tokens >= l.burst {
			delete(l.buckets, ip)
		}
	}
	if len(l.buckets) >= maxRateClients {
		clear(l.buckets)
	}
}

// clientIP is the request's peer address without the port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
