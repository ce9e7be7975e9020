package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	keyCI  = "sk_test_ci0123456789abcdefWXYZ"
	passCI = "pw-ci-not-real-1234"
	keyCM  = "sk_live_cm0123456789abcdefQRST"
	passCM = "pw-cm-not-real-5678"
)

// testAccounts are the v1 accounts of every v1 test server.
var testAccounts = []Account{
	{APIKey: keyCI, APIPassword: passCI, Country: "CI"},
	{APIKey: keyCM, APIPassword: passCM, Country: "CM"},
}

// newV1Sandbox starts a sandbox with the v2 merchants and the v1 accounts.
func newV1Sandbox(t *testing.T, mod ...func(*Config)) (*Server, *httptest.Server) {
	t.Helper()
	return newSandbox(t, append([]func(*Config){func(c *Config) { c.Accounts = testAccounts }}, mod...)...)
}

// v1Result is a decoded v1 answer.
type v1Result struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

func (r v1Result) code() int {
	c, ok := r.Body["code"].(float64)
	if !ok {
		return 0
	}
	return int(c)
}

func (r v1Result) status() string {
	s, _ := r.Body["status"].(string)
	return s
}

func (r v1Result) str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

// keys returns the sorted keys of m.
func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// v1Do calls the v1 API with the SDKs' headers (Accept and Content-Type
// JSON, Authorization when token is set), minus those set to "" in headers.
func v1Do(t *testing.T, method, u, token string, body any, headers ...string) v1Result {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := v1Result{Status: resp.StatusCode, Header: resp.Header}
	out.Raw, _ = io.ReadAll(resp.Body)
	_ = json.Unmarshal(out.Raw, &out.Body)
	return out
}

// login logs in and returns the bearer token.
func login(t *testing.T, base, key, password string) string {
	t.Helper()
	r := v1Do(t, http.MethodPost, base+"/v1/oauth/login", "", map[string]any{"api_key": key, "api_password": password})
	if r.code() != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Raw)
	}
	return r.str("access_token")
}

// v1PaymentBody is a valid /v1/payment body for the CI account.
func v1PaymentBody(id, shop string) map[string]any {
	return map[string]any{
		"currency":                "XOF",
		"merchant_transaction_id": id,
		"amount":                  1000,
		"lang":                    "fr",
		"designation":             "Commande 42",
		"client_email":            "jane.doe@example.com",
		"client_first_name":       "Jane",
		"client_last_name":        "Doe",
		"client_phone_number":     "+2250707000000",
		"success_url":             shop + "/return/success",
		"failed_url":              shop + "/return/failed",
		"notify_url":              shop + "/notify",
	}
}

func v1Init(t *testing.T, base, token string, body any) v1Result {
	t.Helper()
	return v1Do(t, http.MethodPost, base+"/v1/payment", token, body)
}

// v1Create starts a payment for the CI account and returns the answer.
func v1Create(t *testing.T, base, token, id, shop string) v1Result {
	t.Helper()
	r := v1Init(t, base, token, v1PaymentBody(id, shop))
	if r.code() != 200 {
		t.Fatalf("create %s: %d %s", id, r.Status, r.Raw)
	}
	return r
}

func v1Status(t *testing.T, base, token, id string) v1Result {
	t.Helper()
	return v1Do(t, http.MethodGet, base+"/v1/payment/"+url.PathEscape(id), token, nil)
}

func TestV1Login(t *testing.T) {
	s, ts := newV1Sandbox(t)
	r := v1Do(t, http.MethodPost, ts.URL+"/v1/oauth/login", "", map[string]any{"api_key": keyCI, "api_password": passCI})
	if r.Status != 200 || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v %s", r.Status, r.Header, r.Raw)
	}
	if got, want := keys(r.Body), []string{"access_token", "code", "expires_in", "status", "token_type"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	if r.code() != 200 || r.status() != "OK" || r.str("token_type") != "bearer" || r.Body["expires_in"] != 86400.0 {
		t.Fatalf("login: %s", r.Raw)
	}
	tok := r.str("access_token")
	if len(tok) < 32 {
		t.Fatalf("access_token %q", tok)
	}
	if other := login(t, ts.URL, keyCI, passCI); other == tok {
		t.Fatal("two logins, one token")
	}
	// Both tokens work.
	if r := v1Status(t, ts.URL, tok, "NONE"); r.code() != 404 {
		t.Fatalf("first token after a second login: %s", r.Raw)
	}

	for _, c := range []struct {
		name   string
		body   any
		hdr    []string
		code   int
		status int
		desc   string
	}{
		{"wrong password", map[string]any{"api_key": keyCI, "api_password": passCM}, nil, 1005, 401, "Bad credentials"},
		{"unknown key", map[string]any{"api_key": "sk_test_nope", "api_password": passCI}, nil, 1005, 401, "Bad credentials"},
		{"password of the other account", map[string]any{"api_key": keyCM, "api_password": passCI}, nil, 1005, 401, "Bad credentials"},
		{"no api_key", map[string]any{"api_password": passCI}, nil, 1004, 422, "api_key is required"},
		{"no api_password", map[string]any{"api_key": keyCI}, nil, 1004, 422, "api_password is required"},
		{"number password", map[string]any{"api_key": keyCI, "api_password": 12}, nil, 1004, 422, "api_password must be a string"},
		{"not json", "api_key=x", nil, 1004, 422, "JSON object"},
		{"form content type", map[string]any{"api_key": keyCI, "api_password": passCI},
			[]string{"Content-Type", "application/x-www-form-urlencoded"}, 1004, 422, "Content-Type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := v1Do(t, http.MethodPost, ts.URL+"/v1/oauth/login", "", c.body, c.hdr...)
			if r.code() != c.code || r.Status != c.status || !strings.Contains(r.str("description"), c.desc) {
				t.Fatalf("got %d HTTP %d %s, want %d HTTP %d %q", r.code(), r.Status, r.Raw, c.code, c.status, c.desc)
			}
			if got := keys(r.Body); !reflect.DeepEqual(got, []string{"code", "description", "status"}) {
				t.Fatalf("error keys %v", got)
			}
			if want := map[int]string{1005: "INVALID_CREDENTIALS", 1004: "INVALID_PARAMS"}[c.code]; r.status() != want {
				t.Fatalf("status %q, want %q", r.status(), want)
			}
		})
	}
	if r := v1Do(t, http.MethodGet, ts.URL+"/v1/oauth/login", "", nil); r.Status != 405 || r.Header.Get("Allow") != "POST" {
		t.Fatalf("GET login: %d %s", r.Status, r.Raw)
	}
	if n := s.V1LoginCount(); n != 10 {
		t.Fatalf("V1LoginCount %d, want 10", n)
	}
}

