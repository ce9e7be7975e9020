package caddycinetpay

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpay"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Unit tests of the pure decisions: what a /check answer means, when to check again, when to
// retry a delivery.

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func answer00(status, amount, currency string) *cinetpay.CheckResult {
	code := "00"
	if status == "REFUSED" {
		code = "627"
	} else if status != "ACCEPTED" {
		code = "662"
	}
	return &cinetpay.CheckResult{Code: code, Data: &cinetpay.PaymentData{Status: status, Amount: amount, Currency: currency, PaymentMethod: "OM"}}
}

func pending() storage.Payment {
	return storage.Payment{Amount: 1000, Currency: "XOF", State: storage.StatePending, CreatedAt: t0,
		NextCheck: t0.Add(firstCheck)}
}

func TestApplyCheckDecisions(t *testing.T) {
	for _, c := range []struct {
		name  string
		from  storage.State
		cr    *cinetpay.CheckResult
		err   error
		want  storage.State
		check bool // NextCheck set
	}{
		{"accepted", storage.StatePending, answer00("ACCEPTED", "1000", "XOF"), nil, storage.StateAccepted, false},
		{"accepted as 1000.00", storage.StatePending, answer00("ACCEPTED", "1000.00", "XOF"), nil, storage.StateAccepted, false},
		{"other amount", storage.StatePending, answer00("ACCEPTED", "995", "XOF"), nil, storage.StateMismatch, false},
		{"other currency", storage.StatePending, answer00("ACCEPTED", "1000", "XAF"), nil, storage.StateMismatch, false},
		{"amount not an integer", storage.StatePending, answer00("ACCEPTED", "1000.5", "XOF"), nil, storage.StateMismatch, false},
		{"accepted but code 662", storage.StatePending, &cinetpay.CheckResult{Code: "662", Data: &cinetpay.PaymentData{Status: "ACCEPTED", Amount: "1000", Currency: "XOF"}}, nil, storage.StatePending, true},
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
		applyCheck(&p, c.cr, c.err, at)
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
		applyCheck(&p, answer00("WAITING_FOR_CUSTOMER", "1000", "XOF"), nil, at)
		if p.State != storage.StatePending {
			break
		}
		gaps = append(gaps, p.NextCheck.Sub(at))
		at = p.NextCheck
		if len(gaps) > 100 {
			t.Fatal("never expires")
		}
	}
	if p.State != storage.StateExpired || at.Sub(t0) != pendingWindow {
		t.Fatalf("%s at %v after start", p.State, at.Sub(t0))
	}
	if firstCheck > time.Minute || gaps[0] > 2*time.Minute {
		t.Fatalf("first re-checks too late: %v, %v", firstCheck, gaps[0])
	}
	for i := 1; i < len(gaps)-1; i++ {
		if gaps[i] < gaps[i-1] && gaps[i] != pendingBackoff[len(pendingBackoff)-1] {
			t.Fatalf("gaps shrink: %v", gaps)
		}
	}
	// a check that was not due (a notification) leaves the schedule alone
	q := pending()
	applyCheck(&q, answer00("WAITING_FOR_CUSTOMER", "1000", "XOF"), nil, t0.Add(time.Second))
	if !q.NextCheck.Equal(t0.Add(firstCheck)) || q.Checks != 0 {
		t.Fatalf("not-due check moved the schedule: %+v", q)
	}
}

