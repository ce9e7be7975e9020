// Package storage keeps the payments and deliveries of caddy-cinetpay (README, "Operating it")
// in Badger (one database per directory, for one process) or PostgreSQL (one database for any
// number of processes, README "Several instances"): writes synced to disk, records namespaced by
// site (the CinetPay site_id or account). Every state change (README, "How it works") is a compare-and-set
// in one transaction together with the delivery it causes, so a result is on disk before anyone
// is told about it and is delivered at least once.
//
// The package is plain Go: it knows nothing of Caddy or of CinetPay's wire format. Times are
// passed in by the caller, so tests can drive the clock.
package storage

import (
	"slices"
	"time"
)

// Store is what the module needs from a payment store. Badger implements it; the interface
// leaves room for a store shared by several instances.
type Store interface {
	// Prefix is the prefix of every transaction id this store generates, unique to the store.
	Prefix() string
	// OwnsTransaction reports whether a transaction id carries this store's prefix.
	OwnsTransaction(txid string) bool

	// Claim claims an order for a payment start, atomically (see Claim).
	Claim(c Claim) (ClaimResult, error)
	// Get returns a payment, or ErrNotFound.
	Get(site, txid string) (Payment, error)
	// Update changes a payment in one compare-and-set transaction (see Badger.Update).
	Update(site, txid string, now time.Time, fn func(p *Payment) error) (UpdateResult, error)
	// DueChecks lists payments whose re-check is due at now, soonest first.
	DueChecks(now time.Time, limit int) ([]Key, error)

	// DueDeliveries lists pending deliveries due at now, soonest first.
	DueDeliveries(now time.Time, limit int) ([]Delivery, error)
	// GetDelivery returns a delivery, or ErrNotFound.
	GetDelivery(site, id string) (Delivery, error)
	// BeginAttempt leases a due delivery for one attempt (see Badger.BeginAttempt).
	BeginAttempt(site, id string, now time.Time, lease time.Duration) (Delivery, error)
	// FinishAttempt records the outcome of the attempt BeginAttempt returned.
	FinishAttempt(site, id string, attempt int, r AttemptResult) (Delivery, error)
	// Replay puts a delivery back in the queue, due at now, for a new round of attempts; an
	// attempt in flight finishes first, and the delivery is then due at once whatever it got.
	Replay(site, id string, now time.Time) (Delivery, error)

	// ListPayments and ListDeliveries serve the admin API.
	ListPayments(f PaymentFilter) ([]Payment, error)
	ListDeliveries(f DeliveryFilter) ([]Delivery, error)

	// Stats are the figures operators alert on, by site (see SiteStats).
	Stats(now time.Time) (map[string]*SiteStats, error)

	// Purge deletes what ended more than keep ago; it returns how many payments it removed.
	Purge(now time.Time, keep time.Duration) (int, error)
	// GC reclaims space on disk.
	GC() error
	// Close closes the store.
	Close() error
}

// Claim asks to start a payment for an order.
type Claim struct {
	SiteID      string
	OrderID     string
	Amount      int64
	Currency    string
	Environment string
	Now         time.Time
	// ReuseWindow: a PENDING payment of the order younger than this, with the same amount and
	// currency, is handed back instead of starting a second one (README, "1. Checkout": 15 minutes).
	ReuseWindow time.Duration
	// InitGrace: an INIT payment younger than this is a start in progress; an older one is
	// stale (the process died during the call) and the re-checker resolves it then.
	InitGrace time.Duration
}

// ClaimKind says what Claim decided.
type ClaimKind int

// The outcomes of Claim.
const (
	// ClaimNew: a new payment was stored in state INIT; the caller starts it at CinetPay.
	ClaimNew ClaimKind = iota
	// ClaimReuse: the order has a fresh PENDING payment with the same amount and currency.
	ClaimReuse
	// ClaimPaid: the order is already paid by the returned payment.
	ClaimPaid
	// ClaimBusy: another start of the order is in progress (state INIT).
	ClaimBusy
)

// ClaimResult is the answer of Claim.
type ClaimResult struct {
	Kind    ClaimKind
	Payment Payment
}

