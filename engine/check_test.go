package engine

import (
	"errors"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Unit tests of the pure decisions: what a status answer means, when to check again, when to
// retry a delivery.

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// answer00 is an answer that confirms an amount (as Checkout v2's do), in canonical form.
func answer00(status, amount, currency string) *Answer {
	v := map[string]Verdict{"ACCEPTED": Accepted, "REFUSED": Refused, "EXPIRED": Expired}[status]
	return &Answer{Verdict: v, AmountConfirmed: true, Summary: "status " + status,
		Confirmed: storage.Confirmation{Status: status, Amount: amount, Currency: currency, PaymentMethod: "OM"}}
}

// grace is the start grace of the tests' site.
const grace = time.Minute

// apply is applyCheck with the tests' start grace.
func apply(p *storage.Payment, ans *Answer, err error, at time.Time) {
	applyCheck(p, ans, err, at, grace)
}

func pending() storage.Payment {
	return storage.Payment{Amount: 1000, Currency: "XOF", State: storage.StatePending, CreatedAt: t0,
		NextCheck: t0.Add(FirstCheck)}
}

func TestApplyCheckDecisions(t *testing.T) {
	for _, c := range []struct {
		name  string
		from  storage.State
		cr    *Answer
		err   error
		want  storage.State
		check bool // NextCheck set
	}{
		{"accepted", storage.StatePending, answer00("ACCEPTED", "1000", "XOF"), nil, storage.StateAccepted, false},
		{"other amount", storage.StatePending, answer00("ACCEPTED", "995", "XOF"), nil, storage.StateMismatch, false},
		{"other currency", storage.StatePending, answer00("ACCEPTED", "1000", "XAF"), nil, storage.StateMismatch, false},
		{"amount not an integer", storage.StatePending, answer00("ACCEPTED", "1000.5", "XOF"), nil, storage.StateMismatch, false},
		{"refused", storage.StatePending, answer00("REFUSED", "1000", "XOF"), nil, storage.StateRefused, true},
		{"waiting", storage.StatePending, answer00("WAITING_FOR_CUSTOMER", "1000", "XOF"), nil, storage.StatePending, true},
		{"unknown status", storage.StatePending, answer00("SOMETHING_NEW", "1000", "XOF"), nil, storage.StatePending, true},
		{"no answer", storage.StatePending, nil, errors.New("timeout"), storage.StatePending, true},
		{"unknown start, waiting", storage.StateUnknown, answer00("WAITING_FOR_CUSTOMER", "1000", "XOF"), nil, storage.StatePending, true},
		{"unknown start, accepted", storage.StateUnknown, answer00("ACCEPTED", "1000", "XOF"), nil, storage.StateAccepted, false},
		{"late success", storage.StateRefused, answer00("ACCEPTED", "1000", "XOF"), nil, storage.StateAccepted, false},
		{"expired, then success", storage.StateExpired, answer00("ACCEPTED", "1000", "XOF"), nil, storage.StateAccepted, false},
		{"expired, refused: no change", storage.StateExpired, answer00("REFUSED", "1000", "XOF"), nil, storage.StateExpired, false},
	} {
		p := pending()
		p.State = c.from
		at := t0.Add(time.Minute) // the first check is due
		apply(&p, c.cr, c.err, at)
		if p.State != c.want || p.NextCheck.IsZero() == c.check {
			t.Errorf("%s: %s, next %v", c.name, p.State, p.NextCheck)
		}
		if !storage.CanTransition(c.from, p.State) && p.State != c.from {
			t.Errorf("%s: %s → %s is not allowed", c.name, c.from, p.State)
		}
		if p.State == storage.StateMismatch && (p.Confirmed == nil || p.Confirmed.Amount == "") {
			t.Errorf("%s: confirmation not kept", c.name)
		}
	}
}

func TestPendingScheduleAndExpiry(t *testing.T) {
	p := pending()
	at := p.NextCheck
	var gaps []time.Duration
	for p.State == storage.StatePending {
		apply(&p, answer00("WAITING_FOR_CUSTOMER", "1000", "XOF"), nil, at)
		if p.State != storage.StatePending {
			break
		}
		gaps = append(gaps, p.NextCheck.Sub(at))
		at = p.NextCheck
		if len(gaps) > 100 {
			t.Fatal("never expires")
		}
	}
	if p.State != storage.StateExpired || at.Sub(t0) != PendingWindow {
		t.Fatalf("%s at %v after start", p.State, at.Sub(t0))
	}
	if FirstCheck > time.Minute || gaps[0] > 2*time.Minute {
		t.Fatalf("first re-checks too late: %v, %v", FirstCheck, gaps[0])
	}
	for i := 1; i < len(gaps)-1; i++ {
		if gaps[i] < gaps[i-1] && gaps[i] != pendingBackoff[len(pendingBackoff)-1] {
			t.Fatalf("gaps shrink: %v", gaps)
		}
	}
	// a check that was not due (a notification) leaves the schedule alone
	q := pending()
	apply(&q, answer00("WAITING_FOR_CUSTOMER", "1000", "XOF"), nil, t0.Add(time.Second))
	if !q.NextCheck.Equal(t0.Add(FirstCheck)) || q.Checks != 0 {
		t.Fatalf("not-due check moved the schedule: %+v", q)
	}
}

func TestRefusedRecheckSchedule(t *testing.T) {
	p := pending()
	refusedAt := t0.Add(time.Minute)
	apply(&p, answer00("REFUSED", "1000", "XOF"), nil, refusedAt)
	p.History = []storage.Transition{{From: storage.StatePending, To: storage.StateRefused, At: refusedAt}}
	if p.State != storage.StateRefused || !p.NextCheck.Equal(refusedAt.Add(RefusedFirst)) {
		t.Fatalf("%+v", p)
	}
	// an outage at the 1 h check: tried again within a minute, the 24 h check stays
	apply(&p, nil, errors.New("503"), p.NextCheck)
	if !p.NextCheck.Equal(refusedAt.Add(RefusedFirst + NoAnswerFirst)) {
		t.Fatalf("after an outage: %v", p.NextCheck.Sub(refusedAt))
	}
	apply(&p, answer00("REFUSED", "1000", "XOF"), nil, p.NextCheck)
	if !p.NextCheck.Equal(refusedAt.Add(RefusedSecond)) {
		t.Fatalf("second check at %v", p.NextCheck.Sub(refusedAt))
	}
	apply(&p, answer00("REFUSED", "1000", "XOF"), nil, p.NextCheck)
	if !p.NextCheck.IsZero() || p.State != storage.StateRefused {
		t.Fatalf("after 24 h: %+v", p)
	}
}

// A check without a usable answer is tried again within a minute, whatever caused it and
// whatever the schedule said, and does not move the backoff along.
func TestNoAnswerRetriedWithinAMinute(t *testing.T) {
	fail := errors.New("HTTP 503")
	// a notification's check (not due) fails: the next check comes within a minute, not at the
	// scheduled step hours away
	p := pending()
	p.Checks, p.NextCheck = 9, t0.Add(5*time.Hour)
	at := t0.Add(2 * time.Hour)
	apply(&p, nil, fail, at)
	if p.State != storage.StatePending || !p.NextCheck.Equal(at.Add(NoAnswerFirst)) || p.Checks != 9 ||
		!p.NoAnswerSince.Equal(at) || !p.LastAnswer.IsZero() {
		t.Fatalf("after a failed notification check: %+v", p)
	}
	// the outage goes on: retries spread out to one a minute, never later
	var gaps []time.Duration
	for range 6 {
		next := p.NextCheck
		apply(&p, nil, fail, next)
		gaps = append(gaps, p.NextCheck.Sub(next))
	}
	for i, g := range gaps {
		if g < NoAnswerFirst || g > time.Minute || (i > 0 && g < gaps[i-1]) {
			t.Fatalf("retry gaps %v", gaps)
		}
	}
	if gaps[len(gaps)-1] != NoAnswerMax || p.Checks != 9 {
		t.Fatalf("retry gaps %v, checks %d", gaps, p.Checks)
	}
	// CinetPay answers again: the run ends, the backoff resumes one step further
	at = p.NextCheck
	apply(&p, answer00("WAITING_FOR_CUSTOMER", "1000", "XOF"), nil, at)
	if !p.NoAnswerSince.IsZero() || !p.LastAnswer.Equal(at) || p.Checks != 10 ||
		!p.NextCheck.Equal(at.Add(pendingBackoff[10])) {
		t.Fatalf("after the outage: %+v", p)
	}

	// an earlier check already scheduled stays
	q := pending()
	apply(&q, nil, fail, t0.Add(time.Second))
	if !q.NextCheck.Equal(t0.Add(FirstCheck)) && !q.NextCheck.Equal(t0.Add(time.Second+NoAnswerFirst)) {
		t.Fatalf("first check moved to %v", q.NextCheck.Sub(t0))
	}
	if q.NextCheck.After(t0.Add(time.Second + NoAnswerFirst)) {
		t.Fatalf("no-answer retry later than %v: %v", NoAnswerFirst, q.NextCheck.Sub(t0))
	}

	// refused and expired payments: a failed check (a notification's, or the one a notification
	// stored) is retried within a minute, for NoAnswerWindow
	for _, st := range []storage.State{storage.StateRefused, storage.StateExpired} {
		r := pending()
		r.State, r.NextCheck = st, time.Time{}
		r.History = []storage.Transition{{From: storage.StatePending, To: st, At: t0}}
		at := t0.Add(10 * 24 * time.Hour)
		apply(&r, nil, fail, at)
		if r.State != st || !r.NextCheck.Equal(at.Add(NoAnswerFirst)) {
			t.Fatalf("%s, failed check: %+v", st, r)
		}
		at = r.NoAnswerSince.Add(NoAnswerWindow)
		apply(&r, nil, fail, at)
		if !r.NextCheck.IsZero() {
			t.Fatalf("%s retried past the window: %v", st, r.NextCheck)
		}
		// a usable answer leaves it as it is, with nothing more scheduled
		apply(&r, answer00("REFUSED", "1000", "XOF"), nil, at.Add(time.Minute))
		if r.State != st || !r.NextCheck.IsZero() || !r.NoAnswerSince.IsZero() {
			t.Fatalf("%s after a usable answer: %+v", st, r)
		}
	}
}

// An answer that confirms an amount is ACCEPTED only for the integer asked, in the currency
// asked; one that confirms none (an API whose status has no amount) is ACCEPTED with the
// amount started.
func TestAcceptedAmountRules(t *testing.T) {
	for amount, want := range map[string]storage.State{"1000": storage.StateAccepted, "995": storage.StateMismatch,
		"1000.5": storage.StateMismatch, "": storage.StateMismatch, "01000": storage.StateMismatch, "n/a": storage.StateMismatch} {
		p := pending()
		apply(&p, answer00("ACCEPTED", amount, "XOF"), nil, t0.Add(time.Minute))
		if p.State != want {
			t.Errorf("confirmed %q: %s, want %s", amount, p.State, want)
		}
	}
	p := pending()
	apply(&p, &Answer{Verdict: Accepted, Confirmed: storage.Confirmation{Status: "SUCCESS"}}, nil, t0.Add(time.Minute))
	if p.State != storage.StateAccepted || p.Result().Amount != "1000" || p.Result().Currency != "XOF" {
		t.Fatalf("no amount confirmed: %s, result %+v", p.State, p.Result())
	}
}

// CinetPay not knowing a transaction settles only an UNKNOWN start older than the grace (it
// was never charged: FAILED); otherwise it is no usable answer.
func TestNotFound(t *testing.T) {
	nf := &Answer{Verdict: NotFound, Summary: "code 404"}
	p := pending()
	p.State = storage.StateUnknown
	apply(&p, nf, nil, t0.Add(grace/2))
	if p.State != storage.StateUnknown || p.NextCheck.IsZero() || p.NoAnswerSince.IsZero() {
		t.Fatalf("inside the grace: %+v", p)
	}
	apply(&p, nf, nil, t0.Add(grace))
	if p.State != storage.StateFailed || !p.NextCheck.IsZero() || !storage.CanTransition(storage.StateUnknown, storage.StateFailed) {
		t.Fatalf("after the grace: %+v", p)
	}
	q := pending()
	apply(&q, nf, nil, t0.Add(time.Hour))
	if q.State != storage.StatePending {
		t.Fatalf("pending payment not found: %s", q.State)
	}
}

// An answer saying EXPIRED expires an open payment; a refused one stays refused.
func TestExpiredVerdict(t *testing.T) {
	p := pending()
	apply(&p, answer00("EXPIRED", "", ""), nil, t0.Add(time.Minute))
	if p.State != storage.StateExpired || !p.NextCheck.IsZero() {
		t.Fatalf("%+v", p)
	}
	r := pending()
	r.State = storage.StateRefused
	apply(&r, answer00("EXPIRED", "", ""), nil, t0.Add(time.Minute))
	if r.State != storage.StateRefused {
		t.Fatalf("refused → %s", r.State)
	}
}

func TestDeliveryBackoff(t *testing.T) {
	for range 100 {
		if d := NextDelay(1, 0); d < FirstRetry/2 || d > FirstRetry {
			t.Fatalf("first retry after %v", d)
		}
		for n := 1; n < 40; n++ {
			if d := NextDelay(n, 0); d <= 0 || d > MaxBackoff {
				t.Fatalf("attempt %d: %v", n, d)
			}
		}
	}
	if d := NextDelay(3, 10*time.Hour); d != MaxRetryAfter {
		t.Fatalf("Retry-After not clamped: %v", d)
	}
	if d := NextDelay(3, time.Millisecond); d != MinRetryAfter {
		t.Fatalf("Retry-After not clamped: %v", d)
	}
	// at least 3 days of attempts before giving up
	var total time.Duration
	n := 0
	for total < GiveUpAfter {
		n++
		total += NextDelay(n, 0)
	}
	if n < 10 || GiveUpAfter < 72*time.Hour {
		t.Fatalf("%d attempts in %v", n, total)
	}
}
