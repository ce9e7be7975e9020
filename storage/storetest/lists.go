package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

func testListPayments(t *testing.T, s storage.Store) {
	a := started(t, s, "1", "A", 100, t0)
	b := started(t, s, "1", "B", 100, t0)
	c := started(t, s, "2", "A", 100, t0)
	a2 := started(t, s, "1", "A", 200, t0.Add(time.Minute)) // a second payment of order A
	i := mustClaim(t, s, claim("2", "I", 100, t0)).Payment
	mustSetState(t, s, a, storage.StateRefused, t0)
	mustSetState(t, s, c, storage.StateAccepted, t0)
	for _, tc := range []struct {
		f    storage.PaymentFilter
		want []string
	}{
		{storage.PaymentFilter{}, sorted(a.TransactionID, b.TransactionID, c.TransactionID, a2.TransactionID, i.TransactionID)},
		{storage.PaymentFilter{SiteID: "1"}, sorted(a.TransactionID, b.TransactionID, a2.TransactionID)},
		{storage.PaymentFilter{SiteID: "2"}, sorted(c.TransactionID, i.TransactionID)},
		{storage.PaymentFilter{SiteID: "3"}, sorted()},
		{storage.PaymentFilter{SiteID: "1", State: storage.StateRefused}, sorted(a.TransactionID)},
		{storage.PaymentFilter{SiteID: "2", State: storage.StateRefused}, sorted()},
		{storage.PaymentFilter{State: storage.StatePending}, sorted(b.TransactionID, a2.TransactionID)},
		{storage.PaymentFilter{State: storage.StateAccepted}, sorted(c.TransactionID)},
		{storage.PaymentFilter{State: storage.StateInit}, sorted(i.TransactionID)},
		{storage.PaymentFilter{SiteID: "1", State: storage.StateInit}, sorted()},
		{storage.PaymentFilter{State: storage.StateExpired}, sorted()},
		{storage.PaymentFilter{SiteID: "1", OrderID: "A"}, sorted(a.TransactionID, a2.TransactionID)},
		{storage.PaymentFilter{SiteID: "1", OrderID: "A", State: storage.StatePending}, sorted(a2.TransactionID)},
		{storage.PaymentFilter{SiteID: "2", OrderID: "A"}, sorted(c.TransactionID)},
		{storage.PaymentFilter{SiteID: "1", OrderID: "Z"}, sorted()},
	} {
		if got := txids(listPayments(t, s, tc.f)); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.f, got, tc.want)
		}
	}
	if got := listPayments(t, s, storage.PaymentFilter{Limit: 1}); len(got) != 1 {
		t.Errorf("limit 1: %d", len(got))
	}
	// what is listed is the stored payment
	for _, p := range listPayments(t, s, storage.PaymentFilter{SiteID: "1", State: storage.StateRefused}) {
		if p.OrderID != "A" || p.Amount != 100 || len(p.History) != 2 || p.Confirmed == nil {
			t.Errorf("listed %+v", p)
		}
	}
}

func testListDeliveries(t *testing.T, s storage.Store) {
	a := started(t, s, "1", "A", 100, t0)
	refusal := mustSetState(t, s, a, storage.StateRefused, t0).Delivery.ID // pending
	acceptance := mustSetState(t, s, a, storage.StateAccepted, t0.Add(time.Minute)).Delivery.ID
	deliver(t, s, "1", acceptance, t0.Add(time.Minute)) // delivered
	b := started(t, s, "1", "B", 100, t0)
	expiry := mustSetState(t, s, b, storage.StateExpired, t0).Delivery.ID
	giveUp(t, s, "1", expiry, t0) // failed
	c := started(t, s, "2", "A", 100, t0)
	other := mustSetState(t, s, c, storage.StateAccepted, t0).Delivery.ID // pending

	for _, tc := range []struct {
		f    storage.DeliveryFilter
		want []string
	}{
		{storage.DeliveryFilter{}, sorted(refusal, acceptance, expiry, other)},
		{storage.DeliveryFilter{SiteID: "1"}, sorted(refusal, acceptance, expiry)},
		{storage.DeliveryFilter{SiteID: "2"}, sorted(other)},
		{storage.DeliveryFilter{SiteID: "3"}, sorted()},
		{storage.DeliveryFilter{State: storage.DeliveryPending}, sorted(refusal, other)},
		{storage.DeliveryFilter{State: storage.DeliveryDelivered}, sorted(acceptance)},
		{storage.DeliveryFilter{State: storage.DeliveryFailed}, sorted(expiry)},
		{storage.DeliveryFilter{SiteID: "1", State: storage.DeliveryPending}, sorted(refusal)},
		{storage.DeliveryFilter{SiteID: "2", State: storage.DeliveryFailed}, sorted()},
		{storage.DeliveryFilter{TransactionID: a.TransactionID}, sorted(refusal, acceptance)},
		{storage.DeliveryFilter{SiteID: "1", TransactionID: a.TransactionID}, sorted(refusal, acceptance)},
		{storage.DeliveryFilter{SiteID: "2", TransactionID: a.TransactionID}, sorted()},
		{storage.DeliveryFilter{TransactionID: a.TransactionID, State: storage.DeliveryDelivered}, sorted(acceptance)},
		{storage.DeliveryFilter{TransactionID: b.TransactionID, State: storage.DeliveryPending}, sorted()},
		{storage.DeliveryFilter{TransactionID: "NOPE"}, sorted()},
	} {
		if got := ids(listDeliveries(t, s, tc.f)); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.f, got, tc.want)
		}
	}
	if got := listDeliveries(t, s, storage.DeliveryFilter{Limit: 1}); len(got) != 1 {
		t.Errorf("limit 1: %d", len(got))
	}
	// what is listed is the stored delivery
	for _, d := range listDeliveries(t, s, storage.DeliveryFilter{State: storage.DeliveryDelivered}) {
		if d.TransactionID != a.TransactionID || d.Status != storage.StateAccepted || d.Attempts != 1 || d.DeliveredAt.IsZero() {
			t.Errorf("listed %+v", d)
		}
	}
}

