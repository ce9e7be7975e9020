package cinetpay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testAPIKey is distinctive so that tests can look for it in error texts.
const (
	testAPIKey = "APIKEY-7f3a9c1e-not-real"
	testSiteID = "445566"
)

// recorded is what a test server saw of one request.
type recorded struct {
	method, path string
	header       http.Header
	body         []byte
}

// answerServer starts a server answering every request with status, header
// and body, and recording the requests.
func answerServer(t *testing.T, status int, header map[string]string, body string) (*httptest.Server, *[]recorded) {
	t.Helper()
	var mu sync.Mutex
	var reqs []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, recorded{r.Method, r.URL.Path, r.Header.Clone(), b})
		mu.Unlock()
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &reqs
}

func testClient(endpoint string) *Client {
	return &Client{Endpoint: endpoint, APIKey: testAPIKey, SiteID: testSiteID, Timeout: 5 * time.Second}
}

func minimalRequest() *PaymentRequest {
	return &PaymentRequest{
		TransactionID: "tx000142",
		Amount:        1000,
		Currency:      "XOF",
		Description:   "Order 42",
		NotifyURL:     "https://shop.example.com/cinetpay/notify",
		ReturnURL:     "https://shop.example.com/cinetpay/return?transaction_id=tx000142",
		Channels:      "ALL",
	}
}

// asError asserts err is an *Error and checks what every error must hold.
func asError(t *testing.T, err error, op string) *Error {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got nil")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T (%v) is not a *cinetpay.Error", err, err)
	}
	if e.Op != op {
		t.Errorf("Op = %q, want %q", e.Op, op)
	}
	msg := err.Error()
	if strings.Contains(msg, testAPIKey) {
		t.Errorf("Error() contains the API key: %q", msg)
	}
	if !strings.HasPrefix(msg, "cinetpay "+op+": ") {
		t.Errorf("Error() = %q, want prefix %q", msg, "cinetpay "+op+": ")
	}
	if len(msg) > 200 {
		t.Errorf("Error() is %d bytes long: %q", len(msg), msg)
	}
	if OutcomeOf(err) != e.Outcome {
		t.Errorf("OutcomeOf = %v, Error.Outcome = %v", OutcomeOf(err), e.Outcome)
	}
	return e
}

const createdBody = `{"code":"201","message":"CREATED","description":"Transaction created with success",
"data":{"payment_token":"8ea0f3c2b6f2d7tok","payment_url":"https://checkout.cinetpay.com/payment/8ea0f3c2b6f2d7tok"},
"api_response_id":"1663323067.7677"}`

func TestInitPaymentSuccess(t *testing.T) {
	srv, reqs := answerServer(t, http.StatusOK, map[string]string{"Content-Type": "application/json"}, createdBody)
	start, err := testClient(srv.URL).InitPayment(context.Background(), minimalRequest())
	if err != nil {
		t.Fatalf("InitPayment: %v", err)
	}
	want := PaymentStart{
		PaymentToken:  "8ea0f3c2b6f2d7tok",
		PaymentURL:    "https://checkout.cinetpay.com/payment/8ea0f3c2b6f2d7tok",
		APIResponseID: "1663323067.7677",
	}
	if *start != want {
		t.Errorf("PaymentStart = %+v, want %+v", *start, want)
	}
	if len(*reqs) != 1 {
		t.Fatalf("server saw %d requests, want 1", len(*reqs))
	}
	r := (*reqs)[0]
	if r.method != http.MethodPost || r.path != PathPayment {
		t.Errorf("request %s %s, want POST %s", r.method, r.path, PathPayment)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if a := r.header.Get("Accept"); a != "application/json" {
		t.Errorf("Accept = %q", a)
	}
	if ua := r.header.Get("User-Agent"); ua != "caddy-cinetpay/1" {
		t.Errorf("User-Agent = %q, want caddy-cinetpay/1", ua)
	}

	// The exact JSON: credentials, integer amount, required fields, and no
	// empty optional field.
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	var got map[string]any
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("request body is not JSON: %v\n%s", err, r.body)
	}
	wantBody := map[string]any{
		"apikey":         testAPIKey,
		"site_id":        testSiteID,
		"transaction_id": "tx000142",
		"amount":         json.Number("1000"),
		"currency":       "XOF",
		"description":    "Order 42",
		"notify_url":     "https://shop.example.com/cinetpay/notify",
		"return_url":     "https://shop.example.com/cinetpay/return?transaction_id=tx000142",
		"channels":       "ALL",
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
		t.Errorf("amount is not sent as a JSON integer: %s", r.body)
	}
	// return_url's query is sent as is, not HTML-escaped.
	if !bytes.Contains(r.body, []byte(`return?transaction_id=tx000142"`)) {
		t.Errorf("return_url mangled: %s", r.body)
	}
}

