package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"roster/catalog"
	"roster/raft"
	"roster/rpc"
)

// serverStack is everything only a server runs: the :8300 listener with
// net/rpc endpoints and Raft's transport on it, the Raft node and its
// stores, and the catalog as Raft's state machine behind the request-ID
// de-duplication table.
//
// How the pieces connect (a write's path, top to bottom):
//
//	rpc.Server ── ProtoRPC ──► endpoints ─► Forwarder (leader? else pool → leader)
//	           └─ ProtoRaft ─► raft.NetTransport ─► raft.Node
//	                                               │ commits
//	                                               ▼
//	                 restoringFSM ─► rpc.DedupFSM ─► autopilotFSM ─► catalog.Store
type serverStack struct {
	rpcSrv  *rpc.Server
	rpcLn   net.Listener
	trans   *raft.NetTransport
	raft    *raft.Node
	logFile io.Closer // the raft log on disk; nil in -dev (memory stores)
	store   *catalog.Store
	ap      *autopilotFSM // the replicated autopilot configuration
	fsm     *rpc.DedupFSM
	view    *raftView
	fwd     *rpc.Forwarder
	blocker *rpc.Blocker
	// autopilot tracks server health while this server leads
	// (autopilot_track.go).
	autopilot *rpc.AutopilotTracker

	// ctx ends with the server; endpoints use it to bound forwarded calls.
	ctx    context.Context
	cancel context.CancelFunc
	served chan error // Serve's result
}

// rpcAddr is the address other servers and agents dial: the advertised
// IP with the server port. It is also the server's Raft address.
func (a *Agent) rpcAddr() string {
	return net.JoinHostPort(a.advertised(), fmt.Sprint(a.rpcPort()))
}

// rpcPort is the port the server listener is bound to (the configured one,
// or the kernel's choice when tests bind port 0).
func (a *Agent) rpcPort() int {
	if a.srv != nil && a.srv.rpcLn != nil {
		return a.srv.rpcLn.Addr().(*net.TCPAddr).Port
	}
	return a.cfg.Ports.Server
}

// bindServer binds the :8300 listener (servers only).
func (a *Agent) bindServer() error {
	addr := net.JoinHostPort(a.cfg.BindAddr, fmt.Sprint(a.cfg.Ports.Server))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("-server-port: cannot listen on %s: %w", addr, err)
	}
	a.srv = &serverStack{rpcLn: l}
	a.cfg.Ports.Server = l.Addr().(*net.TCPAddr).Port // port 0 resolved (anyport.go)
	return nil
}

// startServer builds and starts the server stack on the bound listener.
// Raft starts before the listener serves so that the first AppendEntries
// from a peer finds a node to deliver to.
func (a *Agent) startServer() error {
	s := a.srv
	s.ctx, s.cancel = context.WithCancel(context.Background())
	var err error
	if s.store, err = catalog.New(catalog.Config{}); err != nil {
		return err
	}
	s.ap = &autopilotFSM{inner: s.store}
	s.fsm = rpc.NewDedupFSM(s.ap, 0, 0)
	if err := a.startRaft(s); err != nil {
		return err
	}
	s.view = &raftView{node: s.raft, readTimeout: 5 * time.Second}
	if err := a.startRPC(s); err != nil {
		return err
	}
	a.emit(Event{Kind: EventServing, Component: "rpc", Addr: s.rpcLn.Addr().String()})
	return nil
}

// snapshotsRetained is how many catalog snapshots a server keeps on disk:
// the newest, and one to fall back on if the newest proves corrupt.
const snapshotsRetained = 2

// startRaft opens the stores (bbolt under <data-dir>/raft, or memory in
// -dev) and starts the node with the net/rpc transport that shares the
// server listener through protocol byte ProtoRaft.
func (a *Agent) startRaft(s *serverStack) error {
	var logs raft.LogStore
	var stable raft.StableStore
	var snaps raft.SnapshotStore
	if a.cfg.Dev {
		m := raft.NewMemStore()
		logs, stable, snaps = m, m, raft.NewMemSnapshotStore(snapshotsRetained)
	} else {
		dir := filepath.Join(a.cfg.DataDir, "raft")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("-data-dir: cannot create %s: %w", dir, err)
		}
		st, err := openRaftLog(dir)
		if err != nil {
			return fmt.Errorf("-data-dir: opening the raft log: %w", err)
		}
		s.logFile, logs, stable = st, st, st
		if snaps, err = raft.NewFileSnapshotStore(filepath.Join(dir, "snapshots"), snapshotsRetained); err != nil {
			return fmt.Errorf("-data-dir: opening the raft snapshots: %w", err)
		}
	}
	trans, err := raft.NewNetTransport(raft.NetTransportConfig{
		LocalAddr: a.rpcAddr(),
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			return rpc.DialProtocol(ctx, a.dialFunc(), addr, rpc.ProtoRaft)
		},
		Logger: a.log,
	})
	if err != nil {
		return err
	}
	s.trans = trans
	rcfg := a.cfg.Raft
	rcfg.ID = a.nodeID()
	if rcfg.Snapshots == nil {
		rcfg.Snapshots = snaps
	}
	if rcfg.Logger == nil {
		rcfg.Logger = a.log
	}
	node, err := raft.NewNode(rcfg, &restoringFSM{inner: s.fsm, restored: a.restored}, logs, stable, trans)
	if err != nil {
		return fmt.Errorf("starting raft: %w", err)
	}
	s.raft = node
	return nil
}