func TestV1Authentication(t *testing.T) {
	_, ts := newV1Sandbox(t)
	tok := login(t, ts.URL, keyCI, passCI)
	v1Create(t, ts.URL, tok, "ORDER-1", "http://127.0.0.1:1")
	for _, c := range []struct {
		name string
		hdr  []string
		code int
	}{
		{"no header", []string{"Authorization", ""}, 1002},
		{"unknown token", []string{"Authorization", "Bearer 0123456789abcdef0123456789abcdef"}, 1002},
		{"basic scheme", []string{"Authorization", "Basic " + tok}, 1002},
		{"bearer without token", []string{"Authorization", "Bearer"}, 1002},
		{"lower-case scheme", []string{"Authorization", "bearer " + tok}, 2001},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := v1Do(t, http.MethodGet, ts.URL+"/v1/payment/ORDER-1", tok, nil, c.hdr...)
			if r.code() != c.code {
				t.Fatalf("code %d, want %d: %s", r.code(), c.code, r.Raw)
			}
			if c.code == 1002 && (r.Status != 401 || r.status() != "INVALID_TOKEN" || r.str("description") == "") {
				t.Fatalf("%d %s", r.Status, r.Raw)
			}
		})
	}
	// Init needs a token too.
	if r := v1Init(t, ts.URL, "", v1PaymentBody("ORDER-2", "http://127.0.0.1:1")); r.code() != 1002 || r.Status != 401 {
		t.Fatalf("init without token: %d %s", r.Status, r.Raw)
	}
	// One account does not see another's transactions.
	tokCM := login(t, ts.URL, keyCM, passCM)
	if r := v1Status(t, ts.URL, tokCM, "ORDER-1"); r.code() != 404 || r.Status != 422 {
		t.Fatalf("other account: %d %s", r.Status, r.Raw)
	}
}

func TestV1TokenLifetime(t *testing.T) {
	s, ts := newV1Sandbox(t)
	setFaults(t, ts.URL, `{"v1_token_lifetime":"300ms"}`)
	r := v1Do(t, http.MethodPost, ts.URL+"/v1/oauth/login", "", map[string]any{"api_key": keyCI, "api_password": passCI})
	if r.Body["expires_in"] != 1.0 {
		t.Fatalf("expires_in %v, want 1 (rounded up)", r.Body["expires_in"])
	}
	tok := r.str("access_token")
	if r := v1Init(t, ts.URL, tok, v1PaymentBody("ORDER-1", "http://127.0.0.1:1")); r.code() != 200 {
		t.Fatalf("fresh token: %s", r.Raw)
	}
	time.Sleep(350 * time.Millisecond)
	r = v1Status(t, ts.URL, tok, "ORDER-1")
	if r.code() != 1003 || r.status() != "EXPIRED_TOKEN" || r.Status != 401 || r.str("description") == "" {
		t.Fatalf("expired token: %d %s", r.Status, r.Raw)
	}
	if r := v1Status(t, ts.URL, login(t, ts.URL, keyCI, passCI), "ORDER-1"); r.code() != 2001 {
		t.Fatalf("after a new login: %s", r.Raw)
	}

	// expires_in may promise more than the token lives.
	s.SetFaults(Faults{V1TokenLifetime: Duration(100 * time.Millisecond), V1ExpiresIn: 86400})
	r = v1Do(t, http.MethodPost, ts.URL+"/v1/oauth/login", "", map[string]any{"api_key": keyCI, "api_password": passCI})
	if r.Body["expires_in"] != 86400.0 {
		t.Fatalf("expires_in %v", r.Body["expires_in"])
	}
	time.Sleep(150 * time.Millisecond)
	if r := v1Status(t, ts.URL, r.str("access_token"), "ORDER-1"); r.code() != 1003 {
		t.Fatalf("token past its real lifetime: %s", r.Raw)
	}
}

