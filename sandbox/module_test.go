package sandbox

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"
)

func TestCaddyfileAdapt(t *testing.T) {
	caddytest.AssertAdapt(t, `
:8081 {
	file_server
	cinetpay_sandbox {
		merchant 123456 {env.CINETPAY_API_KEY} {env.CINETPAY_SECRET_KEY}
		merchant 654321 key-b secret-b
		allow_remote
		public_url http://127.0.0.1:8081
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
									"allow_remote": true,
									"handler": "cinetpay_sandbox",
									"merchants": [
										{
											"api_key": "{env.CINETPAY_API_KEY}",
											"secret_key": "{env.CINETPAY_SECRET_KEY}",
											"site_id": "123456"
										},
										{
											"api_key": "key-b",
											"secret_key": "secret-b",
											"site_id": "654321"
										}
									],
									"public_url": "http://127.0.0.1:8081"
								},
								{
									"handler": "file_server",
									"hide": [
										"./Caddyfile"
									]
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

func TestCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct {
		input, want string
	}{
		{"cinetpay_sandbox {\n merchant 1 VALUE1\n}", "merchant: want <site_id> <api_key> <secret_key>, got 2 values"},
		{"cinetpay_sandbox {\n merchant 1 VALUE1 VALUE2 VALUE3\n}", "got 4 values"},
		{"cinetpay_sandbox {\n merchant\n}", "got 0 values"},
		{"cinetpay_sandbox {\n bogus\n}", `unknown subdirective "bogus"`},
		{"cinetpay_sandbox {\n allow_remote yes\n}", "wrong argument count"},
		{"cinetpay_sandbox {\n public_url\n}", "wrong argument count"},
		{"cinetpay_sandbox {\n public_url a b\n}", "wrong argument count"},
		{"cinetpay_sandbox {\n allow_remote\n allow_remote\n}", "allow_remote: repeated"},
		{"cinetpay_sandbox extra", "wrong argument count"},
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.input, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "VALUE") {
			t.Errorf("%q: error shows a key: %v", tc.input, err)
		}
	}
}

func provision(t *testing.T, h *Handler) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	err := h.Provision(ctx)
	if err == nil {
		t.Cleanup(func() { _ = h.Cleanup() })
	}
	return err
}

func TestProvisionErrors(t *testing.T) {
	t.Setenv("SANDBOX_TEST_KEY", "key-from-env-123")
	t.Setenv("SANDBOX_TEST_SECRET", "secret-from-env-456")
	for _, tc := range []struct {
		name string
		h    Handler
		want string
	}{
		{"no merchant", Handler{}, "merchants: at least one merchant is required"},
		{"unset env", Handler{Merchants: []Merchant{{SiteID: "1", APIKey: "{env.SANDBOX_TEST_UNSET}", SecretKey: "{env.SANDBOX_TEST_SECRET}"}}},
			"merchants[0].api_key"},
		{"request placeholder", Handler{Merchants: []Merchant{{SiteID: "{http.request.host}", APIKey: "k", SecretKey: "s"}}},
			"merchants[0].site_id"},
		{"empty secret", Handler{Merchants: []Merchant{{SiteID: "1", APIKey: "{env.SANDBOX_TEST_KEY}"}}},
			"merchants[0].secret_key: required"},
		{"empty site", Handler{Merchants: []Merchant{{APIKey: "k", SecretKey: "s"}}}, "merchants[0].site_id: required"},
		{"duplicate site", Handler{Merchants: []Merchant{{SiteID: "1", APIKey: "k", SecretKey: "s"}, {SiteID: "1", APIKey: "k2", SecretKey: "s2"}}},
			"merchants[1].site_id: 1 is listed twice"},
		{"bad public_url", Handler{Merchants: []Merchant{{SiteID: "1", APIKey: "k", SecretKey: "s"}}, PublicURL: "ftp://x"},
			"public_url"},
		{"public_url placeholder", Handler{Merchants: []Merchant{{SiteID: "1", APIKey: "k", SecretKey: "s"}}, PublicURL: "http://{http.request.host}"},
			"public_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := provision(t, &tc.h)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			for _, secret := range []string{"key-from-env-123", "secret-from-env-456"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error shows a secret: %v", err)
				}
			}
		})
	}
}

func TestHandlerServes(t *testing.T) {
	t.Setenv("SANDBOX_TEST_KEY", "key-from-env-123")
	t.Setenv("SANDBOX_TEST_SECRET", "secret-from-env-456")
	h := &Handler{
		Merchants: []Merchant{{SiteID: "123456", APIKey: "{env.SANDBOX_TEST_KEY}", SecretKey: "{env.SANDBOX_TEST_SECRET}"}},
		PublicURL: "https://sandbox.localhost/",
	}
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	body := paymentBody("TXMOD", "http://127.0.0.1:1")
	body["apikey"] = "key-from-env-123"
	raw, _ := json.Marshal(body)
	req := httptest.NewRequest(http.MethodPost, "/v2/payment", strings.NewReader(string(raw)))
	req.RemoteAddr = "127.0.0.1:5555"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "t")
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, req, nil); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Code string `json:"code"`
		Data struct {
			PaymentURL string `json:"payment_url"`
		} `json:"data"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Code != "201" ||
		!strings.HasPrefix(out.Data.PaymentURL, "https://sandbox.localhost/pay/") {
		t.Fatalf("answer %s", w.Body)
	}
	if h.Server().PaymentCount() != 1 {
		t.Fatal("Server() is not the one serving")
	}
	// The JSON config keeps the placeholders, not the secrets.
	cfg, _ := json.Marshal(h)
	if strings.Contains(string(cfg), "key-from-env-123") {
		t.Fatal("Provision wrote a resolved secret into the config")
	}
	// Remote clients are refused by default.
	req = httptest.NewRequest(http.MethodGet, "/_sandbox/requests", nil)
	w = httptest.NewRecorder()
	_ = h.ServeHTTP(w, req, nil)
	if w.Code != http.StatusForbidden {
		t.Fatalf("remote client: %d", w.Code)
	}
}

func TestModuleInfo(t *testing.T) {
	info := Handler{}.CaddyModule()
	if info.ID != "http.handlers.cinetpay_sandbox" {
		t.Fatal(info.ID)
	}
	if _, ok := info.New().(*Handler); !ok {
		t.Fatal("New does not return *Handler")
	}
}
