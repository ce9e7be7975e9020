package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Every pair of states, tried through Update: an arrow of the state machine is stored with its history
// entry and, into a delivering state, its delivery; any other arrow is refused with
// ErrBadTransition and writes nothing; a final payment is returned unchanged.
func testTransitionsThroughUpdate(t *testing.T, s storage.Store) {
	now := t0.Add(time.Hour)
	for _, from := range storage.States {
		for _, to := range storage.States {
			p := reach(t, s, "1", fmt.Sprintf("T-%s-%s", from, to), from, t0)
			before := mustGet(t, s, "1", p.TransactionID)
			nd := len(deliveriesOf(t, s, "1", p.TransactionID))
			r, err := s.Update("1", p.TransactionID, now, func(p *storage.Payment) error {
				p.State = to
				return nil
			})
			after := mustGet(t, s, "1", p.TransactionID)
			gotD := len(deliveriesOf(t, s, "1", p.TransactionID))
			arrow := fmt.Sprintf("%s → %s", from, to)
			switch {
			case final[from] || to == from:
				if err != nil || r.Changed || r.Delivery != nil || r.Payment.State != from || after.State != from ||
					len(after.History) != len(before.History) || gotD != nd {
					t.Errorf("%s: no change expected, got %+v, %v; stored %s, %d deliveries", arrow, r, err, after.State, gotD)
				}
			case allowed[[2]storage.State{from, to}]:
				if err != nil || !r.Changed || r.From != from || r.Payment.State != to || after.State != to {
					t.Errorf("%s refused: %+v, %v; stored %s", arrow, r, err, after.State)
					continue
				}
				h := after.History
				if len(h) != len(before.History)+1 || h[len(h)-1].From != from || h[len(h)-1].To != to || !h[len(h)-1].At.Equal(now) {
					t.Errorf("%s: history %+v", arrow, h)
					continue
				}
				last := h[len(h)-1]
				switch {
				case delivering[to] && (r.Delivery == nil || r.Delivery.Status != to || r.Delivery.TransactionID != p.TransactionID ||
					last.EventID != r.Delivery.ID || gotD != nd+1):
					t.Errorf("%s: delivery %+v, event %q, %d deliveries (had %d)", arrow, r.Delivery, last.EventID, gotD, nd)
				case !delivering[to] && (r.Delivery != nil || last.EventID != "" || gotD != nd):
					t.Errorf("%s delivers: %+v, event %q, %d deliveries (had %d)", arrow, r.Delivery, last.EventID, gotD, nd)
				}
				if !after.UpdatedAt.Equal(now) {
					t.Errorf("%s: updated at %v", arrow, after.UpdatedAt)
				}
			default:
				if !errors.Is(err, storage.ErrBadTransition) || after.State != from || len(after.History) != len(before.History) ||
					!after.UpdatedAt.Equal(before.UpdatedAt) || gotD != nd {
					t.Errorf("%s allowed: %v; stored %s, history %d, %d deliveries", arrow, err, after.State, len(after.History), gotD)
				}
			}
		}
	}
}

