package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"roster/internal/testkit"
)

// silentServer accepts connections and never answers. With read it
// drains and reports each connection's close on closed; without, it reads
// nothing at all, so a client's large writes block, until the test ends.
func silentServer(t *testing.T, read bool) (addr string, closed chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed = make(chan struct{}, 16)
	stop := make(chan struct{})
	var conns sync.WaitGroup
	t.Cleanup(func() { close(stop); l.Close(); conns.Wait() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer c.Close()
				if read {
					io.Copy(io.Discard, c) // returns when the client closes
					closed <- struct{}{}
					return
				}
				<-stop
			}()
			if !read {
				c.(*net.TCPConn).SetReadBuffer(4 << 10)
			}
		}
	}()
	return l.Addr().String(), closed
}

func TestPool_DeadlineAgainstServerThatNeverAnswers(t *testing.T) {
	addr, closed := silentServer(t, true)
	pool := newClient(t, PoolConfig{ProbeTimeout: 200 * time.Millisecond})
	start := time.Now()
	err := pool.Call(ctxTimeout(t, 200*time.Millisecond), addr, "Status.Ping", struct{}{}, &struct{}{})
	elapsed := time.Since(start)
	var te *TransportError
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a TransportError wrapping context.DeadlineExceeded", err)
	}
	if elapsed > 5*time.Second { // generous: the point is "returns", not how fast
		t.Fatalf("call returned after %v with a 200ms deadline", elapsed)
	}
	if st := pool.Stats(); st.Timeouts != 1 || st.Abandoned != 1 {
		t.Fatalf("stats %+v, want one timeout, one abandoned call", st)
	}
	// The liveness probe goes unanswered too, so the connection goes.
	testkit.WaitFor(t, 10*time.Second, "the dead connection to be evicted", func() error {
		if st := pool.Stats(); st.Evictions != 1 || st.Conns != 0 {
			return fmt.Errorf("stats %+v, want one eviction, no connection kept", st)
		}
		return nil
	})
	select {
	case <-closed: // the poisoned connection really was closed
	case <-time.After(10 * time.Second):
		t.Fatal("server never saw the timed-out connection close")
	}
}

// A server that stops reading makes net/rpc's synchronous write block
// inside Client.Go; the deadline must still end the call.
func TestPool_DeadlineWhileWriteIsBlocked(t *testing.T) {
	addr, _ := silentServer(t, false)
	// Small socket buffers so a modest request fills them.
	smallBuf := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			c.(*net.TCPConn).SetWriteBuffer(4 << 10)
		}
		return c, err
	}
	pool := newClient(t, PoolConfig{Dial: smallBuf})
	big := strings.Repeat("x", 2<<20) // far beyond the socket buffers
	start := time.Now()
	err := pool.Call(ctxTimeout(t, 300*time.Millisecond), addr, "Status.Ping", big, &struct{}{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("call returned after %v with a 300ms deadline", elapsed)
	}
	testkit.WaitFor(t, 10*time.Second, "the blocked connection to be evicted", func() error {
		if st := pool.Stats(); st.Evictions != 1 || st.Conns != 0 {
			return fmt.Errorf("stats %+v, want the blocked connection evicted", st)
		}
		return nil
	})
}

// gate is an endpoint whose calls block until released, recording the
// most calls ever inside at once.
type gate struct {
	mu        sync.Mutex // guards inside, maxInside
	inside    int
	maxInside int
	release   chan struct{}
}

func (g *gate) Wait(args int, reply *int) error {
	g.mu.Lock()
	g.inside++
	g.maxInside = max(g.maxInside, g.inside)
	g.mu.Unlock()
	<-g.release
	g.mu.Lock()
	g.inside--
	g.mu.Unlock()
	*reply = args
	return nil
}

// Block is Wait shaped as a blocking query.
func (g *gate) Block(args *GetRequest, reply *GetResponse) error {
	var n int
	g.Wait(0, &n)
	reply.Index = args.MinQueryIndex + 1
	return nil
}

func (g *gate) counts() (inside, maxInside int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inside, g.maxInside
}