func TestV1ExpiredTokenFault(t *testing.T) {
	s, ts := newV1Sandbox(t)
	tok := login(t, ts.URL, keyCI, passCI)
	v1Create(t, ts.URL, tok, "ORDER-1", "http://127.0.0.1:1")
	setFaults(t, ts.URL, `{"v1_expired_token":{"times":1}}`)
	if r := v1Status(t, ts.URL, tok, "ORDER-1"); r.code() != 1003 || r.Status != 401 {
		t.Fatalf("forced 1003: %d %s", r.Status, r.Raw)
	}
	if s.Faults().V1ExpiredToken != nil {
		t.Fatal("v1_expired_token not used up")
	}
	// The token stays expired: the client must log in again.
	if r := v1Status(t, ts.URL, tok, "ORDER-1"); r.code() != 1003 {
		t.Fatalf("same token again: %s", r.Raw)
	}
	if r := v1Status(t, ts.URL, login(t, ts.URL, keyCI, passCI), "ORDER-1"); r.code() != 2001 {
		t.Fatalf("new token: %s", r.Raw)
	}
	reqs := s.Requests()
	if reqs[2].Fault != "v1_expired_token" || reqs[2].Code != "1003" || reqs[3].Fault != "" {
		t.Fatalf("requests %+v", reqs[2:4])
	}
}

func TestV1NotAllowed(t *testing.T) {
	s, ts := newV1Sandbox(t)
	setFaults(t, ts.URL, `{"v1_not_allowed":{"times":1,"login":true}}`)
	r := v1Do(t, http.MethodPost, ts.URL+"/v1/oauth/login", "", map[string]any{"api_key": keyCI, "api_password": passCI})
	if r.code() != 2011 || r.status() != "NOT_ALLOWED" || r.str("description") != "This Ip is not withlisted" || r.Status != 403 {
		t.Fatalf("login: %d %s", r.Status, r.Raw)
	}
	tok := login(t, ts.URL, keyCI, passCI) // used up

	setFaults(t, ts.URL, `{"v1_not_allowed":{"calls":true}}`)
	if r := v1Init(t, ts.URL, tok, v1PaymentBody("ORDER-1", "http://127.0.0.1:1")); r.code() != 2011 {
		t.Fatalf("init: %s", r.Raw)
	}
	if r := v1Status(t, ts.URL, tok, "ORDER-1"); r.code() != 2011 {
		t.Fatalf("status: %s", r.Raw)
	}
	login(t, ts.URL, keyCI, passCI) // calls only: logins pass
	if len(s.Transactions()) != 0 {
		t.Fatal("a refused init created a transaction")
	}
	if f := s.Requests()[0].Fault; f != "v1_not_allowed" {
		t.Fatalf("fault %q", f)
	}

	// IPv6 only: the same server over IPv4 and over IPv6.
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ts6 := httptest.NewUnstartedServer(s)
	ts6.Listener.Close()
	ts6.Listener = ln
	ts6.Start()
	defer ts6.Close()
	setFaults(t, ts.URL, `{"v1_not_allowed":{"login":true,"ipv6":true}}`)
	body := map[string]any{"api_key": keyCI, "api_password": passCI}
	if r := v1Do(t, http.MethodPost, ts6.URL+"/v1/oauth/login", "", body); r.code() != 2011 {
		t.Fatalf("over IPv6: %s", r.Raw)
	}
	if r := v1Do(t, http.MethodPost, ts.URL+"/v1/oauth/login", "", body); r.code() != 200 {
		t.Fatalf("over IPv4: %s", r.Raw)
	}
}

