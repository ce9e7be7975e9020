package cinetpayv1

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func statusBody(code, status, mtid string) string {
	b := `{"code":` + code + `,"status":"` + status + `"`
	if mtid != "" {
		b += `,"merchant_transaction_id":"` + mtid + `","transaction_id":"transaction-123"`
	}
	return b + "}"
}

func TestPaymentStatusVerdicts(t *testing.T) {
	tests := []struct {
		name    string
		rp      reply
		verdict Verdict
		code    int
	}{
		{"100 SUCCESS", reply{body: statusOKBody}, VerdictAccepted, 100},
		{"100 official README sample", reply{body: `{"code":100,"status":"SUCCESS","merchant_transaction_id":"order-123","transaction_id":"27ba5590f3ae4c6f9585ae1e4f5265dd"}`}, VerdictAccepted, 100},
		{"100 as a string", reply{body: statusBody(`"100"`, "SUCCESS", testMTID)}, VerdictAccepted, 100},
		{"100 HTTP 500", reply{status: 500, body: statusBody("100", "SUCCESS", testMTID)}, VerdictAccepted, 100},
		{"100 without ids", reply{body: `{"code":100,"status":"SUCCESS"}`}, VerdictAccepted, 100},
		{"2010 FAILED", reply{body: statusBody("2010", "FAILED", testMTID)}, VerdictRefused, 2010},
		{"2010 HTTP 400", reply{status: 400, body: statusBody("2010", "FAILED", testMTID)}, VerdictRefused, 2010},
		{"2005 INSUFFICIENT_BALANCE", reply{body: statusBody("2005", "INSUFFICIENT_BALANCE", testMTID)}, VerdictRefused, 2005},
		{"2003 EXPIRED", reply{body: statusBody("2003", "EXPIRED", testMTID)}, VerdictExpired, 2003},
		{"2001 INITIATED", reply{body: statusBody("2001", "INITIATED", testMTID)}, VerdictPending, 2001},
		{"2002 PENDING", reply{body: statusBody("2002", "PENDING", testMTID)}, VerdictPending, 2002},
		{"2002 as a string", reply{body: statusBody(`" 2002 "`, "PENDING", testMTID)}, VerdictPending, 2002},
		{"404 HTTP 422", reply{status: 422, body: `{"code":404,"status":"NOT_FOUND","description":"Not found"}`}, VerdictNotFound, 404},
		{"404 HTTP 200", reply{status: 200, body: `{"code":404,"status":"NOT_FOUND"}`}, VerdictNotFound, 404},
		{"404 HTTP 404", reply{status: 404, body: `{"code":"404","status":"NOT_FOUND"}`}, VerdictNotFound, 404},
		// The code decides, never the status word.
		{"2010 says SUCCESS", reply{body: statusBody("2010", "SUCCESS", testMTID)}, VerdictRefused, 2010},
		{"2001 says SUCCESS", reply{body: statusBody("2001", "SUCCESS", testMTID)}, VerdictPending, 2001},
		{"100 says FAILED", reply{body: statusBody("100", "FAILED", testMTID)}, VerdictAccepted, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, nil, initAnswer(tt.rp))
			st, err := f.client().PaymentStatus(bg, testMTID)
			if err != nil {
				t.Fatalf("PaymentStatus: %v", err)
			}
			if st.Verdict != tt.verdict || st.Code != tt.code {
				t.Errorf("Verdict = %v, Code = %d; want %v, %d", st.Verdict, st.Code, tt.verdict, tt.code)
			}
			if st.HTTPStatus != max(tt.rp.status, 200) {
				t.Errorf("HTTPStatus = %d", st.HTTPStatus)
			}
			f.wantCounts(t, 1, 1)
		})
	}
}

