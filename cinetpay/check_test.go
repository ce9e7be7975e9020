package cinetpay

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The two answers documented in cinetpay-v2.md, with "…" filled in.
const (
	acceptedAnswer = `{"code":"00","message":"SUCCES","api_response_id":"1663323067.7677",
 "data":{"amount":"100","currency":"XOF","status":"ACCEPTED","payment_method":"OM",
  "description":"Commande 42","metadata":null,"operator_id":"MP220915.2257.A76307",
  "payment_date":"2022-09-15 22:57:15","fund_availability_date":"2022-09-17 00:00:00"}}`
	refusedAnswer = `{"code":"627","message":"TRANSACTION_CANCEL","api_response_id":"1663323999.1111",
 "data":{"amount":"100","currency":"XOF","status":"REFUSED","payment_method":"MOMO",
  "description":"Commande 42","metadata":"b3JkZXI9NDI=","operator_id":null,"payment_date":" ",
  "fund_availability_date":""}}`
)

func checkAgainst(t *testing.T, status int, body string) (*CheckResult, error, *[]recorded) {
	t.Helper()
	srv, reqs := answerServer(t, status, map[string]string{"Content-Type": "application/json"}, body)
	res, err := testClient(srv.URL).CheckPayment(context.Background(), "tx000142")
	return res, err, reqs
}

func TestCheckPaymentAccepted(t *testing.T) {
	res, err, reqs := checkAgainst(t, 200, acceptedAnswer)
	if err != nil {
		t.Fatalf("CheckPayment: %v", err)
	}
	r := (*reqs)[0]
	if r.method != http.MethodPost || r.path != PathCheck {
		t.Errorf("request %s %s, want POST %s", r.method, r.path, PathCheck)
	}
	if r.header.Get("Content-Type") != "application/json" || r.header.Get("User-Agent") != DefaultUserAgent {
		t.Errorf("headers %v", r.header)
	}
	var sent map[string]any
	if err := json.Unmarshal(r.body, &sent); err != nil {
		t.Fatal(err)
	}
	wantSent := map[string]any{"apikey": testAPIKey, "site_id": testSiteID, "transaction_id": "tx000142"}
	if len(sent) != len(wantSent) {
		t.Errorf("sent %s", r.body)
	}
	for k, v := range wantSent {
		if sent[k] != v {
			t.Errorf("sent %s = %#v, want %#v", k, sent[k], v)
		}
	}

	if res.Code != "00" || res.Message != "SUCCES" || res.APIResponseID != "1663323067.7677" {
		t.Errorf("result %+v", res)
	}
	want := PaymentData{
		Amount:               "100",
		Currency:             "XOF",
		Status:               "ACCEPTED",
		PaymentMethod:        "OM",
		Description:          "Commande 42",
		Metadata:             "",
		OperatorID:           "MP220915.2257.A76307",
		PaymentDate:          "2022-09-15 22:57:15",
		FundAvailabilityDate: "2022-09-17 00:00:00",
	}
	if *res.Data != want {
		t.Errorf("Data = %+v\nwant %+v", *res.Data, want)
	}
	if v := res.Verdict(); v != VerdictAccepted {
		t.Errorf("Verdict = %v, want accepted", v)
	}
	if n, ok := res.Data.IntAmount(); !ok || n != 100 {
		t.Errorf("IntAmount = %d, %v", n, ok)
	}
}

func TestCheckPaymentRefused(t *testing.T) {
	res, err, _ := checkAgainst(t, 200, refusedAnswer)
	if err != nil {
		t.Fatalf("CheckPayment: %v", err)
	}
	if res.Code != "627" || res.Verdict() != VerdictRefused {
		t.Errorf("Code = %q, Verdict = %v", res.Code, res.Verdict())
	}
	d := res.Data
	if d.OperatorID != "" || d.PaymentDate != "" || d.Status != "REFUSED" || d.PaymentMethod != "MOMO" || d.Metadata != "b3JkZXI9NDI=" {
		t.Errorf("Data = %+v", d)
	}
}