func TestInitPaymentSendsOptionalAndCustomerFields(t *testing.T) {
	srv, reqs := answerServer(t, http.StatusOK, nil, createdBody)
	c := testClient(srv.URL + "/") // trailing slash tolerated
	c.UserAgent = "shop-test/2"
	req := minimalRequest()
	req.Channels = "CREDIT_CARD"
	req.Lang = "en"
	req.Metadata = "eyJvcmRlciI6IjQyIn0="
	req.InvoiceData = map[string]string{"Order": "42", "Shop": "Example"}
	req.LockPhoneNumber = true
	req.CustomerID = "c-17"
	req.CustomerName = "Kouadio"
	req.CustomerSurname = "Francisse"
	req.CustomerEmail = "client@example.com"
	req.CustomerPhoneNumber = "+2250707070707"
	req.CustomerAddress = "Cocody"
	req.CustomerCity = "Abidjan"
	req.CustomerCountry = "CI"
	req.CustomerState = "CI"
	req.CustomerZipCode = "00225"
	if _, err := c.InitPayment(context.Background(), req); err != nil {
		t.Fatalf("InitPayment: %v", err)
	}
	r := (*reqs)[0]
	if r.path != "/v2/payment" {
		t.Errorf("path = %q with a trailing-slash endpoint", r.path)
	}
	if ua := r.header.Get("User-Agent"); ua != "shop-test/2" {
		t.Errorf("User-Agent = %q", ua)
	}
	var got map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"channels":              "CREDIT_CARD",
		"lang":                  "en",
		"metadata":              "eyJvcmRlciI6IjQyIn0=",
		"lock_phone_number":     true,
		"customer_id":           "c-17",
		"customer_name":         "Kouadio",
		"customer_surname":      "Francisse",
		"customer_email":        "client@example.com",
		"customer_phone_number": "+2250707070707",
		"customer_address":      "Cocody",
		"customer_city":         "Abidjan",
		"customer_country":      "CI",
		"customer_state":        "CI",
		"customer_zip_code":     "00225",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("request %s = %#v, want %#v", k, got[k], v)
		}
	}
	inv, ok := got["invoice_data"].(map[string]any)
	if !ok || inv["Order"] != "42" || inv["Shop"] != "Example" || len(inv) != 2 {
		t.Errorf("invoice_data = %#v", got["invoice_data"])
	}
	// 9 required fields + lang, metadata, invoice_data, lock_phone_number
	// + 10 customer fields.
	if len(got) != 23 {
		t.Errorf("request has %d fields: %s", len(got), r.body)
	}
}

func TestInitPaymentEndpointWithBasePath(t *testing.T) {
	srv, reqs := answerServer(t, http.StatusOK, nil, createdBody)
	if _, err := testClient(srv.URL+"/sandbox/").InitPayment(context.Background(), minimalRequest()); err != nil {
		t.Fatal(err)
	}
	if p := (*reqs)[0].path; p != "/sandbox/v2/payment" {
		t.Errorf("path = %q, want /sandbox/v2/payment", p)
	}
}

