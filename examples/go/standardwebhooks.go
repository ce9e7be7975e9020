package main

// Deliveries in the Standard Webhooks format (the module's `deliver_format standard-webhooks`,
// README.md here): a JSON body signed with webhook-id, webhook-timestamp and webhook-signature.
// verifyStandardWebhook follows the algorithm of Webhook.Verify in the official library; a real
// shop can use that library instead (see README.md, "Standard Webhooks").

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
)

// swTolerance is how far webhook-timestamp may be from now, either way, as in the official
// libraries.
const swTolerance = 5 * time.Minute

// swSecret decodes STANDARD_WEBHOOKS_SECRET ("whsec_" + base64 of the key); nil when unset.
func swSecret(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, errors.New("STANDARD_WEBHOOKS_SECRET: expected whsec_ and the key in base64")
	}
	return key, nil
}

// verifyStandardWebhook checks the webhook-* headers of a delivery against its raw body: the
// timestamp within swTolerance of now, and one of the space-separated "v1,<base64>" signatures
// equal (constant time) to HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>").
func verifyStandardWebhook(key []byte, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("invalid webhook-timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > swTolerance || d < -swTolerance {
		return errors.New("webhook-timestamp too old or too new")
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.%s", id, sec, body)
	want := []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	for _, s := range strings.Split(sigs, " ") {
		if v, sig, ok := strings.Cut(s, ","); ok && v == "v1" && hmac.Equal([]byte(sig), want) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

// swPayload is a delivery's body: {"type":"payment.accepted","timestamp":…,"data":{…}}.
type swPayload struct {
	Type string `json:"type"`
	Data struct {
		TransactionID string `json:"transaction_id"`
		OrderID       string `json:"order_id"`
		Status        string `json:"status"`
		Amount        string `json:"amount"`
		Currency      string `json:"currency"`
		Environment   string `json:"environment"`
		EventID       string `json:"event_id"`
	} `json:"data"`
}

// readStandardWebhook verifies a delivery and returns its result as the webhook's verifier
// would: the sandbox environment refused unless ACCEPT_SANDBOX=1, an event id required.
func (s *shop) readStandardWebhook(h http.Header, body []byte) (*httpsig.Result, error) {
	if err := verifyStandardWebhook(s.swKey, h, body, time.Now()); err != nil {
		return nil, err
	}
	var p swPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	d := p.Data
	if d.EventID == "" || p.Type != "payment."+strings.ToLower(d.Status) {
		return nil, errors.New("not a payment result")
	}
	if d.Environment != "live" && (d.Environment != "sandbox" || !s.acceptSandbox) {
		return nil, fmt.Errorf("environment %s refused", d.Environment)
	}
	return &httpsig.Result{TransactionID: d.TransactionID, OrderID: d.OrderID, Status: d.Status, Amount: d.Amount,
		Currency: d.Currency, Environment: d.Environment, EventID: d.EventID}, nil
}

// standardWebhook is POST /cinetpay/standard-webhook: verified, then applied once by event id
// like the webhook's signed headers, with the same answers.
func (s *shop) standardWebhook(w http.ResponseWriter, r *http.Request) {
	if s.swKey == nil {
		http.Error(w, "STANDARD_WEBHOOKS_SECRET is not set: Standard Webhooks deliveries cannot be verified",
			http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	res, err := s.readStandardWebhook(r.Header, body)
	if err != nil {
		log.Printf("standard webhook refused: %v", err)
		http.Error(w, "refused: "+err.Error(), http.StatusUnauthorized)
		return
	}
	note, err := s.store.update(func(d *db) string { return applyResult(d, res) })
	if err != nil {
		log.Printf("standard webhook %s: %v", res.EventID, err)
		http.Error(w, "internal error", http.StatusInternalServerError) // the module retries
		return
	}
	log.Printf("standard webhook %s %s %s: %s", res.EventID, res.OrderID, res.Status, note)
	fmt.Fprintln(w, note) // 2xx: the module stops retrying this event
}
