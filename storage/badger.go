package storage

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
)

// Key layout. Every record key but meta/ starts with a kind and the site id.
//
//	meta/prefix                          the store's transaction id prefix
//	p/<site>/<txid>                      Payment (JSON)
//	o/<site>/<order>/<txid>              order index (empty value)
//	oh/<site>/<order>                    the order's latest payment (txid)
//	paid/<site>/<order>                  the payment that paid the order (txid)
//	rq/<due:8 bytes BE>/<site>/<txid>    re-check queue
//	d/<site>/<event id>                  Delivery (JSON)
//	dq/<due:8 bytes BE>/<site>/<id>      delivery queue (pending deliveries only)
//	ps/<state>/<site>/<txid>             payments by state
//	ds/<state>/<site>/<id>               deliveries by state
//	dt/<txid>/<site>/<id>                deliveries by transaction
//	se/<last change:8 bytes BE>/<site>/<txid>  settled payments (not INIT, PENDING, UNKNOWN), for purge
//	pt/<created:8 bytes BE>/<site>/<txid>      payments by creation, for newest-first listings,
//	pts/<site>/<created:8 bytes BE>/<site>/<txid>         the same of one site,
//	pst/<state>/<created:8 bytes BE>/<site>/<txid>        of one state,
//	psst/<state>/<site>/<created:8 bytes BE>/<site>/<txid>  of one state and site
//	meta/indexes                         the version of the indexes above (indexesVersion)
//
// Every index key is written in the transaction that writes its record. The queues and the
// open payments are also kept in memory (see memIndex), rebuilt from their keys at Open.
const (
	keyMetaPrefix  = "meta/prefix"
	keyMetaIndexes = "meta/indexes"
	kindPayment    = "p/"
	kindOrder      = "o/"
	kindOrderHead  = "oh/"
	kindPaid       = "paid/"
	kindRecheck    = "rq/"
	kindDelivery   = "d/"
	kindDueDeliv   = "dq/"
	kindPayState   = "ps/"
	kindDelState   = "ds/"
	kindDelByTx    = "dt/"
	kindSettled    = "se/"
	kindPayTime    = "pt/"
	kindPaySiteT   = "pts/"
	kindPayStTime  = "pst/"
	kindPaySiteStT = "psst/"

	// indexesVersion names the set of indexes a store has; Open builds what an older one lacks.
	indexesVersion = "3"
)

// Options tune Open.
type Options struct {
	// InMemory keeps everything in memory: for unit tests only.
	InMemory bool
	// Logger receives Badger's warnings and errors. Nil: discarded.
	Logger *zap.Logger
}

// Badger is the Badger-backed Store.
//
// Memory: besides Badger's own caches (about 50 MB at most with the options of Open), the store
// keeps three in-memory indexes: one entry (about 200 bytes) per payment that is open (INIT,
// PENDING, UNKNOWN) or has a re-check scheduled, and per pending delivery. Settled payments and
// finished deliveries cost no memory, however many are stored.
type Badger struct {
	db     *badger.DB
	prefix string

	// checks (rank: NextCheck), dues (rank: when the delivery is next due, its lease included)
	// and open (rank: the state's place in States) mirror rq/, dq/ and the open states of ps/;
	// since (rank: Since) holds the pending deliveries too, oldest round first, for Stats.
	checks, dues, open, since *memIndex
	// reads counts index entries and records that queries read; tests use it to pin costs.
	reads atomic.Int64
	locks stripes

	// leases are the delivery attempts in flight. Only one process opens a Badger directory,
	// so a lease need not be written: a crash ends every attempt, and a delivery whose attempt
	// never finished is due again on restart.
	leaseMu sync.Mutex
	leases  map[Key]attemptLease

	// payments and deliveries cache the records last committed or read (see recordCache)
	payments   recordCache[Payment]
	deliveries recordCache[Delivery]
	// commits groups the payment changes and attempt outcomes that arrive together into one
	// transaction (see groupCommit)
	commits groupCommit
	// purges counts purge deletions begun: a read that overlapped one does not fill a cache
	purges atomic.Int64
}

// attemptLease is one delivery attempt in flight.
type attemptLease struct {
	attempt      int
	start, until time.Time
}

var _ Store = (*Badger)(nil)

// Open opens (creating it if needed) the store in dir. Every transaction is synced by Badger
// (SyncWrites), one sync per transaction even when several commit at once, hence the group
// transactions of Update and FinishAttempt (see groupCommit). Unsynced writes followed by
// our own db.Sync would save a sync per delivery outcome, but Badger's Sync covers only the
// active memtable's log: a commit whose memtable rotated out before the Sync would rest on an
// unsynced log until the flush, a window in which a power cut loses it. Left so. Badger's
// managed mode (timestamps of our own) would let a transaction begin without waiting for the
// syncs before it; it changes every transaction of the store, and is left for now too.
//
// Badger locks the directory: a second Open of one directory fails, even in one process; share
// the *Badger instead.
func Open(dir string, opts Options) (*Badger, error) {
	bo := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(badgerLogger{opts.Logger}).
		// payment records are small; keep memory modest
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(8 << 20).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2).
		WithNumVersionsToKeep(1)
	if opts.InMemory {
		bo = bo.WithDir("").WithValueDir("").WithInMemory(true)
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("opening badger store: %w", err)
	}
	s := &Badger{db: db, leases: map[Key]attemptLease{}}
	s.payments.clone, s.deliveries.clone = clonePayment, cloneDelivery
	s.locks.seed = maphash.MakeSeed()
	s.checks, s.dues, s.open, s.since = newMemIndex(&s.reads), newMemIndex(&s.reads), newMemIndex(&s.reads), newMemIndex(&s.reads)
	for _, step := range []func() error{s.loadPrefix, s.ensureIndexes, s.loadMemory} {
		if err := step(); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	return s, nil
}

