package storage

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/google/btree"
)

// memIndex is an ordered in-memory set of keys, each with a rank (a due time in Unix
// nanoseconds, or a state's rank). Badger keeps three of them for the records that churn: the
// re-check queue, the delivery queue and the open payments. Read from disk, those queues would
// cost O(stored): Badger keeps the keys a transaction deleted as tombstones until a compaction
// reaches the last level, and an iterator steps over every one of them (about 12 ms per
// 100,000 on a small machine), every time. In memory they cost O(result).
//
// The store on disk stays the truth: each index is rebuilt from its keys when the store opens,
// and set from each record after the transaction that wrote the record has committed (under
// the record's stripe lock, see stripes), so it never shows what is not on disk.
type memIndex struct {
	mu    sync.RWMutex
	ranks map[Key]int64
	tree  *btree.BTreeG[memItem]
	// visits counts the entries queries stepped over (tests pin the O(result) cost with it).
	visits *atomic.Int64
}

type memItem struct {
	rank int64
	key  Key
}

func lessMemItem(a, b memItem) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	if a.key.SiteID != b.key.SiteID {
		return a.key.SiteID < b.key.SiteID
	}
	return a.key.ID < b.key.ID
}

func newMemIndex(visits *atomic.Int64) *memIndex {
	return &memIndex{ranks: map[Key]int64{}, tree: btree.NewG(32, lessMemItem), visits: visits}
}

// set puts k at rank, or removes it when present is false.
func (m *memIndex) set(k Key, rank int64, present bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.ranks[k]; ok {
		if present && old == rank {
			return
		}
		m.tree.Delete(memItem{old, k})
		delete(m.ranks, k)
	}
	if present {
		m.ranks[k] = rank
		m.tree.ReplaceOrInsert(memItem{rank, k})
	}
}

// page returns up to n keys from pivot on, in order, that keep accepts; keep also says when
// to stop. It holds the read lock only while it walks memory: callers read the records after.
func (m *memIndex) page(pivot memItem, n int, keep func(it memItem) (ok, more bool)) []memItem {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var items []memItem
	m.tree.AscendGreaterOrEqual(pivot, func(it memItem) bool {
		if len(items) >= n {
			return false
		}
		m.visits.Add(1)
		ok, more := keep(it)
		if ok {
			items = append(items, it)
		}
		return more
	})
	return items
}

// walk calls fn for every entry in order until fn returns false, without counting visits (for
// figures, not queries).
func (m *memIndex) walk(fn func(it memItem) bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	m.tree.Ascend(fn)
}

// stripes serialise the writes of one record (a payment, or a delivery) from the read to the
// update of the in-memory indexes, so that two commits of one record update them in commit
// order. Writes of different records take different stripes (mostly) and commit together in
// one of Badger's group commits.
type stripes struct {
	seed maphash.Seed
	mu   [256]sync.Mutex
}

func (s *stripes) lock(kind byte, k Key) func() {
	m := &s.mu[s.index(kind, k)]
	m.Lock()
	return m.Unlock
}

// index is the stripe of a record.
func (s *stripes) index(kind byte, k Key) int {
	var h maphash.Hash
	h.SetSeed(s.seed)
	_ = h.WriteByte(kind)
	_, _ = h.WriteString(k.SiteID)
	_ = h.WriteByte('/')
	_, _ = h.WriteString(k.ID)
	return int(h.Sum64() % uint64(len(s.mu)))
}

// recordCache keeps the records last written or read, written through after each commit. A
// read in Badger waits for the commits in flight to be synced (its read timestamp must be
// done), so on a busy store every Get cost a disk sync; from the cache it costs a lookup. A
// record is set from the transaction that committed it, under its stripe lock, so the cache
// never holds a version older than one already returned. It holds at most 2×recordCacheSize
// records: when the current generation is full it becomes the old one, and a hit in the old
// one moves to the current.
type recordCache[T any] struct {
	mu       sync.Mutex
	cur, old map[Key]*T
	clone    func(*T) T
}

const recordCacheSize = 4096

func (c *recordCache[T]) get(k Key) (T, bool) {
	c.mu.Lock()
	v, ok := c.cur[k]
	if !ok {
		if v, ok = c.old[k]; ok {
			c.putLocked(k, v)
		}
	}
	c.mu.Unlock()
	if !ok {
		var zero T
		return zero, false
	}
	return c.clone(v), true
}

func (c *recordCache[T]) put(k Key, v *T) {
	cp := c.clone(v)
	c.mu.Lock()
	c.putLocked(k, &cp)
	c.mu.Unlock()
}

func (c *recordCache[T]) putLocked(k Key, v *T) {
	if c.cur == nil || len(c.cur) >= recordCacheSize {
		c.old, c.cur = c.cur, make(map[Key]*T, recordCacheSize)
	}
	c.cur[k] = v
}

func (c *recordCache[T]) drop(k Key) {
	c.mu.Lock()
	delete(c.cur, k)
	delete(c.old, k)
	c.mu.Unlock()
}

// clonePayment copies a payment with its own history and confirmation.
func clonePayment(p *Payment) Payment {
	cp := *p
	cp.History = slices.Clone(p.History)
	if p.Confirmed != nil {
		c := *p.Confirmed
		cp.Confirmed = &c
	}
	return cp
}

func cloneDelivery(d *Delivery) Delivery { return *d }
