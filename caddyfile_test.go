package caddycinetpay

import (
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestAdaptExamples adapts the README's blocks, the Checkout v2 one ("Caddyfile reference"),
// the one for CinetPay's current API and an instance of several on PostgreSQL ("Several
// instances"), each against its expected JSON.
func TestAdaptExamples(t *testing.T) {
	for _, name := range []string{"spec_example", "v1_example", "postgres_example"} {
		in, err := os.ReadFile("testdata/caddyfile_adapt/" + name + ".caddyfile")
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile("testdata/caddyfile_adapt/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		if !caddytest.CompareAdapt(t, name+".caddyfile", string(in), "caddyfile", string(want)) {
			t.Fatalf("%s: adapted JSON differs", name)
		}
	}
}

const validV1Block = `
		api_key      sk_test_adapt-key-1234
		api_password adapt-password-5678
		country      CI
		signing_key  shop1 0123456789abcdef0123456789abcdef
		checkout     /checkout/*
		forward      http://127.0.0.1:9000/cinetpay/webhook
`

// Load errors of a v1 block name the field and never print a secret.
func TestAdaptV1Errors(t *testing.T) {
	secrets := []string{"sk_test_adapt-key-1234", "adapt-password-5678", "0123456789abcdef0123456789abcdef"}
	block := func(lines string) string {
		return "shop.example.com {\n\tcinetpay {\n" + lines + "\n\t}\n}\n"
	}
	for _, c := range []struct{ name, caddyfile, want string }{
		{"v2 field in a v1 block", block(validV1Block + "site_id 123456"), "fields of CinetPay's current API (api_password, country, account, ipv4_only) and of the legacy Checkout v2 (site_id, secret_key) are mixed"},
		{"explicit v1 with secret_key", block(validV1Block + "api v1\nsecret_key s"), "secret_key is a field of the legacy Checkout v2 API, not of api v1"},
		{"explicit v1 with channels", block(validV1Block + "api v1\nchannels ALL"), "channels is a field of the legacy Checkout v2 API"},
		{"explicit v2 with api_password", block(validBlock + "api v2\napi_password p"), "api_password is a field of CinetPay's current API (api v1), not of the legacy api v2"},
		{"explicit v2 with ipv4_only", block(validBlock + "api v2\nipv4_only"), "ipv4_only is a field of CinetPay's current API"},
		{"no api_password", block(strings.Replace(validV1Block, "api_password adapt-password-5678", "api v1", 1)), "api_password is required with api v1"},
		{"neither API", block("api_key k\nsigning_key shop1 0123456789abcdef0123456789abcdef\nforward http://127.0.0.1:9000/x"), "api_password is required"},
		{"no country", block(strings.Replace(validV1Block, "country      CI", "", 1)), "country is required with api v1"},
		{"unknown country", block(strings.Replace(validV1Block, "country      CI", "country FR", 1)), `country: "FR" is not a country of CinetPay's current API`},
		{"another currency", block(validV1Block + "currency XAF"), "currency: an account of CI takes XOF only, not XAF"},
		{"bad account", block(validV1Block + "account ci/main"), "account: letters, digits"},
		{"bad api", block(validV1Block + "api v3"), `api: "v3" is not v1 or v2`},
		{"ipv4_only with a value", block(validV1Block + "ipv4_only yes"), "ipv4_only takes no value"},
		{"URL too long", block(validV1Block + "public_url https://" + strings.Repeat("a", 90) + ".example.com"),
			"CinetPay's current API takes at most 120"},
		{"two blocks disagree", block(validV1Block) + "www.shop.example.com {\n\tcinetpay {\n" +
			strings.Replace(validV1Block, "adapt-password-5678", "other-password-0000", 1) + "\n\t}\n}\n", "two cinetpay blocks with account ci-test disagree on api_password"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := adapt(c.caddyfile)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("secret %q in %q", s, err)
				}
			}
		})
	}
	// a valid block: the account name defaults from the country and the key
	out, err := adapt(block(validV1Block))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"country":"CI"`) || strings.Contains(out, `"site_id"`) {
		t.Fatalf("adapted: %s", out)
	}
}

// adapt adapts a Caddyfile and returns the JSON or the error.
func adapt(caddyfile string) (string, error) {
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	return string(out), err
}

const validBlock = `
		api_key     test-api-key
		site_id     123456
		secret_key  test-secret
		signing_key shop1 0123456789abcdef0123456789abcdef
		checkout    /checkout/*
		forward     http://127.0.0.1:9000/cinetpay/webhook
`

func TestAdaptPublicURLFromSiteAddress(t *testing.T) {
	for addr, want := range map[string]string{
		"shop.example.com":       `"public_url":"https://shop.example.com"`,
		"http://localhost:8080":  `"public_url":"http://localhost:8080"`,
		"https://shop.test:8443": `"public_url":"https://shop.test:8443"`,
		"shop.example.com:80":    `"public_url":"http://shop.example.com"`,
	} {
		out, err := adapt(addr + " {\n\tcinetpay {" + validBlock + "\t}\n}\n")
		if err != nil {
			t.Errorf("%s: %v", addr, err)
			continue
		}
		if !strings.Contains(out, want) {
			t.Errorf("%s: want %s in %s", addr, want, out)
		}
	}
	for _, addr := range []string{":8080", "a.example.com, b.example.com", "*.example.com"} {
		_, err := adapt(addr + " {\n\tcinetpay {" + validBlock + "\t}\n}\n")
		if err == nil || !strings.Contains(err.Error(), "public_url is required") {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

func TestAdaptErrors(t *testing.T) {
	secrets := []string{"test-api-key", "test-secret", "0123456789abcdef0123456789abcdef", "short-key"}
	block := func(lines string) string {
		return "shop.example.com {\n\tcinetpay {\n" + lines + "\n\t}\n}\n"
	}
	without := func(field string) string {
		var keep []string
		for _, l := range strings.Split(validBlock, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), field+" ") {
				keep = append(keep, l)
			}
		}
		return block(strings.Join(keep, "\n"))
	}
	for _, c := range []struct {
		name, caddyfile, want string
	}{
		{"no api_key", without("api_key"), "api_key is required"},
		{"no site_id", without("site_id"), "site_id is required"},
		{"no secret_key", without("secret_key"), "secret_key is required"},
		{"secret_key is the api_key", block(strings.Replace(validBlock, "secret_key  test-secret", "secret_key  test-api-key", 1)),
			"secret_key is the same as api_key"},
		{"no signing_key", without("signing_key"), "signing_key is required"},
		{"no forward", without("forward"), "forward is required"},
		{"short signing key", block(strings.Replace(validBlock, "0123456789abcdef0123456789abcdef", "short-key", 1)), "signing_key: the key must be at least 32 bytes"},
		{"signing key without id", block(strings.Replace(validBlock, "shop1 ", "", 1)), "signing_key takes a key id and a key"},
		{"http endpoint", block(validBlock + "endpoint http://api.example.com"), "endpoint: must be https"},
		{"bad endpoint", block(validBlock + "endpoint not-a-url"), "endpoint: must be an absolute http or https URL"},
		{"endpoint with user info", block(validBlock + "endpoint https://u:p@api.example.com"), "endpoint: user info"},
		{"unknown currency", block(validBlock + "currency EUR"), `currency: unknown currency "EUR"`},
		{"unknown channel", block(validBlock + "channels CASH"), `channels: unknown channel "CASH"`},
		{"bad lang", block(validBlock + "lang de"), "lang:"},
		{"notify under checkout", block(validBlock + "notify /checkout/notify"), "notify path /checkout/notify falls under the checkout pattern /checkout/*"},
		{"return under checkout", block(strings.Replace(validBlock, "/checkout/*", "/cinetpay/*", 1)), "falls under the checkout pattern /cinetpay/*"},
		{"forward at the site itself", block(strings.Replace(validBlock, "http://127.0.0.1:9000/cinetpay/webhook", "https://shop.example.com/hook", 1)), "forward points at this site itself"},
		{"request placeholder in public_url", block(validBlock + "public_url https://{http.request.host}"), "public_url: placeholder {http.request.host} is not allowed"},
		{"request placeholder shorthand in forward", block(strings.Replace(validBlock, "http://127.0.0.1:9000/cinetpay/webhook", "http://{host}/hook", 1)), "forward: placeholder {http.request.host} is not allowed"},
		{"unknown sub-directive", block(validBlock + "apikey x"), "unknown sub-directive apikey"},
		{"repeated sub-directive", block(validBlock + "currency XOF\ncurrency XAF"), "sub-directive currency is repeated"},
		{"matcher", "shop.example.com {\n\tcinetpay /x {" + validBlock + "}\n}\n", "cinetpay takes no arguments and no matcher"},
		{"bad timeout", block(validBlock + "timeout soon"), "timeout: bad duration"},
		{"bad rate_limit", block(validBlock + "rate_limit -1"), "rate_limit"},
		{"bad site_id", block(strings.Replace(validBlock, "123456", "12/34", 1)), "site_id: letters, digits"},
		{"two blocks disagree", block(validBlock) + "www.shop.example.com {\n\tcinetpay {\n" +
			strings.Replace(validBlock, "test-secret", "test-secret-2", 1) + "\n\t}\n}\n", "disagree on secret_key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := adapt(c.caddyfile)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("secret %q in %q", s, err)
				}
			}
		})
	}
	// two blocks that agree share one site
	if _, err := adapt(block(validBlock) + "www.shop.example.com {\n\tcinetpay {\n" + validBlock + "\n\t}\n}\n"); err != nil {
		t.Fatalf("agreeing blocks: %v", err)
	}
}

// TestLoadErrors checks what only a load can tell: values from the environment, and JSON.
func TestLoadErrors(t *testing.T) {
	t.Setenv("CINETPAY_TEST_SHORT_KEY", "too-short-secret")
	t.Setenv("CINETPAY_TEST_API_KEY", "env-api-key-secret")
	t.Setenv("CINETPAY_TEST_HTTP_ENDPOINT", "http://api.example.com")
	t.Setenv("CINETPAY_TEST_SECRET_2", "env-secret-2")
	site := func(lines string) string {
		return `{
	admin localhost:2999
	http_port 9080
}
http://localhost:9080 {
	cinetpay {
` + lines + `
		storage ` + t.TempDir() + `
	}
}
`
	}
	for _, c := range []struct{ name, cfg, want string }{
		{"short key from env", site(strings.Replace(validBlock, "0123456789abcdef0123456789abcdef", "{env.CINETPAY_TEST_SHORT_KEY}", 1)),
			"signing_key: the key must be at least 32 bytes"},
		{"unset env", site(strings.Replace(validBlock, "test-api-key", "{env.CINETPAY_TEST_UNSET}", 1)), "api_key"},
		{"http endpoint from env", site(validBlock + "endpoint {env.CINETPAY_TEST_HTTP_ENDPOINT}"), "endpoint: must be https"},
		{"two sites disagree after env", site(strings.Replace(validBlock, "test-api-key", "{env.CINETPAY_TEST_API_KEY}", 1)) +
			"http://127.0.0.1:9080 {\n\tcinetpay {\n" + strings.Replace(validBlock, "test-api-key", "other-api-key", 1) + "\n\t}\n}\n",
			"disagree on"},
	} {
		t.Run(c.name, func(t *testing.T) {
			caddytest.AssertLoadError(t, c.cfg, "caddyfile", c.want)
		})
	}
	// JSON: public_url is required there
	caddytest.AssertLoadError(t, `{"admin":{"listen":"localhost:2999"},"apps":{"http":{"servers":{"s":{"listen":[":9080"],
		"routes":[{"handle":[{"handler":"cinetpay","api_key":"k","site_id":"1","secret_key":"s",
		"signing_key":{"id":"a","key":"0123456789abcdef0123456789abcdef"},"forward":"http://127.0.0.1:9000/"}]}]}}}}}`,
		"json", "public_url is required")
	unloadCaddy(t)
}