// raftLogStore is the raft log and stable state on disk.
type raftLogStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// openRaftLog opens the raft log in dir: the write-ahead log (raft/wal,
// one data sync per write), or the bbolt file raft.db of a data dir
// written by an earlier release, which keeps working as it was. Anything
// but a clear answer is refused: opening an empty log where the real one
// could not be read would make the server forget its term and vote.
func openRaftLog(dir string) (raftLogStore, error) {
	bolt, wal := filepath.Join(dir, "raft.db"), filepath.Join(dir, "wal")
	hasBolt, err := pathExists(bolt)
	if err != nil {
		return nil, err
	}
	hasWAL, err := pathExists(wal)
	if err != nil {
		return nil, err
	}
	switch {
	case hasBolt && hasWAL:
		return nil, fmt.Errorf("%s holds two raft logs, raft.db and wal/; keep the one this server last ran with (the newer files) and move the other away", dir)
	case hasBolt:
		return raft.OpenBoltStore(bolt)
	}
	return raft.OpenWALStore(wal)
}

// pathExists reports whether path exists; an error other than "does not
// exist" (permissions, I/O) is returned, not taken for absence.
func pathExists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("cannot tell whether %s exists: %w", path, err)
}

// startRPC wires forwarding, blocking and the endpoints, then serves.
func (a *Agent) startRPC(s *serverStack) error {
	var err error
	s.fwd, err = rpc.NewForwarder(rpc.ForwardConfig{
		Datacenter: a.cfg.Datacenter, Cluster: s.view, Router: a.router, Caller: a.pool, Logger: a.log,
		HoldTimeout: a.cfg.RPCHoldTimeout,
	})
	if err != nil {
		return err
	}
	if s.blocker, err = rpc.NewBlocker(rpc.BlockingConfig{Cluster: s.view}); err != nil {
		return err
	}
	if s.rpcSrv, err = rpc.NewServer(rpc.Config{Logger: a.log}); err != nil {
		return err
	}
	if err := s.rpcSrv.Handle(rpc.ProtoRaft, s.trans.ServeConn); err != nil {
		return err
	}
	if err := a.registerEndpoints(s); err != nil {
		return err
	}
	s.served = make(chan error, 1)
	go func() { s.served <- s.rpcSrv.Serve(s.rpcLn) }()
	<-s.rpcSrv.Ready()
	return nil
}

// stopServer stops the stack in reverse: listener and endpoints first (no
// new work), then Raft, then its transport and stores.
func (a *Agent) stopServer(ctx context.Context) error {
	s := a.srv
	if s == nil {
		return nil
	}
	var errs []error
	if s.cancel != nil {
		s.cancel()
	}
	if s.rpcSrv != nil {
		if err := s.rpcSrv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.served != nil {
		if err := <-s.served; err != nil && !errors.Is(err, rpc.ErrServerClosed) {
			errs = append(errs, err)
		}
		a.emit(Event{Kind: EventStopped, Component: "rpc", Addr: s.rpcLn.Addr().String()})
	} else if s.rpcLn != nil {
		s.rpcLn.Close()
	}
	if s.raft != nil {
		s.raft.Shutdown()
	}
	if s.trans != nil {
		s.trans.Close()
	}
	if s.logFile != nil {
		if err := s.logFile.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the raft log: %w", err))
		}
	}
	return errors.Join(errs...)
}

// dialFunc is how this agent opens TCP connections to other agents: a
// plain dial, or one that honours Config.Faults.
func (a *Agent) dialFunc() rpc.DialFunc {
	var d net.Dialer
	if a.cfg.Faults == nil {
		return d.DialContext
	}
	return a.cfg.Faults.faultDial(a.cfg.NodeName, d.DialContext)
}

// isLeader reports whether this agent is the Raft leader.
func (a *Agent) isLeader() bool {
	return a.srv != nil && a.srv.raft != nil && a.srv.raft.State() == raft.Leader
}

// logAttrs is a small helper for the recurring slog attributes.
func nodeAttr(name string) slog.Attr { return slog.String("node", name) }
