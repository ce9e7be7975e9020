package cinetpayv1

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func statusAnswer(r recorded, n int) reply { return reply{body: statusOKBody} }

func TestLoginRequest(t *testing.T) {
	f := newFake(t, nil, statusAnswer)
	c := f.client()
	c.UserAgent = "shop-test/2"
	if _, err := c.PaymentStatus(bg, testMTID); err != nil {
		t.Fatalf("PaymentStatus: %v", err)
	}
	f.wantCounts(t, 1, 1)
	r := f.loginReqs[0]
	if r.method != http.MethodPost || r.uri != PathLogin {
		t.Errorf("login request %s %s, want POST %s", r.method, r.uri, PathLogin)
	}
	for h, want := range map[string]string{"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "shop-test/2", "Authorization": ""} {
		if got := r.header.Get(h); got != want {
			t.Errorf("login %s = %q, want %q", h, got, want)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("login body is not JSON: %v", err)
	}
	want := map[string]any{"api_key": testAPIKey, "api_password": testAPIPassword}
	if len(body) != len(want) || body["api_key"] != want["api_key"] || body["api_password"] != want["api_password"] {
		t.Errorf("login body = %s", r.body)
	}
	if got := f.requests()[0].header.Get("Authorization"); got != "Bearer "+tokenN(1) {
		t.Errorf("Authorization = %q", got)
	}
}

func TestTokenReused(t *testing.T) {
	f := newFake(t, nil, statusAnswer)
	c := f.client()
	for i := range 5 {
		if _, err := c.PaymentStatus(bg, testMTID); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if _, err := c.InitPayment(bg, validRequest()); err == nil {
			t.Fatal("InitPayment with a status answer succeeded")
		}
	}
	f.wantCounts(t, 1, 10)
	for _, r := range f.requests() {
		if bearerOf(r) != tokenN(1) {
			t.Errorf("request %s sent token %q", r.uri, bearerOf(r))
		}
	}
}

// 50 concurrent calls share one login, and the token afterwards.
func TestTokenConcurrentCallsShareOneLogin(t *testing.T) {
	f := newFake(t, nil, statusAnswer)
	f.gate = make(chan struct{})
	c := f.client()
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.PaymentStatus(bg, testMTID)
			errs <- err
		}()
	}
	waitForWaiters(t, c, n)
	close(f.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	f.wantCounts(t, 1, n)
}

func TestTokenLifetime(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn string // "" leaves it out
		valid     time.Duration
	}{
		{"86400 s", "86400", 86400*time.Second - time.Minute},
		{"100 s: margin 10%", "100", 90 * time.Second},
		{"as a string", `"100"`, 90 * time.Second},
		{"absent: 300 s", "", 270 * time.Second},
		{"null", "null", 270 * time.Second},
		{"zero", "0", 270 * time.Second},
		{"negative", "-5", 270 * time.Second},
		{"not a number", `"soon"`, 270 * time.Second},
		{"capped at 24 h", "999999999", 24*time.Hour - time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(n int) reply { return loginOK(n, tt.expiresIn) }, statusAnswer)
			c := f.client()
			clk := &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
			c.now = clk.now
			if _, err := c.PaymentStatus(bg, testMTID); err != nil {
				t.Fatal(err)
			}
			clk.advance(tt.valid - time.Second)
			if _, err := c.PaymentStatus(bg, testMTID); err != nil {
				t.Fatal(err)
			}
			f.wantCounts(t, 1, 2)
			clk.advance(time.Second)
			if _, err := c.PaymentStatus(bg, testMTID); err != nil {
				t.Fatal(err)
			}
			f.wantCounts(t, 2, 3)
			if got := bearerOf(f.requests()[2]); got != tokenN(2) {
				t.Errorf("after expiry, sent %q, want %q", got, tokenN(2))
			}
		})
	}
}

func TestRefreshMargin(t *testing.T) {
	for d, want := range map[time.Duration]time.Duration{
		24 * time.Hour:    time.Minute,
		10 * time.Minute:  time.Minute,
		300 * time.Second: 30 * time.Second,
		time.Second:       100 * time.Millisecond,
	} {
		if got := refreshMargin(d); got != want {
			t.Errorf("refreshMargin(%v) = %v, want %v", d, got, want)
		}
	}
}

