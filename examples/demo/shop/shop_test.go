package shop

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
)

const (
	testKeyID = "demo"
	testKey   = "test-demo-signing-key-0123456789abcdef"
)

// newShop provisions a shop on dir, cleaned up at the end of the test.
func newShop(t *testing.T, dir string, acceptSandbox bool) *Shop {
	t.Helper()
	s := &Shop{Data: dir, SigningKeys: []SigningKey{{ID: testKeyID, Key: testKey}}, AcceptSandbox: acceptSandbox}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := s.Provision(ctx); err != nil {
		t.Fatalf("provision: %v", err)
	}
	t.Cleanup(func() { _ = s.Cleanup() })
	s.logger = zap.NewNop() // the test context's logger prints stack traces on warnings
	return s
}

func (s *Shop) do(t *testing.T, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	if err := s.ServeHTTP(w, r, nil); err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	return w
}

// checkout creates an order through POST /checkout and returns its id.
func (s *Shop) checkout(t *testing.T) string {
	t.Helper()
	w := s.do(t, httptest.NewRequest(http.MethodPost, "/checkout", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("checkout: %d %s", w.Code, w.Body)
	}
	id := w.Header().Get("Cinetpay-Order-Id")
	if id == "" {
		t.Fatal("checkout: no Cinetpay-Order-Id")
	}
	return id
}

// result is what a signed message says.
type result struct {
	tag, env, order, status, amount, currency, event, txid string
	key                                                    string
}

func (r result) withDefaults() result {
	if r.tag == "" {
		r.tag = httpsig.TagNotify
	}
	if r.env == "" {
		r.env = "sandbox"
	}
	if r.amount == "" {
		r.amount = "5000"
	}
	if r.currency == "" {
		r.currency = "XOF"
	}
	if r.txid == "" {
		r.txid = "DEMOTX0001"
	}
	if r.key == "" {
		r.key = testKey
	}
	return r
}

// request builds a request signed as the cinetpay module signs deliveries and return pages.
func (r result) request(t *testing.T, method, target string) *http.Request {
	t.Helper()
	r = r.withDefaults()
	h := http.Header{}
	h.Set(httpsig.HeaderTransactionID, r.txid)
	h.Set(httpsig.HeaderOrderID, r.order)
	h.Set(httpsig.HeaderStatus, r.status)
	h.Set(httpsig.HeaderAmount, r.amount)
	h.Set(httpsig.HeaderCurrency, r.currency)
	h.Set(httpsig.HeaderPaymentMethod, "OM")
	h.Set(httpsig.HeaderEnvironment, r.env)
	nonce := randomID("n")
	if r.tag == httpsig.TagNotify {
		h.Set(httpsig.HeaderEventID, r.event)
		nonce = r.event
	}
	signer := httpsig.Signer{KeyID: testKeyID, Key: []byte(r.key)}
	if err := signer.Sign(method, h, r.tag, nonce, time.Now()); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(method, target, nil)
	req.Header = h
	return req
}

func (r result) deliver(t *testing.T, s *Shop) *httptest.ResponseRecorder {
	t.Helper()
	return s.do(t, r.request(t, http.MethodPost, "/cinetpay/webhook"))
}

// order reads an order through /orders.json.
func (s *Shop) ordersJSON(t *testing.T) ordersView {
	t.Helper()
	w := s.do(t, httptest.NewRequest(http.MethodGet, "/orders.json", nil))
	var v ordersView
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("orders.json: %v", err)
	}
	return v
}

func (s *Shop) order(t *testing.T, id string) orderView {
	t.Helper()
	for _, o := range s.ordersJSON(t).Orders {
		if o.ID == id {
			return o
		}
	}
	t.Fatalf("order %s not in orders.json", id)
	return orderView{}
}

func applied(o orderView) int {
	n := 0
	for _, d := range o.Deliveries {
		if d.Outcome == OutcomeApplied {
			n++
		}
	}
	return n
}

