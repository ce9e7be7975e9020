package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// testConcurrency runs workers that claim, start, change, re-schedule, deliver and replay at
// once, on a few shared orders, then checks what the store holds:
//   - every payment's state is legal, reached along arrows of the state machine
//     (docs/states.md), and never left final;
//   - every state change is in the history once, and each change into a delivering state caused
//     exactly one delivery, returned by exactly one Update, stored under the event id of its
//     history entry, a snapshot of that change;
//   - an order is ACCEPTED at most once, and a claim of it then answers ClaimPaid with that one;
//   - no two attempts of one delivery were ever in flight at once, and an attempt in flight
//     always finishes;
//   - the queues and listings agree with the records.
//
// Every call uses one fixed clock, so nothing depends on timing: a lease never runs out.
func testConcurrency(t *testing.T, s storage.Store) {
	const workers, rounds = 8, 50
	now := t0
	sites := []string{"1", "2"}
	targets := []storage.State{storage.StatePending, storage.StatePending, storage.StateAccepted, storage.StateAccepted,
		storage.StateRefused, storage.StateExpired, storage.StateMismatch, storage.StateDuplicate,
		storage.StateUnknown, storage.StateFailed, storage.StateInit}

	var (
		mu       sync.Mutex
		known    []storage.Key            // payments seen in a claim's answer
		isKnown  = map[storage.Key]bool{} //
		changes  = map[storage.Key]int{}  // state changes Update reported, per payment
		caused   = map[string]int{}       // how many Updates returned each delivery
		inFlight = map[storage.Key]bool{} // deliveries with an attempt begun and not finished
		paidBy   = map[storage.Key]string{}
	)
	record := func(k storage.Key, r storage.UpdateResult, err error) {
		if err != nil {
			if !errors.Is(err, storage.ErrBadTransition) {
				t.Errorf("update %v: %v", k, err)
			}
			return
		}
		if r.Payment.TransactionID != k.ID || r.Payment.SiteID != k.SiteID {
			t.Errorf("update %v returned %s/%s", k, r.Payment.SiteID, r.Payment.TransactionID)
		}
		if r.Changed && r.From == r.Payment.State || !r.Changed && r.From != r.Payment.State {
			t.Errorf("update %v: changed %v, %s → %s", k, r.Changed, r.From, r.Payment.State)
		}
		if r.Changed && delivering[r.Payment.State] != (r.Delivery != nil) || !r.Changed && r.Delivery != nil {
			t.Errorf("update %v: changed %v to %s, delivery %+v", k, r.Changed, r.Payment.State, r.Delivery)
		}
		if r.Delivery != nil && (r.Delivery.Status != r.Payment.State || r.Delivery.TransactionID != k.ID ||
			r.Delivery.SiteID != k.SiteID || r.Delivery.State != storage.DeliveryPending) {
			t.Errorf("update %v: delivery %+v of a change to %s", k, r.Delivery, r.Payment.State)
		}
		mu.Lock()
		defer mu.Unlock()
		if r.Changed {
			changes[k]++
		}
		if r.Delivery != nil {
			caused[r.Delivery.ID]++
		}
	}
	attempt := func(rng *rand.Rand, d storage.Delivery) {
		b, err := s.BeginAttempt(d.SiteID, d.ID, now, time.Hour)
		if errors.Is(err, storage.ErrStaleAttempt) {
			return // another worker has it, or it is done
		} else if err != nil {
			t.Errorf("begin %s: %v", d.ID, err)
			return
		}
		k := storage.Key{SiteID: d.SiteID, ID: d.ID}
		mu.Lock()
		if inFlight[k] {
			t.Errorf("two attempts of %s in flight", d.ID)
		}
		inFlight[k] = true
		mu.Unlock()
		var r storage.AttemptResult
		want := storage.DeliveryPending
		switch rng.IntN(4) {
		case 0, 1:
			r, want = storage.AttemptResult{At: now, Delivered: true, HTTPStatus: 204}, storage.DeliveryDelivered
		case 2:
			r = storage.AttemptResult{At: now, HTTPStatus: 500, Error: "HTTP 500", NextAttempt: now} // due again at once
		default:
			r, want = storage.AttemptResult{At: now, GiveUp: true, Error: "gone"}, storage.DeliveryFailed
		}
		// no one may begin before this attempt finishes: clear the mark first
		mu.Lock()
		inFlight[k] = false
		mu.Unlock()
		f, err := s.FinishAttempt(d.SiteID, d.ID, b.Attempts, r)
		if err != nil || f.State != want || f.Attempts != b.Attempts {
			t.Errorf("finish of the attempt in flight of %s: %+v, %v (want %s)", d.ID, f, err, want)
		}
	}

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for i := range rounds {
				site := sites[rng.IntN(len(sites))]
				order := fmt.Sprintf("C%d", rng.IntN(6))
				c, err := s.Claim(claim(site, order, int64(100*(1+rng.IntN(2))), now))
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				k := storage.Key{SiteID: site, ID: c.Payment.TransactionID}
				mu.Lock()
				if !isKnown[k] {
					isKnown[k] = true
					known = append(known, k)
				}
				if c.Kind == storage.ClaimPaid {
					o := storage.Key{SiteID: site, ID: order}
					if prev, ok := paidBy[o]; ok && prev != k.ID {
						t.Errorf("order %v paid by %s, then by %s", o, prev, k.ID)
					}
					paidBy[o] = k.ID
				}
				mu.Unlock()

				if c.Kind == storage.ClaimNew { // start it
					st := []storage.State{storage.StatePending, storage.StatePending, storage.StatePending, storage.StateUnknown, storage.StateFailed}[rng.IntN(5)]
					next := now.Add(time.Duration(1+rng.IntN(600)) * time.Second)
					r, err := s.Update(site, k.ID, now, func(p *storage.Payment) error {
						if p.State == storage.StateInit {
							p.State = st
						}
						p.PaymentURL, p.NextCheck = "https://pay.example/"+p.TransactionID, next
						return nil
					})
					record(k, r, err)
				}

				// a /check of some payment, maybe another worker's
				mu.Lock()
				pk := known[rng.IntN(len(known))]
				mu.Unlock()
				to := targets[rng.IntN(len(targets))]
				var next time.Time
				if rng.IntN(2) == 0 {
					next = now.Add(time.Duration(1+rng.IntN(600)) * time.Second)
				}
				r, err := s.Update(pk.SiteID, pk.ID, now, func(p *storage.Payment) error {
					p.State, p.NextCheck, p.Checks = to, next, p.Checks+1
					p.Confirmed = &storage.Confirmation{Amount: fmt.Sprint(p.Amount), Currency: p.Currency, Status: string(to)}
					return nil
				})
				record(pk, r, err)

				// what the engine and the admin read meanwhile
				if _, err := s.Get(pk.SiteID, pk.ID); err != nil {
					t.Errorf("get %v: %v", pk, err)
				}
				if _, err := s.DueChecks(now.Add(10*time.Minute), 8); err != nil {
					t.Error(err)
				}
				if _, err := s.ListPayments(storage.PaymentFilter{SiteID: site, OrderID: order}); err != nil {
					t.Error(err)
				}

				// a delivery worker
				due, err := s.DueDeliveries(now, 4)
				if err != nil {
					t.Error(err)
				} else if len(due) > 0 {
					attempt(rng, due[rng.IntN(len(due))])
				}
				// the admin replays something done
				if i%5 == 0 {
					st := []storage.DeliveryState{storage.DeliveryFailed, storage.DeliveryDelivered}[rng.IntN(2)]
					ds, err := s.ListDeliveries(storage.DeliveryFilter{State: st, Limit: 3})
					if err != nil {
						t.Error(err)
					} else if len(ds) > 0 {
						d := ds[rng.IntN(len(ds))]
						if r, err := s.Replay(d.SiteID, d.ID, now); err != nil || r.State != storage.DeliveryPending {
							t.Errorf("replay %s: %+v %v", d.ID, r, err)
						}
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	checkConsistent(t, s, now, known, changes, caused, paidBy)
	for k, held := range inFlight {
		if held {
			t.Errorf("attempt of %v never finished", k)
		}
	}
}

// checkConsistent checks what the store holds after testConcurrency's workers.
func checkConsistent(t *testing.T, s storage.Store, now time.Time, known []storage.Key,
	changes map[storage.Key]int, caused map[string]int, paidBy map[storage.Key]string) {
	t.Helper()
	ps := listPayments(t, s, storage.PaymentFilter{Limit: 10000})
	if len(ps) != len(known) {
		t.Errorf("%d payments stored, %d claimed", len(ps), len(known))
	}
	byKey := map[storage.Key]storage.Payment{}
	for _, p := range ps {
		byKey[storage.Key{SiteID: p.SiteID, ID: p.TransactionID}] = p
	}
	for _, k := range known {
		if _, ok := byKey[k]; !ok {
			t.Errorf("payment %v not listed", k)
		}
	}

	events := map[string]bool{}
	accepted := map[storage.Key][]string{} // order → its ACCEPTED payments
	for k, p := range byKey {
		if !p.State.Valid() {
			t.Errorf("%v: state %q", k, p.State)
			continue
		}
		if got, err := s.Get(k.SiteID, k.ID); err != nil || got.State != p.State || len(got.History) != len(p.History) {
			t.Errorf("%v: listed %s, got %s (%v)", k, p.State, got.State, err)
		}
		// the history: arrows of the state machine, from INIT to the state, one per change reported
		at := storage.StateInit
		for i, tr := range p.History {
			if tr.From != at || !allowed[[2]storage.State{tr.From, tr.To}] {
				t.Errorf("%v: history[%d] %s → %s after %s", k, i, tr.From, tr.To, at)
			}
			at = tr.To
			if delivering[tr.To] != (tr.EventID != "") {
				t.Errorf("%v: change to %s with event %q", k, tr.To, tr.EventID)
			}
			if tr.EventID == "" {
				continue
			}
			if events[tr.EventID] {
				t.Errorf("%v: event %s twice", k, tr.EventID)
			}
			events[tr.EventID] = true
			if caused[tr.EventID] != 1 {
				t.Errorf("%v: event %s returned by %d updates", k, tr.EventID, caused[tr.EventID])
			}
			d, err := s.GetDelivery(k.SiteID, tr.EventID)
			if err != nil || d.TransactionID != k.ID || d.OrderID != p.OrderID || d.Status != tr.To || !d.CreatedAt.Equal(tr.At) {
				t.Errorf("%v: delivery %s of the change to %s: %+v %v", k, tr.EventID, tr.To, d, err)
			}
		}
		if at != p.State {
			t.Errorf("%v: state %s, history ends in %s", k, p.State, at)
		}
		if len(p.History) != changes[k] {
			t.Errorf("%v: %d changes in the history, %d reported", k, len(p.History), changes[k])
		}
		if (final[p.State] || p.State == storage.StateFailed) && !p.NextCheck.IsZero() {
			t.Errorf("%v: %s payment scheduled at %v", k, p.State, p.NextCheck)
		}
		if p.State == storage.StateAccepted {
			o := storage.Key{SiteID: k.SiteID, ID: p.OrderID}
			accepted[o] = append(accepted[o], k.ID)
		}
	}
	if len(events) != len(caused) {
		t.Errorf("%d events in histories, %d deliveries returned by updates", len(events), len(caused))
	}
	for o, txs := range accepted {
		if len(txs) > 1 {
			t.Errorf("order %v accepted %d times: %v", o, len(txs), txs)
			continue
		}
		c := mustClaim(t, s, claim(o.SiteID, o.ID, 100, now))
		if c.Kind != storage.ClaimPaid || c.Payment.TransactionID != txs[0] {
			t.Errorf("claim of order %v, paid by %s: %v %s", o, txs[0], c.Kind, c.Payment.TransactionID)
		}
	}
	for o, tx := range paidBy {
		if a := accepted[o]; len(a) != 1 || a[0] != tx {
			t.Errorf("claims said order %v paid by %s; accepted: %v", o, tx, a)
		}
	}

	// the deliveries: those the updates returned, no more
	ds := listDeliveries(t, s, storage.DeliveryFilter{Limit: 10000})
	if len(ds) != len(caused) {
		t.Errorf("%d deliveries stored, %d returned by updates", len(ds), len(caused))
	}
	var pending []string
	for _, d := range ds {
		if caused[d.ID] != 1 {
			t.Errorf("delivery %s stored, returned by %d updates", d.ID, caused[d.ID])
		}
		switch d.State {
		case storage.DeliveryPending:
			pending = append(pending, d.ID)
		case storage.DeliveryDelivered:
			if d.DeliveredAt.IsZero() || d.Attempts == 0 {
				t.Errorf("delivered %+v", d)
			}
		case storage.DeliveryFailed:
			if d.Attempts == 0 {
				t.Errorf("failed without an attempt: %+v", d)
			}
		default:
			t.Errorf("delivery %s: state %q", d.ID, d.State)
		}
	}

	// the queues and the listings agree with the records
	var scheduled []string
	for k, p := range byKey {
		if !p.NextCheck.IsZero() {
			scheduled = append(scheduled, k.SiteID+"/"+k.ID)
		}
	}
	keys, err := s.DueChecks(now.Add(24*time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(keys); i++ {
		if byKey[keys[i]].NextCheck.Before(byKey[keys[i-1]].NextCheck) {
			t.Errorf("DueChecks: %v before %v", keys[i-1], keys[i])
		}
	}
	if got := sorted(keyIDs(keys)...); !slices.Equal(got, sorted(scheduled...)) {
		t.Errorf("DueChecks lists %d payments, %d are scheduled", len(got), len(scheduled))
	}
	if due, err := s.DueDeliveries(now, 0); err != nil || !slices.Equal(ids(due), sorted(pending...)) {
		t.Errorf("DueDeliveries lists %d, %d are pending (%v)", len(due), len(pending), err)
	}
	for _, st := range storage.States {
		var want []string
		for _, p := range byKey {
			if p.State == st {
				want = append(want, p.TransactionID)
			}
		}
		if got := txids(listPayments(t, s, storage.PaymentFilter{State: st, Limit: 10000})); !slices.Equal(got, sorted(want...)) {
			t.Errorf("ListPayments(%s): %d, %d stored", st, len(got), len(want))
		}
	}
	for _, st := range []storage.DeliveryState{storage.DeliveryPending, storage.DeliveryDelivered, storage.DeliveryFailed} {
		var want []string
		for _, d := range ds {
			if d.State == st {
				want = append(want, d.ID)
			}
		}
		if got := ids(listDeliveries(t, s, storage.DeliveryFilter{State: st, Limit: 10000})); !slices.Equal(got, sorted(want...)) {
			t.Errorf("ListDeliveries(%s): %d, %d stored", st, len(got), len(want))
		}
	}
	orders := map[storage.Key][]string{}
	for _, p := range byKey {
		o := storage.Key{SiteID: p.SiteID, ID: p.OrderID}
		orders[o] = append(orders[o], p.TransactionID)
	}
	for o, want := range orders {
		if got := txids(listPayments(t, s, storage.PaymentFilter{SiteID: o.SiteID, OrderID: o.ID, Limit: 10000})); !slices.Equal(got, sorted(want...)) {
			t.Errorf("order %v: %v listed, %v stored", o, got, sorted(want...))
		}
	}
}
