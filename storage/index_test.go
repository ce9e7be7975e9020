package storage

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func mustCheckIndexes(t *testing.T, s *Badger, when string) {
	t.Helper()
	if err := s.CheckIndexes(); err != nil {
		t.Fatalf("%s: %v", when, err)
	}
}

// churn drives a store through every kind of write the engine makes, from several goroutines:
// claims, starts, re-check schedules, state changes with deliveries, attempts, replays.
func churn(t *testing.T, s *Badger, workers, perWorker int, seed uint64) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			now := t0
			for i := range perWorker {
				now = now.Add(time.Second)
				site := strconv.Itoa(1 + rng.IntN(3))
				order := fmt.Sprintf("O%d-%d", w, rng.IntN(perWorker/2+1))
				c, err := s.Claim(claim(site, order, 100, now))
				if err != nil || c.Kind != ClaimNew {
					continue
				}
				tx := c.Payment.TransactionID
				_, _ = s.Update(site, tx, now, func(p *Payment) error {
					p.State, p.PaymentURL, p.NextCheck = StatePending, "https://pay.example/"+tx, now.Add(time.Duration(rng.IntN(600))*time.Second)
					return nil
				})
				for range rng.IntN(3) {
					_, _ = s.Update(site, tx, now, func(p *Payment) error {
						p.NextCheck = now.Add(time.Duration(rng.IntN(600)) * time.Second)
						return nil
					})
				}
				final := []State{StateAccepted, StateRefused, StateExpired, StatePending}[rng.IntN(4)]
				r, _ := s.Update(site, tx, now, func(p *Payment) error {
					p.State = final
					if final == StateRefused || final == StateExpired {
						p.NextCheck = now.Add(time.Hour)
					}
					return nil
				})
				if r.Delivery == nil || i%3 == 0 {
					continue
				}
				d, err := s.BeginAttempt(site, r.Delivery.ID, now, time.Minute)
				if err != nil {
					continue
				}
				switch rng.IntN(4) {
				case 0: // the worker "dies": the lease is left to run out
				case 1:
					_, _ = s.FinishAttempt(site, d.ID, d.Attempts, AttemptResult{At: now, HTTPStatus: 500, NextAttempt: now.Add(time.Minute)})
				case 2:
					_, _ = s.FinishAttempt(site, d.ID, d.Attempts, AttemptResult{At: now, GiveUp: true})
					_, _ = s.Replay(site, d.ID, now)
				default:
					_, _ = s.FinishAttempt(site, d.ID, d.Attempts, AttemptResult{At: now, Delivered: true, HTTPStatus: 204})
				}
			}
		}()
	}
	wg.Wait()
}

func TestIndexesFollowEveryChange(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	churn(t, s, 8, 150, 1)
	mustCheckIndexes(t, s, "after concurrent changes")

	// purge: half the payments are old enough
	n, err := s.Purge(t0.Add(91*24*time.Hour), 90*24*time.Hour)
	if err != nil || n == 0 {
		t.Fatalf("purge: %d %v", n, err)
	}
	mustCheckIndexes(t, s, "after purge")

	// reopen: the in-memory indexes are rebuilt from disk, the leases are gone
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustCheckIndexes(t, s, "after reopen")
	churn(t, s, 4, 50, 2)
	mustCheckIndexes(t, s, "after more changes")
}

// TestIndexesBuiltForAnOlderStore opens a store written before the state and transaction
// indexes existed: Open builds them, once.
func TestIndexesBuiltForAnOlderStore(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	churn(t, s, 2, 60, 3)
	// take the store back to the old layout
	wb := s.db.NewWriteBatch()
	for _, kind := range []string{kindPayState, kindDelState, kindDelByTx, kindSettled} {
		keys, _ := s.keys(kind)
		for _, k := range keys {
			_ = wb.Delete(k)
		}
	}
	_ = wb.Delete([]byte(keyMetaIndexes))
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckIndexes(); err == nil {
		t.Fatal("CheckIndexes found nothing missing")
	}
	_ = s.Close()
	if s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustCheckIndexes(t, s, "after the build")
	if ps, _ := s.ListPayments(PaymentFilter{State: StateAccepted}); len(ps) == 0 {
		t.Fatal("no ACCEPTED payment listed from the built index")
	}
}

