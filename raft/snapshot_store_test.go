package raft

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func writeSnap(t *testing.T, s SnapshotStore, index, term uint64, data string) string {
	t.Helper()
	sink, err := s.Create(index, term, Configuration{Servers: []Server{{ID: "a", Address: "a"}}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	return sink.ID()
}

func readSnap(t *testing.T, s SnapshotStore, id string) (SnapshotMeta, string, error) {
	t.Helper()
	m, r, err := s.Open(id)
	if err != nil {
		return m, "", err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return m, string(b), err
}

func snapshotStores(t *testing.T) map[string]func() SnapshotStore {
	dir := t.TempDir()
	return map[string]func() SnapshotStore{
		"file": func() SnapshotStore {
			s, err := NewFileSnapshotStore(dir, 2)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"mem": func() SnapshotStore { return NewMemSnapshotStore(2) },
	}
}

// The store keeps the newest Retain snapshots, lists them newest first and
// hands back exactly what was written with its metadata.
func TestSnapshotStore_RetainAndRoundTrip(t *testing.T) {
	for name, open := range snapshotStores(t) {
		t.Run(name, func(t *testing.T) {
			s := open()
			writeSnap(t, s, 10, 1, "ten")
			writeSnap(t, s, 20, 2, "twenty")
			id := writeSnap(t, s, 30, 2, "thirty")
			ms, err := s.List()
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 2 || ms[0].Index != 30 || ms[1].Index != 20 {
				t.Fatalf("List = %+v, want indexes [30 20]", ms)
			}
			m, data, err := readSnap(t, s, id)
			if err != nil || data != "thirty" || m.Term != 2 || m.Size != 6 || len(m.Configuration.Servers) != 1 {
				t.Fatalf("Open = %+v %q %v", m, data, err)
			}
		})
	}
}

// failingWriter stops mid-stream, as a crash or a full disk would.
type failingWriter struct{ left int }

var errDiskFull = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, errDiskFull
	}
	w.left -= len(p)
	return len(p), nil
}

// A snapshot whose write fails part way leaves the previous one the newest
// and usable — whether the writer cancels, or the process dies and leaves
// its temporary directory behind.
func TestSnapshotStore_FailedWriteKeepsPrevious(t *testing.T) {
	for name, open := range snapshotStores(t) {
		t.Run(name, func(t *testing.T) {
			s := open()
			writeSnap(t, s, 10, 1, "good state")
			sink, err := s.Create(20, 1, Configuration{}, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.MultiWriter(sink, &failingWriter{left: 3}), bytes.NewReader(make([]byte, 100)))
			if !errors.Is(err, errDiskFull) {
				t.Fatalf("copy err = %v", err)
			}
			sink.Cancel()
			if name == "file" {
				// A crash: an abandoned sink, then a reopen of the store.
				if _, err := s.Create(30, 1, Configuration{}, 0); err != nil {
					t.Fatal(err)
				}
				s = open()
			}
			ms, _ := s.List()
			if len(ms) != 1 || ms[0].Index != 10 {
				t.Fatalf("List = %+v, want only the snapshot at 10", ms)
			}
			if _, data, err := readSnap(t, s, ms[0].ID); err != nil || data != "good state" {
				t.Fatalf("previous snapshot = %q, %v", data, err)
			}
		})
	}
}

// A flipped byte is caught by the checksum.
func TestSnapshotStore_CorruptDetected(t *testing.T) {
	dir := t.TempDir()
	fs, err := NewFileSnapshotStore(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	id := writeSnap(t, fs, 10, 1, "some state")
	path := filepath.Join(dir, id, snapStateFile)
	b, _ := os.ReadFile(path)
	b[3] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readSnap(t, fs, id); !errors.Is(err, ErrSnapshotCorrupt) {
		t.Fatalf("file Open of corrupt snapshot: err = %v, want ErrSnapshotCorrupt", err)
	}
	ms := NewMemSnapshotStore(2)
	id = writeSnap(t, ms, 10, 1, "some state")
	ms.Corrupt(id)
	if _, _, err := readSnap(t, ms, id); !errors.Is(err, ErrSnapshotCorrupt) {
		t.Fatalf("mem Open of corrupt snapshot: err = %v, want ErrSnapshotCorrupt", err)
	}
}
