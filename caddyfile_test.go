package caddycinetpay

import (
	"fmt"
	"os"
	"slices"
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

// here marks the line a load error must be reported at.
const here = " # here"

var (
	v2Lines = []string{"api_key     test-api-key", "site_id     123456", "secret_key  test-secret",
		"signing_key shop1 0123456789abcdef0123456789abcdef", "checkout    /checkout/*",
		"forward     http://127.0.0.1:9000/cinetpay/webhook"}
	v1Lines = []string{"api_key      sk_test_adapt-key-1234", "api_password adapt-password-5678", "country      CI",
		"signing_key  shop1 0123456789abcdef0123456789abcdef", "checkout     /checkout/*",
		"forward      http://127.0.0.1:9000/cinetpay/webhook"}
)

// site is a site block with one cinetpay block of these lines.
func site(addr string, lines []string) string {
	return addr + " {\n\tcinetpay {\n\t\t" + strings.Join(lines, "\n\t\t") + "\n\t}\n}\n"
}

// with inserts lines into base at i.
func with(base []string, i int, lines ...string) []string {
	return slices.Concat(base[:i], lines, base[i:])
}

// without removes the lines of base that set one of the sub-directives.
func without(base []string, names ...string) []string {
	return slices.DeleteFunc(slices.Clone(base), func(l string) bool {
		return slices.Contains(names, strings.Fields(l)[0])
	})
}

// TestAdaptErrorLines checks that every load error of a cinetpay block about a sub-directive is
// reported at that sub-directive's line (the later one when it is about two), as Caddy reports
// its own ("…, at Caddyfile:7"), never at the block's end; one about a missing sub-directive at
// the cinetpay line. The line marked "# here" is the one expected; it is never the block's
// last. No message holds a secret.
func TestAdaptErrorLines(t *testing.T) {
	secrets := []string{"test-api-key", "test-secret", "0123456789abcdef0123456789abcdef", "short-key",
		"sk_test_adapt-key-1234", "adapt-password-5678", "dsn-pass-1234"}
	// v2 and v1 put the bad line third in a valid block of that API, without the lines of drop
	v2 := func(bad string, drop ...string) string {
		return site("shop.example.com", with(without(v2Lines, drop...), 2, bad+here))
	}
	v1 := func(bad string, drop ...string) string {
		return site("shop.example.com", with(without(v1Lines, drop...), 2, bad+here))
	}
	snippets := t.TempDir() + "/creds.caddy"
	if err := os.WriteFile(snippets, []byte("api_key test-api-key\nsecret_key test-api-key"+here+"\nsite_id 123456\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, caddyfile string
		dir, want       string // the sub-directive the message names, and more of it
		at              string // the expected position, when not a line marked here in the Caddyfile
	}{
		// values the parser refuses
		{"unknown sub-directive", v2("apikey x"), "apikey", "unknown sub-directive apikey", ""},
		{"repeated sub-directive", site("shop.example.com", with(v2Lines, 1, "currency XOF", "currency XAF"+here)),
			"currency", "sub-directive currency is repeated", ""},
		{"two values", v2("lang fr en"), "lang", "lang takes exactly one value", ""},
		{"signing_key with one value", v2("signing_key short-key", "signing_key"), "signing_key", "signing_key takes a key id and a key", ""},
		{"ipv4_only with a value", v1("ipv4_only yes"), "ipv4_only", "ipv4_only takes no value", ""},
		{"a block", site("shop.example.com", with(v2Lines, 2, "lang fr {"+here, "x", "}")), "lang", "lang takes no block", ""},
		{"bad duration", v2("timeout soon"), "timeout", "timeout: bad duration", ""},
		{"zero duration", v2("forward_timeout 0s"), "forward_timeout", "forward_timeout: bad duration", ""},
		{"bad rate_limit", v2("rate_limit -1"), "rate_limit", "rate_limit: \"-1\" is not a positive number", ""},
		{"storage without a DSN", v2("storage postgres"), "storage", "storage takes a directory, badger <directory> or postgres <dsn>", ""},
		{"storage of three values", v2("storage badger /a /b"), "storage", "storage takes a directory", ""},
		{"unknown storage backend", v2("storage mysql /a"), "storage", "storage takes a directory", ""},
		{"request placeholder in public_url", v2("public_url https://{http.request.host}"), "public_url",
			"public_url: placeholder {http.request.host} is not allowed", ""},
		{"request placeholder in forward", v2("forward http://{host}/hook", "forward"), "forward",
			"forward: placeholder {http.request.host} is not allowed", ""},
		{"request placeholder in the signing key", v2("signing_key shop1 {http.request.uri}", "signing_key"), "signing_key",
			"signing_key key: placeholder {http.request.uri} is not allowed", ""},
		{"request placeholder in checkout", v2("checkout /{path}/*", "checkout"), "checkout", "checkout: placeholder", ""},
		// values check refuses
		{"bad api", v2("api v3"), "api", `api: "v3" is not v1 or v2`, ""},
		{"bad country", v1("country FR", "country"), "country", `country: "FR" is not a country of CinetPay's current API`, ""},
		{"bad account", v1("account ci/main"), "account", "account: letters, digits", ""},
		{"bad site_id", v2("site_id 12/34", "site_id"), "site_id", "site_id: letters, digits", ""},
		{"bad key id", v2("signing_key shop/1 0123456789abcdef0123456789abcdef", "signing_key"), "signing_key", "signing_key: the key id must be", ""},
		{"short signing key", v2("signing_key demo short-key", "signing_key"), "signing_key", "signing_key: the key must be at least 32 bytes", ""},
		{"bad endpoint", v2("endpoint not-a-url"), "endpoint", "endpoint: must be an absolute http or https URL", ""},
		{"http endpoint", v2("endpoint http://api.example.com"), "endpoint", "endpoint: must be https", ""},
		{"endpoint with user info", v2("endpoint https://u:p@api.example.com"), "endpoint", "endpoint: user info", ""},
		{"bad forward", v2("forward ftp://shop.internal/hook", "forward"), "forward", "forward: must be an absolute http or https URL", ""},
		{"forward with a query", v2("forward http://127.0.0.1:9000/hook?a=1", "forward"), "forward", "forward: no query or fragment", ""},
		{"forward at the site itself", v2("forward https://shop.example.com/hook", "forward"), "forward", "forward points at this site itself (public_url)", ""},
		{"forward at the site itself, public_url later", site("shop.example.com", with(without(v2Lines, "forward"), 2,
			"forward https://shop.example.com/hook", "public_url https://shop.example.com/"+here)), "public_url", "forward points at this site itself (public_url)", ""},
		{"forward at the site's address", site(":8080", with(without(v2Lines, "forward"), 2,
			"public_url https://pay.example.com", "forward http://127.0.0.1:8080/hook"+here)), "forward", "forward points at this site itself (:8080)", ""},
		{"bad public_url", v2("public_url ftp://shop.example.com"), "public_url", "public_url: must be an absolute http or https URL", ""},
		{"public_url with a fragment", v2("public_url https://shop.example.com/#x"), "public_url", "public_url: no query or fragment", ""},
		{"v1 URL too long", v1("public_url https://" + strings.Repeat("a", 90) + ".example.com"), "public_url", "CinetPay's current API takes at most 120", ""},
		{"bad notify", v2("notify cinetpay/notify"), "notify", "notify: must be a path beginning with '/'", ""},
		{"return is notify", v2("return /cinetpay/notify"), "return", "notify and return must be different paths", ""},
		{"notify under checkout", site("shop.example.com", with(v2Lines, 6, "notify /checkout/notify"+here, "lang fr")),
			"notify", "notify path /checkout/notify falls under the checkout pattern /checkout/*", ""},
		{"checkout over notify, later", site("shop.example.com", with(without(v2Lines, "checkout"), 2, "notify /shop/notify", "checkout /shop/*"+here)),
			"checkout", "notify path /shop/notify falls under the checkout pattern /shop/*", ""},
		{"checkout over the default return", v2("checkout /cinetpay/*", "checkout"), "checkout", "falls under the checkout pattern /cinetpay/*", ""},
		{"empty checkout pattern", v2(`checkout ""`, "checkout"), "checkout", "checkout: empty path pattern", ""},
		{"lower-case checkout method", v2("checkout_methods post"), "checkout_methods", `checkout_methods: "post" is not an upper-case HTTP method`, ""},
		{"bad currency", v2("currency EUR"), "currency", `currency: unknown currency "EUR"`, ""},
		{"currency of another country, later", site("shop.example.com", with(v1Lines, 3, "currency XAF"+here)), "currency", "currency: an account of CI takes XOF only, not XAF", ""},
		{"country of another currency, later", site("shop.example.com", with(without(v1Lines, "country"), 1, "currency XAF", "country CI"+here)),
			"currency", "currency: an account of CI takes XOF only, not XAF", ""},
		{"bad channels", v2("channels CASH"), "channels", `channels: unknown channel "CASH"`, ""},
		{"bad lang", v2("lang de"), "lang", `lang: "de" is not fr or en`, ""},
		{"bad deliver_format", v2("deliver_format json"), "deliver_format", `deliver_format: "json" is not rfc9421 or standard-webhooks`, ""},
		{"long timeout", v2("timeout 5m"), "timeout", "timeout: must be between 0 and 2m0s", ""},
		{"long forward_timeout", v2("forward_timeout 5m"), "forward_timeout", "forward_timeout: must be between 0 and 2m0s", ""},
		{"too high rate_limit", v2("rate_limit 5000"), "rate_limit", "rate_limit: calls per second, from 1 to 1000", ""},
		{"unreadable DSN", v2("storage postgres postgres://shop:dsn-pass-1234@db.internal:notaport/shop"), "storage", "storage postgres: unreadable DSN", ""},
		// two sub-directives: the later one
		{"secret_key is the api_key", v2("secret_key test-api-key", "secret_key"), "secret_key", "secret_key is the same as api_key", ""},
		{"api_key is the secret_key, later", site("shop.example.com", with(without(v2Lines, "api_key"), 2, "api_key test-secret"+here)),
			"api_key", "secret_key is the same as api_key", ""},
		{"v2 field in a v1 block", v1("site_id 123456"), "site_id", "are mixed: keep those of your account's API", ""},
		{"v1 field in a v2 block", v2("api_password adapt-password-5678"), "api_password", "are mixed: keep those of your account's API", ""},
		{"v1 with secret_key", site("shop.example.com", with(v1Lines, 0, "api v1", "secret_key s"+here)), "secret_key",
			"secret_key is a field of the legacy Checkout v2 API, not of api v1", ""},
		{"secret_key, then api v1", site("shop.example.com", with(v1Lines, 0, "secret_key s", "api v1"+here)), "secret_key",
			"secret_key is a field of the legacy Checkout v2 API, not of api v1", ""},
		{"v1 with channels", v1("channels ALL"), "channels", "channels is a field of the legacy Checkout v2 API", ""},
		{"v2 with ipv4_only", site("shop.example.com", with(v2Lines, 0, "api v2", "ipv4_only"+here)), "ipv4_only",
			"ipv4_only is a field of CinetPay's current API (api v1), not of the legacy api v2", ""},
		{"two blocks disagree", site("shop.example.com", v2Lines) + site("www.shop.example.com", with(without(v2Lines, "secret_key"), 2, "secret_key test-secret-2"+here)),
			"secret_key", "two cinetpay blocks with site_id 123456 disagree on secret_key", ""},
		{"two v1 blocks disagree", site("shop.example.com", v1Lines) + site("www.shop.example.com", with(without(v1Lines, "api_password"), 2, "api_password other-password-0000"+here)),
			"api_password", "two cinetpay blocks with account ci-test disagree on api_password", ""},
		// through imports: at the snippet's line, with Caddy's import chain
		{"in a snippet", "(creds) {\n\tapi_key test-api-key\n\tsecret_key test-api-key" + here + "\n\tsite_id 123456\n}\n" +
			site("shop.example.com", append([]string{"import creds"}, without(v2Lines, "api_key", "secret_key", "site_id")...)),
			"secret_key", "secret_key is the same as api_key", ", at Caddyfile:3 import chain ['Caddyfile:8 (import creds)']"},
		{"in an imported file", site("shop.example.com", append([]string{"import " + snippets}, without(v2Lines, "api_key", "secret_key", "site_id")...)),
			"secret_key", "secret_key is the same as api_key", ", at " + snippets + ":2 import chain ['Caddyfile:3 (import)']"},
		// missing sub-directives: at the cinetpay line
		{"no api_key", site("shop.example.com", without(v2Lines, "api_key")), "api_key", "api_key is required", ", at Caddyfile:2"},
		{"no forward", site("shop.example.com", without(v2Lines, "forward")), "forward", "forward is required", ", at Caddyfile:2"},
		{"no signing_key", site("shop.example.com", without(v2Lines, "signing_key")), "signing_key", "signing_key is required", ", at Caddyfile:2"},
		{"no secret_key", site("shop.example.com", without(v2Lines, "secret_key")), "secret_key", "secret_key is required with api v2", ", at Caddyfile:2"},
		{"no country", site("shop.example.com", without(v1Lines, "country")), "country", "country is required with api v1", ", at Caddyfile:2"},
		{"no public_url", site(":8080", v2Lines), "public_url", "public_url is required", ", at Caddyfile:2"},
		{"disagree on a field this block leaves out", site("shop.example.com", with(v2Lines, 1, "timeout 5s")) + site("www.shop.example.com", v2Lines),
			"timeout", "disagree on timeout", ", at Caddyfile:13"},
	} {
		t.Run(c.name, func(t *testing.T) {
			at := c.at
			if at == "" {
				lines := strings.Split(c.caddyfile, "\n")
				i := slices.IndexFunc(lines, func(l string) bool { return strings.HasSuffix(l, here) })
				if i < 0 || strings.TrimSpace(lines[i+1]) == "}" {
					t.Fatalf("no marked line before the block's last:\n%s", c.caddyfile)
				}
				at = fmt.Sprintf(", at Caddyfile:%d", i+1)
			}
			_, err := adapt(c.caddyfile)
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) || !strings.Contains(msg, c.dir) || !strings.HasSuffix(msg, at) {
				t.Fatalf("got %q, want %q about %s%s", msg, c.want, c.dir, at)
			}
			for _, s := range secrets {
				if strings.Contains(msg, s) {
					t.Fatalf("secret %q in %q", s, msg)
				}
			}
		})
	}
}
