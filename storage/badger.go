package storage

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
const (
	keyMetaPrefix = "meta/prefix"
	kindPayment   = "p/"
	kindOrder     = "o/"
	kindOrderHead = "oh/"
	kindPaid      = "paid/"
	kindRecheck   = "rq/"
	kindDelivery  = "d/"
	kindDueDeliv  = "dq/"
)

// Options tune Open.
type Options struct {
	// InMemory keeps everything in memory: for unit tests only.
	InMemory bool
	// Logger receives Badger's warnings and errors. Nil: discarded.
	Logger *zap.Logger
}

// Badger is the Badger-backed Store.
type Badger struct {
	db     *badger.DB
	prefix string
}

var _ Store = (*Badger)(nil)

// Open opens (creating it if needed) the store in dir. Badger locks the directory: a second
// Open of one directory fails, even in one process; share the *Badger instead.
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
	s := &Badger{db: db}
	if err := s.loadPrefix(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

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

// GC implements Store: it rewrites value log files while Badger finds enough garbage.
func (s *Badger) GC() error {
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
	var res ClaimResult
	err := s.update(func(txn *badger.Txn) error {
		res = ClaimResult{}
		if txid, err := getString(txn, paidKey(c.SiteID, c.OrderID)); err == nil {
			p, err := getPayment(txn, c.SiteID, txid)
			if errors.Is(err, ErrNotFound) {
				// purged long after: the marker alone says the order is paid
				p = Payment{SiteID: c.SiteID, TransactionID: txid, OrderID: c.OrderID, State: StateAccepted}
			} else if err != nil {
				return err
			}
			res = ClaimResult{Kind: ClaimPaid, Payment: p}
			return nil
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if txid, err := getString(txn, orderHeadKey(c.SiteID, c.OrderID)); err == nil {
			p, err := getPayment(txn, c.SiteID, txid)
			if err != nil {
				return err
			}
			age := c.Now.Sub(p.CreatedAt)
			switch {
			case p.State == StateInit && age < c.InitGrace:
				res = ClaimResult{Kind: ClaimBusy, Payment: p}
				return nil
			case p.State == StatePending && age < c.ReuseWindow && p.PaymentURL != "" &&
				p.Amount == c.Amount && p.Currency == c.Currency:
				res = ClaimResult{Kind: ClaimReuse, Payment: p}
				return nil
			}
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		p := Payment{
			SiteID:        c.SiteID,
			TransactionID: s.NewTransactionID(),
			OrderID:       c.OrderID,
			Amount:        c.Amount,
			Currency:      c.Currency,
			Environment:   c.Environment,
			State:         StateInit,
			CreatedAt:     c.Now,
			UpdatedAt:     c.Now,
			// if the start never finishes (a crash), the re-checker takes the payment over
			NextCheck: c.Now.Add(c.InitGrace),
		}
		if err := putPayment(txn, &p); err != nil {
			return err
		}
		if err := txn.Set(recheckKey(p.NextCheck, p.SiteID, p.TransactionID), nil); err != nil {
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
	return res, err
}

// Get implements Store.
func (s *Badger) Get(site, txid string) (Payment, error) {
	if err := checkParts(site, txid); err != nil {
		return Payment{}, ErrNotFound
	}
	var p Payment
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		p, err = getPayment(txn, site, txid)
		return err
	})
	return p, err
}

// Update implements Store. It reads the payment, lets fn change it, and writes it back in the
// same transaction, retrying fn on conflicts. A final payment (ACCEPTED, MISMATCH, DUPLICATE) is
// returned unchanged without calling fn. A state change must follow the state machine, else
// ErrBadTransition and nothing is written. A change to ACCEPTED for an order another payment has
// already paid is stored as DUPLICATE. A change into a delivering state stores its delivery,
// due at now, in the same transaction. fn returning an error aborts without writing.
func (s *Badger) Update(site, txid string, now time.Time, fn func(p *Payment) error) (UpdateResult, error) {
	if err := checkParts(site, txid); err != nil {
		return UpdateResult{}, ErrNotFound
	}
	var res UpdateResult
	err := s.update(func(txn *badger.Txn) error {
		res = UpdateResult{}
		p, err := getPayment(txn, site, txid)
		if err != nil {
			return err
		}
		res.From = p.State
		if p.State.Final() {
			res.Payment = p
			return nil
		}
		before := p
		if err := fn(&p); err != nil {
			return err
		}
		// identity fields never change; the start's secrets are set once
		p.SiteID, p.TransactionID, p.OrderID = before.SiteID, before.TransactionID, before.OrderID
		if before.NotifyToken != "" {
			p.NotifyToken = before.NotifyToken
		}
		p.Amount, p.Currency, p.CreatedAt = before.Amount, before.Currency, before.CreatedAt
		p.Environment, p.History = before.Environment, before.History
		p.UpdatedAt = now

		if p.State != before.State {
			if !CanTransition(before.State, p.State) {
				return fmt.Errorf("%w: %s to %s", ErrBadTransition, before.State, p.State)
			}
			if p.State == StateAccepted {
				paidBy, err := getString(txn, paidKey(site, p.OrderID))
				switch {
				case err == nil && paidBy != p.TransactionID:
					p.State = StateDuplicate
				case errors.Is(err, ErrNotFound):
					if err := txn.Set(paidKey(site, p.OrderID), []byte(p.TransactionID)); err != nil {
						return err
					}
				case err != nil:
					return err
				}
			}
			t := Transition{From: before.State, To: p.State, At: now, Reason: p.Note}
			if p.State.Delivers() {
				d := newDelivery(&p, now)
				if err := putDelivery(txn, &d); err != nil {
					return err
				}
				if err := txn.Set(dueDeliveryKey(d.NextAttempt, site, d.ID), nil); err != nil {
					return err
				}
				t.EventID = d.ID
				res.Delivery = &d
			}
			p.History = append(p.History, t)
			res.Changed = true
		}
		if p.State.Final() || p.State == StateFailed {
			p.NextCheck = time.Time{}
		}
		if !p.NextCheck.Equal(before.NextCheck) {
			if !before.NextCheck.IsZero() {
				if err := txn.Delete(recheckKey(before.NextCheck, site, txid)); err != nil {
					return err
				}
			}
			if !p.NextCheck.IsZero() {
				if err := txn.Set(recheckKey(p.NextCheck, site, txid), nil); err != nil {
					return err
				}
			}
		}
		p.Note = ""
		res.Payment = p
		return putPayment(txn, &p)
	})
	return res, err
}

// newDelivery snapshots a payment's result at a state change.
func newDelivery(p *Payment, now time.Time) Delivery {
	return Delivery{
		ID:            randomHex(16),
		SiteID:        p.SiteID,
		TransactionID: p.TransactionID,
		OrderID:       p.OrderID,
		Status:        p.State,
		Result:        p.Result(),
		Environment:   p.Environment,
		State:         DeliveryPending,
		CreatedAt:     now,
		Since:         now,
		NextAttempt:   now,
	}
}

// DueChecks implements Store.
func (s *Badger) DueChecks(now time.Time, limit int) ([]Key, error) {
	var keys []Key
	err := s.scanDue(kindRecheck, now, limit, func(site, id string) error {
		keys = append(keys, Key{SiteID: site, ID: id})
		return nil
	})
	return keys, err
}

// DueDeliveries implements Store.
func (s *Badger) DueDeliveries(now time.Time, limit int) ([]Delivery, error) {
	var out []Delivery
	err := s.db.View(func(txn *badger.Txn) error {
		return scanDueTxn(txn, kindDueDeliv, now, limit, func(site, id string) error {
			d, err := getDelivery(txn, site, id)
			if err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

func (s *Badger) scanDue(kind string, now time.Time, limit int, fn func(site, id string) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		return scanDueTxn(txn, kind, now, limit, fn)
	})
}

func scanDueTxn(txn *badger.Txn, kind string, now time.Time, limit int, fn func(site, id string) error) error {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = []byte(kind)
	it := txn.NewIterator(opts)
	defer it.Close()
	end := dueKeyPrefix(kind, now)
	n := 0
	for it.Seek([]byte(kind)); it.Valid(); it.Next() {
		k := it.Item().Key()
		if bytes.Compare(k[:len(end)], end) > 0 {
			break
		}
		site, id, ok := strings.Cut(string(k[len(kind)+8:]), "/")
		if !ok {
			continue
		}
		if err := fn(site, id); err != nil {
			return err
		}
		n++
		if limit > 0 && n >= limit {
			break
		}
	}
	return nil
}

// GetDelivery implements Store.
func (s *Badger) GetDelivery(site, id string) (Delivery, error) {
	if err := checkParts(site, id); err != nil {
		return Delivery{}, ErrNotFound
	}
	var d Delivery
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		d, err = getDelivery(txn, site, id)
		return err
	})
	return d, err
}

// BeginAttempt implements Store: if the delivery is pending and due at now, it counts one more
// attempt and moves the delivery's due time to now+lease, durably, before anything is sent. Two
// workers can therefore never send one attempt at once, and a process that dies during the
// attempt leaves the delivery due again once the lease ends. A delivery not pending or not due
// gives ErrStaleAttempt.
func (s *Badger) BeginAttempt(site, id string, now time.Time, lease time.Duration) (Delivery, error) {
	return s.updateDelivery(site, id, func(d *Delivery) error {
		if d.State != DeliveryPending || d.NextAttempt.After(now) {
			return ErrStaleAttempt
		}
		d.Attempts++
		d.RoundAttempts++
		d.LastAttempt = now
		d.NextAttempt = now.Add(lease)
		return nil
	})
}

// FinishAttempt implements Store. attempt is the Attempts value BeginAttempt returned; if the
// delivery moved on since (replayed, or another attempt), ErrStaleAttempt.
func (s *Badger) FinishAttempt(site, id string, attempt int, r AttemptResult) (Delivery, error) {
	return s.updateDelivery(site, id, func(d *Delivery) error {
		if d.State != DeliveryPending || d.Attempts != attempt {
			return ErrStaleAttempt
		}
		d.LastHTTPStatus, d.LastError = r.HTTPStatus, r.Error
		switch {
		case r.Delivered:
			d.State, d.DeliveredAt, d.NextAttempt = DeliveryDelivered, r.At, time.Time{}
			d.LastError = ""
		case r.GiveUp:
			d.State, d.NextAttempt = DeliveryFailed, time.Time{}
		default:
			d.NextAttempt = r.NextAttempt
		}
		return nil
	})
}

// Replay implements Store.
func (s *Badger) Replay(site, id string, now time.Time) (Delivery, error) {
	return s.updateDelivery(site, id, func(d *Delivery) error {
		d.State, d.Since, d.NextAttempt, d.RoundAttempts = DeliveryPending, now, now, 0
		return nil
	})
}

// updateDelivery changes a delivery in one transaction and keeps the queue index in step.
func (s *Badger) updateDelivery(site, id string, fn func(d *Delivery) error) (Delivery, error) {
	if err := checkParts(site, id); err != nil {
		return Delivery{}, ErrNotFound
	}
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
		if before.State == DeliveryPending {
			if err := txn.Delete(dueDeliveryKey(before.NextAttempt, site, id)); err != nil {
				return err
			}
		}
		if d.State == DeliveryPending {
			if err := txn.Set(dueDeliveryKey(d.NextAttempt, site, id), nil); err != nil {
				return err
			}
		}
		out = d
		return putDelivery(txn, &d)
	})
	return out, err
}

// ListPayments implements Store.
func (s *Badger) ListPayments(f PaymentFilter) ([]Payment, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []Payment
	err := s.db.View(func(txn *badger.Txn) error {
		if f.OrderID != "" {
			if err := checkParts(f.SiteID, f.OrderID); err != nil {
				return nil
			}
			return iterate(txn, []byte(kindOrder+f.SiteID+"/"+f.OrderID+"/"), false, func(k, _ []byte) (bool, error) {
				txid := k[bytes.LastIndexByte(k, '/')+1:]
				p, err := getPayment(txn, f.SiteID, string(txid))
				if err != nil {
					return false, err
				}
				if f.State == "" || p.State == f.State {
					out = append(out, p)
				}
				return len(out) < limit, nil
			})
		}
		prefix := kindPayment
		if f.SiteID != "" {
			prefix += f.SiteID + "/"
		}
		return iterate(txn, []byte(prefix), true, func(_, v []byte) (bool, error) {
			var p Payment
			if err := json.Unmarshal(v, &p); err != nil {
				return false, err
			}
			if f.State == "" || p.State == f.State {
				out = append(out, p)
			}
			return len(out) < limit, nil
		})
	})
	return out, err
}

// ListDeliveries implements Store.
func (s *Badger) ListDeliveries(f DeliveryFilter) ([]Delivery, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []Delivery
	prefix := kindDelivery
	if f.SiteID != "" {
		prefix += f.SiteID + "/"
	}
	err := s.db.View(func(txn *badger.Txn) error {
		return iterate(txn, []byte(prefix), true, func(_, v []byte) (bool, error) {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return false, err
			}
			if (f.State == "" || d.State == f.State) && (f.TransactionID == "" || d.TransactionID == f.TransactionID) {
				out = append(out, d)
			}
			return len(out) < limit, nil
		})
	})
	return out, err
}

// Purge implements Store. A payment is removed with its order index entry and its deliveries
// when it is purgeable (see purgeable) and none of its deliveries is still pending. Paid markers
// stay, so an order paid long ago is never started again.
//
// Candidates are listed in one read transaction, then each is read again and decided anew in
// the transaction that deletes it: a payment that changed after it was listed (a late success,
// a replayed delivery) is kept, and a change committed while the deletion runs makes the
// deletion conflict and retry with the new state.
func (s *Badger) Purge(now time.Time, keep time.Duration) (int, error) {
	var victims []Key
	err := s.db.View(func(txn *badger.Txn) error {
		return iterate(txn, []byte(kindPayment), true, func(_, v []byte) (bool, error) {
			var p Payment
			if err := json.Unmarshal(v, &p); err != nil {
				return false, err
			}
			if purgeable(&p, now, keep) {
				victims = append(victims, Key{SiteID: p.SiteID, ID: p.TransactionID})
			}
			return true, nil
		})
	})
	if err != nil {
		return 0, err
	}
	if purgeListed != nil {
		purgeListed()
	}
	n := 0
	for _, k := range victims {
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
				if err := txn.Delete(deliveryKey(p.SiteID, d.ID)); err != nil {
					return err
				}
			}
			if err := txn.Delete(orderKey(p.SiteID, p.OrderID, p.TransactionID)); err != nil {
				return err
			}
			if head, err := getString(txn, orderHeadKey(p.SiteID, p.OrderID)); err == nil && head == p.TransactionID {
				if err := txn.Delete(orderHeadKey(p.SiteID, p.OrderID)); err != nil {
					return err
				}
			}
			return txn.Delete(paymentKey(p.SiteID, p.TransactionID))
		})
		if errors.Is(err, errKeep) {
			continue
		}
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// purgeable reports whether a payment may be purged at now: settled (not INIT, PENDING or
// UNKNOWN), no re-check scheduled, and its last state change more than keep ago.
func purgeable(p *Payment, now time.Time, keep time.Duration) bool {
	return !p.State.Open() && p.NextCheck.IsZero() && now.Sub(p.LastChange()) > keep
}

// purgeListed, when set by a test, runs between Purge's listing and its deletions.
var purgeListed func()

var errKeep = errors.New("keep")

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

func putPayment(txn *badger.Txn, p *Payment) error {
	return putJSON(txn, paymentKey(p.SiteID, p.TransactionID), p)
}

func getDelivery(txn *badger.Txn, site, id string) (Delivery, error) {
	var d Delivery
	err := getJSON(txn, deliveryKey(site, id), &d)
	return d, err
}

func putDelivery(txn *badger.Txn, d *Delivery) error {
	return putJSON(txn, deliveryKey(d.SiteID, d.ID), d)
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

func putJSON(txn *badger.Txn, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set(key, b)
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
func orderKey(site, order, txid string) []byte {
	return []byte(kindOrder + site + "/" + order + "/" + txid)
}

func recheckKey(due time.Time, site, txid string) []byte {
	return append(dueKeyPrefix(kindRecheck, due), site+"/"+txid...)
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