func TestV1PaymentChecks(t *testing.T) {
	_, ts := newV1Sandbox(t)
	tok := login(t, ts.URL, keyCI, passCI)
	shop := "https://shop.example"

	type mod func(map[string]any)
	set := func(k string, v any) mod { return func(b map[string]any) { b[k] = v } }
	del := func(k string) mod { return func(b map[string]any) { delete(b, k) } }
	long := func(n int) string { return strings.Repeat("a", n) }
	longURL := func(n int) string { return "https://shop.example/" + long(n-len("https://shop.example/")) }

	cases := []struct {
		name string
		mods []mod
		raw  string
		hdr  []string
		desc string // "" for a success
	}{
		{name: "valid"},
		{name: "not json", raw: "currency=XOF", desc: "JSON object"},
		{name: "json array", raw: "[]", desc: "JSON object"},
		{name: "form content type", hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}, desc: "Content-Type"},
		{name: "json with charset", hdr: []string{"Content-Type", "application/json; charset=utf-8"}},
		{name: "no currency", mods: []mod{del("currency")}, desc: "currency is required"},
		{name: "currency of another country", mods: []mod{set("currency", "XAF")}, desc: "currency must be XOF"},
		{name: "currency lower case", mods: []mod{set("currency", "xof")}, desc: "currency"},
		{name: "no merchant_transaction_id", mods: []mod{del("merchant_transaction_id")}, desc: "merchant_transaction_id is required"},
		{name: "merchant_transaction_id 30", mods: []mod{set("merchant_transaction_id", long(30))}},
		{name: "merchant_transaction_id 31", mods: []mod{set("merchant_transaction_id", long(31))}, desc: "merchant_transaction_id must be at most 30"},
		{name: "merchant_transaction_id number", mods: []mod{set("merchant_transaction_id", 42)}, desc: "merchant_transaction_id must be a string"},
		{name: "no amount", mods: []mod{del("amount")}, desc: "amount is required"},
		{name: "amount 99", mods: []mod{set("amount", 99)}, desc: "amount must be between 100 and 2500000"},
		{name: "amount 100", mods: []mod{set("amount", 100)}},
		{name: "amount 2500000", mods: []mod{set("amount", 2500000)}},
		{name: "amount 2500001", mods: []mod{set("amount", 2500001)}, desc: "amount must be between"},
		{name: "amount 1001 not a multiple of 5", mods: []mod{set("amount", 1001)}},
		{name: "amount decimal", mods: []mod{set("amount", 1000.5)}, desc: "amount must be an integer"},
		{name: "amount string", mods: []mod{set("amount", "1000")}, desc: "amount must be an integer"},
		{name: "amount exponent", mods: []mod{set("amount", json.Number("1e3"))}, desc: "amount must be an integer"},
		{name: "no lang", mods: []mod{del("lang")}, desc: "lang is required"},
		{name: "lang de", mods: []mod{set("lang", "de")}, desc: "lang must be fr or en"},
		{name: "lang en", mods: []mod{set("lang", "en")}},
		{name: "no designation", mods: []mod{del("designation")}, desc: "designation is required"},
		{name: "designation 256", mods: []mod{set("designation", long(256))}, desc: "designation must be at most 255"},
		{name: "designation with #/$_&", mods: []mod{set("designation", "Commande #42 a/b $ _ &")}},
		{name: "no client_email", mods: []mod{del("client_email")}, desc: "client_email is required"},
		{name: "bad client_email", mods: []mod{set("client_email", "jane@example")}, desc: "client_email must be an e-mail"},
		{name: "no first name", mods: []mod{del("client_first_name")}, desc: "client_first_name is required"},
		{name: "first name 1", mods: []mod{set("client_first_name", "J")}, desc: "client_first_name must be 2 to 255"},
		{name: "last name 256", mods: []mod{set("client_last_name", long(256))}, desc: "client_last_name must be 2 to 255"},
		{name: "no last name", mods: []mod{del("client_last_name")}, desc: "client_last_name is required"},
		{name: "no success_url", mods: []mod{del("success_url")}, desc: "success_url is required"},
		{name: "no failed_url", mods: []mod{del("failed_url")}, desc: "failed_url is required"},
		{name: "no notify_url", mods: []mod{del("notify_url")}, desc: "notify_url is required"},
		{name: "success_url 120", mods: []mod{set("success_url", longURL(120))}},
		{name: "success_url 121", mods: []mod{set("success_url", longURL(121))}, desc: "success_url must be at most 120"},
		{name: "notify_url 121", mods: []mod{set("notify_url", longURL(121))}, desc: "notify_url must be at most 120"},
		{name: "failed_url ftp", mods: []mod{set("failed_url", "ftp://shop.example/f")}, desc: "failed_url must be an http:// or https:// URL"},
		{name: "notify_url relative", mods: []mod{set("notify_url", "/notify")}, desc: "notify_url must be an http"},
		{name: "channel PUSH", mods: []mod{set("channel", "PUSH")}},
		{name: "channel QRCODE", mods: []mod{set("channel", "QRCODE")}},
		{name: "channel REDIRECT", mods: []mod{set("channel", "REDIRECT")}, desc: "channel must be PUSH, OTP or QRCODE"},
		{name: "payment_method OM_CI", mods: []mod{set("payment_method", "OM_CI")}},
		{name: "payment_method OM_SN", mods: []mod{set("payment_method", "OM_SN")}, desc: "payment_method must end with _CI"},
		{name: "payment_method OM", mods: []mod{set("payment_method", "OM")}, desc: "payment_method must end with _CI"},
		{name: "no phone", mods: []mod{del("client_phone_number")}},
		{name: "phone without +", mods: []mod{set("client_phone_number", "2250707000000")}, desc: "client_phone_number must be an E.164"},
		{name: "phone too short", mods: []mod{set("client_phone_number", "+2250707")}, desc: "client_phone_number must be an E.164"},
		{name: "phone of another country", mods: []mod{set("client_phone_number", "+237670000000")}, desc: "client_phone_number must start with +225"},
		{name: "direct_pay", mods: []mod{set("direct_pay", true), set("payment_method", "OM_CI"), set("otp_code", "1234")}},
		{name: "direct_pay false", mods: []mod{set("direct_pay", false)}},
		{name: "direct_pay not a bool", mods: []mod{set("direct_pay", "yes")}, desc: "direct_pay must be a boolean"},
		{name: "direct_pay without phone", mods: []mod{set("direct_pay", true), set("payment_method", "OM_CI"), del("client_phone_number")},
			desc: "client_phone_number is required with direct_pay"},
		{name: "direct_pay without method", mods: []mod{set("direct_pay", true)}, desc: "payment_method is required with direct_pay"},
		{name: "otp 3 digits", mods: []mod{set("otp_code", "123")}, desc: "otp_code must be 4 to 6 digits"},
		{name: "otp letters", mods: []mod{set("otp_code", "12ab")}, desc: "otp_code must be 4 to 6 digits"},
		{name: "unknown field", mods: []mod{set("site_id", "123456")}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body any = c.raw
			if c.raw == "" {
				b := v1PaymentBody("CHK-"+strconv.Itoa(i), shop)
				for _, m := range c.mods {
					m(b)
				}
				body = b
			}
			r := v1Do(t, http.MethodPost, ts.URL+"/v1/payment", tok, body, c.hdr...)
			if c.desc == "" {
				if r.code() != 200 || r.Status != 200 {
					t.Fatalf("refused: %d %s", r.Status, r.Raw)
				}
				return
			}
			if r.code() != 1004 || r.status() != "INVALID_PARAMS" || r.Status != 422 || !strings.Contains(r.str("description"), c.desc) {
				t.Fatalf("got %d HTTP %d %s, want 1004 HTTP 422 %q", r.code(), r.Status, r.Raw, c.desc)
			}
			if got := keys(r.Body); !reflect.DeepEqual(got, []string{"code", "description", "status"}) {
				t.Fatalf("error keys %v", got)
			}
		})
	}

	// The country decides: XAF and +237 for the CM account.
	tokCM := login(t, ts.URL, keyCM, passCM)
	b := v1PaymentBody("CM-1", shop)
	if r := v1Init(t, ts.URL, tokCM, b); !strings.Contains(r.str("description"), "currency must be XAF") {
		t.Fatalf("CM in XOF: %s", r.Raw)
	}
	b["currency"] = "XAF"
	if r := v1Init(t, ts.URL, tokCM, b); !strings.Contains(r.str("description"), "+237") {
		t.Fatalf("CM with a CI number: %s", r.Raw)
	}
	b["client_phone_number"] = "+237670000000"
	b["payment_method"] = "MTN_CM"
	if r := v1Init(t, ts.URL, tokCM, b); r.code() != 200 {
		t.Fatalf("CM: %s", r.Raw)
	}
}

