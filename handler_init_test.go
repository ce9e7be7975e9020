package caddycinetpay

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/sandbox"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

func TestStartPayment(t *testing.T) {
	e := newEnv(t, envOptions{site: `header X-Before-Module kept
	log_append cinetpay_tx {http.cinetpay.transaction_id}
	log_append cinetpay_status {http.cinetpay.status}`})
	e.shop.setIntent(intentHeaders("order-42", 1500))
	resp, body := e.do(http.MethodPost, "/checkout/cart", strings.NewReader("x=1"), http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, e.sbSrv.URL+"/pay/") {
		t.Fatalf("Location %q is not the sandbox's payment page", loc)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	if strings.Contains(body, "the shop's body") || resp.Header.Get("X-Shop") != "" {
		t.Errorf("shop response leaked: %q %v", body, resp.Header)
	}
	if resp.Header.Get("Set-Cookie") != "cart=kept; Path=/" {
		t.Errorf("shop cookie not kept: %v", resp.Header.Values("Set-Cookie"))
	}
	if resp.Header.Get("X-Before-Module") != "kept" {
		t.Errorf("header set before the module dropped: %v", resp.Header)
	}
	for k := range resp.Header {
		if isCinetpayHeader(k) {
			t.Errorf("%s reached the browser", k)
		}
	}

	// the exact JSON CinetPay got
	reqs := e.sb.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/v2/payment" {
		t.Fatalf("sandbox requests: %+v", reqs)
	}
	if !strings.HasPrefix(reqs[0].UserAgent, "caddy-cinetpay/") || reqs[0].ContentType != "application/json" {
		t.Errorf("user agent %q, content type %q", reqs[0].UserAgent, reqs[0].ContentType)
	}
	got := jsonBody(t, reqs[0].Body)
	txid, _ := got["transaction_id"].(string)
	if len(txid) != storage.TransactionIDLen || strings.Trim(txid, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
		t.Fatalf("transaction_id %q", txid)
	}
	want := map[string]string{
		"apikey":                testAPIKey,
		"site_id":               testSiteID,
		"transaction_id":        txid,
		"amount":                "1500",
		"currency":              "XOF",
		"description":           "Commande été 42",
		"notify_url":            caddyBase + "/cinetpay/notify",
		"return_url":            caddyBase + "/cinetpay/return?transaction_id=" + txid,
		"channels":              "ALL",
		"lang":                  "fr",
		"metadata":              base64.StdEncoding.EncodeToString([]byte("cart=42")),
		"customer_name":         "Kouassi",
		"customer_surname":      "Adjoua",
		"customer_email":        "adjoua.kouassi@example.test",
		"customer_phone_number": "+2250707123456",
		"customer_country":      "CI",
	}
	if len(got) != len(want) {
		t.Errorf("sandbox got %d fields, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if fmt.Sprint(got[k]) != v {
			t.Errorf("%s = %v, want %q", k, got[k], v)
		}
	}
	if !strings.Contains(string(reqs[0].Body), `"amount":1500`) {
		t.Errorf("amount is not a JSON integer: %s", reqs[0].Body)
	}

	p := e.payment(testSiteID, txid)
	if p.State != storage.StatePending || p.OrderID != "order-42" || p.Amount != 1500 || p.PaymentURL != loc {
		t.Fatalf("stored %+v", p)
	}
	if len(p.History) != 1 || p.History[0].From != storage.StateInit || p.History[0].To != storage.StatePending {
		t.Errorf("history %+v", p.History)
	}
	e.assertNoSecrets(body, fmt.Sprint(resp.Header))

	// placeholders reach the access log; metrics reach Caddy's registry
	var logged bool
	for _, l := range e.logLines() {
		if strings.Contains(l, `"cinetpay_tx":"`+txid+`"`) && strings.Contains(l, `"cinetpay_status":"PENDING"`) {
			logged = true
		}
	}
	if !logged {
		t.Error("no access log line with the placeholders")
	}
	mresp, err := http.Get("http://localhost:2999/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer mresp.Body.Close()
	metrics, _ := io.ReadAll(mresp.Body)
	if !strings.Contains(string(metrics), `caddy_cinetpay_payment_starts_total{result="started"}`) {
		t.Errorf("metrics: %s", metrics)
	}
}

func TestCheckoutGetPassesThrough(t *testing.T) {
	e := newEnv(t, envOptions{})
	resp, body := e.do(http.MethodGet, "/checkout/cart", nil, nil)
	if resp.StatusCode != http.StatusOK || body != "checkout form" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("Cinetpay-Amount") != "" || resp.Header.Get("X-Shop") != "dropped" {
		t.Fatalf("headers %v", resp.Header)
	}
	if n := len(e.sb.Requests()); n != 0 {
		t.Fatalf("%d CinetPay calls on a GET", n)
	}
}

func TestResubmitAndConcurrentSubmits(t *testing.T) {
	e := newEnv(t, envOptions{})
	tx1, loc1 := e.checkout("order-1", 1000)
	tx2, loc2 := e.checkout("order-1", 1000)
	if tx1 != tx2 || loc1 != loc2 || e.sb.PaymentCount() != 1 {
		t.Fatalf("resubmit started another payment: %s %s (%d)", tx1, tx2, e.sb.PaymentCount())
	}
	// another amount is another payment
	tx3, _ := e.checkout("order-1", 1005)
	if tx3 == tx1 || e.sb.PaymentCount() != 2 {
		t.Fatalf("new amount reused the payment")
	}

	e.shop.setIntent(intentHeaders("order-2", 2000))
	var wg sync.WaitGroup
	var mu sync.Mutex
	locs := map[string]int{}
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, caddyBase+"/checkout/cart", nil)
			resp, err := e.client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			locs[fmt.Sprint(resp.StatusCode, " ", resp.Header.Get("Location"))]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(locs) != 1 || e.sb.PaymentCount() != 3 {
		t.Fatalf("20 concurrent submits: answers %v, %d payments at CinetPay", locs, e.sb.PaymentCount())
	}
	for k := range locs {
		if !strings.HasPrefix(k, "303 ") {
			t.Fatalf("answer %q", k)
		}
	}
	if ps := e.payments("site_id=" + testSiteID + "&order_id=order-2"); len(ps) != 1 {
		t.Fatalf("%d payments stored for order-2", len(ps))
	}

	// a paid order is not started again: the customer goes to its return page
	e.act(tx1, "accept")
	e.waitState(tx1, storage.StateAccepted, 5*time.Second)
	e.shop.setIntent(intentHeaders("order-1", 1000))
	resp, _ := e.do(http.MethodPost, "/checkout/cart", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/cinetpay/return?transaction_id="+tx1 {
		t.Fatalf("paid order: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if e.sb.PaymentCount() != 3 {
		t.Fatal("paid order started again")
	}
}

func TestBadIntentStoresNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, c := range []struct {
		name string
		set  func(h http.Header)
	}{
		{"not a multiple of 5", func(h http.Header) { h.Set("Cinetpay-Amount", "2503") }},
		{"decimal amount", func(h http.Header) { h.Set("Cinetpay-Amount", "12.5") }},
		{"negative amount", func(h http.Header) { h.Set("Cinetpay-Amount", "-5") }},
		{"zero amount", func(h http.Header) { h.Set("Cinetpay-Amount", "0") }},
		{"amount twice", func(h http.Header) { h.Add("Cinetpay-Amount", "100") }},
		{"bad order id", func(h http.Header) { h.Set("Cinetpay-Order-Id", "order 42/../x") }},
		{"long order id", func(h http.Header) { h.Set("Cinetpay-Order-Id", strings.Repeat("a", 65)) }},
		{"no order id", func(h http.Header) { h.Del("Cinetpay-Order-Id") }},
		{"unknown currency", func(h http.Header) { h.Set("Cinetpay-Currency", "EUR") }},
		{"unknown channel", func(h http.Header) { h.Set("Cinetpay-Channels", "BITCOIN") }},
		{"bad lang", func(h http.Header) { h.Set("Cinetpay-Lang", "de") }},
		{"bad percent-encoding", func(h http.Header) { h.Set("Cinetpay-Customer-Name", "%zz") }},
		{"control character", func(h http.Header) { h.Set("Cinetpay-Description", "a%0Ab") }},
		{"bad e-mail", func(h http.Header) { h.Set("Cinetpay-Customer-Email", "nobody") }},
		{"too long", func(h http.Header) { h.Set("Cinetpay-Customer-City", strings.Repeat("x", 101)) }},
	} {
		h := intentHeaders("order-bad", 1000)
		c.set(h)
		e.shop.setIntent(h)
		resp, body := e.do(http.MethodPost, "/checkout/cart", nil, nil)
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("%s: %d %q", c.name, resp.StatusCode, body)
		}
		for k := range resp.Header {
			if isCinetpayHeader(k) {
				t.Errorf("%s: %s reached the browser", c.name, k)
			}
		}
	}
	// an error answer of the shop is not an intent: it passes, without the Cinetpay-* headers
	e.shop.setIntent(intentHeaders("order-500", 1000))
	e.shop.mu.Lock()
	e.shop.intentCode = http.StatusInternalServerError
	e.shop.mu.Unlock()
	resp, body := e.do(http.MethodPost, "/checkout/cart", nil, nil)
	if resp.StatusCode != http.StatusInternalServerError || body != "the shop's body, to be dropped" || resp.Header.Get("Cinetpay-Amount") != "" {
		t.Errorf("shop error: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if ps := e.payments(""); len(ps) != 0 || e.sb.PaymentCount() != 0 {
		t.Fatalf("bad intents stored %d payments, called CinetPay %d times", len(ps), e.sb.PaymentCount())
	}
	var named bool
	for _, l := range e.logLines() {
		if strings.Contains(l, "Cinetpay-Amount: must be a multiple of 5 for XOF") {
			named = true
		}
	}
	if !named {
		t.Error("no error log naming the shop's mistake")
	}
	e.assertNoSecrets()
}

