package cinetpayv1

import (
	"slices"
	"testing"
)

func TestCodeTable(t *testing.T) {
	want := map[int]string{
		200: "OK", 100: "SUCCESS", -1: "OPERATION_ERROR", 404: "NOT_FOUND", 1002: "INVALID_TOKEN",
		1003: "EXPIRED_TOKEN", 1004: "INVALID_PARAMS", 1005: "INVALID_CREDENTIALS", 1200: "TRANSACTION_EXIST",
		2001: "INITIATED", 2002: "PENDING", 2003: "EXPIRED", 2004: "OTP_ERROR", 2005: "INSUFFICIENT_BALANCE",
		2006: "USER_NOT_FOUND", 2007: "USER_IS_BLOCKED", 2008: "OTP_EXPIRED", 2010: "FAILED", 2011: "NOT_ALLOWED",
	}
	for code, name := range want {
		if got := CodeName(code); got != name {
			t.Errorf("CodeName(%d) = %q, want %q", code, got, name)
		}
	}
	if len(codeNames) != len(want) {
		t.Errorf("%d codes named, want %d", len(codeNames), len(want))
	}
	for _, code := range []int{0, 201, 429, 2009, 9999} {
		if CodeName(code) != "" {
			t.Errorf("CodeName(%d) = %q", code, CodeName(code))
		}
	}
	for code := range want {
		final := code == 100 || code == 2010 || code == 2005 || code == 1200
		if Final(code) != final {
			t.Errorf("Final(%d) = %v", code, !final)
		}
	}
}

func TestEndpoints(t *testing.T) {
	for key, want := range map[string]string{
		"sk_test_abc": SandboxEndpoint, "sk_live_abc": LiveEndpoint, "": LiveEndpoint, "SK_TEST_abc": LiveEndpoint, "other": LiveEndpoint,
	} {
		if got := DefaultEndpoint(key); got != want {
			t.Errorf("DefaultEndpoint(%q) = %q", key, got)
		}
	}
	if SandboxEndpoint != "https://api.cinetpay.net" || LiveEndpoint != "https://api.cinetpay.co" {
		t.Error("endpoints changed")
	}
	if !IsTestKey("sk_test_x") || IsTestKey("sk_live_x") || !IsLiveKey("sk_live_x") || IsLiveKey("sk_test_x") {
		t.Error("key prefixes")
	}
	c := &Client{APIKey: "sk_test_x"}
	if u, err := c.target(PathLogin); err != nil || u != "https://api.cinetpay.net/v1/oauth/login" {
		t.Errorf("default URL = %q, %v", u, err)
	}
	c = &Client{Endpoint: "http://127.0.0.1:8080/base/"}
	if u, _ := c.target(PathPayment + "/a%2Fb"); u != "http://127.0.0.1:8080/base/v1/payment/a%2Fb" {
		t.Errorf("URL = %q", u)
	}
	if defaultHTTPClient == nil || defaultHTTPClient.CheckRedirect == nil || ipv4HTTPClient.CheckRedirect == nil {
		t.Error("shared clients follow redirects")
	}
}