// ensureIndexes builds the state and transaction indexes of a store written before they
// existed, once; a build cut short is redone at the next Open.
func (s *Badger) ensureIndexes() error {
	var have bool
	if err := s.db.View(func(txn *badger.Txn) error {
		v, err := getString(txn, []byte(keyMetaIndexes))
		have = err == nil && v == indexesVersion
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}); err != nil || have {
		return err
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	err := s.db.View(func(txn *badger.Txn) error {
		if err := iterate(txn, []byte(kindPayment), true, func(_, v []byte) (bool, error) {
			var p Payment
			if err := json.Unmarshal(v, &p); err != nil {
				return false, err
			}
			if !p.State.Open() {
				if err := wb.Set(settledKey(p.LastChange(), p.SiteID, p.TransactionID), nil); err != nil {
					return false, err
				}
			}
			for _, k := range append(payTimeKeys(&p), payStateTimeKeys(p.State, &p)...) {
				if err := wb.Set(k, nil); err != nil {
					return false, err
				}
			}
			return true, wb.Set(payStateKey(p.State, p.SiteID, p.TransactionID), nil)
		}); err != nil {
			return err
		}
		return iterate(txn, []byte(kindDelivery), true, func(_, v []byte) (bool, error) {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return false, err
			}
			if err := wb.Set(delStateKey(d.State, d.SiteID, d.ID), nil); err != nil {
				return false, err
			}
			return true, wb.Set(delByTxKey(d.TransactionID, d.SiteID, d.ID), nil)
		})
	})
	if err != nil {
		return fmt.Errorf("building the store's indexes: %w", err)
	}
	if err := wb.Set([]byte(keyMetaIndexes), []byte(indexesVersion)); err != nil {
		return err
	}
	return wb.Flush()
}