func TestCheckoutHeaders(t *testing.T) {
	s := newShop(t, t.TempDir(), true)
	w := s.do(t, httptest.NewRequest(http.MethodPost, "/checkout", nil))
	h := w.Header()
	if h.Get("Cinetpay-Amount") != "5000" || h.Get("Cinetpay-Currency") != "XOF" ||
		!strings.HasPrefix(h.Get("Cinetpay-Order-Id"), "ord_") {
		t.Fatalf("intent headers: %v", h)
	}
	if got := h.Get("Cinetpay-Description"); got != "Tissu%20wax%20%E2%80%94%20pagne%206%20yards" {
		t.Errorf("description %q: want percent-encoded UTF-8", got)
	}
	for _, name := range []string{"Cinetpay-Customer-Name", "Cinetpay-Customer-Surname", "Cinetpay-Customer-Email",
		"Cinetpay-Customer-Phone-Number", "Cinetpay-Customer-Country", "Cinetpay-Metadata"} {
		if h.Get(name) == "" {
			t.Errorf("%s missing", name)
		}
	}
	if o := s.order(t, h.Get("Cinetpay-Order-Id")); o.Status != OrderPending || o.Amount != 5000 {
		t.Errorf("stored order: %+v", o)
	}
	if w := s.do(t, httptest.NewRequest(http.MethodGet, "/checkout", nil)); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /checkout: %d", w.Code)
	}
}

func TestWebhookAppliesOnce(t *testing.T) {
	s := newShop(t, t.TempDir(), true)
	id := s.checkout(t)
	d := result{order: id, status: "ACCEPTED", event: "evt-1"}
	if w := d.deliver(t, s); w.Code != http.StatusOK {
		t.Fatalf("delivery: %d %s", w.Code, w.Body)
	}
	o := s.order(t, id)
	if o.Status != OrderPaid || applied(o) != 1 || len(o.Events) != 1 {
		t.Fatalf("after delivery: %+v", o)
	}
	// A redelivery (re-signed, same event id): 200, not applied again.
	w := d.deliver(t, s)
	if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != OutcomeAlreadyApplied {
		t.Fatalf("redelivery: %d %s", w.Code, w.Body)
	}
	o = s.order(t, id)
	if o.Status != OrderPaid || applied(o) != 1 || len(o.Events) != 1 || len(o.Deliveries) != 2 {
		t.Fatalf("after redelivery: %+v", o)
	}
	if o.Deliveries[1].Outcome != OutcomeAlreadyApplied {
		t.Errorf("redelivery recorded as %q", o.Deliveries[1].Outcome)
	}
}

func TestWebhookRefusesReturnTag(t *testing.T) {
	s := newShop(t, t.TempDir(), true)
	id := s.checkout(t)
	req := result{tag: httpsig.TagReturn, order: id, status: "ACCEPTED"}.request(t, http.MethodPost, "/cinetpay/webhook")
	// even with an event id header added, the tag is wrong
	if w := s.do(t, req); w.Code != http.StatusUnauthorized {
		t.Fatalf("return-tag signature on the webhook: %d", w.Code)
	}
	v := s.ordersJSON(t)
	if o := s.order(t, id); o.Status != OrderPending || len(o.Deliveries) != 0 {
		t.Fatalf("order changed: %+v", o)
	}
	if len(v.Rejected) != 1 || v.Rejected[0].Verified || !strings.Contains(v.Rejected[0].Detail, "tag") {
		t.Fatalf("rejected: %+v", v.Rejected)
	}
}

