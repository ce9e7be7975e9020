package cinetpayv1

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Provider is CinetPay's current API as the payment engine uses it (engine.Provider): it turns
// the engine's intents into POST /v1/payment requests, GET /v1/payment/{id} answers into
// verdicts, and reads notifications, which it authenticates with the payment's notify_token.
type Provider struct {
	// API is the client (a *Client, or a test double).
	API API
	// Endpoint is the API's base URL: a local endpoint's payment pages are allowed.
	Endpoint string
	// Country is the account's country: its currency is the only one taken, its calling code
	// starts the customers' phone numbers.
	Country Country
	// NotifyURL is the site's notification address; ReturnBase its return address, to which
	// "?transaction_id=<id>" is appended for success_url and failed_url alike.
	NotifyURL, ReturnBase string
}

var _ engine.Provider = (*Provider)(nil)

// headerOf names the shop's header behind each field of a payment request.
var headerOf = map[string]string{
	"amount":              "Cinetpay-Amount",
	"currency":            "Cinetpay-Currency",
	"designation":         "Cinetpay-Description",
	"lang":                "Cinetpay-Lang",
	"client_email":        "Cinetpay-Customer-Email",
	"client_first_name":   "Cinetpay-Customer-First-Name (or Cinetpay-Customer-Surname)",
	"client_last_name":    "Cinetpay-Customer-Last-Name (or Cinetpay-Customer-Name)",
	"client_phone_number": "Cinetpay-Customer-Phone-Number",
	"payment_method":      "Cinetpay-Payment-Method",
}

// Validate implements engine.Provider: every rule of CinetPay's current API, before anything
// is stored; the error names the shop's header.
func (pv *Provider) Validate(in *engine.Intent) error {
	if in.Currency != pv.Country.Currency {
		return fmt.Errorf("Cinetpay-Currency: an account of %s takes %s only, not %s", pv.Country.Code, pv.Country.Currency, in.Currency)
	}
	req := pv.request(strings.Repeat("X", 24), in)
	if err := req.Validate(); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			if h, ok := headerOf[ve.Field]; ok {
				if ve.Field == "client_email" || ve.Field == "client_first_name" || ve.Field == "client_last_name" {
					return fmt.Errorf("%s: %s (required by CinetPay's current API)", h, ve.Reason)
				}
				return fmt.Errorf("%s: %s", h, ve.Reason)
			}
		}
		return err
	}
	if ph := req.ClientPhoneNumber; ph != "" && !strings.HasPrefix(ph, pv.Country.CallingCode) {
		return fmt.Errorf("Cinetpay-Customer-Phone-Number: must be an international number of %s, starting with %s",
			pv.Country.Code, pv.Country.CallingCode)
	}
	if m := req.PaymentMethod; m != "" && !strings.HasSuffix(m, "_"+pv.Country.Code) {
		return fmt.Errorf("Cinetpay-Payment-Method: an operator code of %s, such as OM_%s", pv.Country.Code, pv.Country.Code)
	}
	return nil
}

