package storetest

import (
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Stats counts, by site, the pending deliveries and the start of the oldest one's round, the
// open payments by state and the re-checks due; delivered, given up and settled ones are not
// counted, and a replay starts a new round.
func testStats(t *testing.T, s storage.Store) {
	// site 1: a PENDING payment (its first re-check due at t0+FirstCheck), an INIT claim (due
	// at t0+InitGrace), a refused one (its delivery pending since t0+1m), an accepted one whose
	// delivery the shop took
	started(t, s, "1", "P", 100, t0)
	mustClaim(t, s, claim("1", "I", 100, t0))
	r := started(t, s, "1", "R", 100, t0)
	refusal := mustSetState(t, s, r, storage.StateRefused, t0.Add(time.Minute)).Delivery.ID
	a := started(t, s, "1", "A", 100, t0)
	deliver(t, s, "1", mustSetState(t, s, a, storage.StateAccepted, t0).Delivery.ID, t0)
	// site 2: an expired payment whose delivery was given up, then replayed at t0+2h
	e := started(t, s, "2", "E", 100, t0)
	expiry := mustSetState(t, s, e, storage.StateExpired, t0).Delivery.ID
	giveUp(t, s, "2", expiry, t0)
	// and a second pending delivery, older, on site 2: a refusal at t0+30s
	r2 := started(t, s, "2", "R2", 100, t0)
	mustSetState(t, s, r2, storage.StateRefused, t0.Add(30*time.Second))

	stats, err := s.Stats(t0.Add(2 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	one, two := stats["1"], stats["2"]
	if one == nil || two == nil {
		t.Fatalf("stats: %+v", stats)
	}
	if one.DeliveriesPending != 1 || !one.OldestPending.Equal(t0.Add(time.Minute)) {
		t.Errorf("site 1 deliveries: %d pending, oldest %v (%s)", one.DeliveriesPending, one.OldestPending, refusal)
	}
	if two.DeliveriesPending != 1 || !two.OldestPending.Equal(t0.Add(30*time.Second)) {
		t.Errorf("site 2 deliveries: %d pending, oldest %v", two.DeliveriesPending, two.OldestPending)
	}
	if got := one.PaymentsOpen; got[storage.StatePending] != 1 || got[storage.StateInit] != 1 || got[storage.StateUnknown] != 0 {
		t.Errorf("site 1 open payments: %v", got)
	}
	if got := two.PaymentsOpen; got[storage.StatePending] != 0 || got[storage.StateInit] != 0 {
		t.Errorf("site 2 open payments: %v", got)
	}
	// due at t0+2m: site 1's PENDING payment, its INIT claim (a minute's grace) and its refused
	// one (the store keeps the re-check the start scheduled; the engine's check would move it)
	if one.RechecksDue != 3 {
		t.Errorf("site 1 re-checks due: %d", one.RechecksDue)
	}
	// a replay starts a new round: site 2's given-up delivery is pending again, since t0+2h
	if _, err := s.Replay("2", expiry, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	stats, err = s.Stats(t0.Add(2 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if two := stats["2"]; two.DeliveriesPending != 2 || !two.OldestPending.Equal(t0.Add(30*time.Second)) {
		t.Errorf("site 2 after the replay: %d pending, oldest %v", two.DeliveriesPending, two.OldestPending)
	}
	// the shop takes site 1's refusal: nothing pending there
	deliver(t, s, "1", refusal, t0.Add(2*time.Hour))
	stats, _ = s.Stats(t0.Add(2 * time.Hour))
	if one := stats["1"]; one != nil && (one.DeliveriesPending != 0 || !one.OldestPending.IsZero()) {
		t.Errorf("site 1 after delivery: %+v", one)
	}
}