func (s *Badger) keys(prefix string) ([][]byte, error) {
	var out [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		return iterate(txn, []byte(prefix), false, func(k, _ []byte) (bool, error) {
			out = append(out, k)
			return true, nil
		})
	})
	return out, err
}

// TestQueriesReadOnlyTheirResult pins the cost of the queries the engine makes every second
// and the admin's filters: they read their result (and one entry past it), however many
// payments are stored, and however many index keys were deleted before.
func TestQueriesReadOnlyTheirResult(t *testing.T) {
	s := openTest(t)
	var ps []Payment
	var ds []Delivery
	later := t0.Add(time.Hour)
	for i := range 8000 {
		p := Payment{SiteID: "1", TransactionID: s.NewTransactionID(), OrderID: fmt.Sprint("O", i), Amount: 100,
			Currency: "XOF", State: StateAccepted, CreatedAt: t0, UpdatedAt: t0}
		switch {
		case i < 5:
			p.State, p.NextCheck = StatePending, t0.Add(-time.Duration(i)*time.Second) // due
		case i < 1000:
			p.State, p.NextCheck = StatePending, later
		}
		ps = append(ps, p)
		d := Delivery{ID: fmt.Sprintf("e%05d", i), SiteID: "1", TransactionID: p.TransactionID, OrderID: p.OrderID,
			Status: StateAccepted, State: DeliveryDelivered, CreatedAt: t0, Since: t0}
		switch {
		case i < 3:
			d.State, d.NextAttempt = DeliveryPending, t0 // due
		case i < 2000:
			d.State, d.NextAttempt = DeliveryPending, later
		}
		ds = append(ds, d)
	}
	if err := s.Import(ps, ds); err != nil {
		t.Fatal(err)
	}
	// 500 more payments that went through PENDING with a re-check, and were delivered: their
	// queue and state keys are now tombstones, which a scan of the keys on disk would step over
	for i := range 500 {
		p := started(t, s, "2", fmt.Sprint("churn", i), 100, t0)
		r, err := setState(s, p, StateAccepted, t0)
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.BeginAttempt("2", r.Delivery.ID, t0, time.Minute)
		if err == nil {
			_, err = s.FinishAttempt("2", d.ID, d.Attempts, AttemptResult{At: t0, Delivered: true})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	mustCheckIndexes(t, s, "seeded")

	cost := func(name string, maxReads int64, want int, run func() (int, error)) {
		t.Helper()
		before := s.Reads()
		n, err := run()
		read := s.Reads() - before
		if err != nil || n != want {
			t.Fatalf("%s: %d results, want %d (%v)", name, n, want, err)
		}
		if read > maxReads {
			t.Errorf("%s read %d entries for %d results, at most %d expected", name, read, n, maxReads)
		}
	}
	cost("DueChecks", 5+1, 5, func() (int, error) { ks, err := s.DueChecks(t0, 64); return len(ks), err })
	cost("DueDeliveries", 3+1+3, 3, func() (int, error) { d, err := s.DueDeliveries(t0, 64); return len(d), err })
	cost("pending payments", 2*10, 10, func() (int, error) {
		p, err := s.ListPayments(PaymentFilter{State: StatePending, Limit: 10})
		return len(p), err
	})
	cost("accepted payments of a site", 2*10, 10, func() (int, error) {
		p, err := s.ListPayments(PaymentFilter{SiteID: "1", State: StateAccepted, Limit: 10})
		return len(p), err
	})
	cost("pending deliveries", 2*10, 10, func() (int, error) {
		d, err := s.ListDeliveries(DeliveryFilter{State: DeliveryPending, Limit: 10})
		return len(d), err
	})
	cost("deliveries of a transaction", 2, 1, func() (int, error) {
		d, err := s.ListDeliveries(DeliveryFilter{TransactionID: ps[7].TransactionID})
		return len(d), err
	})
	cost("failed deliveries", 0, 0, func() (int, error) {
		d, err := s.ListDeliveries(DeliveryFilter{State: DeliveryFailed})
		return len(d), err
	})
}

// TestLeaseInMemory: the lease of an attempt is not written, yet one attempt runs at a time,
// and an attempt cut short by a crash leaves its delivery due at once after the restart.
func TestLeaseInMemory(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := started(t, s, "1", "O", 100, t0)
	r, _ := setState(s, p, StateAccepted, t0)
	id := r.Delivery.ID

	var wg sync.WaitGroup
	var mu sync.Mutex
	began := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.BeginAttempt("1", id, t0, time.Minute); err == nil {
				mu.Lock()
				began++
				mu.Unlock()
			} else if !errors.Is(err, ErrStaleAttempt) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if began != 1 {
		t.Fatalf("%d attempts began at once", began)
	}
	stored, _ := s.GetDelivery("1", id)
	if stored.Attempts != 0 || !stored.NextAttempt.Equal(t0) {
		t.Fatalf("the lease was written: %+v", stored)
	}
	mustCheckIndexes(t, s, "leased")
	_ = s.Close() // the process ends during the attempt

	if s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	due, _ := s.DueDeliveries(t0, 10)
	if len(due) != 1 || due[0].ID != id {
		t.Fatalf("after the restart: due %v", due)
	}
	d, err := s.BeginAttempt("1", id, t0, time.Minute)
	if err != nil || d.Attempts != 1 {
		t.Fatalf("%+v %v", d, err)
	}
	if d, err = s.FinishAttempt("1", id, 1, AttemptResult{At: t0, Delivered: true, HTTPStatus: 204}); err != nil || d.State != DeliveryDelivered || d.Attempts != 1 {
		t.Fatalf("%+v %v", d, err)
	}
	mustCheckIndexes(t, s, "delivered")
}

// TestIndexesSurviveKill9 writes from a child process that is killed with SIGKILL in the
// middle, several times over, and checks the indexes each time the store is opened again.
func TestIndexesSurviveKill9(t *testing.T) {
	if dir := os.Getenv("STORAGE_KILL9_DIR"); dir != "" {
		s, err := Open(dir, Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		seed, _ := strconv.ParseUint(os.Getenv("STORAGE_KILL9_SEED"), 10, 64)
		fmt.Println("writing")
		for {
			churn(t, s, 8, 40, seed)
			seed++
		}
	}
	if testing.Short() {
		t.Skip("kill -9 rounds skipped in -short mode")
	}
	dir := t.TempDir()
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestIndexesSurviveKill9$")
		cmd.Env = append(os.Environ(), "STORAGE_KILL9_DIR="+dir, fmt.Sprint("STORAGE_KILL9_SEED=", round*1000))
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 8)
		_, _ = out.Read(buf) // "writing": the store is open
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()

		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("round %d: reopening after kill -9: %v", round, err)
		}
		n, _ := s.ListPayments(PaymentFilter{Limit: 10})
		err = s.CheckIndexes()
		_ = s.Close()
		if err != nil {
			t.Fatalf("round %d, after kill -9: %v", round, err)
		}
		if len(n) == 0 {
			t.Fatalf("round %d: nothing was written before the kill", round)
		}
	}
}

