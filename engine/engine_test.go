package engine

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// fakeProvider starts every payment and answers status calls with answer (or err).
type fakeProvider struct {
	mu       sync.Mutex
	startErr error
	answer   *Answer
	err      error
	gate     chan struct{} // if set, Status waits for it
	statuses atomic.Int32
}

func (f *fakeProvider) Start(_ context.Context, p *storage.Payment, _ *Intent) (*Started, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		return nil, f.startErr
	}
	return &Started{PaymentURL: "https://pay.test/" + p.TransactionID, PaymentToken: "tok"}, nil
}

func (f *fakeProvider) Status(context.Context, *storage.Payment) (*Answer, error) {
	f.statuses.Add(1)
	f.mu.Lock()
	gate, a, err := f.gate, f.answer, f.err
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return a, err
}

func (f *fakeProvider) Validate(in *Intent) error {
	if in.Amount <= 0 {
		return errors.New("Cinetpay-Amount: must be positive")
	}
	return nil
}

func (f *fakeProvider) ReadNotice(http.Header, []byte) (*Notice, error) {
	return nil, ErrMalformedNotice
}
func (f *fakeProvider) NoticeHeaders() []string                   { return []string{"Content-Type"} }
func (f *fakeProvider) Verify(*Notice) error                      { return nil }
func (f *fakeProvider) VerifyFor(*Notice, *storage.Payment) error { return nil }
func (f *fakeProvider) PaymentURLAllowed(string) bool             { return true }

func (f *fakeProvider) set(a *Answer, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer, f.err = a, err
}

// shop records the deliveries the engine makes.
type shop struct {
	mu   sync.Mutex
	got  []storage.Delivery
	fail int
}

func (s *shop) deliver(_ context.Context, d *storage.Delivery) (int, time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return 500, 0, nil
	}
	s.got = append(s.got, *d)
	return 204, 0, nil
}

func (s *shop) deliveries() []storage.Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]storage.Delivery(nil), s.got...)
}

func newTestEngine(t *testing.T) (*Engine, *Site, *fakeProvider, *shop) {
	t.Helper()
	st, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := New(st, nil)
	t.Cleanup(func() { _ = e.Close() })
	fp, sh := &fakeProvider{}, &shop{}
	s := &Site{ID: "123456", Provider: fp, Environment: "sandbox", Timeout: 2 * time.Second, RateLimit: 100,
		Deliver: sh.deliver, DeliveryTimeout: time.Second}
	e.Register(s)
	return e, s, fp, sh
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A payment from start to delivery through the engine alone, with a real store on disk.
func TestEngineStartCheckDeliver(t *testing.T) {
	e, s, fp, sh := newTestEngine(t)
	in := &Intent{OrderID: "o1", Amount: 1000, Currency: "XOF"}
	r := e.Start(s, in)
	if r.Kind != StartNew || r.Payment.State != storage.StatePending || r.Payment.PaymentURL == "" {
		t.Fatalf("start: %+v", r)
	}
	if again := e.Start(s, in); again.Kind != StartReused || again.Payment.TransactionID != r.Payment.TransactionID {
		t.Fatalf("resubmit: %+v", again)
	}
	txid := r.Payment.TransactionID

	// many callers of a pending payment share one status call
	fp.set(&Answer{Verdict: Pending, Summary: "waiting"}, nil)
	gate := make(chan struct{})
	fp.mu.Lock()
	fp.gate = gate
	fp.mu.Unlock()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { _, _ = e.Check(s, txid, PrioNotify) })
	}
	waitUntil(t, "the status call", func() bool { return fp.statuses.Load() == 1 })
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	fp.mu.Lock()
	fp.gate = nil
	fp.mu.Unlock()
	if n := fp.statuses.Load(); n != 1 {
		t.Fatalf("%d status calls for 20 concurrent checks", n)
	}

	// accepted: stored with its delivery, delivered once
	fp.set(&Answer{Verdict: Accepted, AmountConfirmed: true, Summary: "code 00",
		Confirmed: storage.Confirmation{Amount: "1000", Currency: "XOF", Status: "ACCEPTED"}}, nil)
	res, err := e.Check(s, txid, PrioNotify)
	if err != nil || res.Payment.State != storage.StateAccepted || res.Delivery == nil {
		t.Fatalf("accepted: %+v %v", res, err)
	}
	waitUntil(t, "the delivery", func() bool { return len(sh.deliveries()) == 1 })
	if d := sh.deliveries()[0]; d.ID != res.Delivery.ID || d.Status != storage.StateAccepted || d.Amount != "1000" {
		t.Fatalf("delivery %+v", d)
	}
	// final: no more status calls, no second delivery; the order is paid
	before := fp.statuses.Load()
	if res, err := e.Check(s, txid, PrioNotify); err != nil || res.Changed || fp.statuses.Load() != before {
		t.Fatalf("check of a final payment: %+v %v", res, err)
	}
	if paid := e.Start(s, in); paid.Kind != StartPaid {
		t.Fatalf("start of a paid order: %+v", paid)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(sh.deliveries()); n != 1 {
		t.Fatalf("%d deliveries", n)
	}
}