// request is the POST /v1/payment request for an intent. First and last names come from the
// clearer First-Name and Last-Name headers, else from Checkout v2's Surname (the prénom) and
// Name.
func (pv *Provider) request(txid string, in *engine.Intent) *PaymentRequest {
	c := in.Customer
	ret := pv.ReturnBase + "?transaction_id=" + txid
	return &PaymentRequest{
		MerchantTransactionID: txid,
		Amount:                in.Amount,
		Currency:              in.Currency,
		Lang:                  in.Lang,
		Designation:           in.Description,
		ClientEmail:           c["customer_email"],
		ClientFirstName:       firstOf(c["customer_first_name"], c["customer_surname"]),
		ClientLastName:        firstOf(c["customer_last_name"], c["customer_name"]),
		ClientPhoneNumber:     c["customer_phone_number"],
		PaymentMethod:         in.PaymentMethod,
		SuccessURL:            ret,
		FailedURL:             ret,
		NotifyURL:             pv.NotifyURL,
	}
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Start implements engine.Provider with POST /v1/payment. It keeps CinetPay's transaction id
// and the payment's notify_token for the notifications to come.
func (pv *Provider) Start(ctx context.Context, p *storage.Payment, in *engine.Intent) (*engine.Started, error) {
	res, err := pv.API.InitPayment(ctx, pv.request(p.TransactionID, in))
	if err != nil {
		return nil, withHint(err) // wraps an *APIError: engine.Classified
	}
	return &engine.Started{PaymentURL: res.PaymentURL, PaymentToken: res.PaymentToken,
		ProviderID: res.TransactionID, NotifyToken: res.NotifyToken}, nil
}

// Status implements engine.Provider with GET /v1/payment/{merchant_transaction_id}. The answer
// has no amount or currency: an accepted payment is for what was started.
func (pv *Provider) Status(ctx context.Context, p *storage.Payment) (*engine.Answer, error) {
	st, err := pv.API.PaymentStatus(ctx, p.TransactionID)
	if err != nil {
		return nil, withHint(err)
	}
	if p.ProviderTransactionID != "" && st.TransactionID != "" && st.TransactionID != p.ProviderTransactionID {
		return nil, fmt.Errorf("status answer for CinetPay transaction %q, not the payment's", st.TransactionID)
	}
	return &engine.Answer{
		Verdict:   st.Verdict, // already an engine.Verdict
		Confirmed: storage.Confirmation{Status: st.Status},
		Summary:   fmt.Sprintf("code %d, status %s", st.Code, st.Status),
	}, nil
}

// withHint adds to an error what the operator should fix, for a refused login.
func withHint(err error) error {
	switch {
	case IsNotAllowed(err):
		return fmt.Errorf("%w: add this server's public IP address to the account's IP whitelist in CinetPay's "+
			"dashboard (API & sécurité); a dual-stack server calls over IPv6 unless ipv4_only is set", err)
	case IsInvalidCredentials(err):
		return fmt.Errorf("%w: check api_key and api_password (sk_test_ keys belong to api.cinetpay.net, sk_live_ to api.cinetpay.co)", err)
	}
	return err
}

// ReadNotice implements engine.Provider: JSON (or a form) with notify_token,
// merchant_transaction_id (our transaction id) and transaction_id (CinetPay's).
func (pv *Provider) ReadNotice(h http.Header, body []byte) (*engine.Notice, error) {
	n, err := ParseNotification(h.Get("Content-Type"), body)
	if errors.Is(err, ErrMissingField) {
		// a notification of ours without its notify_token is not authentic (401), not malformed
		if id := MerchantTransactionIDOf(h.Get("Content-Type"), body); id != "" {
			return &engine.Notice{TransactionID: id, Data: &Notification{MerchantTransactionID: id}}, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", engine.ErrMalformedNotice, err)
	}
	return &engine.Notice{TransactionID: n.MerchantTransactionID, Data: &n}, nil
}

// NoticeHeaders implements engine.Provider: ReadNotice reads Content-Type alone (the
// notify_token is in the body).
func (pv *Provider) NoticeHeaders() []string { return []string{"Content-Type"} }

// Verify implements engine.Provider: a notification of the current API carries no signature;
// it is authenticated against the stored payment (VerifyFor).
func (pv *Provider) Verify(*engine.Notice) error { return nil }

// VerifyFor implements engine.Provider: the notify_token must be the payment's (constant
// time), and CinetPay's transaction id, when both are known, the payment's. A payment whose
// start had no usable answer has no notify_token: its notifications are refused, and the
// re-checks settle it.
func (pv *Provider) VerifyFor(n *engine.Notice, p *storage.Payment) error {
	d, ok := n.Data.(*Notification)
	if !ok {
		return engine.ErrForged
	}
	if p.NotifyToken == "" {
		return engine.ErrUnverifiable
	}
	if !ValidNotifyToken(p.NotifyToken, d.NotifyToken) {
		return fmt.Errorf("%w: missing or wrong notify_token; is another system posting to this notify path?", engine.ErrForged)
	}
	if p.ProviderTransactionID != "" && d.TransactionID != "" && d.TransactionID != p.ProviderTransactionID {
		return fmt.Errorf("%w: the notification names another CinetPay transaction than the payment's", engine.ErrForged)
	}
	return nil
}

// PaymentURLAllowed implements engine.Provider (see PaymentURLAllowed).
func (pv *Provider) PaymentURLAllowed(raw string) bool { return PaymentURLAllowed(pv.Endpoint, raw) }