func TestV1PaymentSuccessShape(t *testing.T) {
	for _, tc := range []struct {
		name, publicURL, pagePath, wantBase string
	}{
		{"derived", "", "", ""},
		{"public_url", "https://secure.sandbox.test/cp/", "", "https://secure.sandbox.test/cp/payment/"},
		{"page path", "", "/checkout/", "/checkout/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ts := newV1Sandbox(t, func(c *Config) { c.PublicURL, c.V1PagePath = tc.publicURL, tc.pagePath })
			tok := login(t, ts.URL, keyCI, passCI)
			r := v1Init(t, ts.URL, tok, v1PaymentBody("ORDER-123", "https://shop.example"))
			if r.Status != 200 || r.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s", r.Status, r.Raw)
			}
			pt, nt, id := r.str("payment_token"), r.str("notify_token"), r.str("transaction_id")
			if !regexp.MustCompile(`^[a-zA-Z0-9_-]{10,128}$`).MatchString(pt) {
				t.Fatalf("payment_token %q", pt)
			}
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
				t.Fatalf("transaction_id %q", id)
			}
			if len(nt) < 32 || nt == pt {
				t.Fatalf("notify_token %q", nt)
			}
			base := tc.wantBase
			switch tc.name {
			case "derived":
				base = ts.URL + "/payment/"
			case "page path":
				base = ts.URL + tc.wantBase
			}
			want := `{"code":200,"status":"OK","payment_token":"` + pt + `","notify_token":"` + nt +
				`","transaction_id":"` + id + `","merchant_transaction_id":"ORDER-123","payment_url":"` + base + pt +
				`","details":{"code":2001,"status":"INITIATED","message":"Veuillez cliquer sur le lien pour continuer le paiement","must_be_redirected":true}}`
			if string(r.Raw) != want {
				t.Fatalf("answer\n%s\nwant\n%s", r.Raw, want)
			}
			// Another payment gets other secrets.
			r2 := v1Create(t, ts.URL, tok, "ORDER-124", "https://shop.example")
			if r2.str("notify_token") == nt || r2.str("payment_token") == pt || r2.str("transaction_id") == id {
				t.Fatal("secrets repeated")
			}
			v, ok := s.Transaction("ORDER-123")
			if !ok || v.V1 == nil || v.V1.NotifyToken != nt || v.V1.CinetPayTransactionID != id || v.Token != pt ||
				v.Status != V1StatusInitiated || v.Amount != 1000 || v.Currency != "XOF" || v.V1.Country != "CI" ||
				v.V1.Environment != "test" || v.V1.Account != "sk_test_…WXYZ" || v.Description != "Commande 42" ||
				v.V1.User != (V1User{"Doe Jane", "jane.doe@example.com", "+2250707000000"}) {
				t.Fatalf("view %+v %+v", v, v.V1)
			}
			if s.V1PaymentCount() != 2 || s.PaymentCount() != 0 {
				t.Fatalf("counts %d %d", s.V1PaymentCount(), s.PaymentCount())
			}
		})
	}
}