// Every listing returns at most its limit, 100 when none is asked, and all there is when the
// limit is larger.
func testListLimits(t *testing.T, s storage.Store) {
	const settled, initial = 51, 54 // 51×2 deliveries, 51+54+3 payments
	for i := range settled {
		p := started(t, s, "1", fmt.Sprintf("L%02d", i), 100, t0)
		mustSetState(t, s, p, storage.StateRefused, t0)
		mustSetState(t, s, p, storage.StateAccepted, t0.Add(time.Minute))
	}
	for i := range initial {
		mustClaim(t, s, claim("2", fmt.Sprintf("I%02d", i), 100, t0.Add(time.Duration(i)*time.Second)))
	}
	var multi []storage.Payment
	for i := range 3 {
		// checked after every INIT claim
		multi = append(multi, started(t, s, "1", "MULTI", int64(100*(i+1)), t0.Add(10*time.Minute)))
	}
	ds := listDeliveries(t, s, storage.DeliveryFilter{Limit: 500})
	for _, d := range ds[:3] {
		deliver(t, s, d.SiteID, d.ID, t0.Add(time.Hour))
	}
	total := settled + initial + len(multi)

	for _, tc := range []struct {
		f    storage.PaymentFilter
		want int
	}{
		{storage.PaymentFilter{}, 100},
		{storage.PaymentFilter{Limit: 7}, 7},
		{storage.PaymentFilter{Limit: 500}, total},
		{storage.PaymentFilter{SiteID: "1"}, settled + len(multi)},
		{storage.PaymentFilter{SiteID: "1", Limit: 5}, 5},
		{storage.PaymentFilter{SiteID: "2", Limit: 500}, initial},
		{storage.PaymentFilter{State: storage.StateAccepted, Limit: 5}, 5},
		{storage.PaymentFilter{State: storage.StateAccepted}, settled},
		{storage.PaymentFilter{SiteID: "1", State: storage.StateAccepted, Limit: 50}, 50},
		{storage.PaymentFilter{State: storage.StateInit, Limit: 5}, 5},
		{storage.PaymentFilter{State: storage.StateInit}, initial},
		{storage.PaymentFilter{SiteID: "2", State: storage.StateInit, Limit: 3}, 3},
		{storage.PaymentFilter{SiteID: "1", State: storage.StatePending, Limit: 2}, 2},
		{storage.PaymentFilter{SiteID: "1", OrderID: "MULTI", Limit: 2}, 2},
		{storage.PaymentFilter{SiteID: "1", OrderID: "MULTI"}, 3},
		{storage.PaymentFilter{SiteID: "1", OrderID: "MULTI", State: storage.StatePending, Limit: 1}, 1},
	} {
		got := listPayments(t, s, tc.f)
		if len(got) != tc.want {
			t.Errorf("%+v: %d payments, want %d", tc.f, len(got), tc.want)
		}
		if seen := txids(got); len(slices.Compact(seen)) != len(got) {
			t.Errorf("%+v: a payment listed twice", tc.f)
		}
	}
	for _, tc := range []struct {
		f    storage.DeliveryFilter
		want int
	}{
		{storage.DeliveryFilter{}, 100},
		{storage.DeliveryFilter{Limit: 3}, 3},
		{storage.DeliveryFilter{Limit: 500}, 2 * settled},
		{storage.DeliveryFilter{SiteID: "1", Limit: 5}, 5},
		{storage.DeliveryFilter{State: storage.DeliveryPending}, 2*settled - 3},
		{storage.DeliveryFilter{State: storage.DeliveryPending, Limit: 4}, 4},
		{storage.DeliveryFilter{SiteID: "1", State: storage.DeliveryPending, Limit: 4}, 4},
		{storage.DeliveryFilter{State: storage.DeliveryDelivered, Limit: 2}, 2},
		{storage.DeliveryFilter{State: storage.DeliveryDelivered}, 3},
		{storage.DeliveryFilter{TransactionID: ds[0].TransactionID}, 2},
		{storage.DeliveryFilter{TransactionID: ds[0].TransactionID, Limit: 1}, 1},
	} {
		got := listDeliveries(t, s, tc.f)
		if len(got) != tc.want {
			t.Errorf("%+v: %d deliveries, want %d", tc.f, len(got), tc.want)
		}
		if seen := ids(got); len(slices.Compact(seen)) != len(got) {
			t.Errorf("%+v: a delivery listed twice", tc.f)
		}
	}
	// the queues: the limit, soonest first
	keys, err := s.DueChecks(t0.Add(time.Hour), 3)
	if err != nil || len(keys) != 3 {
		t.Fatalf("DueChecks limit 3: %v %v", keyIDs(keys), err)
	}
	for i, k := range keys { // the INIT claims, due one second apart, come first
		if p := mustGet(t, s, k.SiteID, k.ID); p.OrderID != fmt.Sprintf("I%02d", i) {
			t.Errorf("DueChecks[%d]: %s", i, p.OrderID)
		}
	}
	if keys, _ := s.DueChecks(t0.Add(time.Hour), 0); len(keys) != initial+len(multi) {
		t.Errorf("DueChecks, no limit: %d, want %d", len(keys), initial+len(multi))
	}
	if due, _ := s.DueDeliveries(t0.Add(time.Hour), 5); len(due) != 5 {
		t.Errorf("DueDeliveries limit 5: %d", len(due))
	}
	if due, _ := s.DueDeliveries(t0.Add(time.Hour), 0); len(due) != 2*settled-3 {
		t.Errorf("DueDeliveries, no limit: %d", len(due))
	}
}