func TestHosts(t *testing.T) {
	for host, want := range map[string][2]bool{ // IsLiveHost, IsCinetPayHost
		"api.cinetpay.co":      {true, true},
		"API.CinetPay.co.":     {true, true},
		"api.cinetpay.net":     {false, true},
		"api.cinetpay.com":     {false, false},
		"api.cinetpay.co:443":  {false, false},
		"evilapi.cinetpay.co":  {false, false},
		"api.cinetpay.co.evil": {false, false},
		"":                     {false, false},
		"127.0.0.1":            {false, false},
		"api..cinetpay.co":     {false, false},
	} {
		if IsLiveHost(host) != want[0] || IsCinetPayHost(host) != want[1] {
			t.Errorf("%q: IsLiveHost = %v, IsCinetPayHost = %v", host, IsLiveHost(host), IsCinetPayHost(host))
		}
	}
	for ep, want := range map[string]bool{
		"https://api.cinetpay.co": true, "https://api.cinetpay.co/": true, "https://api.cinetpay.co:443": true,
		"https://API.cinetpay.co": true, "http://api.cinetpay.co": false, "https://api.cinetpay.co:8443": false,
		"https://api.cinetpay.net": false, "https://u@api.cinetpay.co": false, "http://127.0.0.1:9": false,
	} {
		if IsLiveEndpoint(ep) != want {
			t.Errorf("IsLiveEndpoint(%q) = %v", ep, !want)
		}
	}
	hosts := PaymentURLHosts()
	wantHosts := []string{"secure.cinetpay.co", "secure.cinetpay.net", "secure.cinetpay.com", "checkout.cinetpay.co", "checkout.cinetpay.net", "checkout.cinetpay.com"}
	if !slices.Equal(hosts, wantHosts) {
		t.Errorf("PaymentURLHosts = %v", hosts)
	}
	hosts[0] = "evil.example"
	if !IsPaymentURLHost("secure.cinetpay.co") || IsPaymentURLHost("evil.example") || IsPaymentURLHost("api.cinetpay.co") {
		t.Error("PaymentURLHosts is not a copy, or IsPaymentURLHost is wrong")
	}
}

func TestPaymentURLAllowed(t *testing.T) {
	tests := []struct {
		endpoint, url string
		want          bool
	}{
		{LiveEndpoint, "https://secure.cinetpay.co/payment/tok", true},
		{SandboxEndpoint, "https://secure.cinetpay.net/checkout/tok", true},
		{LiveEndpoint, "https://checkout.cinetpay.com/pay/x", true},
		{LiveEndpoint, "https://SECURE.cinetpay.co:443/payment/tok", true},
		{LiveEndpoint, "http://secure.cinetpay.co/payment/tok", false},
		{LiveEndpoint, "https://secure.cinetpay.co:8443/payment/tok", false},
		{LiveEndpoint, "https://evil.example/payment/tok", false},
		{LiveEndpoint, "https://secure.cinetpay.co.evil.example/x", false},
		{LiveEndpoint, "https://user@secure.cinetpay.co/x", false},
		{LiveEndpoint, "javascript:alert(1)", false},
		{LiveEndpoint, "/payment/tok", false},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/v1/page/tok", true},
		{"http://localhost:8080", "https://localhost:8080/v1/page/tok", true},
		{"http://[::1]:8080", "http://[::1]:8080/p", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:9090/p", false},
		{"http://127.0.0.1:8080", "http://evil.example:8080/p", false},
		{"https://sandbox.example", "https://sandbox.example/p", false},
		{LiveEndpoint, "http://127.0.0.1:8080/p", false},
	}
	for _, tt := range tests {
		if got := PaymentURLAllowed(tt.endpoint, tt.url); got != tt.want {
			t.Errorf("PaymentURLAllowed(%q, %q) = %v", tt.endpoint, tt.url, got)
		}
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		e    *APIError
		want string
	}{
		{&APIError{Op: "login", Code: 1005, HTTPStatus: 200}, "cinetpay v1 login: code 1005 INVALID_CREDENTIALS: check api_key and api_password (one pair per country account; sk_test_ keys belong to api.cinetpay.net)"},
		{&APIError{Op: "status", HTTPStatus: 502}, "cinetpay v1 status: HTTP 502"},
		{&APIError{Op: "init", Code: 7777}, "cinetpay v1 init: code 7777"},
		{&APIError{Op: "init", Code: 1004, Status: "bad word!", Description: "x\ny"}, `cinetpay v1 init: code 1004 INVALID_PARAMS "x y"`},
		{&APIError{}, "cinetpay v1 call: failed"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q\nwant      %q", got, tt.want)
		}
	}
	if CodeOf(&APIError{Code: 2011}) != 2011 || CodeOf(nil) != 0 {
		t.Error("CodeOf")
	}
	for o, s := range map[Outcome]string{OutcomeUnknown: "unknown", OutcomeRefused: "refused", OutcomeRateLimited: "rate_limited", 7: "Outcome(7)"} {
		if o.String() != s {
			t.Errorf("%d.String() = %q", int(o), o.String())
		}
	}
}
