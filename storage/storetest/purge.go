package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

const keep = 90 * 24 * time.Hour

func mustPurge(t *testing.T, s storage.Store, now time.Time, keep time.Duration) int {
	t.Helper()
	n, err := s.Purge(now, keep)
	if err != nil {
		t.Fatalf("purge: %v", err)
	}
	return n
}

// Purge removes, with their deliveries, the payments settled more than keep ago whose
// deliveries are all done (delivered or given up) and that have no re-check scheduled; it keeps
// the open ones and those with a pending delivery, and the marker of a paid order.
func testPurge(t *testing.T, s storage.Store) {
	old := started(t, s, "1", "OLD", 100, t0)
	r := mustSetState(t, s, old, storage.StateAccepted, t0)
	oldDelivery := r.Delivery.ID
	deliver(t, s, "1", oldDelivery, t0)
	undelivered := started(t, s, "1", "UNDELIVERED", 100, t0)
	mustSetState(t, s, undelivered, storage.StateAccepted, t0)
	pending := started(t, s, "1", "PENDING", 100, t0)
	stale := mustClaim(t, s, claim("1", "INIT", 100, t0)).Payment // a start that never finished
	// open, and no re-check scheduled: still kept (only settled payments go)
	var unscheduled []storage.Payment
	for _, st := range []storage.State{storage.StatePending, storage.StateUnknown} {
		p := reach(t, s, "1", "UNSCHEDULED-"+string(st), st, t0)
		r, err := s.Update("1", p.TransactionID, t0, func(p *storage.Payment) error {
			p.NextCheck = time.Time{}
			return nil
		})
		if err != nil || !r.Payment.NextCheck.IsZero() {
			t.Fatalf("unschedule: %v %v", r.Payment.NextCheck, err)
		}
		unscheduled = append(unscheduled, r.Payment)
	}
	// given up: the delivery does not keep the payment
	expired := started(t, s, "1", "EXPIRED", 100, t0)
	r, err := s.Update("1", expired.TransactionID, t0, func(p *storage.Payment) error {
		p.State, p.NextCheck = storage.StateExpired, time.Time{}
		return nil
	})
	if err != nil || r.Delivery == nil {
		t.Fatalf("expire: %+v %v", r, err)
	}
	expiredDelivery := r.Delivery.ID
	giveUp(t, s, "1", expiredDelivery, t0)
	// a start refused: no delivery at all
	failed := mustClaim(t, s, claim("1", "FAILED", 100, t0)).Payment
	mustSetState(t, s, failed, storage.StateFailed, t0)
	// recent
	recent := started(t, s, "1", "RECENT", 100, t0.Add(keep))
	deliver(t, s, "1", mustSetState(t, s, recent, storage.StateAccepted, t0.Add(keep)).Delivery.ID, t0.Add(keep))

	if n := mustPurge(t, s, t0.Add(keep-time.Hour), keep); n != 0 {
		t.Fatalf("purged %d too early", n)
	}
	later := t0.Add(keep + time.Hour)
	if n := mustPurge(t, s, later, keep); n != 3 {
		t.Fatalf("purged %d, want 3", n)
	}
	for _, p := range []storage.Payment{old, expired, failed} {
		if _, err := s.Get("1", p.TransactionID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s kept: %v", p.OrderID, err)
		}
		if ds := deliveriesOf(t, s, "1", p.TransactionID); len(ds) != 0 {
			t.Errorf("%s: deliveries kept: %v", p.OrderID, ids(ds))
		}
		if ps := listPayments(t, s, storage.PaymentFilter{SiteID: "1", OrderID: p.OrderID}); len(ps) != 0 {
			t.Errorf("%s still listed for its order", p.OrderID)
		}
	}
	for _, id := range []string{oldDelivery, expiredDelivery} {
		if _, err := s.GetDelivery("1", id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("delivery %s kept: %v", id, err)
		}
	}
	if ds := listDeliveries(t, s, storage.DeliveryFilter{State: storage.DeliveryFailed}); len(ds) != 0 {
		t.Errorf("failed deliveries listed: %v", ids(ds))
	}
	if ps := listPayments(t, s, storage.PaymentFilter{State: storage.StateAccepted}); len(ps) != 2 {
		t.Errorf("accepted payments listed: %d, want 2", len(ps))
	}
	for _, p := range append([]storage.Payment{undelivered, pending, stale, recent}, unscheduled...) {
		if _, err := s.Get("1", p.TransactionID); err != nil {
			t.Errorf("%s purged: %v", p.OrderID, err)
		}
	}
	if ds := deliveriesOf(t, s, "1", undelivered.TransactionID); len(ds) != 1 {
		t.Errorf("undelivered: %d deliveries", len(ds))
	}
	// the paid marker stays: the order is never started again
	if c := mustClaim(t, s, claim("1", "OLD", 100, later)); c.Kind != storage.ClaimPaid || c.Payment.TransactionID != old.TransactionID {
		t.Errorf("paid order restarted after purge: %v %s", c.Kind, c.Payment.TransactionID)
	}
	// an order not paid may start again
	if c := mustClaim(t, s, claim("1", "FAILED", 100, later)); c.Kind != storage.ClaimNew {
		t.Errorf("claim of a purged unpaid order: %v", c.Kind)
	}
	if n := mustPurge(t, s, later, keep); n != 0 {
		t.Errorf("second purge removed %d", n)
	}
	// once delivered, the undelivered one goes too
	deliver(t, s, "1", deliveriesOf(t, s, "1", undelivered.TransactionID)[0].ID, later)
	if n := mustPurge(t, s, later, keep); n != 1 {
		t.Errorf("purged %d after the delivery, want 1", n)
	}
	if c := mustClaim(t, s, claim("1", "UNDELIVERED", 100, later)); c.Kind != storage.ClaimPaid || c.Payment.TransactionID != undelivered.TransactionID {
		t.Errorf("paid order restarted after purge: %v", c.Kind)
	}
	if err := s.GC(); err != nil {
		t.Fatal(err)
	}
}