func TestPaymentStatusFields(t *testing.T) {
	f := newFake(t, nil, initAnswer(reply{body: statusOKBody}))
	st, err := f.client().PaymentStatus(bg, testMTID)
	if err != nil {
		t.Fatal(err)
	}
	want := Status{Verdict: VerdictAccepted, Code: 100, Status: "SUCCESS", MerchantTransactionID: "order-123",
		TransactionID: "transaction-123", HTTPStatus: 200}
	u := st.User
	st.User = nil
	if *st != want {
		t.Errorf("Status = %+v\nwant %+v", *st, want)
	}
	if u == nil || *u != (User{Name: "Doe John", Email: "john.doe@gmail.com", PhoneNumber: "+2250707000000"}) {
		t.Errorf("User = %+v", u)
	}
	r := f.requests()[0]
	if r.method != http.MethodGet || r.uri != "/v1/payment/order-123" || len(r.body) != 0 {
		t.Errorf("request %s %s %q", r.method, r.uri, r.body)
	}
	for h, want := range map[string]string{
		"Accept":        "application/json",
		"Content-Type":  "application/json",
		"User-Agent":    DefaultUserAgent,
		"Authorization": "Bearer " + tokenN(1),
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	// user of another shape is ignored.
	f = newFake(t, nil, initAnswer(reply{body: `{"code":2001,"user":"someone"}`}))
	if st, err := f.client().PaymentStatus(bg, testMTID); err != nil || st.User != nil {
		t.Errorf("user string: %+v, %v", st, err)
	}
}

func TestPaymentStatusEscapesID(t *testing.T) {
	for id, uri := range map[string]string{
		"a/b c":    "/v1/payment/a%2Fb%20c",
		"x?y#z":    "/v1/payment/x%3Fy%23z",
		"é+%":      "/v1/payment/%C3%A9%2B%25",
		"A-z_0.9~": "/v1/payment/A-z_0.9~",
		"...":      "/v1/payment/...",
	} {
		f := newFake(t, nil, initAnswer(reply{body: `{"code":2001}`}))
		if _, err := f.client().PaymentStatus(bg, id); err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		if got := f.requests()[0].uri; got != uri {
			t.Errorf("id %q: request URI %q, want %q", id, got, uri)
		}
	}
	f := newFake(t, nil, initAnswer(reply{body: `{"code":2001}`}))
	for _, id := range []string{"", ".", "..", "a\nb", "\xff", strings.Repeat("x", 256)} {
		_, err := f.client().PaymentStatus(bg, id)
		if e := asAPIError(t, err, "status"); e.Outcome != OutcomeRefused {
			t.Errorf("id %q: %v", id, err)
		}
	}
	f.wantCounts(t, 0, 0)
}

// Everything that is not a usable status is an error: no usable answer.
func TestPaymentStatusNoUsableAnswer(t *testing.T) {
	tests := []struct {
		name       string
		rp         reply
		outcome    Outcome
		code       int
		retryAfter time.Duration
		errText    string
	}{
		{"another merchant_transaction_id", reply{body: statusBody("100", "SUCCESS", "order-999")}, OutcomeUnknown, 100, 0, "cinetpay v1 status: code 100 SUCCESS, answer is for another merchant_transaction_id"},
		{"404 for another id", reply{status: 422, body: statusBody("404", "NOT_FOUND", "order-999")}, OutcomeUnknown, 404, 0, ""},
		{"-1", reply{body: `{"code":-1,"status":"OPERATION_ERROR"}`}, OutcomeUnknown, -1, 0, "cinetpay v1 status: code -1 OPERATION_ERROR, no usable status"},
		{"200 OK", reply{body: `{"code":200,"status":"OK"}`}, OutcomeUnknown, 200, 0, ""},
		{"1004", reply{status: 422, body: `{"code":1004,"status":"INVALID_PARAMS"}`}, OutcomeUnknown, 1004, 0, ""},
		{"1200", reply{body: `{"code":1200,"status":"TRANSACTION_EXIST"}`}, OutcomeUnknown, 1200, 0, ""},
		{"2011", reply{body: `{"code":2011,"status":"NOT_ALLOWED"}`}, OutcomeUnknown, 2011, 0, ""},
		{"2004", reply{body: `{"code":2004,"status":"OTP_ERROR"}`}, OutcomeUnknown, 2004, 0, ""},
		{"unknown code", reply{body: `{"code":7777}`}, OutcomeUnknown, 7777, 0, ""},
		{"code 429", reply{body: `{"code":429}`}, OutcomeRateLimited, 429, 0, ""},
		{"HTTP 422 without code", reply{status: 422, body: `{"status":"NOT_FOUND"}`}, OutcomeUnknown, 0, 0, "cinetpay v1 status: HTTP 422, answer without a code"},
		{"HTTP 422 empty", reply{status: 422}, OutcomeUnknown, 0, 0, ""},
		{"HTTP 422 HTML", reply{status: 422, body: "<html>Unprocessable</html>"}, OutcomeUnknown, 0, 0, ""},
		{"HTTP 429", reply{status: 429, header: map[string]string{"Retry-After": "60"}}, OutcomeRateLimited, 0, time.Minute, "cinetpay v1 status: HTTP 429, too many requests, retry after 1m0s"},
		{"HTTP 429 with code 200", reply{status: 429, body: `{"code":200}`}, OutcomeRateLimited, 200, 0, ""},
		{"500 HTML", reply{status: 500, body: "<html>oops</html>"}, OutcomeUnknown, 0, 0, "cinetpay v1 status: HTTP 500, unreadable answer"},
		{"503 empty", reply{status: 503}, OutcomeUnknown, 0, 0, ""},
		{"garbage", reply{body: "\x00\xffgarbage"}, OutcomeUnknown, 0, 0, ""},
		{"empty", reply{}, OutcomeUnknown, 0, 0, "cinetpay v1 status: HTTP 200, unreadable answer"},
		{"truncated", reply{body: `{"code":100,"status":"SUCC`}, OutcomeUnknown, 0, 0, ""},
		{"array", reply{body: `[100]`}, OutcomeUnknown, 0, 0, ""},
		{"code as object", reply{body: `{"code":{"value":100}}`}, OutcomeUnknown, 0, 0, ""},
		{"code with exponent", reply{body: `{"code":1e2}`}, OutcomeUnknown, 0, 0, ""},
		{"code true", reply{body: `{"code":true}`}, OutcomeUnknown, 0, 0, ""},
		{"status only", reply{body: `{"status":"SUCCESS","merchant_transaction_id":"order-123"}`}, OutcomeUnknown, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, nil, initAnswer(tt.rp))
			st, err := f.client().PaymentStatus(bg, testMTID)
			if st != nil {
				t.Errorf("got a Status %+v with an error", st)
			}
			e := asAPIError(t, err, "status")
			if e.Outcome != tt.outcome || e.Code != tt.code || e.RetryAfter != tt.retryAfter {
				t.Errorf("Outcome = %v, Code = %d, RetryAfter = %v; want %v, %d, %v (%v)", e.Outcome, e.Code, e.RetryAfter, tt.outcome, tt.code, tt.retryAfter, err)
			}
			if e.HTTPStatus != max(tt.rp.status, 200) {
				t.Errorf("HTTPStatus = %d", e.HTTPStatus)
			}
			if tt.errText != "" && err.Error() != tt.errText {
				t.Errorf("Error() = %q\nwant      %q", err.Error(), tt.errText)
			}
			f.wantCounts(t, 1, 1)
		})
	}
}