// A refused token (1002, 1003, 1005 or HTTP 401 without a code) is given up:
// one new login, one retry, with the new token.
func TestTokenRefusedMidFlight(t *testing.T) {
	refusals := []struct {
		name string
		rp   reply
	}{
		{"1003 HTTP 200", reply{status: 200, body: `{"code":1003,"status":"EXPIRED_TOKEN","message":"Le jeton d'authentification a expire"}`}},
		{"1003 HTTP 401", reply{status: 401, body: `{"code":1003,"status":"EXPIRED_TOKEN","description":"Token has expired"}`}},
		{"1003 as a string", reply{status: 200, body: `{"code":"1003","status":"EXPIRED_TOKEN"}`}},
		{"1002 HTTP 200", reply{status: 200, body: `{"code":1002,"status":"INVALID_TOKEN","description":"Invalid token"}`}},
		{"1002 HTTP 422", reply{status: 422, body: `{"code":1002,"status":"INVALID_TOKEN"}`}},
		{"1005 on a call", reply{status: 200, body: `{"code":1005,"status":"INVALID_CREDENTIALS"}`}},
		{"HTTP 401 empty", reply{status: 401}},
		{"HTTP 401 HTML", reply{status: 401, body: "<html>Unauthorized</html>"}},
		{"HTTP 401 JSON without code", reply{status: 401, body: `{"message":"Unauthenticated."}`}},
	}
	ops := map[string]struct {
		ok   reply
		call func(c *Client) error
	}{
		"init":   {reply{body: initOKBody}, func(c *Client) error { _, err := c.InitPayment(bg, validRequest()); return err }},
		"status": {reply{body: statusOKBody}, func(c *Client) error { _, err := c.PaymentStatus(bg, testMTID); return err }},
	}
	for _, rf := range refusals {
		for opName, op := range ops {
			t.Run(rf.name+"/"+opName, func(t *testing.T) {
				f := newFake(t, nil, func(r recorded, n int) reply {
					if bearerOf(r) == tokenN(1) {
						return rf.rp
					}
					return op.ok
				})
				c := f.client()
				if err := op.call(c); err != nil {
					t.Fatalf("%s: %v", opName, err)
				}
				f.wantCounts(t, 2, 2)
				reqs := f.requests()
				if bearerOf(reqs[0]) != tokenN(1) || bearerOf(reqs[1]) != tokenN(2) {
					t.Errorf("tokens sent: %q then %q", bearerOf(reqs[0]), bearerOf(reqs[1]))
				}
				if opName == "init" && string(reqs[0].body) != string(reqs[1].body) {
					t.Errorf("retry sent another body:\n%s\n%s", reqs[0].body, reqs[1].body)
				}
				// The new token is kept.
				if err := op.call(c); err != nil {
					t.Fatal(err)
				}
				f.wantCounts(t, 2, 3)
			})
		}
	}
}

// A token refused again after the new login is an error: no loop.
func TestTokenRefusedTwice(t *testing.T) {
	for _, rp := range []reply{
		{status: 200, body: `{"code":1003,"status":"EXPIRED_TOKEN","description":"Token has expired"}`},
		{status: 401, body: ""},
		{status: 401, body: `{"code":1002,"status":"INVALID_TOKEN"}`},
	} {
		f := newFake(t, nil, func(recorded, int) reply { return rp })
		c := f.client()
		_, err := c.InitPayment(bg, validRequest())
		e := asAPIError(t, err, "init")
		if e.Outcome != OutcomeRefused || !strings.Contains(err.Error(), "token refused after a new login") {
			t.Errorf("init: Outcome = %v, err = %v", e.Outcome, err)
		}
		f.wantCounts(t, 2, 2)

		_, err = c.PaymentStatus(bg, testMTID)
		e = asAPIError(t, err, "status")
		if e.Outcome != OutcomeUnknown {
			t.Errorf("status: Outcome = %v", e.Outcome)
		}
		// The refused token was forgotten: the next operation logs in
		// again, once more at most.
		f.wantCounts(t, 4, 4)
		if rp.body != "" && e.Code == 0 {
			t.Errorf("Code = 0 for %s", rp.body)
		}
	}
}

// 50 calls refused the same expired token share one new login.
func TestTokenRefusedConcurrently(t *testing.T) {
	f := newFake(t, nil, func(r recorded, n int) reply {
		if bearerOf(r) == tokenN(1) {
			return reply{body: `{"code":1003,"status":"EXPIRED_TOKEN"}`}
		}
		return reply{body: statusOKBody}
	})
	c := f.client()
	if _, err := c.PaymentStatus(bg, testMTID); err != nil { // logs in with token 1, then 2
		t.Fatal(err)
	}
	c.invalidate(tokenN(2))
	c.mu.Lock()
	c.token, c.expires = tokenN(1), time.Now().Add(time.Hour) // back to the expired token
	c.mu.Unlock()
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.PaymentStatus(bg, testMTID); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if l, _ := f.counts(); l != 3 {
		t.Errorf("%d logins, want 3 (one shared new login)", l)
	}
}