// Start outcomes: an invalid intent stores nothing; refused and rate limited end FAILED,
// anything else UNKNOWN (re-checked).
func TestEngineStartOutcomes(t *testing.T) {
	e, s, fp, _ := newTestEngine(t)
	if r := e.Start(s, &Intent{OrderID: "bad", Currency: "XOF"}); r.Kind != StartInvalid || r.Err == nil {
		t.Fatalf("invalid intent: %+v", r)
	}
	if ps, _ := e.Store().ListPayments(storage.PaymentFilter{SiteID: s.ID, OrderID: "bad"}); len(ps) != 0 {
		t.Fatalf("an invalid intent was stored: %+v", ps)
	}
	for i, c := range []struct {
		err   error
		kind  StartKind
		state storage.State
	}{
		{&StartError{Outcome: OutcomeRefused, Err: errors.New("609")}, StartRefused, storage.StateFailed},
		{&StartError{Outcome: OutcomeRateLimited, RetryAfter: 3 * time.Second, Err: errors.New("429")}, StartRateLimited, storage.StateFailed},
		{errors.New("timeout"), StartUnknown, storage.StateUnknown},
	} {
		fp.mu.Lock()
		fp.startErr = c.err
		fp.mu.Unlock()
		r := e.Start(s, &Intent{OrderID: "o" + string(rune('a'+i)), Amount: 1000, Currency: "XOF"})
		if r.Kind != c.kind || r.Payment.State != c.state {
			t.Errorf("%v: %+v", c.err, r)
		}
		if c.kind == StartRateLimited && r.RetryAfter != 3*time.Second {
			t.Errorf("retry after %v", r.RetryAfter)
		}
		if c.state == storage.StateUnknown && r.Payment.NextCheck.IsZero() {
			t.Errorf("unknown start not re-checked: %+v", r.Payment)
		}
	}
}

// A check without a usable answer changes nothing and reports ErrNoAnswer; the payment is
// retried within a minute.
func TestEngineNoAnswer(t *testing.T) {
	e, s, fp, _ := newTestEngine(t)
	r := e.Start(s, &Intent{OrderID: "o1", Amount: 1000, Currency: "XOF"})
	fp.set(nil, errors.New("HTTP 503"))
	res, err := e.Check(s, r.Payment.TransactionID, PrioNotify)
	if !errors.Is(err, ErrNoAnswer) || res.Changed || res.Payment.State != storage.StatePending {
		t.Fatalf("%+v %v", res, err)
	}
	if next := res.Payment.NextCheck.Sub(Now()); next > NoAnswerMax {
		t.Fatalf("next check in %v", next)
	}
}

// brokenBudget is a store shared by processes whose rate budget cannot be read (its database
// fails on that query alone).
type brokenBudget struct {
	storage.Store
	reserves atomic.Int32
	ok       atomic.Bool // the budget reads well
}

func (b *brokenBudget) LeaseCheck(string, string, string, time.Time, time.Duration) (bool, error) {
	return true, nil
}
func (b *brokenBudget) ReleaseCheck(string, string, string) error { return nil }
func (b *brokenBudget) ReserveCall(string, int) (time.Duration, error) {
	b.reserves.Add(1)
	if b.ok.Load() {
		return 0, nil
	}
	return 0, errors.New("conn closed")
}
func (b *brokenBudget) Exclusively(_ string, fn func() error) (bool, error) { return true, fn() }