func TestStartFailures(t *testing.T) {
	e := newEnv(t, envOptions{})
	// a definite refusal
	e.sb.SetFaults(sandbox.Faults{Payment: &sandbox.APIFault{Code: "609", Times: 1}})
	e.shop.setIntent(intentHeaders("order-609", 1000))
	resp, body := e.do(http.MethodPost, "/checkout/cart", nil, nil)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("609: %d %q", resp.StatusCode, body)
	}
	if ps := e.payments("state=FAILED"); len(ps) != 1 || ps[0].OrderID != "order-609" {
		t.Fatalf("609 → %+v", ps)
	}

	// rate limited
	e.sb.SetFaults(sandbox.Faults{Payment: &sandbox.APIFault{Code: "429", RetryAfter: 7, Times: 1}})
	e.shop.setIntent(intentHeaders("order-429", 1000))
	resp, _ = e.do(http.MethodPost, "/checkout/cart", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("429: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if ps := e.payments("state=FAILED"); len(ps) != 2 {
		t.Fatalf("429 → %d FAILED", len(ps))
	}

	// a timeout: the outcome is unknown (the sandbox does create it, later)
	e.sb.SetFaults(sandbox.Faults{Payment: &sandbox.APIFault{Hang: sandbox.Duration(3 * time.Second), Times: 1}})
	e.shop.setIntent(intentHeaders("order-timeout", 1000))
	resp, _ = e.do(http.MethodPost, "/checkout/cart", nil, nil)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("timeout: %d", resp.StatusCode)
	}
	unknown := e.payments("state=UNKNOWN")
	if len(unknown) != 1 || unknown[0].NextCheck.IsZero() {
		t.Fatalf("timeout → %+v", unknown)
	}

	// 5xx with an HTML page: unknown too
	e.sb.SetFaults(sandbox.Faults{Payment: &sandbox.APIFault{Status: 502, Times: 1}})
	e.shop.setIntent(intentHeaders("order-502", 1000))
	if resp, _ := e.do(http.MethodPost, "/checkout/cart", nil, nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("502: %d", resp.StatusCode)
	}
	if n := len(e.payments("state=UNKNOWN")); n != 2 {
		t.Fatalf("502 → %d UNKNOWN", n)
	}
	e.assertNoSecrets()
}