func TestLoginErrors(t *testing.T) {
	creds := `{"code":1005,"status":"INVALID_CREDENTIALS","description":"Bad credentials"}`
	ip := `{"code":2011,"status":"NOT_ALLOWED","description":"This Ip is not withlisted"}`
	tests := []struct {
		name    string
		rp      reply
		code    int
		is      error
		outcome Outcome
		errHas  string
	}{
		{"1005 HTTP 200", reply{status: 200, body: creds}, 1005, ErrInvalidCredentials, OutcomeRefused, "check api_key and api_password"},
		{"1005 HTTP 401", reply{status: 401, body: creds}, 1005, ErrInvalidCredentials, OutcomeRefused, `code 1005 INVALID_CREDENTIALS "Bad credentials" (HTTP 401)`},
		{"1005 HTTP 422", reply{status: 422, body: creds}, 1005, ErrInvalidCredentials, OutcomeRefused, "(HTTP 422)"},
		{"1005 as a string", reply{status: 200, body: `{"code":"1005","status":"INVALID_CREDENTIALS"}`}, 1005, ErrInvalidCredentials, OutcomeRefused, ""},
		{"2011 HTTP 200", reply{status: 200, body: ip}, 2011, ErrNotAllowed, OutcomeRefused, "IP whitelist"},
		{"2011 HTTP 401", reply{status: 401, body: ip}, 2011, ErrNotAllowed, OutcomeRefused, "IPv6"},
		{"2011 HTTP 403", reply{status: 403, body: ip}, 2011, ErrNotAllowed, OutcomeRefused, `"This Ip is not withlisted"`},
		{"2011 HTTP 422", reply{status: 422, body: ip}, 2011, ErrNotAllowed, OutcomeRefused, ""},
		{"1004", reply{status: 422, body: `{"code":1004,"status":"INVALID_PARAMS"}`}, 1004, nil, OutcomeRefused, ""},
		{"HTTP 401 no code", reply{status: 401, body: "Unauthorized"}, 0, nil, OutcomeRefused, "HTTP 401, unreadable answer"},
		{"HTTP 429", reply{status: 429, header: map[string]string{"Retry-After": "30"}}, 0, nil, OutcomeRateLimited, "retry after 30s"},
		{"HTTP 500 HTML", reply{status: 500, body: "<html>oops</html>"}, 0, nil, OutcomeRefused, "HTTP 500, unreadable answer"},
		{"garbage", reply{status: 200, body: "\x00\xffgarbage"}, 0, nil, OutcomeRefused, "unreadable answer"},
		{"empty", reply{status: 200}, 0, nil, OutcomeRefused, ""},
		{"200 without token", reply{status: 200, body: `{"code":200,"status":"OK"}`}, 200, nil, OutcomeRefused, "no usable access_token"},
		{"token with a space", reply{status: 200, body: `{"code":200,"access_token":"a b","expires_in":60}`}, 200, nil, OutcomeRefused, "no usable access_token"},
		{"token not a string", reply{status: 200, body: `{"code":200,"access_token":12345}`}, 200, nil, OutcomeRefused, "no usable access_token"},
		{"token with CRLF", reply{status: 200, body: `{"code":200,"access_token":"abc\r\nX-Evil: 1"}`}, 200, nil, OutcomeRefused, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(int) reply { return tt.rp }, statusAnswer)
			c := f.client()
			_, err := c.InitPayment(bg, validRequest())
			e := asAPIError(t, err, "login")
			if e.Code != tt.code || e.Outcome != tt.outcome {
				t.Errorf("Code = %d, Outcome = %v; want %d, %v (%v)", e.Code, e.Outcome, tt.code, tt.outcome, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			if IsInvalidCredentials(err) != (tt.code == 1005) || IsNotAllowed(err) != (tt.code == 2011) {
				t.Errorf("IsInvalidCredentials = %v, IsNotAllowed = %v", IsInvalidCredentials(err), IsNotAllowed(err))
			}
			if e.HTTPStatus != max(tt.rp.status, 200) {
				t.Errorf("HTTPStatus = %d", e.HTTPStatus)
			}
			if tt.errHas != "" && !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("Error() = %q, want it to contain %q", err.Error(), tt.errHas)
			}
			// One login, no call, no retry storm.
			f.wantCounts(t, 1, 0)
			// A failed login is not remembered: the next call tries again,
			// once.
			_, err = c.PaymentStatus(bg, testMTID)
			asAPIError(t, err, "login")
			f.wantCounts(t, 2, 0)
		})
	}
}