// Payments are served from memory once written or read; what a caller does with its copy
// changes nothing, and a purged payment is gone from the cache too.
func TestPaymentsCached(t *testing.T) {
	s := openTest(t)
	p := started(t, s, "1", "O", 100, t0)
	if _, err := setState(s, p, StateAccepted, t0); err != nil {
		t.Fatal(err)
	}
	a, err := s.Get("1", p.TransactionID)
	if err != nil {
		t.Fatal(err)
	}
	a.History[0].Reason = "changed by a caller"
	a.Confirmed.Amount = "1"
	before := s.Reads()
	b, err := s.Get("1", p.TransactionID)
	if err != nil || b.History[0].Reason == "changed by a caller" || b.Confirmed.Amount != "100" {
		t.Fatalf("cached copy changed: %+v %v", b, err)
	}
	if _, ok := s.payments.get(Key{SiteID: "1", ID: p.TransactionID}); !ok || s.Reads() != before {
		t.Fatal("a payment is not served from the cache")
	}
	if n, err := s.Purge(t0.Add(91*24*time.Hour), 90*24*time.Hour); err != nil || n != 0 {
		t.Fatalf("purged %d (%v) with a pending delivery", n, err)
	}
	d, _ := s.BeginAttempt("1", b.History[len(b.History)-1].EventID, t0, time.Minute)
	if _, err := s.FinishAttempt("1", d.ID, d.Attempts, AttemptResult{At: t0, Delivered: true}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Purge(t0.Add(91*24*time.Hour), 90*24*time.Hour); err != nil || n != 1 {
		t.Fatalf("purged %d (%v)", n, err)
	}
	if _, err := s.Get("1", p.TransactionID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("purged payment still served: %v", err)
	}
	mustCheckIndexes(t, s, "after purge")
}

// Purge reads the settled payments old enough (and one key past them), in chunks, and keeps
// those with a pending delivery.
func TestPurgeReadsOnlyTheOldEnough(t *testing.T) {
	s := openTest(t)
	keep := 90 * 24 * time.Hour
	var ps []Payment
	var ds []Delivery
	old := 2500
	for i := range old + 5000 {
		at := t0
		if i >= old {
			at = t0.Add(100 * 24 * time.Hour) // recent
		}
		p := Payment{SiteID: "1", TransactionID: s.NewTransactionID(), OrderID: fmt.Sprint("O", i), Amount: 100,
			Currency: "XOF", State: StateExpired, CreatedAt: at, UpdatedAt: at}
		if i < old && i%10 == 0 {
			p.History = []Transition{{From: StatePending, To: StateExpired, At: at, EventID: fmt.Sprintf("e%05d", i)}}
		}
		ps = append(ps, p)
		if i < old && i%10 == 0 {
			ds = append(ds, Delivery{ID: fmt.Sprintf("e%05d", i), SiteID: "1", TransactionID: p.TransactionID,
				Status: StateExpired, State: DeliveryPending, CreatedAt: at, Since: at, NextAttempt: t0.Add(200 * 24 * time.Hour)})
		}
	}
	if err := s.Import(ps, ds); err != nil {
		t.Fatal(err)
	}
	before := s.Reads()
	n, err := s.Purge(t0.Add(keep+time.Hour), keep)
	if err != nil || n != old-len(ds) {
		t.Fatalf("purged %d (%v), want %d", n, err, old-len(ds))
	}
	if read := s.Reads() - before; read > int64(old)+1 {
		t.Fatalf("purge read %d keys for %d candidates", read, old)
	}
	mustCheckIndexes(t, s, "after purge")
}

// The cache never shows an older version than one already returned: concurrent updates and
// reads of one payment see its check count only grow.
func TestCacheNeverGoesBack(t *testing.T) {
	s := openTest(t)
	p := started(t, s, "1", "O", 100, t0)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if _, err := s.Update("1", p.TransactionID, t0, func(p *Payment) error { p.Checks++; return nil }); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			last := -1
			for range 200 {
				s.payments.drop(Key{SiteID: "1", ID: p.TransactionID}) // force reads from disk too
				got, err := s.Get("1", p.TransactionID)
				if err != nil || got.Checks < last {
					t.Errorf("checks went from %d to %d (%v)", last, got.Checks, err)
					return
				}
				last = got.Checks
			}
		})
	}
	wg.Wait()
	if got, _ := s.Get("1", p.TransactionID); got.Checks != 200 {
		t.Fatalf("checks %d, want 200", got.Checks)
	}
}

