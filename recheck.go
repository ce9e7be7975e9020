package caddycinetpay

import (
	"context"
	"errors"
	"fmt"
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
	// quietPeriod: checks a customer or an unneeded notification can cause are spaced by this.
	quietPeriod = 15 * time.Second
	// retryNoAnswer: a REFUSED re-check that got no answer is tried again this soon.
	retryNoAnswer = 10 * time.Minute
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
	res, err := e.checks.do(sc.siteID+"/"+txid, func() (storage.UpdateResult, error) {
		return e.checkOnce(sc, txid, prio)
	})
	return res, err
}

// checkIfQuiet is check, but at most once per transaction per quietPeriod; ran is false when
// a check was made too recently.
func (e *storeEntry) checkIfQuiet(sc *siteConfig, txid string, prio int) (res storage.UpdateResult, ran bool, err error) {
	key := sc.siteID + "/" + txid
	t := now()
	e.mu.Lock()
	if last, ok := e.lastCheck[key]; ok && t.Sub(last) < quietPeriod {
		e.mu.Unlock()
		return res, false, nil
	}
	e.lastCheck[key] = t
	e.mu.Unlock()
	res, err = e.check(sc, txid, prio)
	return res, true, err
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
	e.mu.Lock()
	e.lastCheck[sc.siteID+"/"+txid] = at
	e.mu.Unlock()

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
				zap.String("paid_amount", c.Amount), zap.String("paid_currency", c.Currency))...)
	case storage.StateDuplicate:
		sc.logger.Error("second accepted payment of an already paid order: DUPLICATE (refund it)", fields...)
	default:
		sc.logger.Info("payment state changed", fields...)
	}
	if res.Delivery != nil {
		e.wake()
	}
}

// applyCheck decides what an answer of /check means for a payment (SPEC §5) and schedules its
// next re-check. cr is nil when err says why there is no usable answer.
func applyCheck(p *storage.Payment, cr *cinetpay.CheckResult, err error, at time.Time) {
	due := !p.NextCheck.IsZero() && !at.Before(p.NextCheck)
	if err != nil {
		p.LastCheckResult = "no usable answer: " + err.Error()
		schedule(p, at, due, true)
		return
	}
	d := cr.Data
	p.LastCheckResult = fmt.Sprintf("code %s, status %s", cr.Code, d.Status)
	conf := &storage.Confirmation{Amount: d.Amount, Currency: d.Currency, Status: d.Status,
		PaymentMethod: d.PaymentMethod, OperatorID: d.OperatorID, PaymentDate: d.PaymentDate}
	switch cr.Verdict() {
	case cinetpay.VerdictAccepted:
		p.Confirmed, p.NextCheck = conf, time.Time{}
		if amount, ok := d.IntAmount(); ok && amount == p.Amount && d.Currency == p.Currency {
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
	schedule(p, at, due, false)
}

// schedule sets the next re-check of a payment whose check was due (or that has none).
func schedule(p *storage.Payment, at time.Time, due, noAnswer bool) {
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
		if !due {
			return
		}
		refused := p.LastChange()
		switch {
		case noAnswer && at.Sub(refused) < pendingWindow:
			p.NextCheck = at.Add(retryNoAnswer)
		case !noAnswer && p.Checks == 0:
			p.Checks = 1
			p.NextCheck = refused.Add(refusedSecond)
			if !p.NextCheck.After(at) {
				p.NextCheck = at.Add(refusedSecond - refusedFirst)
			}
		default:
			p.NextCheck = time.Time{}
		}
	default:
		p.NextCheck = time.Time{}
	}
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
	case storage.StatePending, storage.StateUnknown, storage.StateRefused:
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