// A start whose shared rate budget cannot be read is a store error, not a rate limit: CinetPay
// is not called, the payment is FAILED with a reason that says so, and the log has the cause. A
// status call in that case is not made either, and its error names the cause.
func TestStartWithTheBudgetUnreadable(t *testing.T) {
	st, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := &brokenBudget{Store: st}
	e := New(store, nil)
	t.Cleanup(func() { _ = e.Close() })
	core, logs := observer.New(zap.InfoLevel)
	fp := &fakeProvider{}
	s := &Site{ID: "123456", Provider: fp, Environment: "sandbox", Timeout: 2 * time.Second, RateLimit: 100,
		Deliver: (&shop{}).deliver, DeliveryTimeout: time.Second, Logger: zap.New(core)}
	e.Register(s)

	r := e.Start(s, &Intent{OrderID: "o1", Amount: 1000, Currency: "XOF"})
	h := r.Payment.History
	if r.Kind != StartStoreError || r.Payment.State != storage.StateFailed || len(h) == 0 || h[len(h)-1].Reason != "rate budget unreadable" {
		t.Fatalf("start with the budget unreadable: kind %v, payment %s, history %+v", r.Kind, r.Payment.State, h)
	}
	if store.reserves.Load() != 1 {
		t.Fatalf("%d reservations, want 1", store.reserves.Load())
	}
	stored, err := st.Get(s.ID, r.Payment.TransactionID)
	if err != nil || stored.State != storage.StateFailed {
		t.Fatalf("stored: %s, %v", stored.State, err)
	}
	got := logs.FilterMessageSnippet("shared rate budget").All()
	if len(got) != 1 || got[0].Level != zap.ErrorLevel || !strings.Contains(got[0].ContextMap()["error"].(string), "conn closed") {
		t.Fatalf("log: %+v", got)
	}

	store.ok.Store(true)
	pending := e.Start(s, &Intent{OrderID: "o2", Amount: 1000, Currency: "XOF"})
	if pending.Kind != StartNew {
		t.Fatalf("start with the budget readable: %+v", pending)
	}
	store.ok.Store(false)
	fp.set(&Answer{Verdict: Accepted, Summary: "code 00"}, nil)
	res, err := e.Check(s, pending.Payment.TransactionID, PrioNotify)
	if !errors.Is(err, ErrNoAnswer) || !strings.Contains(err.Error(), "could not be read") ||
		strings.Contains(err.Error(), "waiting for the rate limit") || res.Payment.State != storage.StatePending {
		t.Fatalf("check with the budget unreadable: %s, %v", res.Payment.State, err)
	}
	if n := fp.statuses.Load(); n != 0 {
		t.Fatalf("%d status calls made without the budget", n)
	}
}

// An operator's replay while an attempt is in flight (the shop has the request, its answer is
// on the way) is a delivery after the replay: the attempt finishes, delivered, and another is
// made at once under the same event id.
func TestReplayDuringAnAttemptDeliversAgain(t *testing.T) {
	noTicks(t) // the delivery after the replay is not left to the next tick
	e, s, fp, sh := newTestEngine(t)
	gate, inFlight := make(chan struct{}), make(chan struct{}, 1)
	var calls atomic.Int32
	s.Deliver = func(ctx context.Context, d *storage.Delivery) (int, time.Duration, error) {
		if calls.Add(1) == 1 {
			inFlight <- struct{}{}
			<-gate
		}
		return sh.deliver(ctx, d)
	}
	r := e.Start(s, &Intent{OrderID: "o1", Amount: 1000, Currency: "XOF"})
	fp.set(&Answer{Verdict: Accepted, AmountConfirmed: true, Summary: "code 00",
		Confirmed: storage.Confirmation{Amount: "1000", Currency: "XOF", Status: "ACCEPTED"}}, nil)
	res, err := e.Check(s, r.Payment.TransactionID, PrioNotify)
	if err != nil || res.Delivery == nil {
		t.Fatalf("accepted: %+v %v", res, err)
	}
	<-inFlight
	if _, err := e.Replay(s.ID, res.Delivery.ID); err != nil {
		t.Fatal(err)
	}
	close(gate)
	waitUntil(t, "the delivery after the replay", func() bool { return len(sh.deliveries()) == 2 })
	got := sh.deliveries()
	if got[0].ID != got[1].ID {
		t.Fatalf("the replay changed the event id: %s, %s", got[0].ID, got[1].ID)
	}
	waitUntil(t, "the delivery delivered", func() bool {
		d, err := e.Store().GetDelivery(s.ID, res.Delivery.ID)
		return err == nil && d.State == storage.DeliveryDelivered
	})
	time.Sleep(100 * time.Millisecond)
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d attempts, want 2", n)
	}
}
