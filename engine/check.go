package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Re-check rules.
const (
	// PendingWindow: pending and unknown payments are re-checked this long, then EXPIRED.
	PendingWindow = 48 * time.Hour
	// RefusedFirst and RefusedSecond: a REFUSED payment is checked again this long after the
	// refusal, in case of a late success.
	RefusedFirst  = time.Hour
	RefusedSecond = 24 * time.Hour
	// QuietPeriod: after a usable answer, the checks a customer or a notification of a refused or
	// expired payment can cause are not made for this long; a notification inside it stores a
	// check due at its end instead.
	QuietPeriod = 15 * time.Second
	// NoAnswerFirst and NoAnswerMax: a check without a usable answer is tried again after
	// NoAnswerFirst, growing with the length of the outage to at most NoAnswerMax.
	NoAnswerFirst = 15 * time.Second
	NoAnswerMax   = time.Minute
	// NoAnswerWindow: a refused or expired payment whose checks get no usable answer is retried
	// that often for this long, then left to its schedule.
	NoAnswerWindow = 48 * time.Hour
	// FirstCheck: a started payment is first re-checked this soon.
	FirstCheck = 30 * time.Second
	// orphanDelay: a payment of a site no longer configured is looked at again this late.
	orphanDelay = 5 * time.Minute
	// RecheckWorkers is the number of re-checks running at once per store, at most; the
	// site's rate budget paces them.
	RecheckWorkers = 16
)

// pendingBackoff spaces the re-checks of a pending payment: the first within a minute of the
// start, then spreading out up to the 48 h window.
var pendingBackoff = []time.Duration{
	FirstCheck, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 4 * time.Hour,
	6 * time.Hour,
}

var (
	// ErrNoAnswer: CinetPay gave no usable answer to a status call; nothing changed.
	ErrNoAnswer = errors.New("no usable answer from CinetPay")
	// ErrStartInProgress: the payment is still INIT; its start call has not finished.
	ErrStartInProgress = errors.New("payment start in progress")
)

// Check asks CinetPay about one payment and stores what the answer means. There is one call in
// flight per transaction: notifications, returns and re-checks arriving meanwhile share its
// result. prio is PrioNotify, PrioCustomer (a person waits: a customer, an operator) or
// PrioRecheck (the re-check queue: a payment no longer due, or being checked by another
// instance, is left alone).
func (e *Engine) Check(s *Site, txid string, prio int) (storage.UpdateResult, error) {
	return e.CheckSince(s, txid, prio, time.Time{})
}

// CheckSince is Check for a caller that arrived at since and must not act on an answer asked
// for before then (a notification): it shares only a call that began at since or later.
func (e *Engine) CheckSince(s *Site, txid string, prio int, since time.Time) (storage.UpdateResult, error) {
	return e.checks.doSince(s.ID+"/"+txid, since, func() (storage.UpdateResult, error) {
		return e.checkOnce(s, txid, prio)
	})
}

// QuietUntil reports whether p is in its quiet period at t (a usable answer less than
// QuietPeriod ago), and when that period ends.
func QuietUntil(p *storage.Payment, t time.Time) (end time.Time, quiet bool) {
	end = p.LastAnswer.Add(QuietPeriod)
	return end, !p.LastAnswer.IsZero() && t.Before(end)
}

// CheckIfQuiet is Check, unless p was checked less than QuietPeriod ago, answered or not; ran
// is false then. It is for return pages, which only display: an outage must not make every
// visit wait for CinetPay. p is the payment as the caller read it.
func (e *Engine) CheckIfQuiet(s *Site, p *storage.Payment, prio int) (res storage.UpdateResult, ran bool, err error) {
	if !p.LastCheck.IsZero() && Now().Sub(p.LastCheck) < QuietPeriod {
		return res, false, nil
	}
	res, err = e.Check(s, p.TransactionID, prio)
	return res, true, err
}

// CheckBy stores, durably, that a payment is to be checked at the latest at by: the re-checker
// makes that check. p is the payment as the caller read it; if a check is already due by then,
// nothing is written. A final payment is left as it is.
func (e *Engine) CheckBy(s *Site, p *storage.Payment, by time.Time) (storage.UpdateResult, error) {
	if !p.NextCheck.IsZero() && !p.NextCheck.After(by) {
		return storage.UpdateResult{Payment: *p, From: p.State}, nil
	}
	res, err := e.store.Update(s.ID, p.TransactionID, Now(), func(p *storage.Payment) error {
		if p.NextCheck.IsZero() || p.NextCheck.After(by) {
			p.NextCheck = by
		}
		return nil
	})
	if err == nil && !by.After(Now()) {
		e.WakeChecks()
	}
	return res, err
}

// WakeChecks tells the re-check loop that a check is due now.
func (e *Engine) WakeChecks() {
	select {
	case e.wakeChecks <- struct{}{}:
	default:
	}
}

