package cinetpayv1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Secrets are distinctive so that tests can look for them in error texts.
const (
	testAPIKey      = "sk_test_KEY7f3a9c1e-not-real"
	testAPIPassword = "PASS9d2e4a71-not-real"
	testNotifyToken = "NOTIFY5c8e2b41-not-real"
	testMTID        = "order-123"
)

// tokenN is the n-th token the fake API issues.
func tokenN(n int) string { return "TOKENb6e1d9x" + strconv.Itoa(n) }

// reply is an answer of the fake API.
type reply struct {
	status int
	header map[string]string
	body   string
	// hang makes the server answer nothing until the client goes away.
	hang bool
}

// recorded is what the fake API saw of one request.
type recorded struct {
	method, uri, path string
	header            http.Header
	body              []byte
}

// fakeAPI imitates CinetPay v1: logins on PathLogin, everything else goes to
// call. It counts both.
type fakeAPI struct {
	srv *httptest.Server

	mu        sync.Mutex
	logins    int
	calls     int
	loginReqs []recorded
	reqs      []recorded

	login func(n int) reply
	call  func(r recorded, n int) reply
	// gate, when set, holds every login until it is closed.
	gate chan struct{}
}

func newFake(t *testing.T, login func(n int) reply, call func(r recorded, n int) reply) *fakeAPI {
	t.Helper()
	if login == nil {
		login = func(n int) reply { return loginOK(n, "86400") }
	}
	f := &fakeAPI{login: login, call: call}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec := recorded{r.Method, r.RequestURI, r.URL.Path, r.Header.Clone(), b}
	var rp reply
	if r.URL.Path == PathLogin {
		f.mu.Lock()
		f.logins++
		n := f.logins
		f.loginReqs = append(f.loginReqs, rec)
		gate := f.gate
		f.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		rp = f.login(n)
	} else {
		f.mu.Lock()
		f.calls++
		n := f.calls
		f.reqs = append(f.reqs, rec)
		f.mu.Unlock()
		if f.call == nil {
			rp = reply{status: 404, body: `{"code":404,"status":"NOT_FOUND"}`}
		} else {
			rp = f.call(rec, n)
		}
	}
	if rp.hang {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return
	}
	for k, v := range rp.header {
		w.Header().Set(k, v)
	}
	if rp.status == 0 {
		rp.status = 200
	}
	w.WriteHeader(rp.status)
	io.WriteString(w, rp.body)
}

func (f *fakeAPI) counts() (logins, calls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins, f.calls
}

func (f *fakeAPI) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fakeAPI) client() *Client {
	return &Client{Endpoint: f.srv.URL, APIKey: testAPIKey, APIPassword: testAPIPassword, Timeout: 5 * time.Second}
}

// wantCounts checks how many logins and calls the fake API saw.
func (f *fakeAPI) wantCounts(t *testing.T, logins, calls int) {
	t.Helper()
	if l, c := f.counts(); l != logins || c != calls {
		t.Errorf("server saw %d logins and %d calls, want %d and %d", l, c, logins, calls)
	}
}

func loginOK(n int, expiresIn string) reply {
	body := `{"code":200,"status":"OK","access_token":"` + tokenN(n) + `","token_type":"bearer"`
	if expiresIn != "" {
		body += `,"expires_in":` + expiresIn
	}
	return reply{body: body + "}"}
}

// bearerOf returns the token of a request's Authorization header.
func bearerOf(r recorded) string {
	t, _ := strings.CutPrefix(r.header.Get("Authorization"), "Bearer ")
	return t
}

// initOKBody is the init answer of the fact sheet's web-redirect example.
const initOKBody = `{"code": 200, "status": "OK", "payment_token": "payment-token", "notify_token": "` + testNotifyToken + `",
 "transaction_id": "transaction-123", "merchant_transaction_id": "order-123",
 "payment_url": "https://secure.cinetpay.net/payment/payment-token",
 "details": {"code": 2001, "status": "INITIATED",
             "message": "Veuillez cliquer sur le lien pour continuer le paiement", "must_be_redirected": true}}`

const statusOKBody = `{"code": 100, "status": "SUCCESS", "merchant_transaction_id": "order-123", "transaction_id": "transaction-123",
 "user": {"name": "Doe John", "email": "john.doe@gmail.com", "phone_number": "+2250707000000"}}`

// validRequest is the fact sheet's init request example, with a valid
// payment_method.
func validRequest() *PaymentRequest {
	return &PaymentRequest{
		Currency:              "XOF",
		PaymentMethod:         "OM_CI",
		MerchantTransactionID: testMTID,
		Amount:                1000,
		Lang:                  "fr",
		Designation:           "Test payment",
		ClientEmail:           "test@example.com",
		ClientFirstName:       "Jane",
		ClientLastName:        "Doe",
		ClientPhoneNumber:     "+2250707000000",
		SuccessURL:            "https://merchant.test/success",
		FailedURL:             "https://merchant.test/failed",
		NotifyURL:             "https://merchant.test/notify",
	}
}

// secretsOf lists what must never appear in an error.
func secretsOf(extra ...string) []string {
	s := []string{testAPIKey, testAPIPassword, testNotifyToken, "TOKENb6e1d9x"}
	return append(s, extra...)
}

// asAPIError asserts err is an *APIError with Op op and checks what every
// error must hold: the prefix, a bounded length, no secret.
func asAPIError(t *testing.T, err error, op string) *APIError {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got nil")
	}
	var e *APIError
	if !errors.As(err, &e) {
		t.Fatalf("error %T (%v) is not an *APIError", err, err)
	}
	if e.Op != op {
		t.Errorf("Op = %q, want %q (%v)", e.Op, op, err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "cinetpay v1 "+op+": ") {
		t.Errorf("Error() = %q, want prefix %q", msg, "cinetpay v1 "+op+": ")
	}
	if len(msg) > 400 {
		t.Errorf("Error() is %d bytes long: %q", len(msg), msg)
	}
	assertNoSecret(t, err)
	if OutcomeOf(err) != e.Outcome {
		t.Errorf("OutcomeOf = %v, Outcome = %v", OutcomeOf(err), e.Outcome)
	}
	return e
}

// assertNoSecret checks that no secret appears in any rendering of err.
func assertNoSecret(t *testing.T, err error, extra ...string) {
	t.Helper()
	if err == nil {
		return
	}
	texts := map[string]string{
		"Error()": err.Error(),
		"%v":      fmt.Sprintf("%v", err),
		"%+v":     fmt.Sprintf("%+v", err),
		"%#v":     fmt.Sprintf("%#v", err),
		"%s":      fmt.Sprintf("%s", err),
	}
	var e *APIError
	if errors.As(err, &e) {
		texts["Status"] = e.Status
		texts["Description"] = e.Description
		texts["%+v of *APIError"] = fmt.Sprintf("%+v", *e)
	}
	for name, s := range texts {
		for _, sec := range secretsOf(extra...) {
			if strings.Contains(s, sec) {
				t.Errorf("%s contains secret %q: %s", name, sec, s)
			}
		}
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// waitForWaiters waits until n calls wait for the Client's login flight.
func waitForWaiters(t *testing.T, c *Client, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.mu.Lock()
		w := 0
		if c.flight != nil {
			w = c.flight.waiters
		}
		c.mu.Unlock()
		if w >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d calls wait for the login", w, n)
		}
		time.Sleep(time.Millisecond)
	}
}

var bg = context.Background()