func TestWebhookRefusesTamperedAmount(t *testing.T) {
	s := newShop(t, t.TempDir(), true)
	id := s.checkout(t)
	req := result{order: id, status: "ACCEPTED", event: "evt-t", amount: "5000"}.request(t, http.MethodPost, "/cinetpay/webhook")
	req.Header.Set(httpsig.HeaderAmount, "50")
	if w := s.do(t, req); w.Code != http.StatusUnauthorized {
		t.Fatalf("tampered amount: %d", w.Code)
	}
	if o := s.order(t, id); o.Status != OrderPending || len(o.Events) != 0 {
		t.Fatalf("order changed: %+v", o)
	}
	// a wrong key too
	if w := (result{order: id, status: "ACCEPTED", event: "evt-k", key: strings.Repeat("x", 40)}).deliver(t, s); w.Code != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d", w.Code)
	}
	if v := s.ordersJSON(t); len(v.Rejected) != 2 || !strings.Contains(v.Rejected[0].Detail, "does not match") {
		t.Fatalf("rejected: %+v", v.Rejected)
	}
}

func TestWebhookAmountDiffersFlags(t *testing.T) {
	s := newShop(t, t.TempDir(), true)
	id := s.checkout(t)
	if w := (result{order: id, status: "ACCEPTED", event: "evt-a", amount: "4000"}).deliver(t, s); w.Code != http.StatusOK {
		t.Fatalf("delivery: %d", w.Code)
	}
	o := s.order(t, id)
	if o.Status != OrderFlagged || !strings.Contains(o.FlagReason, "4000") {
		t.Fatalf("amount differs: %+v", o)
	}
	// a currency that differs too
	id2 := s.checkout(t)
	(result{order: id2, status: "ACCEPTED", event: "evt-c", currency: "XAF"}).deliver(t, s)
	if o := s.order(t, id2); o.Status != OrderFlagged {
		t.Fatalf("currency differs: %+v", o)
	}
	// a later, correct ACCEPTED leaves a flagged order to a person
	(result{order: id, status: "ACCEPTED", event: "evt-b"}).deliver(t, s)
	if o := s.order(t, id); o.Status != OrderFlagged {
		t.Fatalf("flagged order changed: %+v", o)
	}
}

func TestWebhookStatusRules(t *testing.T) {
	s := newShop(t, t.TempDir(), true)

	// REFUSED, then a late ACCEPTED: paid
	id := s.checkout(t)
	(result{order: id, status: "REFUSED", event: "e1"}).deliver(t, s)
	if o := s.order(t, id); o.Status != OrderRefused {
		t.Fatalf("refused: %+v", o)
	}
	(result{order: id, status: "ACCEPTED", event: "e2"}).deliver(t, s)
	if o := s.order(t, id); o.Status != OrderPaid {
		t.Fatalf("late success: %+v", o)
	}
	// a paid order is not refused or expired afterwards
	(result{order: id, status: "REFUSED", event: "e3", txid: "OTHER"}).deliver(t, s)
	(result{order: id, status: "EXPIRED", event: "e4", txid: "OTHER"}).deliver(t, s)
	if o := s.order(t, id); o.Status != OrderPaid || applied(o) != 2 {
		t.Fatalf("paid order changed: %+v", o)
	}
	// DUPLICATE: money taken twice → a flag to refund SECOND; the order stays paid by its
	// transaction (it used to become "flagged", losing its payment)
	(result{order: id, status: "DUPLICATE", event: "e5", txid: "SECOND"}).deliver(t, s)
	if o := s.order(t, id); o.Status != OrderPaid || o.Transaction != "DEMOTX0001" || !strings.Contains(o.FlagReason, "SECOND") ||
		len(o.Flags) != 1 || o.Flags[0].EventID != "e5" || o.Flags[0].TransactionID != "SECOND" {
		t.Fatalf("duplicate: %+v", o)
	}

	// EXPIRED; MISMATCH → flagged
	id2 := s.checkout(t)
	(result{order: id2, status: "EXPIRED", event: "e6"}).deliver(t, s)
	if o := s.order(t, id2); o.Status != OrderExpired {
		t.Fatalf("expired: %+v", o)
	}
	(result{order: id2, status: "MISMATCH", event: "e7"}).deliver(t, s)
	if o := s.order(t, id2); o.Status != OrderFlagged {
		t.Fatalf("mismatch: %+v", o)
	}

	// an unknown order: not applied, not 2xx (the module retries)
	if w := (result{order: "ord_nope", status: "ACCEPTED", event: "e8"}).deliver(t, s); w.Code != http.StatusNotFound {
		t.Fatalf("unknown order: %d", w.Code)
	}
	if w := (result{order: id2, status: "PENDING", event: "e9"}).deliver(t, s); w.Code/100 == 2 {
		t.Fatalf("PENDING delivery: %d", w.Code)
	}
}