// Attempts finishing together are committed together; each keeps its own outcome, and a stale
// one among them changes nothing for the others.
func TestFinishesGroupCommitted(t *testing.T) {
	s := openTest(t)
	const n = 64
	ids := make([]string, n)
	for i := range n {
		p := started(t, s, "1", fmt.Sprint("O", i), 100, t0)
		r, err := setState(s, p, StateAccepted, t0)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = r.Delivery.ID
	}
	var wg sync.WaitGroup
	for i, id := range ids {
		d, err := s.BeginAttempt("1", id, t0, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		attempt := d.Attempts
		if i%8 == 0 {
			attempt = 99 // stale
		}
		wg.Go(func() {
			r := AttemptResult{At: t0, Delivered: i%2 == 1, HTTPStatus: 204, NextAttempt: t0.Add(time.Minute)}
			got, err := s.FinishAttempt("1", id, attempt, r)
			switch {
			case i%8 == 0:
				if !errors.Is(err, ErrStaleAttempt) {
					t.Errorf("stale finish of %s: %v", id, err)
				}
			case err != nil:
				t.Errorf("finish of %s: %v", id, err)
			case i%2 == 1 && got.State != DeliveryDelivered, i%2 == 0 && got.State != DeliveryPending:
				t.Errorf("delivery %d: %s", i, got.State)
			}
		})
	}
	wg.Wait()
	for i, id := range ids {
		d, _ := s.GetDelivery("1", id)
		want := DeliveryPending
		if i%2 == 1 {
			want = DeliveryDelivered
		}
		if d.State != want {
			t.Fatalf("delivery %d stored %s, want %s", i, d.State, want)
		}
	}
	mustCheckIndexes(t, s, "after group commits")
}

// groupBehindLeader runs lead, holds its group transaction until every change of others (run
// together, each on a stripe of its own) waits behind it, and returns the sizes of the group
// transactions made.
func groupBehindLeader(t *testing.T, s *Badger, lead func(), others []func()) []int {
	t.Helper()
	var mu sync.Mutex
	var batches []int
	first, queued := make(chan struct{}), make(chan struct{})
	groupCommitting = func(changes int) {
		mu.Lock()
		batches = append(batches, changes)
		leader := len(batches) == 1
		mu.Unlock()
		if leader {
			close(first)
			<-queued
		}
	}
	defer func() { groupCommitting = nil }()
	var wg sync.WaitGroup
	wg.Go(lead)
	<-first
	for _, f := range others {
		wg.Go(f)
	}
	// the deadline only guards against a hang
	for deadline := time.Now().Add(time.Minute); ; {
		s.commits.mu.Lock()
		waiting := len(s.commits.pending)
		s.commits.mu.Unlock()
		if waiting == len(others) {
			break
		}
		if time.Now().After(deadline) {
			close(queued)
			wg.Wait()
			t.Fatalf("%d changes waiting, want %d", waiting, len(others))
		}
		time.Sleep(time.Millisecond)
	}
	close(queued)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return batches
}

// Payment changes arriving together are committed in one transaction, each decided on its own:
// here the first change commits alone while 31 others queue behind it, and those 31 go in one
// transaction in which two payments of one order meet (one ACCEPTED, the other DUPLICATE), a
// forbidden transition and a refusing fn fail alone, and the rest is stored, as a reopen shows.
func TestUpdatesGroupCommitted(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 32
	// payments 2k and 2k+1 are two payments of order k (the second started after the first's
	// reuse window), each on a stripe of its own, so that no change waits for another's stripe
	var ps []Payment
	used := map[int]bool{}
	for k := 0; len(ps) < n; k++ {
		a := started(t, s, "1", fmt.Sprint("O", k), 100, t0)
		b := started(t, s, "1", fmt.Sprint("O", k), 100, t0.Add(20*time.Minute))
		ia, ib := s.locks.index('p', Key{SiteID: "1", ID: a.TransactionID}), s.locks.index('p', Key{SiteID: "1", ID: b.TransactionID})
		if ia == ib || used[ia] || used[ib] {
			continue
		}
		used[ia], used[ib] = true, true
		ps = append(ps, a, b)
	}
	errRefused := errors.New("refused by fn")
	change := func(i int) (UpdateResult, error) {
		return s.Update("1", ps[i].TransactionID, t0.Add(time.Hour), func(p *Payment) error {
			switch {
			case i%8 == 3:
				return errRefused
			case i%8 == 5:
				p.State = StateInit // not from PENDING
			default:
				p.State = StateAccepted
				p.Confirmed = &Confirmation{Amount: "100", Currency: "XOF", Status: "ACCEPTED", PaymentMethod: "OM"}
			}
			return nil
		})
	}
	results := make([]UpdateResult, n)
	errs := make([]error, n)
	var others []func()
	for i := 1; i < n; i++ {
		others = append(others, func() { results[i], errs[i] = change(i) })
	}
	batches := groupBehindLeader(t, s, func() { results[0], errs[0] = change(0) }, others)
	if fmt.Sprint(batches) != "[1 31]" {
		t.Fatalf("group transactions of %v changes, want [1 31]", batches)
	}
	check := func(s *Badger, when string) {
		t.Helper()
		accepted := map[string]int{}
		for i := range n {
			got, err := s.Get("1", ps[i].TransactionID)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case i%8 == 3:
				if !errors.Is(errs[i], errRefused) || got.State != StatePending || len(got.History) != len(ps[i].History) {
					t.Errorf("%s: refused change %d: %v, stored %s", when, i, errs[i], got.State)
				}
			case i%8 == 5:
				if !errors.Is(errs[i], ErrBadTransition) || got.State != StatePending {
					t.Errorf("%s: forbidden change %d: %v, stored %s", when, i, errs[i], got.State)
				}
			default:
				if errs[i] != nil || !results[i].Changed || got.State != results[i].Payment.State || results[i].Delivery == nil {
					t.Errorf("%s: change %d: %v, %+v, stored %s", when, i, errs[i], results[i], got.State)
				}
				if got.State == StateAccepted {
					accepted[got.OrderID]++
				} else if got.State != StateDuplicate {
					t.Errorf("%s: change %d stored %s", when, i, got.State)
				}
				if d, err := s.GetDelivery("1", results[i].Delivery.ID); err != nil || d.Status != got.State {
					t.Errorf("%s: delivery of change %d: %+v %v", when, i, d, err)
				}
			}
		}
		for order, k := range accepted {
			if k != 1 {
				t.Errorf("%s: order %s has %d ACCEPTED payments", when, order, k)
			}
		}
		mustCheckIndexes(t, s, when)
	}
	check(s, "after the group commits")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s, "after a reopen")
}

