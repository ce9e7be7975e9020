package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// noTicks makes the queues' poll tick an hour long for the test: whatever the test sees done
// was done without waiting for a tick.
func noTicks(t *testing.T) {
	old := pollEvery
	pollEvery = time.Hour
	t.Cleanup(func() { pollEvery = old })
}

// A worker that finishes takes the next due item at once, not at the next tick.
func TestFinishedWorkerTakesTheNextItem(t *testing.T) {
	noTicks(t)
	st, err := storage.Open(t.TempDir(), storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	e := New(st, nil)
	defer e.Close()

	var mu sync.Mutex
	queue := []string{"a", "b", "c", "d", "e"}
	var done []string
	due := func(n int) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, it := range queue {
			if !slices.Contains(done, it) && len(out) < n {
				out = append(out, it)
			}
		}
		return out, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var running, most atomic.Int32
	go pump(ctx, e, nil, 1, "test items", due, func(s string) string { return s }, func(it string) bool {
		if n := running.Add(1); n > most.Load() {
			most.Store(n)
		}
		time.Sleep(5 * time.Millisecond)
		running.Add(-1)
		mu.Lock()
		done = append(done, it)
		mu.Unlock()
		return false
	})
	waitUntil(t, "the five items, one worker, no tick", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(done) == len(queue)
	})
	if !slices.Equal(done, queue) {
		t.Fatalf("handled %v, want %v in order", done, queue)
	}
	if most.Load() != 1 {
		t.Fatalf("%d items at once with one worker", most.Load())
	}
}

// A backlog of deliveries is sent by every worker at once and drains without a tick; each
// delivery is sent once.
func TestDeliveryBacklogDrainsOnEveryWorker(t *testing.T) {
	noTicks(t)
	st, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	now := Now()
	var ps []storage.Payment
	var ds []storage.Delivery
	for i := range n {
		tx := st.NewTransactionID()
		ps = append(ps, storage.Payment{SiteID: "123456", TransactionID: tx, OrderID: fmt.Sprint("o", i), Amount: 100,
			Currency: "XOF", State: storage.StateAccepted, CreatedAt: now, UpdatedAt: now})
		ds = append(ds, storage.Delivery{ID: fmt.Sprintf("ev%03d", i), SiteID: "123456", TransactionID: tx,
			Status: storage.StateAccepted, State: storage.DeliveryPending, CreatedAt: now, Since: now, NextAttempt: now})
	}
	e := New(st, nil)
	defer e.Close()
	var mu sync.Mutex
	got := map[string]int{}
	var running, most atomic.Int32
	e.Register(&Site{ID: "123456", Provider: &fakeProvider{}, Environment: "sandbox", Timeout: time.Second,
		RateLimit: 100, DeliveryTimeout: time.Second,
		Deliver: func(_ context.Context, d *storage.Delivery) (int, time.Duration, error) {
			if r := running.Add(1); r > most.Load() {
				most.Store(r)
			}
			time.Sleep(2 * time.Millisecond)
			running.Add(-1)
			mu.Lock()
			got[d.ID]++
			mu.Unlock()
			return 204, 0, nil
		}})
	// seeded once the site is registered (else the first listing finds it not configured)
	if err := st.Import(ps, ds); err != nil {
		t.Fatal(err)
	}
	e.Wake()
	waitUntil(t, "the backlog delivered", func() bool {
		left, _ := st.ListDeliveries(storage.DeliveryFilter{State: storage.DeliveryPending})
		return len(left) == 0
	})
	mu.Lock()
	defer mu.Unlock()
	for _, d := range ds {
		if got[d.ID] != 1 {
			t.Fatalf("delivery %s sent %d times", d.ID, got[d.ID])
		}
	}
	if most.Load() < 2 {
		t.Fatalf("at most %d deliveries in flight, of %d workers", most.Load(), DeliveryWorkers)
	}
	if err := st.CheckIndexes(); err != nil {
		t.Fatal(err)
	}
}

// Re-checks due at once drain at the rate budget, without a tick.
func TestRecheckBacklogDrains(t *testing.T) {
	noTicks(t)
	st, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	now := Now()
	var ps []storage.Payment
	for i := range n {
		ps = append(ps, storage.Payment{SiteID: "123456", TransactionID: st.NewTransactionID(), OrderID: fmt.Sprint("o", i),
			Amount: 1000, Currency: "XOF", State: storage.StatePending, CreatedAt: now, UpdatedAt: now,
			NextCheck: now.Add(-time.Second)})
	}
	e := New(st, nil)
	defer e.Close()
	fp, sh := &fakeProvider{}, &shop{}
	fp.set(&Answer{Verdict: Accepted, AmountConfirmed: true, Summary: "code 00",
		Confirmed: storage.Confirmation{Amount: "1000", Currency: "XOF", Status: "ACCEPTED"}}, nil)
	e.Register(&Site{ID: "123456", Provider: fp, Environment: "sandbox", Timeout: time.Second, RateLimit: 1000,
		Deliver: sh.deliver, DeliveryTimeout: time.Second})
	if err := st.Import(ps, nil); err != nil {
		t.Fatal(err)
	}
	e.WakeChecks()
	waitUntil(t, "every due payment re-checked and delivered", func() bool { return len(sh.deliveries()) == n })
	waitUntil(t, "the delivery queue empty", func() bool {
		left, _ := st.ListDeliveries(storage.DeliveryFilter{State: storage.DeliveryPending})
		return len(left) == 0
	})
	if c := fp.statuses.Load(); c != n {
		t.Fatalf("%d status calls for %d due payments", c, n)
	}
	if err := st.CheckIndexes(); err != nil {
		t.Fatal(err)
	}
}
