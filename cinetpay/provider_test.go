package cinetpay

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// What /v2/payment/check answers mean for the engine: decided on code and data.status, the
// amount always confirmed and in canonical form, CinetPay's text kept beside it.
func TestProviderAnswers(t *testing.T) {
	for _, c := range []struct {
		code, status, amount string
		verdict              engine.Verdict
		canonical, raw       string
	}{
		{"00", "ACCEPTED", "5000", engine.Accepted, "5000", ""},
		{"00", "ACCEPTED", "5000.00", engine.Accepted, "5000", "5000.00"},
		{"00", "ACCEPTED", "5000.0", engine.Accepted, "5000", "5000.0"},
		{"00", "ACCEPTED", "05000", engine.Accepted, "5000", "05000"},
		{"00", "ACCEPTED", "0995.50", engine.Accepted, "995.5", "0995.50"},
		{"662", "ACCEPTED", "5000", engine.Pending, "5000", ""},
		{"627", "REFUSED", "5000", engine.Refused, "5000", ""},
		{"662", "WAITING_FOR_CUSTOMER", "5000", engine.Pending, "5000", ""},
		{"00", "SOMETHING_NEW", "5000", engine.Pending, "5000", ""},
	} {
		a := answerOf(&CheckResult{Code: c.code, Data: &PaymentData{Status: c.status, Amount: c.amount, Currency: "XOF", PaymentMethod: "OM"}})
		if a.Verdict != c.verdict || !a.AmountConfirmed || a.Confirmed.Amount != c.canonical || a.Confirmed.RawAmount != c.raw ||
			a.Confirmed.Currency != "XOF" || a.Confirmed.PaymentMethod != "OM" || a.Summary == "" {
			t.Errorf("%s %s %s: %+v", c.code, c.status, c.amount, a)
		}
	}
}

// fakeAPI answers InitPayment with err and CheckPayment with cr.
type fakeAPI struct {
	err error
	cr  *CheckResult
	req *PaymentRequest
}

func (f *fakeAPI) InitPayment(_ context.Context, req *PaymentRequest) (*PaymentStart, error) {
	f.req = req
	if f.err != nil {
		return nil, f.err
	}
	return &PaymentStart{PaymentToken: "tok", PaymentURL: "https://checkout.cinetpay.com/payment/tok"}, nil
}

func (f *fakeAPI) CheckPayment(context.Context, string) (*CheckResult, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.cr, nil
}

// Start outcomes are classified for the engine; the request carries the site's addresses.
func TestProviderStart(t *testing.T) {
	p := &storage.Payment{TransactionID: "TXA"}
	in := &engine.Intent{OrderID: "o1", Amount: 1000, Currency: "XOF", Description: "Order o1", Channels: "ALL",
		Lang: "fr", Metadata: "cart=1", Customer: map[string]string{"customer_name": "Kouassi"}}
	f := &fakeAPI{}
	pv := &Provider{API: f, NotifyURL: "https://shop.test/cinetpay/notify", ReturnBase: "https://shop.test/cinetpay/return"}
	st, err := pv.Start(context.Background(), p, in)
	if err != nil || st.PaymentURL == "" || st.PaymentToken != "tok" {
		t.Fatalf("start: %+v %v", st, err)
	}
	if r := f.req; r.TransactionID != "TXA" || r.ReturnURL != "https://shop.test/cinetpay/return?transaction_id=TXA" ||
		r.NotifyURL != pv.NotifyURL || r.Metadata != "Y2FydD0x" || r.CustomerName != "Kouassi" || r.Amount != 1000 {
		t.Fatalf("request %+v", r)
	}
	for _, c := range []struct {
		err   error
		class engine.Outcome
		retry time.Duration
	}{
		{&Error{Op: "payment", Code: "609", Outcome: OutcomeRefused}, engine.OutcomeRefused, 0},
		{&Error{Op: "payment", Code: "429", Outcome: OutcomeRateLimited, RetryAfter: 3 * time.Second}, engine.OutcomeRateLimited, 3 * time.Second},
		{&Error{Op: "payment", HTTPStatus: 502, Outcome: OutcomeUnknown}, engine.OutcomeUnknown, 0},
		{errors.New("anything else"), engine.OutcomeUnknown, 0},
	} {
		f.err = c.err
		_, err := pv.Start(context.Background(), p, in)
		if class, retry := engine.OutcomeOf(err); err == nil || class != c.class || retry != c.retry {
			t.Errorf("%v: class %v, retry %v", c.err, class, retry)
		}
	}
	// no usable answer to a check is an error for the engine
	f.err = &Error{Op: "check", HTTPStatus: 503}
	if a, err := pv.Status(context.Background(), p); err == nil || a != nil {
		t.Fatalf("status during an outage: %+v %v", a, err)
	}
}