func TestPool_LimitsConcurrentCallsPerServer(t *testing.T) {
	const limit, callers = 3, 10
	g := &gate{release: make(chan struct{})}
	srv := startServer(t, Config{}, func(s *Server) { s.Register("Gate", g) })
	addr := srv.Addr().String()
	pool := newClient(t, PoolConfig{MaxInFlightPerServer: limit})
	errs := make(chan error, callers)
	for i := range callers {
		go func() {
			var reply int
			errs <- pool.Call(ctxTimeout(t, 30*time.Second), addr, "Gate.Wait", i, &reply)
		}()
	}
	testkit.WaitFor(t, 10*time.Second, "the first calls to fill the limit", func() error {
		if in, _ := g.counts(); in != limit {
			return fmt.Errorf("%d calls inside, want %d", in, limit)
		}
		return nil
	})
	// A caller arriving now waits for a slot, and its deadline bounds that.
	err := pool.Call(ctxTimeout(t, 100*time.Millisecond), addr, "Gate.Wait", -1, new(int))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "call slots") {
		t.Fatalf("err = %v, want a deadline while waiting for a call slot", err)
	}
	close(g.release)
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, maxIn := g.counts(); maxIn != limit {
		t.Fatalf("at most %d calls were inside at once, want exactly the limit %d", maxIn, limit)
	}
	if st := pool.Stats(); st.Dials != 1 {
		t.Fatalf("stats %+v: a slot wait must not poison the connection", st)
	}
}

func TestPool_ReusesOneConnectionAndKeepsItOnEndpointErrors(t *testing.T) {
	tc := startCluster(t, 1, clusterOpts{})
	pool := newClient(t, PoolConfig{})
	for range 20 {
		if err := pool.Call(ctxTimeout(t, 5*time.Second), tc.w.addrs[0], "Status.Ping", struct{}{}, &struct{}{}); err != nil {
			t.Fatal(err)
		}
		if err := pool.Call(ctxTimeout(t, 5*time.Second), tc.w.addrs[0], "KV.Fail", &PutRequest{}, &PutResponse{}); err == nil {
			t.Fatal("KV.Fail succeeded")
		}
	}
	if st := pool.Stats(); st.Dials != 1 || st.EndpointErrors != 20 || st.Evictions != 0 || st.Conns != 1 {
		t.Fatalf("stats %+v, want one dial for 40 calls and no eviction", st)
	}
}

// switchDialer sends every dial for a symbolic address to whichever real
// server is current, so a test can replace a server without port reuse.
type switchDialer struct {
	mu     sync.Mutex // guards target
	target string
}

func (d *switchDialer) set(addr string) { d.mu.Lock(); d.target = addr; d.mu.Unlock() }

func (d *switchDialer) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	d.mu.Lock()
	target := d.target
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, target)
}

func TestPool_EvictsBrokenConnectionAndRedials(t *testing.T) {
	first := startServer(t, Config{}, nil)
	sw := &switchDialer{}
	sw.set(first.Addr().String())
	pool := newClient(t, PoolConfig{Dial: sw.dial})
	ping := func() error {
		return pool.Call(ctxTimeout(t, 5*time.Second), "server-a", "Status.Ping", struct{}{}, &struct{}{})
	}
	if err := ping(); err != nil {
		t.Fatal(err)
	}
	first.Shutdown(ctxTimeout(t, 5*time.Second))
	var te *TransportError
	if err := ping(); !errors.As(err, &te) {
		t.Fatalf("call to a stopped server: %v, want a TransportError", err)
	}
	second := startServer(t, Config{}, nil)
	sw.set(second.Addr().String())
	if err := ping(); err != nil {
		t.Fatalf("call after the server came back: %v", err)
	}
	if st := pool.Stats(); st.Dials != 2 || st.Evictions != 1 {
		t.Fatalf("stats %+v, want the broken connection evicted and one redial", st)
	}
}