func TestWebhookRefusesSandboxUnlessAccepted(t *testing.T) {
	s := newShop(t, t.TempDir(), false)
	id := s.checkout(t)
	if w := (result{order: id, status: "ACCEPTED", event: "e1"}).deliver(t, s); w.Code != http.StatusUnauthorized {
		t.Fatalf("sandbox result without accept_sandbox: %d", w.Code)
	}
	if w := (result{order: id, status: "ACCEPTED", event: "e2", env: "live"}).deliver(t, s); w.Code != http.StatusOK {
		t.Fatalf("live result: %d", w.Code)
	}
	if o := s.order(t, id); o.Status != OrderPaid {
		t.Fatalf("order: %+v", o)
	}
}

func TestReturnPageShowsVerifiedStatusOnly(t *testing.T) {
	s := newShop(t, t.TempDir(), true)
	id := s.checkout(t)
	ret := func(status, query string) string {
		t.Helper()
		req := result{tag: httpsig.TagReturn, order: id, status: status}.request(t, http.MethodGet, "/cinetpay/return?transaction_id=DEMOTX0001"+query)
		w := s.do(t, req)
		if w.Code != http.StatusOK {
			t.Fatalf("return page %s: %d %s", status, w.Code, w.Body)
		}
		return w.Body.String()
	}
	// ACCEPTED, but the shop's record is still pending: received, not confirmed; refreshes
	page := ret("ACCEPTED", "")
	if !strings.Contains(page, `id="status" data-status="ACCEPTED" title="Résultat vérifié (signé par Caddy)">Paiement accepté<`) ||
		!strings.Contains(page, "Paiement reçu, confirmation en cours") || strings.Contains(page, "confirmée") ||
		!strings.Contains(page, `http-equiv="refresh"`) || !strings.Contains(page, `id="refresh"`) {
		t.Fatalf("accepted, order pending: %s", page)
	}
	// display only: the order is unchanged
	if o := s.order(t, id); o.Status != OrderPending || len(o.Events) != 0 {
		t.Fatalf("the return page changed the order: %+v", o)
	}
	// PENDING refreshes itself and offers to resume the payment of this order
	page = ret("PENDING", "")
	if !strings.Contains(page, `http-equiv="refresh"`) || !strings.Contains(page, `name="order" value="`+id+`"`) ||
		!strings.Contains(page, "Reprendre le paiement") {
		t.Fatalf("pending return page: %s", page)
	}
	// once the delivery is applied: confirmed, in either language
	if w := (result{order: id, status: "ACCEPTED", event: "e1"}).deliver(t, s); w.Code != http.StatusOK {
		t.Fatalf("delivery: %d", w.Code)
	}
	page = ret("ACCEPTED", "")
	if !strings.Contains(page, "Commande confirmée") || strings.Contains(page, `http-equiv="refresh"`) ||
		!strings.Contains(page, `data-status="paid">Payée<`) {
		t.Fatalf("accepted, order paid: %s", page)
	}
	page = ret("ACCEPTED", "&lang=en")
	if !strings.Contains(page, "Order confirmed") || !strings.Contains(page, `<html lang="en">`) ||
		!strings.Contains(page, `href="/cinetpay/return?lang=fr&amp;transaction_id=DEMOTX0001"`) {
		t.Fatalf("accepted, order paid, English: %s", page)
	}
	// a delivery signature is not a return page's
	req := result{order: id, status: "ACCEPTED", event: "e1"}.request(t, http.MethodGet, "/cinetpay/return")
	if w := s.do(t, req); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `data-status="UNVERIFIED"`) ||
		!strings.Contains(w.Body.String(), "Résultat non vérifié") {
		t.Fatalf("notify-tag on return: %d", w.Code)
	}
	// no signature at all
	if w := s.do(t, httptest.NewRequest(http.MethodGet, "/cinetpay/return?transaction_id=X", nil)); w.Code != http.StatusNotFound {
		t.Fatalf("unsigned return: %d", w.Code)
	}
}

