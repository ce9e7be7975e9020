package caddycinetpay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Delivery rules (SPEC §6).
const (
	// deliveryWorkers bounds the deliveries in flight per store.
	deliveryWorkers = 4
	// giveUpAfter: a delivery is retried at least this long before it is given up (kept, and
	// replayable through the admin API).
	giveUpAfter = 72 * time.Hour
	// firstRetry and maxBackoff shape the exponential backoff, with jitter.
	firstRetry = 2 * time.Second
	maxBackoff = time.Hour
	// minRetryAfter and maxRetryAfter clamp a shop's Retry-After.
	minRetryAfter = time.Second
	maxRetryAfter = time.Hour
	// leaseMargin is added to the attempt timeout for the lease of an attempt.
	leaseMargin = 30 * time.Second
)

// wake tells the delivery loop that a delivery is due now.
func (e *storeEntry) wake() {
	select {
	case e.wakeDeliveries <- struct{}{}:
	default:
	}
}

// deliveryLoop sends due deliveries, a few at a time. It belongs to the store, so one set of
// workers serves every config that shares the store, across reloads; and each attempt is
// leased in the store before it is sent, so no attempt is ever sent twice at once.
func (e *storeEntry) deliveryLoop(ctx context.Context) {
	defer e.wg.Done()
	pump(ctx, e, e.wakeDeliveries, deliveryWorkers, "deliveries",
		func() ([]storage.Delivery, error) { return e.store.DueDeliveries(now(), 64) },
		func(d storage.Delivery) string { return d.SiteID + "/" + d.ID },
		func(d storage.Delivery) { e.deliver(ctx, d) })
}

// deliver makes one attempt of a delivery with the site's current configuration.
func (e *storeEntry) deliver(ctx context.Context, d storage.Delivery) {
	sc := e.current(d.SiteID)
	log := e.logger.With(zap.String("site_id", d.SiteID), zap.String("event_id", d.ID),
		zap.String("transaction_id", d.TransactionID), zap.String("status", string(d.Status)))
	t := now()
	if sc == nil {
		leased, err := e.store.BeginAttempt(d.SiteID, d.ID, t, orphanDelay)
		if err == nil {
			_, _ = e.store.FinishAttempt(d.SiteID, d.ID, leased.Attempts, storage.AttemptResult{
				At: t, Error: "site not configured", NextAttempt: t.Add(orphanDelay)})
			log.Warn("delivery due, but its site is not configured; keeping it")
		}
		return
	}
	leased, err := e.store.BeginAttempt(d.SiteID, d.ID, t, sc.forwardClient.Timeout+leaseMargin)
	if errors.Is(err, storage.ErrStaleAttempt) {
		return
	} else if err != nil {
		log.Error("leasing a delivery", zap.Error(err))
		return
	}

	status, retryAfter, sendErr := e.send(ctx, sc, &leased)
	done := now()
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
		if done.Sub(leased.Since) >= giveUpAfter {
			r.GiveUp = true
		} else {
			r.NextAttempt = done.Add(nextDelay(leased.RoundAttempts, retryAfter))
		}
	}
	fin, err := e.store.FinishAttempt(d.SiteID, d.ID, leased.Attempts, r)
	if err != nil {
		log.Error("recording a delivery attempt", zap.Error(err))
		return
	}
	fields := []zap.Field{zap.Int("attempt", fin.Attempts), zap.Int("http_status", status)}
	switch fin.State {
	case storage.DeliveryDelivered:
		metricDeliveries.WithLabelValues("delivered").Inc()
		log.Info("result delivered to the shop", fields...)
	case storage.DeliveryFailed:
		metricDeliveries.WithLabelValues("given_up").Inc()
		log.Error("delivery given up after retrying since "+leased.Since.UTC().Format(time.RFC3339)+
			"; kept: replay it through the admin API", append(fields, zap.String("error", r.Error))...)
	default:
		metricDeliveries.WithLabelValues("retry").Inc()
		log.Warn("delivery failed; will retry", append(fields, zap.String("error", r.Error),
			zap.Time("next_attempt", fin.NextAttempt))...)
	}
}

// send POSTs the signed headers of a delivery to forward, with no body.
func (e *storeEntry) send(ctx context.Context, sc *siteConfig, d *storage.Delivery) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sc.forward, http.NoBody)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("User-Agent", userAgent)
	setResultHeaders(req.Header, d.TransactionID, d.OrderID, string(d.Status), d.Environment, d.ID, d.Result)
	if err := sc.signer.Sign(http.MethodPost, req.Header, httpsig.TagNotify, d.ID, time.Now()); err != nil {
		return 0, 0, err
	}
	resp, err := sc.forwardClient.Do(req)
	if err != nil {
		return 0, 0, errors.New(strings.ReplaceAll(err.Error(), sc.forward, "forward"))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection is reused
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), nil
}

// nextDelay is the wait before the next attempt: exponential backoff with jitter from a few
// seconds up to an hour, or the shop's Retry-After, clamped.
func nextDelay(attempts int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(max(retryAfter, minRetryAfter), maxRetryAfter)
	}
	d := maxBackoff
	if attempts < 12 {
		d = min(firstRetry<<max(attempts-1, 0), maxBackoff)
	}
	// full jitter over the upper half: d/2 ≤ delay ≤ d
	return d/2 + rand.N(d/2+1)
}

// parseRetryAfter reads a Retry-After of seconds or an HTTP date; 0 if absent or bad.
func parseRetryAfter(v string, t time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(t), 0)
	}
	return 0
}
