package storage_test

import (
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/internal/pgtest"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// A Badger store moves into PostgreSQL whole: payments in every state, their history and
// deliveries (pending ones still due), order heads and paid markers; a second run copies
// nothing again; the database answers for the Badger store's transaction ids.
func TestMigrateBadgerToPostgres(t *testing.T) {
	b, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	claim := func(order string, amount int64) storage.Payment {
		r, err := b.Claim(storage.Claim{SiteID: "S1", OrderID: order, Amount: amount, Currency: "XOF", Environment: "sandbox",
			Now: t0, ReuseWindow: 15 * time.Minute, InitGrace: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return r.Payment
	}
	set := func(p storage.Payment, st storage.State, at time.Time) storage.UpdateResult {
		r, err := b.Update(p.SiteID, p.TransactionID, at, func(p *storage.Payment) error {
			p.State = st
			if st == storage.StatePending {
				p.PaymentURL = "https://pay.example/" + p.TransactionID
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	paid := claim("paid", 1000)
	set(paid, storage.StatePending, t0)
	acc := set(paid, storage.StateAccepted, t0.Add(time.Minute))
	if _, err := b.BeginAttempt("S1", acc.Delivery.ID, t0.Add(time.Minute), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.FinishAttempt("S1", acc.Delivery.ID, 1, storage.AttemptResult{At: t0.Add(time.Minute), Delivered: true}); err != nil {
		t.Fatal(err)
	}
	refused := claim("refused", 500)
	set(refused, storage.StatePending, t0)
	ref := set(refused, storage.StateRefused, t0.Add(2*time.Minute)) // its delivery pending
	pending := claim("pending", 200)
	set(pending, storage.StatePending, t0)
	initial := claim("init", 300)

	pg, err := storage.OpenPostgres(pgtest.Fresh(t), storage.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if pg.OwnsTransaction(paid.TransactionID) {
		t.Fatal("a fresh database owns the Badger store's ids")
	}
	var steps int
	c, err := storage.MigrateBadger(b, pg, func(storage.MigrateCounts) { steps++ })
	if err != nil {
		t.Fatal(err)
	}
	if c.Payments != 4 || c.Deliveries != 2 || c.Pending != 1 || c.PaymentsThere != 0 || c.Orders != 5 || steps == 0 {
		t.Fatalf("first run: %+v (%d steps)", c, steps)
	}
	if pg.Prefix() != b.Prefix() || !pg.OwnsTransaction(paid.TransactionID) {
		t.Fatalf("prefix %q, badger's %q", pg.Prefix(), b.Prefix())
	}
	// the records, as they were
	for _, p := range []storage.Payment{paid, refused, pending, initial} {
		want, _ := b.Get("S1", p.TransactionID)
		got, err := pg.Get("S1", p.TransactionID)
		if err != nil || got.State != want.State || len(got.History) != len(want.History) || got.PaymentURL != want.PaymentURL ||
			!got.NextCheck.Equal(want.NextCheck) {
			t.Fatalf("%s: %+v %v, want %+v", p.OrderID, got, err, want)
		}
	}
	due, err := pg.DueDeliveries(t0.Add(time.Hour), 10)
	if err != nil || len(due) != 1 || due[0].ID != ref.Delivery.ID {
		t.Fatalf("pending deliveries after the move: %+v %v", due, err)
	}
	// the order heads and paid markers: a paid order is not started again, a pending one is reused
	if r, err := pg.Claim(storage.Claim{SiteID: "S1", OrderID: "paid", Amount: 1000, Currency: "XOF", Now: t0.Add(time.Hour),
		ReuseWindow: 15 * time.Minute, InitGrace: time.Minute}); err != nil || r.Kind != storage.ClaimPaid {
		t.Fatalf("claim of the paid order: %+v %v", r, err)
	}
	if r, err := pg.Claim(storage.Claim{SiteID: "S1", OrderID: "pending", Amount: 200, Currency: "XOF", Now: t0.Add(time.Minute),
		ReuseWindow: 15 * time.Minute, InitGrace: time.Minute}); err != nil || r.Kind != storage.ClaimReuse || r.Payment.TransactionID != pending.TransactionID {
		t.Fatalf("claim of the pending order: %+v %v", r, err)
	}
	// again: nothing copied twice
	c, err = storage.MigrateBadger(b, pg, nil)
	if err != nil || c.Payments != 0 || c.PaymentsThere != 4 || c.Deliveries != 0 || c.DeliveriesThere != 2 {
		t.Fatalf("second run: %+v %v", c, err)
	}
	// a second Badger store into the same database: its ids are recognised, the prefix stays
	b2, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	r, err := b2.Claim(storage.Claim{SiteID: "S1", OrderID: "second", Amount: 100, Currency: "XOF", Now: t0,
		ReuseWindow: time.Minute, InitGrace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := storage.MigrateBadger(b2, pg, nil); err != nil || c.Payments != 1 {
		t.Fatalf("second store: %+v %v", c, err)
	}
	if pg.Prefix() != b.Prefix() || !pg.OwnsTransaction(r.Payment.TransactionID) || !pg.OwnsTransaction(paid.TransactionID) {
		t.Fatalf("after a second store: prefix %q, owns %v %v", pg.Prefix(), pg.OwnsTransaction(r.Payment.TransactionID), pg.OwnsTransaction(paid.TransactionID))
	}
}
