package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Delivery rules.
const (
	// DeliveryWorkers is the number of deliveries in flight per store, at most.
	DeliveryWorkers = 16
	// GiveUpAfter: a delivery is retried at least this long before it is given up (kept, and
	// replayable).
	GiveUpAfter = 72 * time.Hour
	// FirstRetry and MaxBackoff shape the exponential backoff, with jitter.
	FirstRetry = 2 * time.Second
	MaxBackoff = time.Hour
	// MinRetryAfter and MaxRetryAfter clamp a shop's Retry-After.
	MinRetryAfter = time.Second
	MaxRetryAfter = time.Hour
	// LeaseMargin is added to the attempt timeout for the lease of an attempt.
	LeaseMargin = 30 * time.Second
)

// Wake tells the delivery loop that a delivery is due now.
func (e *Engine) Wake() {
	select {
	case e.wakeDeliveries <- struct{}{}:
	default:
	}
}

// deliveryLoop sends due deliveries, DeliveryWorkers at a time. It belongs to the store, so one set of
// workers serves every config that shares the store, across reloads; and each attempt is
// leased in the store before it is sent, so no attempt is ever sent twice at once.
func (e *Engine) deliveryLoop(ctx context.Context) {
	defer e.wg.Done()
	pump(ctx, e, e.wakeDeliveries, DeliveryWorkers, "deliveries",
		func(n int) ([]storage.Delivery, error) { return e.store.DueDeliveries(Now(), n) },
		func(d storage.Delivery) string { return d.SiteID + "/" + d.ID },
		func(d storage.Delivery) bool { return e.deliver(ctx, d) })
}

// deliver makes one attempt of a delivery with the site's current configuration, and reports
// whether the delivery is left due at once (replayed during the attempt).
func (e *Engine) deliver(ctx context.Context, d storage.Delivery) (dueAgain bool) {
	s := e.Current(d.SiteID)
	log := e.logger.With(zap.String("site_id", d.SiteID), zap.String("event_id", d.ID),
		zap.String("transaction_id", d.TransactionID), zap.String("status", string(d.Status)))
	t := Now()
	if s == nil {
		leased, err := e.store.BeginAttempt(d.SiteID, d.ID, t, orphanDelay)
		if err == nil {
			_, _ = e.store.FinishAttempt(d.SiteID, d.ID, leased.Attempts, storage.AttemptResult{
				At: t, Error: "site not configured", NextAttempt: t.Add(orphanDelay)})
			log.Warn("delivery due, but its site is not configured; keeping it")
		}
		return
	}
	leased, err := e.store.BeginAttempt(d.SiteID, d.ID, t, s.DeliveryTimeout+LeaseMargin)
	if errors.Is(err, storage.ErrStaleAttempt) {
		return
	} else if err != nil {
		log.Error("leasing a delivery", zap.Error(err))
		return
	}

	status, retryAfter, sendErr := s.Deliver(ctx, &leased)
	done := Now()
	r := storage.AttemptResult{At: done, HTTPStatus: status}
	switch {
	case sendErr == nil && status >= 200 && status < 300:
		r.Delivered = true
	case sendErr != nil:
		r.Error = sendErr.Error()
	default:
		r.Error = fmt.Sprintf("HTTP %d", status)
	}
	if !r.Delivered {
		if done.Sub(leased.Since) >= GiveUpAfter {
			r.GiveUp = true
		} else {
			r.NextAttempt = done.Add(NextDelay(leased.RoundAttempts, retryAfter))
		}
	}
	fin, err := e.store.FinishAttempt(d.SiteID, d.ID, leased.Attempts, r)
	if err != nil {
		log.Error("recording a delivery attempt", zap.Error(err))
		return
	}
	fields := []zap.Field{zap.Int("attempt", fin.Attempts), zap.Int("http_status", status)}
	switch {
	case r.Delivered:
		metricDeliveries.WithLabelValues("delivered").Inc()
		msg := "result delivered to the shop"
		if fin.State == storage.DeliveryPending {
			msg += "; replayed during the attempt, so delivered again now"
		}
		log.Info(msg, fields...)
	case fin.State == storage.DeliveryFailed:
		metricDeliveries.WithLabelValues("given_up").Inc()
		log.Error("delivery given up after retrying since "+leased.Since.UTC().Format(time.RFC3339)+
			"; kept: replay it through the admin API", append(fields, zap.String("error", r.Error))...)
	default:
		metricDeliveries.WithLabelValues("retry").Inc()
		log.Warn("delivery failed; will retry", append(fields, zap.String("error", r.Error),
			zap.Time("next_attempt", fin.NextAttempt))...)
	}
	return fin.State == storage.DeliveryPending && !fin.NextAttempt.After(Now())
}

// Replay puts a delivery back in the queue, due now, and wakes the delivery loop.
func (e *Engine) Replay(site, id string) (storage.Delivery, error) {
	d, err := e.store.Replay(site, id, Now())
	if err == nil {
		e.Wake()
	}
	return d, err
}

// NextDelay is the wait before the next attempt: exponential backoff with jitter from a few
// seconds up to an hour, or the shop's Retry-After, clamped.
func NextDelay(attempts int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(max(retryAfter, MinRetryAfter), MaxRetryAfter)
	}
	d := MaxBackoff
	if attempts < 12 {
		d = min(FirstRetry<<max(attempts-1, 0), MaxBackoff)
	}
	// full jitter over the upper half: d/2 ≤ delay ≤ d
	return d/2 + rand.N(d/2+1)
}