// A group transaction too big for Badger is committed change by change: two changes of 900 KB
// each fit Badger's batch (15% of the 8 MB memtable) alone, not together, and all three land.
func TestGroupTooBigCommittedOneByOne(t *testing.T) {
	s := openTest(t)
	var ps []Payment
	used := map[int]bool{}
	for k := 0; len(ps) < 4; k++ {
		p := started(t, s, "1", fmt.Sprint("O", k), 100, t0)
		if i := s.locks.index('p', Key{SiteID: "1", ID: p.TransactionID}); !used[i] {
			used[i] = true
			ps = append(ps, p)
		}
	}
	big := strings.Repeat("x", 900<<10) // under Badger's value threshold: in the transaction
	errs := make([]error, len(ps))
	change := func(i int) {
		_, errs[i] = s.Update("1", ps[i].TransactionID, t0.Add(time.Hour), func(p *Payment) error {
			p.State = StateAccepted
			if i == 1 || i == 2 {
				p.PaymentURL = big
			}
			return nil
		})
	}
	batches := groupBehindLeader(t, s, func() { change(0) }, []func(){func() { change(1) }, func() { change(2) }, func() { change(3) }})
	if fmt.Sprint(batches) != "[1 3 1 1 1]" {
		t.Fatalf("group transactions of %v changes, want [1 3 1 1 1]", batches)
	}
	for i, p := range ps {
		got, err := s.Get("1", p.TransactionID)
		if err != nil {
			t.Fatal(err)
		}
		if errs[i] != nil || got.State != StateAccepted || (i == 1 || i == 2) != (got.PaymentURL == big) {
			t.Errorf("change %d: %v, stored %s", i, errs[i], got.State)
		}
	}
	mustCheckIndexes(t, s, "after a group too big")
}

