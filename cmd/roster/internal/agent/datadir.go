package agent

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
)

const (
	lockFileName   = "roster.lock"
	nodeIDFileName = "node-id"
)

// dataDirLock is an exclusive flock on <data-dir>/roster.lock. The kernel
// drops it when the process dies, so a crashed agent never leaves a stale
// lock behind, while two live agents can never share one directory.
type dataDirLock struct {
	f *os.File
}

func lockDataDir(dir string) (*dataDirLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("-data-dir: cannot create %s: %w", dir, err)
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("-data-dir: cannot open lock file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("-data-dir: %s is in use by another roster agent (lock %s is held); stop that agent or choose another -data-dir", dir, path)
		}
		return nil, fmt.Errorf("-data-dir: cannot lock %s: %w", path, err)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return &dataDirLock{f: f}, nil
}

func (l *dataDirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// newUUID returns a random (version 4) UUID, the format Consul uses for
// node IDs.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// loadOrCreateNodeID returns the node ID stored in dir, creating one the
// first time. A node keeps its ID across restarts so the catalog and Raft
// recognise it. An unreadable or malformed file is refused, not replaced:
// silently changing identity would confuse the cluster.
func loadOrCreateNodeID(dir string) (string, error) {
	path := filepath.Join(dir, nodeIDFileName)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		id := strings.TrimSpace(string(b))
		if !uuidRE.MatchString(id) {
			return "", fmt.Errorf("-data-dir: %s holds %q, which is not a node ID (a lower-case UUID); fix or delete the file to get a new ID", path, id)
		}
		return id, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("-data-dir: cannot read %s: %w", path, err)
	}
	id := newUUID()
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("-data-dir: cannot write %s: %w", path, err)
	}
	return id, nil
}