func TestCheckPaymentAnswers(t *testing.T) {
	data := func(fields string) string { return `"data":{` + fields + `}` }
	tests := []struct {
		name    string
		status  int
		body    string
		verdict Verdict
		amount  string
		check   func(t *testing.T, d *PaymentData)
	}{
		{"amount as number", 200, `{"code":"00","message":"SUCCES",` + data(`"amount":100,"currency":"XOF","status":"ACCEPTED"`) + `}`, VerdictAccepted, "100", nil},
		{"amount as decimal number", 200, `{"code":"00","message":"SUCCES",` + data(`"amount":100.0,"currency":"XOF","status":"ACCEPTED"`) + `}`, VerdictAccepted, "100.0", nil},
		{"amount with spaces", 200, `{"code":"00",` + data(`"amount":" 100 ","status":"ACCEPTED"`) + `}`, VerdictAccepted, "100", nil},
		{"662 waiting", 200, `{"code":"662","message":"WAITING_CUSTOMER_PAYMENT",` + data(`"amount":"100","currency":"XOF","status":"WAITING_FOR_CUSTOMER","payment_method":"","operator_id":null,"payment_date":""`) + `}`, VerdictPending, "100", nil},
		// Message spellings never change the decision.
		{"00 SUCCESS", 200, `{"code":"00","message":"SUCCESS",` + data(`"amount":"100","status":"ACCEPTED"`) + `}`, VerdictAccepted, "100", nil},
		{"00 success lower", 200, `{"code":"00","message":"success",` + data(`"amount":"100","status":"ACCEPTED"`) + `}`, VerdictAccepted, "100", nil},
		{"00 no message", 200, `{"code":"00",` + data(`"amount":"100","status":"ACCEPTED"`) + `}`, VerdictAccepted, "100", nil},
		{"00 message FAILED", 200, `{"code":"00","message":"PAYMENT_FAILED",` + data(`"amount":"100","status":"ACCEPTED"`) + `}`, VerdictAccepted, "100", nil},
		{"627 message SUCCES", 200, `{"code":"627","message":"SUCCES",` + data(`"amount":"100","status":"REFUSED"`) + `}`, VerdictRefused, "100", nil},
		{"662 message SUCCESS", 200, `{"code":"662","message":"SUCCESS",` + data(`"amount":"100","status":"WAITING_FOR_CUSTOMER"`) + `}`, VerdictPending, "100", nil},
		// ACCEPTED needs code 00.
		{"ACCEPTED with 662", 200, `{"code":"662","message":"SUCCES",` + data(`"amount":"100","status":"ACCEPTED"`) + `}`, VerdictPending, "100", nil},
		{"ACCEPTED with 627", 200, `{"code":"627",` + data(`"amount":"100","status":"ACCEPTED"`) + `}`, VerdictPending, "100", nil},
		{"ACCEPTED with code 0 number", 200, `{"code":0,` + data(`"amount":"100","status":"ACCEPTED"`) + `}`, VerdictPending, "100", nil},
		{"ACCEPTED with 201", 200, `{"code":"201",` + data(`"amount":"100","status":"ACCEPTED"`) + `}`, VerdictPending, "100", nil},
		// Unknown statuses are pending, status matching is exact.
		{"unknown status", 200, `{"code":"00",` + data(`"amount":"100","status":"PROCESSING"`) + `}`, VerdictPending, "100", nil},
		{"lower-case accepted", 200, `{"code":"00",` + data(`"amount":"100","status":"accepted"`) + `}`, VerdictPending, "100", nil},
		{"REFUSED with 00", 200, `{"code":"00",` + data(`"amount":"100","status":"REFUSED"`) + `}`, VerdictRefused, "100", nil},
		// The HTTP status is not reliable.
		{"usable answer with HTTP 500", 500, acceptedAnswer, VerdictAccepted, "100", nil},
		{"usable answer with HTTP 404", 404, refusedAnswer, VerdictRefused, "100", nil},
		{"2021 format phone fields", 200, `{"code":"00","message":"SUCCES",` + data(`"amount":"500","currency":"XOF","status":"ACCEPTED","phone_number":"0707070707","phone_prefix":"225","payment_date":"2021-06-01 10:00:00"`) + `}`, VerdictAccepted, "500",
			func(t *testing.T, d *PaymentData) {
				if d.PhoneNumber != "0707070707" || d.PhonePrefix != "225" || d.PaymentDate != "2021-06-01 10:00:00" {
					t.Errorf("Data = %+v", d)
				}
			}},
		{"odd types tolerated", 200, `{"code":"00",` + data(`"amount":"100","status":"ACCEPTED","metadata":{"order":42},"operator_id":123,"description":true,"payment_date":"\t"`) + `,"unknown":[1]}`, VerdictAccepted, "100",
			func(t *testing.T, d *PaymentData) {
				if d.Metadata != `{"order":42}` || d.OperatorID != "123" || d.Description != "true" || d.PaymentDate != "" {
					t.Errorf("Data = %+v", d)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err, _ := checkAgainst(t, tt.status, tt.body)
			if err != nil {
				t.Fatalf("CheckPayment: %v", err)
			}
			if res.Data == nil {
				t.Fatal("nil Data")
			}
			if v := res.Verdict(); v != tt.verdict {
				t.Errorf("Verdict = %v, want %v", v, tt.verdict)
			}
			if res.Data.Amount != tt.amount {
				t.Errorf("Amount = %q, want %q", res.Data.Amount, tt.amount)
			}
			if tt.check != nil {
				tt.check(t, res.Data)
			}
		})
	}
}

func TestCheckPaymentErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		outcome    Outcome
		code       string
		retryAfter time.Duration
		errText    string
	}{
		{"error code without data", 200, nil, `{"code":"608","message":"MINIMUM_REQUIRED_FIELDS","description":"BODYMARK","api_response_id":"1.2"}`, OutcomeUnknown, "608", 0, "cinetpay check: code 608 MINIMUM_REQUIRED_FIELDS, no payment data"},
		{"transaction not found", 200, nil, `{"code":"627","message":"TRANSACTION_CANCEL","data":null}`, OutcomeUnknown, "627", 0, ""},
		{"data is an empty array", 200, nil, `{"code":"609","message":"AUTH_NOT_FOUND","data":[]}`, OutcomeUnknown, "609", 0, ""},
		{"data is an empty object", 200, nil, `{"code":"00","message":"SUCCES","data":{}}`, OutcomeUnknown, "00", 0, ""},
		{"data with blank status", 200, nil, `{"code":"00","message":"SUCCES","data":{"amount":"100","status":"  "}}`, OutcomeUnknown, "00", 0, ""},
		{"data is a string", 200, nil, `{"code":"00","message":"SUCCES","data":"BODYMARK"}`, OutcomeUnknown, "00", 0, ""},
		{"429 body code", 200, map[string]string{"Retry-After": "10"}, `{"code":"429","message":"TOO_MANY_REQUEST"}`, OutcomeRateLimited, "429", 10 * time.Second, "cinetpay check: code 429 TOO_MANY_REQUEST, retry after 10s"},
		{"429 body code with data", 200, nil, `{"code":"429","message":"TOO_MANY_REQUEST","data":{"status":"ACCEPTED"}}`, OutcomeRateLimited, "429", 0, ""},
		{"HTTP 429 empty body", 429, nil, ``, OutcomeRateLimited, "", 0, "cinetpay check: HTTP 429, too many requests"},
		{"HTTP 502 HTML", 502, nil, `<html>BODYMARK Bad Gateway</html>`, OutcomeUnknown, "", 0, "cinetpay check: HTTP 502, unreadable answer"},
		{"HTTP 503 empty", 503, map[string]string{"Retry-After": "60"}, ``, OutcomeUnknown, "", time.Minute, "cinetpay check: HTTP 503, unreadable answer, retry after 1m0s"},
		{"garbage", 200, nil, "BODYMARK\x00\xfe", OutcomeUnknown, "", 0, "cinetpay check: HTTP 200, unreadable answer"},
		{"truncated JSON", 200, nil, `{"code":"00","message":"SUCCES","data":{"amount":"100","status":"ACCEP`, OutcomeUnknown, "", 0, ""},
		{"status as object is unreadable", 200, nil, `{"code":"00","data":{"status":{"BODYMARK":1}}}`, OutcomeUnknown, "00", 0, ""},
		{"huge answer", 200, nil, `{"code":"00","message":"` + strings.Repeat("A", maxResponseBody) + `","data":{"status":"ACCEPTED"}}`, OutcomeUnknown, "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := answerServer(t, tt.status, tt.header, tt.body)
			res, err := testClient(srv.URL).CheckPayment(context.Background(), "tx000142")
			if res != nil {
				t.Errorf("got a result %+v", res)
			}
			e := asError(t, err, "check")
			if e.Outcome != tt.outcome {
				t.Errorf("Outcome = %v, want %v (%v)", e.Outcome, tt.outcome, err)
			}
			if e.Code != tt.code {
				t.Errorf("Code = %q, want %q", e.Code, tt.code)
			}
			if e.HTTPStatus != tt.status {
				t.Errorf("HTTPStatus = %d, want %d", e.HTTPStatus, tt.status)
			}
			if e.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tt.retryAfter)
			}
			if strings.Contains(err.Error(), "BODYMARK") || strings.Contains(err.Error(), "AAAA") {
				t.Errorf("Error() contains the body: %q", err.Error())
			}
			if tt.errText != "" && err.Error() != tt.errText {
				t.Errorf("Error() = %q, want %q", err.Error(), tt.errText)
			}
		})
	}
}

