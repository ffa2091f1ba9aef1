package httpapi

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"roster/rpc"
)

// /v1/snapshot, as Consul's: GET returns an archive of the servers' state
// (the leader's, or with ?stale any server's) with X-Consul-Index; PUT
// restores one on every server. The archive format and the restore are
// the agent's (the "Snapshot" RPC endpoint); this layer moves bytes.

// MaxSnapshotBytes bounds a PUT /v1/snapshot body (a gzipped archive).
const MaxSnapshotBytes = 32 << 20

// SnapshotRequest is the Snapshot.Save RPC argument.
type SnapshotRequest struct {
	rpc.QueryOptions
}

// SnapshotResponse is Snapshot.Save's reply: the archive and the index of
// the state it holds.
type SnapshotResponse struct {
	rpc.QueryMeta
	Archive []byte
}

// SnapshotRestoreRequest is the Snapshot.Restore RPC argument (reply
// *struct{}).
type SnapshotRestoreRequest struct {
	rpc.WriteRequest
	Archive []byte
}

func (s *Server) snapshot(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	if r.Method == http.MethodPut {
		return s.snapshotRestore(r)
	}
	opts, err := s.parseQueryOptions(r)
	if err != nil {
		return nil, err
	}
	args := SnapshotRequest{QueryOptions: opts}
	var reply SnapshotResponse
	if err := s.rpc(r, "Snapshot.Save", &args, &reply); err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	w.Header().Set("Content-Length", strconv.Itoa(len(reply.Archive)))
	return &rawBody{status: http.StatusOK, contentType: "application/octet-stream", body: reply.Archive}, nil
}

func (s *Server) snapshotRestore(r *http.Request) (any, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxSnapshotBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, errorf(http.StatusRequestEntityTooLarge, "Snapshot is larger than %d bytes", MaxSnapshotBytes)
	case err != nil:
		return nil, errorf(http.StatusBadRequest, "Reading the snapshot: %v", err)
	case len(body) == 0:
		return nil, errorf(http.StatusBadRequest, "Missing snapshot: send the archive from GET /v1/snapshot as the request body")
	}
	args := SnapshotRestoreRequest{WriteRequest: s.parseWriteRequest(r), Archive: body}
	if err := s.rpc(r, "Snapshot.Restore", &args, &struct{}{}); err != nil {
		return nil, err
	}
	return nil, nil
}
