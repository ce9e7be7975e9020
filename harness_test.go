package caddycinetpay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpay"
	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
	"github.com/caddy-cinetpay/caddy-cinetpay/sandbox"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Made-up credentials: never a real merchant's.
const (
	testSiteID     = "123456"
	testAPIKey     = "test-api-key-4f1c9a27e0"
	testSecret     = "test-secret-key-88d0c3b1"
	testKeyID      = "shop1"
	testSigningKey = "test-signing-key-0123456789abcdef0123"
	otherSiteID    = "654321"
	otherAPIKey    = "other-api-key-aa71c0de"
	otherSecret    = "other-secret-key-5b9e02"
	// a made-up account of CinetPay's current API, stored under its default name
	testV1Key      = "sk_test_made-up-key-7d1e03c955"
	testV1Password = "made-up-password-0b4c1f"
	testV1Account  = "ci-test"
	caddyBase      = "http://localhost:9080"
)

// testShop is the shop behind Caddy: it answers checkouts with Cinetpay-* headers, verifies
// and records deliveries, records return pages, and records every header it receives.
type testShop struct {
	t   testing.TB
	srv *httptest.Server

	mu         sync.Mutex
	intent     http.Header // headers answered on checkout POSTs
	intentCode int
	failNext   int // answer 500 to the next deliveries
	deliveries []shopDelivery
	returns    []shopReturn
	seen       []http.Header // headers of every request received
	trailers   []http.Header // trailers of the requests to /trailers
	paths      []string
	verifier   *httpsig.Verifier
	retVerify  *httpsig.Verifier
	orderSeq   int
	// failRate is the share of deliveries answered 500 (Retry-After: 1) at random
	failRate float64
}

type shopDelivery struct {
	At     time.Time
	Header http.Header
	Result *httpsig.Result
	Err    error
	Status int
}

type shopReturn struct {
	Header http.Header
	Result *httpsig.Result
	Err    error
}

func newTestShop(t testing.TB) *testShop {
	s := &testShop{t: t, intentCode: http.StatusOK}
	keys := map[string][]byte{testKeyID: []byte(testSigningKey)}
	s.verifier = &httpsig.Verifier{Keys: keys, Tag: httpsig.TagNotify, AcceptSandbox: true}
	s.retVerify = &httpsig.Verifier{Keys: keys, Tag: httpsig.TagReturn, AcceptSandbox: true}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *testShop) addr() string { return strings.TrimPrefix(s.srv.URL, "http://") }

func (s *testShop) setIntent(h http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.intent = h
}

func (s *testShop) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.seen = append(s.seen, r.Header.Clone())
	s.paths = append(s.paths, r.URL.RequestURI())
	s.mu.Unlock()
	switch {
	case r.URL.Path == "/trailers" || (r.URL.Path == "/cinetpay/return" && r.Method == http.MethodPut):
		// reads the body, records the request's trailers, answers with trailers of its own
		_, _ = io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.trailers = append(s.trailers, r.Trailer.Clone())
		s.mu.Unlock()
		w.Header().Set("Trailer", "Cinetpay-Status, X-Shop-Trailer")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "body with trailers")
		w.Header().Set("Cinetpay-Status", "ACCEPTED")
		w.Header().Set("X-Shop-Trailer", "kept")
		w.Header().Set(http.TrailerPrefix+"Cinetpay_Amount", "1")
		w.Header().Set(http.TrailerPrefix+"X-Late-Trailer", "kept too")
	case r.URL.Path == "/cinetpay/webhook":
		res, err := s.verifier.Verify(r)
		s.mu.Lock()
		status := http.StatusNoContent
		if err != nil {
			status = http.StatusUnauthorized
		} else if s.failNext > 0 {
			s.failNext--
			status = http.StatusInternalServerError
		} else if s.failRate > 0 && rand.Float64() < s.failRate {
			status = http.StatusInternalServerError
			w.Header().Set("Retry-After", "1")
		}
		s.deliveries = append(s.deliveries, shopDelivery{At: time.Now(), Header: r.Header.Clone(), Result: res, Err: err, Status: status})
		s.mu.Unlock()
		w.WriteHeader(status)
	case r.URL.Path == "/cinetpay/return":
		res, err := s.retVerify.Verify(r)
		s.mu.Lock()
		s.returns = append(s.returns, shopReturn{Header: r.Header.Clone(), Result: res, Err: err})
		s.mu.Unlock()
		status := "none"
		if res != nil {
			status = res.Status
		}
		fmt.Fprintf(w, "return page: %s", status)
	case strings.HasPrefix(r.URL.Path, "/checkout/") || r.URL.Path == "/index.php":
		s.mu.Lock()
		intent, code := s.intent.Clone(), s.intentCode
		s.mu.Unlock()
		w.Header().Set("Set-Cookie", "cart=kept; Path=/")
		w.Header().Set("X-Shop", "dropped")
		if r.Method != http.MethodPost {
			w.Header().Set("Cinetpay-Amount", "100") // must never reach a browser
			fmt.Fprint(w, "checkout form")
			return
		}
		for k, v := range intent {
			w.Header()[k] = v
		}
		if intent.Get("Cinetpay-Order-Id") == "FORM" {
			// the order and the amount the form posted: concurrent checkouts of several orders
			w.Header().Set("Cinetpay-Order-Id", r.PostFormValue("order"))
			w.Header().Set("Cinetpay-Amount", r.PostFormValue("amount"))
		}
		if intent.Get("Cinetpay-Order-Id") == "AUTO" {
			s.mu.Lock()
			s.orderSeq++
			w.Header().Set("Cinetpay-Order-Id", fmt.Sprintf("auto-%d", s.orderSeq))
			s.mu.Unlock()
		}
		w.WriteHeader(code)
		fmt.Fprint(w, "the shop's body, to be dropped")
	default:
		w.Header().Set("Cinetpay-Leak", "must be stripped")
		w.Header().Set("Cinetpay_Leak", "must be stripped too")
		fmt.Fprint(w, "shop page")
	}
}