func TestCheckPaymentTimeout(t *testing.T) {
	srv := blockingServer(t, false)
	c := testClient(srv.URL)
	c.Timeout = 100 * time.Millisecond
	res, err := c.CheckPayment(context.Background(), "tx1")
	if res != nil {
		t.Error("result on timeout")
	}
	e := asError(t, err, "check")
	if !e.Timeout() || e.Outcome != OutcomeUnknown {
		t.Errorf("Timeout() = %v, Outcome = %v", e.Timeout(), e.Outcome)
	}
	if err.Error() != "cinetpay check: timeout after 100ms" {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestCheckPaymentEmptyTransactionID(t *testing.T) {
	srv, reqs := answerServer(t, 200, nil, acceptedAnswer)
	_, err := testClient(srv.URL).CheckPayment(context.Background(), "")
	if e := asError(t, err, "check"); e.Outcome != OutcomeRefused {
		t.Errorf("Outcome = %v", e.Outcome)
	}
	if len(*reqs) != 0 {
		t.Error("CinetPay called with an empty transaction id")
	}
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		r    *CheckResult
		want Verdict
	}{
		{nil, VerdictPending},
		{&CheckResult{Code: "00"}, VerdictPending},
		{&CheckResult{Code: "00", Message: "SUCCES", Data: &PaymentData{Status: "ACCEPTED"}}, VerdictAccepted},
		{&CheckResult{Code: "00", Message: "FAILED", Data: &PaymentData{Status: "ACCEPTED"}}, VerdictAccepted},
		{&CheckResult{Code: "01", Message: "SUCCES", Data: &PaymentData{Status: "ACCEPTED"}}, VerdictPending},
		{&CheckResult{Code: "", Data: &PaymentData{Status: "ACCEPTED"}}, VerdictPending},
		{&CheckResult{Code: "600", Data: &PaymentData{Status: "REFUSED"}}, VerdictRefused},
		{&CheckResult{Code: "00", Data: &PaymentData{Status: "WAITING_FOR_CUSTOMER"}}, VerdictPending},
		{&CheckResult{Code: "00", Data: &PaymentData{Status: "ACCEPTED "}}, VerdictPending},
		{&CheckResult{Code: "00", Data: &PaymentData{Status: "Accepted"}}, VerdictPending},
		{&CheckResult{Code: "00", Data: &PaymentData{Status: "CANCELLED"}}, VerdictPending},
	}
	for i, tt := range tests {
		if got := tt.r.Verdict(); got != tt.want {
			t.Errorf("%d: Verdict() = %v, want %v", i, got, tt.want)
		}
	}
	for v, s := range map[Verdict]string{VerdictPending: "pending", VerdictAccepted: "accepted", VerdictRefused: "refused", 7: "Verdict(7)"} {
		if v.String() != s {
			t.Errorf("%d.String() = %q", int(v), v.String())
		}
	}
}

func TestIntAmount(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"100", 100, true},
		{"0", 0, true},
		{"5", 5, true},
		{"100.00", 100, true},
		{"100.0", 100, true},
		{"100.000000", 100, true},
		{" 100 ", 100, true},
		{"00100", 100, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"9223372036854775807.00", 9223372036854775807, true},
		{"100.5", 0, false},
		{"100.05", 0, false},
		{"100.", 0, false},
		{".5", 0, false},
		{".0", 0, false},
		{"", 0, false},
		{" ", 0, false},
		{"abc", 0, false},
		{"100abc", 0, false},
		{"-100", 0, false},
		{"-0", 0, false},
		{"+100", 0, false},
		{"1e3", 0, false},
		{"1E2", 0, false},
		{"100,00", 0, false},
		{"1 000", 0, false},
		{"0x64", 0, false},
		{"9223372036854775808", 0, false},
		{"99999999999999999999", 0, false},
		{"100.0.0", 0, false},
		{"١٠٠", 0, false}, // Arabic-Indic digits
		{"NaN", 0, false},
		{"Infinity", 0, false},
	}
	for _, tt := range tests {
		got, ok := (&PaymentData{Amount: tt.in}).IntAmount()
		if got != tt.want || ok != tt.ok {
			t.Errorf("IntAmount(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := (*PaymentData)(nil).IntAmount(); ok {
		t.Error("nil PaymentData has an amount")
	}
}

func TestCanonicalAmount(t *testing.T) {
	for _, c := range []struct {
		in, want string
		number   bool
	}{
		{"5000", "5000", true},
		{"5000.00", "5000", true},
		{"5000.0", "5000", true},
		{"05000", "5000", true},
		{" 5000 ", "5000", true},
		{"0", "0", true},
		{"000.000", "0", true},
		{"0995.50", "995.5", true},
		{"4999.5", "4999.5", true},
		{"99999999999999999999", "99999999999999999999", true},
		{"", "", false},
		{"abc", "abc", false},
		{"-5000", "-5000", false},
		{"5e3", "5e3", false},
		{"5000.", "5000.", false},
	} {
		got, number := (&PaymentData{Amount: c.in}).CanonicalAmount()
		if got != c.want || number != c.number {
			t.Errorf("CanonicalAmount(%q) = %q, %v; want %q, %v", c.in, got, number, c.want, c.number)
		}
	}
}