func testUpdateStateMachineAndDeliveries(t *testing.T, s storage.Store) {
	p := started(t, s, "1", "O1", 1000, t0)

	// a non-change writes no delivery
	r, err := s.Update("1", p.TransactionID, t0.Add(time.Minute), func(p *storage.Payment) error {
		p.LastCheckResult = "WAITING_FOR_CUSTOMER"
		return nil
	})
	if err != nil || r.Changed || r.Delivery != nil || r.From != storage.StatePending || r.Payment.LastCheckResult != "WAITING_FOR_CUSTOMER" {
		t.Fatalf("no-op: %+v %v", r, err)
	}
	if got := mustGet(t, s, "1", p.TransactionID); got.LastCheckResult != "WAITING_FOR_CUSTOMER" {
		t.Fatalf("field not stored: %+v", got)
	}
	// a forbidden arrow writes nothing
	if _, err := setState(s, p, storage.StateInit, t0); !errors.Is(err, storage.ErrBadTransition) {
		t.Fatalf("PENDING→INIT: %v", err)
	}
	// a change: its delivery is stored with it, due at once, a snapshot of the payment
	at := t0.Add(2 * time.Minute)
	r, err = s.Update("1", p.TransactionID, at, func(p *storage.Payment) error {
		p.State, p.Note = storage.StateRefused, "check"
		return nil
	})
	if err != nil || !r.Changed || r.From != storage.StatePending || r.Delivery == nil {
		t.Fatalf("refuse: %+v %v", r, err)
	}
	refusal := *r.Delivery
	if d := refusal; d.Status != storage.StateRefused || d.State != storage.DeliveryPending || d.SiteID != "1" ||
		d.TransactionID != p.TransactionID || d.OrderID != "O1" || d.Amount != "1000" || d.Currency != "XOF" ||
		d.Environment != "sandbox" || !d.CreatedAt.Equal(at) || !d.Since.Equal(at) || !d.NextAttempt.Equal(at) ||
		d.Attempts != 0 || d.ID == "" {
		t.Fatalf("delivery %+v", d)
	}
	if got, err := s.GetDelivery("1", refusal.ID); err != nil || got.ID != refusal.ID || got.Status != storage.StateRefused {
		t.Fatalf("stored delivery %+v %v", got, err)
	}
	if due, _ := s.DueDeliveries(at.Add(-time.Second), 10); len(due) != 0 {
		t.Fatalf("due before its creation: %v", ids(due))
	}
	if due, _ := s.DueDeliveries(at, 10); len(due) != 1 || due[0].ID != refusal.ID {
		t.Fatalf("not due at its creation: %v", ids(due))
	}
	// late success, with what /check confirmed
	r, err = setState(s, p, storage.StateAccepted, t0.Add(time.Hour))
	if err != nil || r.From != storage.StateRefused || r.Payment.State != storage.StateAccepted || r.Delivery == nil {
		t.Fatalf("late success: %+v %v", r, err)
	}
	if d := r.Delivery; d.Status != storage.StateAccepted || d.PaymentMethod != "OM" || d.Amount != "1000" || d.ID == refusal.ID {
		t.Fatalf("late success delivery %+v", d)
	}
	h := r.Payment.History
	if len(h) != 3 || h[0].From != storage.StateInit || h[0].To != storage.StatePending || h[1].Reason != "check" ||
		h[1].EventID != refusal.ID || h[2].To != storage.StateAccepted || h[2].EventID != r.Delivery.ID {
		t.Fatalf("history %+v", h)
	}
	if r.Payment.Note != "" {
		t.Fatalf("note kept: %q", r.Payment.Note)
	}
	if !r.Payment.NextCheck.IsZero() {
		t.Fatal("final payment still scheduled")
	}
	if got := mustGet(t, s, "1", p.TransactionID); got.State != storage.StateAccepted || got.Confirmed == nil ||
		got.Confirmed.PaymentMethod != "OM" || len(got.History) != 3 || !got.NextCheck.IsZero() {
		t.Fatalf("stored %+v", got)
	}
	// final: fn not called, nothing changes
	called := false
	r, err = s.Update("1", p.TransactionID, t0.Add(2*time.Hour), func(p *storage.Payment) error {
		called = true
		p.State = storage.StateRefused
		return nil
	})
	if err != nil || called || r.Changed || r.Payment.State != storage.StateAccepted {
		t.Fatalf("final changed: %+v %v called=%v", r, err, called)
	}
	if ds := deliveriesOf(t, s, "1", p.TransactionID); len(ds) != 2 {
		t.Fatalf("%d deliveries", len(ds))
	}
	// a payment whose start failed is not re-checked
	f := mustClaim(t, s, claim("1", "F", 100, t0)).Payment
	r, err = s.Update("1", f.TransactionID, t0, func(p *storage.Payment) error {
		p.State, p.NextCheck = storage.StateFailed, t0.Add(time.Hour)
		return nil
	})
	if err != nil || r.Payment.State != storage.StateFailed || r.Delivery != nil || !r.Payment.NextCheck.IsZero() {
		t.Fatalf("failed start: %+v %v", r, err)
	}
	if keys, _ := s.DueChecks(t0.Add(2*time.Hour), 0); len(keys) != 0 {
		t.Fatalf("due: %v", keyIDs(keys))
	}
}