// A settled payment with a re-check scheduled (a refusal, checked again for a late success) is
// kept, however old; once unscheduled, it goes.
func testPurgeKeepsAScheduledRecheck(t *testing.T, s storage.Store) {
	p := started(t, s, "1", "REFUSED", 100, t0)
	r, err := s.Update("1", p.TransactionID, t0, func(p *storage.Payment) error {
		p.State, p.NextCheck = storage.StateRefused, t0.Add(24*time.Hour)
		return nil
	})
	if err != nil || r.Delivery == nil {
		t.Fatalf("refuse: %+v %v", r, err)
	}
	deliver(t, s, "1", r.Delivery.ID, t0)
	later := t0.Add(keep + time.Hour)
	if n := mustPurge(t, s, later, keep); n != 0 {
		t.Fatalf("purged %d with a re-check scheduled", n)
	}
	if _, err := s.Update("1", p.TransactionID, later, func(p *storage.Payment) error {
		p.NextCheck = time.Time{}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// its last state change is old enough: an update without a change does not count
	if n := mustPurge(t, s, later, keep); n != 1 {
		t.Fatalf("purged %d once unscheduled, want 1", n)
	}
	if _, err := s.Get("1", p.TransactionID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("kept: %v", err)
	}
	if c := mustClaim(t, s, claim("1", "REFUSED", 100, later)); c.Kind != storage.ClaimNew {
		t.Fatalf("claim of a purged refused order: %v", c.Kind)
	}
}

// Purges racing with state changes never leave a payment half-deleted.
func testPurgeRacingUpdates(t *testing.T, s storage.Store) {
	keep := time.Hour
	var ps []storage.Payment
	for i := range 40 {
		p := started(t, s, "1", fmt.Sprintf("R%d", i), 100, t0)
		if _, err := s.Update("1", p.TransactionID, t0, func(p *storage.Payment) error {
			p.State, p.NextCheck = storage.StateExpired, time.Time{}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	// deliver the EXPIRED results, so that only the race decides
	ds, err := s.DueDeliveries(t0.Add(time.Minute), 0)
	if err != nil || len(ds) != len(ps) {
		t.Fatalf("%d due deliveries, %v", len(ds), err)
	}
	for _, d := range ds {
		deliver(t, s, "1", d.ID, t0.Add(time.Minute))
	}
	later := t0.Add(2 * keep)
	var wg sync.WaitGroup
	acceptedAt := make([]bool, len(ps))
	for i, p := range ps {
		if i%2 == 0 {
			continue
		}
		wg.Go(func() {
			r, err := setState(s, p, storage.StateAccepted, later)
			acceptedAt[i] = err == nil && r.Payment.State == storage.StateAccepted
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
		case acceptedAt[i] && (err != nil || got.State != storage.StateAccepted):
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
			if ps := listPayments(t, s, storage.PaymentFilter{SiteID: "1", OrderID: p.OrderID}); len(ps) != 1 {
				t.Errorf("payment %d kept without its order index: %d", i, len(ps))
			}
		case !errors.Is(err, storage.ErrNotFound):
			t.Errorf("payment %d: %v", i, err)
		default:
			if ds := deliveriesOf(t, s, "1", p.TransactionID); len(ds) != 0 {
				t.Errorf("payment %d purged, its deliveries kept: %v", i, ids(ds))
			}
		}
	}
}
