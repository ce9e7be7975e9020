package examples_test

// The example shops' POST /cinetpay/standard-webhook: deliveries in the Standard Webhooks format
// (the module's deliver_format standard-webhooks, the examples' README.md), signed here with
// the module's own signer, httpsig.SignWebhook (checked against the official npm package
// standardwebhooks by TestStandardWebhooksSignature), then end to end through Caddy.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
	"github.com/caddy-cinetpay/caddy-cinetpay/internal/tooltest"
	"github.com/caddy-cinetpay/caddy-cinetpay/sandbox"
)

// swSecret is the Standard Webhooks form of the signing key the shops and Caddy are given:
// "whsec_" and the key's bytes in base64.
var swSecret = httpsig.WebhookSecret([]byte(signingKey))

// swSign is a webhook-signature value, as the module makes it.
func swSign(key []byte, id string, ts int64, body []byte) string {
	return httpsig.SignWebhook(key, id, time.Unix(ts, 0), body)
}

// swBody is r as the module sends it in the Standard Webhooks format.
func (r result) swBody(t *testing.T) []byte {
	t.Helper()
	b, err := json.Marshal(httpsig.Event{Type: httpsig.EventType(r.status), Timestamp: time.Now().UTC().Format(time.RFC3339),
		Data: httpsig.EventData{TransactionID: r.tx, OrderID: r.order, Status: r.status, Amount: r.amount, Currency: r.currency,
			PaymentMethod: "OM", OperatorID: "MP2611" + r.tx[len(r.tx)-4:], PaymentDate: "2026-11-25 12:00:00",
			Environment: r.env, EventID: r.event}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// swHeaders are the headers of a delivery of body with webhook-id id, signed at ts.
func swHeaders(id string, ts time.Time, body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Webhook-Id", id)
	h.Set("Webhook-Timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("Webhook-Signature", swSign([]byte(signingKey), id, ts.Unix(), body))
	return h
}

// swPost POSTs a delivery to the shop's /cinetpay/standard-webhook.
func (s *shopProc) swPost(t *testing.T, h http.Header, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+"/cinetpay/standard-webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST /cinetpay/standard-webhook: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// testStandardWebhooks: a signed accepted result is applied once; the same webhook-id again (a
// retry, signed at another time) is answered 2xx and not applied again; a tampered body, a stale
// or future timestamp, a wrong key and a sandbox result (without ACCEPT_SANDBOX) are refused and
// change nothing; a shop without STANDARD_WEBHOOKS_SECRET starts and answers 503.
func testStandardWebhooks(t *testing.T, ex example, s *shopProc) {
	id := s.checkout(t)
	r := newResult(id)
	body := r.swBody(t)
	now := time.Now()

	signed := func(h http.Header, b []byte) func() (http.Header, []byte) {
		return func() (http.Header, []byte) { return h, b }
	}
	other := func(change func(*result)) func() (http.Header, []byte) {
		b := r2(r, change).swBody(t)
		return signed(swHeaders(r.event, now, b), b)
	}
	resigned := func(sig string) func() (http.Header, []byte) {
		h := swHeaders(r.event, now, body)
		h.Set("Webhook-Signature", sig)
		return signed(h, body)
	}
	tamperedStatus := func() (http.Header, []byte) {
		b := r2(r, func(x *result) { x.status = "REFUSED" }).swBody(t)
		tampered := bytes.Replace(b, []byte(`"payment.refused"`), []byte(`"payment.accepted"`), 1)
		return swHeaders(r.event, now, b), bytes.Replace(tampered, []byte(`"REFUSED"`), []byte(`"ACCEPTED"`), 1)
	}
	for _, c := range []struct {
		name string
		req  func() (http.Header, []byte)
	}{
		{"tampered body", signed(swHeaders(r.event, now, body), bytes.Replace(body, []byte(`"amount":"5000"`), []byte(`"amount":"50"`), 1))},
		{"tampered status", tamperedStatus},
		{"stale timestamp", signed(swHeaders(r.event, now.Add(-6*time.Minute), body), body)},
		{"timestamp in the future", signed(swHeaders(r.event, now.Add(6*time.Minute), body), body)},
		{"wrong key", resigned(swSign([]byte(wrongKey), r.event, now.Unix(), body))},
		{"another version", resigned("v1a," + strings.TrimPrefix(swSign([]byte(signingKey), r.event, now.Unix(), body), "v1,"))},
		{"no signature", resigned("")},
		{"sandbox result to a live shop", other(func(x *result) { x.env = "sandbox" })},
		{"unknown environment", other(func(x *result) { x.env = "staging" })},
	} {
		h, b := c.req()
		if code, resp := s.swPost(t, h, b); !refused(code) {
			t.Errorf("%s: %d %q, want 401 or 403", c.name, code, resp)
		}
		assertUntouched(t, s, id, c.name)
	}

	// accepted: applied once
	code, resp := s.swPost(t, swHeaders(r.event, now, body), body)
	if code != http.StatusOK || !strings.Contains(resp, "order paid") {
		t.Fatalf("accepted result: %d %q", code, resp)
	}
	// the retry: same webhook-id and body, a fresh timestamp, and another signature beside
	retry := swHeaders(r.event, now.Add(2*time.Second), body)
	retry.Set("Webhook-Signature", "v1,"+base64.StdEncoding.EncodeToString(make([]byte, 32))+" "+retry.Get("Webhook-Signature"))
	if code, resp := s.swPost(t, retry, body); !ok2xx(code) || !strings.Contains(resp, "already applied") {
		t.Fatalf("retry of the result: %d %q, want 2xx already applied", code, resp)
	}
	if o := s.order(t, id); o.Status != "paid" || o.TransactionID != r.tx || len(o.Events) != 1 || o.Events[0] != r.event {
		t.Fatalf("after the result and its retry: %+v", o)
	}
	// a tampered retry does not count either
	if code, _ := s.swPost(t, swHeaders(r.event, now, body), bytes.Replace(body, []byte(r.tx), []byte("TESTTX999999"), 1)); !refused(code) {
		t.Fatalf("tampered retry: %d", code)
	}

	// a refusal applied through this endpoint too
	id2 := s.checkout(t)
	refusal := r2(newResult(id2), func(x *result) { x.status = "REFUSED" })
	b := refusal.swBody(t)
	if code, resp := s.swPost(t, swHeaders(refusal.event, now, b), b); code != http.StatusOK {
		t.Fatalf("refused result: %d %q", code, resp)
	}
	if o := s.order(t, id2); o.Status != "payment_failed" || len(o.Events) != 1 {
		t.Fatalf("after a refusal: %+v", o)
	}

	// without STANDARD_WEBHOOKS_SECRET the shop runs, and this endpoint answers 503
	noSecret := startShopWrapped(t, ex, "", func(argv []string) []string {
		return append([]string{"env", "-u", "STANDARD_WEBHOOKS_SECRET"}, argv...)
	})
	id3 := noSecret.checkout(t)
	r3 := newResult(id3)
	b3 := r3.swBody(t)
	if code, resp := noSecret.swPost(t, swHeaders(r3.event, time.Now(), b3), b3); code != http.StatusServiceUnavailable ||
		!strings.Contains(resp, "STANDARD_WEBHOOKS_SECRET") {
		t.Fatalf("without STANDARD_WEBHOOKS_SECRET: %d %q, want 503 naming it", code, resp)
	}
	assertUntouched(t, noSecret, id3, "a delivery without STANDARD_WEBHOOKS_SECRET")
}

// testStandardWebhooksThroughCaddy: the example's Caddyfile with CINETPAY_DELIVER_FORMAT and
// CINETPAY_WEBHOOK_PATH set as the README says: a payment accepted at the sandbox reaches
// /cinetpay/standard-webhook and is applied once; a refused one too.
func testStandardWebhooksThroughCaddy(t *testing.T, s *shopProc, sb *sandbox.Server, sbURL string) {
	t.Setenv("CINETPAY_DELIVER_FORMAT", "standard-webhooks")
	t.Setenv("CINETPAY_WEBHOOK_PATH", "/cinetpay/standard-webhook")
	startCaddy(t, s.lang, s.port, sbURL, false)
	tx, id := caddyCheckout(t, sb)
	if _, err := sb.Act(tx.TransactionID, "accept"); err != nil {
		t.Fatal(err)
	}
	var o order
	waitFor(t, "the order to be paid", func() bool { o = s.order(t, id); return o.Status == "paid" })
	p := adminPayment(t, tx.TransactionID)
	event := p.History[len(p.History)-1].EventID
	if event == "" || len(o.Events) != 1 || o.Events[0] != event || o.TransactionID != tx.TransactionID || len(o.Flags) != 0 {
		t.Fatalf("paid order %+v, event %q", o, event)
	}
	if !strings.Contains(s.out.String(), "standard webhook "+event) {
		t.Fatalf("event %s was not delivered to /cinetpay/standard-webhook:\n%s", event, s.out)
	}

	tx2, id2 := caddyCheckout(t, sb)
	if _, err := sb.Act(tx2.TransactionID, "refuse"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refusal", func() bool { o = s.order(t, id2); return o.Status == "payment_failed" })
	if len(o.Events) != 1 {
		t.Fatalf("refused order: %+v", o)
	}
	if o := s.order(t, id); o.Status != "paid" || len(o.Events) != 1 {
		t.Fatalf("paid order changed: %+v", o)
	}
}

// requireNodeModules installs examples/node's npm packages (standardwebhooks) on a fresh clone.
func requireNodeModules(t *testing.T) { tooltest.NpmCI(t, "node", "standardwebhooks") }

// TestStandardWebhooksSignature checks swSign and swSecret against the official library: the npm
// package standardwebhooks (examples/node's dependency) signs the same value and verifies it.
func TestStandardWebhooksSignature(t *testing.T) {
	node := requireTool(t, "node", "apt-get install -y nodejs")
	requireNodeModules(t)
	const script = `
const { Webhook } = require('standardwebhooks');
const [secret, id, ts, body, sig] = process.argv.slice(1);
const wh = new Webhook(secret);
const out = wh.sign(id, new Date(Number(ts) * 1000), body);
wh.verify(body, { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': sig });
process.stdout.write(out);
`
	r := newResult("ord_0123456789abcdef")
	body := r.swBody(t)
	ts := time.Now().Unix()
	want := swSign([]byte(signingKey), r.event, ts, body)
	cmd := exec.Command(node, "-e", script, swSecret, r.event, strconv.FormatInt(ts, 10), string(body), want)
	cmd.Dir = "node"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("standardwebhooks does not verify swSign's signature: %v\n%s", err, out)
	}
	if string(out) != want {
		t.Fatalf("standardwebhooks signs %q, swSign %q", out, want)
	}
}

// testPages: the pages customers see (the product page, the return page) are phone-sized, in
// French, and show statuses as words: the codes only in data-status, never as text.
func testPages(t *testing.T, s *shopProc) {
	visible := func(page string) string { // the page's text without its tags, head and style
		page = regexp.MustCompile(`(?s)<style>.*?</style>|<title>.*?</title>|<[^>]*>`).ReplaceAllString(page, " ")
		return page
	}
	check := func(what, page string, want ...string) {
		t.Helper()
		for _, w := range append([]string{`<meta name="viewport" content="width=device-width, initial-scale=1">`, `lang="fr"`}, want...) {
			if !strings.Contains(page, w) {
				t.Errorf("%s: no %q in\n%s", what, w, page)
			}
		}
		if code := regexp.MustCompile(`\b[A-Z]{4,}\b|\b[a-z]+_[a-z_]+\b`).FindString(visible(page)); code != "" {
			t.Errorf("%s: the code %q is shown as text:\n%s", what, code, page)
		}
	}
	code, home := s.do(t, http.MethodGet, "/", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /: %d", code)
	}
	check("product page", home, "Payer avec CinetPay")

	id := s.checkout(t)
	ret := signOpts{keyID: keyID, key: signingKey, tag: httpsig.TagReturn, method: http.MethodGet}
	for status, words := range map[string]string{"PENDING": "en attente de confirmation", "REFUSED": "refusé",
		"EXPIRED": "expiré", "MISMATCH": "montant différent", "DUPLICATE": "en double"} {
		r := r2(newResult(id), func(x *result) { x.event, x.status = "", status })
		code, page := s.do(t, http.MethodGet, "/cinetpay/return?transaction_id="+r.tx, r.signed(t, ret))
		if code != http.StatusOK {
			t.Fatalf("return page %s: %d", status, code)
		}
		check("return page "+status, page, `data-status="`+status+`">`+words,
			`id="order-status" data-status="awaiting_payment">en attente de paiement<`)
	}
	code, page := s.do(t, http.MethodGet, "/cinetpay/return?transaction_id=TESTTX000000", nil)
	if code != http.StatusOK {
		t.Fatalf("unverified return page: %d", code)
	}
	check("unverified return page", page, `id="unverified"`)
}

// testCheckoutErrorPage: the example's Caddyfile imports ../checkout-errors.caddy for /checkout:
// with CinetPay unreachable, a checkout through Caddy is answered 502 with that HTML page (its
// wording is the snippet's, not checked here).
func testCheckoutErrorPage(t *testing.T, s *shopProc) {
	startCaddy(t, s.lang, s.port, "http://127.0.0.1:"+freePort(t), false) // nothing listens there
	resp, err := noRedirect.PostForm(siteURL+"/checkout", url.Values{"product": {"wax"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(body), "<html") || !strings.Contains(string(body), "502") {
		t.Fatalf("checkout with CinetPay unreachable: %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}
