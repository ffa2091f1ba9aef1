package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"roster/raft"
)

// A new data dir gets the write-ahead log; one written by an earlier
// release (raft/raft.db) keeps its bbolt file, entries included.
func TestOpenRaftLog_NewDirGetsTheWALAndOldDirsKeepBolt(t *testing.T) {
	fresh := t.TempDir()
	st, err := openRaftLog(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(*raft.WALStore); !ok {
		t.Errorf("a new data dir opened %T, want *raft.WALStore", st)
	}
	st.Close()

	old := t.TempDir()
	b, err := raft.OpenBoltStore(filepath.Join(old, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.StoreLogs([]raft.Entry{{Index: 1, Term: 1, Type: raft.EntryCommand, Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	st, err = openRaftLog(old)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, ok := st.(*raft.BoltStore); !ok {
		t.Fatalf("a data dir with raft.db opened %T, want *raft.BoltStore", st)
	}
	if last, err := st.LastIndex(); err != nil || last != 1 {
		t.Fatalf("the old log's last index: %d, %v; want 1", last, err)
	}
}

// A data dir holding both logs, or one whose log cannot be looked at, is
// refused: opening a fresh log there would lose the server's term and vote.
func TestOpenRaftLog_RefusesWhatItCannotTellApart(t *testing.T) {
	both := t.TempDir()
	b, err := raft.OpenBoltStore(filepath.Join(both, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := os.Mkdir(filepath.Join(both, "wal"), 0o700); err != nil {
		t.Fatal(err)
	}
	if st, err := openRaftLog(both); err == nil || !strings.Contains(err.Error(), "two raft logs") {
		if st != nil {
			st.Close()
		}
		t.Fatalf("a dir with raft.db and wal/ opened: %v", err)
	}

	// A path through a regular file: Stat fails with ENOTDIR, not "does
	// not exist".
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := openRaftLog(file); err == nil || !strings.Contains(err.Error(), "cannot tell whether") {
		if st != nil {
			st.Close()
		}
		t.Fatalf("an unreadable data dir opened: %v", err)
	}
}
