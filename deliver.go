package caddycinetpay

import (
	"context"
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
// POST to forward with the signed result headers and no body, re-signed at every attempt
// under the delivery's stable event id. Redirects are not followed.
func (sc *siteConfig) send(ctx context.Context, d *storage.Delivery) (int, time.Duration, error) {
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

// parseRetryAfter reads a shop's Retry-After of seconds or an HTTP date; 0 if absent or bad.
func parseRetryAfter(v string, t time.Time) time.Duration {
	return engine.ParseRetryAfter(v, t, engine.MaxRetryAfter)
}
