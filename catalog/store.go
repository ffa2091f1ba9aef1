package catalog

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"roster/internal/fanout"
	"roster/raft"
)

// Table names a group of records with its own change index.
type Table uint8

// Tables. TableRegistry is the delta log: its index moves whenever a
// registry change (instance or node added, updated, removed) is appended.
const (
	TableNodes Table = iota
	TableServices
	TableChecks
	TableKV
	TableSessions
	TableCoordinates
	TableRegistry
	numTables
)

var tableNames = [numTables]string{"nodes", "services", "checks", "kv", "sessions", "coordinates", "registry"}

func (t Table) String() string {
	if t < numTables {
		return tableNames[t]
	}
	return fmt.Sprintf("table(%d)", uint8(t))
}

// lockDelaySweepLen is the size at which recording a lock delay first drops
// the expired ones, bounding the map (delays last at most MaxLockDelay).
const lockDelaySweepLen = 1024

// MaxValueBytes is Consul's limit on a KV value.
const MaxValueBytes = 512 * 1024

// Config configures a Store. The zero value is usable: every field has a
// documented default.
type Config struct {
	// DeltaCapacity is how many registry changes the delta log keeps.
	// Default DefaultDeltaCapacity (4,096).
	DeltaCapacity int
	// MaxValueBytes caps a KV value. Default MaxValueBytes (512 KiB).
	MaxValueBytes int
	// Clock tells the wall-clock time. Default time.Now. It is used for one
	// thing only: recording lock-delay deadlines when a session is
	// invalidated (session.go). Those deadlines live outside the replicated
	// state, exactly as in Consul; Apply never decides anything by them.
	Clock func() time.Time
}

func (c Config) withDefaults() Config {
	if c.DeltaCapacity == 0 {
		c.DeltaCapacity = DefaultDeltaCapacity
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = MaxValueBytes
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// Validate reports the first bad field.
func (c Config) Validate() error {
	if c.DeltaCapacity < 0 {
		return fmt.Errorf("catalog: Config.DeltaCapacity is %d; use 0 for the default (%d) or a positive count",
			c.DeltaCapacity, DefaultDeltaCapacity)
	}
	if c.MaxValueBytes < 0 {
		return fmt.Errorf("catalog: Config.MaxValueBytes is %d; use 0 for the default (%d) or a positive size",
			c.MaxValueBytes, MaxValueBytes)
	}
	return nil
}

// Store is the catalog: the replicated state, its raft FSM, the delta log
// and the blocking-query watches. It is safe for concurrent use: raft's apply
// goroutine writes, any number of readers read.
type Store struct {
	cfg Config

	// mu guards st, ring, lockDelay, tx, maps, dec and reg. Apply and
	// Restore hold it for writing; reads, Snapshot and the registration
	// step of Wait for reading.
	mu        sync.RWMutex
	st        *state
	ring      deltaRing
	lockDelay map[string]time.Time // KV key → no acquire before this time
	tx        tx                   // reused by every Apply (one at a time)
	maps      mapIntern            // string maps shared by decoded records (codec.go)
	dec       decoder              // reused by every Apply
	reg       RegisterRequest      // reused by every Apply of a registration (decodeRegister)
	// regBuf backs reg's parts (decodeRegisterInto): the service of any
	// registration that has one, and the check of a registration with
	// exactly one, with or without a service.
	regBuf registerSvcCheck

	watches watchSet
	events  fanout.Hub[Event]

	malformed atomic.Uint64 // commands refused by the decoder
	applied   atomic.Uint64 // commands applied (successfully or with an error)
}

// Compile-time check: the store is raft's state machine.
var _ raft.FSM = (*Store)(nil)

// New returns an empty store.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Store{
		cfg:       cfg,
		st:        newState(),
		ring:      newDeltaRing(cfg.DeltaCapacity, 0),
		lockDelay: map[string]time.Time{},
	}
	s.watches.init()
	return s, nil
}

// Result is what Apply returns for a command; raft hands it to the server
// that proposed the command.
type Result struct {
	// Index is the raft index the command was applied at.
	Index uint64
	// OK is false when a conditional operation (KV cas, lock, unlock,
	// delete-cas; a failed transaction) did not apply. Not an error.
	OK bool
	// Err is set when the command was invalid; it changed nothing.
	Err error
	// Session is the session after create or renew.
	Session *SessionEntry
	// Txn is a transaction's results or errors.
	Txn *TxnResponse
}

// Apply implements raft.FSM: decode, apply atomically, stamp e.Index.
// Entries that are not commands only advance the applied index. A malformed
// command is refused with an error result and counted (Stats), never a
// panic: every server refuses it alike, so states stay equal.
func (s *Store) Apply(e raft.Entry) any {
	s.applied.Add(1)
	if e.Type != raft.EntryCommand {
		s.advance(e.Index)
		return Result{Index: e.Index, OK: true}
	}
	// Decoding happens under the write lock because the map-intern table
	// belongs to the writer; readers wait a fraction of a microsecond more.
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd, err := decodeCommandWith(&s.dec, e.Data, &s.maps, &s.reg, &s.regBuf)
	s.dec = decoder{} // drop references to the entry
	if err != nil {
		s.dropBorrowed()
		s.malformed.Add(1)
		if e.Index > s.st.index {
			s.st.index = e.Index
		}
		s.publish(Event{Kind: EventMalformed, Index: e.Index, Err: err.Error()})
		return Result{Index: e.Index, Err: err}
	}
	res := s.applyLocked(e.Index, cmd)
	s.dropBorrowed()
	return res
}

