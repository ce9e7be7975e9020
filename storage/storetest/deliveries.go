package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// accepted makes a payment of order ACCEPTED at now and returns its delivery's id.
func accepted(t *testing.T, s storage.Store, site, order string, now time.Time) string {
	t.Helper()
	p := started(t, s, site, order, 100, now)
	r := mustSetState(t, s, p, storage.StateAccepted, now)
	if r.Delivery == nil {
		t.Fatalf("%s accepted without a delivery", order)
	}
	return r.Delivery.ID
}

func testDeliveryAttempts(t *testing.T, s storage.Store) {
	id := accepted(t, s, "1", "O", t0)

	due, err := s.DueDeliveries(t0, 10)
	if err != nil || len(due) != 1 || due[0].ID != id {
		t.Fatalf("due %v %v", ids(due), err)
	}
	d, err := s.BeginAttempt("1", id, t0, 30*time.Second)
	if err != nil || d.ID != id || d.Attempts != 1 || d.RoundAttempts != 1 || d.State != storage.DeliveryPending {
		t.Fatalf("begin: %+v %v", d, err)
	}
	// leased: not due, and a second worker cannot begin the same attempt
	if due, _ := s.DueDeliveries(t0.Add(time.Second), 10); len(due) != 0 {
		t.Fatalf("leased delivery due: %v", ids(due))
	}
	if _, err := s.BeginAttempt("1", id, t0.Add(time.Second), 30*time.Second); !errors.Is(err, storage.ErrStaleAttempt) {
		t.Fatalf("double begin: %v", err)
	}
	// the lease ends (the worker died): due again
	if due, _ := s.DueDeliveries(t0.Add(31*time.Second), 10); len(due) != 1 || due[0].ID != id {
		t.Fatalf("lease end: %v", ids(due))
	}
	// ... yet the attempt may still finish, as long as no other began
	d, err = s.FinishAttempt("1", id, 1, storage.AttemptResult{At: t0, HTTPStatus: 500, Error: "HTTP 500", NextAttempt: t0.Add(5 * time.Second)})
	if err != nil || d.State != storage.DeliveryPending || d.LastHTTPStatus != 500 || d.LastError != "HTTP 500" || d.Attempts != 1 ||
		!d.NextAttempt.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("retry: %+v %v", d, err)
	}
	if got, err := s.GetDelivery("1", id); err != nil || got.State != storage.DeliveryPending || got.Attempts != 1 || got.LastHTTPStatus != 500 {
		t.Fatalf("stored retry: %+v %v", got, err)
	}
	// a stale finish is refused
	if _, err := s.FinishAttempt("1", id, 7, storage.AttemptResult{Delivered: true}); !errors.Is(err, storage.ErrStaleAttempt) {
		t.Fatalf("stale finish: %v", err)
	}
	if _, err := s.FinishAttempt("1", id, 1, storage.AttemptResult{Delivered: true}); !errors.Is(err, storage.ErrStaleAttempt) {
		t.Fatalf("second finish of one attempt: %v", err)
	}
	// not due before its next attempt
	if due, _ := s.DueDeliveries(t0.Add(4*time.Second), 10); len(due) != 0 {
		t.Fatalf("due before the next attempt: %v", ids(due))
	}
	if _, err := s.BeginAttempt("1", id, t0.Add(4*time.Second), 30*time.Second); !errors.Is(err, storage.ErrStaleAttempt) {
		t.Fatalf("begin before the next attempt: %v", err)
	}
	d, err = s.BeginAttempt("1", id, t0.Add(5*time.Second), 30*time.Second)
	if err != nil || d.Attempts != 2 || d.RoundAttempts != 2 {
		t.Fatalf("second begin: %+v %v", d, err)
	}
	d, err = s.FinishAttempt("1", id, d.Attempts, storage.AttemptResult{At: t0.Add(6 * time.Second), GiveUp: true, Error: "gone"})
	if err != nil || d.State != storage.DeliveryFailed || d.Attempts != 2 || d.LastError != "gone" {
		t.Fatalf("give up: %+v %v", d, err)
	}
	// given up: kept, not due, not leasable
	if due, _ := s.DueDeliveries(t0.Add(time.Hour), 10); len(due) != 0 {
		t.Fatalf("failed delivery due: %v", ids(due))
	}
	if _, err := s.BeginAttempt("1", id, t0.Add(time.Hour), time.Minute); !errors.Is(err, storage.ErrStaleAttempt) {
		t.Fatalf("begin of a failed delivery: %v", err)
	}
	if failed := listDeliveries(t, s, storage.DeliveryFilter{State: storage.DeliveryFailed}); len(failed) != 1 || failed[0].ID != id {
		t.Fatalf("failed list: %v", ids(failed))
	}
	// replay: a new round, due at once
	replayAt := t0.Add(2 * time.Hour)
	d, err = s.Replay("1", id, replayAt)
	if err != nil || d.State != storage.DeliveryPending || !d.Since.Equal(replayAt) || !d.NextAttempt.Equal(replayAt) ||
		d.RoundAttempts != 0 || d.Attempts != 2 {
		t.Fatalf("replay %+v %v", d, err)
	}
	if due, _ := s.DueDeliveries(replayAt, 10); len(due) != 1 || due[0].ID != id {
		t.Fatalf("replayed delivery not due: %v", ids(due))
	}
	d, err = s.BeginAttempt("1", id, replayAt, time.Minute)
	if err != nil || d.Attempts != 3 || d.RoundAttempts != 1 {
		t.Fatalf("begin after the replay: %+v %v", d, err)
	}
	d, err = s.FinishAttempt("1", id, d.Attempts, storage.AttemptResult{At: replayAt.Add(time.Second), Delivered: true, HTTPStatus: 204})
	if err != nil || d.State != storage.DeliveryDelivered || d.Attempts != 3 || d.RoundAttempts != 1 ||
		!d.DeliveredAt.Equal(replayAt.Add(time.Second)) || d.LastHTTPStatus != 204 || d.LastError != "" || !d.NextAttempt.IsZero() {
		t.Fatalf("delivered %+v %v", d, err)
	}
	if got, err := s.GetDelivery("1", id); err != nil || got.State != storage.DeliveryDelivered || got.Attempts != 3 {
		t.Fatalf("stored delivered: %+v %v", got, err)
	}
	// delivered: not due, not leasable; a replay sends it again
	if due, _ := s.DueDeliveries(replayAt.Add(time.Hour), 10); len(due) != 0 {
		t.Fatalf("delivered delivery due: %v", ids(due))
	}
	if _, err := s.BeginAttempt("1", id, replayAt.Add(time.Hour), time.Minute); !errors.Is(err, storage.ErrStaleAttempt) {
		t.Fatalf("begin of a delivered delivery: %v", err)
	}
	if d, err := s.Replay("1", id, replayAt.Add(time.Hour)); err != nil || d.State != storage.DeliveryPending {
		t.Fatalf("replay of a delivered delivery: %+v %v", d, err)
	}
}