// okDeliveries are the verified deliveries the shop accepted.
func (s *testShop) okDeliveries() []shopDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []shopDelivery
	for _, d := range s.deliveries {
		if d.Err == nil && d.Status < 300 {
			out = append(out, d)
		}
	}
	return out
}

func (s *testShop) allDeliveries() []shopDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]shopDelivery(nil), s.deliveries...)
}

// waitDeliveries waits until the shop accepted n deliveries.
func (s *testShop) waitDeliveries(t testing.TB, n int, within time.Duration) []shopDelivery {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ds := s.okDeliveries()
		if len(ds) >= n || time.Now().After(deadline) {
			if len(ds) < n {
				t.Fatalf("shop accepted %d deliveries, want %d (all: %+v)", len(ds), n, s.allDeliveries())
			}
			return ds
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// headersSeen reports every header name the shop received.
func (s *testShop) headersSeen() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	for _, h := range s.seen {
		for k := range h {
			out[k] = true
		}
	}
	return out
}

// intentHeaders is a valid intent for order, with customer data.
func intentHeaders(order string, amount int) http.Header {
	h := http.Header{}
	h.Set("Cinetpay-Amount", fmt.Sprint(amount))
	h.Set("Cinetpay-Order-Id", order)
	h.Set("Cinetpay-Currency", "XOF")
	h.Set("Cinetpay-Description", "Commande%20%C3%A9t%C3%A9%20%2342") // "Commande été #42"
	h.Set("Cinetpay-Customer-Name", "Kouassi")
	h.Set("Cinetpay-Customer-Surname", "Adjoua")
	h.Set("Cinetpay-Customer-Email", "adjoua.kouassi@example.test")
	h.Set("Cinetpay-Customer-Phone-Number", "+2250707123456")
	h.Set("Cinetpay-Customer-Country", "CI")
	h.Set("Cinetpay-Metadata", "cart=42")
	return h
}

// customerSecrets are values that must never appear in a response or a log line.
var customerSecrets = []string{testAPIKey, testSecret, testSigningKey, testV1Key, testV1Password,
	"adjoua.kouassi@example.test", "2250707123456", "0707123456", "Kouassi", "Adjoua"}

// env is one test's world: the sandbox, the shop and a Caddy in front of it.
type env struct {
	t       testing.TB
	sb      *sandbox.Server
	sbSrv   *httptest.Server
	shop    *testShop
	tester  *caddytest.Tester
	dir     string
	logDir  string
	client  *http.Client
	options envOptions
}

type envOptions struct {
	// extra lines inside the cinetpay block, and at site level before reverse_proxy
	block, site string
	// whole Caddyfile override (with the same %-placeholders as the default template)
	caddyfile string
	// sandboxPublicURL moves the sandbox's payment pages elsewhere
	sandboxPublicURL string
	// v1 speaks CinetPay's current API (the made-up v1 account) instead of Checkout v2
	v1 bool
	// postgres, a DSN, stores in PostgreSQL instead of the Badger directory
	postgres string
}

// newEnv starts a sandbox and a shop and loads a Caddy config in front of them.
func newEnv(t testing.TB, opts envOptions) *env {
	t.Helper()
	e := &env{t: t, options: opts, dir: t.TempDir(), logDir: t.TempDir()}
	e.sb = sandbox.New(sandbox.Config{PublicURL: opts.sandboxPublicURL, Merchants: []sandbox.Merchant{
		{SiteID: testSiteID, APIKey: testAPIKey, SecretKey: testSecret},
		{SiteID: otherSiteID, APIKey: otherAPIKey, SecretKey: otherSecret},
	}, Accounts: []sandbox.Account{{APIKey: testV1Key, APIPassword: testV1Password, Country: "CI"}}})
	e.sbSrv = httptest.NewServer(e.sb)
	t.Cleanup(e.sbSrv.Close)
	t.Cleanup(func() { _ = e.sb.Close() })
	e.shop = newTestShop(t)
	e.client = &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	e.tester = caddytest.NewTester(t)
	e.load(e.caddyfile())
	t.Cleanup(func() {
		// unload the module so the store closes before its directory is removed
		unloadCaddy(t)
		setClock(nil)
	})
	return e
}

const defaultCaddyfile = `{
	admin localhost:2999
	http_port 9080
	https_port 9443
	grace_period 1ns
	log {
		output file %[5]s/caddy.log
		format json
		level DEBUG
		# reverse_proxy's debug lines hold upstream response headers: on checkout, the
		# customer fields of the intent (see README, "Logs")
		exclude http.handlers.reverse_proxy
	}
}
http://localhost:9080 {
	log {
		output file %[5]s/access.log
		format json
	}
	cinetpay {
		api_key %[6]s
		site_id %[7]s
		secret_key %[8]s
		signing_key %[9]s %[10]s
		endpoint %[1]s
		checkout /checkout/*
		forward http://%[2]s/cinetpay/webhook
		storage %[3]s
		timeout 2s
		%[4]s
	}
	%[11]s
	reverse_proxy %[2]s
}
`

func (e *env) caddyfile() string {
	tpl := defaultCaddyfile
	key, id, secret := testAPIKey, testSiteID, testSecret
	if e.options.v1 {
		tpl = strings.Replace(tpl, "site_id %[7]s\n\t\tsecret_key %[8]s", "api_password %[7]s\n\t\tcountry %[8]s", 1)
		key, id, secret = testV1Key, testV1Password, "CI"
	}
	if e.options.caddyfile != "" {
		tpl = e.options.caddyfile
	}
	store := e.dir
	if e.options.postgres != "" {
		store = "postgres " + e.options.postgres
	}
	return fmt.Sprintf(tpl, e.sbSrv.URL, e.shop.addr(), store, e.options.block, e.logDir,
		key, id, secret, testKeyID, testSigningKey, e.options.site)
}

// site is the store namespace of the env's payments.
func (e *env) site() string {
	if e.options.v1 {
		return testV1Account
	}
	return testSiteID
}

func (e *env) load(cfg string) {
	e.t.Helper()
	e.tester.InitServer(cfg, "caddyfile")
	if e.t.Failed() {
		e.t.FailNow()
	}
}

// unloadCaddy loads a config without the module, closing its stores.
func unloadCaddy(t testing.TB) {
	req, _ := http.NewRequest(http.MethodPost, "http://localhost:2999/load",
		strings.NewReader(`{"admin":{"listen":"localhost:2999"}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Logf("unloading: %v", err)
		return
	}
	resp.Body.Close()
}

// do sends a request to Caddy.
func (e *env) do(method, path string, body io.Reader, hdr http.Header) (*http.Response, string) {
	e.t.Helper()
	return e.doAt(caddyBase, method, path, body, hdr)
}

// doAt sends a request to one of Caddy's sites.
func (e *env) doAt(base, method, path string, body io.Reader, hdr http.Header) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// checkout POSTs the checkout of order with a valid intent and expects the 303 to the sandbox.
func (e *env) checkout(order string, amount int) (txid, location string) {
	e.t.Helper()
	e.shop.setIntent(intentHeaders(order, amount))
	resp, body := e.do(http.MethodPost, "/checkout/cart", strings.NewReader("order="+order), http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"}})
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("checkout %s: %d %q", order, resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	tx := e.txByURL(loc)
	if tx == "" {
		e.t.Fatalf("no sandbox transaction for %s", loc)
	}
	return tx, loc
}

// txByURL finds the sandbox transaction of a payment_url.
func (e *env) txByURL(u string) string {
	for _, tx := range e.sb.Transactions() {
		if tx.PaymentURL == u {
			return tx.TransactionID
		}
	}
	return ""
}

// act drives the sandbox's payment page for a transaction.
func (e *env) act(txid, action string) sandbox.Transaction {
	e.t.Helper()
	tx, err := e.sb.Act(txid, action)
	if err != nil {
		e.t.Fatalf("sandbox %s %s: %v", action, txid, err)
	}
	return tx
}

// admin calls Caddy's admin API.
func (e *env) admin(method, path string, v any) int {
	e.t.Helper()
	req, _ := http.NewRequest(method, "http://localhost:2999"+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			e.t.Fatalf("admin %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

// payment reads a payment through the admin API.
func (e *env) payment(site, txid string) storage.Payment {
	e.t.Helper()
	var out struct {
		Payment storage.Payment `json:"payment"`
	}
	if code := e.admin(http.MethodGet, "/cinetpay/payments/"+site+"/"+txid, &out); code != http.StatusOK {
		e.t.Fatalf("admin payment %s: %d", txid, code)
	}
	return out.Payment
}

// payments lists the payments of the store through the admin API.
func (e *env) payments(query string) []storage.Payment {
	e.t.Helper()
	var out struct {
		Payments []storage.Payment `json:"payments"`
	}
	e.admin(http.MethodGet, "/cinetpay/payments?"+query, &out)
	return out.Payments
}

// waitState waits for a payment to reach a state.
func (e *env) waitState(txid string, want storage.State, within time.Duration) storage.Payment {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		p := e.payment(e.site(), txid)
		if p.State == want {
			return p
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("payment %s is %s, want %s (%s)", txid, p.State, want, p.LastCheckResult)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// notification builds a notification form for a transaction as CinetPay would send it.
func notification(site, txid, secret string) (url.Values, string) {
	fields := map[string]string{
		"cpm_site_id": site, "cpm_trans_id": txid, "cpm_trans_date": "2026-11-25 12:00:00",
		"cpm_amount": "1000", "cpm_currency": "XOF", "signature": "tok", "payment_method": "OM",
		"cel_phone_num": "0707123456", "cpm_phone_prefixe": "225", "cpm_language": "fr",
		"cpm_version": "V4", "cpm_payment_config": "SINGLE", "cpm_page_action": "PAYMENT",
		"cpm_custom": "", "cpm_designation": "Commande", "cpm_error_message": "SUCCES",
	}
	form := url.Values{}
	for k, v := range fields {
		form.Set(k, v)
	}
	return form, cinetpay.XToken(secret, fields)
}

// notify posts a notification to Caddy.
func (e *env) notify(form url.Values, token string) (*http.Response, string) {
	e.t.Helper()
	return e.notifyAt(caddyBase, form, token)
}

// notifyAt posts a notification to one of Caddy's sites.
func (e *env) notifyAt(base string, form url.Values, token string) (*http.Response, string) {
	e.t.Helper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if token != "" {
		h.Set("X-Token", token)
	}
	return e.doAt(base, http.MethodPost, "/cinetpay/notify", strings.NewReader(form.Encode()), h)
}

// logLines returns every line Caddy logged (server and access logs).
func (e *env) logLines() []string {
	var out []string
	for _, name := range []string{"caddy.log", "access.log"} {
		f, err := os.Open(filepath.Join(e.logDir, name))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			out = append(out, sc.Text())
		}
		f.Close()
	}
	return out
}

// assertNoSecrets fails if a secret or customer datum shows in the logs or in any text given.
func (e *env) assertNoSecrets(texts ...string) {
	e.t.Helper()
	all := append(e.logLines(), texts...)
	if len(e.logLines()) == 0 {
		e.t.Fatal("no log lines captured")
	}
	for _, line := range all {
		for _, s := range customerSecrets {
			if strings.Contains(line, s) {
				e.t.Errorf("%q appears in %q", s, line)
			}
		}
	}
}

// assertNotLogged fails if one of values (a payment's notify_token, say) appears in a log line.
func (e *env) assertNotLogged(values ...string) {
	e.t.Helper()
	for _, l := range e.logLines() {
		for _, v := range values {
			if v != "" && strings.Contains(l, v) {
				e.t.Errorf("%q appears in the log line %q", v, l)
			}
		}
	}
}

// fakeClock is a settable clock for the module.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// useFakeClock makes the module's clock a fake one, starting now.
func useFakeClock(t *testing.T) *fakeClock {
	c := &fakeClock{t: time.Now()}
	setClock(c.now)
	t.Cleanup(func() { setClock(nil) })
	return c
}

func setClock(f func() time.Time) { engine.SetClock(f) }

// jsonBody decodes a sandbox request body.
func jsonBody(t testing.TB, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("sandbox body: %v", err)
	}
	return m
}

// decodeJSON decodes a response body.
func decodeJSON(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}