// A replay during an attempt that then gives up (judged on the old round) starts the new
// round: the delivery stays pending, due at once.
func TestReplayDuringAGivingUpAttempt(t *testing.T) {
	s := openTest(t)
	p := started(t, s, "1", "O", 100, t0)
	r, _ := setState(s, p, StateAccepted, t0)
	d, err := s.BeginAttempt("1", r.Delivery.ID, t0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Replay("1", d.ID, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := s.FinishAttempt("1", d.ID, d.Attempts, AttemptResult{At: t0.Add(2 * time.Second), GiveUp: true, Error: "HTTP 500"})
	if err != nil || got.State != DeliveryPending || !got.NextAttempt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("%+v %v", got, err)
	}
	mustCheckIndexes(t, s, "after the replayed attempt")
}

// A store that fails while attempts finish (here: closed under them) loses no delivery: every
// caller of the group gets the error, and each delivery is still pending and due at once when
// the store opens again, to be sent again under its event id.
func TestFinishesDuringAnOutage(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 8 {
		p := started(t, s, "1", fmt.Sprint("O", i), 100, t0)
		r, err := setState(s, p, StateAccepted, t0)
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.BeginAttempt("1", r.Delivery.ID, t0, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	_ = s.Close() // the disk goes away
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			if _, err := s.FinishAttempt("1", id, 1, AttemptResult{At: t0, Delivered: true, HTTPStatus: 204}); err == nil {
				t.Errorf("finish of %s reported stored on a closed store", id)
			}
		})
	}
	wg.Wait()

	if s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	due, err := s.DueDeliveries(t0, 0)
	if err != nil || len(due) != len(ids) {
		t.Fatalf("after the outage: %d due (%v), want %d", len(due), err, len(ids))
	}
	for _, d := range due {
		if d.State != DeliveryPending || d.Attempts != 0 {
			t.Fatalf("%+v", d)
		}
	}
	mustCheckIndexes(t, s, "after the outage")
}
