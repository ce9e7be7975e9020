package caddycinetpay

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/sandbox"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Tests of a site on CinetPay's current API (v1), with the sandbox's v1 account. The shop's
// side is the same as on Checkout v2: same intent headers, same signed results.

// notifyV1 posts a v1 notification (JSON, as CinetPay's SDKs read them) for a transaction.
func (e *env) notifyV1(txid, token string) (*http.Response, string) {
	e.t.Helper()
	tx, _ := e.sb.Transaction(txid)
	cp := ""
	if tx.V1 != nil {
		cp = tx.V1.CinetPayTransactionID
	}
	m := map[string]any{"merchant_transaction_id": txid, "transaction_id": cp,
		"user": map[string]string{"name": "Kouassi Adjoua"}}
	if token != "" {
		m["notify_token"] = token
	}
	b, _ := json.Marshal(m)
	return e.do(http.MethodPost, "/cinetpay/notify", strings.NewReader(string(b)),
		http.Header{"Content-Type": {"application/json"}})
}

// notifyToken is the payment's notify_token at the sandbox.
func (e *env) notifyToken(txid string) string {
	tx, _ := e.sb.Transaction(txid)
	if tx.V1 == nil {
		e.t.Fatalf("%s is not a v1 transaction", txid)
	}
	return tx.V1.NotifyToken
}

