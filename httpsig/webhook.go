package httpsig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The second delivery format, deliver_format standard-webhooks (docs/deliveries.md): a JSON
// body signed per the Standard Webhooks specification (https://www.standardwebhooks.com), so
// a shop can verify with the official library of its language. Return pages are not affected:
// they always carry the RFC 9421 headers.

// Headers of a Standard Webhooks delivery.
const (
	HeaderWebhookID        = "Webhook-Id"
	HeaderWebhookTimestamp = "Webhook-Timestamp"
	HeaderWebhookSignature = "Webhook-Signature"
)

// WebhookTolerance is how far webhook-timestamp may be from the verifier's clock, either way:
// the official libraries' five minutes.
const WebhookTolerance = 5 * time.Minute

// SecretPrefix starts the Standard Webhooks form of a secret: "whsec_" + base64(key).
const SecretPrefix = "whsec_"

// Event is the JSON body of a Standard Webhooks delivery. It is the same on every attempt of
// one delivery; only webhook-timestamp and webhook-signature change.
type Event struct {
	// Type is "payment." and the lowercase status: payment.accepted, payment.refused, …
	Type string `json:"type"`
	// Timestamp is when the result was reached, RFC 3339 in UTC to the second.
	Timestamp string `json:"timestamp"`
	// Data holds every field of the result, with the values the Cinetpay-* headers carry in
	// the rfc9421 format (not percent-encoded).
	Data EventData `json:"data"`
}

// EventData is a payment's result in a Standard Webhooks delivery.
type EventData struct {
	TransactionID string `json:"transaction_id"`
	OrderID       string `json:"order_id"`
	Status        string `json:"status"`
	Amount        string `json:"amount"`
	Currency      string `json:"currency"`
	PaymentMethod string `json:"payment_method,omitempty"`
	OperatorID    string `json:"operator_id,omitempty"`
	PaymentDate   string `json:"payment_date,omitempty"`
	Environment   string `json:"environment"`
	EventID       string `json:"event_id"`
}

// EventType is the Standard Webhooks type of a result with the given status.
func EventType(status string) string { return "payment." + strings.ToLower(status) }

// WebhookSecret is the Standard Webhooks form of a signing key, "whsec_" + base64 of its
// bytes: what the shop gives its library.
func WebhookSecret(key []byte) string {
	return SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// ParseWebhookSecret reads a secret in its Standard Webhooks form (with or without "whsec_")
// back into the key's bytes.
func ParseWebhookSecret(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SecretPrefix))
	if err != nil || len(key) == 0 {
		return nil, errors.New("standard webhooks secret: not whsec_ followed by base64")
	}
	return key, nil
}

// SignWebhook returns the webhook-signature value of a message: "v1," and the base64
// HMAC-SHA256, under key, of "<id>.<unix seconds>.<body>".
func SignWebhook(key []byte, id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(webhookMAC(key, id, strconv.FormatInt(ts.Unix(), 10), body))
}

func webhookMAC(key []byte, id, ts string, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// SetWebhookHeaders sets the three Standard Webhooks headers of one attempt of a delivery.
func SetWebhookHeaders(h http.Header, key []byte, id string, ts time.Time, body []byte) {
	h.Set(HeaderWebhookID, id)
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderWebhookSignature, SignWebhook(key, id, ts, body))
}

// WebhookVerifier checks a Standard Webhooks delivery, as the official libraries do, then what
// the shop needs of its body. A Go shop uses it in place of a library:
//
//	key, _ := httpsig.ParseWebhookSecret(os.Getenv("STANDARD_WEBHOOKS_SECRET"))
//	v := &httpsig.WebhookVerifier{Secrets: [][]byte{key}}
//	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
//	ev, err := v.Verify(r.Header, body)
//	if err != nil { http.Error(w, "bad signature", http.StatusUnauthorized); return }
//	// compare ev.Data.OrderID, Amount, Currency with the shop's own order; apply ev.Data.EventID once
type WebhookVerifier struct {
	// Secrets are the keys accepted; several let the shop rotate.
	Secrets [][]byte
	// Tolerance is the clock difference allowed; default WebhookTolerance.
	Tolerance time.Duration
	// AcceptSandbox accepts results whose environment is "sandbox".
	AcceptSandbox bool
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Verify checks the signature and timestamp of a delivery and decodes its body. The event is
// returned only when the signature is good, the timestamp within the tolerance, the body
// complete and its event id the webhook-id. Every error wraps ErrMissing, ErrMalformed or
// ErrInvalid, as Verifier's do.
func (v *WebhookVerifier) Verify(h http.Header, body []byte) (*Event, error) {
	id, ts, sigs := h.Get(HeaderWebhookID), h.Get(HeaderWebhookTimestamp), h.Get(HeaderWebhookSignature)
	if id == "" || ts == "" || sigs == "" {
		return nil, fmt.Errorf("%w: standard webhooks: webhook-id, webhook-timestamp and webhook-signature are required", ErrMissing)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: standard webhooks: webhook-timestamp is not a number of seconds", ErrMalformed)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = WebhookTolerance
	}
	if d := now().Sub(time.Unix(sec, 0)); d > tol || d < -tol {
		return nil, fmt.Errorf("%w: standard webhooks: webhook-timestamp is too far from now", ErrInvalid)
	}
	if !v.signedByOne(id, ts, body, sigs) {
		return nil, fmt.Errorf("%w: standard webhooks: no matching signature", ErrInvalid)
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, fmt.Errorf("%w: standard webhooks: body: %v", ErrMalformed, err)
	}
	d := ev.Data
	switch {
	case d.TransactionID == "" || d.OrderID == "" || d.Status == "" || d.Amount == "" || d.Currency == "" || d.Environment == "":
		return nil, fmt.Errorf("%w: standard webhooks: the result is incomplete", ErrInvalid)
	case d.EventID != id:
		return nil, fmt.Errorf("%w: standard webhooks: data.event_id is not the webhook-id", ErrInvalid)
	case ev.Type != EventType(d.Status):
		return nil, fmt.Errorf("%w: standard webhooks: type does not match the status", ErrInvalid)
	}
	if err := checkEnvironment(d.Environment, v.AcceptSandbox); err != nil {
		return nil, err
	}
	return &ev, nil
}

// signedByOne reports whether one of the space-separated "v1,<base64>" signatures is the MAC of
// the message under one of the secrets.
func (v *WebhookVerifier) signedByOne(id, ts string, body []byte, sigs string) bool {
	for _, key := range v.Secrets {
		want := webhookMAC(key, id, ts, body)
		for _, s := range strings.Fields(sigs) {
			version, enc, ok := strings.Cut(s, ",")
			if !ok || version != "v1" {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(enc)
			if err == nil && hmac.Equal(got, want) {
				return true
			}
		}
	}
	return false
}
