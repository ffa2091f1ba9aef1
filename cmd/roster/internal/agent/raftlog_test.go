package agent

import (
	"path/filepath"
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