// Concurrent callers share one failed login.
func TestLoginFailureShared(t *testing.T) {
	f := newFake(t, func(int) reply {
		return reply{status: 401, body: `{"code":1005,"status":"INVALID_CREDENTIALS","description":"Bad credentials"}`}
	}, statusAnswer)
	f.gate = make(chan struct{})
	c := f.client()
	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() { _, err := c.InitPayment(bg, validRequest()); errs <- err }()
	}
	waitForWaiters(t, c, n)
	close(f.gate)
	for range n {
		if err := <-errs; !IsInvalidCredentials(err) {
			t.Errorf("err = %v", err)
		}
	}
	f.wantCounts(t, 1, 0)
}

func TestLoginNestedDataToken(t *testing.T) {
	f := newFake(t, func(n int) reply {
		return reply{body: `{"code":200,"status":"OK","data":{"token":"` + tokenN(n) + `","expires_in":"3600","token_type":"bearer"}}`}
	}, statusAnswer)
	if _, err := f.client().PaymentStatus(bg, testMTID); err != nil {
		t.Fatal(err)
	}
	if got := bearerOf(f.requests()[0]); got != tokenN(1) {
		t.Errorf("token = %q", got)
	}
}

// A login answer without code but with a token (as the dashboard documents
// it) is accepted.
func TestLoginWithoutCode(t *testing.T) {
	f := newFake(t, func(n int) reply {
		return reply{body: `{"access_token":"` + tokenN(n) + `","token_type":"bearer","expires_in":86400}`}
	}, statusAnswer)
	if _, err := f.client().PaymentStatus(bg, testMTID); err != nil {
		t.Fatal(err)
	}
}

func TestLoginMissingCredentials(t *testing.T) {
	f := newFake(t, nil, statusAnswer)
	for _, c := range []*Client{
		{Endpoint: f.srv.URL, APIKey: testAPIKey},
		{Endpoint: f.srv.URL, APIPassword: testAPIPassword},
	} {
		_, err := c.PaymentStatus(bg, testMTID)
		if e := asAPIError(t, err, "login"); e.Outcome != OutcomeRefused {
			t.Errorf("Outcome = %v", e.Outcome)
		}
	}
	f.wantCounts(t, 0, 0)
}

func TestLoginTimeout(t *testing.T) {
	f := newFake(t, func(int) reply { return reply{hang: true} }, statusAnswer)
	c := f.client()
	c.Timeout = 150 * time.Millisecond
	_, err := c.InitPayment(bg, validRequest())
	e := asAPIError(t, err, "login")
	if !e.Timeout() || e.Outcome != OutcomeRefused {
		t.Errorf("Timeout() = %v, Outcome = %v", e.Timeout(), e.Outcome)
	}
	if !strings.HasPrefix(err.Error(), "cinetpay v1 login: timeout after 150ms") {
		t.Errorf("Error() = %q", err.Error())
	}
	f.wantCounts(t, 1, 0)
}

// A caller that stops waiting does not stop the login it shares: the token
// it brings serves the next caller.
func TestLoginOutlivesImpatientCaller(t *testing.T) {
	f := newFake(t, nil, statusAnswer)
	f.gate = make(chan struct{})
	c := f.client()
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	_, err := c.PaymentStatus(ctx, testMTID)
	e := asAPIError(t, err, "login")
	if !e.Timeout() {
		t.Errorf("Timeout() = false: %v", err)
	}
	close(f.gate)
	if _, err := c.PaymentStatus(bg, testMTID); err != nil {
		t.Fatal(err)
	}
	f.wantCounts(t, 1, 1)

	ctx, cancel = context.WithCancel(bg)
	cancel()
	c2 := f.client()
	_, err = c2.PaymentStatus(ctx, testMTID)
	if e := asAPIError(t, err, "login"); !errors.Is(err, context.Canceled) || e.Timeout() || err.Error() != "cinetpay v1 login: canceled" {
		t.Errorf("canceled: %v", err)
	}
	f.wantCounts(t, 1, 1) // no login started for a caller already gone
}
