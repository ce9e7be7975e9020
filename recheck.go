package caddycinetpay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpay"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Re-check rules (SPEC §5).
const (
	// pendingWindow: pending and unknown payments are re-checked this long, then EXPIRED.
	pendingWindow = 48 * time.Hour
	// refusedFirst and refusedSecond: a REFUSED payment is checked again this long after the
	// refusal, in case of a late success.
	refusedFirst  = time.Hour
	refusedSecond = 24 * time.Hour
	// quietPeriod: after a usable answer, the checks a customer or a notification of a refused or
	// expired payment can cause are not made for this long; a notification inside it stores a
	// check due at its end instead.
	quietPeriod = 15 * time.Second
	// noAnswerFirst and noAnswerMax: a check without a usable answer is tried again after
	// noAnswerFirst, growing with the length of the outage to at most noAnswerMax.
	noAnswerFirst = 15 * time.Second
	noAnswerMax   = time.Minute
	// noAnswerWindow: a refused or expired payment whose checks get no usable answer is retried
	// that often for this long, then left to its schedule.
	noAnswerWindow = 48 * time.Hour
	// orphanDelay: a payment of a site no longer configured is looked at again this late.
	orphanDelay = 5 * time.Minute
	// recheckWorkers bounds the re-checks running at once.
	recheckWorkers = 4
)

// pendingBackoff spaces the re-checks of a pending payment: the first within a minute of the
// start, then spreading out up to the 48 h window.
var pendingBackoff = []time.Duration{
	30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 4 * time.Hour,
	6 * time.Hour,
}

var (
	// errNoAnswer: /v2/payment/check gave no usable answer (network, timeout, 5xx, 429, an error
	// code without data); nothing changed.
	errNoAnswer = errors.New("no usable answer from CinetPay")
	// errStartInProgress: the payment is still INIT; its start call has not finished.
	errStartInProgress = errors.New("payment start in progress")
)

// check asks CinetPay about one payment and stores what the answer means. There is one call in
// flight per transaction: notifications, returns and re-checks arriving meanwhile share its
// result.
func (e *storeEntry) check(sc *siteConfig, txid string, prio int) (storage.UpdateResult, error) {
	return e.checkSince(sc, txid, prio, time.Time{})
}

// checkSince is check for a caller that arrived at since and must not act on an answer asked
// for before then (a notification): it shares only a call that began at since or later.
func (e *storeEntry) checkSince(sc *siteConfig, txid string, prio int, since time.Time) (storage.UpdateResult, error) {
	return e.checks.doSince(sc.siteID+"/"+txid, since, func() (storage.UpdateResult, error) {
		return e.checkOnce(sc, txid, prio)
	})
}

// quietUntil reports whether p is in its quiet period at t (a usable answer less than
// quietPeriod ago), and when that period ends.
func quietUntil(p *storage.Payment, t time.Time) (end time.Time, quiet bool) {
	end = p.LastAnswer.Add(quietPeriod)
	return end, !p.LastAnswer.IsZero() && t.Before(end)
}

// checkIfQuiet is check, unless p was checked less than quietPeriod ago, answered or not; ran
// is false then. It is for return pages, which only display: an outage must not make every
// visit wait for CinetPay. p is the payment as the caller read it.
func (e *storeEntry) checkIfQuiet(sc *siteConfig, p *storage.Payment, prio int) (res storage.UpdateResult, ran bool, err error) {
	if !p.LastCheck.IsZero() && now().Sub(p.LastCheck) < quietPeriod {
		return res, false, nil
	}
	res, err = e.check(sc, p.TransactionID, prio)
	return res, true, err
}

