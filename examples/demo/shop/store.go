package shop

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Order statuses, as the shop keeps them. Only deliveries change them.
const (
	OrderPending = "pending" // created, no result delivered yet
	OrderPaid    = "paid"    // an ACCEPTED delivery matching the order
	OrderRefused = "refused" // a REFUSED delivery (a later ACCEPTED still pays it)
	OrderExpired = "expired" // an EXPIRED delivery (a later ACCEPTED still pays it)
	OrderFlagged = "flagged" // not paid and needs a person: amount differs, mismatch, …
)

// Order is one order of the demo shop.
type Order struct {
	ID       string `json:"id"`
	Product  string `json:"product"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Status   string `json:"status"`
	// FlagReason is the reason of the latest flag; Flags has them all.
	FlagReason string    `json:"flag_reason,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// Transaction is the transaction that paid the order; while it is unpaid, the transaction
	// of the last applied result.
	Transaction string `json:"transaction_id,omitempty"`
	// Events are the event ids applied to this order, oldest first.
	Events []string `json:"events,omitempty"`
	// Flags are the results a person must look at (a refund to make, an amount to review),
	// oldest first. A flag never unpays a paid order: it stays paid, with the transaction that
	// paid it.
	Flags []Flag `json:"flags,omitempty"`
}

// Flag is a result that needs a person.
type Flag struct {
	EventID       string    `json:"event_id"`
	TransactionID string    `json:"transaction_id"`
	Status        string    `json:"status"` // Cinetpay-Status
	Reason        string    `json:"reason"`
	At            time.Time `json:"at"`
}

// Delivery is one delivery the shop received on its webhook, verified or not.
type Delivery struct {
	At            time.Time `json:"at"`
	EventID       string    `json:"event_id,omitempty"`
	OrderID       string    `json:"order_id,omitempty"`
	TransactionID string    `json:"transaction_id,omitempty"`
	Status        string    `json:"status,omitempty"` // Cinetpay-Status
	Amount        string    `json:"amount,omitempty"`
	Currency      string    `json:"currency,omitempty"`
	Verified      bool      `json:"verified"`
	// Outcome is what the shop did: applied, already-applied, ignored, unknown-order, rejected.
	Outcome string `json:"outcome"`
	// Detail says why, in words (the rejection reason for unverified deliveries).
	Detail string `json:"detail,omitempty"`
	// HTTPStatus is what the shop answered.
	HTTPStatus int `json:"http_status"`
}

// Delivery outcomes.
const (
	OutcomeApplied        = "applied"
	OutcomeAlreadyApplied = "already-applied"
	OutcomeIgnored        = "ignored"
	OutcomeUnknownOrder   = "unknown-order"
	OutcomeRejected       = "rejected"
)

// appliedEvent remembers an event id that was applied.
type appliedEvent struct {
	OrderID string    `json:"order_id"`
	At      time.Time `json:"at"`
}

// state is everything the shop keeps; it is written as one JSON file, atomically.
type state struct {
	Orders map[string]*Order `json:"orders"`
	// Events are the event ids already applied: a redelivery is answered 200 and not applied again.
	Events map[string]appliedEvent `json:"events"`
	// Deliveries are the verified deliveries received, oldest first (capped). Deliveries refused
	// (bad signature, …) are not part of the state: the store keeps them in memory only.
	Deliveries []Delivery `json:"deliveries"`
}

// Caps keep the file (and the in-memory list of rejected deliveries) small whatever is posted to
// the webhook.
const (
	maxOrders     = 10000
	maxDeliveries = 2000
	maxRejected   = 100
	stateFile     = "shop.json"
)

func newState() *state {
	return &state{Orders: map[string]*Order{}, Events: map[string]appliedEvent{}}
}

// clone deep-copies the state through JSON: changes are made on a copy and kept only once the
// copy is on disk.
func (s *state) clone() (*state, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	c := newState()
	if err := json.Unmarshal(b, c); err != nil {
		return nil, err
	}
	c.fill()
	return c, nil
}

func (s *state) fill() {
	if s.Orders == nil {
		s.Orders = map[string]*Order{}
	}
	if s.Events == nil {
		s.Events = map[string]appliedEvent{}
	}
}

func (s *state) addDelivery(d Delivery) {
	s.Deliveries = appendCapped(s.Deliveries, d, maxDeliveries)
}

func appendCapped(list []Delivery, d Delivery, limit int) []Delivery {
	list = append(list, d)
	if len(list) > limit {
		list = append([]Delivery(nil), list[len(list)-limit:]...)
	}
	return list
}

// store holds the state of one data directory. Every shop handler that names the directory
// shares one store (through a UsagePool), so a config reload never has two copies writing over
// each other.
type store struct {
	dir string
	mu  sync.Mutex
	st  *state

	// rejected are the deliveries refused (bad signature, …), oldest first (capped). Anyone can
	// post them, so they are kept in memory only, under their own lock: a flood of forged requests
	// never writes to disk nor waits for (or holds) the lock of the state, so it cannot delay a
	// real delivery. They are forgotten when Caddy stops.
	rmu      sync.Mutex
	rejected []Delivery
}

var stores = caddy.NewUsagePool()

// acquireStore returns the store of dir, loading it from disk when no handler holds it yet.
// Release it with releaseStore.
func acquireStore(dir string) (*store, error) {
	v, _, err := stores.LoadOrNew(dir, func() (caddy.Destructor, error) {
		return openStore(dir)
	})
	if err != nil {
		return nil, err
	}
	return v.(*store), nil
}

func releaseStore(dir string) {
	_, _ = stores.Delete(dir)
}

// openStore loads the state file of dir; the directory is created at the first write (so
// `caddy validate` leaves no trace).
func openStore(dir string) (*store, error) {
	s := &store{dir: dir, st: newState()}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("data: %w", err)
	default:
		if err := json.Unmarshal(b, s.st); err != nil {
			// never start over silently: the orders would be lost
			return nil, fmt.Errorf("data: %s is not readable JSON (%v); move it away to start afresh", filepath.Join(dir, stateFile), err)
		}
		s.st.fill()
	}
	return s, nil
}

// Destruct implements caddy.Destructor; every write is already on disk.
func (s *store) Destruct() error { return nil }

// update applies fn to a copy of the state and writes the copy to disk atomically; the copy
// becomes the state only once written. If fn returns an error, nothing is written.
func (s *store) update(fn func(st *state) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.st.clone()
	if err != nil {
		return err
	}
	if err := fn(c); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(s.dir, stateFile), c); err != nil {
		return err
	}
	s.st = c
	return nil
}

// reject records a refused delivery, in memory only.
func (s *store) reject(d Delivery) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.rejected = appendCapped(s.rejected, d, maxRejected)
}

// rejectedDeliveries returns a copy of the refused deliveries, oldest first.
func (s *store) rejectedDeliveries() []Delivery {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return append([]Delivery{}, s.rejected...)
}

// view calls fn with the state, read-only.
func (s *store) view(fn func(st *state)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.st)
}

// writeAtomic writes v as JSON to path: a temporary file in the same directory, synced, then
// renamed over path, then the directory synced. A crash leaves the old file or the new one.
func writeAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
