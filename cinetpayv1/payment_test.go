package cinetpayv1

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func initAnswer(rp reply) func(recorded, int) reply {
	return func(recorded, int) reply { return rp }
}

func TestInitPaymentSuccess(t *testing.T) {
	f := newFake(t, nil, initAnswer(reply{status: 200, header: map[string]string{"Content-Type": "application/json"}, body: initOKBody}))
	p, err := f.client().InitPayment(bg, validRequest())
	if err != nil {
		t.Fatalf("InitPayment: %v", err)
	}
	want := PaymentInit{
		PaymentToken:          "payment-token",
		NotifyToken:           testNotifyToken,
		TransactionID:         "transaction-123",
		MerchantTransactionID: "order-123",
		PaymentURL:            "https://secure.cinetpay.net/payment/payment-token",
		Details: Details{
			Code:             2001,
			Status:           "INITIATED",
			Message:          "Veuillez cliquer sur le lien pour continuer le paiement",
			MustBeRedirected: true,
		},
	}
	if *p != want {
		t.Errorf("PaymentInit = %#v\nwant %#v", *p, want)
	}
	if !PaymentURLAllowed(SandboxEndpoint, p.PaymentURL) {
		t.Errorf("payment_url %q not allowed", p.PaymentURL)
	}
	f.wantCounts(t, 1, 1)
	r := f.requests()[0]
	if r.method != http.MethodPost || r.uri != PathPayment {
		t.Errorf("request %s %s, want POST %s", r.method, r.uri, PathPayment)
	}
	for h, want := range map[string]string{
		"Content-Type":  "application/json",
		"Accept":        "application/json",
		"User-Agent":    "caddy-cinetpay/1",
		"Authorization": "Bearer " + tokenN(1),
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}

	// The exact JSON CinetPay receives: the fact sheet's example request.
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	var got map[string]any
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("request body is not JSON: %v\n%s", err, r.body)
	}
	wantBody := map[string]any{
		"currency":                "XOF",
		"payment_method":          "OM_CI",
		"merchant_transaction_id": "order-123",
		"amount":                  json.Number("1000"),
		"lang":                    "fr",
		"designation":             "Test payment",
		"client_email":            "test@example.com",
		"client_first_name":       "Jane",
		"client_last_name":        "Doe",
		"client_phone_number":     "+2250707000000",
		"success_url":             "https://merchant.test/success",
		"failed_url":              "https://merchant.test/failed",
		"notify_url":              "https://merchant.test/notify",
	}
	if len(got) != len(wantBody) {
		t.Errorf("request has %d fields, want %d: %s", len(got), len(wantBody), r.body)
	}
	for k, v := range wantBody {
		if got[k] != v {
			t.Errorf("request %s = %#v, want %#v", k, got[k], v)
		}
	}
	if !bytes.Contains(r.body, []byte(`"amount":1000,`)) {
		t.Errorf("amount is not a JSON integer: %s", r.body)
	}
	const wantRaw = `{"currency":"XOF","payment_method":"OM_CI","merchant_transaction_id":"order-123","amount":1000,"lang":"fr","designation":"Test payment","client_email":"test@example.com","client_first_name":"Jane","client_last_name":"Doe","client_phone_number":"+2250707000000","success_url":"https://merchant.test/success","failed_url":"https://merchant.test/failed","notify_url":"https://merchant.test/notify"}`
	if string(r.body) != wantRaw {
		t.Errorf("request body\n%s\nwant\n%s", r.body, wantRaw)
	}
}

func TestInitPaymentOptionalFields(t *testing.T) {
	f := newFake(t, nil, initAnswer(reply{body: initOKBody}))
	c := f.client()
	req := validRequest()
	req.PaymentMethod, req.ClientPhoneNumber = "", ""
	req.SuccessURL = "https://merchant.test/return?tx=order-123&a=<b>"
	if _, err := c.InitPayment(bg, req); err != nil {
		t.Fatal(err)
	}
	req = validRequest()
	req.Channel = "PUSH"
	if _, err := c.InitPayment(bg, req); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	var first, second map[string]any
	json.Unmarshal(reqs[0].body, &first)
	json.Unmarshal(reqs[1].body, &second)
	for _, k := range []string{"payment_method", "client_phone_number", "channel"} {
		if _, ok := first[k]; ok {
			t.Errorf("empty %s sent: %s", k, reqs[0].body)
		}
	}
	if len(first) != 11 {
		t.Errorf("request has %d fields: %s", len(first), reqs[0].body)
	}
	if second["channel"] != "PUSH" || len(second) != 14 {
		t.Errorf("channel not sent: %s", reqs[1].body)
	}
	// URLs are sent as is, not HTML-escaped.
	if !bytes.Contains(reqs[0].body, []byte(`return?tx=order-123&a=<b>"`)) {
		t.Errorf("success_url mangled: %s", reqs[0].body)
	}
}

