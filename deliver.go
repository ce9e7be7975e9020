package caddycinetpay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// send makes one attempt of a delivery (the engine's outbox leases, retries and gives up): a
// POST to forward in the site's deliver_format, re-signed at every attempt under the
// delivery's stable event id. Redirects are not followed.
//
// rfc9421: no body, the result in Cinetpay-* headers signed per RFC 9421. standard-webhooks: a
// JSON body, the same on every attempt, and the webhook-* headers with a fresh timestamp.
func (sc *siteConfig) send(ctx context.Context, d *storage.Delivery) (int, time.Duration, error) {
	now := time.Now()
	var req *http.Request
	var err error
	if sc.format == formatStandardWebhooks {
		body, merr := json.Marshal(webhookEvent(d))
		if merr != nil {
			return 0, 0, merr
		}
		if req, err = http.NewRequestWithContext(ctx, http.MethodPost, sc.forward, bytes.NewReader(body)); err != nil {
			return 0, 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		httpsig.SetWebhookHeaders(req.Header, sc.signer.Key, d.ID, now, body)
	} else {
		if req, err = http.NewRequestWithContext(ctx, http.MethodPost, sc.forward, http.NoBody); err != nil {
			return 0, 0, err
		}
		setResultHeaders(req.Header, d.TransactionID, d.OrderID, string(d.Status), d.Environment, d.ID, d.Result)
		if err := sc.signer.Sign(http.MethodPost, req.Header, httpsig.TagNotify, d.ID, now); err != nil {
			return 0, 0, err
		}
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := sc.forwardClient.Do(req)
	if err != nil {
		return 0, 0, errors.New(strings.ReplaceAll(err.Error(), sc.forward, "forward"))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection is reused
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), nil
}

// webhookEvent is the Standard Webhooks body of a delivery: nothing in it changes between
// attempts (the timestamp is when the result was reached).
func webhookEvent(d *storage.Delivery) httpsig.Event {
	t := strings.TrimSpace
	return httpsig.Event{
		Type:      httpsig.EventType(string(d.Status)),
		Timestamp: d.CreatedAt.UTC().Truncate(time.Second).Format(time.RFC3339),
		Data: httpsig.EventData{
			TransactionID: d.TransactionID,
			OrderID:       d.OrderID,
			Status:        string(d.Status),
			Amount:        t(d.Amount),
			Currency:      t(d.Currency),
			PaymentMethod: t(d.PaymentMethod),
			OperatorID:    t(d.OperatorID),
			PaymentDate:   t(d.PaymentDate),
			Environment:   d.Environment,
			EventID:       d.ID,
		},
	}
}

// parseRetryAfter reads a shop's Retry-After of seconds or an HTTP date; 0 if absent or bad.
func parseRetryAfter(v string, t time.Time) time.Duration {
	return engine.ParseRetryAfter(v, t, engine.MaxRetryAfter)
}