// Update keeps what identifies a payment, whatever fn does: its site, id, order, amount,
// currency, environment, creation and history; the notify token is set once.
func testUpdateKeepsIdentity(t *testing.T, s storage.Store) {
	c := mustClaim(t, s, claim("1", "ID", 1000, t0))
	tx := c.Payment.TransactionID
	if _, err := s.Update("1", tx, t0.Add(time.Second), func(p *storage.Payment) error {
		p.State, p.PaymentURL, p.NotifyToken = storage.StatePending, "https://pay.example/x", "secret"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(2 * time.Second)
	r, err := s.Update("1", tx, at, func(p *storage.Payment) error {
		p.SiteID, p.TransactionID, p.OrderID = "2", "OTHER", "evil"
		p.Amount, p.Currency, p.Environment = 1, "EUR", "live"
		p.CreatedAt, p.UpdatedAt = t0.Add(-time.Hour), t0.Add(99*time.Hour)
		p.NotifyToken = "stolen"
		p.History = []storage.Transition{{From: storage.StatePending, To: storage.StateAccepted, At: t0}}
		p.LastCheckResult, p.Checks = "WAITING", 3
		p.State = storage.StateRefused
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []storage.Payment{r.Payment, mustGet(t, s, "1", tx)} {
		if got.SiteID != "1" || got.TransactionID != tx || got.OrderID != "ID" || got.Amount != 1000 || got.Currency != "XOF" ||
			got.Environment != "sandbox" || !got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(at) || got.NotifyToken != "secret" {
			t.Errorf("identity changed: %+v", got)
		}
		if h := got.History; len(h) != 2 || h[0].To != storage.StatePending || h[1].From != storage.StatePending || h[1].To != storage.StateRefused {
			t.Errorf("history %+v", h)
		}
		// what is not identity is fn's to change
		if got.State != storage.StateRefused || got.LastCheckResult != "WAITING" || got.Checks != 3 {
			t.Errorf("fn's changes lost: %+v", got)
		}
	}
	if r.Delivery == nil || r.Delivery.SiteID != "1" || r.Delivery.TransactionID != tx || r.Delivery.OrderID != "ID" ||
		r.Delivery.Amount != "1000" || r.Delivery.Currency != "XOF" || r.Delivery.Environment != "sandbox" {
		t.Errorf("delivery %+v", r.Delivery)
	}
	if _, err := s.Get("2", "OTHER"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a payment was written under fn's ids: %v", err)
	}
	if ps := listPayments(t, s, storage.PaymentFilter{SiteID: "1", OrderID: "evil"}); len(ps) != 0 {
		t.Errorf("order index moved: %d", len(ps))
	}
}

// fn returning an error aborts the update: nothing is written, the error is returned.
func testUpdateFnErrorWritesNothing(t *testing.T, s storage.Store) {
	p := started(t, s, "1", "O", 100, t0)
	boom := errors.New("boom")
	_, err := s.Update("1", p.TransactionID, t0.Add(time.Hour), func(p *storage.Payment) error {
		p.State, p.NextCheck, p.LastCheckResult = storage.StateAccepted, t0.Add(time.Hour), "changed"
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("fn's error: %v", err)
	}
	got := mustGet(t, s, "1", p.TransactionID)
	if got.State != storage.StatePending || got.LastCheckResult != "" || !got.NextCheck.Equal(p.NextCheck) ||
		!got.UpdatedAt.Equal(p.UpdatedAt) || len(got.History) != len(p.History) {
		t.Fatalf("written: %+v", got)
	}
	if ds := deliveriesOf(t, s, "1", p.TransactionID); len(ds) != 0 {
		t.Fatalf("%d deliveries", len(ds))
	}
	// the order is not paid
	if c := mustClaim(t, s, claim("1", "O", 100, t0.Add(time.Hour))); c.Kind == storage.ClaimPaid {
		t.Fatal("order paid by an aborted update")
	}
	if keys, _ := s.DueChecks(t0.Add(2*time.Minute), 0); len(keys) != 1 || keys[0].ID != p.TransactionID {
		t.Fatalf("re-check queue changed: %v", keyIDs(keys))
	}
}

// A change to ACCEPTED for an order another payment has already paid is stored as DUPLICATE,
// with a DUPLICATE delivery, from every state that may be accepted; the order stays paid by
// the first.
func testDuplicateForAnOrderAlreadyPaid(t *testing.T, s storage.Store) {
	// payments started before either was paid, the way a race or a change of amount gives
	a := started(t, s, "1", "O2", 1000, t0)
	b := started(t, s, "1", "O2", 2000, t0.Add(time.Minute)) // other amount: a new payment
	c := started(t, s, "1", "O2", 3000, t0.Add(2*time.Minute))
	d := started(t, s, "1", "O2", 4000, t0.Add(3*time.Minute))
	u := mustClaim(t, s, claim("1", "O2", 5000, t0.Add(4*time.Minute))).Payment
	if a.TransactionID == b.TransactionID || u.TransactionID == d.TransactionID {
		t.Fatal("same tx")
	}
	mustSetState(t, s, c, storage.StateRefused, t0.Add(5*time.Minute))
	mustSetState(t, s, d, storage.StateExpired, t0.Add(5*time.Minute))
	mustSetState(t, s, u, storage.StateUnknown, t0.Add(5*time.Minute))

	if r := mustSetState(t, s, a, storage.StateAccepted, t0.Add(6*time.Minute)); r.Payment.State != storage.StateAccepted ||
		r.Delivery == nil || r.Delivery.Status != storage.StateAccepted {
		t.Fatalf("first: %+v", r)
	}
	for _, p := range []storage.Payment{b, c, d, u} {
		from := mustGet(t, s, "1", p.TransactionID).State
		r := mustSetState(t, s, p, storage.StateAccepted, t0.Add(7*time.Minute))
		if !r.Changed || r.From != from || r.Payment.State != storage.StateDuplicate || r.Delivery == nil || r.Delivery.Status != storage.StateDuplicate {
			t.Errorf("%s accepted after the order was paid: %+v", from, r)
			continue
		}
		got := mustGet(t, s, "1", p.TransactionID)
		if h := got.History; got.State != storage.StateDuplicate || h[len(h)-1].To != storage.StateDuplicate || h[len(h)-1].EventID != r.Delivery.ID {
			t.Errorf("%s: stored %s, history %+v", from, got.State, h)
		}
	}
	if r := mustClaim(t, s, claim("1", "O2", 1000, t0.Add(time.Hour))); r.Kind != storage.ClaimPaid || r.Payment.TransactionID != a.TransactionID {
		t.Fatalf("claim of the paid order: %v %s", r.Kind, r.Payment.TransactionID)
	}
	if ps := listPayments(t, s, storage.PaymentFilter{SiteID: "1", OrderID: "O2", State: storage.StateAccepted}); len(ps) != 1 || ps[0].TransactionID != a.TransactionID {
		t.Fatalf("accepted payments of the order: %v", txids(ps))
	}
	// the same order on another site is not paid
	e := started(t, s, "2", "O2", 1000, t0)
	if r := mustSetState(t, s, e, storage.StateAccepted, t0.Add(time.Hour)); r.Payment.State != storage.StateAccepted {
		t.Fatalf("other site: %s", r.Payment.State)
	}
}

// A final payment (ACCEPTED, MISMATCH, DUPLICATE) never changes: Update returns it as stored
// without calling fn, writes nothing and causes no delivery.
func testFinalStatesNeverChange(t *testing.T, s storage.Store) {
	paid := started(t, s, "1", "PAID", 100, t0)
	dup := started(t, s, "1", "PAID", 200, t0) // started before the order was paid
	paid = mustSetState(t, s, paid, storage.StateAccepted, t0).Payment
	dup = mustSetState(t, s, dup, storage.StateAccepted, t0).Payment // a duplicate
	for _, tc := range []struct {
		p    storage.Payment
		want storage.State
	}{
		{paid, storage.StateAccepted},
		{reach(t, s, "1", "MISMATCH", storage.StateMismatch, t0), storage.StateMismatch},
		{dup, storage.StateDuplicate},
	} {
		before := mustGet(t, s, "1", tc.p.TransactionID)
		if before.State != tc.want {
			t.Fatalf("%s: reached %s", tc.want, before.State)
		}
		snapshot, _ := json.Marshal(before)
		nd := len(deliveriesOf(t, s, "1", tc.p.TransactionID))
		for i, to := range storage.States {
			called := false
			r, err := s.Update("1", tc.p.TransactionID, t0.Add(time.Duration(i+1)*time.Hour), func(p *storage.Payment) error {
				called = true
				p.State, p.NextCheck, p.PaymentURL, p.Confirmed = to, t0.Add(time.Hour), "https://evil.example/", nil
				return nil
			})
			if err != nil || called || r.Changed || r.Delivery != nil || r.From != tc.want || r.Payment.State != tc.want {
				t.Errorf("%s → %s: %+v %v called=%v", tc.want, to, r, err, called)
			}
			if got, _ := json.Marshal(r.Payment); string(got) != string(snapshot) {
				t.Errorf("%s → %s: returned %s, stored %s", tc.want, to, got, snapshot)
			}
		}
		after := mustGet(t, s, "1", tc.p.TransactionID)
		if got, _ := json.Marshal(after); string(got) != string(snapshot) {
			t.Errorf("%s changed: %s, was %s", tc.want, got, snapshot)
		}
		if n := len(deliveriesOf(t, s, "1", tc.p.TransactionID)); n != nd {
			t.Errorf("%s: %d deliveries, was %d", tc.want, n, nd)
		}
	}
	if keys, _ := s.DueChecks(t0.Add(1000*time.Hour), 0); len(keys) != 0 {
		t.Errorf("final payments re-checked: %v", keyIDs(keys))
	}
}

// What a caller does with a payment it was given changes nothing in the store: a final payment
// (which a store may serve from memory) as well as an open one, from Get, Update, Claim and
// ListPayments; and callers changing their copies at once do not race.
func testGetReturnsACopy(t *testing.T, s storage.Store) {
	fin := started(t, s, "1", "FINAL", 100, t0)
	mustSetState(t, s, fin, storage.StateRefused, t0)
	mustSetState(t, s, fin, storage.StateAccepted, t0.Add(time.Minute))
	open := started(t, s, "1", "OPEN", 100, t0)
	mustSetState(t, s, open, storage.StateRefused, t0)

	scribble := func(p *storage.Payment) {
		if len(p.History) > 0 {
			p.History[0].Reason, p.History[0].To = "changed by a caller", storage.StateDuplicate
			p.History = append(p.History[:1], storage.Transition{To: storage.StateMismatch})
		}
		if p.Confirmed != nil {
			p.Confirmed.Amount, p.Confirmed.Status = "1", "EVIL"
		}
		p.State, p.PaymentURL, p.NotifyToken = storage.StateMismatch, "https://evil.example/", "stolen"
	}
	for _, p := range []storage.Payment{fin, open} {
		first := mustGet(t, s, "1", p.TransactionID)
		want, _ := json.Marshal(first)
		check := func(how string) {
			t.Helper()
			if got, _ := json.Marshal(mustGet(t, s, "1", p.TransactionID)); string(got) != string(want) {
				t.Errorf("%s: after a caller changed what %s gave: %s, was %s", p.OrderID, how, got, want)
			}
		}
		scribble(&first)
		check("Get")
		for range 3 { // again, once the store had a chance to keep it in memory
			g := mustGet(t, s, "1", p.TransactionID)
			scribble(&g)
			check("a second Get")
		}
		for _, l := range listPayments(t, s, storage.PaymentFilter{SiteID: "1", OrderID: p.OrderID}) {
			scribble(&l)
		}
		check("ListPayments")
		r, err := s.Update("1", p.TransactionID, t0.Add(time.Hour), func(*storage.Payment) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		want, _ = json.Marshal(mustGet(t, s, "1", p.TransactionID)) // the no-op stamped UpdatedAt
		scribble(&r.Payment)
		check("Update")
	}
	c := mustClaim(t, s, claim("1", "FINAL", 100, t0.Add(time.Hour)))
	want, _ := json.Marshal(mustGet(t, s, "1", fin.TransactionID))
	scribble(&c.Payment)
	if got, _ := json.Marshal(mustGet(t, s, "1", fin.TransactionID)); string(got) != string(want) {
		t.Errorf("after a caller changed what Claim gave: %s, was %s", got, want)
	}

	// callers at once, each changing its copy (the race detector sees any sharing)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				p, err := s.Get("1", fin.TransactionID)
				if err != nil {
					t.Error(err)
					return
				}
				scribble(&p)
			}
		})
	}
	wg.Wait()
	if got, _ := json.Marshal(mustGet(t, s, "1", fin.TransactionID)); string(got) != string(want) {
		t.Errorf("after concurrent callers: %s, was %s", got, want)
	}
}

func testUnknownPayment(t *testing.T, s storage.Store) {
	if _, err := s.Update("1", "NOPE", t0, func(*storage.Payment) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Update: %v", err)
	}
	for _, k := range []storage.Key{{SiteID: "1", ID: "NOPE"}, {SiteID: "1", ID: "../x"}, {SiteID: "", ID: "NOPE"}, {SiteID: "1", ID: ""}} {
		if _, err := s.Get(k.SiteID, k.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(%q, %q): %v", k.SiteID, k.ID, err)
		}
	}
	// a payment is found on its own site only
	p := started(t, s, "1", "O", 100, t0)
	if _, err := s.Get("2", p.TransactionID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get on another site: %v", err)
	}
	if _, err := s.Update("2", p.TransactionID, t0, func(*storage.Payment) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Update on another site: %v", err)
	}
}

func testConcurrentUpdatesOneChange(t *testing.T, s storage.Store) {
	p := started(t, s, "1", "O1", 1000, t0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	changes := 0
	for i := range 30 {
		wg.Go(func() {
			st := storage.StateAccepted
			if i%2 == 1 {
				st = storage.StateRefused
			}
			r, err := setState(s, p, st, t0.Add(time.Minute))
			if err != nil && !errors.Is(err, storage.ErrBadTransition) {
				t.Error(err)
			}
			if r.Changed {
				mu.Lock()
				changes++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	got := mustGet(t, s, "1", p.TransactionID)
	ds := listDeliveries(t, s, storage.DeliveryFilter{SiteID: "1"})
	// either accepted at once, or refused then accepted (late success): never more
	if got.State != storage.StateAccepted || changes != len(ds) || changes > 2 || len(got.History) != 1+changes {
		t.Fatalf("state %s, %d changes, %d deliveries, history %d", got.State, changes, len(ds), len(got.History))
	}
}

// The re-check queue: due payments soonest first, up to the limit, as rescheduled; final
// payments leave it.
func testRecheckQueue(t *testing.T, s storage.Store) {
	a := started(t, s, "1", "A", 5, t0) // next check t0+1m
	b := started(t, s, "2", "B", 5, t0.Add(time.Second))
	c := started(t, s, "1", "C", 5, t0.Add(2*time.Second))
	if keys, err := s.DueChecks(t0.Add(30*time.Second), 0); err != nil || len(keys) != 0 {
		t.Fatalf("due too early: %v %v", keyIDs(keys), err)
	}
	want := []storage.Key{{SiteID: "1", ID: a.TransactionID}, {SiteID: "2", ID: b.TransactionID}, {SiteID: "1", ID: c.TransactionID}}
	keys, err := s.DueChecks(t0.Add(2*time.Minute), 0)
	if err != nil || fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("due: %v %v, want %v", keys, err, want)
	}
	if keys, _ := s.DueChecks(t0.Add(2*time.Minute), 2); fmt.Sprint(keys) != fmt.Sprint(want[:2]) {
		t.Fatalf("due, limit 2: %v", keys)
	}
	// only what is due at now
	if keys, _ := s.DueChecks(t0.Add(time.Minute+1500*time.Millisecond), 0); fmt.Sprint(keys) != fmt.Sprint(want[:2]) {
		t.Fatalf("due at t0+61.5s: %v", keys)
	}
	if _, err := s.Update("1", a.TransactionID, t0, func(p *storage.Payment) error {
		p.NextCheck = t0.Add(time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.DueChecks(t0.Add(2*time.Minute), 1); len(keys) != 1 || keys[0] != want[1] {
		t.Fatalf("after reschedule: %v", keys)
	}
	if keys, _ := s.DueChecks(t0.Add(2*time.Hour), 0); fmt.Sprint(keys) != fmt.Sprint([]storage.Key{want[1], want[2], want[0]}) {
		t.Fatalf("after reschedule, all: %v", keys)
	}
	// unscheduled: out of the queue
	if _, err := s.Update("1", c.TransactionID, t0, func(p *storage.Payment) error {
		p.NextCheck = time.Time{}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	mustSetState(t, s, b, storage.StateAccepted, t0)
	if keys, _ := s.DueChecks(t0.Add(2*time.Hour), 0); len(keys) != 1 || keys[0] != want[0] {
		t.Fatalf("final or unscheduled payment still queued: %v", keys)
	}
	// a refused payment may stay scheduled (for a late success)
	if _, err := s.Update("1", a.TransactionID, t0, func(p *storage.Payment) error {
		p.State, p.NextCheck = storage.StateRefused, t0.Add(24*time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.DueChecks(t0.Add(2*time.Hour), 0); len(keys) != 0 {
		t.Fatalf("due: %v", keys)
	}
	if keys, _ := s.DueChecks(t0.Add(25*time.Hour), 0); len(keys) != 1 || keys[0] != want[0] {
		t.Fatalf("refused payment's check: %v", keys)
	}
}
