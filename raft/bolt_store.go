package raft

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltStore keeps the log and the stable state in one bbolt file: bucket
// "logs" maps big-endian index -> entry, bucket "stable" holds keys such as
// the hard state. Every StoreLogs is one transaction and one fsync, so a
// batch of appended entries costs a single disk sync.
type BoltStore struct {
	db *bolt.DB
}

var (
	_ LogStore        = (*BoltStore)(nil)
	_ StableStore     = (*BoltStore)(nil)
	_ hardStateWriter = (*BoltStore)(nil)

	bucketLogs   = []byte("logs")
	bucketStable = []byte("stable")
)

// OpenBoltStore opens (creating if needed) the store at path, e.g.
// <data-dir>/raft/raft.db.
func OpenBoltStore(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, boltOptions())
	if err != nil {
		return nil, fmt.Errorf("raft: opening bolt store %s: %w (is another process using this data dir?)", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketLogs, bucketStable} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("raft: initialising bolt store %s: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

// boltOptions tunes bbolt for a log that is written on every commit:
//
//   - NoFreelistSync: a commit does not write the free-page list (one page
//     fewer per write, and freeing the previous list's page was a tenth of
//     a write's CPU); bbolt rebuilds the list by scanning the file on open,
//     which for a log kept short by snapshots is quick. etcd runs bbolt the
//     same way. A file written like this still opens with older settings.
//   - the hash-map free list: allocating and freeing pages does not scan a
//     sorted array.
func boltOptions() *bolt.Options {
	return &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType}
}

// Close releases the file.
func (s *BoltStore) Close() error { return s.db.Close() }

func indexKey(i uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], i)
	return k[:]
}

func (s *BoltStore) FirstIndex() (uint64, error) {
	var i uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketLogs).Cursor().First(); k != nil {
			i = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return i, err
}

func (s *BoltStore) LastIndex() (uint64, error) {
	var i uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketLogs).Cursor().Last(); k != nil {
			i = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return i, err
}

func (s *BoltStore) GetLog(index uint64) (Entry, error) {
	var e Entry
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLogs).Get(indexKey(index))
		if v == nil {
			return ErrLogNotFound
		}
		var err error
		e, err = decodeEntry(index, v)
		return err
	})
	return e, err
}

func (s *BoltStore) StoreLogs(entries []Entry) error {
	return s.StoreLogsAndState(entries, nil, nil)
}

// StoreLogsAndState writes entries (replacing any suffix from
// entries[0].Index) and, if key is non-nil, one stable key, in one
// transaction.
func (s *BoltStore) StoreLogsAndState(entries []Entry, key, val []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if len(entries) > 0 {
			b := tx.Bucket(bucketLogs)
			// Keys only ever grow: pack pages full instead of splitting
			// them in half.
			b.FillPercent = 0.95
			if err := deleteFrom(b, entries[0].Index); err != nil {
				return err
			}
			// One buffer for all keys and values (bbolt keeps them until
			// the commit): two allocations per write, not two per entry.
			size := 0
			for _, e := range entries {
				size += 8 + entryHeaderLen + len(e.Data)
			}
			buf := make([]byte, 0, size)
			for _, e := range entries {
				k := len(buf)
				buf = binary.BigEndian.AppendUint64(buf, e.Index)
				v := len(buf)
				buf = appendEntry(buf, e)
				if err := b.Put(buf[k:v:v], buf[v:len(buf):len(buf)]); err != nil {
					return err
				}
			}
		}
		if key != nil {
			return tx.Bucket(bucketStable).Put(key, val)
		}
		return nil
	})
}

// deleteFrom removes every key >= index.
func deleteFrom(b *bolt.Bucket, index uint64) error {
	return deleteKeys(b, index, ^uint64(0))
}

// deleteKeys removes keys in [lo, hi]. Keys are collected first: deleting
// under a cursor while advancing it can skip keys in bbolt.
func deleteKeys(b *bolt.Bucket, lo, hi uint64) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(indexKey(lo)); k != nil && binary.BigEndian.Uint64(k) <= hi; k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (s *BoltStore) DeleteRange(lo, hi uint64) error {
	return s.db.Update(func(tx *bolt.Tx) error { return deleteKeys(tx.Bucket(bucketLogs), lo, hi) })
}

func (s *BoltStore) Set(key, val []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketStable).Put(key, val) })
}

func (s *BoltStore) Get(key []byte) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketStable).Get(key); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}