func TestPaymentURLMustBeOnEndpointHost(t *testing.T) {
	// a sandbox whose payment pages are on another host
	e := newEnv(t, envOptions{sandboxPublicURL: "http://evil.example"})
	e.shop.setIntent(intentHeaders("order-evil", 1000))
	resp, _ := e.do(http.MethodPost, "/checkout/cart", nil, nil)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Location") != "" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// the transaction exists at CinetPay: it stays known and checked
	if ps := e.payments("state=PENDING"); len(ps) != 1 {
		t.Fatalf("%+v", ps)
	}
}

func TestParseIntentPercentEncoding(t *testing.T) {
	h := &Handler{Currency: "XOF", Channels: "ALL", Lang: "fr"}
	hdr := intentHeaders("o1", 100)
	hdr.Set("Cinetpay-Customer-City", "Abidjan%20%E2%80%94%20Cocody")
	hdr.Set("Cinetpay-Description", "")
	in, err := parseIntent(hdr, h)
	if err != nil {
		t.Fatal(err)
	}
	if in.Customer["customer_city"] != "Abidjan — Cocody" || in.Description != "Order o1" {
		t.Fatalf("%+v", in)
	}
	hdr.Set("Cinetpay-Customer-Phone-Number", "07 07 12 34 56")
	if in, err := parseIntent(hdr, h); err != nil || in.Customer["customer_phone_number"] != "0707123456" {
		t.Fatalf("%v %v", in, err)
	}
	hdr.Set("Cinetpay-Customer-Phone-Number", "07-ab")
	if _, err := parseIntent(hdr, h); err == nil || strings.Contains(err.Error(), "07-ab") {
		t.Fatalf("bad phone: %v", err)
	}
}

