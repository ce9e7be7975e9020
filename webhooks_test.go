package caddycinetpay

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
	"github.com/caddy-cinetpay/caddy-cinetpay/internal/tooltest"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// swAttempt is one delivery attempt as the Node shop of testdata/standardwebhooks saw it.
type swAttempt struct {
	ID              string         `json:"id"`
	Timestamp       string         `json:"timestamp"`
	Signature       string         `json:"signature"`
	ContentType     string         `json:"content_type"`
	CinetpayHeaders []string       `json:"cinetpay_headers"`
	Body            string         `json:"body"`
	Event           *httpsig.Event `json:"event"`
	Error           string         `json:"error"`
	Status          int            `json:"status"`
}

// startStandardWebhooksShop runs testdata/standardwebhooks/shop.js, whose deliveries are
// verified by the official npm package standardwebhooks, and returns its base URL.
func startStandardWebhooksShop(t *testing.T, secret string, failFirst int) string {
	t.Helper()
	node := tooltest.Require(t, "node", "apt-get install -y nodejs")
	dir := filepath.Join("testdata", "standardwebhooks")
	tooltest.NpmCI(t, dir, "standardwebhooks")
	cmd := exec.Command(node, "shop.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SECRET="+secret, "FAIL_FIRST="+strconv.Itoa(failFirst))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	port, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("node shop: %v", err)
	}
	return "http://127.0.0.1:" + strings.TrimSpace(port)
}

func swLog(t *testing.T, shop string) []swAttempt {
	t.Helper()
	resp, err := http.Get(shop + "/log")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var log []swAttempt
	if err := json.NewDecoder(resp.Body).Decode(&log); err != nil {
		t.Fatal(err)
	}
	return log
}