// Listings come newest first (creation, then site and id, descending), page after page with
// a cursor, within creation-time bounds, the same with every filter.
func testListPaymentsPages(t *testing.T, s storage.Store) {
	var all []storage.Payment
	for i := range 30 {
		site := []string{"1", "2"}[i%2]
		// three payments at each time: ties are ordered by site, then id
		at := t0.Add(time.Duration(i/3) * time.Minute)
		p := started(t, s, site, fmt.Sprintf("N%02d", i), 100, at)
		if i%5 == 0 {
			p = mustSetState(t, s, p, storage.StateRefused, at).Payment
		}
		all = append(all, p)
	}
	want := slices.Clone(all)
	storage.NewestFirst(want)
	if want[0].CreatedAt.Before(want[len(want)-1].CreatedAt) {
		t.Fatal("NewestFirst sorts oldest first")
	}
	for _, f := range []storage.PaymentFilter{
		{},
		{SiteID: "2"},
		{State: storage.StatePending},
		{SiteID: "1", State: storage.StateRefused},
		{Since: t0.Add(3 * time.Minute), Until: t0.Add(7 * time.Minute)},
		{SiteID: "1", Since: t0.Add(2 * time.Minute)},
		{State: storage.StatePending, Until: t0.Add(5 * time.Minute)},
	} {
		var expect []string
		for _, p := range want {
			in := (f.SiteID == "" || p.SiteID == f.SiteID) && (f.State == "" || p.State == f.State) &&
				(f.Since.IsZero() || !p.CreatedAt.Before(f.Since)) && (f.Until.IsZero() || p.CreatedAt.Before(f.Until))
			if in {
				expect = append(expect, p.SiteID+"/"+p.TransactionID)
			}
		}
		// all at once, then in pages of 4
		f.Limit = 500
		if got := keysOfPayments(listPayments(t, s, f)); !slices.Equal(got, expect) {
			t.Errorf("%+v: %v\nwant %v", f, got, expect)
		}
		f.Limit = 4
		var paged []string
		for range 20 {
			page := listPayments(t, s, f)
			paged = append(paged, keysOfPayments(page)...)
			if len(page) < f.Limit {
				break
			}
			f.After = storage.CursorOf(&page[len(page)-1])
		}
		if !slices.Equal(paged, expect) {
			t.Errorf("%+v in pages: %v\nwant %v", f, paged, expect)
		}
	}
	// an order's payments, newest first
	third := started(t, s, "1", "N00", 200, t0.Add(time.Hour))
	got := listPayments(t, s, storage.PaymentFilter{SiteID: "1", OrderID: "N00"})
	if len(got) != 2 || got[0].TransactionID != third.TransactionID {
		t.Errorf("an order's payments: %v", keysOfPayments(got))
	}
	if got := listPayments(t, s, storage.PaymentFilter{SiteID: "1", OrderID: "N00", After: storage.CursorOf(&third)}); len(got) != 1 ||
		got[0].TransactionID != all[0].TransactionID {
		t.Errorf("an order's payments after the newest: %v", keysOfPayments(got))
	}
}

func keysOfPayments(ps []storage.Payment) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.SiteID + "/" + p.TransactionID
	}
	return out
}