func TestPool_ReapsIdleConnections(t *testing.T) {
	srv := startServer(t, Config{}, nil)
	pool := newClient(t, PoolConfig{IdleTimeout: time.Hour})
	addr := srv.Addr().String()
	if err := pool.Call(ctxTimeout(t, 5*time.Second), addr, "Status.Ping", struct{}{}, &struct{}{}); err != nil {
		t.Fatal(err)
	}
	if n := pool.reapIdle(time.Now()); n != 0 {
		t.Fatalf("reaped %d fresh connections", n)
	}
	if n := pool.reapIdle(time.Now().Add(2 * time.Hour)); n != 1 {
		t.Fatalf("reaped %d, want the idle connection", n)
	}
	testkit.WaitFor(t, 5*time.Second, "server to see the reaped connection close", func() error {
		if a := srv.Stats().Active; a != 0 {
			return fmt.Errorf("%d active connections", a)
		}
		return nil
	})
	if err := pool.Call(ctxTimeout(t, 5*time.Second), addr, "Status.Ping", struct{}{}, &struct{}{}); err != nil {
		t.Fatal(err)
	}
	if st := pool.Stats(); st.Dials != 2 || st.IdleReaped != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPool_ShutdownFailsInFlightAndLaterCalls(t *testing.T) {
	g := &gate{release: make(chan struct{})}
	defer close(g.release)
	srv := startServer(t, Config{}, func(s *Server) { s.Register("Gate", g) })
	pool, err := NewPool(PoolConfig{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	inflight := make(chan error, 1)
	go func() {
		inflight <- pool.Call(ctxTimeout(t, 30*time.Second), srv.Addr().String(), "Gate.Wait", 1, new(int))
	}()
	testkit.WaitFor(t, 10*time.Second, "the call to be in flight", func() error {
		if in, _ := g.counts(); in != 1 {
			return errors.New("not yet")
		}
		return nil
	})
	pool.Shutdown()
	var te *TransportError
	if err := <-inflight; !errors.As(err, &te) {
		t.Fatalf("in-flight call after Shutdown: %v, want a TransportError", err)
	}
	if err := pool.Call(context.Background(), srv.Addr().String(), "Status.Ping", struct{}{}, &struct{}{}); !errors.Is(err, ErrPoolShutdown) {
		t.Fatalf("call after Shutdown: %v, want ErrPoolShutdown", err)
	}
}

func TestPoolConfig_ValidateNamesField(t *testing.T) {
	for field, cfg := range map[string]PoolConfig{
		"MaxInFlightPerServer": {MaxInFlightPerServer: -1},
		"IdleTimeout":          {IdleTimeout: -1},
		"DialTimeout":          {DialTimeout: -1},
		"DefaultCallTimeout":   {DefaultCallTimeout: -1},
		"MaxFrameBytes":        {MaxFrameBytes: -1},
		"MaxBlockingPerServer": {MaxBlockingPerServer: -1},
		"ProbeTimeout":         {ProbeTimeout: -1},
	} {
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate = %v, want it to name %s", err, field)
		}
	}
}

// A dial that hangs (a black-holed address) is bounded by the call's
// deadline, and callers queued behind that dial are bounded by theirs.
func TestPool_HungDialBoundedByDeadline(t *testing.T) {
	hang := func(ctx context.Context, network, addr string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	pool := newClient(t, PoolConfig{Dial: hang})
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			errs <- pool.Call(ctxTimeout(t, 150*time.Millisecond), "10.255.255.1:8300", "Status.Ping", struct{}{}, &struct{}{})
		}()
	}
	for range 4 {
		select {
		case err := <-errs:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want deadline exceeded", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a caller stayed blocked behind a hung dial")
		}
	}
	if st := pool.Stats(); st.Timeouts != 4 || st.Dials != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Callers queued behind a dial that is refused share its error instead
// of each dialing in turn.
func TestPool_WaitersShareRefusedDial(t *testing.T) {
	release := make(chan struct{})
	var dials sync.WaitGroup
	dials.Add(1)
	refuse := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Done() // a second dial would panic: negative counter
		<-release
		return nil, errors.New("connection refused")
	}
	pool := newClient(t, PoolConfig{Dial: refuse})
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			errs <- pool.Call(ctxTimeout(t, 10*time.Second), "127.0.0.1:1", "Status.Ping", struct{}{}, &struct{}{})
		}()
	}
	dials.Wait()
	testkit.WaitFor(t, 5*time.Second, "all callers to queue", func() error {
		pool.mu.Lock()
		n := len(pool.slots["127.0.0.1:1"].sem)
		pool.mu.Unlock()
		if n != 3 {
			return fmt.Errorf("%d callers hold slots", n)
		}
		return nil
	})
	close(release)
	for range 3 {
		if err := <-errs; err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err = %v, want the refused dial's error", err)
		}
	}
}