// checkBy stores, durably, that a payment is to be checked at the latest at by: the re-checker
// makes that check. p is the payment as the caller read it; if a check is already due by then,
// nothing is written. A final payment is left as it is.
func (e *storeEntry) checkBy(sc *siteConfig, p *storage.Payment, by time.Time) (storage.UpdateResult, error) {
	if !p.NextCheck.IsZero() && !p.NextCheck.After(by) {
		return storage.UpdateResult{Payment: *p, From: p.State}, nil
	}
	return e.store.Update(sc.siteID, p.TransactionID, now(), func(p *storage.Payment) error {
		if p.NextCheck.IsZero() || p.NextCheck.After(by) {
			p.NextCheck = by
		}
		return nil
	})
}

func (e *storeEntry) checkOnce(sc *siteConfig, txid string, prio int) (storage.UpdateResult, error) {
	// a caller that read the payment before the previous call settled it finds it final here:
	// no call to CinetPay
	p, err := e.store.Get(sc.siteID, txid)
	if err != nil {
		return storage.UpdateResult{}, err
	}
	if p.State.Final() || p.State == storage.StateFailed {
		return storage.UpdateResult{Payment: p, From: p.State}, nil
	}
	if p.State == storage.StateInit {
		return storage.UpdateResult{Payment: p, From: p.State}, errStartInProgress
	}
	ctx, cancel := context.WithTimeout(context.Background(), sc.timeout+limiterWait)
	defer cancel()
	var cr *cinetpay.CheckResult
	err = e.limiter(sc.siteID).wait(ctx, prio)
	if err == nil {
		started := time.Now()
		cr, err = sc.api.CheckPayment(ctx, txid)
		metricAPIDuration.WithLabelValues("check").Observe(time.Since(started).Seconds())
	} else {
		err = fmt.Errorf("waiting for the rate limit: %w", err)
	}
	at := now()
	res, uerr := e.store.Update(sc.siteID, txid, at, func(p *storage.Payment) error {
		if p.State == storage.StateInit {
			return errStartInProgress
		}
		p.LastCheck = at
		applyCheck(p, cr, err, at)
		return nil
	})
	switch {
	case err != nil:
		metricChecks.WithLabelValues("no_answer").Inc()
	case cr.Verdict() == cinetpay.VerdictAccepted:
		metricChecks.WithLabelValues("accepted").Inc()
	case cr.Verdict() == cinetpay.VerdictRefused:
		metricChecks.WithLabelValues("refused").Inc()
	default:
		metricChecks.WithLabelValues("pending").Inc()
	}
	if uerr != nil {
		return res, uerr
	}
	e.changed(sc, res)
	if err != nil {
		return res, fmt.Errorf("%w: %v", errNoAnswer, err)
	}
	return res, nil
}

// changed logs and counts a state change, and wakes the deliveries.
func (e *storeEntry) changed(sc *siteConfig, res storage.UpdateResult) {
	if !res.Changed {
		return
	}
	p := res.Payment
	metricStates.WithLabelValues(string(p.State)).Inc()
	fields := []zap.Field{zap.String("site_id", p.SiteID), zap.String("transaction_id", p.TransactionID),
		zap.String("order_id", p.OrderID), zap.String("from", string(res.From)), zap.String("to", string(p.State))}
	switch p.State {
	case storage.StateMismatch:
		c := p.Confirmed
		sc.logger.Error("payment confirmed with another amount or currency than asked: MISMATCH",
			append(fields, zap.Int64("asked_amount", p.Amount), zap.String("asked_currency", p.Currency),
				zap.String("paid_amount", c.Amount), zap.String("paid_amount_text", c.RawAmount),
				zap.String("paid_currency", c.Currency))...)
	case storage.StateDuplicate:
		sc.logger.Error("second accepted payment of an already paid order: DUPLICATE (refund it)", fields...)
	default:
		sc.logger.Info("payment state changed", fields...)
	}
	if res.Delivery != nil {
		e.wake()
	}
}