func TestInitPaymentEndpointPath(t *testing.T) {
	f := newFake(t, nil, initAnswer(reply{body: initOKBody}))
	mux := http.NewServeMux()
	mux.Handle("/sandbox/", http.StripPrefix("/sandbox", f.srv.Config.Handler))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := f.client()
	c.Endpoint = srv.URL + "/sandbox/"
	if _, err := c.InitPayment(bg, validRequest()); err != nil {
		t.Fatal(err)
	}
	f.wantCounts(t, 1, 1)
}

func TestInitPaymentAnswers(t *testing.T) {
	desc := func(code int, status, d string) string {
		b, _ := json.Marshal(map[string]any{"code": code, "status": status, "description": d})
		return string(b)
	}
	inDetails := func(code int, status string) string {
		return `{"code":200,"status":"OK","details":{"code":` + jsonInt(code) + `,"status":"` + status + `","message":"Invalid params"}}`
	}
	tests := []struct {
		name       string
		rp         reply
		outcome    Outcome
		code       int
		retryAfter time.Duration
		errText    string // exact Error(), when given
	}{
		// 1004 INVALID_PARAMS, wherever it is and whatever the HTTP status.
		{"1004 HTTP 200", reply{status: 200, body: desc(1004, "INVALID_PARAMS", "Amount too low")}, OutcomeRefused, 1004, 0, `cinetpay v1 init: code 1004 INVALID_PARAMS "Amount too low"`},
		{"1004 HTTP 400", reply{status: 400, body: desc(1004, "INVALID_PARAMS", "Amount too low")}, OutcomeRefused, 1004, 0, `cinetpay v1 init: code 1004 INVALID_PARAMS "Amount too low" (HTTP 400)`},
		{"1004 HTTP 422", reply{status: 422, body: desc(1004, "INVALID_PARAMS", "x")}, OutcomeRefused, 1004, 0, ""},
		{"1004 HTTP 500", reply{status: 500, body: desc(1004, "INVALID_PARAMS", "x")}, OutcomeRefused, 1004, 0, ""},
		{"1004 HTTP 429", reply{status: 429, body: desc(1004, "INVALID_PARAMS", "x")}, OutcomeRefused, 1004, 0, ""},
		{"1004 as a string", reply{status: 200, body: `{"code":"1004","status":"INVALID_PARAMS"}`}, OutcomeRefused, 1004, 0, "cinetpay v1 init: code 1004 INVALID_PARAMS"},
		{"1004 in details", reply{status: 200, body: inDetails(1004, "INVALID_PARAMS")}, OutcomeRefused, 1004, 0, `cinetpay v1 init: code 1004 INVALID_PARAMS "Invalid params"`},
		{"1004 in details HTTP 422", reply{status: 422, body: inDetails(1004, "INVALID_PARAMS")}, OutcomeRefused, 1004, 0, ""},
		{"1004 in details as a string", reply{status: 200, body: `{"code":"200","status":"OK","details":{"code":"1004","status":"INVALID_PARAMS"}}`}, OutcomeRefused, 1004, 0, ""},
		{"unknown word in details", reply{status: 200, body: `{"code":200,"status":"OK","details":{"code":1004,"status":"CURRENCY_NOT_ALLOWED"}}`}, OutcomeRefused, 1004, 0, "cinetpay v1 init: code 1004 CURRENCY_NOT_ALLOWED"},
		{"2011 in details", reply{status: 200, body: inDetails(2011, "NOT_ALLOWED")}, OutcomeRefused, 2011, 0, ""},
		{"1200 in details", reply{status: 200, body: inDetails(1200, "TRANSACTION_EXIST")}, OutcomeUnknown, 1200, 0, ""},
		{"2001 in details without url", reply{status: 200, body: inDetails(2001, "INITIATED")}, OutcomeUnknown, 2001, 0, ""},
		{"OK without url or details", reply{status: 200, body: `{"code":200,"status":"OK","payment_token":"t"}`}, OutcomeUnknown, 200, 0, "cinetpay v1 init: code 200 OK, no payment_url"},
		{"OK with details []", reply{status: 200, body: `{"code":200,"status":"OK","details":[]}`}, OutcomeUnknown, 200, 0, ""},
		{"OK with blank url", reply{status: 200, body: `{"code":200,"status":"OK","payment_url":"  "}`}, OutcomeUnknown, 200, 0, ""},

		// Other definite refusals.
		{"2011 HTTP 200", reply{status: 200, body: desc(2011, "NOT_ALLOWED", "This Ip is not withlisted")}, OutcomeRefused, 2011, 0, ""},
		{"2011 HTTP 401", reply{status: 401, body: desc(2011, "NOT_ALLOWED", "This Ip is not withlisted")}, OutcomeRefused, 2011, 0, ""},
		{"2011 HTTP 422", reply{status: 422, body: desc(2011, "NOT_ALLOWED", "This Ip is not withlisted")}, OutcomeRefused, 2011, 0, ""},
		{"2010 top-level", reply{status: 200, body: desc(2010, "FAILED", "x")}, OutcomeRefused, 2010, 0, ""},
		{"404 top-level", reply{status: 404, body: desc(404, "NOT_FOUND", "x")}, OutcomeRefused, 404, 0, ""},

		// 1200 TRANSACTION_EXIST: an earlier try reached CinetPay.
		{"1200 HTTP 200", reply{status: 200, body: desc(1200, "TRANSACTION_EXIST", "La transaction existe déjà")}, OutcomeUnknown, 1200, 0, `cinetpay v1 init: code 1200 TRANSACTION_EXIST "La transaction existe déjà", transaction already exists`},
		{"1200 HTTP 400", reply{status: 400, body: desc(1200, "TRANSACTION_EXIST", "Transaction already exists")}, OutcomeUnknown, 1200, 0, ""},
		{"1200 HTTP 409", reply{status: 409, body: desc(1200, "TRANSACTION_EXIST", "x")}, OutcomeUnknown, 1200, 0, ""},
		{"1200 HTTP 422", reply{status: 422, body: desc(1200, "TRANSACTION_EXIST", "x")}, OutcomeUnknown, 1200, 0, ""},
		{"1200 HTTP 429", reply{status: 429, body: desc(1200, "TRANSACTION_EXIST", "x")}, OutcomeUnknown, 1200, 0, ""},

		// -1 OPERATION_ERROR and other codes without a payment_url.
		{"-1 HTTP 200", reply{status: 200, body: `{"code":-1,"status":"OPERATION_ERROR"}`}, OutcomeUnknown, -1, 0, "cinetpay v1 init: code -1 OPERATION_ERROR"},
		{"-1 HTTP 400", reply{status: 400, body: `{"code":-1,"status":"OPERATION_ERROR"}`}, OutcomeUnknown, -1, 0, ""},
		{"-1 as a string HTTP 500", reply{status: 500, body: `{"code":"-1"}`}, OutcomeUnknown, -1, 0, ""},
		{"2001 top-level", reply{status: 200, body: `{"code":2001,"status":"INITIATED"}`}, OutcomeUnknown, 2001, 0, ""},
		{"100 top-level", reply{status: 200, body: `{"code":100,"status":"SUCCESS"}`}, OutcomeUnknown, 100, 0, ""},
		{"unknown code", reply{status: 200, body: `{"code":9999,"status":"SOMETHING_NEW"}`}, OutcomeUnknown, 9999, 0, "cinetpay v1 init: code 9999 SOMETHING_NEW, unexpected code"},
		{"url with error code", reply{status: 200, body: `{"code":2001,"payment_url":"https://secure.cinetpay.net/payment/x"}`}, OutcomeUnknown, 2001, 0, ""},

		// Rate limiting.
		{"HTTP 429 empty", reply{status: 429, header: map[string]string{"Retry-After": "30"}}, OutcomeRateLimited, 0, 30 * time.Second, "cinetpay v1 init: HTTP 429, too many requests, retry after 30s"},
		{"HTTP 429 HTML", reply{status: 429, body: "<html>Too Many Requests</html>"}, OutcomeRateLimited, 0, 0, ""},
		{"HTTP 429 JSON without code", reply{status: 429, body: `{"message":"slow down"}`, header: map[string]string{"Retry-After": "120"}}, OutcomeRateLimited, 0, 2 * time.Minute, ""},
		{"code 429", reply{status: 200, body: `{"code":429,"status":"TOO_MANY_REQUESTS"}`, header: map[string]string{"Retry-After": "5"}}, OutcomeRateLimited, 429, 5 * time.Second, ""},

		// No usable body.
		{"500 HTML", reply{status: 500, body: "<html><title>500</title></html>"}, OutcomeUnknown, 0, 0, "cinetpay v1 init: HTTP 500, unreadable answer"},
		{"502 HTML", reply{status: 502, body: "<html>Bad Gateway cloudflare</html>"}, OutcomeUnknown, 0, 0, ""},
		{"503 Retry-After", reply{status: 503, header: map[string]string{"Retry-After": "7"}}, OutcomeUnknown, 0, 7 * time.Second, ""},
		{"400 HTML", reply{status: 400, body: "<html>Bad Request</html>"}, OutcomeUnknown, 0, 0, ""},
		{"422 garbage", reply{status: 422, body: "\x00garbage"}, OutcomeUnknown, 0, 0, ""},
		{"garbage", reply{status: 200, body: "\x00\x01garbage \xff"}, OutcomeUnknown, 0, 0, "cinetpay v1 init: HTTP 200, unreadable answer"},
		{"empty body", reply{status: 200}, OutcomeUnknown, 0, 0, "cinetpay v1 init: HTTP 200, unreadable answer"},
		{"truncated JSON", reply{status: 200, body: `{"code":200,"payment_url":"https://secure`}, OutcomeUnknown, 0, 0, ""},
		{"JSON array", reply{status: 200, body: `[{"code":200}]`}, OutcomeUnknown, 0, 0, ""},
		{"JSON null", reply{status: 200, body: `null`}, OutcomeUnknown, 0, 0, ""},
		{"no code", reply{status: 200, body: `{"status":"OK"}`}, OutcomeUnknown, 0, 0, "cinetpay v1 init: HTTP 200, answer without a code"},
		{"code not numeric", reply{status: 200, body: `{"code":"abc","payment_url":"https://secure.cinetpay.net/p"}`}, OutcomeUnknown, 0, 0, ""},
		{"code with fraction", reply{status: 200, body: `{"code":1004.5}`}, OutcomeUnknown, 0, 0, ""},
		{"redirect", reply{status: 307, header: map[string]string{"Location": "/elsewhere"}}, OutcomeUnknown, 0, 0, "cinetpay v1 init: HTTP 307, unreadable answer"},

		// A success shape that is not usable.
		{"another merchant_transaction_id", reply{status: 200, body: strings.Replace(initOKBody, `"merchant_transaction_id": "order-123"`, `"merchant_transaction_id": "order-999"`, 1)}, OutcomeUnknown, 200, 0, "cinetpay v1 init: code 200 OK, answer is for another merchant_transaction_id"},
		{"payment_url not http", reply{status: 200, body: `{"code":200,"payment_url":"javascript:alert(1)"}`}, OutcomeUnknown, 200, 0, ""},
		{"payment_url relative", reply{status: 200, body: `{"code":200,"payment_url":"/payment/x"}`}, OutcomeUnknown, 200, 0, ""},

		// A message that is not a plain word does not reach Error().
		{"odd status word", reply{status: 200, body: `{"code":1004,"status":"<b>x</b>"}`}, OutcomeRefused, 1004, 0, "cinetpay v1 init: code 1004 INVALID_PARAMS"},
		{"control characters", reply{status: 200, body: `{"code":1004,"status":"INVALID_PARAMS","description":"a\u001b[31m\nb\u202e"}`}, OutcomeRefused, 1004, 0, `cinetpay v1 init: code 1004 INVALID_PARAMS "a [31m b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, nil, initAnswer(tt.rp))
			p, err := f.client().InitPayment(bg, validRequest())
			if p != nil {
				t.Errorf("got a PaymentInit %v with an error answer", p)
			}
			e := asAPIError(t, err, "init")
			if e.Outcome != tt.outcome {
				t.Errorf("Outcome = %v, want %v (%v)", e.Outcome, tt.outcome, err)
			}
			if e.Code != tt.code {
				t.Errorf("Code = %d, want %d", e.Code, tt.code)
			}
			if e.HTTPStatus != max(tt.rp.status, 200) {
				t.Errorf("HTTPStatus = %d, want %d", e.HTTPStatus, tt.rp.status)
			}
			if e.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tt.retryAfter)
			}
			if e.Timeout() {
				t.Error("Timeout() = true")
			}
			if strings.Contains(err.Error(), "garbage") || strings.Contains(err.Error(), "<html>") {
				t.Errorf("Error() contains the body: %q", err.Error())
			}
			if tt.errText != "" && err.Error() != tt.errText {
				t.Errorf("Error() = %q\nwant      %q", err.Error(), tt.errText)
			}
			// No retry inside the client for these answers.
			f.wantCounts(t, 1, 1)
		})
	}
}

func jsonInt(n int) string { b, _ := json.Marshal(n); return string(b) }

// The body decides: a success body with an odd HTTP status is a success.
func TestInitPaymentSuccessWithOddHTTPStatus(t *testing.T) {
	for _, status := range []int{201, 400, 500} {
		f := newFake(t, nil, initAnswer(reply{status: status, body: initOKBody}))
		p, err := f.client().InitPayment(bg, validRequest())
		if err != nil || p.PaymentToken != "payment-token" {
			t.Errorf("HTTP %d: %v, %v", status, p, err)
		}
	}
}

func TestInitPaymentTolerantSuccess(t *testing.T) {
	body := "\xef\xbb\xbf {\"code\":\"200\",\"payment_url\":\" https://checkout.cinetpay.co/pay/x \",\"payment_token\":123," +
		"\"details\":{\"code\":\"2001\",\"must_be_redirected\":\"true\"},\"extra\":{\"a\":[1,2]}}\n"
	f := newFake(t, nil, initAnswer(reply{body: body}))
	p, err := f.client().InitPayment(bg, validRequest())
	if err != nil {
		t.Fatal(err)
	}
	want := PaymentInit{PaymentToken: "123", MerchantTransactionID: testMTID, PaymentURL: "https://checkout.cinetpay.co/pay/x",
		Details: Details{Code: 2001, MustBeRedirected: true}}
	if *p != want {
		t.Errorf("PaymentInit = %#v", *p)
	}
	// A direct-payment answer: must_be_redirected false, details FAILED.
	f = newFake(t, nil, initAnswer(reply{body: `{"code":200,"status":"OK","payment_url":"https://secure.cinetpay.net/payment/t",
		"details":{"code":2010,"status":"FAILED","message":"Paiement echoue","must_be_redirected":false}}`}))
	p, err = f.client().InitPayment(bg, validRequest())
	if err != nil || p.Details.Code != 2010 || p.Details.MustBeRedirected {
		t.Errorf("direct answer: %+v, %v", p, err)
	}
}

// blockingCall answers nothing until the client gives up; with headersFirst
// it sends the headers and stalls in the body.
func blockingCall(headersFirst bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == PathLogin {
			io.WriteString(w, loginOK(1, "86400").body)
			return
		}
		if headersFirst {
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, `{"code":200,`)
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
}

func TestInitPaymentTimeout(t *testing.T) {
	for _, headersFirst := range []bool{false, true} {
		srv := httptest.NewServer(blockingCall(headersFirst))
		c := &Client{Endpoint: srv.URL, APIKey: testAPIKey, APIPassword: testAPIPassword, Timeout: 150 * time.Millisecond}
		_, err := c.InitPayment(bg, validRequest())
		e := asAPIError(t, err, "init")
		if e.Outcome != OutcomeUnknown || !e.Timeout() || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("headersFirst=%v: Outcome = %v, Timeout() = %v, err = %v", headersFirst, e.Outcome, e.Timeout(), err)
		}
		if !strings.HasPrefix(err.Error(), "cinetpay v1 init: timeout after 150ms") {
			t.Errorf("Error() = %q", err.Error())
		}
		srv.Close()
	}
}

// An answer cut short (connection closed) has an unknown outcome.
func TestInitPaymentConnectionDropped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == PathLogin {
			io.WriteString(w, loginOK(1, "").body)
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"code\":200")
		buf.Flush()
		conn.Close()
	}))
	defer srv.Close()
	c := &Client{Endpoint: srv.URL, APIKey: testAPIKey, APIPassword: testAPIPassword}
	_, err := c.InitPayment(bg, validRequest())
	e := asAPIError(t, err, "init")
	if e.Outcome != OutcomeUnknown || e.HTTPStatus != 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Outcome = %v, HTTPStatus = %d, err = %v", e.Outcome, e.HTTPStatus, err)
	}
	if err.Error() != "cinetpay v1 init: network error: unexpected EOF, HTTP 200" {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	c := &Client{Endpoint: u, APIKey: testAPIKey, APIPassword: testAPIPassword}
	_, err := c.InitPayment(bg, validRequest())
	e := asAPIError(t, err, "login")
	if e.Outcome != OutcomeRefused || e.HTTPStatus != 0 || e.Err == nil || e.Timeout() {
		t.Errorf("Outcome = %v, HTTPStatus = %d, Err = %v", e.Outcome, e.HTTPStatus, e.Err)
	}
	if !strings.HasPrefix(err.Error(), "cinetpay v1 login: network error: ") || strings.Contains(err.Error(), u) {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestInitPaymentInvalidRequestNotSent(t *testing.T) {
	f := newFake(t, nil, initAnswer(reply{body: initOKBody}))
	c := f.client()
	req := validRequest()
	req.ClientEmail = "not-an-address"
	_, err := c.InitPayment(bg, req)
	e := asAPIError(t, err, "init")
	var ve *ValidationError
	if e.Outcome != OutcomeRefused || !errors.As(err, &ve) || ve.Field != "client_email" {
		t.Errorf("Outcome = %v, err = %v", e.Outcome, err)
	}
	if err.Error() != "cinetpay v1 init: invalid request: client_email is not an e-mail address" {
		t.Errorf("Error() = %q", err.Error())
	}
	if strings.Contains(err.Error(), "not-an-address") {
		t.Error("Error() contains the value")
	}
	if _, err := c.InitPayment(bg, nil); OutcomeOf(err) != OutcomeRefused {
		t.Errorf("nil request: %v", err)
	}
	f.wantCounts(t, 0, 0)
}

func TestInvalidEndpoint(t *testing.T) {
	for _, ep := range []string{"ftp://example.com", "example.com", "https://", "https://x.example/?a=b", "https://u:p@x.example", "://bad", "https://x.example/#f"} {
		c := &Client{Endpoint: ep, APIKey: testAPIKey, APIPassword: testAPIPassword}
		_, err := c.PaymentStatus(bg, testMTID)
		e := asAPIError(t, err, "login")
		if e.Outcome != OutcomeRefused || err.Error() != "cinetpay v1 login: invalid endpoint" {
			t.Errorf("endpoint %q: %v", ep, err)
		}
	}
}

func TestRedirectsNotFollowed(t *testing.T) {
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc(PathLogin, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		followed.Add(1)
		io.WriteString(w, loginOK(1, "").body)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, hc := range []*http.Client{nil, {}, {CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}} {
		c := &Client{Endpoint: srv.URL, APIKey: testAPIKey, APIPassword: testAPIPassword, HTTPClient: hc}
		_, err := c.PaymentStatus(bg, testMTID)
		if e := asAPIError(t, err, "login"); e.HTTPStatus != http.StatusTemporaryRedirect {
			t.Errorf("HTTPStatus = %d", e.HTTPStatus)
		}
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}

func TestAnswerTooLarge(t *testing.T) {
	big := `{"code":200,"payment_url":"https://secure.cinetpay.net/p","pad":"` + strings.Repeat("x", maxResponseBody) + `"}`
	f := newFake(t, nil, initAnswer(reply{body: big}))
	_, err := f.client().InitPayment(bg, validRequest())
	if e := asAPIError(t, err, "init"); e.Outcome != OutcomeUnknown || !strings.Contains(err.Error(), "unreadable answer") {
		t.Errorf("Outcome = %v, err = %v", e.Outcome, err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              0,
		"0":                             0,
		"30":                            30 * time.Second,
		" 5 ":                           5 * time.Second,
		"-5":                            0,
		"1.5":                           0,
		"abc":                           0,
		"99999999999999999999999":       24 * time.Hour,
		"Fri, 01 May 2026 12:01:00 GMT": time.Minute,
		"Fri, 01 May 2026 11:59:00 GMT": 0,
		"Sat, 01 May 2027 12:00:00 GMT": 24 * time.Hour,
	}
	for in, want := range tests {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}
