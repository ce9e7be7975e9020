package storage_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-cinetpay/caddy-cinetpay/internal/pgtest"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage/storetest"
)

// TestPostgresConformance runs the Store conformance suite against PostgreSQL, a fresh schema
// for each subtest.
func TestPostgresConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		s, err := storage.OpenPostgres(pgtest.Fresh(t), storage.PostgresOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func openPG(t *testing.T, dsn string) *storage.Postgres {
	t.Helper()
	s, err := storage.OpenPostgres(dsn, storage.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Instances starting at once on an empty database create the schema once and share one
// transaction id prefix.
func TestPostgresConcurrentStarts(t *testing.T) {
	dsn := pgtest.Fresh(t)
	const n = 6
	stores := make([]*storage.Postgres, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = storage.OpenPostgres(dsn, storage.PostgresOptions{})
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("start %d: %v", i, errs[i])
		}
		defer stores[i].Close()
		if stores[i].Prefix() != stores[0].Prefix() || len(stores[0].Prefix()) != 6 {
			t.Fatalf("prefixes %q and %q", stores[i].Prefix(), stores[0].Prefix())
		}
	}
	// a second database has its own prefix
	if other := openPG(t, pgtest.Fresh(t)); other.Prefix() == stores[0].Prefix() {
		t.Fatalf("two databases share prefix %q", other.Prefix())
	}
	// and a claim made through one instance is seen by the others
	c := storage.Claim{SiteID: "1", OrderID: "O", Amount: 100, Currency: "XOF", Now: time.Now(),
		ReuseWindow: time.Minute, InitGrace: time.Minute}
	r, err := stores[0].Claim(c)
	if err != nil || r.Kind != storage.ClaimNew {
		t.Fatalf("claim: %+v %v", r, err)
	}
	if r2, err := stores[n-1].Claim(c); err != nil || r2.Kind != storage.ClaimBusy || r2.Payment.TransactionID != r.Payment.TransactionID {
		t.Fatalf("claim from another instance: %+v %v", r2, err)
	}
}

// Claims of one order from several instances at once start one payment.
func TestPostgresClaimsAcrossInstances(t *testing.T) {
	dsn := pgtest.Fresh(t)
	a, b := openPG(t, dsn), openPG(t, dsn)
	now := time.Now()
	var mu sync.Mutex
	news := map[string]int{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			r, err := s.Claim(storage.Claim{SiteID: "1", OrderID: fmt.Sprintf("O%d", i%4), Amount: 100, Currency: "XOF",
				Now: now, ReuseWindow: time.Minute, InitGrace: time.Minute})
			if err != nil {
				t.Error(err)
				return
			}
			if r.Kind == storage.ClaimNew {
				mu.Lock()
				news[r.Payment.OrderID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i := range 4 {
		if o := fmt.Sprintf("O%d", i); news[o] != 1 {
			t.Errorf("order %s: %d payments started", o, news[o])
		}
	}
}

// One status call lease at a time across instances; a lease that ran out is taken over.
func TestPostgresCheckLease(t *testing.T) {
	dsn := pgtest.Fresh(t)
	a, b := openPG(t, dsn), openPG(t, dsn)
	now := time.Now()
	r, err := a.Claim(storage.Claim{SiteID: "1", OrderID: "O", Amount: 100, Currency: "XOF", Now: now,
		ReuseWindow: time.Minute, InitGrace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tx := r.Payment.TransactionID
	if ok, err := a.LeaseCheck("1", tx, "a", now, time.Minute); !ok || err != nil {
		t.Fatalf("first lease: %v %v", ok, err)
	}
	if ok, err := b.LeaseCheck("1", tx, "b", now.Add(59*time.Second), time.Minute); ok || err != nil {
		t.Fatalf("second lease during the first: %v %v", ok, err)
	}
	// a leased payment is not listed as due to the others
	if due, _ := b.DueChecks(now.Add(time.Minute-time.Second), 10); len(due) != 0 {
		t.Fatalf("due while leased: %v", due)
	}
	if ok, err := b.LeaseCheck("1", tx, "b", now.Add(61*time.Second), time.Minute); !ok || err != nil {
		t.Fatalf("lease after the first ran out: %v %v", ok, err)
	}
	// a's release after its lease was taken over does not end b's
	if err := a.ReleaseCheck("1", tx, "a"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := a.LeaseCheck("1", tx, "a", now.Add(62*time.Second), time.Minute); ok {
		t.Fatal("a's late release ended b's lease")
	}
	if err := b.ReleaseCheck("1", tx, "b"); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.LeaseCheck("1", tx, "a", now.Add(63*time.Second), time.Minute); !ok || err != nil {
		t.Fatalf("lease after release: %v %v", ok, err)
	}
	if _, err := a.LeaseCheck("1", "NOPE", "a", now, time.Minute); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("lease of an unknown payment: %v", err)
	}
}

// The rate budget is shared: reservations from several instances add up, a burst of one
// second's worth and then perSecond per second.
func TestPostgresReserveCall(t *testing.T) {
	dsn := pgtest.Fresh(t)
	a, b := openPG(t, dsn), openPG(t, dsn)
	const rate = 20
	var waits []time.Duration
	for i := range 2 * rate {
		s := a
		if i%2 == 1 {
			s = b
		}
		w, err := s.ReserveCall("acct", rate)
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, w)
	}
	// the first rate calls are the burst; the next rate wait up to a second, in order
	for i, w := range waits[:rate-1] {
		if w != 0 {
			t.Fatalf("call %d of the burst waits %v", i, w)
		}
	}
	last := waits[len(waits)-1]
	if last < 800*time.Millisecond || last > 1100*time.Millisecond {
		t.Fatalf("call %d waits %v, want about 1 s", len(waits), last)
	}
	for i := rate + 1; i < len(waits); i++ {
		if waits[i] < waits[i-1] {
			t.Fatalf("waits out of order: %v", waits)
		}
	}
	// another account has its own budget
	if w, _ := a.ReserveCall("other", rate); w != 0 {
		t.Fatalf("another account waits %v", w)
	}
}

// A task runs in one instance at a time.
func TestPostgresExclusively(t *testing.T) {
	dsn := pgtest.Fresh(t)
	a, b := openPG(t, dsn), openPG(t, dsn)
	inside := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error)
	go func() {
		ran, err := a.Exclusively("purge", func() error {
			close(inside)
			<-release
			return nil
		})
		if !ran && err == nil {
			err = errors.New("a did not run")
		}
		done <- err
	}()
	<-inside
	if ran, err := b.Exclusively("purge", func() error { return nil }); ran || err != nil {
		t.Fatalf("b ran while a holds the task: %v %v", ran, err)
	}
	if ran, err := b.Exclusively("other", func() error { return nil }); !ran || err != nil {
		t.Fatalf("another task: %v %v", ran, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ran, err := b.Exclusively("purge", func() error { return nil }); !ran || err != nil {
		t.Fatalf("b after a: %v %v", ran, err)
	}
}

// No error and no log line carries the DSN's password.
func TestPostgresSecretsStayOut(t *testing.T) {
	dsn := pgtest.Server(t)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "s3cr3t-Pa55word"
	bad := fmt.Sprintf("postgres://nobody-here:%s@%s:%d/%s?sslmode=disable&connect_timeout=2", secret, cfg.Host, cfg.Port, cfg.Database)
	_, err = storage.OpenPostgres(bad, storage.PostgresOptions{Timeout: 2 * time.Second})
	if err == nil {
		t.Fatal("a wrong user connected")
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("the error shows the password: %v", err)
	}
	if got := storage.RedactDSN(bad); strings.Contains(got, secret) || !strings.Contains(got, "nobody-here@") {
		t.Fatalf("RedactDSN: %s", got)
	}
	if _, err := storage.OpenPostgres("postgres://u:"+secret+"@host:notaport/db", storage.PostgresOptions{}); err == nil ||
		strings.Contains(err.Error(), secret) {
		t.Fatalf("bad DSN: %v", err)
	}
}

// The database goes away under the money path: an Update and an attempt's finish fail with an
// error (so nothing is acknowledged) and write nothing; when it is back,
// the same store reconnects by itself, the payment is as it was and the delivery is still
// pending, due again when its lease ends.
func TestPostgresOutage(t *testing.T) {
	pg := pgtest.StartOwn(t)
	s, err := storage.OpenPostgres(pg.DSN(), storage.PostgresOptions{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Now().Truncate(time.Millisecond)
	c, err := s.Claim(storage.Claim{SiteID: "1", OrderID: "O", Amount: 100, Currency: "XOF", Now: t0,
		ReuseWindow: time.Minute, InitGrace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tx := c.Payment.TransactionID
	set := func(st storage.State) (storage.UpdateResult, error) {
		return s.Update("1", tx, t0, func(p *storage.Payment) error { p.State = st; return nil })
	}
	if _, err := set(storage.StatePending); err != nil {
		t.Fatal(err)
	}
	r, err := set(storage.StateRefused)
	if err != nil || r.Delivery == nil {
		t.Fatalf("refusal: %+v %v", r, err)
	}
	d, err := s.BeginAttempt("1", r.Delivery.ID, t0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	pg.Stop()
	if _, err := set(storage.StateAccepted); err == nil {
		t.Fatal("an update succeeded with the database stopped")
	}
	if _, err := s.FinishAttempt("1", d.ID, d.Attempts, storage.AttemptResult{At: t0, Delivered: true}); err == nil {
		t.Fatal("a finish succeeded with the database stopped")
	}
	if _, err := s.Get("1", tx); err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a read during the outage: %v", err)
	}
	pg.Start()

	// back: reconnected, nothing of the failed writes stored
	var p storage.Payment
	deadline := time.Now().Add(30 * time.Second)
	for p, err = s.Get("1", tx); err != nil && time.Now().Before(deadline); p, err = s.Get("1", tx) {
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || p.State != storage.StateRefused {
		t.Fatalf("after the outage: %s %v", p.State, err)
	}
	got, err := s.GetDelivery("1", d.ID)
	if err != nil || got.State != storage.DeliveryPending || got.Attempts != 0 {
		t.Fatalf("the delivery after the outage: %+v %v", got, err)
	}
	if due, _ := s.DueDeliveries(t0.Add(30*time.Second), 10); len(due) != 0 {
		t.Fatalf("due during its lease: %v", due)
	}
	if due, _ := s.DueDeliveries(t0.Add(61*time.Second), 10); len(due) != 1 || due[0].ID != d.ID {
		t.Fatalf("not due after its lease: %v", due)
	}
	// the finish, made again after the outage, is taken
	if f, err := s.FinishAttempt("1", d.ID, d.Attempts, storage.AttemptResult{At: t0, Delivered: true}); err != nil ||
		f.State != storage.DeliveryDelivered {
		t.Fatalf("finish after the outage: %+v %v", f, err)
	}
}
