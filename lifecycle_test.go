package caddycinetpay

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpay"
	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// postLoad posts a config to the admin API and returns the status and body.
func postLoad(t *testing.T, cfg string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://localhost:2999/load", strings.NewReader(cfg))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestStoreSurvivesReloadsAndRestart(t *testing.T) {
	e := newEnv(t, envOptions{})
	a, _ := e.checkout("order-a", 1000)

	// a reload with a changed config keeps the store and its work going
	e.options.block = "lang en"
	e.load(e.caddyfile())
	if p := e.payment(testSiteID, a); p.State != storage.StatePending {
		t.Fatalf("after reload: %+v", p)
	}
	e.act(a, "accept")
	e.waitState(a, storage.StateAccepted, 5*time.Second)
	e.shop.waitDeliveries(t, 1, 5*time.Second)

	// failed reloads: at adapt, at provision, at start — the running config keeps serving
	bad := []struct{ name, cfg string }{
		{"adapt", strings.Replace(e.caddyfile(), "lang en", "lang de", 1)},
		{"provision", strings.Replace(e.caddyfile(), "lang en", "currency {env.CINETPAY_TEST_UNSET_CURRENCY}", 1)},
	}
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	second := fmt.Sprintf("\nhttp://127.0.0.1:9080 {\n\tcinetpay {\n\t\tapi_key %s\n\t\tsite_id %s\n\t\tsecret_key %s\n\t\tsigning_key %s %s\n\t\tendpoint %s\n\t\tforward http://%s/cinetpay/webhook\n\t\tstorage %s\n\t}\n}\n",
		otherAPIKey, otherSiteID, otherSecret, testKeyID, testSigningKey, e.sbSrv.URL, e.shop.addr(), notADir)
	bad = append(bad, struct{ name, cfg string }{"start", e.caddyfile() + second})
	for _, b := range bad {
		if code, body := postLoad(t, b.cfg); code == http.StatusOK {
			t.Fatalf("bad config (%s) loaded: %s", b.name, body)
		}
		b2, _ := e.checkout(fmt.Sprintf("order-after-%s", b.name), 1000)
		e.act(b2, "accept")
		e.waitState(b2, storage.StateAccepted, 5*time.Second)
	}
	e.shop.waitDeliveries(t, 4, 5*time.Second)

	// a restart: the module unloaded (store closed), then loaded again
	c, _ := e.checkout("order-c", 1000)
	unloadCaddy(t)
	e.load(e.caddyfile())
	if p := e.payment(testSiteID, c); p.State != storage.StatePending || p.OrderID != "order-c" {
		t.Fatalf("after restart: %+v", p)
	}
	if ps := e.payments("state=ACCEPTED"); len(ps) != 4 {
		t.Fatalf("%d accepted payments after restart", len(ps))
	}
	e.act(c, "accept")
	e.waitState(c, storage.StateAccepted, 5*time.Second)
	e.shop.waitDeliveries(t, 5, 5*time.Second)
}

const twoSitesCaddyfile = `{
	admin localhost:2999
	http_port 9080
	grace_period 1ns
	log {
		output file %[5]s/caddy.log
		format json
	}
}
(cp) {
	endpoint %[1]s
	checkout /checkout/*
	forward http://%[2]s/cinetpay/webhook
	storage %[3]s
	signing_key %[9]s %[10]s
}
http://localhost:9080 {
	cinetpay {
		api_key %[6]s
		site_id %[7]s
		secret_key %[8]s
		import cp
	}
	reverse_proxy %[2]s
}
http://127.0.0.1:9080 {
	cinetpay {
		api_key ` + otherAPIKey + `
		site_id ` + otherSiteID + `
		secret_key ` + otherSecret + `
		import cp
	}
	reverse_proxy %[2]s
}
`

func TestTwoSitesShareAStore(t *testing.T) {
	e := newEnv(t, envOptions{caddyfile: twoSitesCaddyfile})
	a, _ := e.checkout("same-order", 1000)
	// the same order on the other site
	e.shop.setIntent(intentHeaders("same-order", 1000))
	resp, _ := e.doAt("http://127.0.0.1:9080", http.MethodPost, "/checkout/cart", nil, nil)
	b := e.txByURL(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || b == "" || b == a {
		t.Fatalf("second site: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if a[:6] != b[:6] {
		t.Fatalf("one store, two prefixes: %s %s", a, b)
	}
	sbReqs := e.sb.Requests()
	if last := jsonBody(t, sbReqs[len(sbReqs)-1].Body); last["site_id"] != otherSiteID || last["apikey"] != otherAPIKey ||
		last["notify_url"] != "http://127.0.0.1:9080/cinetpay/notify" {
		t.Fatalf("second site's start: %v", last)
	}
	for site, tx := range map[string]string{testSiteID: a, otherSiteID: b} {
		ps := e.payments("site_id=" + site)
		if len(ps) != 1 || ps[0].TransactionID != tx {
			t.Fatalf("site %s sees %+v", site, ps)
		}
	}
	// site B's notify path refuses site A's transaction
	form, token := notification(testSiteID, a, otherSecret)
	if resp, _ := e.notifyAt("http://127.0.0.1:9080", form, token); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("site A's transaction at site B: %d", resp.StatusCode)
	}
	form, token = notification(otherSiteID, a, otherSecret)
	if resp, _ := e.notifyAt("http://127.0.0.1:9080", form, token); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("site A's transaction claimed for site B: %d", resp.StatusCode)
	}
	// both complete, each delivered with its own order
	e.act(a, "accept")
	e.act(b, "refuse")
	ds := e.shop.waitDeliveries(t, 2, 5*time.Second)
	got := map[string]string{}
	for _, d := range ds {
		got[d.Result.TransactionID] = d.Result.Status
	}
	if got[a] != "ACCEPTED" || got[b] != "REFUSED" {
		t.Fatalf("%v", got)
	}
}