func TestInitPaymentAnswers(t *testing.T) {
	errBody := func(code, msg string) string {
		return `{"code":"` + code + `","message":"` + msg + `","description":"BODYMARK description","api_response_id":"1700000000.1234"}`
	}
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		outcome    Outcome
		code       string
		retryAfter time.Duration
		errText    string // exact Error(), when given
	}{
		{"608 minimum required fields", 200, nil, errBody("608", "MINIMUM_REQUIRED_FIELDS"), OutcomeRefused, "608", 0, "cinetpay payment: code 608 MINIMUM_REQUIRED_FIELDS"},
		{"609 auth not found", 200, nil, errBody("609", "AUTH_NOT_FOUND"), OutcomeRefused, "609", 0, "cinetpay payment: code 609 AUTH_NOT_FOUND"},
		{"609 with HTTP 401", 401, nil, errBody("609", "AUTH_NOT_FOUND"), OutcomeRefused, "609", 0, ""},
		{"613 site id", 200, nil, errBody("613", "ERROR_SITE_ID_NOTVALID"), OutcomeRefused, "613", 0, ""},
		{"624 processing error", 200, nil, errBody("624", "UNKNOWN_ERROR"), OutcomeRefused, "624", 0, ""},
		{"403 blocked", 403, nil, errBody("403", "FORBIDDEN"), OutcomeRefused, "403", 0, ""},
		{"1010 no user agent", 403, nil, errBody("1010", "ERROR"), OutcomeRefused, "1010", 0, ""},
		{"code as a JSON number", 200, nil, `{"code":609,"message":"AUTH_NOT_FOUND"}`, OutcomeRefused, "609", 0, ""},
		{"429 body code", 200, map[string]string{"Retry-After": "30"}, errBody("429", "TOO_MANY_REQUEST"), OutcomeRateLimited, "429", 30 * time.Second, "cinetpay payment: code 429 TOO_MANY_REQUEST, retry after 30s"},
		{"429 body code without Retry-After", 429, nil, errBody("429", "TOO_MANY_REQUEST"), OutcomeRateLimited, "429", 0, ""},
		{"HTTP 429 empty body", 429, map[string]string{"Retry-After": "120"}, "", OutcomeRateLimited, "", 2 * time.Minute, "cinetpay payment: HTTP 429, too many requests, retry after 2m0s"},
		{"HTTP 429 HTML body", 429, nil, "<html><body>Too Many Requests BODYMARK</body></html>", OutcomeRateLimited, "", 0, ""},
		{"502 HTML", 502, nil, "<html><head><title>502 Bad Gateway</title></head><body>BODYMARK nginx</body></html>", OutcomeUnknown, "", 0, "cinetpay payment: HTTP 502, unreadable answer"},
		{"500 empty", 500, nil, "", OutcomeUnknown, "", 0, "cinetpay payment: HTTP 500, unreadable answer"},
		{"503 with Retry-After", 503, map[string]string{"Retry-After": "7"}, "BODYMARK down", OutcomeUnknown, "", 7 * time.Second, ""},
		{"garbage", 200, nil, "\x00\x01BODYMARK garbage \xff", OutcomeUnknown, "", 0, ""},
		{"truncated JSON", 200, nil, `{"code":"201","message":"CREATED","data":{"payment_token":"BODYMARK`, OutcomeUnknown, "", 0, ""},
		{"empty body", 200, nil, "", OutcomeUnknown, "", 0, "cinetpay payment: HTTP 200, unreadable answer"},
		{"JSON array", 200, nil, `["BODYMARK"]`, OutcomeUnknown, "", 0, ""},
		{"JSON null", 200, nil, `null`, OutcomeUnknown, "", 0, ""},
		{"no code", 200, nil, `{"message":"CREATED","description":"BODYMARK"}`, OutcomeUnknown, "", 0, ""},
		{"unknown code", 200, nil, errBody("999", "SOMETHING_NEW"), OutcomeUnknown, "999", 0, "cinetpay payment: code 999 SOMETHING_NEW, unexpected code"},
		{"check code on payment", 200, nil, errBody("00", "SUCCES"), OutcomeUnknown, "00", 0, ""},
		{"201 without payment_url", 200, nil, `{"code":"201","message":"CREATED","data":{"payment_token":"tok"}}`, OutcomeUnknown, "201", 0, "cinetpay payment: code 201 CREATED, no payment_url or payment_token"},
		{"201 without payment_token", 200, nil, `{"code":"201","message":"CREATED","data":{"payment_url":"https://checkout.cinetpay.com/payment/x"}}`, OutcomeUnknown, "201", 0, ""},
		{"201 with blank payment_url", 200, nil, `{"code":"201","message":"CREATED","data":{"payment_token":"tok","payment_url":"  "}}`, OutcomeUnknown, "201", 0, ""},
		{"201 without data", 200, nil, `{"code":"201","message":"CREATED"}`, OutcomeUnknown, "201", 0, ""},
		{"201 with data []", 200, nil, `{"code":"201","message":"CREATED","data":[]}`, OutcomeUnknown, "201", 0, ""},
		{"201 with data null", 200, nil, `{"code":"201","message":"CREATED","data":null}`, OutcomeUnknown, "201", 0, ""},
		// The HTTP status is not reliable: the body's code decides.
		{"HTTP 200 with error code", 200, nil, errBody("608", "MINIMUM_REQUIRED_FIELDS"), OutcomeRefused, "608", 0, ""},
		{"HTTP 500 with refusal code", 500, nil, errBody("609", "AUTH_NOT_FOUND"), OutcomeRefused, "609", 0, ""},
		// A message that is not a plain token does not reach Error().
		{"odd message", 200, nil, `{"code":"609","message":"<b>BODYMARK</b> auth"}`, OutcomeRefused, "609", 0, "cinetpay payment: code 609 AUTH_NOT_FOUND"},
		{"odd code", 200, nil, `{"code":"<script>BODYMARK</script>","message":"X"}`, OutcomeUnknown, "<script>BODYMARK</script>", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, reqs := answerServer(t, tt.status, tt.header, tt.body)
			start, err := testClient(srv.URL).InitPayment(context.Background(), minimalRequest())
			if start != nil {
				t.Errorf("got a PaymentStart %+v with an error answer", start)
			}
			e := asError(t, err, "payment")
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
			if e.Timeout() {
				t.Error("Timeout() = true")
			}
			if strings.Contains(err.Error(), "BODYMARK") {
				t.Errorf("Error() contains the response body: %q", err.Error())
			}
			if tt.errText != "" && err.Error() != tt.errText {
				t.Errorf("Error() = %q, want %q", err.Error(), tt.errText)
			}
			if strings.Contains(tt.body, "BODYMARK description") && e.Description != "BODYMARK description" {
				t.Errorf("Description = %q", e.Description)
			}
			if strings.Contains(tt.body, "1700000000.1234") && e.APIResponseID != "1700000000.1234" {
				t.Errorf("APIResponseID = %q", e.APIResponseID)
			}
			if len(*reqs) != 1 {
				t.Errorf("server saw %d requests, want 1 (no retry inside the client)", len(*reqs))
			}
		})
	}
}

