package main

// Deliveries in the Standard Webhooks format (the module's `deliver_format standard-webhooks`,
// README.md here): a JSON body signed with webhook-id, webhook-timestamp and webhook-signature,
// verified by httpsig.WebhookVerifier, the module's own Standard Webhooks verifier (the
// signature as the official libraries check it, then the environment and the event id).

import (
	"fmt"
	"io"
	"log"
	"net/http"

	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
)

// standardWebhook is POST /cinetpay/standard-webhook: verified, then applied once by event id
// like the webhook's signed headers, with the same answers.
func (s *shop) standardWebhook(w http.ResponseWriter, r *http.Request) {
	if s.sw == nil {
		http.Error(w, "STANDARD_WEBHOOKS_SECRET is not set: Standard Webhooks deliveries cannot be verified",
			http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	ev, err := s.sw.Verify(r.Header, body)
	if err != nil {
		log.Printf("standard webhook refused: %v", err)
		http.Error(w, "refused: "+err.Error(), http.StatusUnauthorized)
		return
	}
	d := ev.Data
	res := &httpsig.Result{TransactionID: d.TransactionID, OrderID: d.OrderID, Status: d.Status, Amount: d.Amount,
		Currency: d.Currency, PaymentMethod: d.PaymentMethod, OperatorID: d.OperatorID, PaymentDate: d.PaymentDate,
		Environment: d.Environment, EventID: d.EventID}
	note, err := s.store.update(func(db *db) string { return applyResult(db, res) })
	if err != nil {
		log.Printf("standard webhook %s: %v", res.EventID, err)
		http.Error(w, "internal error", http.StatusInternalServerError) // the module retries
		return
	}
	log.Printf("standard webhook %s %s %s: %s", res.EventID, res.OrderID, res.Status, note)
	fmt.Fprintln(w, note) // 2xx: the module stops retrying this event
}