func (e *Engine) checkOnce(s *Site, txid string, prio int) (storage.UpdateResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout+LimiterWait)
	defer cancel()
	// in a store shared by several instances: the one status call in flight among all of them
	// (with a store of one process the flight group above is that already)
	release, err := e.leaseCheck(ctx, s, txid, prio)
	switch {
	case errors.Is(err, errCheckBusy) && prio == PrioRecheck:
		return storage.UpdateResult{}, nil // the instance checking it reschedules it
	case errors.Is(err, storage.ErrNotFound):
		return storage.UpdateResult{}, err
	case err != nil:
		return storage.UpdateResult{}, fmt.Errorf("%w: %v", ErrNoAnswer, err)
	}
	defer release()
	// read once the call is ours: a caller that read the payment before another call (here or
	// in another instance) settled it finds it final, and CinetPay is not called
	p, err := e.store.Get(s.ID, txid)
	if err != nil {
		return storage.UpdateResult{}, err
	}
	if p.State.Final() || p.State == storage.StateFailed {
		return storage.UpdateResult{Payment: p, From: p.State}, nil
	}
	if p.State == storage.StateInit {
		return storage.UpdateResult{Payment: p, From: p.State}, ErrStartInProgress
	}
	if prio == PrioRecheck && (p.NextCheck.IsZero() || p.NextCheck.After(Now())) {
		return storage.UpdateResult{Payment: p, From: p.State}, nil // checked meanwhile: no longer due
	}
	var ans *Answer
	err = e.takeCall(ctx, s, prio)
	if err == nil {
		started := time.Now()
		ans, err = s.Provider.Status(ctx, &p)
		if err == nil && ans == nil {
			err = errors.New("empty answer")
		}
		observeCall("check", started, err)
	}
	at := Now()
	grace := s.StartGrace()
	if err != nil {
		metricChecks.WithLabelValues("no_answer").Inc()
	} else {
		metricChecks.WithLabelValues(ans.Verdict.String()).Inc()
	}
	var unusable error
	res, uerr := e.store.Update(s.ID, txid, at, func(p *storage.Payment) error {
		if p.State == storage.StateInit {
			return ErrStartInProgress
		}
		p.LastCheck = at
		unusable = applyCheck(p, ans, err, at, grace)
		return nil
	})
	if uerr != nil {
		return res, uerr
	}
	e.changed(s, res)
	if unusable != nil {
		return res, fmt.Errorf("%w: %v", ErrNoAnswer, unusable)
	}
	return res, nil
}

// changed logs and counts a state change, and wakes the deliveries.
func (e *Engine) changed(s *Site, res storage.UpdateResult) {
	if !res.Changed {
		return
	}
	p := res.Payment
	metricStates.WithLabelValues(stateLabel(p.State)).Inc()
	// the site's logger names the site
	fields := []zap.Field{zap.String("transaction_id", p.TransactionID),
		zap.String("order_id", p.OrderID), zap.String("from", string(res.From)), zap.String("to", string(p.State))}
	log := s.Logger
	if log == nil {
		log = e.logger
	}
	switch p.State {
	case storage.StateMismatch:
		c := p.Confirmed
		log.Error("payment confirmed with another amount or currency than asked: MISMATCH",
			append(fields, zap.Int64("asked_amount", p.Amount), zap.String("asked_currency", p.Currency),
				zap.String("paid_amount", c.Amount), zap.String("paid_amount_text", c.RawAmount),
				zap.String("paid_currency", c.Currency))...)
	case storage.StateDuplicate:
		log.Error("second accepted payment of an already paid order: DUPLICATE (refund it)", fields...)
	default:
		log.Info("payment state changed", fields...)
	}
	if res.Delivery != nil {
		e.Wake()
	}
}

// applyCheck decides what a status answer means for a payment and schedules its next re-check.
// ans is nil when err says why there is no usable answer. grace is the site's start grace. It
// returns why the answer could not be used (nil when it was): err, or an unknown transaction
// that is not an UNKNOWN start past its grace.
func applyCheck(p *storage.Payment, ans *Answer, err error, at time.Time, grace time.Duration) error {
	due := !p.NextCheck.IsZero() && !at.Before(p.NextCheck)
	if err == nil && ans.Verdict == NotFound {
		// an UNKNOWN start CinetPay never saw, once no late answer to it can come: never charged
		if p.State == storage.StateUnknown && at.Sub(p.CreatedAt) >= grace {
			p.LastAnswer, p.NoAnswerSince = at, time.Time{}
			p.LastCheckResult = ans.Summary
			p.State, p.Note, p.NextCheck = storage.StateFailed, "unknown to CinetPay", time.Time{}
			return nil
		}
		err = errors.New("CinetPay does not know the transaction")
	}
	if err != nil {
		p.LastCheckResult = "no usable answer: " + err.Error()
		if p.NoAnswerSince.IsZero() {
			p.NoAnswerSince = at
		}
		scheduleNoAnswer(p, at, due)
		return err
	}
	p.LastAnswer, p.NoAnswerSince = at, time.Time{}
	p.LastCheckResult = ans.Summary
	conf := ans.Confirmed
	switch ans.Verdict {
	case Accepted:
		p.Confirmed, p.NextCheck = &conf, time.Time{}
		if !ans.AmountConfirmed || amountIs(conf.Amount, p.Amount) && conf.Currency == p.Currency {
			p.State, p.Note = storage.StateAccepted, "check"
		} else {
			p.State, p.Note = storage.StateMismatch, "check: amount or currency differ"
		}
		return nil
	case Refused:
		if p.State == storage.StatePending || p.State == storage.StateUnknown {
			p.State, p.Note, p.Confirmed = storage.StateRefused, "check", &conf
			p.Checks, p.NextCheck = 0, at.Add(RefusedFirst)
			return nil
		}
	case Expired:
		if p.State == storage.StatePending || p.State == storage.StateUnknown {
			p.State, p.Note, p.NextCheck = storage.StateExpired, "expired at CinetPay", time.Time{}
			return nil
		}
	default:
		if p.State == storage.StateUnknown {
			p.State, p.Note = storage.StatePending, "check"
		}
	}
	schedule(p, at, due)
	return nil
}