// One call timing out must not fail the others sharing its connection:
// the timed-out call is abandoned, the live connection kept.
func TestPool_TimeoutDoesNotFailOtherCallsOnConnection(t *testing.T) {
	g := &gate{release: make(chan struct{})}
	srv := startServer(t, Config{}, func(s *Server) { s.Register("Gate", g) })
	addr := srv.Addr().String()
	pool := newClient(t, PoolConfig{ProbeTimeout: 2 * time.Second})
	long := make(chan error, 1)
	var longReply int
	go func() { long <- pool.Call(ctxTimeout(t, 30*time.Second), addr, "Gate.Wait", 7, &longReply) }()
	testkit.WaitFor(t, 10*time.Second, "the long call to be in flight", func() error {
		if in, _ := g.counts(); in != 1 {
			return fmt.Errorf("%d calls inside", in)
		}
		return nil
	})
	shortReply := -1
	err := pool.Call(ctxTimeout(t, 100*time.Millisecond), addr, "Gate.Wait", 8, &shortReply)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("short call: %v, want deadline exceeded", err)
	}
	// The probe is answered by the live server; the connection stays.
	testkit.WaitFor(t, 10*time.Second, "the liveness probe to finish", func() error {
		pool.mu.Lock()
		s := pool.slots[addr]
		pool.mu.Unlock()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.conn == nil || s.conn.probing {
			return errors.New("probe still running or connection gone")
		}
		return nil
	})
	close(g.release)
	if err := <-long; err != nil || longReply != 7 {
		t.Fatalf("long call after a neighbour timed out: %v (reply %d), want success", err, longReply)
	}
	if shortReply != -1 {
		t.Fatalf("abandoned call's late reply was written into the caller's value: %d", shortReply)
	}
	if st := pool.Stats(); st.Dials != 1 || st.Evictions != 0 || st.Abandoned != 1 {
		t.Fatalf("stats %+v, want one connection kept and one abandoned call", st)
	}
}

// Blocking queries may each take minutes; they must not fill the slots
// that writes and ordinary reads to the same server need.
func TestPool_BlockingQueriesDoNotTakeOrdinarySlots(t *testing.T) {
	const limit = 2
	g := &gate{release: make(chan struct{})}
	defer close(g.release)
	srv := startServer(t, Config{}, func(s *Server) { s.Register("Gate", g) })
	addr := srv.Addr().String()
	pool := newClient(t, PoolConfig{MaxInFlightPerServer: limit})
	for range limit {
		go pool.Call(ctxTimeout(t, 30*time.Second), addr, "Gate.Block",
			&GetRequest{QueryOptions: QueryOptions{MinQueryIndex: 5}}, &GetResponse{})
	}
	testkit.WaitFor(t, 10*time.Second, "the blocking queries to be in flight", func() error {
		if in, _ := g.counts(); in != limit {
			return fmt.Errorf("%d calls inside", in)
		}
		return nil
	})
	if err := pool.Call(ctxTimeout(t, 5*time.Second), addr, "Status.Ping", struct{}{}, &struct{}{}); err != nil {
		t.Fatalf("ping while blocking queries are parked: %v", err)
	}
}