// TestCheckoutResumesPendingOrder: the "Resume payment" form sends the same order's headers
// again (the module then reuses its open payment); any other order id makes a new order.
func TestCheckoutResumesPendingOrder(t *testing.T) {
	s := newShop(t, t.TempDir(), true)
	id := s.checkout(t)
	post := func(order string) string {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/checkout", strings.NewReader("order="+order))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := s.do(t, req)
		if w.Code != http.StatusOK || w.Header().Get("Cinetpay-Amount") != "5000" {
			t.Fatalf("checkout: %d %v", w.Code, w.Header())
		}
		return w.Header().Get("Cinetpay-Order-Id")
	}
	if got := post(id); got != id {
		t.Fatalf("resuming %s answered order %s", id, got)
	}
	if got := post("ord_nope"); got == id || got == "" {
		t.Fatalf("an unknown order id: order %q", got)
	}
	if w := (result{order: id, status: "ACCEPTED", event: "e1"}).deliver(t, s); w.Code != http.StatusOK {
		t.Fatalf("delivery: %d", w.Code)
	}
	if got := post(id); got == id {
		t.Fatal("a paid order was resumed")
	}
	if v := s.ordersJSON(t); len(v.Orders) != 3 {
		t.Fatalf("%d orders, want 3", len(v.Orders))
	}
}

// TestPagesOneLanguage: every page is in one language, French by default, English with
// ?lang=en (then kept by a cookie), with the FR | EN switch and the viewport meta.
func TestPagesOneLanguage(t *testing.T) {
	for _, l := range []string{"fr", "en"} {
		for k := range texts["fr"] {
			if _, ok := texts[l][k]; !ok {
				t.Errorf("texts[%s] lacks %q", l, k)
			}
		}
		if len(texts[l]) != len(texts["fr"]) {
			t.Errorf("texts[%s] has %d words, texts[fr] %d", l, len(texts[l]), len(texts["fr"]))
		}
	}
	s := newShop(t, t.TempDir(), true)
	s.checkout(t)
	for _, path := range []string{"/", "/orders", "/nope"} {
		for _, c := range []struct{ query, cookie, lang, word, other string }{
			{"", "", "fr", "Mes commandes", "My orders"},
			{"?lang=en", "", "en", "My orders", "Mes commandes"},
			{"", "en", "en", "My orders", "Mes commandes"},
			{"?lang=fr", "en", "fr", "Mes commandes", "My orders"},
		} {
			req := httptest.NewRequest(http.MethodGet, path+c.query, nil)
			if c.cookie != "" {
				req.AddCookie(&http.Cookie{Name: langCookie, Value: c.cookie})
			}
			w := s.do(t, req)
			page := w.Body.String()
			if !strings.Contains(page, `<html lang="`+c.lang+`">`) || !strings.Contains(page, c.word) ||
				strings.Contains(page, c.other) || !strings.Contains(page, `id="lang-switch"`) ||
				!strings.Contains(page, `<meta name="viewport" content="width=device-width, initial-scale=1">`) {
				t.Errorf("%s%s (cookie %q): want %s only: %s", path, c.query, c.cookie, c.lang, page)
			}
			for _, code := range []string{">pending<", ">paid<", ">PENDING<", ">ACCEPTED<"} {
				if strings.Contains(page, code) {
					t.Errorf("%s%s shows the code %s", path, c.query, code)
				}
			}
			if c.query != "" && !strings.Contains(w.Header().Get("Set-Cookie"), "lang="+c.lang) {
				t.Errorf("%s%s: no language cookie", path, c.query)
			}
		}
	}
}

