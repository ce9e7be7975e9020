package cinetpayv1

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Every error path, with answers that echo every secret they can: no secret
// reaches Error(), %v, %+v, %#v, Status or Description.
func TestErrorsNeverContainSecrets(t *testing.T) {
	k, p, n, t1 := testAPIKey, testAPIPassword, testNotifyToken, tokenN(1)
	echo := k + " " + p + " " + n + " " + t1
	loginScenarios := map[string]reply{
		"1005 echoing the credentials":   {status: 401, body: `{"code":1005,"status":"` + k + `","description":"bad ` + p + `"}`},
		"2011 echoing the key":           {status: 422, body: `{"code":2011,"status":"NOT_ALLOWED","description":"key ` + k + ` not allowed"}`},
		"error with a token":             {body: `{"code":1004,"access_token":"` + t1 + `","description":"` + t1 + `","message":"` + p + `"}`},
		"unusable token echoed":          {body: `{"code":200,"access_token":"` + t1 + ` x","description":"` + t1 + ` x"}`},
		"unreadable code echoing secret": {body: `{"code":"` + k + `","status":"` + p + `"}`},
		"HTML echoing secrets":           {status: 500, body: "<html>" + echo + "</html>"},
		"429 echoing secrets":            {status: 429, body: echo},
		"hang":                           {hang: true},
	}
	callScenarios := map[string]reply{
		"1004 echoing the token":           {status: 422, body: `{"code":1004,"status":"INVALID_PARAMS","description":"token ` + t1 + `"}`},
		"1004 in details echoing notify":   {body: `{"code":200,"status":"OK","notify_token":"` + n + `","payment_token":"` + n + `x","details":{"code":1004,"status":"` + n + `","message":"` + n + `"}}`},
		"1200 echoing notify":              {status: 400, body: `{"code":1200,"status":"TRANSACTION_EXIST","notify_token":"` + n + `","description":"exists: ` + n + `"}`},
		"-1 echoing password":              {body: `{"code":-1,"status":"OPERATION_ERROR","description":"` + p + `"}`},
		"unknown code echoing key":         {body: `{"code":5555,"status":"` + k + `","description":"` + k + `"}`},
		"other id echoing notify":          {body: `{"code":200,"payment_url":"https://secure.cinetpay.net/p","notify_token":"` + n + `","merchant_transaction_id":"order-999","description":"` + n + `"}`},
		"status for another id":            {body: `{"code":100,"merchant_transaction_id":"order-999","description":"` + echo + `"}`},
		"token refused, echoing it":        {status: 401, body: `{"code":1003,"status":"EXPIRED_TOKEN","description":"expired: ` + t1 + ` ` + tokenN(2) + `"}`},
		"HTTP 401 echoing it":              {status: 401, body: "Bearer " + t1},
		"429 echoing":                      {status: 429, header: map[string]string{"Retry-After": "3"}, body: echo},
		"HTML echoing":                     {status: 502, body: "<html>" + echo + "</html>"},
		"garbage echoing":                  {body: "\x00" + echo},
		"hang":                             {hang: true},
		"secret as a plain status word":    {body: `{"code":1004,"status":"` + tokenN(1) + `"}`},
		"secret in a long description":     {body: `{"code":1004,"description":"` + strings.Repeat("é", 100) + n + `"}`},
		"unknown JWT in a description":     {body: `{"code":1004,"description":"bad token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc"}`},
		"secret split by control":          {body: `{"code":1004,"description":"` + p[:5] + `\u0000` + p[5:] + `"}`},
		"success echo (not an error path)": {body: initOKBody},
	}
	run := func(t *testing.T, f *fakeAPI, extra ...string) {
		t.Helper()
		c := f.client()
		c.Timeout = 200 * time.Millisecond
		_, err := c.InitPayment(bg, validRequest())
		assertNoSecret(t, err, extra...)
		_, err = c.PaymentStatus(bg, testMTID)
		assertNoSecret(t, err, extra...)
	}
	for name, rp := range loginScenarios {
		t.Run("login/"+name, func(t *testing.T) {
			run(t, newFake(t, func(int) reply { return rp }, statusAnswer))
		})
	}
	for name, rp := range callScenarios {
		t.Run("call/"+name, func(t *testing.T) {
			run(t, newFake(t, nil, func(recorded, int) reply { return rp }), tokenN(2))
		})
	}

	t.Run("transport", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		u := srv.URL
		srv.Close()
		for _, c := range []*Client{
			{Endpoint: u, APIKey: testAPIKey, APIPassword: testAPIPassword},
			{Endpoint: "https://u:" + testAPIPassword + "@x.invalid", APIKey: testAPIKey, APIPassword: testAPIPassword},
			{Endpoint: u, APIKey: testAPIKey, APIPassword: testAPIPassword, IPv4Only: true, HTTPClient: &http.Client{Transport: roundTripFunc(nil)}},
			{Endpoint: u, APIKey: testAPIKey},
		} {
			_, err := c.InitPayment(bg, validRequest())
			if err == nil {
				t.Fatal("no error")
			}
			assertNoSecret(t, err)
			ctx, cancel := context.WithCancel(bg)
			cancel()
			_, err = c.PaymentStatus(ctx, testMTID)
			assertNoSecret(t, err)
		}
	})

	t.Run("validation", func(t *testing.T) {
		f := newFake(t, nil, statusAnswer)
		c := f.client()
		for _, edit := range []func(r *PaymentRequest){
			func(r *PaymentRequest) { r.ClientEmail = testAPIKey },
			func(r *PaymentRequest) { r.MerchantTransactionID = testNotifyToken + testNotifyToken },
			func(r *PaymentRequest) { r.Designation = testAPIPassword + "\n" },
			func(r *PaymentRequest) { r.NotifyURL = "ftp://" + testAPIPassword },
			func(r *PaymentRequest) { r.ClientPhoneNumber = testAPIKey },
		} {
			r := validRequest()
			edit(r)
			_, err := c.InitPayment(bg, r)
			if err == nil {
				t.Fatal("no error")
			}
			assertNoSecret(t, err)
		}
		f.wantCounts(t, 0, 0)
	})

	t.Run("printing", func(t *testing.T) {
		c := &Client{APIKey: testAPIKey, APIPassword: testAPIPassword}
		c.token = tokenN(1)
		p := PaymentInit{NotifyToken: testNotifyToken, MerchantTransactionID: "m1"}
		for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprint(p), fmt.Sprintf("%+v", &p), fmt.Sprintf("%#v", p)} {
			for _, sec := range secretsOf() {
				if strings.Contains(s, sec) {
					t.Errorf("%s contains %q", s, sec)
				}
			}
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