func TestFrontControllerAndBasicAuth(t *testing.T) {
	root := t.TempDir()
	// a PHP-style front controller: the file exists, the routes do not
	if err := os.WriteFile(filepath.Join(root, "index.php"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{site: `basic_auth {
		admin $2a$04$zo7YStd293yKOJOu/H3l8eMv8nm5Ryk9eYpW9387ns4F311grcXAO
	}
	root * ` + root + `
	try_files {path} /index.php?{query}`})
	auth := http.Header{"Authorization": {"Basic YWRtaW46b3Blbi1zZXNhbWU="}} // admin:open-sesame
	// CinetPay needs no credentials
	if resp, _ := e.do(http.MethodGet, "/cinetpay/notify", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("notify ping behind basic_auth: %d", resp.StatusCode)
	}
	// the checkout goes through basic_auth and the front controller
	if resp, _ := e.do(http.MethodPost, "/checkout/cart", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("checkout without credentials: %d", resp.StatusCode)
	}
	e.shop.setIntent(intentHeaders("order-fc", 1000))
	resp, body := e.do(http.MethodPost, "/checkout/cart?step=pay", nil, auth)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("checkout: %d %q", resp.StatusCode, body)
	}
	e.shop.mu.Lock()
	last := e.shop.paths[len(e.shop.paths)-1]
	e.shop.mu.Unlock()
	if last != "/index.php?step=pay" {
		t.Fatalf("the shop saw %q", last)
	}
	txid := e.txByURL(resp.Header.Get("Location"))
	e.act(txid, "accept") // notifications, without credentials
	e.waitState(txid, storage.StateAccepted, 5*time.Second)
	// CinetPay's return POST needs no credentials either
	resp, _ = e.do(http.MethodPost, "/cinetpay/return", strings.NewReader("transaction_id="+txid),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("return POST: %d", resp.StatusCode)
	}
	e.shop.waitDeliveries(t, 1, 5*time.Second)
}

// storeEntryAt is the open Badger store of a directory.
func storeEntryAt(t testing.TB, dir string) *storeEntry {
	t.Helper()
	var out *storeEntry
	storePool.Range(func(k, v any) bool {
		if k == storageBadger+":"+dir {
			out = v.(*storeEntry)
		}
		return true
	})
	if out == nil {
		t.Fatalf("no open store at %s", dir)
	}
	return out
}

// TestInterruptedStartIsResolved covers a process that died during a start: its payment is
// left INIT, and nobody ever got its payment_url. A resubmit of the order starts a new payment
// at once; the re-checker asks CinetPay about the old one.
func TestInterruptedStartIsResolved(t *testing.T) {
	e := newEnv(t, envOptions{})
	st := storeEntryAt(t, e.dir).Store()
	claim := func(order string) string {
		c, err := st.Claim(storage.Claim{SiteID: testSiteID, OrderID: order, Amount: 1000, Currency: "XOF",
			Environment: "sandbox", Now: time.Now(), ReuseWindow: engine.ReuseWindow, InitGrace: time.Hour})
		if err != nil || c.Kind != storage.ClaimNew {
			t.Fatalf("claim: %v %v", c.Kind, err)
		}
		return c.Payment.TransactionID
	}
	client := &cinetpay.Client{Endpoint: e.sbSrv.URL, APIKey: testAPIKey, SiteID: testSiteID}

	// one died after CinetPay created its transaction, one before its call got there
	reached, lost := claim("order-crash"), claim("order-crash2")
	if _, err := client.InitPayment(t.Context(), &cinetpay.PaymentRequest{TransactionID: reached, Amount: 1000,
		Currency: "XOF", Description: "Order", Channels: "ALL", NotifyURL: caddyBase + "/cinetpay/notify",
		ReturnURL: caddyBase + "/cinetpay/return?transaction_id=" + reached}); err != nil {
		t.Fatal(err)
	}
	for order, old := range map[string]string{"order-crash": reached, "order-crash2": lost} {
		tx, _ := e.checkout(order, 1000)
		if tx == old {
			t.Fatalf("%s: resubmit answered with the interrupted payment", order)
		}
		if p := e.payment(testSiteID, old); p.State != storage.StateUnknown && p.State != storage.StatePending {
			t.Fatalf("%s: interrupted payment is %s", order, p.State)
		}
		// a second resubmit reuses the new payment
		if tx2, _ := e.checkout(order, 1000); tx2 != tx {
			t.Fatalf("%s: %s then %s", order, tx, tx2)
		}
	}
	// the re-checker asked CinetPay: the one that exists there is pending, the other unknown
	p := e.waitState(reached, storage.StatePending, 10*time.Second)
	if h := p.History; len(h) != 2 || h[0].To != storage.StateUnknown || h[0].Reason != "start interrupted" {
		t.Fatalf("history %+v", h)
	}
	waitFor(t, 10*time.Second, func() bool {
		p := e.payment(testSiteID, lost)
		return p.State == storage.StateUnknown && !p.LastCheck.IsZero()
	})
	if n := e.sb.PaymentCount(); n != 3 {
		t.Fatalf("%d payments at CinetPay, want the interrupted one and two new", n)
	}
}