// TestHandleErrorsPage runs the handle_errors example of the README: the snippet
// examples/checkout-errors.caddy, imported as the README shows (the checkout path patterns as
// arguments), with a non-checkout route that fails too.
func TestHandleErrorsPage(t *testing.T) {
	snippet, err := os.ReadFile("examples/checkout-errors.caddy")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```caddyfile\n"+string(snippet)+"```") {
		t.Error(`README's "Error pages" does not show examples/checkout-errors.caddy as it is`)
	}
	e := newEnv(t, envOptions{site: `import examples/checkout-errors.caddy /checkout/*
	handle /checkout/shop-down {
		reverse_proxy 127.0.0.1:1
	}
	handle /not-checkout {
		error "upstream down" 502
	}`})
	h := intentHeaders("order-err", 1000)
	h.Set("Cinetpay-Amount", "12.5")
	e.shop.setIntent(h)
	resp, body := e.do(http.MethodPost, "/checkout/cart", nil, nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "the shop&#39;s payment request is invalid") &&
		!strings.Contains(body, "the shop's payment request is invalid") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("Set-Cookie") == "" || resp.Header.Get("X-Shop") != "" {
		t.Fatalf("headers %v", resp.Header)
	}
	e.sb.SetFaults(sandbox.Faults{Payment: &sandbox.APIFault{Code: "429", Times: 1}})
	e.shop.setIntent(intentHeaders("order-err2", 1000))
	resp, body = e.do(http.MethodPost, "/checkout/cart", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "retry shortly") {
		t.Fatalf("%d %q %v", resp.StatusCode, body, resp.Header)
	}
	e.assertNoSecrets(body)
	for _, want := range []string{"Le paiement n'a pas pu démarrer", "The payment could not start", "Code 503",
		`name="viewport"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the error page lacks %q: %s", want, body)
		}
	}
	// the shop itself down on a checkout path: the page, but not the proxy's error message
	resp, body = e.do(http.MethodPost, "/checkout/shop-down", nil, nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "The payment could not start") ||
		strings.Contains(body, "127.0.0.1") || strings.Contains(body, "dial") {
		t.Fatalf("shop down: %d %q", resp.StatusCode, body)
	}
	// another path's error is not a checkout failure: not given the page
	resp, body = e.do(http.MethodGet, "/not-checkout", nil, nil)
	if resp.StatusCode != http.StatusBadGateway || strings.Contains(body, "paiement") || strings.Contains(body, "payment") {
		t.Fatalf("non-checkout 502: %d %q", resp.StatusCode, body)
	}
}