func TestPersistsAcrossReprovision(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	a := newShop(t, dir, true)
	paid := a.checkout(t)
	pending := a.checkout(t)
	if w := (result{order: paid, status: "ACCEPTED", event: "evt-p"}).deliver(t, a); w.Code != http.StatusOK {
		t.Fatalf("delivery: %d", w.Code)
	}
	// a config reload: the new handler is provisioned before the old one is cleaned up, and
	// both share one store
	b := newShop(t, dir, true)
	if o := b.order(t, paid); o.Status != OrderPaid {
		t.Fatalf("overlapping handler: %+v", o)
	}
	_ = a.Cleanup()
	_ = b.Cleanup()
	if _, ok := stores.References(a.dir); ok {
		t.Fatal("store still held after both cleanups")
	}

	// a restart: a new handler loads the file
	c := newShop(t, dir, true)
	v := c.ordersJSON(t)
	if len(v.Orders) != 2 {
		t.Fatalf("orders after restart: %+v", v.Orders)
	}
	if o := c.order(t, paid); o.Status != OrderPaid || applied(o) != 1 {
		t.Fatalf("paid order after restart: %+v", o)
	}
	if o := c.order(t, pending); o.Status != OrderPending {
		t.Fatalf("pending order after restart: %+v", o)
	}
	// the applied event ids were kept with the orders: a redelivery is not applied again
	w := (result{order: paid, status: "ACCEPTED", event: "evt-p"}).deliver(t, c)
	if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != OutcomeAlreadyApplied {
		t.Fatalf("redelivery after restart: %d %s", w.Code, w.Body)
	}
	// no temporary files left behind
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != stateFile {
		t.Fatalf("data dir holds %v", entries)
	}
}

func TestCorruptDataRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Shop{Data: dir, SigningKeys: []SigningKey{{ID: testKeyID, Key: testKey}}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := s.Provision(ctx); err == nil || !strings.Contains(err.Error(), "not readable") {
		t.Fatalf("provision on a corrupt file: %v", err)
	}
}

func TestCaddyfile(t *testing.T) {
	var s Shop
	d := caddyfile.NewTestDispenser(`cinetpay_demo_shop {
		data /tmp/shop
		signing_key old old-key-0123456789abcdef0123456789
		signing_key new new-key-0123456789abcdef0123456789
		accept_sandbox
	}`)
	if err := s.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if s.Data != "/tmp/shop" || len(s.SigningKeys) != 2 || !s.AcceptSandbox {
		t.Fatalf("parsed: %+v", s)
	}
	for _, bad := range []string{
		"cinetpay_demo_shop {\ndata\n}",
		"cinetpay_demo_shop {\nsigning_key onlyid\n}",
		"cinetpay_demo_shop {\naccept_sandbox yes\n}",
		"cinetpay_demo_shop {\nnope\n}",
		"cinetpay_demo_shop {\ndata a\ndata b\n}",
		"cinetpay_demo_shop arg",
	} {
		var s Shop
		if err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	short := &Shop{Data: t.TempDir(), SigningKeys: []SigningKey{{ID: "k", Key: "short"}}}
	if err := short.Provision(ctx); err == nil {
		t.Error("a short key was accepted")
	}
	none := &Shop{Data: t.TempDir()}
	if err := none.Provision(ctx); err == nil {
		t.Error("no key was accepted")
	}
}