// applyCheck decides what an answer of /check means for a payment (README, "How it works") and
// schedules its next re-check. cr is nil when err says why there is no usable answer.
func applyCheck(p *storage.Payment, cr *cinetpay.CheckResult, err error, at time.Time) {
	due := !p.NextCheck.IsZero() && !at.Before(p.NextCheck)
	if err != nil {
		p.LastCheckResult = "no usable answer: " + err.Error()
		if p.NoAnswerSince.IsZero() {
			p.NoAnswerSince = at
		}
		scheduleNoAnswer(p, at, due)
		return
	}
	p.LastAnswer, p.NoAnswerSince = at, time.Time{}
	d := cr.Data
	p.LastCheckResult = fmt.Sprintf("code %s, status %s", cr.Code, d.Status)
	amount, _ := d.CanonicalAmount()
	conf := &storage.Confirmation{Amount: amount, Currency: d.Currency, Status: d.Status,
		PaymentMethod: d.PaymentMethod, OperatorID: d.OperatorID, PaymentDate: d.PaymentDate}
	if raw := strings.TrimSpace(d.Amount); raw != amount {
		conf.RawAmount = raw
	}
	switch cr.Verdict() {
	case cinetpay.VerdictAccepted:
		p.Confirmed, p.NextCheck = conf, time.Time{}
		if n, ok := d.IntAmount(); ok && n == p.Amount && d.Currency == p.Currency {
			p.State, p.Note = storage.StateAccepted, "check"
		} else {
			p.State, p.Note = storage.StateMismatch, "check: amount or currency differ"
		}
		return
	case cinetpay.VerdictRefused:
		if p.State == storage.StatePending || p.State == storage.StateUnknown {
			p.State, p.Note, p.Confirmed = storage.StateRefused, "check", conf
			p.Checks, p.NextCheck = 0, at.Add(refusedFirst)
			return
		}
	default:
		if p.State == storage.StateUnknown {
			p.State, p.Note = storage.StatePending, "check"
		}
	}
	schedule(p, at, due)
}

// schedule sets the next re-check after a usable answer that left the payment open, refused or
// expired. A pending payment moves one step along its backoff when the check was due (or it
// has none); a refused one is checked again at 1 h and 24 h after the refusal; an expired one
// only when a notification asks.
func schedule(p *storage.Payment, at time.Time, due bool) {
	switch p.State {
	case storage.StatePending, storage.StateUnknown:
		if !due && !p.NextCheck.IsZero() {
			return
		}
		deadline := p.CreatedAt.Add(pendingWindow)
		if !at.Before(deadline) {
			p.State, p.Note, p.NextCheck = storage.StateExpired, "no final answer within 48 h", time.Time{}
			return
		}
		// the start scheduled the first check with pendingBackoff[0]
		p.Checks++
		step := pendingBackoff[min(p.Checks, len(pendingBackoff)-1)]
		p.NextCheck = at.Add(step)
		if p.NextCheck.After(deadline) {
			p.NextCheck = deadline
		}
	case storage.StateRefused:
		p.NextCheck = nextRefusedCheck(p, at)
	default:
		p.NextCheck = time.Time{}
	}
}

// scheduleNoAnswer sets the next re-check after a check without a usable answer: within a
// minute (see noAnswerDelay), never later than what was scheduled, whatever caused the check.
// A pending payment whose due check fails past its 48 h window expires; a refused or expired
// payment is retried so for noAnswerWindow, then left to its schedule.
func scheduleNoAnswer(p *storage.Payment, at time.Time, due bool) {
	retry := at.Add(noAnswerDelay(p.NoAnswerSince, at))
	switch p.State {
	case storage.StatePending, storage.StateUnknown:
		deadline := p.CreatedAt.Add(pendingWindow)
		if due && !at.Before(deadline) {
			p.State, p.Note, p.NextCheck = storage.StateExpired, "no final answer within 48 h", time.Time{}
			return
		}
		if retry.After(deadline) {
			retry = deadline
		}
		p.NextCheck = earlier(p.NextCheck, retry, at)
	case storage.StateRefused, storage.StateExpired:
		switch {
		case at.Sub(p.NoAnswerSince) < noAnswerWindow:
			p.NextCheck = earlier(p.NextCheck, retry, at)
		case p.State == storage.StateRefused:
			p.NextCheck = nextRefusedCheck(p, at)
		default:
			p.NextCheck = time.Time{}
		}
	}
}