// Workers racing for one due delivery: exactly one begins the attempt.
func testConcurrentBeginAttemptOnce(t *testing.T, s storage.Store) {
	id := accepted(t, s, "1", "O", t0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var began []storage.Delivery
	for range 16 {
		wg.Go(func() {
			d, err := s.BeginAttempt("1", id, t0, time.Minute)
			if err == nil {
				mu.Lock()
				began = append(began, d)
				mu.Unlock()
			} else if !errors.Is(err, storage.ErrStaleAttempt) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(began) != 1 || began[0].Attempts != 1 {
		t.Fatalf("%d attempts began at once: %+v", len(began), began)
	}
	if d, err := s.FinishAttempt("1", id, 1, storage.AttemptResult{At: t0, Delivered: true}); err != nil || d.State != storage.DeliveryDelivered {
		t.Fatalf("finish: %+v %v", d, err)
	}
}

// An attempt whose lease ran out is taken over: the next worker begins the next attempt, and
// the first worker's finish is refused.
func testLeaseEnd(t *testing.T, s storage.Store) {
	id := accepted(t, s, "1", "O", t0)
	first, err := s.BeginAttempt("1", id, t0, 30*time.Second)
	if err != nil || first.Attempts != 1 {
		t.Fatalf("first begin: %+v %v", first, err)
	}
	if _, err := s.BeginAttempt("1", id, t0.Add(29*time.Second), 30*time.Second); !errors.Is(err, storage.ErrStaleAttempt) {
		t.Fatalf("begin during the lease: %v", err)
	}
	if due, _ := s.DueDeliveries(t0.Add(31*time.Second), 10); len(due) != 1 || due[0].ID != id {
		t.Fatalf("lease end: %v", ids(due))
	}
	second, err := s.BeginAttempt("1", id, t0.Add(31*time.Second), 30*time.Second)
	if err != nil || second.Attempts != 2 {
		t.Fatalf("begin after the lease: %+v %v", second, err)
	}
	if _, err := s.FinishAttempt("1", id, first.Attempts, storage.AttemptResult{At: t0.Add(32 * time.Second), Delivered: true}); !errors.Is(err, storage.ErrStaleAttempt) {
		t.Fatalf("finish of the attempt taken over: %v", err)
	}
	if got, err := s.GetDelivery("1", id); err != nil || got.State != storage.DeliveryPending {
		t.Fatalf("the refused finish was written: %+v %v", got, err)
	}
	d, err := s.FinishAttempt("1", id, second.Attempts, storage.AttemptResult{At: t0.Add(33 * time.Second), Delivered: true})
	if err != nil || d.State != storage.DeliveryDelivered || d.Attempts != 2 {
		t.Fatalf("finish of the second: %+v %v", d, err)
	}
}

// A replay during an attempt lets the attempt finish first, then makes another: the one in
// flight began before the replay, which asks for a delivery after it.
func testReplayDuringAttempt(t *testing.T, s storage.Store) {
	id := accepted(t, s, "1", "O", t0)
	d, err := s.BeginAttempt("1", id, t0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Replay("1", id, t0.Add(time.Second)); err != nil || r.State != storage.DeliveryPending {
		t.Fatalf("replay: %+v %v", r, err)
	}
	if _, err := s.BeginAttempt("1", id, t0.Add(2*time.Second), time.Minute); !errors.Is(err, storage.ErrStaleAttempt) {
		t.Fatalf("begin during the attempt: %v", err)
	}
	if due, _ := s.DueDeliveries(t0.Add(2*time.Second), 10); len(due) != 0 {
		t.Fatalf("due during the attempt: %v", ids(due))
	}
	// the attempt began before the replay, which asked for another: still pending, due at once,
	// its round not counting the attempt of the round before
	f, err := s.FinishAttempt("1", id, d.Attempts, storage.AttemptResult{At: t0.Add(3 * time.Second), Delivered: true, HTTPStatus: 204})
	if err != nil || f.State != storage.DeliveryPending || !f.NextAttempt.Equal(t0.Add(3*time.Second)) ||
		f.RoundAttempts != 0 || f.Attempts != 1 || !f.DeliveredAt.Equal(t0.Add(3*time.Second)) || f.LastHTTPStatus != 204 {
		t.Fatalf("finish of the attempt begun before the replay: %+v %v", f, err)
	}
	if due, _ := s.DueDeliveries(t0.Add(3*time.Second), 10); len(due) != 1 || due[0].ID != id {
		t.Fatalf("not due after the replayed attempt: %v", ids(due))
	}
	d, err = s.BeginAttempt("1", id, t0.Add(4*time.Second), time.Minute)
	if err != nil || d.Attempts != 2 || d.RoundAttempts != 1 {
		t.Fatalf("begin after the replay: %+v %v", d, err)
	}
	if f, err := s.FinishAttempt("1", id, d.Attempts, storage.AttemptResult{At: t0.Add(5 * time.Second), Delivered: true}); err != nil ||
		f.State != storage.DeliveryDelivered || !f.DeliveredAt.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("finish after the replay: %+v %v", f, err)
	}
}

// Due deliveries come soonest first, up to the limit, only when due.
func testDueDeliveriesOrderAndLimit(t *testing.T, s storage.Store) {
	// created in another order than they are due
	c := accepted(t, s, "1", "C", t0.Add(2*time.Second))
	a := accepted(t, s, "2", "A", t0)
	b := accepted(t, s, "1", "B", t0.Add(time.Second))
	due, err := s.DueDeliveries(t0.Add(10*time.Second), 0)
	if err != nil || len(due) != 3 || due[0].ID != a || due[1].ID != b || due[2].ID != c || due[0].SiteID != "2" {
		t.Fatalf("due: %v %v", ids(due), err)
	}
	if due, _ := s.DueDeliveries(t0.Add(10*time.Second), 2); len(due) != 2 || due[0].ID != a || due[1].ID != b {
		t.Fatalf("due, limit 2: %v", ids(due))
	}
	if due, _ := s.DueDeliveries(t0.Add(1500*time.Millisecond), 0); len(due) != 2 || due[0].ID != a || due[1].ID != b {
		t.Fatalf("due at t0+1.5s: %v", ids(due))
	}
	// a retry later than another moves behind it
	d, err := s.BeginAttempt("2", a, t0.Add(10*time.Second), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.FinishAttempt("2", a, d.Attempts, storage.AttemptResult{At: t0.Add(10 * time.Second), HTTPStatus: 503, NextAttempt: t0.Add(20 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueDeliveries(t0.Add(30*time.Second), 0); len(due) != 3 || due[0].ID != b || due[1].ID != c || due[2].ID != a {
		t.Fatalf("due after a retry: %v", ids(due))
	}
}

func testUnknownDelivery(t *testing.T, s storage.Store) {
	accepted(t, s, "1", "O", t0)
	for _, k := range []storage.Key{{SiteID: "1", ID: "nope"}, {SiteID: "1", ID: "../x"}, {SiteID: "", ID: "nope"}} {
		if _, err := s.GetDelivery(k.SiteID, k.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetDelivery(%q, %q): %v", k.SiteID, k.ID, err)
		}
		if _, err := s.BeginAttempt(k.SiteID, k.ID, t0, time.Minute); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("BeginAttempt(%q, %q): %v", k.SiteID, k.ID, err)
		}
		if _, err := s.Replay(k.SiteID, k.ID, t0); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Replay(%q, %q): %v", k.SiteID, k.ID, err)
		}
	}
	// a delivery is found on its own site only
	id := listDeliveries(t, s, storage.DeliveryFilter{})[0].ID
	if _, err := s.GetDelivery("2", id); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetDelivery on another site: %v", err)
	}
	if _, err := s.Replay("2", id, t0); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Replay on another site: %v", err)
	}
	if _, err := s.BeginAttempt("2", id, t0, time.Minute); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("BeginAttempt on another site: %v", err)
	}
}