// amountIs reports whether a canonical amount is the integer n.
func amountIs(canonical string, n int64) bool {
	v, err := strconv.ParseInt(canonical, 10, 64)
	return err == nil && v == n && canonical == strconv.FormatInt(v, 10)
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
		deadline := p.CreatedAt.Add(PendingWindow)
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
// payment is retried so for NoAnswerWindow, then left to its schedule.
func scheduleNoAnswer(p *storage.Payment, at time.Time, due bool) {
	retry := at.Add(noAnswerDelay(p.NoAnswerSince, at))
	switch p.State {
	case storage.StatePending, storage.StateUnknown:
		deadline := p.CreatedAt.Add(PendingWindow)
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
		case at.Sub(p.NoAnswerSince) < NoAnswerWindow:
			p.NextCheck = earlier(p.NextCheck, retry, at)
		case p.State == storage.StateRefused:
			p.NextCheck = nextRefusedCheck(p, at)
		default:
			p.NextCheck = time.Time{}
		}
	}
}

// noAnswerDelay is how soon a check without a usable answer is tried again: NoAnswerFirst at
// first, then as long as the outage has lasted, at most NoAnswerMax.
func noAnswerDelay(since, at time.Time) time.Duration {
	return min(max(at.Sub(since), NoAnswerFirst), NoAnswerMax)
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
	for _, d := range []time.Duration{RefusedFirst, RefusedSecond} {
		if t := refused.Add(d); t.After(at) {
			return t
		}
	}
	return time.Time{}
}

// recheckLoop re-checks due payments, RecheckWorkers at a time, with the lowest priority.
func (e *Engine) recheckLoop(ctx context.Context) {
	defer e.wg.Done()
	pump(ctx, e, e.wakeChecks, RecheckWorkers, "re-checks",
		func(n int) ([]storage.Key, error) { return e.store.DueChecks(Now(), n) },
		func(k storage.Key) string { return k.SiteID + "/" + k.ID },
		func(k storage.Key) bool { e.recheck(k); return false })
}

// InterruptStart turns an INIT payment whose start never finished into UNKNOWN, due for a
// re-check now: the call may or may not have reached CinetPay.
func (e *Engine) InterruptStart(s *Site, txid string) error {
	t := Now()
	res, err := e.store.Update(s.ID, txid, t, func(p *storage.Payment) error {
		if p.State == storage.StateInit {
			p.State, p.Note, p.NextCheck = storage.StateUnknown, "start interrupted", t
		}
		return nil
	})
	if err == nil {
		e.changed(s, res)
	}
	return err
}

// recheck handles one due payment.
func (e *Engine) recheck(k storage.Key) {
	s := e.Current(k.SiteID)
	if s == nil {
		// the site left the configuration; keep the payment and look again later
		_, _ = e.store.Update(k.SiteID, k.ID, Now(), func(p *storage.Payment) error {
			p.NextCheck = Now().Add(orphanDelay)
			return nil
		})
		e.logger.Warn("payment due for a re-check, but its site is not configured",
			zap.String("site_id", k.SiteID), zap.String("transaction_id", k.ID))
		return
	}
	p, err := e.store.Get(k.SiteID, k.ID)
	if err != nil {
		e.logger.Error("reading a due payment", zap.String("site_id", k.SiteID), zap.String("transaction_id", k.ID), zap.Error(err))
		return
	}
	if p.NextCheck.IsZero() || p.NextCheck.After(Now()) {
		return // checked meanwhile, by a notification or a return
	}
	switch p.State {
	case storage.StateInit:
		// the start never finished (the process died during the call)
		if err := e.InterruptStart(s, k.ID); err != nil {
			s.Logger.Error("resolving an interrupted start", zap.String("transaction_id", k.ID), zap.Error(err))
			return
		}
	case storage.StatePending, storage.StateUnknown, storage.StateRefused, storage.StateExpired:
	default:
		_, _ = e.store.Update(k.SiteID, k.ID, Now(), func(p *storage.Payment) error {
			p.NextCheck = time.Time{}
			return nil
		})
		return
	}
	if _, err := e.Check(s, k.ID, PrioRecheck); err != nil {
		s.Logger.Warn("re-check without a usable answer", zap.String("transaction_id", k.ID), zap.Error(err))
	}
}