func TestV1PaymentDuplicate(t *testing.T) {
	s, ts := newV1Sandbox(t)
	tok := login(t, ts.URL, keyCI, passCI)
	v1Create(t, ts.URL, tok, "DUP-1", "http://127.0.0.1:1")
	r := v1Init(t, ts.URL, tok, v1PaymentBody("DUP-1", "http://127.0.0.1:1"))
	if r.code() != 1200 || r.status() != "TRANSACTION_EXIST" || r.Status != 400 || r.str("description") != "La transaction existe déjà" {
		t.Fatalf("reuse: %d %s", r.Status, r.Raw)
	}
	// The same id on another account is another transaction.
	b := v1PaymentBody("DUP-1", "http://127.0.0.1:1")
	b["currency"], b["client_phone_number"] = "XAF", "+237670000000"
	if r := v1Init(t, ts.URL, login(t, ts.URL, keyCM, passCM), b); r.code() != 200 {
		t.Fatalf("other account: %s", r.Raw)
	}
	// A refused call does not reserve its id.
	b = v1PaymentBody("FRESH-1", "http://127.0.0.1:1")
	b["amount"] = 5
	v1Init(t, ts.URL, tok, b)
	v1Create(t, ts.URL, tok, "FRESH-1", "http://127.0.0.1:1")

	// The knob answers 1200 to a new id, and stores nothing.
	setFaults(t, ts.URL, `{"v1_transaction_exist":{"times":1}}`)
	if r := v1Init(t, ts.URL, tok, v1PaymentBody("NEW-1", "http://127.0.0.1:1")); r.code() != 1200 || r.Status != 400 {
		t.Fatalf("knob: %s", r.Raw)
	}
	if _, ok := s.Transaction("NEW-1"); ok {
		t.Fatal("the knob stored the transaction")
	}
	if r := v1Status(t, ts.URL, tok, "NEW-1"); r.code() != 404 {
		t.Fatalf("status after the knob: %s", r.Raw)
	}
	// An invalid request still gets 1004 under the knob.
	setFaults(t, ts.URL, `{"v1_transaction_exist":{}}`)
	b = v1PaymentBody("NEW-2", "http://127.0.0.1:1")
	b["lang"] = "de"
	if r := v1Init(t, ts.URL, tok, b); r.code() != 1004 {
		t.Fatalf("invalid under the knob: %s", r.Raw)
	}
	reqs := s.Requests()
	if last := reqs[len(reqs)-3]; last.Fault != "v1_transaction_exist" || last.TransactionID != "NEW-1" || last.Code != "1200" {
		t.Fatalf("request %+v", last)
	}
	// A 1200 after which the transaction exists: the APIFault with processed.
	setFaults(t, ts.URL, `{"v1_payment":{"times":1,"code":"1200","processed":true}}`)
	if r := v1Init(t, ts.URL, tok, v1PaymentBody("NEW-3", "http://127.0.0.1:1")); r.code() != 1200 || r.str("description") != "La transaction existe déjà" {
		t.Fatalf("processed 1200: %s", r.Raw)
	}
	if r := v1Status(t, ts.URL, tok, "NEW-3"); r.code() != 2001 {
		t.Fatalf("status after a processed 1200: %s", r.Raw)
	}
}

func TestV1ErrorShapeKnobs(t *testing.T) {
	_, ts := newV1Sandbox(t)
	tok := login(t, ts.URL, keyCI, passCI)
	b := v1PaymentBody("ERR-1", "http://127.0.0.1:1")
	b["amount"] = 50

	setFaults(t, ts.URL, `{"v1_errors_in_details":true}`)
	r := v1Init(t, ts.URL, tok, b)
	want := `{"code":200,"status":"OK","details":{"code":1004,"status":"INVALID_PARAMS","message":"amount must be between 100 and 2500000"}}`
	if r.Status != 200 || string(r.Raw) != want {
		t.Fatalf("in details: %d %s", r.Status, r.Raw)
	}

	setFaults(t, ts.URL, `{"v1_error_status":{"1004":200,"1002":403,"404":404}}`)
	if r := v1Init(t, ts.URL, tok, b); r.Status != 200 || r.code() != 1004 {
		t.Fatalf("1004 as 200: %d %s", r.Status, r.Raw)
	}
	if r := v1Init(t, ts.URL, "nope-nope-nope", b); r.Status != 403 || r.code() != 1002 {
		t.Fatalf("1002 as 403: %d %s", r.Status, r.Raw)
	}
	if r := v1Status(t, ts.URL, tok, "NONE"); r.Status != 404 || r.code() != 404 {
		t.Fatalf("404 as 404: %d %s", r.Status, r.Raw)
	}
	// Codes absent from the map keep the defaults.
	if r := v1Do(t, http.MethodPost, ts.URL+"/v1/oauth/login", "", map[string]any{"api_key": keyCI, "api_password": "x"}); r.Status != 401 {
		t.Fatalf("1005: %d", r.Status)
	}
}