// An HTTP 400 carrying a 201 body is a success: only the body counts.
func TestInitPaymentHTTP400With201Body(t *testing.T) {
	srv, _ := answerServer(t, http.StatusBadRequest, nil, createdBody)
	start, err := testClient(srv.URL).InitPayment(context.Background(), minimalRequest())
	if err != nil {
		t.Fatalf("InitPayment: %v", err)
	}
	if start.PaymentToken != "8ea0f3c2b6f2d7tok" {
		t.Errorf("PaymentToken = %q", start.PaymentToken)
	}
}

func TestInitPaymentTolerantSuccessAnswer(t *testing.T) {
	body := "\xef\xbb\xbf  {\"code\":201,\"message\":\"CREATED\",\"data\":{\"payment_token\":\" tok \",\"payment_url\":\"https://checkout.cinetpay.com/payment/tok\",\"extra\":{\"a\":[1,2]}},\"api_response_id\":1663323067.7677}\n"
	srv, _ := answerServer(t, http.StatusOK, nil, body)
	start, err := testClient(srv.URL).InitPayment(context.Background(), minimalRequest())
	if err != nil {
		t.Fatalf("InitPayment: %v", err)
	}
	if start.PaymentToken != "tok" || start.APIResponseID != "1663323067.7677" {
		t.Errorf("PaymentStart = %+v", start)
	}
}