func TestRefusedRecheckSchedule(t *testing.T) {
	p := pending()
	refusedAt := t0.Add(time.Minute)
	applyCheck(&p, answer00("REFUSED", "1000", "XOF"), nil, refusedAt)
	p.History = []storage.Transition{{From: storage.StatePending, To: storage.StateRefused, At: refusedAt}}
	if p.State != storage.StateRefused || !p.NextCheck.Equal(refusedAt.Add(refusedFirst)) {
		t.Fatalf("%+v", p)
	}
	// an outage at the 1 h check: tried again within a minute, the 24 h check stays
	applyCheck(&p, nil, errors.New("503"), p.NextCheck)
	if !p.NextCheck.Equal(refusedAt.Add(refusedFirst + noAnswerFirst)) {
		t.Fatalf("after an outage: %v", p.NextCheck.Sub(refusedAt))
	}
	applyCheck(&p, answer00("REFUSED", "1000", "XOF"), nil, p.NextCheck)
	if !p.NextCheck.Equal(refusedAt.Add(refusedSecond)) {
		t.Fatalf("second check at %v", p.NextCheck.Sub(refusedAt))
	}
	applyCheck(&p, answer00("REFUSED", "1000", "XOF"), nil, p.NextCheck)
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
	applyCheck(&p, nil, fail, at)
	if p.State != storage.StatePending || !p.NextCheck.Equal(at.Add(noAnswerFirst)) || p.Checks != 9 ||
		!p.NoAnswerSince.Equal(at) || !p.LastAnswer.IsZero() {
		t.Fatalf("after a failed notification check: %+v", p)
	}
	// the outage goes on: retries spread out to one a minute, never later
	var gaps []time.Duration
	for range 6 {
		next := p.NextCheck
		applyCheck(&p, nil, fail, next)
		gaps = append(gaps, p.NextCheck.Sub(next))
	}
	for i, g := range gaps {
		if g < noAnswerFirst || g > time.Minute || (i > 0 && g < gaps[i-1]) {
			t.Fatalf("retry gaps %v", gaps)
		}
	}
	if gaps[len(gaps)-1] != noAnswerMax || p.Checks != 9 {
		t.Fatalf("retry gaps %v, checks %d", gaps, p.Checks)
	}
	// CinetPay answers again: the run ends, the backoff resumes one step further
	at = p.NextCheck
	applyCheck(&p, answer00("WAITING_FOR_CUSTOMER", "1000", "XOF"), nil, at)
	if !p.NoAnswerSince.IsZero() || !p.LastAnswer.Equal(at) || p.Checks != 10 ||
		!p.NextCheck.Equal(at.Add(pendingBackoff[10])) {
		t.Fatalf("after the outage: %+v", p)
	}

	// an earlier check already scheduled stays
	q := pending()
	applyCheck(&q, nil, fail, t0.Add(time.Second))
	if !q.NextCheck.Equal(t0.Add(firstCheck)) && !q.NextCheck.Equal(t0.Add(time.Second+noAnswerFirst)) {
		t.Fatalf("first check moved to %v", q.NextCheck.Sub(t0))
	}
	if q.NextCheck.After(t0.Add(time.Second + noAnswerFirst)) {
		t.Fatalf("no-answer retry later than %v: %v", noAnswerFirst, q.NextCheck.Sub(t0))
	}

	// refused and expired payments: a failed check (a notification's, or the one a notification
	// stored) is retried within a minute, for noAnswerWindow
	for _, st := range []storage.State{storage.StateRefused, storage.StateExpired} {
		r := pending()
		r.State, r.NextCheck = st, time.Time{}
		r.History = []storage.Transition{{From: storage.StatePending, To: st, At: t0}}
		at := t0.Add(10 * 24 * time.Hour)
		applyCheck(&r, nil, fail, at)
		if r.State != st || !r.NextCheck.Equal(at.Add(noAnswerFirst)) {
			t.Fatalf("%s, failed check: %+v", st, r)
		}
		at = r.NoAnswerSince.Add(noAnswerWindow)
		applyCheck(&r, nil, fail, at)
		if !r.NextCheck.IsZero() {
			t.Fatalf("%s retried past the window: %v", st, r.NextCheck)
		}
		// a usable answer leaves it as it is, with nothing more scheduled
		applyCheck(&r, answer00("REFUSED", "1000", "XOF"), nil, at.Add(time.Minute))
		if r.State != st || !r.NextCheck.IsZero() || !r.NoAnswerSince.IsZero() {
			t.Fatalf("%s after a usable answer: %+v", st, r)
		}
	}
}

// The amount a result carries is the canonical integer that was compared, never CinetPay's
// text; the text is kept for operators.
func TestConfirmedAmountIsCanonical(t *testing.T) {
	for _, raw := range []string{"1000", "1000.00", "1000.0", "01000", " 1000 "} {
		p := pending()
		applyCheck(&p, answer00("ACCEPTED", raw, "XOF"), nil, t0.Add(time.Minute))
		if p.State != storage.StateAccepted || p.Confirmed.Amount != "1000" || p.Result().Amount != "1000" {
			t.Errorf("%q: %s, confirmed %+v, result %+v", raw, p.State, p.Confirmed, p.Result())
		}
		if want := strings.TrimSpace(raw); want != "1000" && p.Confirmed.RawAmount != want {
			t.Errorf("%q: raw amount %q", raw, p.Confirmed.RawAmount)
		}
	}
	for raw, want := range map[string]string{"0995.50": "995.5", "995": "995", "n/a": "n/a"} {
		p := pending()
		applyCheck(&p, answer00("ACCEPTED", raw, "XOF"), nil, t0.Add(time.Minute))
		if p.State != storage.StateMismatch || p.Result().Amount != want {
			t.Errorf("%q: %s, result %+v", raw, p.State, p.Result())
		}
	}
	// the header a shop receives
	h := http.Header{}
	p := pending()
	applyCheck(&p, answer00("ACCEPTED", "1000.00", "XOF"), nil, t0.Add(time.Minute))
	setResultHeaders(h, "TX", "order", "ACCEPTED", "sandbox", "ev", p.Result())
	if got := h.Get("Cinetpay-Amount"); got != "1000" {
		t.Fatalf("Cinetpay-Amount: %q", got)
	}
}

func TestDeliveryBackoff(t *testing.T) {
	for range 100 {
		if d := nextDelay(1, 0); d < firstRetry/2 || d > firstRetry {
			t.Fatalf("first retry after %v", d)
		}
		for n := 1; n < 40; n++ {
			if d := nextDelay(n, 0); d <= 0 || d > maxBackoff {
				t.Fatalf("attempt %d: %v", n, d)
			}
		}
	}
	if d := nextDelay(3, 10*time.Hour); d != maxRetryAfter {
		t.Fatalf("Retry-After not clamped: %v", d)
	}
	if d := nextDelay(3, time.Millisecond); d != minRetryAfter {
		t.Fatalf("Retry-After not clamped: %v", d)
	}
	// at least 3 days of attempts before giving up
	var total time.Duration
	n := 0
	for total < giveUpAfter {
		n++
		total += nextDelay(n, 0)
	}
	if n < 10 || giveUpAfter < 72*time.Hour {
		t.Fatalf("%d attempts in %v", n, total)
	}
	for v, want := range map[string]time.Duration{"": 0, "7": 7 * time.Second, "-1": 0, "soon": 0,
		t0.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second} {
		if got := parseRetryAfter(v, t0); got != want {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
}

func TestHeaderSafe(t *testing.T) {
	for in, want := range map[string]string{"OM": "OM", " MP2209.1 ": "MP2209.1", "é": "%C3%A9", "a%b": "a%25b", "x\ny": "x%0Ay"} {
		if got := headerSafe(in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}