func TestV1Status(t *testing.T) {
	s, ts := newV1Sandbox(t)
	tok := login(t, ts.URL, keyCI, passCI)
	ids := map[string]v1Result{}
	for _, id := range []string{"ST-INIT", "ST-PEND", "ST-OK", "ST-KO", "ST-EXP", "ST/slash ü"} {
		ids[id] = v1Create(t, ts.URL, tok, id, "http://127.0.0.1:1")
	}
	getPage(t, ids["ST-PEND"].str("payment_url")) // opening the page starts the payment process
	for id, action := range map[string]string{"ST-OK": ActionAccept, "ST-KO": ActionRefuse, "ST-EXP": ActionExpire} {
		if _, err := s.Act(id, action); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		id, status string
		code       int
	}{
		{"ST-INIT", "INITIATED", 2001}, {"ST-PEND", "PENDING", 2002}, {"ST-OK", "SUCCESS", 100},
		{"ST-KO", "FAILED", 2010}, {"ST-EXP", "EXPIRED", 2003}, {"ST/slash ü", "INITIATED", 2001},
	} {
		init := ids[c.id]
		for _, by := range []string{c.id, init.str("transaction_id")} {
			r := v1Status(t, ts.URL, tok, by)
			want := `{"code":` + strconv.Itoa(c.code) + `,"status":"` + c.status + `","merchant_transaction_id":` +
				strconv.Quote(c.id) + `,"transaction_id":"` + init.str("transaction_id") +
				`","user":{"name":"Doe Jane","email":"jane.doe@example.com","phone_number":"+2250707000000"}}`
			if r.Status != 200 || string(r.Raw) != want {
				t.Fatalf("status of %s by %s: %d\n%s\nwant\n%s", c.id, by, r.Status, r.Raw, want)
			}
		}
	}
	// No phone sent: a made-up one of the country.
	b := v1PaymentBody("ST-NOPHONE", "http://127.0.0.1:1")
	delete(b, "client_phone_number")
	v1Init(t, ts.URL, tok, b)
	user, _ := v1Status(t, ts.URL, tok, "ST-NOPHONE").Body["user"].(map[string]any)
	if p, _ := user["phone_number"].(string); !regexp.MustCompile(`^\+225[0-9]{10}$`).MatchString(p) {
		t.Fatalf("made-up phone %q", p)
	}

	// Unknown id: HTTP 422 with code 404.
	r := v1Status(t, ts.URL, tok, "NONE")
	if r.Status != 422 || string(r.Raw) != `{"code":404,"status":"NOT_FOUND","description":"Not found"}` {
		t.Fatalf("unknown: %d %s", r.Status, r.Raw)
	}
	// By payment_token: only behind the knob.
	pt := ids["ST-OK"].str("payment_token")
	if r := v1Status(t, ts.URL, tok, pt); r.code() != 404 {
		t.Fatalf("by token without the knob: %s", r.Raw)
	}
	setFaults(t, ts.URL, `{"v1_status_by_token":true}`)
	if r := v1Status(t, ts.URL, tok, pt); r.code() != 100 || r.str("merchant_transaction_id") != "ST-OK" {
		t.Fatalf("by token with the knob: %s", r.Raw)
	}
	// The unknown-id knob hides an existing transaction.
	setFaults(t, ts.URL, `{"v1_unknown_id":{"times":1}}`)
	if r := v1Status(t, ts.URL, tok, "ST-OK"); r.Status != 422 || r.code() != 404 {
		t.Fatalf("unknown-id knob: %d %s", r.Status, r.Raw)
	}
	if r := v1Status(t, ts.URL, tok, "ST-OK"); r.code() != 100 {
		t.Fatalf("after the knob: %s", r.Raw)
	}
	if n := s.V1StatusCount("ST-OK"); n != 5 { // 2 above, by token, knob, after
		t.Fatalf("V1StatusCount %d", n)
	}
	if r := v1Do(t, http.MethodPost, ts.URL+"/v1/payment/ST-OK", tok, "{}"); r.Status != 405 || r.Header.Get("Allow") != "GET" {
		t.Fatalf("POST status: %d", r.Status)
	}
	if r := v1Do(t, http.MethodGet, ts.URL+"/v1/balances", tok, nil); r.Status != 404 || r.code() != 404 {
		t.Fatalf("balances: %d %s", r.Status, r.Raw)
	}
}

