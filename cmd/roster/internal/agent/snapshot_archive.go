package agent

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"roster/catalog"
	"roster/rpc"
)

// A snapshot archive is what GET /v1/snapshot returns, `roster snapshot
// save` writes and PUT /v1/snapshot takes back: the servers' replicated
// state at one point of the log, in a self-describing, checksummed file.
// Consul ships a gzipped tar; roster's is simpler but plays the same role:
//
//	gzip(
//	  "roster-snapshot v1\n"
//	  one line of JSON: SnapshotMeta
//	  the state: the request-ID table and the catalog, exactly as the
//	  servers' Raft snapshots store them (rpc.DedupFSM's Persist)
//	)
//
// Meta.SHA256 covers the state, so a truncated or edited file is refused
// before anything is restored.

const snapshotArchiveHeader = "roster-snapshot v1\n"

// MaxSnapshotStateBytes bounds a snapshot's state: it crosses the RPC
// layer in one message and is restored through one Raft log entry, both
// of which must stay well under the RPC frame limit (64 MiB).
const MaxSnapshotStateBytes = 32 << 20

// SnapshotMeta describes a snapshot archive (`roster snapshot inspect`).
type SnapshotMeta struct {
	Version    int
	ID         string // term-index-unixmillis, as Consul names snapshots
	Index      uint64 // the catalog's raft index when it was taken
	Term       uint64
	Datacenter string
	Node       string // the server that took it
	Created    time.Time
	Size       int64  // bytes of state
	SHA256     string // hex digest of the state
}

// WriteSnapshotArchive writes meta and state as an archive to w; meta's
// Version, Size and SHA256 are filled in from state.
func WriteSnapshotArchive(w io.Writer, meta SnapshotMeta, state []byte) error {
	sum := sha256.Sum256(state)
	meta.Version, meta.Size, meta.SHA256 = 1, int64(len(state)), hex.EncodeToString(sum[:])
	line, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(w)
	zw.Write([]byte(snapshotArchiveHeader))
	zw.Write(append(line, '\n'))
	zw.Write(state)
	return zw.Close()
}

// ErrBadSnapshotArchive wraps every reason an archive is refused.
var ErrBadSnapshotArchive = errors.New("not a valid roster snapshot")

// ReadSnapshotArchive reads and verifies an archive: header, metadata,
// size bound and checksum. The state is returned only if it matches.
func ReadSnapshotArchive(r io.Reader) (SnapshotMeta, []byte, error) {
	var meta SnapshotMeta
	zr, err := gzip.NewReader(r)
	if err != nil {
		return meta, nil, fmt.Errorf("%w: not gzip data: %v", ErrBadSnapshotArchive, err)
	}
	br := bufio.NewReader(io.LimitReader(zr, MaxSnapshotStateBytes+64<<10))
	header, err := br.ReadString('\n')
	if err != nil || header != snapshotArchiveHeader {
		return meta, nil, fmt.Errorf("%w: missing the %q header", ErrBadSnapshotArchive, strings.TrimSpace(snapshotArchiveHeader))
	}
	line, err := br.ReadBytes('\n')
	if err != nil {
		return meta, nil, fmt.Errorf("%w: missing the metadata line", ErrBadSnapshotArchive)
	}
	if err := json.Unmarshal(line, &meta); err != nil {
		return meta, nil, fmt.Errorf("%w: bad metadata: %v", ErrBadSnapshotArchive, err)
	}
	if meta.Version != 1 || meta.Size < 0 || meta.Size > MaxSnapshotStateBytes {
		return meta, nil, fmt.Errorf("%w: version %d, size %d (this roster reads version 1 up to %d bytes)", ErrBadSnapshotArchive, meta.Version, meta.Size, MaxSnapshotStateBytes)
	}
	state := make([]byte, meta.Size)
	if _, err := io.ReadFull(br, state); err != nil {
		return meta, nil, fmt.Errorf("%w: state truncated: %v", ErrBadSnapshotArchive, err)
	}
	// Reading to the end makes gzip check its own CRC and length trailer.
	if n, err := io.Copy(io.Discard, br); n != 0 || err != nil {
		return meta, nil, fmt.Errorf("%w: %d bytes of trailing data after the state (%v)", ErrBadSnapshotArchive, n, err)
	}
	if sum := sha256.Sum256(state); hex.EncodeToString(sum[:]) != meta.SHA256 {
		return meta, nil, fmt.Errorf("%w: checksum mismatch (the file is corrupt)", ErrBadSnapshotArchive)
	}
	return meta, state, nil
}

// SnapshotContents summarises a snapshot's state (`snapshot inspect`).
type SnapshotContents struct {
	Nodes, Services, Checks, KVs, Sessions int
	RegistryHash                           string
}

// InspectSnapshotState loads state into a scratch catalog, which both
// proves it restorable and counts what it holds.
func InspectSnapshotState(state []byte) (SnapshotContents, error) {
	store, err := catalog.New(catalog.Config{})
	if err != nil {
		return SnapshotContents{}, err
	}
	if err := rpc.NewDedupFSM(&autopilotFSM{inner: store}, 0, 0).Restore(bytes.NewReader(state)); err != nil {
		return SnapshotContents{}, fmt.Errorf("%w: %v", ErrBadSnapshotArchive, err)
	}
	var c SnapshotContents
	nodes, _ := store.Nodes()
	c.Nodes = len(nodes)
	for _, n := range nodes {
		if ns, _ := store.NodeServices(n.Node); ns != nil {
			c.Services += len(ns.Services)
		}
		checks, _ := store.NodeChecks(n.Node)
		c.Checks += len(checks)
	}
	kvs, _ := store.KVList("")
	sessions, _ := store.Sessions()
	c.KVs, c.Sessions, c.RegistryHash = len(kvs), len(sessions), store.Hash()
	return c, nil
}
