package cinetpay

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Provider is Checkout v2 as the payment engine uses it (engine.Provider): it turns the
// engine's intents into /v2/payment requests and /v2/payment/check answers into verdicts.
type Provider struct {
	// API is the Checkout v2 client (a *Client, or a test double).
	API API
	// Endpoint is the API's base URL: payment pages on its host are allowed too.
	Endpoint string
	// SiteID is the site's site_id; SecretKey the Secret Key that keys the x-token.
	SiteID, SecretKey string
	// NotifyURL is the site's notification address; ReturnBase its return address, to which
	// "?transaction_id=<id>" is appended.
	NotifyURL, ReturnBase string
}

var _ engine.Provider = (*Provider)(nil)

// Start implements engine.Provider with POST /v2/payment.
func (pv *Provider) Start(ctx context.Context, p *storage.Payment, in *engine.Intent) (*engine.Started, error) {
	res, err := pv.API.InitPayment(ctx, pv.request(p.TransactionID, in))
	if err != nil {
		return nil, err // an *Error: engine.Classified
	}
	return &engine.Started{PaymentURL: res.PaymentURL, PaymentToken: res.PaymentToken}, nil
}

// request is the /v2/payment request for an intent.
func (pv *Provider) request(txid string, in *engine.Intent) *PaymentRequest {
	req := &PaymentRequest{
		TransactionID: txid,
		Amount:        in.Amount,
		Currency:      in.Currency,
		Description:   in.Description,
		NotifyURL:     pv.NotifyURL,
		ReturnURL:     pv.ReturnBase + "?transaction_id=" + txid,
		Channels:      in.Channels,
		Lang:          in.Lang,
	}
	if in.Metadata != "" {
		req.Metadata = base64.StdEncoding.EncodeToString([]byte(in.Metadata))
	}
	c := in.Customer
	// Checkout v2's surname is the first name (prénom); the clearer headers fill in for it
	req.CustomerID, req.CustomerName, req.CustomerSurname = c["customer_id"], c["customer_name"], c["customer_surname"]
	if req.CustomerName == "" {
		req.CustomerName = c["customer_last_name"]
	}
	if req.CustomerSurname == "" {
		req.CustomerSurname = c["customer_first_name"]
	}
	req.CustomerEmail, req.CustomerPhoneNumber = c["customer_email"], c["customer_phone_number"]
	req.CustomerAddress, req.CustomerCity, req.CustomerCountry = c["customer_address"], c["customer_city"], c["customer_country"]
	req.CustomerState, req.CustomerZipCode = c["customer_state"], c["customer_zip_code"]
	return req
}

// Status implements engine.Provider with /v2/payment/check. It decides on code and
// data.status only (Verdict); the answer always confirms an amount and a currency, in
// canonical form, which the engine compares with those asked.
func (pv *Provider) Status(ctx context.Context, p *storage.Payment) (*engine.Answer, error) {
	cr, err := pv.API.CheckPayment(ctx, p.TransactionID)
	if err != nil {
		return nil, err
	}
	return answerOf(cr), nil
}

// answerOf is what a /v2/payment/check answer means for the engine.
func answerOf(cr *CheckResult) *engine.Answer {
	d := cr.Data
	amount, _ := d.CanonicalAmount()
	a := &engine.Answer{
		AmountConfirmed: true,
		Confirmed: storage.Confirmation{Amount: amount, Currency: d.Currency, Status: d.Status,
			PaymentMethod: d.PaymentMethod, OperatorID: d.OperatorID, PaymentDate: d.PaymentDate},
		Summary: fmt.Sprintf("code %s, status %s", cr.Code, d.Status),
	}
	if raw := strings.TrimSpace(d.Amount); raw != amount {
		a.Confirmed.RawAmount = raw
	}
	a.Verdict = cr.Verdict() // already an engine.Verdict
	return a
}

// Validate implements engine.Provider: the module already holds intents to Checkout v2's rules
// (currencies, channels, the multiple of 5), so there is nothing more to check.
func (pv *Provider) Validate(*engine.Intent) error { return nil }

// notice is a Checkout v2 notification as read: its fields and the x-token header.
type notice struct {
	fields map[string]string
	token  string
}

// ReadNotice implements engine.Provider: a form (or JSON with string values) of cpm_* fields,
// with the x-token header; the transaction is cpm_trans_id.
func (pv *Provider) ReadNotice(h http.Header, body []byte) (*engine.Notice, error) {
	fields, err := ParseNotification(h.Get("Content-Type"), body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", engine.ErrMalformedNotice, err)
	}
	return &engine.Notice{TransactionID: fields["cpm_trans_id"],
		Data: &notice{fields: fields, token: h.Get(XTokenHeader)}}, nil
}

// NoticeHeaders implements engine.Provider: ReadNotice reads Content-Type and the x-token.
func (pv *Provider) NoticeHeaders() []string { return []string{"Content-Type", XTokenHeader} }

// Verify implements engine.Provider: the x-token (HMAC-SHA256 with the Secret Key over the 16
// cpm_* fields, compared in constant time), then the site id.
func (pv *Provider) Verify(n *engine.Notice) error {
	d, ok := n.Data.(*notice)
	if !ok || !ValidXToken(pv.SecretKey, d.fields, d.token) {
		return fmt.Errorf("%w: missing or wrong x-token; check secret_key (the Secret Key of the back office, not the API key)", engine.ErrForged)
	}
	if d.fields["cpm_site_id"] != pv.SiteID {
		return engine.ErrWrongSite
	}
	return nil
}

// PaymentURLAllowed implements engine.Provider: https on CinetPay's host or the endpoint's, or,
// for a local endpoint, its own host and port.
func (pv *Provider) PaymentURLAllowed(raw string) bool {
	u, err := url.Parse(raw)
	e, eerr := url.Parse(pv.Endpoint)
	if err != nil || eerr != nil || u.Host == "" || u.User != nil {
		return false
	}
	if engine.IsLoopbackHost(e.Hostname()) {
		return strings.EqualFold(u.Host, e.Host) && (u.Scheme == "http" || u.Scheme == "https")
	}
	return u.Scheme == "https" && (IsCinetPayHost(u.Hostname()) || strings.EqualFold(u.Host, e.Host))
}

// VerifyFor implements engine.Provider: a Checkout v2 notification carries nothing to compare
// with the stored payment.
func (pv *Provider) VerifyFor(*engine.Notice, *storage.Payment) error { return nil }