func TestV1APIFaults(t *testing.T) {
	s, ts := newV1Sandbox(t)
	tok := login(t, ts.URL, keyCI, passCI)
	v1Create(t, ts.URL, tok, "FLT-1", "http://127.0.0.1:1")

	setFaults(t, ts.URL, `{"v1_login":{"times":1,"status":503}}`)
	r := v1Do(t, http.MethodPost, ts.URL+"/v1/oauth/login", "", map[string]any{"api_key": keyCI, "api_password": passCI})
	if r.Status != 503 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || r.Body != nil {
		t.Fatalf("login 503: %d %s", r.Status, r.Raw)
	}
	// Aimed precisely: the other endpoints are untouched.
	setFaults(t, ts.URL, `{"v1_payment":{"code":"429","retry_after":3}}`)
	if r := v1Status(t, ts.URL, tok, "FLT-1"); r.code() != 2001 {
		t.Fatalf("status under a payment fault: %s", r.Raw)
	}
	r = v1Init(t, ts.URL, tok, v1PaymentBody("FLT-2", "http://127.0.0.1:1"))
	if r.Status != 429 || r.code() != 429 || r.status() != "TOO_MANY_REQUESTS" || r.Header.Get("Retry-After") != "3" {
		t.Fatalf("429: %d %v %s", r.Status, r.Header, r.Raw)
	}
	setFaults(t, ts.URL, `{"v1_payment":{"times":1,"status":429,"retry_after":2}}`)
	if r := v1Init(t, ts.URL, tok, v1PaymentBody("FLT-2", "http://127.0.0.1:1")); r.Status != 429 || r.Body != nil || r.Header.Get("Retry-After") != "2" {
		t.Fatalf("429 page: %d %s", r.Status, r.Raw)
	}
	setFaults(t, ts.URL, `{"v1_payment":{"times":1,"code":"-1","status":500}}`)
	if r := v1Init(t, ts.URL, tok, v1PaymentBody("FLT-2", "http://127.0.0.1:1")); r.Status != 500 || r.code() != -1 ||
		r.status() != "OPERATION_ERROR" || r.str("description") == "" {
		t.Fatalf("-1: %d %s", r.Status, r.Raw)
	}
	if _, ok := s.Transaction("FLT-2"); ok {
		t.Fatal("a faulted init created the transaction")
	}
	for _, body := range []string{BodyGarbage, BodyHTML, BodyEmpty} {
		setFaults(t, ts.URL, `{"v1_status":{"times":1,"body":"`+body+`"}}`)
		if r := v1Status(t, ts.URL, tok, "FLT-1"); r.Status != 200 || r.Body != nil || json.Valid(r.Raw) {
			t.Fatalf("%s: %d %q", body, r.Status, r.Raw)
		}
	}
	setFaults(t, ts.URL, `{"v1_payment":{"times":1,"body":"truncated"}}`)
	if r := v1Init(t, ts.URL, tok, v1PaymentBody("FLT-3", "http://127.0.0.1:1")); r.Body != nil || !strings.HasPrefix(string(r.Raw), `{"code":200`) {
		t.Fatalf("truncated: %s", r.Raw)
	}
	if _, ok := s.Transaction("FLT-3"); !ok {
		t.Fatal("truncated answer: the transaction must exist")
	}

	// Hang: the client times out, the payment is created anyway.
	setFaults(t, ts.URL, `{"v1_payment":{"times":1,"hang":"10s"}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	raw, _ := json.Marshal(v1PaymentBody("FLT-HANG", "http://127.0.0.1:1"))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v1/payment", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang: %v", err)
	}
	waitFor(t, "the hung payment", func() bool { _, ok := s.Transaction("FLT-HANG"); return ok })

	if f := s.Requests()[2].Fault; f != "v1_login" {
		t.Fatalf("fault name %q", f)
	}
}

func TestV1RateLimit(t *testing.T) {
	_, ts := newV1Sandbox(t)
	tok := login(t, ts.URL, keyCI, passCI)
	v1Create(t, ts.URL, tok, "RL-1", "http://127.0.0.1:1")
	setFaults(t, ts.URL, `{"rate_limit":2}`)
	var codes []int
	for range 3 {
		codes = append(codes, v1Status(t, ts.URL, tok, "RL-1").code())
	}
	if !reflect.DeepEqual(codes, []int{2001, 2001, 429}) {
		t.Fatalf("codes %v", codes)
	}
	r := v1Status(t, ts.URL, tok, "RL-1")
	if r.Status != 429 || r.Header.Get("Retry-After") != "1" || r.status() != "TOO_MANY_REQUESTS" {
		t.Fatalf("429: %d %v %s", r.Status, r.Header, r.Raw)
	}
	// v2 calls share the limit.
	if r := check(t, ts.URL, "TX"); r.code() != "429" {
		t.Fatalf("v2 under the limit: %s", r.Raw)
	}
}

func TestV1StatusByEscapedID(t *testing.T) {
	_, ts := newV1Sandbox(t)
	tok := login(t, ts.URL, keyCI, passCI)
	v1Create(t, ts.URL, tok, "A/B?C#D", "http://127.0.0.1:1")
	if r := v1Status(t, ts.URL, tok, "A/B?C#D"); r.code() != 2001 || r.str("merchant_transaction_id") != "A/B?C#D" {
		t.Fatalf("escaped id: %s", r.Raw)
	}
	if r := v1Do(t, http.MethodGet, ts.URL+"/v1/payment/", tok, nil); r.Status != 404 {
		t.Fatalf("no id: %d", r.Status)
	}
}
