package cinetpayv1

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// stubAPI answers with what it is given and records the request.
type stubAPI struct {
	initErr error
	st      *Status
	stErr   error
	req     *PaymentRequest
}

func (f *stubAPI) InitPayment(_ context.Context, req *PaymentRequest) (*PaymentInit, error) {
	f.req = req
	if f.initErr != nil {
		return nil, f.initErr
	}
	return &PaymentInit{PaymentToken: "ptok", NotifyToken: "ntok-secret", TransactionID: "3de579e7ec43451a9463d45d21a4cf48",
		MerchantTransactionID: req.MerchantTransactionID, PaymentURL: "https://secure.cinetpay.net/payment/ptok"}, nil
}

func (f *stubAPI) PaymentStatus(context.Context, string) (*Status, error) { return f.st, f.stErr }

func testProvider(f *stubAPI) *Provider {
	ci, _ := LookupCountry("CI")
	return &Provider{API: f, Country: ci, NotifyURL: "https://shop.test/cinetpay/notify",
		ReturnBase: "https://shop.test/cinetpay/return"}
}

func intent() *engine.Intent {
	return &engine.Intent{OrderID: "o1", Amount: 5000, Currency: "XOF", Description: "Order o1", Lang: "fr",
		Customer: map[string]string{"customer_email": "aya@example.test", "customer_surname": "Aya",
			"customer_name": "Kouadio", "customer_phone_number": "+2250707000000"}}
}