func TestInitPaymentRetryAfterHTTPDate(t *testing.T) {
	when := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	srv, _ := answerServer(t, http.StatusTooManyRequests, map[string]string{"Retry-After": when}, "")
	_, err := testClient(srv.URL).InitPayment(context.Background(), minimalRequest())
	e := asError(t, err, "payment")
	if e.Outcome != OutcomeRateLimited {
		t.Errorf("Outcome = %v", e.Outcome)
	}
	if e.RetryAfter < 85*time.Second || e.RetryAfter > 91*time.Second {
		t.Errorf("RetryAfter = %v, want about 90s", e.RetryAfter)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                                  0,
		"0":                                 0,
		"30":                                30 * time.Second,
		" 5 ":                               5 * time.Second,
		"-5":                                0,
		"1.5":                               0,
		"abc":                               0,
		"99999999999999999999999":           24 * time.Hour,
		"172800":                            24 * time.Hour,
		"Wed, 01 May 2024 12:01:00 GMT":     time.Minute,
		"Wed, 01 May 2024 11:59:00 GMT":     0,
		"Thu, 01 May 2025 12:00:00 GMT":     24 * time.Hour,
		"Wednesday, 01-May-24 12:00:30 GMT": 30 * time.Second,
	}
	for in, want := range tests {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

// blockingServer answers nothing until the client gives up (or 10s pass);
// with headersFirst it sends the headers and stalls in the body.
func blockingServer(t *testing.T, headersFirst bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice the client going away.
		io.Copy(io.Discard, r.Body)
		if headersFirst {
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, `{"code":"201",`)
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestInitPaymentTimeout(t *testing.T) {
	for _, headersFirst := range []bool{false, true} {
		name := "no answer"
		if headersFirst {
			name = "stalled body"
		}
		t.Run(name, func(t *testing.T) {
			srv := blockingServer(t, headersFirst)
			c := testClient(srv.URL)
			c.Timeout = 150 * time.Millisecond
			_, err := c.InitPayment(context.Background(), minimalRequest())
			e := asError(t, err, "payment")
			if e.Outcome != OutcomeUnknown {
				t.Errorf("Outcome = %v, want unknown", e.Outcome)
			}
			if !e.Timeout() {
				t.Errorf("Timeout() = false (%v)", err)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error does not wrap context.DeadlineExceeded: %v", e.Err)
			}
			if !strings.HasPrefix(err.Error(), "cinetpay payment: timeout after 150ms") {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

func TestInitPaymentCallerDeadlineAndCancel(t *testing.T) {
	srv := blockingServer(t, false)
	c := testClient(srv.URL) // 5s timeout: the caller's shorter deadline wins

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.InitPayment(ctx, minimalRequest())
	e := asError(t, err, "payment")
	if !e.Timeout() || e.Outcome != OutcomeUnknown {
		t.Errorf("caller deadline: Timeout() = %v, Outcome = %v", e.Timeout(), e.Outcome)
	}
	if err.Error() != "cinetpay payment: timeout" {
		t.Errorf("Error() = %q", err.Error())
	}

	ctx, cancel = context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err = c.CheckPayment(ctx, "tx1")
	e = asError(t, err, "check")
	if e.Timeout() || e.Outcome != OutcomeUnknown || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: Timeout() = %v, Outcome = %v, err = %v", e.Timeout(), e.Outcome, err)
	}
	if err.Error() != "cinetpay check: canceled" {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestInitPaymentNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	_, err := testClient(url).InitPayment(context.Background(), minimalRequest())
	e := asError(t, err, "payment")
	if e.Outcome != OutcomeUnknown || e.HTTPStatus != 0 || e.Err == nil || e.Timeout() {
		t.Errorf("Outcome = %v, HTTPStatus = %d, Err = %v, Timeout = %v", e.Outcome, e.HTTPStatus, e.Err, e.Timeout())
	}
	if !strings.HasPrefix(err.Error(), "cinetpay payment: network error: ") {
		t.Errorf("Error() = %q", err.Error())
	}
	if strings.Contains(err.Error(), url) {
		t.Errorf("Error() repeats the URL: %q", err.Error())
	}
}

func TestInitPaymentDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/v2/payment", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		followed.Add(1)
		io.WriteString(w, createdBody)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, hc := range []*http.Client{nil, {}, {CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}} {
		c := testClient(srv.URL)
		c.HTTPClient = hc
		_, err := c.InitPayment(context.Background(), minimalRequest())
		e := asError(t, err, "payment")
		if e.Outcome != OutcomeUnknown || e.HTTPStatus != http.StatusTemporaryRedirect {
			t.Errorf("HTTPClient %v: Outcome = %v, HTTPStatus = %d", hc, e.Outcome, e.HTTPStatus)
		}
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}

// Should CinetPay ever echo the API key, it does not reach Error(), and it
// is removed from the other fields too.
func TestErrorNeverContainsAPIKey(t *testing.T) {
	body := `{"code":"609","message":"` + testAPIKey + `","description":"bad key ` + testAPIKey + `","api_response_id":"` + testAPIKey + `"}`
	srv, _ := answerServer(t, 200, nil, body)
	_, err := testClient(srv.URL).InitPayment(context.Background(), minimalRequest())
	e := asError(t, err, "payment")
	if e.Outcome != OutcomeRefused {
		t.Errorf("Outcome = %v", e.Outcome)
	}
	for name, v := range map[string]string{"Error()": err.Error(), "Message": e.Message, "Description": e.Description, "APIResponseID": e.APIResponseID} {
		if strings.Contains(v, testAPIKey) {
			t.Errorf("%s contains the API key: %q", name, v)
		}
	}
	if err.Error() != "cinetpay payment: code 609 AUTH_NOT_FOUND" {
		t.Errorf("Error() = %q", err.Error())
	}

	srv2, _ := answerServer(t, 200, nil, `{"code":"`+testAPIKey+`"}`)
	_, err = testClient(srv2.URL).CheckPayment(context.Background(), "tx1")
	e = asError(t, err, "check")
	if strings.Contains(e.Code, testAPIKey) {
		t.Errorf("Code contains the API key: %q", e.Code)
	}
}

func TestInitPaymentInvalidInput(t *testing.T) {
	srv, reqs := answerServer(t, 200, nil, createdBody)
	_, err := testClient(srv.URL).InitPayment(context.Background(), nil)
	if e := asError(t, err, "payment"); e.Outcome != OutcomeRefused {
		t.Errorf("nil request: Outcome = %v", e.Outcome)
	}
	for _, ep := range []string{"ftp://example.com", "example.com", "https://", "https://x.example/?a=b", "://bad"} {
		_, err := testClient(ep).InitPayment(context.Background(), minimalRequest())
		e := asError(t, err, "payment")
		if e.Outcome != OutcomeRefused {
			t.Errorf("endpoint %q: Outcome = %v", ep, e.Outcome)
		}
		if err.Error() != "cinetpay payment: invalid endpoint" {
			t.Errorf("endpoint %q: Error() = %q", ep, err.Error())
		}
	}
	if len(*reqs) != 0 {
		t.Errorf("%d requests sent for invalid input", len(*reqs))
	}
}

func TestClientDefaults(t *testing.T) {
	c := &Client{}
	u, err := c.url(PathCheck)
	if err != nil || u != "https://api-checkout.cinetpay.com/v2/payment/check" {
		t.Errorf("default URL = %q, %v", u, err)
	}
	if defaultHTTPClient.CheckRedirect == nil || defaultHTTPClient == http.DefaultClient {
		t.Error("the default HTTP client follows redirects or is http.DefaultClient")
	}
}

// One Client serves concurrent calls (run with -race).
func TestClientConcurrentUse(t *testing.T) {
	srv, reqs := answerServer(t, 200, nil, createdBody)
	c := testClient(srv.URL)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.InitPayment(context.Background(), minimalRequest()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(*reqs) != 16 {
		t.Errorf("%d requests, want 16", len(*reqs))
	}
}

func TestOutcomeOf(t *testing.T) {
	if OutcomeOf(errors.New("x")) != OutcomeUnknown {
		t.Error("plain error is not unknown")
	}
	wrapped := errors.Join(errors.New("ctx"), &Error{Op: "payment", Outcome: OutcomeRateLimited})
	if OutcomeOf(wrapped) != OutcomeRateLimited {
		t.Error("wrapped *Error not found")
	}
	if OutcomeOf(&Error{Outcome: OutcomeRefused}) != OutcomeRefused {
		t.Error("refused")
	}
	for o, s := range map[Outcome]string{OutcomeUnknown: "unknown", OutcomeRefused: "refused", OutcomeRateLimited: "rate_limited", 9: "Outcome(9)"} {
		if o.String() != s {
			t.Errorf("%d.String() = %q", int(o), o.String())
		}
	}
}

// Errors built by other packages (test doubles) still print well.
func TestErrorTextOfHandBuiltErrors(t *testing.T) {
	tests := []struct {
		e    *Error
		want string
	}{
		{&Error{Op: "check", Code: "429", Outcome: OutcomeRateLimited}, "cinetpay check: code 429 TOO_MANY_REQUEST"},
		{&Error{Op: "payment", Code: "609", Message: "AUTH_NOT_FOUND"}, "cinetpay payment: code 609 AUTH_NOT_FOUND"},
		{&Error{Op: "check", HTTPStatus: 502}, "cinetpay check: HTTP 502"},
		{&Error{Op: "check", Err: context.DeadlineExceeded}, "cinetpay check: timeout"},
		{&Error{Op: "payment", Code: "777"}, "cinetpay payment: code 777"},
		{&Error{}, "cinetpay call: failed"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if !(&Error{Err: context.DeadlineExceeded}).Timeout() {
		t.Error("Timeout() false for DeadlineExceeded")
	}
	inner := errors.New("inner")
	if !errors.Is(&Error{Err: inner}, inner) {
		t.Error("Unwrap does not expose Err")
	}
}

// An answer cut short (connection closed mid-body) is a transport error.
func TestInitPaymentAnswerCutShort(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"code\":\"201\",\"data\":{\"payment_token\":\"BODYMARK")
		buf.Flush()
		conn.Close()
	}))
	defer srv.Close()
	_, err := testClient(srv.URL).InitPayment(context.Background(), minimalRequest())
	e := asError(t, err, "payment")
	if e.Outcome != OutcomeUnknown || e.HTTPStatus != 200 || e.Timeout() || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Outcome = %v, HTTPStatus = %d, Timeout = %v, Err = %v", e.Outcome, e.HTTPStatus, e.Timeout(), e.Err)
	}
	if err.Error() != "cinetpay payment: network error: unexpected EOF, HTTP 200" {
		t.Errorf("Error() = %q", err.Error())
	}
}
