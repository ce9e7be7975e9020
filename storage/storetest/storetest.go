// Package storetest is the conformance suite of storage.Store: every behaviour the engine
// needs from a payment store, run against any implementation through the interface alone.
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storage.Store {
//			s := openMyStore(t) // fresh and empty
//			t.Cleanup(func() { _ = s.Close() })
//			return s
//		})
//	}
//
// Every subtest calls open exactly once, and the subtests run one after the other, so open may
// hand out one database at a time (emptied each time). The suite never calls Close. Times are a
// fixed clock (t0 plus whole milliseconds at the finest, so a store keeping microseconds loses
// nothing): no assertion depends on how fast the machine is.
package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Run runs every behaviour the engine needs from a store against stores made by open; each
// subtest opens a fresh, empty store (open registers its own cleanup with t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		// transaction ids
		{"PrefixAndOwnsTransaction", testPrefixAndOwnsTransaction},
		// claims
		{"ClaimRules", testClaimRules},
		{"ClaimSchedulesTheStaleInitCheck", testClaimSchedulesTheStaleInitCheck},
		{"ConcurrentClaimsStartOnce", testConcurrentClaimsStartOnce},
		// updates and the state machine
		{"TransitionsThroughUpdate", testTransitionsThroughUpdate},
		{"UpdateStateMachineAndDeliveries", testUpdateStateMachineAndDeliveries},
		{"UpdateKeepsIdentity", testUpdateKeepsIdentity},
		{"UpdateFnErrorWritesNothing", testUpdateFnErrorWritesNothing},
		{"DuplicateForAnOrderAlreadyPaid", testDuplicateForAnOrderAlreadyPaid},
		{"FinalStatesNeverChange", testFinalStatesNeverChange},
		{"GetReturnsACopy", testGetReturnsACopy},
		{"UnknownPayment", testUnknownPayment},
		{"ConcurrentUpdatesOneChange", testConcurrentUpdatesOneChange},
		// the re-check queue
		{"RecheckQueue", testRecheckQueue},
		// deliveries
		{"DeliveryAttempts", testDeliveryAttempts},
		{"ConcurrentBeginAttemptOnce", testConcurrentBeginAttemptOnce},
		{"LeaseEnd", testLeaseEnd},
		{"ReplayDuringAttempt", testReplayDuringAttempt},
		{"DueDeliveriesOrderAndLimit", testDueDeliveriesOrderAndLimit},
		{"UnknownDelivery", testUnknownDelivery},
		// purge
		{"Purge", testPurge},
		{"PurgeKeepsAScheduledRecheck", testPurgeKeepsAScheduledRecheck},
		{"PurgeRacingUpdates", testPurgeRacingUpdates},
		// admin listings
		{"ListPayments", testListPayments},
		{"ListPaymentsPages", testListPaymentsPages},
		{"ListDeliveries", testListDeliveries},
		{"ListLimits", testListLimits},
		// the figures operators alert on
		{"Stats", testStats},
		// everything at once
		{"Concurrency", testConcurrency},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// t0 is the suite's clock: every time is t0 plus a fixed offset.
var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// The state machine of docs/states.md, written out here rather than taken from
// storage.CanTransition, so that a store is checked against the documented one.
var (
	allowed = func() map[[2]storage.State]bool {
		m := map[[2]storage.State]bool{}
		for _, e := range [][2]storage.State{
			{storage.StateInit, storage.StatePending}, {storage.StateInit, storage.StateFailed}, {storage.StateInit, storage.StateUnknown},
			{storage.StatePending, storage.StateAccepted}, {storage.StatePending, storage.StateMismatch}, {storage.StatePending, storage.StateDuplicate},
			{storage.StatePending, storage.StateRefused}, {storage.StatePending, storage.StateExpired},
			{storage.StateRefused, storage.StateAccepted}, {storage.StateRefused, storage.StateMismatch}, {storage.StateRefused, storage.StateDuplicate},
			{storage.StateExpired, storage.StateAccepted}, {storage.StateExpired, storage.StateMismatch}, {storage.StateExpired, storage.StateDuplicate},
			{storage.StateUnknown, storage.StatePending}, {storage.StateUnknown, storage.StateAccepted}, {storage.StateUnknown, storage.StateMismatch},
			{storage.StateUnknown, storage.StateDuplicate}, {storage.StateUnknown, storage.StateRefused}, {storage.StateUnknown, storage.StateExpired},
			{storage.StateUnknown, storage.StateFailed},
		} {
			m[e] = true
		}
		return m
	}()
	// final states never change
	final = map[storage.State]bool{storage.StateAccepted: true, storage.StateMismatch: true, storage.StateDuplicate: true}
	// entering one of these causes one delivery
	delivering = map[storage.State]bool{storage.StateAccepted: true, storage.StateRefused: true,
		storage.StateMismatch: true, storage.StateDuplicate: true, storage.StateExpired: true}
)

func claim(site, order string, amount int64, now time.Time) storage.Claim {
	return storage.Claim{SiteID: site, OrderID: order, Amount: amount, Currency: "XOF", Environment: "sandbox",
		Now: now, ReuseWindow: 15 * time.Minute, InitGrace: time.Minute}
}

func mustClaim(t *testing.T, s storage.Store, c storage.Claim) storage.ClaimResult {
	t.Helper()
	r, err := s.Claim(c)
	if err != nil {
		t.Fatalf("claim of %s/%s: %v", c.SiteID, c.OrderID, err)
	}
	return r
}

// started claims an order and moves its payment to PENDING, as a successful start does.
func started(t *testing.T, s storage.Store, site, order string, amount int64, now time.Time) storage.Payment {
	t.Helper()
	c, err := s.Claim(claim(site, order, amount, now))
	if err != nil || c.Kind != storage.ClaimNew {
		t.Fatalf("claim of %s/%s: kind %v, %v", site, order, c.Kind, err)
	}
	r, err := s.Update(site, c.Payment.TransactionID, now, func(p *storage.Payment) error {
		p.State, p.PaymentURL, p.PaymentToken = storage.StatePending, "https://pay.example/"+p.TransactionID, "tok"
		p.NextCheck = now.Add(time.Minute)
		return nil
	})
	if err != nil || r.Payment.State != storage.StatePending {
		t.Fatalf("start of %s/%s: %s, %v", site, order, r.Payment.State, err)
	}
	return r.Payment
}

// setState changes a payment's state as a /check does, with a confirmation of what was asked.
func setState(s storage.Store, p storage.Payment, st storage.State, now time.Time) (storage.UpdateResult, error) {
	return s.Update(p.SiteID, p.TransactionID, now, func(p *storage.Payment) error {
		p.State = st
		p.Confirmed = &storage.Confirmation{Amount: fmt.Sprint(p.Amount), Currency: p.Currency, Status: string(st), PaymentMethod: "OM"}
		return nil
	})
}

func mustSetState(t *testing.T, s storage.Store, p storage.Payment, st storage.State, now time.Time) storage.UpdateResult {
	t.Helper()
	r, err := setState(s, p, st, now)
	if err != nil {
		t.Fatalf("%s %s → %s: %v", p.OrderID, p.State, st, err)
	}
	return r
}

// reach claims an order and drives its payment to st along the shortest path of the state machine.
func reach(t *testing.T, s storage.Store, site, order string, st storage.State, now time.Time) storage.Payment {
	t.Helper()
	c := mustClaim(t, s, claim(site, order, 100, now))
	if c.Kind != storage.ClaimNew {
		t.Fatalf("claim of %s/%s: kind %v", site, order, c.Kind)
	}
	p := c.Payment
	var path []storage.State
	switch st {
	case storage.StateInit:
	case storage.StatePending, storage.StateUnknown, storage.StateFailed:
		path = []storage.State{st}
	default:
		path = []storage.State{storage.StatePending, st}
	}
	for _, step := range path {
		r := mustSetState(t, s, p, step, now)
		if r.Payment.State != step {
			t.Fatalf("%s → %s: stored %s", p.State, step, r.Payment.State)
		}
		p = r.Payment
	}
	return p
}

func mustGet(t *testing.T, s storage.Store, site, txid string) storage.Payment {
	t.Helper()
	p, err := s.Get(site, txid)
	if err != nil {
		t.Fatalf("get %s/%s: %v", site, txid, err)
	}
	return p
}

// deliver makes one successful attempt of a due delivery.
func deliver(t *testing.T, s storage.Store, site, id string, now time.Time) storage.Delivery {
	t.Helper()
	d, err := s.BeginAttempt(site, id, now, time.Minute)
	if err != nil {
		t.Fatalf("begin %s: %v", id, err)
	}
	d, err = s.FinishAttempt(site, id, d.Attempts, storage.AttemptResult{At: now, Delivered: true, HTTPStatus: 204})
	if err != nil || d.State != storage.DeliveryDelivered {
		t.Fatalf("finish %s: %s %v", id, d.State, err)
	}
	return d
}

// giveUp makes one attempt of a due delivery that gives up.
func giveUp(t *testing.T, s storage.Store, site, id string, now time.Time) storage.Delivery {
	t.Helper()
	d, err := s.BeginAttempt(site, id, now, time.Minute)
	if err != nil {
		t.Fatalf("begin %s: %v", id, err)
	}
	d, err = s.FinishAttempt(site, id, d.Attempts, storage.AttemptResult{At: now, GiveUp: true, Error: "gone"})
	if err != nil || d.State != storage.DeliveryFailed {
		t.Fatalf("give up %s: %s %v", id, d.State, err)
	}
	return d
}

func listPayments(t *testing.T, s storage.Store, f storage.PaymentFilter) []storage.Payment {
	t.Helper()
	ps, err := s.ListPayments(f)
	if err != nil {
		t.Fatalf("ListPayments(%+v): %v", f, err)
	}
	return ps
}

func listDeliveries(t *testing.T, s storage.Store, f storage.DeliveryFilter) []storage.Delivery {
	t.Helper()
	ds, err := s.ListDeliveries(f)
	if err != nil {
		t.Fatalf("ListDeliveries(%+v): %v", f, err)
	}
	return ds
}

func deliveriesOf(t *testing.T, s storage.Store, site, txid string) []storage.Delivery {
	t.Helper()
	return listDeliveries(t, s, storage.DeliveryFilter{SiteID: site, TransactionID: txid})
}

// txids is the sorted transaction ids of payments.
func txids(ps []storage.Payment) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.TransactionID
	}
	slices.Sort(out)
	return out
}

// ids is the sorted ids of deliveries.
func ids(ds []storage.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func keyIDs(ks []storage.Key) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.SiteID + "/" + k.ID
	}
	return out
}