// Intents are checked against the current API's rules before anything is stored, and the
// errors name the shop's headers.
func TestProviderValidate(t *testing.T) {
	pv := testProvider(&stubAPI{})
	if err := pv.Validate(intent()); err != nil {
		t.Fatalf("valid intent: %v", err)
	}
	for _, c := range []struct {
		edit func(*engine.Intent)
		want string
	}{
		{func(in *engine.Intent) { in.Currency = "XAF" }, "Cinetpay-Currency: an account of CI takes XOF only"},
		{func(in *engine.Intent) { in.Amount = 50 }, "Cinetpay-Amount"},
		{func(in *engine.Intent) { in.Amount = 3_000_000 }, "Cinetpay-Amount"},
		{func(in *engine.Intent) { delete(in.Customer, "customer_email") }, "Cinetpay-Customer-Email"},
		{func(in *engine.Intent) { delete(in.Customer, "customer_surname") }, "Cinetpay-Customer-First-Name"},
		{func(in *engine.Intent) { delete(in.Customer, "customer_name") }, "Cinetpay-Customer-Last-Name"},
		{func(in *engine.Intent) { in.Customer["customer_phone_number"] = "+2210707000000" }, "starting with +225"},
		{func(in *engine.Intent) { in.Customer["customer_phone_number"] = "0707000000" }, "Cinetpay-Customer-Phone-Number"},
		{func(in *engine.Intent) { in.PaymentMethod = "OM_SN" }, "Cinetpay-Payment-Method"},
	} {
		in := intent()
		c.edit(in)
		if err := pv.Validate(in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
	// the clearer headers win over Checkout v2's
	in := intent()
	in.Customer["customer_first_name"], in.Customer["customer_last_name"] = "Adjoua", "Kouassi"
	in.PaymentMethod = "OM_CI"
	if err := pv.Validate(in); err != nil {
		t.Fatal(err)
	}
	r := pv.request("TXA", in)
	if r.ClientFirstName != "Adjoua" || r.ClientLastName != "Kouassi" || r.PaymentMethod != "OM_CI" ||
		r.SuccessURL != "https://shop.test/cinetpay/return?transaction_id=TXA" || r.FailedURL != r.SuccessURL ||
		r.NotifyURL != "https://shop.test/cinetpay/notify" || r.MerchantTransactionID != "TXA" {
		t.Fatalf("request %+v", r)
	}
}

// A start keeps CinetPay's id and the notify_token; failures are classified for the engine.
func TestProviderStart(t *testing.T) {
	f := &stubAPI{}
	pv := testProvider(f)
	p := &storage.Payment{TransactionID: "TXA"}
	st, err := pv.Start(context.Background(), p, intent())
	if err != nil || st.NotifyToken != "ntok-secret" || st.ProviderID == "" || st.PaymentURL == "" || st.PaymentToken != "ptok" {
		t.Fatalf("%+v %v", st, err)
	}
	if f.req.ClientFirstName != "Aya" || f.req.ClientLastName != "Kouadio" {
		t.Fatalf("names from Checkout v2's headers: %+v", f.req)
	}
	for _, c := range []struct {
		err   error
		class engine.Outcome
		hint  string
	}{
		{&APIError{Op: "init", Code: CodeInvalidParams, Outcome: OutcomeRefused}, engine.OutcomeRefused, ""},
		{&APIError{Op: "login", Code: CodeNotAllowed, Outcome: OutcomeRefused}, engine.OutcomeRefused, "ipv4_only"},
		{&APIError{Op: "login", Code: CodeInvalidCredentials, Outcome: OutcomeRefused}, engine.OutcomeRefused, "api_password"},
		{&APIError{Op: "init", HTTPStatus: 429, Outcome: OutcomeRateLimited, RetryAfter: 2 * time.Second}, engine.OutcomeRateLimited, ""},
		{&APIError{Op: "init", Code: CodeTransactionExist, Outcome: OutcomeUnknown}, engine.OutcomeUnknown, ""},
		{errors.New("network"), engine.OutcomeUnknown, ""},
	} {
		f.initErr = c.err
		_, err := pv.Start(context.Background(), p, intent())
		class, _ := engine.OutcomeOf(err)
		if err == nil || class != c.class || (c.hint != "" && !strings.Contains(err.Error(), c.hint)) {
			t.Errorf("%v: class %v, %v", c.err, class, err)
		}
	}
}

// Status codes become verdicts; the answer confirms no amount.
func TestProviderStatus(t *testing.T) {
	f := &stubAPI{}
	pv := testProvider(f)
	p := &storage.Payment{TransactionID: "TXA", ProviderTransactionID: "cp1"}
	for v, want := range map[Verdict]engine.Verdict{VerdictAccepted: engine.Accepted, VerdictRefused: engine.Refused,
		VerdictExpired: engine.Expired, VerdictPending: engine.Pending, VerdictNotFound: engine.NotFound} {
		f.st, f.stErr = &Status{Verdict: v, Code: 100, Status: "SUCCESS", TransactionID: "cp1"}, nil
		a, err := pv.Status(context.Background(), p)
		if err != nil || a.Verdict != want || a.AmountConfirmed || a.Confirmed.Amount != "" {
			t.Errorf("%v: %+v %v", v, a, err)
		}
	}
	// an answer about another CinetPay transaction is not usable
	f.st = &Status{Verdict: VerdictAccepted, Code: 100, TransactionID: "cp2"}
	if _, err := pv.Status(context.Background(), p); err == nil {
		t.Fatal("answer for another transaction accepted")
	}
	f.st, f.stErr = nil, &APIError{Op: "status", HTTPStatus: 503}
	if a, err := pv.Status(context.Background(), p); err == nil || a != nil {
		t.Fatalf("outage: %+v %v", a, err)
	}
}

// Notifications are read as JSON (or forms) and authenticated against the stored payment.
func TestProviderNotices(t *testing.T) {
	pv := testProvider(&stubAPI{})
	h := http.Header{"Content-Type": {"application/json"}}
	body := `{"notify_token":"ntok-secret","merchant_transaction_id":"TXA","transaction_id":"cp1","user":{"name":"A"}}`
	n, err := pv.ReadNotice(h, []byte(body))
	if err != nil || n.TransactionID != "TXA" {
		t.Fatalf("%+v %v", n, err)
	}
	if err := pv.Verify(n); err != nil {
		t.Fatal(err)
	}
	p := &storage.Payment{TransactionID: "TXA", NotifyToken: "ntok-secret", ProviderTransactionID: "cp1"}
	if err := pv.VerifyFor(n, p); err != nil {
		t.Fatalf("right token: %v", err)
	}
	for name, q := range map[string]*storage.Payment{
		"wrong token":       {TransactionID: "TXA", NotifyToken: "other", ProviderTransactionID: "cp1"},
		"no stored token":   {TransactionID: "TXA"},
		"other CinetPay id": {TransactionID: "TXA", NotifyToken: "ntok-secret", ProviderTransactionID: "cp9"},
	} {
		if err := pv.VerifyFor(n, q); !errors.Is(err, engine.ErrForged) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := pv.ReadNotice(h, []byte(`{"merchant_transaction_id":1}`)); !errors.Is(err, engine.ErrMalformedNotice) {
		t.Fatalf("malformed: %v", err)
	}
}