func TestBlockingCallTimeout_CoversWaitAndJitter(t *testing.T) {
	if d := BlockingCallTimeout(&QueryOptions{}, time.Second); d != 0 {
		t.Fatalf("non-blocking read: %v, want 0", d)
	}
	for _, c := range []struct{ wait, want time.Duration }{
		{0, DefaultQueryTime + DefaultQueryTime/16 + time.Second},
		{time.Minute, time.Minute + time.Minute/16 + time.Second},
		{time.Hour, MaxQueryTime + MaxQueryTime/16 + time.Second},
	} {
		if d := BlockingCallTimeout(&QueryOptions{MinQueryIndex: 1, MaxQueryTime: c.wait}, time.Second); d != c.want {
			t.Errorf("wait %v: %v, want %v", c.wait, d, c.want)
		}
	}
}

// A peer answering garbage fails the call with a TransportError, counted
// as a malformed reply, and never panics the client.
func TestPool_MalformedReplyIsCountedAndEvicted(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Read(make([]byte, 64))                            // the protocol byte and some of the request
		c.Write([]byte{0x05, 0xff, 0xff, 0xff, 0xff, 0xff}) // garbage gob
		io.Copy(io.Discard, c)
	}()
	pool := newClient(t, PoolConfig{})
	err = pool.Call(ctxTimeout(t, 5*time.Second), l.Addr().String(), "Status.Ping", struct{}{}, &struct{}{})
	var te *TransportError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want a TransportError", err)
	}
	if st := pool.Stats(); st.MalformedReplies != 1 || st.Evictions != 1 {
		t.Fatalf("stats %+v, want one malformed reply and the connection evicted", st)
	}
}

// Every goroutine the pool and server start ends once both are shut down:
// connection readers, flushers, probes and the reaper, across successful,
// abandoned, evicted and reaped connections.
func TestPool_NoGoroutinesLeftAfterShutdown(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		g := &gate{release: make(chan struct{})}
		srv, err := NewServer(Config{Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		srv.Register("Gate", g)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(l)
		<-srv.Ready()
		addr := srv.Addr().String()
		pool, err := NewPool(PoolConfig{Logger: quietLogger(), ProbeTimeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		pool.Call(ctx, addr, "Gate.Wait", 1, new(int)) // abandoned, then probed
		cancel()
		close(g.release)
		pool.Call(ctxTimeout(t, 5*time.Second), addr, "Gate.Wait", 2, new(int))
		pool.reapIdle(time.Now().Add(time.Hour)) // reaped
		pool.Call(ctxTimeout(t, 5*time.Second), addr, "Gate.Wait", 3, new(int))
		pool.Shutdown()
		srv.Shutdown(ctxTimeout(t, 5*time.Second))
	}()
	testkit.WaitFor(t, 10*time.Second, "goroutines to return to the baseline", func() error {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines, %d before", n, before)
		}
		return nil
	})
}

// A server that answers probes but never finishes some calls would grow
// net/rpc's pending table forever; past maxAbandonedPerConn unanswered
// abandoned calls the connection is evicted, which releases them all.
func TestPool_TooManyUnansweredAbandonedCallsEvict(t *testing.T) {
	g := &gate{release: make(chan struct{})}
	defer close(g.release)
	srv := startServer(t, Config{}, func(s *Server) { s.Register("Gate", g) })
	addr := srv.Addr().String()
	pool := newClient(t, PoolConfig{})
	// Concurrent, with a deadline long enough that every call is sent
	// before it expires, so each is abandoned on the shared connection.
	abandonN := func(n int) {
		errs := make(chan error, n)
		for i := range n {
			go func() { errs <- pool.Call(ctxTimeout(t, time.Second), addr, "Gate.Wait", i, new(int)) }()
		}
		for range n {
			if err := <-errs; !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want deadline exceeded", err)
			}
		}
	}
	abandonN(maxAbandonedPerConn)
	if st := pool.Stats(); st.Evictions != 0 || st.Abandoned != maxAbandonedPerConn {
		t.Fatalf("stats %+v, want %d abandoned calls and the live connection kept", st, maxAbandonedPerConn)
	}
	abandonN(1)
	if st := pool.Stats(); st.Evictions != 1 {
		t.Fatalf("stats %+v, want the connection evicted past %d unanswered abandoned calls", st, maxAbandonedPerConn)
	}
}
