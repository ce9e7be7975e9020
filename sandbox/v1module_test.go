package sandbox

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"
)

func TestCaddyfileAdaptV1(t *testing.T) {
	caddytest.AssertAdapt(t, `
:8081 {
	cinetpay_sandbox {
		account {env.CINETPAY_API_KEY} {env.CINETPAY_API_PASSWORD} CI
		account sk_live_cm123 password-cm CM
		merchant 123456 key-a secret-a
		v1_page_path /checkout
	}
}
`, "caddyfile", `{
	"apps": {
		"http": {
			"servers": {
				"srv0": {
					"listen": [
						":8081"
					],
					"routes": [
						{
							"handle": [
								{
									"accounts": [
										{
											"api_key": "{env.CINETPAY_API_KEY}",
											"api_password": "{env.CINETPAY_API_PASSWORD}",
											"country": "CI"
										},
										{
											"api_key": "sk_live_cm123",
											"api_password": "password-cm",
											"country": "CM"
										}
									],
									"handler": "cinetpay_sandbox",
									"merchants": [
										{
											"api_key": "key-a",
											"secret_key": "secret-a",
											"site_id": "123456"
										}
									],
									"v1_page_path": "/checkout"
								}
							]
						}
					]
				}
			}
		}
	}
}`)
}

func TestCaddyfileErrorsV1(t *testing.T) {
	for _, tc := range []struct {
		input, want string
	}{
		{"cinetpay_sandbox {\n account sk_test_VALUE1 VALUE2\n}", "account: want <api_key> <api_password> <country>, got 2 values"},
		{"cinetpay_sandbox {\n account sk_test_VALUE1 VALUE2 CI extra\n}", "got 4 values"},
		{"cinetpay_sandbox {\n account\n}", "got 0 values"},
		{"cinetpay_sandbox {\n account sk_test_VALUE1 VALUE2 FR\n}", `account: unknown country "FR" (want one of CI, BF`},
		{"cinetpay_sandbox {\n account sk_test_VALUE1 VALUE2 ci\n}", `unknown country "ci"`},
		{"cinetpay_sandbox {\n account pk_VALUE1 VALUE2 CI\n}", "account: the api_key must start with sk_test_ or sk_live_"},
		{"cinetpay_sandbox {\n v1_page_path\n}", "wrong argument count"},
		{"cinetpay_sandbox {\n v1_page_path /a /b\n}", "wrong argument count"},
		{"cinetpay_sandbox {\n v1_page_path /a\n v1_page_path /b\n}", "v1_page_path: repeated"},
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.input, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "VALUE") {
			t.Errorf("%q: error shows a secret: %v", tc.input, err)
		}
	}
	// Several accounts, with placeholders checked at provisioning only.
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("cinetpay_sandbox {\n account {env.K} {env.P} {env.C}\n account sk_test_x y SN\n}"))
	if err != nil || len(h.Accounts) != 2 || h.Accounts[1] != (Account{"sk_test_x", "y", "SN"}) {
		t.Fatalf("accounts: %v %+v", err, h.Accounts)
	}
}

func TestProvisionV1(t *testing.T) {
	t.Setenv("SANDBOX_TEST_V1_KEY", "sk_test_from_env_123456")
	t.Setenv("SANDBOX_TEST_V1_PASSWORD", "password-from-env-789")
	account := func(key, password, country string) []Account { return []Account{{key, password, country}} }
	for _, tc := range []struct {
		name string
		h    Handler
		want string
	}{
		{"unknown country", Handler{Accounts: account("sk_test_a", "p", "FR")}, `accounts[0].country: unknown country "FR"`},
		{"no key", Handler{Accounts: account("", "p", "CI")}, "accounts[0].api_key: required (country CI)"},
		{"bad prefix", Handler{Accounts: account("{env.SANDBOX_TEST_V1_PASSWORD}", "p", "CI")},
			"accounts[0].api_key: must start with sk_test_ or sk_live_"},
		{"no password", Handler{Accounts: account("{env.SANDBOX_TEST_V1_KEY}", "", "CI")}, "accounts[0].api_password: required"},
		{"unset env", Handler{Accounts: account("{env.SANDBOX_TEST_V1_KEY}", "{env.SANDBOX_TEST_UNSET}", "CI")}, "accounts[0].api_password"},
		{"duplicate key", Handler{Accounts: []Account{{"{env.SANDBOX_TEST_V1_KEY}", "a", "CI"}, {"sk_test_from_env_123456", "b", "SN"}}},
			"accounts[1].api_key: the same api_key is listed twice (country SN)"},
		{"page path under /v1", Handler{Accounts: account("sk_test_a", "p", "CI"), V1PagePath: "/v1/pay"}, "v1_page_path"},
		{"page path /pay", Handler{Accounts: account("sk_test_a", "p", "CI"), V1PagePath: "/pay"}, "v1_page_path"},
		{"page path with query", Handler{Accounts: account("sk_test_a", "p", "CI"), V1PagePath: "/p?x=1"}, "v1_page_path"},
		{"page path relative", Handler{Accounts: account("sk_test_a", "p", "CI"), V1PagePath: "checkout"}, "v1_page_path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := provision(t, &tc.h)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			for _, secret := range []string{"sk_test_from_env_123456", "password-from-env-789"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error shows a secret: %v", err)
				}
			}
		})
	}
}

func TestHandlerServesV1(t *testing.T) {
	t.Setenv("SANDBOX_TEST_V1_KEY", "sk_test_from_env_123456")
	t.Setenv("SANDBOX_TEST_V1_PASSWORD", "password-from-env-789")
	// Accounts alone are enough.
	h := &Handler{
		Accounts:   []Account{{APIKey: "{env.SANDBOX_TEST_V1_KEY}", APIPassword: "{env.SANDBOX_TEST_V1_PASSWORD}", Country: "SN"}},
		PublicURL:  "https://sandbox.localhost",
		V1PagePath: "/checkout",
	}
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	serve := func(method, path, token string, body any) map[string]any {
		raw, _ := json.Marshal(body)
		req := httptest.NewRequest(method, path, strings.NewReader(string(raw)))
		req.RemoteAddr = "127.0.0.1:5555"
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, req, nil); err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		return out
	}
	out := serve(http.MethodPost, "/v1/oauth/login", "", map[string]any{"api_key": "sk_test_from_env_123456", "api_password": "password-from-env-789"})
	tok, _ := out["access_token"].(string)
	if tok == "" {
		t.Fatalf("login: %v", out)
	}
	b := v1PaymentBody("MOD-1", "https://shop.example")
	b["client_phone_number"] = "+221770000000"
	out = serve(http.MethodPost, "/v1/payment", tok, b)
	if u, _ := out["payment_url"].(string); !strings.HasPrefix(u, "https://sandbox.localhost/checkout/") {
		t.Fatalf("init: %v", out)
	}
	if h.Server().V1PaymentCount() != 1 {
		t.Fatal("Server() is not the one serving")
	}
	cfg, _ := json.Marshal(h)
	if strings.Contains(string(cfg), "password-from-env-789") {
		t.Fatal("Provision wrote a resolved secret into the config")
	}
}