// noAnswerDelay is how soon a check without a usable answer is tried again: noAnswerFirst at
// first, then as long as the outage has lasted, at most noAnswerMax.
func noAnswerDelay(since, at time.Time) time.Duration {
	return min(max(at.Sub(since), noAnswerFirst), noAnswerMax)
}

// earlier is t, unless cur is a check still to come before t.
func earlier(cur, t, at time.Time) time.Time {
	if cur.After(at) && cur.Before(t) {
		return cur
	}
	return t
}

// nextRefusedCheck is the first of the refused payment's two re-checks (1 h and 24 h after the
// refusal) still to come at at; zero when both are past.
func nextRefusedCheck(p *storage.Payment, at time.Time) time.Time {
	refused := p.LastChange()
	for _, d := range []time.Duration{refusedFirst, refusedSecond} {
		if t := refused.Add(d); t.After(at) {
			return t
		}
	}
	return time.Time{}
}

// recheckLoop re-checks due payments, a few at a time, with the lowest priority.
func (e *storeEntry) recheckLoop(ctx context.Context) {
	defer e.wg.Done()
	pump(ctx, e, nil, recheckWorkers, "re-checks",
		func() ([]storage.Key, error) { return e.store.DueChecks(now(), 64) },
		func(k storage.Key) string { return k.SiteID + "/" + k.ID },
		e.recheck)
}

// interruptStart turns an INIT payment whose start never finished into UNKNOWN, due for a
// re-check now: the call may or may not have reached CinetPay.
func (e *storeEntry) interruptStart(sc *siteConfig, txid string) error {
	t := now()
	res, err := e.store.Update(sc.siteID, txid, t, func(p *storage.Payment) error {
		if p.State == storage.StateInit {
			p.State, p.Note, p.NextCheck = storage.StateUnknown, "start interrupted", t
		}
		return nil
	})
	if err == nil {
		e.changed(sc, res)
	}
	return err
}

// recheck handles one due payment.
func (e *storeEntry) recheck(k storage.Key) {
	sc := e.current(k.SiteID)
	if sc == nil {
		// the site left the configuration; keep the payment and look again later
		_, _ = e.store.Update(k.SiteID, k.ID, now(), func(p *storage.Payment) error {
			p.NextCheck = now().Add(orphanDelay)
			return nil
		})
		e.logger.Warn("payment due for a re-check, but its site is not configured",
			zap.String("site_id", k.SiteID), zap.String("transaction_id", k.ID))
		return
	}
	p, err := e.store.Get(k.SiteID, k.ID)
	if err != nil {
		e.logger.Error("reading a due payment", zap.String("transaction_id", k.ID), zap.Error(err))
		return
	}
	switch p.State {
	case storage.StateInit:
		// the start never finished (the process died during the call)
		if err := e.interruptStart(sc, k.ID); err != nil {
			e.logger.Error("resolving an interrupted start", zap.String("transaction_id", k.ID), zap.Error(err))
			return
		}
	case storage.StatePending, storage.StateUnknown, storage.StateRefused, storage.StateExpired:
	default:
		_, _ = e.store.Update(k.SiteID, k.ID, now(), func(p *storage.Payment) error {
			p.NextCheck = time.Time{}
			return nil
		})
		return
	}
	if _, err := e.check(sc, k.ID, prioRecheck); err != nil {
		e.logger.Warn("re-check without a usable answer", zap.String("transaction_id", k.ID), zap.Error(err))
	}
}