func TestV1StartNotifyDeliver(t *testing.T) {
	e := newEnv(t, envOptions{v1: true})
	txid, loc := e.checkout("order-v1", 1000)
	if !strings.HasPrefix(loc, e.sbSrv.URL+"/payment/") {
		t.Fatalf("payment page %q", loc)
	}
	// the exact request CinetPay got
	var body map[string]any
	for _, r := range e.sb.Requests() {
		if r.Path == "/v1/payment" && r.TransactionID == txid {
			body = jsonBody(t, r.Body)
			if r.Authorization == "" || strings.Contains(r.UserAgent, "Go-http-client") {
				t.Errorf("request headers: %q %q", r.Authorization, r.UserAgent)
			}
		}
	}
	ret := caddyBase + "/cinetpay/return?transaction_id=" + txid
	want := map[string]any{"merchant_transaction_id": txid, "amount": float64(1000), "currency": "XOF", "lang": "fr",
		"designation": "Commande été 42", "client_email": "adjoua.kouassi@example.test",
		"client_first_name": "Adjoua", "client_last_name": "Kouassi", "client_phone_number": "+2250707123456",
		"success_url": ret, "failed_url": ret, "notify_url": caddyBase + "/cinetpay/notify"}
	if len(body) != len(want) {
		t.Errorf("request fields %v, want %v", body, want)
	}
	for k, v := range want {
		if fmt.Sprint(body[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", k, body[k], v)
		}
	}
	// the stored payment: CinetPay's id kept, its notify_token never shown
	p := e.payment(testV1Account, txid)
	if p.State != storage.StatePending || p.ProviderTransactionID == "" || p.NotifyToken != "" {
		t.Fatalf("stored payment as shown: %+v", p)
	}
	var raw map[string]json.RawMessage
	e.admin(http.MethodGet, "/cinetpay/payments/"+testV1Account+"/"+txid, &raw)
	if strings.Contains(string(raw["payment"]), "notify_token") || strings.Contains(string(raw["payment"]), e.notifyToken(txid)) {
		t.Fatal("the admin API shows the notify_token")
	}

	// the customer pays: CinetPay notifies with the notify_token; one status call, ACCEPTED, one delivery
	tx := e.act(txid, "accept")
	e.waitState(txid, storage.StateAccepted, 5*time.Second)
	ds := e.shop.waitDeliveries(t, 1, 5*time.Second)
	r := ds[0].Result
	if r.TransactionID != txid || r.OrderID != "order-v1" || r.Status != "ACCEPTED" || r.Amount != "1000" ||
		r.Currency != "XOF" || r.Environment != "sandbox" || r.EventID == "" {
		t.Fatalf("delivery %+v", r)
	}
	if n := e.sb.V1StatusCount(txid); n != 1 {
		t.Fatalf("%d status calls", n)
	}
	if last := tx.Notifications[len(tx.Notifications)-1]; last.HTTPStatus != http.StatusOK {
		t.Fatalf("notification answered %d", last.HTTPStatus)
	}

	// a wrong or missing notify_token: 401, nothing changes, nothing delivered (the re-check it
	// asks for finds the payment still pending at CinetPay)
	tx2, _ := e.checkout("order-v1-forged", 1000)
	e.sb.SetFaults(sandbox.Faults{Notify: &sandbox.NotifyFault{Lost: true}})
	for _, tok := range []string{"not-the-token", ""} {
		if resp, body := e.notifyV1(tx2, tok); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token %q: %d %s", tok, resp.StatusCode, body)
		}
	}
	if p := e.payment(testV1Account, tx2); p.State != storage.StatePending {
		t.Fatalf("forged notification changed the payment: %s", p.State)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(e.shop.allDeliveries()); n != 1 {
		t.Fatalf("%d deliveries", n)
	}
	// the right one settles it
	e.act(tx2, "accept")
	if resp, _ := e.notifyV1(tx2, e.notifyToken(tx2)); resp.StatusCode != http.StatusOK {
		t.Fatalf("right token: %d", resp.StatusCode)
	}
	e.waitState(tx2, storage.StateAccepted, 5*time.Second)
	e.shop.waitDeliveries(t, 2, 5*time.Second)
	// its repeat is answered from memory; the same body with another token is still refused
	repeats := func() float64 { return scrape(t)[`caddy_cinetpay_notifications_total{result="repeat"}`] }
	before := repeats()
	if resp, _ := e.notifyV1(tx2, e.notifyToken(tx2)); resp.StatusCode != http.StatusOK {
		t.Fatalf("repeat: %d", resp.StatusCode)
	}
	if n := repeats() - before; n != 1 {
		t.Fatalf("%v repeats answered from memory, want 1", n)
	}
	for _, tok := range []string{"not-the-token", ""} {
		if resp, body := e.notifyV1(tx2, tok); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("settled payment, token %q: %d %s", tok, resp.StatusCode, body)
		}
	}

	// 100 concurrent notifications: one status call, one delivery
	tx3, _ := e.checkout("order-v1-storm", 1000)
	e.act(tx3, "accept")
	tok := e.notifyToken(tx3)
	var wg sync.WaitGroup
	codes := make([]int, 100)
	for i := range codes {
		wg.Go(func() {
			resp, _ := e.notifyV1(tx3, tok)
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("notification %d: %d", i, c)
		}
	}
	if n := e.sb.V1StatusCount(tx3); n != 1 {
		t.Fatalf("100 notifications → %d status calls", n)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(e.shop.okDeliveries()); n != 3 {
		t.Fatalf("%d deliveries", n)
	}
	e.assertNoSecrets()
	e.assertNotLogged(tok, e.notifyToken(txid), e.notifyToken(tx2))
}

// Late successes and expiry on v1: FAILED → REFUSED → SUCCESS → ACCEPTED, EXPIRED → ACCEPTED.
func TestV1LateSuccessAndExpiry(t *testing.T) {
	clk := useFakeClock(t)
	e := newEnv(t, envOptions{v1: true})

	refused, _ := e.checkout("order-v1-late", 1000)
	e.act(refused, "refuse")
	e.waitState(refused, storage.StateRefused, 5*time.Second)
	e.act(refused, sandbox.ActionPayLate)
	clk.advance(16 * time.Second) // the notification came inside the quiet period: checked at its end
	e.waitState(refused, storage.StateAccepted, 10*time.Second)
	ds := e.shop.waitDeliveries(t, 2, 5*time.Second)
	if ds[0].Result.Status != "REFUSED" || ds[1].Result.Status != "ACCEPTED" {
		t.Fatalf("deliveries %+v, %+v", ds[0].Result, ds[1].Result)
	}

	expired, _ := e.checkout("order-v1-expired", 1000)
	e.act(expired, sandbox.ActionExpire)
	clk.advance(31 * time.Second) // the first re-check finds it EXPIRED (CinetPay sends no notification)
	e.waitState(expired, storage.StateExpired, 10*time.Second)
	e.shop.waitDeliveries(t, 3, 5*time.Second)
	e.act(expired, sandbox.ActionPayLate)
	clk.advance(16 * time.Second)
	e.waitState(expired, storage.StateAccepted, 10*time.Second)
	ds = e.shop.waitDeliveries(t, 4, 5*time.Second)
	if ds[2].Result.Status != "EXPIRED" || ds[3].Result.Status != "ACCEPTED" || ds[3].Result.TransactionID != expired {
		t.Fatalf("deliveries %+v, %+v", ds[2].Result, ds[3].Result)
	}
}

// Starts whose outcome is unknown: a timeout is resolved by a re-check; a start CinetPay never
// saw becomes FAILED after the grace, and the order can start again.
func TestV1UnknownStarts(t *testing.T) {
	clk := useFakeClock(t)
	e := newEnv(t, envOptions{v1: true})
	order := func(id string) (int, string) {
		e.shop.setIntent(intentHeaders(id, 1000))
		resp, body := e.do(http.MethodPost, "/checkout/cart", strings.NewReader("x=1"), http.Header{
			"Content-Type": {"application/x-www-form-urlencoded"}})
		return resp.StatusCode, body
	}
	stored := func(id string) []storage.Payment {
		return e.payments("order_id=" + id + "&site_id=" + testV1Account)
	}

	// a timeout: the payment exists at CinetPay
	e.sb.SetFaults(sandbox.Faults{V1Payment: &sandbox.APIFault{Times: 1, Hang: sandbox.Duration(3 * time.Second)}})
	if code, _ := order("order-v1-timeout"); code != http.StatusBadGateway {
		t.Fatalf("timed-out start: %d", code)
	}
	ps := stored("order-v1-timeout")
	if len(ps) != 1 || ps[0].State != storage.StateUnknown {
		t.Fatalf("after a timeout: %+v", ps)
	}
	txid := ps[0].TransactionID
	waitFor(t, 10*time.Second, func() bool { tx, ok := e.sb.Transaction(txid); return ok && tx.V1 != nil })
	// its notify_token never reached the module: its notifications cannot be authenticated (401),
	// and each asks for an early re-check instead
	if resp, _ := e.notifyV1(txid, e.notifyToken(txid)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("notification of an unknown start: %d", resp.StatusCode)
	}
	if p := e.payment(testV1Account, txid); p.NextCheck.After(clk.now()) {
		t.Fatalf("no early re-check: next at %v: %+v", p.NextCheck.Sub(clk.now()), p)
	}
	clk.advance(31 * time.Second)
	e.waitState(txid, storage.StatePending, 10*time.Second)
	e.sb.SetFaults(sandbox.Faults{Notify: &sandbox.NotifyFault{Lost: true}})
	e.act(txid, "accept")
	clk.advance(time.Minute)
	e.waitState(txid, storage.StateAccepted, 10*time.Second)

	// a start that never reached CinetPay
	e.sb.SetFaults(sandbox.Faults{V1Payment: &sandbox.APIFault{Times: 1, Status: http.StatusBadGateway}})
	if code, _ := order("order-v1-lost"); code != http.StatusBadGateway {
		t.Fatalf("lost start: %d", code)
	}
	ps = stored("order-v1-lost")
	if len(ps) != 1 || ps[0].State != storage.StateUnknown {
		t.Fatalf("after a 502: %+v", ps)
	}
	lost := ps[0].TransactionID
	for range 6 {
		clk.advance(16 * time.Second)
		time.Sleep(1200 * time.Millisecond)
		if p := e.payment(testV1Account, lost); p.State == storage.StateFailed {
			break
		}
	}
	if p := e.payment(testV1Account, lost); p.State != storage.StateFailed || p.CreatedAt.Add(time.Minute).After(clk.now().Add(time.Minute)) {
		t.Fatalf("never seen by CinetPay: %+v", p)
	}
	if code, _ := order("order-v1-lost"); code != http.StatusSeeOther {
		t.Fatalf("the order starts again: %d", code)
	}
	if ps := stored("order-v1-lost"); len(ps) != 2 {
		t.Fatalf("%d payments for the order", len(ps))
	}
	// nothing was delivered for a payment never charged
	for _, d := range e.shop.allDeliveries() {
		if d.Result != nil && d.Result.TransactionID == lost {
			t.Fatalf("delivery for a FAILED start: %+v", d.Result)
		}
	}
}

// An expired bearer token costs exactly one new login, and the call goes through.
func TestV1TokenExpiryOneRelogin(t *testing.T) {
	e := newEnv(t, envOptions{v1: true})
	txid, _ := e.checkout("order-v1-token", 1000)
	logins := e.sb.V1LoginCount()
	e.sb.SetFaults(sandbox.Faults{V1ExpiredToken: &sandbox.TimesFault{Times: 1}})
	// a return page of a pending payment asks CinetPay
	if _, body := e.do(http.MethodGet, "/cinetpay/return?transaction_id="+txid, nil, nil); body != "return page: PENDING" {
		t.Fatalf("return page %q", body)
	}
	if n := e.sb.V1LoginCount() - logins; n != 1 {
		t.Fatalf("%d logins after an expired token", n)
	}
	var calls, refused int
	for _, r := range e.sb.Requests() {
		if r.Method == http.MethodGet && r.Path == "/v1/payment/"+txid {
			calls++
			if r.Fault == "v1_expired_token" {
				refused++
			}
		}
	}
	if calls != 2 || refused != 1 {
		t.Fatalf("%d status calls, %d refused the token: want the refused one and its retry", calls, refused)
	}
}

// The browser comes back from CinetPay's page to success_url or failed_url: both give the shop
// a signed return page.
func TestV1ReturnPages(t *testing.T) {
	e := newEnv(t, envOptions{v1: true})
	browser := &http.Client{Timeout: 30 * time.Second}
	for action, want := range map[string]string{"accept": "ACCEPTED", "refuse": "REFUSED"} {
		txid, loc := e.checkout("order-v1-ret-"+action, 1000)
		resp, err := browser.PostForm(loc, url.Values{"action": {action}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "return page: "+want {
			t.Fatalf("%s: %d %q (at %s)", action, resp.StatusCode, b, resp.Request.URL)
		}
		e.shop.mu.Lock()
		r := e.shop.returns[len(e.shop.returns)-1]
		e.shop.mu.Unlock()
		if r.Err != nil || r.Result.TransactionID != txid || r.Result.Status != want || r.Result.Amount != "1000" {
			t.Fatalf("%s: return page %+v %v", action, r.Result, r.Err)
		}
	}
	e.assertNoSecrets()
}

// A v1 and a v2 site side by side, on one store.
func TestV1AndV2OnOneStore(t *testing.T) {
	e := newEnv(t, envOptions{})
	cfg := e.caddyfile() + fmt.Sprintf(`
http://127.0.0.1:9080 {
	cinetpay {
		api_key %s
		api_password %s
		country CI
		signing_key %s %s
		endpoint %s
		checkout /checkout/*
		forward http://%s/cinetpay/webhook
		storage %s
		timeout 2s
	}
	reverse_proxy %s
}
`, testV1Key, testV1Password, testKeyID, testSigningKey, e.sbSrv.URL, e.shop.addr(), e.dir, e.shop.addr())
	e.load(cfg)
	v2, _ := e.checkout("order-both-v2", 1000)
	e.shop.setIntent(intentHeaders("order-both-v1", 1000))
	resp, _ := e.doAt("http://127.0.0.1:9080", http.MethodPost, "/checkout/cart", strings.NewReader("x=1"),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("v1 checkout: %d", resp.StatusCode)
	}
	v1 := e.txByURL(resp.Header.Get("Location"))
	e.act(v2, "accept")
	e.act(v1, "accept")
	e.shop.waitDeliveries(t, 2, 5*time.Second)
	if p := e.payment(testSiteID, v2); p.State != storage.StateAccepted {
		t.Fatalf("v2: %s", p.State)
	}
	if p := e.payment(testV1Account, v1); p.State != storage.StateAccepted {
		t.Fatalf("v1: %s", p.State)
	}
}

// On v1 too, a status call without a usable answer changes nothing and answers 503, so CinetPay
// retries; bad bodies are refused without touching the payment.
func TestV1NotificationOutageAndBadBodies(t *testing.T) {
	e := newEnv(t, envOptions{v1: true})
	txid, _ := e.checkout("order-v1-outage", 1000)
	e.sb.SetFaults(sandbox.Faults{Notify: &sandbox.NotifyFault{Lost: true}})
	e.act(txid, "accept")
	tok := e.notifyToken(txid)
	for _, f := range []*sandbox.APIFault{{Status: http.StatusBadGateway}, {Body: sandbox.BodyGarbage}, {Code: "429", Status: 429}} {
		e.sb.SetFaults(sandbox.Faults{V1Status: f})
		if resp, body := e.notifyV1(txid, tok); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%+v: %d %s", f, resp.StatusCode, body)
		}
		if p := e.payment(testV1Account, txid); p.State != storage.StatePending {
			t.Fatalf("%+v changed the payment: %s", f, p.State)
		}
	}
	e.sb.SetFaults(sandbox.Faults{})
	for name, c := range map[string]struct {
		ct, body string
		want     int
	}{
		"garbage":    {"application/json", "{not json", http.StatusBadRequest},
		"empty":      {"application/json", "", http.StatusBadRequest},
		"repeated":   {"application/json", `{"notify_token":"a","notify_token":"b","merchant_transaction_id":"` + txid + `","transaction_id":"x"}`, http.StatusBadRequest},
		"oversize":   {"application/json", `{"pad":"` + strings.Repeat("x", 70<<10) + `"}`, http.StatusRequestEntityTooLarge},
		"foreign id": {"application/json", `{"notify_token":"a","merchant_transaction_id":"SOMEONE-ELSE","transaction_id":"x"}`, http.StatusOK},
	} {
		resp, body := e.do(http.MethodPost, "/cinetpay/notify", strings.NewReader(c.body), http.Header{"Content-Type": {c.ct}})
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", name, resp.StatusCode, body, c.want)
		}
	}
	if p := e.payment(testV1Account, txid); p.State != storage.StatePending || len(e.shop.allDeliveries()) != 0 {
		t.Fatalf("bad bodies changed something: %s, %d deliveries", p.State, len(e.shop.allDeliveries()))
	}
	// CinetPay answers again: the retried notification settles it, once
	if resp, _ := e.notifyV1(txid, tok); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the outage: %d", resp.StatusCode)
	}
	e.waitState(txid, storage.StateAccepted, 5*time.Second)
	e.shop.waitDeliveries(t, 1, 5*time.Second)
	e.assertNoSecrets()
	e.assertNotLogged(tok)
}