// UpdateResult is the answer of Update.
type UpdateResult struct {
	Payment Payment
	// From is the state before the update.
	From State
	// Changed reports a state change.
	Changed bool
	// Delivery is the delivery the change caused, if any.
	Delivery *Delivery
}

// AttemptResult is the outcome of one delivery attempt.
type AttemptResult struct {
	At         time.Time
	Delivered  bool
	HTTPStatus int
	Error      string
	// GiveUp ends the round of attempts: the delivery is kept as failed, replayable.
	GiveUp bool
	// NextAttempt is when to try again, when neither delivered nor given up.
	NextAttempt time.Time
}

// PaymentFilter selects payments for listing, newest first (by creation, then site and id,
// descending). Empty fields select everything.
type PaymentFilter struct {
	SiteID  string
	State   State
	OrderID string // needs SiteID
	// Since and Until bound the creation time: Since ≤ CreatedAt < Until (zero: unbounded).
	Since, Until time.Time
	// After continues a listing after this payment, the last of the page before.
	After *Cursor
	Limit int // default 100
}

// Cursor is where a newest-first listing of payments stopped: its last payment.
type Cursor struct {
	CreatedAt time.Time `json:"created_at"`
	SiteID    string    `json:"site_id"`
	ID        string    `json:"id"`
}

// listTime is a creation time as listings order it: to the microsecond.
func listTime(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// CursorOf is the cursor after p.
func CursorOf(p *Payment) *Cursor {
	return &Cursor{CreatedAt: p.CreatedAt, SiteID: p.SiteID, ID: p.TransactionID}
}

// newer reports whether a comes before b in a newest-first listing. Creation times count to
// the microsecond, as PostgreSQL keeps them, so that every store lists in one order.
func newer(a, b *Cursor) bool {
	if ta, tb := listTime(a.CreatedAt), listTime(b.CreatedAt); !ta.Equal(tb) {
		return ta.After(tb)
	}
	if a.SiteID != b.SiteID {
		return a.SiteID > b.SiteID
	}
	return a.ID > b.ID
}

// CompareNewest orders payments as listings give them: a before b (-1) if a is newer.
func CompareNewest(a, b *Payment) int {
	switch ca, cb := CursorOf(a), CursorOf(b); {
	case newer(ca, cb):
		return -1
	case newer(cb, ca):
		return 1
	}
	return 0
}

// NewestFirst sorts payments as listings give them.
func NewestFirst(ps []Payment) {
	slices.SortFunc(ps, func(a, b Payment) int { return CompareNewest(&a, &b) })
}

// admits reports whether the filter's time bounds and cursor let p in.
func (f *PaymentFilter) admits(p *Payment) bool {
	return (f.Since.IsZero() || !p.CreatedAt.Before(f.Since)) && (f.Until.IsZero() || p.CreatedAt.Before(f.Until)) &&
		(f.After == nil || newer(f.After, CursorOf(p)))
}

// DeliveryFilter selects deliveries for listing. Empty fields select everything.
type DeliveryFilter struct {
	SiteID        string
	State         DeliveryState
	TransactionID string
	Limit         int // default 100
}

// SiteStats are a site's figures in a store at a time: its backlog of deliveries, its open
// payments, its re-checks due.
type SiteStats struct {
	// DeliveriesPending counts the deliveries not yet accepted by the shop nor given up.
	DeliveriesPending int
	// OldestPending is when the current round of attempts of the oldest pending delivery began
	// (its creation, or its last replay); zero when none is pending.
	OldestPending time.Time
	// PaymentsOpen counts the open payments (INIT, PENDING, UNKNOWN) by state.
	PaymentsOpen map[State]int
	// RechecksDue counts the payments whose re-check is due.
	RechecksDue int
}

// siteStats is the entry of site in m, made if new.
func siteStats(m map[string]*SiteStats, site string) *SiteStats {
	st := m[site]
	if st == nil {
		st = &SiteStats{PaymentsOpen: map[State]int{}}
		m[site] = st
	}
	return st
}