// dropBorrowed clears Apply's reused registration and the buffer behind
// it: their strings are the raft entry's (decodeRegister), and holding them
// past the apply would keep the whole entry alive. regBuf stays the
// store's, so the next registration decodes into it without allocating.
func (s *Store) dropBorrowed() {
	s.reg = RegisterRequest{}
	s.regBuf = registerSvcCheck{}
}

// ErrStaleIndex is returned for a command at or below the applied index.
var ErrStaleIndex = errors.New("catalog: command index is not above the applied index; it was already applied")

// ApplyCommand applies a decoded command at raft index idx. Apply calls it;
// tests and benchmarks call it directly to skip the codec. The store takes
// ownership of cmd: it may install parts of it as records (saving a copy
// per record on the hot path), so the caller must not use cmd afterwards.
func (s *Store) ApplyCommand(idx uint64, cmd Command) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applyLocked(idx, cmd)
}

// applyLocked is ApplyCommand with s.mu held for writing.
func (s *Store) applyLocked(idx uint64, cmd Command) Result {
	if idx <= s.st.index {
		return Result{Index: idx, Err: fmt.Errorf("%w (index %d, applied %d)", ErrStaleIndex, idx, s.st.index)}
	}
	t := &s.tx
	t.begin(s.st, idx)
	res := s.dispatch(t, cmd)
	res.Index = idx
	ev := Event{Kind: EventApplied, Index: idx, Command: cmd.CommandType()}
	if res.Err != nil || !t.commitOK {
		t.rollback()
		ev.Kind = EventRefused
		if res.Err != nil {
			ev.Err = res.Err.Error()
		}
	} else {
		before := s.ring.pushed
		s.commit(t)
		ev.Changes = int(s.ring.pushed - before)
		if !res.OK {
			ev.Kind = EventRefused
		}
	}
	s.st.index = idx
	s.publish(ev)
	return res
}

func (s *Store) dispatch(t *tx, cmd Command) Result {
	switch c := cmd.(type) {
	case *RegisterRequest:
		// Apply's reused request borrows its strings from the entry and
		// its records from regBuf: the store copies what it keeps.
		t.lent = c == &s.reg
		err := t.register(c)
		t.lent = false
		return resultOf(err)
	case *DeregisterRequest:
		return resultOf(t.deregister(c))
	case *KVRequest:
		ok, err := t.applyKV(c, s.cfg.MaxValueBytes)
		return Result{OK: ok && err == nil, Err: err}
	case *SessionRequest:
		return t.applySession(c)
	case *TxnRequest:
		return t.applyTxn(c, s.cfg.MaxValueBytes)
	case *CoordinateBatchRequest:
		t.updateCoordinates(c)
		return Result{OK: true}
	case *TombstoneReapRequest:
		t.reapTombstones(c.Index)
		return Result{OK: true}
	}
	return Result{Err: fmt.Errorf("catalog: no handler for command %T", cmd)}
}

func resultOf(err error) Result { return Result{OK: err == nil, Err: err} }

// advance moves the applied index without changing any table.
func (s *Store) advance(idx uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if idx > s.st.index {
		s.st.index = idx
	}
}

// commit stamps the touched indexes, appends the registry changes to the
// delta log, records lock delays and wakes the watchers of everything the
// transaction touched.
func (s *Store) commit(t *tx) {
	st, idx := s.st, t.index
	for tbl, touched := range t.tables {
		if touched {
			st.tableIndex[tbl] = idx
		}
	}
	// The service and node indexes are keyed by the folded name
	// (WatchService, WatchNode): the index of "web" moves when any of
	// "web", "Web", ... changes, and goes when the last of them does. A
	// name still stored keeps its fold alive, and asking the table the
	// transaction has just written is cheaper than asking the fold index,
	// whose entry is cold in the CPU caches in a large registry.
	for _, name := range t.services.list() {
		if fold := foldName(name); st.byService[name] != nil || len(st.serviceFold[fold]) > 0 {
			st.serviceIndex[fold] = idx
		} else {
			delete(st.serviceIndex, fold)
		}
	}
	for _, name := range t.nodes.list() {
		if fold := foldName(name); st.nodes[name] != nil || len(st.nodeFold[fold]) > 0 {
			st.nodeIndex[fold] = idx
		} else {
			delete(st.nodeIndex, fold)
		}
	}
	if t.appendRegistryChanges(&s.ring) {
		st.tableIndex[TableRegistry] = idx
		t.tables[TableRegistry] = true
	}
	if len(t.lockDelays) > 0 {
		now := s.cfg.Clock()
		if len(s.lockDelay) >= lockDelaySweepLen {
			for key, until := range s.lockDelay {
				if !now.Before(until) {
					delete(s.lockDelay, key) // expired and never asked about
				}
			}
		}
		for _, ld := range t.lockDelays {
			s.lockDelay[ld.key] = now.Add(ld.delay)
		}
	}
	s.watches.wake(t)
}

// Stats are counters for metrics.
type Stats struct {
	Applied   uint64 // entries given to Apply
	Malformed uint64 // commands the decoder refused
	Index     uint64 // last applied raft index
	Waiters   int    // blocked Wait calls
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	idx := s.st.index
	s.mu.RUnlock()
	return Stats{
		Applied:   s.applied.Load(),
		Malformed: s.malformed.Load(),
		Index:     idx,
		Waiters:   s.watches.count(),
	}
}
