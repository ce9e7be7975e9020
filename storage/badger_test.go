package storage

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func openTest(t *testing.T) *Badger {
	t.Helper()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func claim(site, order string, amount int64, now time.Time) Claim {
	return Claim{SiteID: site, OrderID: order, Amount: amount, Currency: "XOF", Environment: "sandbox",
		Now: now, ReuseWindow: 15 * time.Minute, InitGrace: time.Minute}
}

// started claims an order and moves its payment to PENDING, as a successful start does.
func started(t *testing.T, s *Badger, site, order string, amount int64, now time.Time) Payment {
	t.Helper()
	c, err := s.Claim(claim(site, order, amount, now))
	if err != nil || c.Kind != ClaimNew {
		t.Fatalf("claim: %v %v", c.Kind, err)
	}
	r, err := s.Update(site, c.Payment.TransactionID, now, func(p *Payment) error {
		p.State, p.PaymentURL, p.PaymentToken = StatePending, "https://pay.example/"+p.TransactionID, "tok"
		p.NextCheck = now.Add(time.Minute)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return r.Payment
}

func setState(s *Badger, p Payment, st State, now time.Time) (UpdateResult, error) {
	return s.Update(p.SiteID, p.TransactionID, now, func(p *Payment) error {
		p.State = st
		p.Confirmed = &Confirmation{Amount: fmt.Sprint(p.Amount), Currency: p.Currency, Status: string(st), PaymentMethod: "OM"}
		return nil
	})
}

func TestTransitionsFollowSpec(t *testing.T) {
	allowed := map[[2]State]bool{}
	for _, e := range [][2]State{
		{StateInit, StatePending}, {StateInit, StateFailed}, {StateInit, StateUnknown},
		{StatePending, StateAccepted}, {StatePending, StateMismatch}, {StatePending, StateDuplicate},
		{StatePending, StateRefused}, {StatePending, StateExpired},
		{StateRefused, StateAccepted}, {StateRefused, StateMismatch}, {StateRefused, StateDuplicate},
		{StateExpired, StateAccepted}, {StateExpired, StateMismatch}, {StateExpired, StateDuplicate},
		{StateUnknown, StatePending}, {StateUnknown, StateAccepted}, {StateUnknown, StateMismatch},
		{StateUnknown, StateDuplicate}, {StateUnknown, StateRefused}, {StateUnknown, StateExpired},
		{StateUnknown, StateFailed}, // a start CinetPay never saw (current API: unknown id after the grace)
	} {
		allowed[e] = true
	}
	for _, from := range States {
		for _, to := range States {
			if got := CanTransition(from, to); got != allowed[[2]State{from, to}] {
				t.Errorf("CanTransition(%s, %s) = %v", from, to, got)
			}
		}
		if from.Final() {
			for _, to := range States {
				if CanTransition(from, to) {
					t.Errorf("final %s may change to %s", from, to)
				}
			}
		}
	}
}

func TestPrefixAndIDs(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	prefix := s.Prefix()
	if len(prefix) != prefixLen || !isUpperAlnum(prefix) {
		t.Fatalf("prefix %q", prefix)
	}
	seen := map[string]bool{}
	for range 1000 {
		id := s.NewTransactionID()
		if len(id) != TransactionIDLen || len(id) > 30 || !isUpperAlnum(id) || !s.OwnsTransaction(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	for _, foreign := range []string{"", "ORDER-2024-0001", "XXXXXX123456789012345678", prefix + "abc", prefix + "A/B" + "1234567890123456"} {
		if s.OwnsTransaction(foreign) {
			t.Errorf("owns foreign %q", foreign)
		}
	}
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("second open of one directory succeeded")
	}
	_ = s.Close()
	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Prefix() != prefix {
		t.Fatalf("prefix changed on reopen: %q → %q", prefix, s2.Prefix())
	}
}

func TestClaimRules(t *testing.T) {
	s := openTest(t)
	c, err := s.Claim(claim("1", "A1", 1000, t0))
	if err != nil || c.Kind != ClaimNew || c.Payment.State != StateInit {
		t.Fatalf("first claim: %+v %v", c, err)
	}
	// a start in progress
	c2, _ := s.Claim(claim("1", "A1", 1000, t0.Add(time.Second)))
	if c2.Kind != ClaimBusy || c2.Payment.TransactionID != c.Payment.TransactionID {
		t.Fatalf("busy: %+v", c2)
	}
	// a stale INIT is left to the re-checker: a new payment may start
	c3, _ := s.Claim(claim("1", "A1", 1000, t0.Add(2*time.Minute)))
	if c3.Kind != ClaimNew || c3.Payment.TransactionID == c.Payment.TransactionID {
		t.Fatalf("after stale init: %+v", c3)
	}

	p := started(t, s, "1", "B1", 500, t0)
	for _, tc := range []struct {
		name   string
		claim  Claim
		kind   ClaimKind
		sameTx bool
	}{
		{"resubmit", claim("1", "B1", 500, t0.Add(14*time.Minute)), ClaimReuse, true},
		{"other amount", claim("1", "B1", 505, t0.Add(time.Minute)), ClaimNew, false},
	} {
		r, err := s.Claim(tc.claim)
		if err != nil || r.Kind != tc.kind || (r.Payment.TransactionID == p.TransactionID) != tc.sameTx {
			t.Errorf("%s: %+v %v", tc.name, r, err)
		}
	}
	q := started(t, s, "1", "C1", 500, t0)
	if r, _ := s.Claim(claim("1", "C1", 500, t0.Add(16*time.Minute))); r.Kind != ClaimNew {
		t.Errorf("pending older than 15 min reused: %+v", r.Kind)
	}
	// another site never sees the order
	if r, _ := s.Claim(claim("2", "C1", 500, t0)); r.Kind != ClaimNew {
		t.Errorf("other site: %+v", r.Kind)
	}
	if _, err := setState(s, q, StateAccepted, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	r, _ := s.Claim(claim("1", "C1", 500, t0.Add(20*time.Minute)))
	if r.Kind != ClaimPaid || r.Payment.TransactionID != q.TransactionID {
		t.Errorf("paid order: %+v", r)
	}
	if _, err := s.Claim(claim("1", "bad/order", 5, t0)); !errors.Is(err, ErrInvalidKeyPart) {
		t.Errorf("bad order id: %v", err)
	}
}

func TestConcurrentClaimsStartOnce(t *testing.T) {
	s := openTest(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	kinds := map[ClaimKind]int{}
	ids := map[string]bool{}
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Claim(claim("1", "RACE", 1000, t0))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			kinds[r.Kind]++
			ids[r.Payment.TransactionID] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if kinds[ClaimNew] != 1 || kinds[ClaimBusy] != 19 || len(ids) != 1 {
		t.Fatalf("kinds %v ids %d", kinds, len(ids))
	}
	ps, _ := s.ListPayments(PaymentFilter{SiteID: "1", OrderID: "RACE"})
	if len(ps) != 1 {
		t.Fatalf("%d payments stored", len(ps))
	}
}

func TestUpdateStateMachineAndDeliveries(t *testing.T) {
	s := openTest(t)
	p := started(t, s, "1", "O1", 1000, t0)

	// a non-change writes no delivery
	r, err := s.Update("1", p.TransactionID, t0.Add(time.Minute), func(p *Payment) error {
		p.LastCheckResult = "WAITING_FOR_CUSTOMER"
		return nil
	})
	if err != nil || r.Changed || r.Delivery != nil {
		t.Fatalf("no-op: %+v %v", r, err)
	}
	// a forbidden arrow writes nothing
	if _, err := setState(s, p, StateInit, t0); !errors.Is(err, ErrBadTransition) {
		t.Fatalf("PENDING→INIT: %v", err)
	}
	// identity fields cannot be changed by fn
	r, err = s.Update("1", p.TransactionID, t0.Add(2*time.Minute), func(p *Payment) error {
		p.Amount, p.OrderID = 1, "evil"
		p.State, p.Note = StateRefused, "check"
		return nil
	})
	if err != nil || !r.Changed || r.Delivery == nil || r.Payment.Amount != 1000 || r.Payment.OrderID != "O1" {
		t.Fatalf("refuse: %+v %v", r, err)
	}
	if d := r.Delivery; d.Status != StateRefused || d.State != DeliveryPending || d.OrderID != "O1" || d.Amount != "1000" {
		t.Fatalf("delivery %+v", d)
	}
	// late success
	r, err = setState(s, p, StateAccepted, t0.Add(time.Hour))
	if err != nil || r.From != StateRefused || r.Payment.State != StateAccepted || r.Delivery == nil {
		t.Fatalf("late success: %+v %v", r, err)
	}
	if h := r.Payment.History; len(h) != 3 || h[1].Reason != "check" || h[2].To != StateAccepted || h[2].EventID != r.Delivery.ID {
		t.Fatalf("history %+v", h)
	}
	if !r.Payment.NextCheck.IsZero() {
		t.Fatal("final payment still scheduled")
	}
	// final: fn not called, nothing changes
	called := false
	r, err = s.Update("1", p.TransactionID, t0.Add(2*time.Hour), func(p *Payment) error {
		called = true
		p.State = StateRefused
		return nil
	})
	if err != nil || called || r.Changed || r.Payment.State != StateAccepted {
		t.Fatalf("final changed: %+v %v called=%v", r, err, called)
	}
	ds, _ := s.ListDeliveries(DeliveryFilter{SiteID: "1", TransactionID: p.TransactionID})
	if len(ds) != 2 {
		t.Fatalf("%d deliveries", len(ds))
	}
	// a second accepted payment of the paid order is a duplicate
	q := started(t, s, "1", "O1b", 1000, t0)
	_ = q
	c, _ := s.Claim(claim("1", "O1", 1000, t0.Add(3*time.Hour)))
	if c.Kind != ClaimPaid {
		t.Fatalf("claim of paid order: %v", c.Kind)
	}
	// force a second payment for O1 the way a race would: two payments started before either was paid
	s2 := openTest(t)
	a := started(t, s2, "1", "O2", 1000, t0)
	b := started(t, s2, "1", "O2", 2000, t0.Add(time.Minute)) // other amount: a new payment
	if a.TransactionID == b.TransactionID {
		t.Fatal("same tx")
	}
	if r, _ := setState(s2, a, StateAccepted, t0.Add(2*time.Minute)); r.Payment.State != StateAccepted {
		t.Fatalf("first: %s", r.Payment.State)
	}
	r, _ = setState(s2, b, StateAccepted, t0.Add(3*time.Minute))
	if r.Payment.State != StateDuplicate || r.Delivery == nil || r.Delivery.Status != StateDuplicate {
		t.Fatalf("second: %+v", r)
	}
}

func TestUpdateUnknownPayment(t *testing.T) {
	s := openTest(t)
	if _, err := s.Update("1", "NOPE", t0, func(*Payment) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := s.Get("1", "../x"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}

func TestConcurrentUpdatesOneChange(t *testing.T) {
	s := openTest(t)
	p := started(t, s, "1", "O1", 1000, t0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	changes := 0
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := StateAccepted
			if i%2 == 1 {
				st = StateRefused
			}
			r, err := setState(s, p, st, t0.Add(time.Minute))
			if err != nil && !errors.Is(err, ErrBadTransition) {
				t.Error(err)
			}
			if r.Changed {
				mu.Lock()
				changes++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	got, _ := s.Get("1", p.TransactionID)
	ds, _ := s.ListDeliveries(DeliveryFilter{SiteID: "1"})
	// either accepted at once, or refused then accepted (late success): never more
	if got.State != StateAccepted || changes != len(ds) || changes > 2 {
		t.Fatalf("state %s, %d changes, %d deliveries", got.State, changes, len(ds))
	}
}

func TestRecheckQueue(t *testing.T) {
	s := openTest(t)
	a := started(t, s, "1", "A", 5, t0) // next check t0+1m
	b := started(t, s, "2", "B", 5, t0.Add(time.Second))
	keys, _ := s.DueChecks(t0.Add(30*time.Second), 0)
	if len(keys) != 0 {
		t.Fatalf("due too early: %v", keys)
	}
	keys, _ = s.DueChecks(t0.Add(2*time.Minute), 0)
	if len(keys) != 2 || keys[0].ID != a.TransactionID || keys[1].ID != b.TransactionID || keys[1].SiteID != "2" {
		t.Fatalf("due: %v", keys)
	}
	if _, err := s.Update("1", a.TransactionID, t0, func(p *Payment) error {
		p.NextCheck = t0.Add(time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	keys, _ = s.DueChecks(t0.Add(2*time.Minute), 1)
	if len(keys) != 1 || keys[0].ID != b.TransactionID {
		t.Fatalf("after reschedule: %v", keys)
	}
	if _, err := setState(s, b, StateAccepted, t0); err != nil {
		t.Fatal(err)
	}
	keys, _ = s.DueChecks(t0.Add(2*time.Hour), 0)
	if len(keys) != 1 || keys[0].ID != a.TransactionID {
		t.Fatalf("final payment still queued: %v", keys)
	}
}

func TestDeliveryAttempts(t *testing.T) {
	s := openTest(t)
	p := started(t, s, "1", "O", 100, t0)
	r, _ := setState(s, p, StateAccepted, t0)
	id := r.Delivery.ID

	due, _ := s.DueDeliveries(t0, 10)
	if len(due) != 1 || due[0].ID != id {
		t.Fatalf("due %v", due)
	}
	d, err := s.BeginAttempt("1", id, t0, 30*time.Second)
	if err != nil || d.Attempts != 1 {
		t.Fatal(d, err)
	}
	// leased: not due, and a second worker cannot begin the same attempt
	if due, _ := s.DueDeliveries(t0.Add(time.Second), 10); len(due) != 0 {
		t.Fatalf("leased delivery due: %v", due)
	}
	if _, err := s.BeginAttempt("1", id, t0.Add(time.Second), 30*time.Second); !errors.Is(err, ErrStaleAttempt) {
		t.Fatalf("double begin: %v", err)
	}
	// the lease ends (the worker died): due again
	if due, _ := s.DueDeliveries(t0.Add(31*time.Second), 10); len(due) != 1 {
		t.Fatalf("lease end: %v", due)
	}
	d, _ = s.FinishAttempt("1", id, 1, AttemptResult{At: t0, HTTPStatus: 500, Error: "HTTP 500", NextAttempt: t0.Add(5 * time.Second)})
	if d.State != DeliveryPending || d.LastHTTPStatus != 500 {
		t.Fatalf("%+v", d)
	}
	// a stale finish is refused
	if _, err := s.FinishAttempt("1", id, 7, AttemptResult{Delivered: true}); !errors.Is(err, ErrStaleAttempt) {
		t.Fatal(err)
	}
	d, _ = s.BeginAttempt("1", id, t0.Add(5*time.Second), 30*time.Second)
	d, _ = s.FinishAttempt("1", id, d.Attempts, AttemptResult{At: t0.Add(6 * time.Second), GiveUp: true, Error: "gone"})
	if d.State != DeliveryFailed || d.Attempts != 2 {
		t.Fatalf("give up: %+v", d)
	}
	if due, _ := s.DueDeliveries(t0.Add(time.Hour), 10); len(due) != 0 {
		t.Fatalf("failed delivery due: %v", due)
	}
	failed, _ := s.ListDeliveries(DeliveryFilter{State: DeliveryFailed})
	if len(failed) != 1 {
		t.Fatalf("failed list: %v", failed)
	}
	d, _ = s.Replay("1", id, t0.Add(2*time.Hour))
	if d.State != DeliveryPending || !d.Since.Equal(t0.Add(2*time.Hour)) || d.RoundAttempts != 0 || d.Attempts != 2 {
		t.Fatalf("replay %+v", d)
	}
	d, _ = s.BeginAttempt("1", id, t0.Add(2*time.Hour), time.Minute)
	d, _ = s.FinishAttempt("1", id, d.Attempts, AttemptResult{At: t0.Add(2 * time.Hour), Delivered: true, HTTPStatus: 204})
	if d.State != DeliveryDelivered || d.Attempts != 3 {
		t.Fatalf("delivered %+v", d)
	}
}

func TestPersistenceAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := started(t, s, "1", "O", 100, t0)
	r, _ := setState(s, p, StateAccepted, t0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Get("1", p.TransactionID)
	if err != nil || got.State != StateAccepted || got.Confirmed == nil || got.Confirmed.PaymentMethod != "OM" {
		t.Fatalf("%+v %v", got, err)
	}
	due, _ := s.DueDeliveries(t0, 0)
	if len(due) != 1 || due[0].ID != r.Delivery.ID {
		t.Fatalf("queue lost: %v", due)
	}
}

func TestPurge(t *testing.T) {
	s := openTest(t)
	keep := 90 * 24 * time.Hour
	old := started(t, s, "1", "OLD", 100, t0)
	r, _ := setState(s, old, StateAccepted, t0)
	d, _ := s.BeginAttempt("1", r.Delivery.ID, t0, time.Minute)
	_, _ = s.FinishAttempt("1", r.Delivery.ID, d.Attempts, AttemptResult{At: t0, Delivered: true})
	undelivered := started(t, s, "1", "UNDELIVERED", 100, t0)
	_, _ = setState(s, undelivered, StateAccepted, t0)
	pending := started(t, s, "1", "PENDING", 100, t0)

	if n, _ := s.Purge(t0.Add(keep-time.Hour), keep); n != 0 {
		t.Fatalf("purged %d too early", n)
	}
	n, err := s.Purge(t0.Add(keep+time.Hour), keep)
	if err != nil || n != 1 {
		t.Fatalf("purged %d %v", n, err)
	}
	if _, err := s.Get("1", old.TransactionID); !errors.Is(err, ErrNotFound) {
		t.Fatal("old payment kept")
	}
	if _, err := s.GetDelivery("1", r.Delivery.ID); !errors.Is(err, ErrNotFound) {
		t.Fatal("old delivery kept")
	}
	for _, p := range []Payment{undelivered, pending} {
		if _, err := s.Get("1", p.TransactionID); err != nil {
			t.Fatalf("%s purged", p.OrderID)
		}
	}
	// the paid marker stays: the order is never started again
	if c, _ := s.Claim(claim("1", "OLD", 100, t0.Add(keep+2*time.Hour))); c.Kind != ClaimPaid {
		t.Fatalf("paid order restarted after purge: %v", c.Kind)
	}
	if err := s.GC(); err != nil {
		t.Fatal(err)
	}
}

// A payment that changes between Purge's listing and its deletion is kept whole: here a
// refused payment, old enough to purge, turns ACCEPTED (a late success) meanwhile.
func TestPurgeKeepsAPaymentChangedMeanwhile(t *testing.T) {
	s := openTest(t)
	keep := 90 * 24 * time.Hour
	p := started(t, s, "1", "LATE", 100, t0)
	r, err := s.Update("1", p.TransactionID, t0, func(p *Payment) error {
		p.State, p.NextCheck = StateRefused, time.Time{}
		return nil
	})
	if err != nil || r.Payment.State != StateRefused {
		t.Fatalf("refuse: %v %v", r.Payment.State, err)
	}
	refusal := r.Delivery.ID
	d, _ := s.BeginAttempt("1", refusal, t0, time.Minute)
	_, _ = s.FinishAttempt("1", refusal, d.Attempts, AttemptResult{At: t0, Delivered: true})

	later := t0.Add(keep + time.Hour)
	var accepted UpdateResult
	purgeListed = func() {
		accepted, err = setState(s, p, StateAccepted, later)
	}
	t.Cleanup(func() { purgeListed = nil })
	n, perr := s.Purge(later, keep)
	if perr != nil || err != nil {
		t.Fatalf("purge %v, late success %v", perr, err)
	}
	if n != 0 {
		t.Fatalf("purged %d", n)
	}
	got, err := s.Get("1", p.TransactionID)
	if err != nil || got.State != StateAccepted {
		t.Fatalf("after the purge: %v %v", got.State, err)
	}
	if _, err := s.GetDelivery("1", accepted.Delivery.ID); err != nil {
		t.Fatalf("the late success's delivery: %v", err)
	}
	if _, err := s.GetDelivery("1", refusal); err != nil {
		t.Fatalf("the refusal's delivery: %v", err)
	}
	if ps, err := s.ListPayments(PaymentFilter{SiteID: "1", OrderID: "LATE"}); err != nil || len(ps) != 1 {
		t.Fatalf("order index: %d %v", len(ps), err)
	}
	if c, _ := s.Claim(claim("1", "LATE", 100, later)); c.Kind != ClaimPaid || c.Payment.State != StateAccepted {
		t.Fatalf("claim after the purge: %v %s", c.Kind, c.Payment.State)
	}

	// once delivered and old enough, the same payment goes
	d, _ = s.BeginAttempt("1", accepted.Delivery.ID, later, time.Minute)
	_, _ = s.FinishAttempt("1", accepted.Delivery.ID, d.Attempts, AttemptResult{At: later, Delivered: true})
	purgeListed = nil
	if n, err := s.Purge(later.Add(keep+time.Hour), keep); err != nil || n != 1 {
		t.Fatalf("second purge: %d %v", n, err)
	}
}

// Purges racing with state changes never leave a payment half-deleted.
func TestPurgeRacingUpdates(t *testing.T) {
	s := openTest(t)
	keep := time.Hour
	var ps []Payment
	for i := range 40 {
		p := started(t, s, "1", fmt.Sprintf("R%d", i), 100, t0)
		if _, err := s.Update("1", p.TransactionID, t0, func(p *Payment) error {
			p.State, p.NextCheck = StateExpired, time.Time{}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	// deliver the EXPIRED results, so that only the race decides
	ds, _ := s.DueDeliveries(t0.Add(time.Minute), 0)
	for _, d := range ds {
		l, _ := s.BeginAttempt("1", d.ID, t0.Add(time.Minute), time.Minute)
		_, _ = s.FinishAttempt("1", d.ID, l.Attempts, AttemptResult{At: t0, Delivered: true})
	}
	later := t0.Add(2 * keep)
	var wg sync.WaitGroup
	accepted := make([]bool, len(ps))
	for i, p := range ps {
		if i%2 == 0 {
			continue
		}
		wg.Go(func() {
			r, err := setState(s, p, StateAccepted, later)
			accepted[i] = err == nil && r.Payment.State == StateAccepted
		})
	}
	wg.Go(func() {
		if _, err := s.Purge(later, keep); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	for i, p := range ps {
		got, err := s.Get("1", p.TransactionID)
		switch {
		case accepted[i] && (err != nil || got.State != StateAccepted):
			t.Errorf("accepted payment %d: %v %v", i, got.State, err)
		case err == nil:
			for _, tr := range got.History {
				if tr.EventID == "" {
					continue
				}
				if _, err := s.GetDelivery("1", tr.EventID); err != nil {
					t.Errorf("payment %d kept without its delivery %s: %v", i, tr.EventID, err)
				}
			}
		case !errors.Is(err, ErrNotFound):
			t.Errorf("payment %d: %v", i, err)
		}
	}
}

func TestListPayments(t *testing.T) {
	s := openTest(t)
	a := started(t, s, "1", "A", 100, t0)
	started(t, s, "1", "B", 100, t0)
	started(t, s, "2", "A", 100, t0)
	_, _ = setState(s, a, StateRefused, t0)
	for _, tc := range []struct {
		f    PaymentFilter
		want int
	}{
		{PaymentFilter{}, 3},
		{PaymentFilter{SiteID: "1"}, 2},
		{PaymentFilter{SiteID: "1", State: StateRefused}, 1},
		{PaymentFilter{State: StatePending}, 2},
		{PaymentFilter{SiteID: "1", OrderID: "A"}, 1},
		{PaymentFilter{SiteID: "2", OrderID: "A"}, 1},
		{PaymentFilter{SiteID: "1", OrderID: "Z"}, 0},
		{PaymentFilter{Limit: 1}, 1},
	} {
		got, err := s.ListPayments(tc.f)
		if err != nil || len(got) != tc.want {
			t.Errorf("%+v: %d %v", tc.f, len(got), err)
		}
	}
}