func TestPaymentStatusTimeout(t *testing.T) {
	srv := httptest.NewServer(blockingCall(false))
	defer srv.Close()
	c := &Client{Endpoint: srv.URL, APIKey: testAPIKey, APIPassword: testAPIPassword, Timeout: 150 * time.Millisecond}
	_, err := c.PaymentStatus(bg, testMTID)
	e := asAPIError(t, err, "status")
	if !e.Timeout() || e.Outcome != OutcomeUnknown || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Timeout() = %v, Outcome = %v, err = %v", e.Timeout(), e.Outcome, err)
	}

	// The caller's shorter deadline wins.
	c.Timeout = 5 * time.Second
	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancel()
	_, err = c.PaymentStatus(ctx, testMTID)
	if e := asAPIError(t, err, "status"); !e.Timeout() || err.Error() != "cinetpay v1 status: timeout" {
		t.Errorf("caller deadline: %v", err)
	}
}

func TestVerdictString(t *testing.T) {
	for v, s := range map[Verdict]string{VerdictPending: "pending", VerdictAccepted: "accepted", VerdictRefused: "refused",
		VerdictExpired: "expired", VerdictNotFound: "not_found", 9: "Verdict(9)"} {
		if v.String() != s {
			t.Errorf("%d.String() = %q", int(v), v.String())
		}
	}
}
