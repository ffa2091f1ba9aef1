package main

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

// pprofAddrEnv, when set to host:port, makes `roster agent` serve Go's
// profiling endpoints (/debug/pprof/...) on a listener of their own, so a
// benchmark can take CPU profiles of server processes under load
// (cmd/roster/kv_bench_test.go, ROSTER_BENCH_PPROF). Off unless set, and
// never on the API port: profiles expose the process's internals.
const pprofAddrEnv = "ROSTER_PPROF_ADDR"

// startPprof serves the profiling endpoints if pprofAddrEnv is set. A
// listener that cannot bind is logged, not fatal: profiling is a
// diagnostic and must not keep an agent from starting.
func startPprof(log *slog.Logger) (stop func()) {
	addr := os.Getenv(pprofAddrEnv)
	if addr == "" {
		return func() {}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Warn("profiling endpoints not started", "env", pprofAddrEnv, "error", err)
		return func() {}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	log.Info("serving profiling endpoints", "addr", ln.Addr().String())
	return func() { srv.Close() }
}