// TestStandardWebhooksDelivery delivers results with deliver_format standard-webhooks to a shop
// that verifies them with the official npm package: retries under one webhook-id with the same
// body, every field of the result, no Cinetpay-* header, a tampered body refused.
func TestStandardWebhooksDelivery(t *testing.T) {
	secret := httpsig.WebhookSecret([]byte(testSigningKey))
	shop := startStandardWebhooksShop(t, secret, 2)
	tpl := strings.Replace(defaultCaddyfile, "forward http://%[2]s/cinetpay/webhook",
		"forward "+shop+"/cinetpay/standard-webhook\n\t\tdeliver_format standard-webhooks", 1)
	e := newEnv(t, envOptions{caddyfile: tpl})

	txid, _ := e.checkout("order-sw", 2500)
	e.act(txid, "accept")
	var log []swAttempt
	waitFor(t, 20*time.Second, func() bool {
		log = swLog(t, shop)
		return len(log) >= 3
	})
	if len(log) != 3 {
		t.Fatalf("%d attempts: %+v", len(log), log)
	}
	first := log[0]
	for i, a := range log {
		if a.Error != "" || a.Event == nil {
			t.Fatalf("attempt %d refused by standardwebhooks: %s", i, a.Error)
		}
		if a.ID != first.ID || a.Body != first.Body {
			t.Fatalf("attempt %d: id %q body %s, first %q %s", i, a.ID, a.Body, first.ID, first.Body)
		}
		if a.ContentType != "application/json" || len(a.CinetpayHeaders) != 0 || !strings.HasPrefix(a.Signature, "v1,") {
			t.Fatalf("attempt %d: %+v", i, a)
		}
	}
	if want := []int{500, 500, 204}; log[0].Status != want[0] || log[1].Status != want[1] || log[2].Status != want[2] {
		t.Fatalf("statuses %d %d %d", log[0].Status, log[1].Status, log[2].Status)
	}
	p := e.payment(testSiteID, txid)
	ev := first.Event
	d := ev.Data
	if ev.Type != "payment.accepted" || d.Status != "ACCEPTED" || d.TransactionID != txid || d.OrderID != "order-sw" ||
		d.Amount != "2500" || d.Currency != "XOF" || d.Environment != "sandbox" || d.EventID != first.ID || d.PaymentMethod == "" {
		t.Fatalf("event %+v", ev)
	}
	if ts, err := time.Parse(time.RFC3339, ev.Timestamp); err != nil || ts.Location() != time.UTC || ts.Before(p.CreatedAt.Add(-time.Second)) {
		t.Fatalf("timestamp %q (%v), payment created %v", ev.Timestamp, err, p.CreatedAt)
	}
	var ds struct {
		Deliveries []storage.Delivery `json:"deliveries"`
	}
	waitFor(t, 5*time.Second, func() bool {
		e.admin(http.MethodGet, "/cinetpay/deliveries?transaction_id="+txid, &ds)
		return len(ds.Deliveries) == 1 && ds.Deliveries[0].State == storage.DeliveryDelivered
	})
	if ds.Deliveries[0].ID != first.ID || ds.Deliveries[0].Attempts != 3 {
		t.Fatalf("%+v", ds.Deliveries)
	}

	// the last attempt, sent again as it was: the library still accepts it (the shop applies
	// the event id once); with one byte of the body changed, it refuses it
	last := log[2]
	post := func(body string) int {
		req, _ := http.NewRequest(http.MethodPost, shop+"/cinetpay/standard-webhook", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("webhook-id", last.ID)
		req.Header.Set("webhook-timestamp", last.Timestamp)
		req.Header.Set("webhook-signature", last.Signature)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(last.Body); code != http.StatusNoContent {
		t.Fatalf("the delivery again: %d", code)
	}
	tampered := strings.Replace(last.Body, `"amount":"2500"`, `"amount":"25000"`, 1)
	if tampered == last.Body {
		t.Fatalf("no amount in %s", last.Body)
	}
	if code := post(tampered); code != http.StatusUnauthorized {
		t.Fatalf("tampered body: %d", code)
	}
	if l := swLog(t, shop); !strings.Contains(l[len(l)-1].Error, "signature") {
		t.Fatalf("tampered body: %+v", l[len(l)-1])
	}

	// the Go verifier agrees with the library on the same message
	h := http.Header{}
	h.Set(httpsig.HeaderWebhookID, last.ID)
	h.Set(httpsig.HeaderWebhookTimestamp, last.Timestamp)
	h.Set(httpsig.HeaderWebhookSignature, last.Signature)
	key, err := httpsig.ParseWebhookSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	v := &httpsig.WebhookVerifier{Secrets: [][]byte{key}, AcceptSandbox: true}
	if got, err := v.Verify(h, []byte(last.Body)); err != nil || got.Data != d {
		t.Fatalf("Go verifier: %v %+v", err, got)
	}
	if _, err := v.Verify(h, []byte(tampered)); err == nil {
		t.Fatal("Go verifier took the tampered body")
	}

	// a refused payment: payment.refused; return pages keep the RFC 9421 headers
	txid2, _ := e.checkout("order-sw-2", 1000)
	e.act(txid2, "refuse")
	waitFor(t, 10*time.Second, func() bool { return len(swLog(t, shop)) >= 6 })
	if ev := swLog(t, shop)[5].Event; ev == nil || ev.Type != "payment.refused" || ev.Data.TransactionID != txid2 {
		t.Fatalf("refused: %+v", swLog(t, shop)[5])
	}
	resp, body := e.do(http.MethodGet, "/cinetpay/return?transaction_id="+txid2, nil, nil)
	if resp.StatusCode != http.StatusOK || body != "return page: REFUSED" {
		t.Fatalf("return page: %d %q", resp.StatusCode, body)
	}
	e.assertNoSecrets(first.Body, last.Signature)
}

// TestREADMEWebhookExample: the README's Standard Webhooks delivery is a real one, signed with
// the demo's made-up key whose whsec_ form it gives.
func TestREADMEWebhookExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	start := strings.Index(s, "```http\nPOST /cinetpay/standard-webhook")
	if start < 0 {
		t.Fatal("no Standard Webhooks example in README.md")
	}
	block := s[start+len("```http\n"):]
	block = block[:strings.Index(block, "\n```")]
	head, body, ok := strings.Cut(block, "\n\n")
	if !ok {
		t.Fatalf("example: %q", block)
	}
	h := http.Header{}
	for _, line := range strings.Split(head, "\n")[1:] {
		k, v, _ := strings.Cut(line, ": ")
		h.Set(k, v)
	}
	secret := "whsec_ZGVtby1zaWduaW5nLWtleS1ub3QtYS1zZWNyZXQtMDEyMzQ1Njc4OQ=="
	if !strings.Contains(s, secret) || httpsig.WebhookSecret([]byte("demo-signing-key-not-a-secret-0123456789")) != secret {
		t.Fatal("the README's secret is not the demo key's")
	}
	key, _ := httpsig.ParseWebhookSecret(secret)
	sec, _ := strconv.ParseInt(h.Get("Webhook-Timestamp"), 10, 64)
	v := &httpsig.WebhookVerifier{Secrets: [][]byte{key}, Now: func() time.Time { return time.Unix(sec, 0) }}
	ev, err := v.Verify(h, []byte(body))
	if err != nil || ev.Data.OrderID != "order-42" {
		t.Fatalf("README example: %v %+v", err, ev)
	}
}

// TestStandardWebhooksFormatSwitch: a result the shop has not accepted yet under rfc9421 is
// delivered, once the site switches to standard-webhooks, under the same event id as its
// webhook-id, and a replay keeps it: a shop moving between the formats never sees one result
// under two ids.
func TestStandardWebhooksFormatSwitch(t *testing.T) {
	shop := startStandardWebhooksShop(t, httpsig.WebhookSecret([]byte(testSigningKey)), 0)
	e := newEnv(t, envOptions{})
	e.shop.mu.Lock()
	e.shop.failNext = 1 << 20 // the shop refuses every rfc9421 delivery
	e.shop.mu.Unlock()
	txid, _ := e.checkout("order-switch", 3000)
	e.act(txid, "accept")
	waitFor(t, 10*time.Second, func() bool { return len(e.shop.allDeliveries()) >= 1 })
	first := e.shop.allDeliveries()[0]
	if first.Err != nil || first.Status != http.StatusInternalServerError {
		t.Fatalf("rfc9421 attempt: %+v", first)
	}
	eventID := first.Result.EventID

	// the site moves to standard-webhooks; the pending delivery's next attempt is in that format
	e.options.caddyfile = strings.Replace(defaultCaddyfile, "forward http://%[2]s/cinetpay/webhook",
		"forward "+shop+"/cinetpay/standard-webhook\n\t\tdeliver_format standard-webhooks", 1)
	e.load(e.caddyfile())
	var log []swAttempt
	waitFor(t, 20*time.Second, func() bool { log = swLog(t, shop); return len(log) >= 1 })
	a := log[0]
	if a.Error != "" || a.Event == nil || a.ID != eventID || a.Event.Data.EventID != eventID ||
		a.Event.Data.TransactionID != txid || a.Event.Type != "payment.accepted" {
		t.Fatalf("after the switch: %+v, want webhook-id %s", a, eventID)
	}
	var ds struct {
		Deliveries []storage.Delivery `json:"deliveries"`
	}
	waitFor(t, 5*time.Second, func() bool {
		e.admin(http.MethodGet, "/cinetpay/deliveries?transaction_id="+txid, &ds)
		return len(ds.Deliveries) == 1 && ds.Deliveries[0].State == storage.DeliveryDelivered
	})
	if d := ds.Deliveries[0]; d.ID != eventID || d.Attempts < 2 {
		t.Fatalf("delivery %+v", d)
	}

	// an operator's replay: the same webhook-id and body again, verified by the library
	if code := e.admin(http.MethodPost, "/cinetpay/deliveries/"+testSiteID+"/"+eventID+"/replay", nil); code != http.StatusOK {
		t.Fatalf("replay: %d", code)
	}
	waitFor(t, 10*time.Second, func() bool { log = swLog(t, shop); return len(log) >= 2 })
	if r := log[1]; r.Error != "" || r.ID != eventID || r.Body != a.Body {
		t.Fatalf("replay: %+v, want webhook-id %s and the first body", r, eventID)
	}
	if n := len(e.shop.okDeliveries()); n != 0 {
		t.Fatalf("the rfc9421 shop accepted %d deliveries", n)
	}
}