// loadMemory fills the in-memory indexes from their keys on disk.
func (s *Badger) loadMemory() error {
	return s.db.View(func(txn *badger.Txn) error {
		for _, q := range []struct {
			kind string
			idx  *memIndex
		}{{kindRecheck, s.checks}, {kindDueDeliv, s.dues}} {
			if err := iterate(txn, []byte(q.kind), false, func(k, _ []byte) (bool, error) {
				if len(k) < len(q.kind)+8 {
					return true, nil
				}
				due := int64(binary.BigEndian.Uint64(k[len(q.kind):]))
				if site, id, ok := strings.Cut(string(k[len(q.kind)+8:]), "/"); ok {
					q.idx.set(Key{SiteID: site, ID: id}, due, true)
				}
				return true, nil
			}); err != nil {
				return err
			}
		}
		// the pending deliveries' rounds, from their records (the queue's keys hold due times)
		var pending []Key
		s.dues.walk(func(it memItem) bool { pending = append(pending, it.key); return true })
		for _, k := range pending {
			d, err := getDelivery(txn, k.SiteID, k.ID)
			if err != nil {
				return fmt.Errorf("pending delivery %s/%s: %w", k.SiteID, k.ID, err)
			}
			s.since.set(k, d.Since.UnixNano(), true)
		}
		for _, st := range States {
			if !st.Open() {
				continue
			}
			prefix := kindPayState + string(st) + "/"
			if err := iterate(txn, []byte(prefix), false, func(k, _ []byte) (bool, error) {
				if site, id, ok := strings.Cut(string(k[len(prefix):]), "/"); ok {
					s.open.set(Key{SiteID: site, ID: id}, stateRank(st), true)
				}
				return true, nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

// stateRank is a state's place in States, the rank of the open index.
func stateRank(st State) int64 { return int64(slices.Index(States, st)) }

// indexPayment sets the in-memory indexes from a committed payment.
func (s *Badger) indexPayment(p *Payment) {
	k := Key{SiteID: p.SiteID, ID: p.TransactionID}
	s.checks.set(k, p.NextCheck.UnixNano(), !p.NextCheck.IsZero())
	s.open.set(k, stateRank(p.State), p.State.Open())
}

// indexDelivery sets the delivery queue from a committed delivery: a pending delivery is due
// at its next attempt, or when the lease of its attempt in flight ends.
func (s *Badger) indexDelivery(d *Delivery) {
	k := Key{SiteID: d.SiteID, ID: d.ID}
	due := d.NextAttempt
	s.leaseMu.Lock()
	if l, ok := s.leases[k]; ok {
		if d.State != DeliveryPending {
			delete(s.leases, k)
		} else if l.until.After(due) {
			due = l.until
		}
	}
	s.leaseMu.Unlock()
	s.dues.set(k, due.UnixNano(), d.State == DeliveryPending)
	s.since.set(k, d.Since.UnixNano(), d.State == DeliveryPending)
}

// committedPayment sets the in-memory indexes and the cache from a committed payment.
func (s *Badger) committedPayment(p *Payment) {
	s.indexPayment(p)
	s.payments.put(Key{SiteID: p.SiteID, ID: p.TransactionID}, p)
}

// committedDelivery sets the delivery queue and the cache from a committed delivery.
func (s *Badger) committedDelivery(d *Delivery) {
	s.indexDelivery(d)
	s.deliveries.put(Key{SiteID: d.SiteID, ID: d.ID}, d)
}

// Reads is how many index entries and records the store's queries have read so far.
func (s *Badger) Reads() int64 { return s.reads.Load() }

// loadPrefix reads the store's transaction id prefix, creating it on first use.
func (s *Badger) loadPrefix() error {
	return s.update(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(keyMetaPrefix))
		if err == nil {
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			s.prefix = string(v)
			return nil
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		p := randomAlnum(prefixLen)
		if err := txn.Set([]byte(keyMetaPrefix), []byte(p)); err != nil {
			return err
		}
		s.prefix = p
		return nil
	})
}

const (
	prefixLen = 6
	// TransactionIDLen is the length of the transaction ids this package makes: letters and
	// digits, within CinetPay's 30.
	TransactionIDLen = 24
)

// Prefix implements Store.
func (s *Badger) Prefix() string { return s.prefix }

// OwnsTransaction implements Store.
func (s *Badger) OwnsTransaction(txid string) bool {
	return len(txid) == TransactionIDLen && strings.HasPrefix(txid, s.prefix) && isUpperAlnum(txid)
}

// NewTransactionID makes a transaction id: the store prefix, then random letters and digits.
func (s *Badger) NewTransactionID() string {
	return s.prefix + randomAlnum(TransactionIDLen-prefixLen)
}

// Close implements Store.
func (s *Badger) Close() error { return s.db.Close() }

// GC implements Store: it rewrites value log files while Badger finds enough garbage. An
// in-memory store has none.
func (s *Badger) GC() error {
	if s.db.Opts().InMemory {
		return nil
	}
	for range 16 {
		err := s.db.RunValueLogGC(0.5)
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// update runs fn in a read-write transaction, retrying on conflicts.
func (s *Badger) update(fn func(txn *badger.Txn) error) error {
	var err error
	for range 64 {
		err = s.db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return err
}

// Claim implements Store. In one transaction it reads the order's paid marker and latest
// payment, and either answers with one of them or stores a new INIT payment; concurrent claims
// of one order conflict on the order head key, and the losers retry and see the winner's INIT.
func (s *Badger) Claim(c Claim) (ClaimResult, error) {
	if err := checkParts(c.SiteID, c.OrderID); err != nil {
		return ClaimResult{}, err
	}
	// the new payment's id is drawn first, and its stripe held until the indexes and the cache
	// have it: an Update of it (its id is handed out by ClaimBusy) lands after, never between
	newID := s.NewTransactionID()
	defer s.locks.lock('p', Key{SiteID: c.SiteID, ID: newID})()
	var res ClaimResult
	err := s.update(func(txn *badger.Txn) error {
		res = ClaimResult{}
		var paidBy string
		var paid, head *Payment
		if txid, err := getString(txn, paidKey(c.SiteID, c.OrderID)); err == nil {
			paidBy = txid
			if p, err := getPayment(txn, c.SiteID, txid); err == nil {
				paid = &p
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if paidBy == "" {
			if txid, err := getString(txn, orderHeadKey(c.SiteID, c.OrderID)); err == nil {
				p, err := getPayment(txn, c.SiteID, txid)
				if err != nil {
					return err
				}
				head = &p
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		if r, done := claimRule(c, paidBy, paid, head); done {
			res = r
			return nil
		}
		p := newClaimPayment(c, newID)
		if err := writePayment(txn, nil, &p); err != nil {
			return err
		}
		if err := txn.Set(orderKey(c.SiteID, c.OrderID, p.TransactionID), nil); err != nil {
			return err
		}
		if err := txn.Set(orderHeadKey(c.SiteID, c.OrderID), []byte(p.TransactionID)); err != nil {
			return err
		}
		res = ClaimResult{Kind: ClaimNew, Payment: p}
		return nil
	})
	if err == nil && res.Kind == ClaimNew {
		s.committedPayment(&res.Payment)
	}
	return res, err
}

// Get implements Store.
func (s *Badger) Get(site, txid string) (Payment, error) {
	if err := checkParts(site, txid); err != nil {
		return Payment{}, ErrNotFound
	}
	k := Key{SiteID: site, ID: txid}
	if p, ok := s.payments.get(k); ok {
		return p, nil
	}
	// filled under the stripe: no commit of this payment can land between the read and the fill
	defer s.locks.lock('p', k)()
	if p, ok := s.payments.get(k); ok {
		return p, nil
	}
	purges := s.purges.Load()
	var p Payment
	s.reads.Add(1)
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		p, err = getPayment(txn, site, txid)
		return err
	})
	if err == nil && s.purges.Load() == purges {
		s.payments.put(k, &p)
	}
	return p, err
}

// Update implements Store. It reads the payment, lets fn change it, and writes it back in the
// same transaction, retrying fn on conflicts. A final payment (ACCEPTED, MISMATCH, DUPLICATE) is
// returned unchanged without calling fn. A state change must follow the state machine, else
// ErrBadTransition and nothing is written. A change to ACCEPTED for an order another payment has
// already paid is stored as DUPLICATE. A change into a delivering state stores its delivery,
// due at now, in the same transaction. fn returning an error aborts without writing.
//
// The transaction is a group one (see groupCommit), and the payment is read from the cache
// when it is there: every write of a payment holds its stripe, which Update holds from the read
// to the cache's update, so the cached version is the stored one (the order's paid marker,
// which other payments write, is still read in the transaction, where conflicts are seen).
func (s *Badger) Update(site, txid string, now time.Time, fn func(p *Payment) error) (UpdateResult, error) {
	if err := checkParts(site, txid); err != nil {
		return UpdateResult{}, ErrNotFound
	}
	k := Key{SiteID: site, ID: txid}
	defer s.locks.lock('p', k)()
	cached, hit := s.payments.get(k)
	var res UpdateResult
	var write bool
	err := s.commits.commit(s, func(txn *badger.Txn) error {
		res, write = UpdateResult{}, false
		var p Payment
		if hit {
			p = clonePayment(&cached)
		} else {
			var err error
			if p, err = getPayment(txn, site, txid); err != nil {
				return err
			}
		}
		var before Payment
		var err error
		// applyUpdate returns markPaid's error as it is: a failed write stays a writeFailed
		res, before, write, err = applyUpdate(p, now, fn, func(order, txid string) (string, error) {
			paidBy, err := getString(txn, paidKey(site, order))
			if errors.Is(err, ErrNotFound) {
				if err := txn.Set(paidKey(site, order), []byte(txid)); err != nil {
					return "", writeFailed{err}
				}
				return txid, nil
			}
			return paidBy, err
		})
		if err != nil || !write {
			return err
		}
		if res.Delivery != nil {
			if err := writeDelivery(txn, nil, res.Delivery); err != nil {
				return writeFailed{err}
			}
		}
		if err := writePayment(txn, &before, &res.Payment); err != nil {
			return writeFailed{err}
		}
		return nil
	})
	switch {
	case err == nil && write:
		s.committedPayment(&res.Payment)
		if res.Delivery != nil {
			s.committedDelivery(res.Delivery)
		}
	case err == nil && !hit:
		s.payments.put(k, &res.Payment)
	case err != nil:
		// after any error the next read goes to disk: a failed commit may be there
		s.payments.drop(k)
	}
	return res, err
}

// writer is what a transaction and a write batch have in common.
type writer interface {
	Set(k, v []byte) error
	Delete(k []byte) error
}

// writePayment writes a payment with its state and re-check index keys; before is the stored
// version (nil for a new payment).
func writePayment(w writer, before, p *Payment) error {
	if before == nil {
		for _, k := range payTimeKeys(p) {
			if err := w.Set(k, nil); err != nil {
				return err
			}
		}
	}
	if before == nil || before.State != p.State {
		if before != nil {
			if err := w.Delete(payStateKey(before.State, p.SiteID, p.TransactionID)); err != nil {
				return err
			}
			for _, k := range payStateTimeKeys(before.State, before) {
				if err := w.Delete(k); err != nil {
					return err
				}
			}
		}
		if err := w.Set(payStateKey(p.State, p.SiteID, p.TransactionID), nil); err != nil {
			return err
		}
		for _, k := range payStateTimeKeys(p.State, p) {
			if err := w.Set(k, nil); err != nil {
				return err
			}
		}
	}
	settledBefore := before != nil && !before.State.Open()
	if settledBefore && (p.State.Open() || !before.LastChange().Equal(p.LastChange())) {
		if err := w.Delete(settledKey(before.LastChange(), p.SiteID, p.TransactionID)); err != nil {
			return err
		}
	}
	if !p.State.Open() && (!settledBefore || !before.LastChange().Equal(p.LastChange())) {
		if err := w.Set(settledKey(p.LastChange(), p.SiteID, p.TransactionID), nil); err != nil {
			return err
		}
	}
	if before == nil || !p.NextCheck.Equal(before.NextCheck) {
		if before != nil && !before.NextCheck.IsZero() {
			if err := w.Delete(recheckKey(before.NextCheck, p.SiteID, p.TransactionID)); err != nil {
				return err
			}
		}
		if !p.NextCheck.IsZero() {
			if err := w.Set(recheckKey(p.NextCheck, p.SiteID, p.TransactionID), nil); err != nil {
				return err
			}
		}
	}
	return putJSON(w, paymentKey(p.SiteID, p.TransactionID), p)
}

// writeDelivery writes a delivery with its state, transaction and queue index keys; before is
// the stored version (nil for a new delivery).
func writeDelivery(w writer, before, d *Delivery) error {
	if before == nil {
		if err := w.Set(delByTxKey(d.TransactionID, d.SiteID, d.ID), nil); err != nil {
			return err
		}
	}
	if before == nil || before.State != d.State {
		if before != nil {
			if err := w.Delete(delStateKey(before.State, d.SiteID, d.ID)); err != nil {
				return err
			}
		}
		if err := w.Set(delStateKey(d.State, d.SiteID, d.ID), nil); err != nil {
			return err
		}
	}
	wasQueued := before != nil && before.State == DeliveryPending
	queued := d.State == DeliveryPending
	if wasQueued && (!queued || !before.NextAttempt.Equal(d.NextAttempt)) {
		if err := w.Delete(dueDeliveryKey(before.NextAttempt, d.SiteID, d.ID)); err != nil {
			return err
		}
	}
	if queued && (!wasQueued || !before.NextAttempt.Equal(d.NextAttempt)) {
		if err := w.Set(dueDeliveryKey(d.NextAttempt, d.SiteID, d.ID), nil); err != nil {
			return err
		}
	}
	return putJSON(w, deliveryKey(d.SiteID, d.ID), d)
}

// DueChecks implements Store. It reads the in-memory re-check queue: O(result).
func (s *Badger) DueChecks(now time.Time, limit int) ([]Key, error) {
	items := s.checks.page(memItem{}, pageLimit(limit, maxDue), func(it memItem) (bool, bool) {
		due := it.rank <= now.UnixNano()
		return due, due
	})
	return keysOf(items), nil
}

// keysOf is the keys of index entries.
func keysOf(items []memItem) []Key {
	keys := make([]Key, len(items))
	for i, it := range items {
		keys[i] = it.key
	}
	return keys
}

// siteDir is the key part that narrows an index to a site ("" for every site).
func siteDir(site string) string {
	if site == "" {
		return ""
	}
	return site + "/"
}

// DueDeliveries implements Store. It reads the in-memory delivery queue, then the due
// deliveries: O(result).
func (s *Badger) DueDeliveries(now time.Time, limit int) ([]Delivery, error) {
	items := s.dues.page(memItem{}, pageLimit(limit, maxDue), func(it memItem) (bool, bool) {
		due := it.rank <= now.UnixNano()
		return due, due
	})
	return s.getDeliveries(keysOf(items))
}

// Stats implements Store, from the in-memory indexes: O(open payments + pending deliveries +
// due re-checks), no disk read.
func (s *Badger) Stats(now time.Time) (map[string]*SiteStats, error) {
	out := map[string]*SiteStats{}
	s.dues.walk(func(it memItem) bool {
		siteStats(out, it.key.SiteID).DeliveriesPending++
		return true
	})
	s.since.walk(func(it memItem) bool {
		// oldest first: the first of each site is its oldest
		if st := siteStats(out, it.key.SiteID); st.OldestPending.IsZero() {
			st.OldestPending = time.Unix(0, it.rank)
		}
		return true
	})
	s.open.walk(func(it memItem) bool {
		if it.rank >= 0 && int(it.rank) < len(States) {
			siteStats(out, it.key.SiteID).PaymentsOpen[States[it.rank]]++
		}
		return true
	})
	s.checks.walk(func(it memItem) bool {
		if it.rank > now.UnixNano() {
			return false
		}
		siteStats(out, it.key.SiteID).RechecksDue++
		return true
	})
	return out, nil
}

// pageLimit is the size of a page asked for n: none when n is not positive, at most maxDue.
func pageLimit(n, none int) int {
	if n <= 0 {
		return none
	}
	return min(n, maxDue)
}

// maxDue bounds a page of a queue or a listing.
const maxDue = 10_000

// indexKeys lists up to limit keys of an index whose keys are <prefix><site>/<id>, from the
// ones under from (prefix, or prefix plus a site).
func (s *Badger) indexKeys(txn *badger.Txn, prefix, from string, limit int) ([]Key, error) {
	var keys []Key
	err := s.iterate(txn, []byte(from), false, func(k, _ []byte) (bool, error) {
		if site, id, ok := strings.Cut(string(k[len(prefix):]), "/"); ok {
			keys = append(keys, Key{SiteID: site, ID: id})
		}
		return len(keys) < limit, nil
	})
	return keys, err
}

// getDeliveries reads the deliveries of index entries; one that is gone meanwhile is skipped.
func (s *Badger) getDeliveries(keys []Key) ([]Delivery, error) {
	out := make([]Delivery, 0, len(keys))
	var missed []Key
	for _, k := range keys {
		if d, ok := s.deliveries.get(k); ok {
			s.reads.Add(1)
			out = append(out, d)
		} else {
			missed = append(missed, k)
		}
	}
	if len(missed) == 0 {
		return out, nil
	}
	err := s.db.View(func(txn *badger.Txn) error {
		for _, k := range missed {
			s.reads.Add(1)
			d, err := getDelivery(txn, k.SiteID, k.ID)
			if errors.Is(err, ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// getPayments reads the payments of index entries; one that is gone meanwhile is skipped.
func (s *Badger) getPayments(txn *badger.Txn, keys []Key, state State) ([]Payment, error) {
	out := make([]Payment, 0, len(keys))
	for _, k := range keys {
		s.reads.Add(1)
		p, err := getPayment(txn, k.SiteID, k.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		if state == "" || p.State == state {
			out = append(out, p)
		}
	}
	return out, nil
}

// GetDelivery implements Store.
func (s *Badger) GetDelivery(site, id string) (Delivery, error) {
	if err := checkParts(site, id); err != nil {
		return Delivery{}, ErrNotFound
	}
	return s.getDelivery(Key{SiteID: site, ID: id}, true)
}

// getDelivery reads a delivery from the cache, else from disk, filling the cache under the
// delivery's stripe (lock: take it; else the caller holds it).
func (s *Badger) getDelivery(k Key, lock bool) (Delivery, error) {
	if d, ok := s.deliveries.get(k); ok {
		return d, nil
	}
	if lock {
		defer s.locks.lock('d', k)()
		if d, ok := s.deliveries.get(k); ok {
			return d, nil
		}
	}
	purges := s.purges.Load()
	var d Delivery
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		d, err = getDelivery(txn, k.SiteID, k.ID)
		return err
	})
	if err == nil && s.purges.Load() == purges {
		s.deliveries.put(k, &d)
	}
	return d, err
}

// BeginAttempt implements Store: if the delivery is pending, due at now and not in an attempt
// already, it leases it for one more attempt until now+lease, before anything is sent; two
// workers can therefore never send one attempt at once. The lease is kept in memory (see
// Badger.leases): no write. A delivery not pending, not due or leased gives ErrStaleAttempt.
// The returned delivery counts the attempt.
func (s *Badger) BeginAttempt(site, id string, now time.Time, lease time.Duration) (Delivery, error) {
	if err := checkParts(site, id); err != nil {
		return Delivery{}, ErrNotFound
	}
	k := Key{SiteID: site, ID: id}
	defer s.locks.lock('d', k)()
	d, err := s.getDelivery(k, false)
	if err != nil {
		return Delivery{}, err
	}
	s.leaseMu.Lock()
	l, held := s.leases[k]
	if d.State != DeliveryPending || d.NextAttempt.After(now) || held && l.until.After(now) {
		s.leaseMu.Unlock()
		return Delivery{}, ErrStaleAttempt
	}
	// an attempt whose lease ran out without finishing keeps its number
	l = attemptLease{attempt: max(d.Attempts, l.attempt) + 1, start: now, until: now.Add(lease)}
	s.leases[k] = l
	s.leaseMu.Unlock()
	s.dues.set(k, l.until.UnixNano(), true)
	return leased(d, l.attempt, now, l.until), nil
}

// FinishAttempt implements Store: it records the outcome of the attempt BeginAttempt returned
// (attempt is its Attempts), in one transaction with the changes committed at the same time
// (see groupCommit). If that attempt is no longer the one in flight (its lease ran out and
// another began, or the delivery is no longer pending), ErrStaleAttempt.
func (s *Badger) FinishAttempt(site, id string, attempt int, r AttemptResult) (Delivery, error) {
	if err := checkParts(site, id); err != nil {
		return Delivery{}, ErrNotFound
	}
	k := Key{SiteID: site, ID: id}
	defer s.locks.lock('d', k)()
	s.leaseMu.Lock()
	l, held := s.leases[k]
	s.leaseMu.Unlock()
	if !held || l.attempt != attempt {
		return Delivery{}, ErrStaleAttempt
	}
	d, err := s.commitDelivery(k, func(d *Delivery) error {
		return finishAttempt(d, attempt, l.start, r)
	})
	if err == nil || errors.Is(err, ErrStaleAttempt) {
		s.leaseMu.Lock()
		delete(s.leases, k)
		s.leaseMu.Unlock()
	}
	if err == nil {
		s.committedDelivery(&d)
	}
	return d, err
}

// groupCommit commits the changes that arrive together in one transaction. Badger syncs its
// log once per transaction, not once per batch of transactions, so the payment changes and the
// attempt outcomes committed at once cost one sync, not one each. The first caller commits for
// everyone waiting, batch after batch, until none is left; the others wait for their result.
// Each change is decided on its own: one that fails (a stale attempt, a forbidden transition)
// leaves the others. Every caller holds the stripe of its record, so two changes of one record
// never meet in a batch.
type groupCommit struct {
	mu      sync.Mutex
	pending []*groupChange
	running bool
}

// groupChange is one change of a group transaction.
type groupChange struct {
	// stage adds the change to txn. An error of the change itself (nothing written yet) fails
	// it alone; a failed write (writeFailed) fails the transaction.
	stage func(txn *badger.Txn) error
	err   error
	done  chan struct{}
}

// writeFailed marks an error of a write into the group transaction: the transaction, not the
// change, failed.
type writeFailed struct{ err error }

func (e writeFailed) Error() string { return e.err.Error() }
func (e writeFailed) Unwrap() error { return e.err }

// maxGroup bounds the changes of one transaction.
const maxGroup = 64

// commit stages a change with the others arriving at the same time and returns once their
// transaction is committed (synced), with the change's own error or the transaction's.
func (g *groupCommit) commit(s *Badger, stage func(txn *badger.Txn) error) error {
	c := &groupChange{stage: stage, done: make(chan struct{})}
	g.mu.Lock()
	g.pending = append(g.pending, c)
	if g.running {
		g.mu.Unlock()
		<-c.done
		return c.err
	}
	g.running = true
	for len(g.pending) > 0 {
		n := min(len(g.pending), maxGroup)
		batch := g.pending[:n:n]
		g.pending = g.pending[n:]
		g.mu.Unlock()
		s.commitChanges(batch)
		g.mu.Lock()
	}
	g.running = false
	g.mu.Unlock()
	<-c.done
	return c.err
}

// commitChanges commits a batch in one transaction, retried on conflicts. A batch too big for
// one transaction is committed change by change.
func (s *Badger) commitChanges(batch []*groupChange) {
	if groupCommitting != nil {
		groupCommitting(len(batch))
	}
	err := s.update(func(txn *badger.Txn) error {
		for _, c := range batch {
			c.err = c.stage(txn)
			var wf writeFailed
			if errors.As(c.err, &wf) {
				return wf.err
			}
		}
		return nil
	})
	if errors.Is(err, badger.ErrTxnTooBig) && len(batch) > 1 {
		for _, c := range batch {
			s.commitChanges([]*groupChange{c})
		}
		return
	}
	for _, c := range batch {
		if err != nil {
			var wf writeFailed
			if c.err == nil || errors.As(c.err, &wf) {
				c.err = err
			}
		}
		close(c.done)
	}
}

// commitDelivery applies fn to the delivery k in a group transaction. The caller holds k's
// stripe.
func (s *Badger) commitDelivery(k Key, fn func(d *Delivery) error) (Delivery, error) {
	var out Delivery
	err := s.commits.commit(s, func(txn *badger.Txn) error {
		out = Delivery{}
		d, err := getDelivery(txn, k.SiteID, k.ID)
		if err != nil {
			return err
		}
		before := d
		if err := fn(&d); err != nil {
			return err
		}
		if err := writeDelivery(txn, &before, &d); err != nil {
			return writeFailed{err}
		}
		out = d
		return nil
	})
	return out, err
}

// Replay implements Store. A replay during an attempt lets the attempt finish first, which
// leaves the delivery due at once (see finishAttempt).
func (s *Badger) Replay(site, id string, now time.Time) (Delivery, error) {
	if err := checkParts(site, id); err != nil {
		return Delivery{}, ErrNotFound
	}
	defer s.locks.lock('d', Key{SiteID: site, ID: id})()
	d, err := s.updateDelivery(site, id, func(d *Delivery) error {
		replay(d, now)
		return nil
	})
	if err == nil {
		s.committedDelivery(&d)
	}
	return d, err
}

// updateDelivery changes a delivery in one transaction, with its index keys. The caller holds
// the delivery's stripe and sets the in-memory queue after.
func (s *Badger) updateDelivery(site, id string, fn func(d *Delivery) error) (Delivery, error) {
	var out Delivery
	err := s.update(func(txn *badger.Txn) error {
		d, err := getDelivery(txn, site, id)
		if err != nil {
			return err
		}
		before := d
		if err := fn(&d); err != nil {
			return err
		}
		out = d
		return writeDelivery(txn, &before, &d)
	})
	return out, err
}

// ListPayments implements Store, at O(result), newest first: an order's payments from the
// order index, the others from the creation-time indexes (by state, or all), walked backwards
// from Until or the cursor down to Since.
func (s *Badger) ListPayments(f PaymentFilter) ([]Payment, error) {
	limit := pageLimit(f.Limit, 100)
	if f.SiteID != "" && checkParts(f.SiteID) != nil || f.OrderID != "" && checkParts(f.SiteID, f.OrderID) != nil {
		return nil, nil
	}
	var out []Payment
	err := s.db.View(func(txn *badger.Txn) error {
		if f.OrderID != "" {
			var keys []Key
			if err := s.iterate(txn, []byte(kindOrder+f.SiteID+"/"+f.OrderID+"/"), false, func(k, _ []byte) (bool, error) {
				keys = append(keys, Key{SiteID: f.SiteID, ID: string(k[bytes.LastIndexByte(k, '/')+1:])})
				return true, nil
			}); err != nil {
				return err
			}
			ps, err := s.getPayments(txn, keys, f.State)
			ps = slices.DeleteFunc(ps, func(p Payment) bool { return !f.admits(&p) })
			NewestFirst(ps)
			out = ps[:min(len(ps), limit)]
			return err
		}
		var prefix string
		switch {
		case f.State == "" && f.SiteID == "":
			prefix = kindPayTime
		case f.State == "":
			prefix = kindPaySiteT + f.SiteID + "/"
		case f.SiteID == "":
			prefix = kindPayStTime + string(f.State) + "/"
		default:
			prefix = kindPaySiteStT + string(f.State) + "/" + f.SiteID + "/"
		}
		keys, err := s.newestKeys(txn, prefix, &f, limit)
		if err != nil {
			return err
		}
		out, err = s.getPayments(txn, keys, f.State)
		return err
	})
	return out, err
}

// newestKeys walks a creation-time index (<prefix><created:8>/<site>/<id>, see timeKey)
// backwards: the keys before f.Until and f.After, down to f.Since, up to limit.
func (s *Badger) newestKeys(txn *badger.Txn, prefix string, f *PaymentFilter, limit int) ([]Key, error) {
	seek := append([]byte(prefix), 0xff)
	if !f.Until.IsZero() {
		seek = dueKeyPrefix(prefix, f.Until) // before any key of that time
	}
	var after []byte
	if f.After != nil {
		after = append(dueKeyPrefix(prefix, listTime(f.After.CreatedAt)), f.After.SiteID+"/"+f.After.ID...)
		if bytes.Compare(after, seek) < 0 {
			seek = after
		}
	}
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues, opts.Reverse, opts.Prefix = false, true, []byte(prefix)
	it := txn.NewIterator(opts)
	defer it.Close()
	var keys []Key
	for it.Seek(seek); it.Valid() && len(keys) < limit; it.Next() {
		k := it.Item().Key()
		s.reads.Add(1)
		if len(k) < len(prefix)+8 || after != nil && bytes.Equal(k, after) {
			continue
		}
		created := int64(binary.BigEndian.Uint64(k[len(prefix):]))
		if !f.Since.IsZero() && created < f.Since.UnixNano() {
			break
		}
		if site, id, ok := strings.Cut(string(k[len(prefix)+8:]), "/"); ok {
			keys = append(keys, Key{SiteID: site, ID: id})
		}
	}
	return keys, nil
}

// ListDeliveries implements Store, at O(result): a transaction's deliveries from the
// transaction index, pending ones from the in-memory queue (soonest due first), other states
// from the state index.
func (s *Badger) ListDeliveries(f DeliveryFilter) ([]Delivery, error) {
	limit := pageLimit(f.Limit, 100)
	if f.SiteID != "" && checkParts(f.SiteID) != nil || f.TransactionID != "" && checkParts(f.TransactionID) != nil {
		return nil, nil
	}
	keep := func(d *Delivery) bool {
		return (f.State == "" || d.State == f.State) && (f.SiteID == "" || d.SiteID == f.SiteID) &&
			(f.TransactionID == "" || d.TransactionID == f.TransactionID)
	}
	var keys []Key
	switch {
	case f.TransactionID != "":
		prefix := kindDelByTx + f.TransactionID + "/"
		err := s.db.View(func(txn *badger.Txn) (err error) {
			keys, err = s.indexKeys(txn, prefix, prefix+siteDir(f.SiteID), maxDue)
			return err
		})
		if err != nil {
			return nil, err
		}
	case f.State == DeliveryPending:
		keys = keysOf(s.dues.page(memItem{rank: math.MinInt64}, limit, func(it memItem) (bool, bool) {
			return f.SiteID == "" || it.key.SiteID == f.SiteID, true
		}))
	case f.State != "":
		prefix := kindDelState + string(f.State) + "/"
		err := s.db.View(func(txn *badger.Txn) (err error) {
			keys, err = s.indexKeys(txn, prefix, prefix+siteDir(f.SiteID), limit)
			return err
		})
		if err != nil {
			return nil, err
		}
	default:
		var out []Delivery
		err := s.db.View(func(txn *badger.Txn) error {
			return s.iterate(txn, []byte(kindDelivery+siteDir(f.SiteID)), true, func(_, v []byte) (bool, error) {
				var d Delivery
				if err := json.Unmarshal(v, &d); err != nil {
					return false, err
				}
				out = append(out, d)
				return len(out) < limit, nil
			})
		})
		return out, err
	}
	ds, err := s.getDeliveries(keys)
	if err != nil {
		return nil, err
	}
	out := ds[:0]
	for i := range ds {
		if keep(&ds[i]) && len(out) < limit {
			out = append(out, ds[i])
		}
	}
	return out, nil
}

// Purge implements Store. A payment is removed with its order index entry and its deliveries
// when it is purgeable (see purgeable) and none of its deliveries is still pending. Paid markers
// stay, so an order paid long ago is never started again.
//
// Candidates come from the settled index (oldest state change first, O(result)), a chunk at
// a time; each is read again and decided anew in
// the transaction that deletes it: a payment that changed after it was listed (a late success,
// a replayed delivery) is kept, and a change committed while the deletion runs makes the
// deletion conflict and retry with the new state.
func (s *Badger) Purge(now time.Time, keep time.Duration) (int, error) {
	// the settled index, oldest change first, up to now-keep, in chunks
	end := dueKeyPrefix(kindSettled, now.Add(-keep))
	from := []byte(kindSettled)
	n := 0
	for {
		var victims []Key
		err := s.db.View(func(txn *badger.Txn) error {
			opts := badger.DefaultIteratorOptions
			opts.PrefetchValues = false
			opts.Prefix = []byte(kindSettled)
			it := txn.NewIterator(opts)
			defer it.Close()
			for it.Seek(from); it.Valid() && len(victims) < purgeChunk; it.Next() {
				k := it.Item().KeyCopy(nil)
				s.reads.Add(1)
				if len(k) < len(end) || bytes.Compare(k[:len(end)], end) >= 0 {
					break
				}
				if site, id, ok := strings.Cut(string(k[len(end):]), "/"); ok {
					victims = append(victims, Key{SiteID: site, ID: id})
				}
				from = append(k, 0)
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		if purgeListed != nil {
			purgeListed()
		}
		removed, err := purgeEach(victims, func(k Key) error { return s.purgeOne(k, now, keep) })
		n += removed
		if err != nil {
			return n, err
		}
		if len(victims) < purgeChunk {
			return n, nil
		}
	}
}

// purgeChunk is how many candidates Purge lists at a time.
const purgeChunk = 1000

// purgeOne deletes one payment, decided again in the transaction that deletes it.
func (s *Badger) purgeOne(k Key, now time.Time, keep time.Duration) error {
	defer s.locks.lock('p', k)()
	s.purges.Add(1)
	var goneDeliveries []string
	err := s.update(func(txn *badger.Txn) error {
		p, err := getPayment(txn, k.SiteID, k.ID)
		if errors.Is(err, ErrNotFound) {
			return errKeep // gone already
		} else if err != nil {
			return err
		}
		if !purgeable(&p, now, keep) {
			return errKeep
		}
		var deleted []string
		for _, t := range p.History {
			if t.EventID == "" {
				continue
			}
			d, err := getDelivery(txn, p.SiteID, t.EventID)
			if errors.Is(err, ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if d.State == DeliveryPending {
				return errKeep
			}
			for _, key := range [][]byte{deliveryKey(p.SiteID, d.ID), delStateKey(d.State, d.SiteID, d.ID),
				delByTxKey(d.TransactionID, d.SiteID, d.ID)} {
				if err := txn.Delete(key); err != nil {
					return err
				}
			}
			deleted = append(deleted, d.ID)
		}
		if err := txn.Delete(payStateKey(p.State, p.SiteID, p.TransactionID)); err != nil {
			return err
		}
		for _, k := range append(payTimeKeys(&p), payStateTimeKeys(p.State, &p)...) {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		if err := txn.Delete(settledKey(p.LastChange(), p.SiteID, p.TransactionID)); err != nil {
			return err
		}
		if err := txn.Delete(orderKey(p.SiteID, p.OrderID, p.TransactionID)); err != nil {
			return err
		}
		if head, err := getString(txn, orderHeadKey(p.SiteID, p.OrderID)); err == nil && head == p.TransactionID {
			if err := txn.Delete(orderHeadKey(p.SiteID, p.OrderID)); err != nil {
				return err
			}
		}
		goneDeliveries = deleted
		return txn.Delete(paymentKey(p.SiteID, p.TransactionID))
	})
	if err == nil {
		s.payments.drop(k)
		for _, id := range goneDeliveries {
			s.deliveries.drop(Key{SiteID: k.SiteID, ID: id})
		}
		// a purgeable payment is in no in-memory index; make sure
		s.checks.set(k, 0, false)
		s.open.set(k, 0, false)
	}
	return err
}

// purgeable reports whether a payment may be purged at now: settled (not INIT, PENDING or
// UNKNOWN), no re-check scheduled, and its last state change more than keep ago.
func purgeable(p *Payment, now time.Time, keep time.Duration) bool {
	return !p.State.Open() && p.NextCheck.IsZero() && now.Sub(p.LastChange()) > keep
}

// purgeListed, when set by a test, runs between Purge's listing and its deletions.
var purgeListed func()

// groupCommitting, when set by a test, runs before each group transaction with its size.
var groupCommitting func(changes int)

var errKeep = errors.New("keep")

// iterate is iterate, counting the keys read.
func (s *Badger) iterate(txn *badger.Txn, prefix []byte, withValues bool, fn func(k, v []byte) (bool, error)) error {
	return iterate(txn, prefix, withValues, func(k, v []byte) (bool, error) {
		s.reads.Add(1)
		return fn(k, v)
	})
}

// iterate calls fn for each key (and value, if withValues) under prefix until fn says stop.
func iterate(txn *badger.Txn, prefix []byte, withValues bool, fn func(k, v []byte) (bool, error)) error {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = withValues
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Seek(prefix); it.Valid(); it.Next() {
		item := it.Item()
		var v []byte
		if withValues {
			var err error
			if v, err = item.ValueCopy(nil); err != nil {
				return err
			}
		}
		more, err := fn(item.KeyCopy(nil), v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func getPayment(txn *badger.Txn, site, txid string) (Payment, error) {
	var p Payment
	err := getJSON(txn, paymentKey(site, txid), &p)
	return p, err
}

func getDelivery(txn *badger.Txn, site, id string) (Delivery, error) {
	var d Delivery
	err := getJSON(txn, deliveryKey(site, id), &d)
	return d, err
}

func getJSON(txn *badger.Txn, key []byte, v any) error {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	return item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

func putJSON(w writer, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.Set(key, b)
}

func getString(txn *badger.Txn, key []byte) (string, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", ErrNotFound
	} else if err != nil {
		return "", err
	}
	v, err := item.ValueCopy(nil)
	return string(v), err
}

func paymentKey(site, txid string) []byte    { return []byte(kindPayment + site + "/" + txid) }
func deliveryKey(site, id string) []byte     { return []byte(kindDelivery + site + "/" + id) }
func paidKey(site, order string) []byte      { return []byte(kindPaid + site + "/" + order) }
func orderHeadKey(site, order string) []byte { return []byte(kindOrderHead + site + "/" + order) }
func payStateKey(st State, site, txid string) []byte {
	return []byte(kindPayState + string(st) + "/" + site + "/" + txid)
}
func delStateKey(st DeliveryState, site, id string) []byte {
	return []byte(kindDelState + string(st) + "/" + site + "/" + id)
}
func delByTxKey(txid, site, id string) []byte {
	return []byte(kindDelByTx + txid + "/" + site + "/" + id)
}
func orderKey(site, order, txid string) []byte {
	return []byte(kindOrder + site + "/" + order + "/" + txid)
}

func recheckKey(due time.Time, site, txid string) []byte {
	return append(dueKeyPrefix(kindRecheck, due), site+"/"+txid...)
}

// timeKey is <prefix><created:8>/<site>/<txid>, the key of a creation-time index.
func timeKey(prefix string, p *Payment) []byte {
	return append(dueKeyPrefix(prefix, listTime(p.CreatedAt)), p.SiteID+"/"+p.TransactionID...)
}

// payTimeKeys are a payment's keys in the creation-time indexes of all payments and its site's.
func payTimeKeys(p *Payment) [][]byte {
	return [][]byte{timeKey(kindPayTime, p), timeKey(kindPaySiteT+p.SiteID+"/", p)}
}

// payStateTimeKeys are its keys in the creation-time indexes of state st, all sites and its own.
func payStateTimeKeys(st State, p *Payment) [][]byte {
	return [][]byte{timeKey(kindPayStTime+string(st)+"/", p), timeKey(kindPaySiteStT+string(st)+"/"+p.SiteID+"/", p)}
}

func settledKey(at time.Time, site, txid string) []byte {
	return append(dueKeyPrefix(kindSettled, at), site+"/"+txid...)
}

func dueDeliveryKey(due time.Time, site, id string) []byte {
	return append(dueKeyPrefix(kindDueDeliv, due), site+"/"+id...)
}

// dueKeyPrefix is kind + the due time as 8 big-endian bytes, so keys sort by due time.
func dueKeyPrefix(kind string, due time.Time) []byte {
	b := make([]byte, len(kind)+8, len(kind)+8+64)
	copy(b, kind)
	n := due.UnixNano()
	if n < 0 {
		n = 0
	}
	binary.BigEndian.PutUint64(b[len(kind):], uint64(n))
	return b
}

// checkParts refuses key parts that would break the key layout.
func checkParts(parts ...string) error {
	for _, p := range parts {
		if p == "" || len(p) > 128 || strings.ContainsAny(p, "/\x00") {
			return ErrInvalidKeyPart
		}
	}
	return nil
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomAlnum returns n random upper-case letters and digits, uniformly drawn.
func randomAlnum(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		_, _ = rand.Read(buf) // crypto/rand.Read never fails
		for _, c := range buf {
			// 252 = 7*36: reject the rest so that every character is equally likely
			if c < 252 && len(out) < n {
				out = append(out, alnum[int(c)%len(alnum)])
			}
		}
	}
	return string(out)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func isUpperAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// badgerLogger passes Badger's warnings and errors to zap and drops the rest.
type badgerLogger struct{ l *zap.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	if b.l != nil {
		b.l.Error(strings.TrimSpace(fmt.Sprintf(f, a...)))
	}
}

func (b badgerLogger) Warningf(f string, a ...any) {
	if b.l != nil {
		b.l.Warn(strings.TrimSpace(fmt.Sprintf(f, a...)))
	}
}

func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}

// Import writes payments and deliveries as they are, with every index, in large batches rather
// than one synced transaction each: for seeding a store, restores and migrations into an empty
// store. It does not apply the state machine, and a record already stored under the same key is
// overwritten, its old index keys left behind; do not import into a store that is serving.
// Each order's latest payment (by CreatedAt) becomes its head, and its first ACCEPTED one its
// paid marker.
func (s *Badger) Import(payments []Payment, deliveries []Delivery) error {
	ps := slices.Clone(payments)
	slices.SortStableFunc(ps, func(a, b Payment) int { return a.CreatedAt.Compare(b.CreatedAt) })
	paid := map[Key]bool{}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for i := range ps {
		p := &ps[i]
		if err := checkParts(p.SiteID, p.TransactionID, p.OrderID); err != nil {
			return fmt.Errorf("payment %q: %w", p.TransactionID, err)
		}
		if !p.State.Valid() {
			return fmt.Errorf("payment %s: unknown state %q", p.TransactionID, p.State)
		}
		if err := writePayment(wb, nil, p); err != nil {
			return err
		}
		if err := wb.Set(orderKey(p.SiteID, p.OrderID, p.TransactionID), nil); err != nil {
			return err
		}
		if err := wb.Set(orderHeadKey(p.SiteID, p.OrderID), []byte(p.TransactionID)); err != nil {
			return err
		}
		if order := (Key{SiteID: p.SiteID, ID: p.OrderID}); p.State == StateAccepted && !paid[order] {
			paid[order] = true
			if err := wb.Set(paidKey(p.SiteID, p.OrderID), []byte(p.TransactionID)); err != nil {
				return err
			}
		}
	}
	for i := range deliveries {
		d := &deliveries[i]
		if err := checkParts(d.SiteID, d.ID, d.TransactionID); err != nil {
			return fmt.Errorf("delivery %q: %w", d.ID, err)
		}
		if err := writeDelivery(wb, nil, d); err != nil {
			return err
		}
	}
	if err := wb.Flush(); err != nil {
		return err
	}
	for i := range ps {
		s.committedPayment(&ps[i])
	}
	for i := range deliveries {
		s.committedDelivery(&deliveries[i])
	}
	return nil
}
