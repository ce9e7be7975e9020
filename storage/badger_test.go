package storage

import (
	"fmt"
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
