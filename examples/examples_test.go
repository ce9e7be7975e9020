// Tests of the example shops (php, node, python, go) with their real interpreters: each shop runs
// as a process behind real Caddy (caddytest, in-process) loading the example's own Caddyfile, with
// the in-process CinetPay sandbox; and each shop's webhook is attacked directly with requests this
// test signs itself.
package examples_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/caddy-cinetpay/caddy-cinetpay"
	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
	"github.com/caddy-cinetpay/caddy-cinetpay/sandbox"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Made-up credentials: never a real merchant's.
const (
	siteID    = "123456"
	apiKey    = "example-api-key-7d3f90c1"
	secretKey = "example-secret-key-2b81e6aa"
	// the account on CinetPay's current API, which the examples' Caddyfiles speak; its payments
	// are stored under ci-test
	v1Key      = "sk_test_example-key-5c0e91"
	v1Password = "example-password-a7d2"
	v1Account  = "ci-test"
	keyID      = "shop1"
	signingKey = "example-signing-key-0123456789abcdef0123"
	oldKeyID   = "shop0" // the previous key, still accepted by the shops during a rotation
	oldKey     = "example-old-signing-key-fedcba9876543210"
	wrongKey   = "not-the-signing-key-0123456789abcdef0000"

	// Ports of this package; the root package's tests use 2999 and 9080 in parallel.
	adminPort = 3999
	sitePort  = "9180"
	siteURL   = "http://localhost:" + sitePort
	adminURL  = "http://localhost:3999"

	// What every shop sells by default, and how it must send the description.
	productName   = "Tissu wax — édition spéciale"
	productAmount = "5000"
	encodedName   = "Tissu%20wax%20%E2%80%94%20%C3%A9dition%20sp%C3%A9ciale"
)

// An example shop and how to run it on a port.
type example struct {
	lang string
	// command returns the shop's command line for a port; it skips the test if the interpreter
	// is missing.
	command func(t *testing.T, port string) []string
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var examples = []example{
	{"php", func(t *testing.T, port string) []string {
		return []string{requireTool(t, "php", "apt-get install -y php-cli"), "-S", "127.0.0.1:" + port, abs(t, "php/router.php")}
	}},
	{"node", func(t *testing.T, port string) []string {
		node := requireTool(t, "node", "apt-get install -y nodejs")
		requireNodeModules(t) // standardwebhooks, from package-lock.json
		return []string{node, abs(t, "node/server.js")}
	}},
	{"python", func(t *testing.T, port string) []string {
		return []string{requireTool(t, "python3", "apt-get install -y python3"), abs(t, "python/shop.py")}
	}},
	{"go", func(t *testing.T, port string) []string { return []string{buildGoShop(t)} }},
}

var goShop struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// buildGoShop builds examples/go once into a temporary directory.
func buildGoShop(t *testing.T) string {
	t.Helper()
	goShop.once.Do(func() {
		dir, err := os.MkdirTemp("", "go-shop")
		if err != nil {
			goShop.err = err
			return
		}
		goShop.path = filepath.Join(dir, "go-shop")
		goShop.out, goShop.err = exec.Command("go", "build", "-o", goShop.path, "./go").CombinedOutput()
	})
	if goShop.err != nil {
		t.Fatalf("go build ./examples/go: %v\n%s", goShop.err, goShop.out)
	}
	return goShop.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if goShop.path != "" {
		os.RemoveAll(filepath.Dir(goShop.path))
	}
	os.Exit(code)
}

func TestExamples(t *testing.T) {
	for _, ex := range examples {
		t.Run(ex.lang, func(t *testing.T) {
			// two instances of the shop: one that accepts sandbox results, behind Caddy and the
			// sandbox, and one that requires live results, for the direct tests
			sandboxShop := startShop(t, ex, "1")
			liveShop := startShop(t, ex, "")
			sb, sbURL := startSandbox(t)
			startCaddy(t, ex.lang, sandboxShop.port, sbURL, false)

			t.Run("checkout headers", func(t *testing.T) { testCheckoutHeaders(t, liveShop) })
			t.Run("payment through Caddy", func(t *testing.T) { testPaymentThroughCaddy(t, sandboxShop, sb) })
			// the same shop, unchanged, behind a legacy Checkout v2 block
			t.Run("on Checkout v2", func(t *testing.T) {
				startCaddy(t, ex.lang, sandboxShop.port, sbURL, true)
				t.Run("payment through Caddy", func(t *testing.T) { testPaymentThroughCaddy(t, sandboxShop, sb) })
				t.Run("CinetPay's decimal amounts", func(t *testing.T) { testDecimalAmounts(t, sandboxShop, sb) })
			})
			t.Run("standard webhooks", func(t *testing.T) {
				testStandardWebhooks(t, ex, liveShop)
				// the same shop behind the same Caddyfile, delivering in the Standard Webhooks format
				t.Run("through Caddy", func(t *testing.T) { testStandardWebhooksThroughCaddy(t, sandboxShop, sb, sbURL) })
			})
			t.Run("checkout error page", func(t *testing.T) { testCheckoutErrorPage(t, sandboxShop) })
			t.Run("refused deliveries", func(t *testing.T) { testRefusedDeliveries(t, liveShop) })
			t.Run("accepted signatures", func(t *testing.T) { testAcceptedSignatures(t, liveShop) })
			t.Run("redelivery and key rotation", func(t *testing.T) { testRedeliveryAndRotation(t, liveShop) })
			t.Run("amount mismatch", func(t *testing.T) { testMismatch(t, liveShop) })
			t.Run("statuses", func(t *testing.T) { testStatuses(t, liveShop) })
			t.Run("return page", func(t *testing.T) { testReturnPage(t, liveShop) })
			t.Run("pages", func(t *testing.T) { testPages(t, liveShop) })
			t.Run("store write failure", func(t *testing.T) { testStoreWriteFailure(t, liveShop) })
			t.Run("concurrent deliveries", func(t *testing.T) { testConcurrentDeliveries(t, liveShop) })
			t.Run("paid twice", func(t *testing.T) { testPaidTwice(t, liveShop) })
			t.Run("unknown order restored", func(t *testing.T) { testUnknownOrderRestored(t, liveShop) })
			t.Run("unreadable store", func(t *testing.T) { testUnreadableStore(t, liveShop) })
		})
	}
}

// ---- the shop process ------------------------------------------------------------------------------

type shopProc struct {
	lang string
	port string
	url  string
	out  *lockedBuffer
	data string // SHOP_DATA
	pid  int    // the shop's process (PHP's built-in server and Node name their temporary file after it)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// shopEnv is the environment of a shop: this process's, without the shop's own variables.
func shopEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case "SHOP_PORT", "SHOP_DATA", "SIGNING_KEYS", "ACCEPT_SANDBOX", "STANDARD_WEBHOOKS_SECRET":
		default:
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// startShop runs an example shop with two signing keys (the current one and the previous one) on
// a free port, and waits until it answers.
func startShop(t *testing.T, ex example, acceptSandbox string) *shopProc {
	t.Helper()
	return startShopWrapped(t, ex, acceptSandbox, nil)
}

// startShopWrapped is startShop with the shop's command line passed through wrap (when not nil),
// e.g. to start it from a shell that sets up the process first and then execs it (same pid).
func startShopWrapped(t *testing.T, ex example, acceptSandbox string, wrap func([]string) []string) *shopProc {
	t.Helper()
	data := t.TempDir()
	port := freePort(t)
	argv := ex.command(t, port)
	if wrap != nil {
		argv = wrap(argv)
	}
	s := &shopProc{lang: ex.lang, port: port, url: "http://127.0.0.1:" + port, out: &lockedBuffer{}}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = data
	cmd.Env = shopEnv("SHOP_PORT="+port, "SHOP_DATA="+data,
		"SIGNING_KEYS="+keyID+":"+signingKey+","+oldKeyID+":"+oldKey, "ACCEPT_SANDBOX="+acceptSandbox,
		"STANDARD_WEBHOOKS_SECRET="+swSecret)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the %s shop: %v", ex.lang, err)
	}
	s.data, s.pid = data, cmd.Process.Pid
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s shop (ACCEPT_SANDBOX=%q) output:\n%s", ex.lang, acceptSandbox, s.out)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := client.Get(s.url + "/orders/ord_none")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("%s shop: GET of an unknown order: %d", ex.lang, resp.StatusCode)
			}
			return s
		}
		select {
		case <-exited:
			t.Fatalf("the %s shop exited:\n%s", ex.lang, s.out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %s shop does not answer on %s: %v\n%s", ex.lang, s.url, err, s.out)
		}
	}
}

// order is an order as the shops show it on GET /orders/<id>.
type order struct {
	ID            string   `json:"id"`
	Amount        int64    `json:"amount"`
	Currency      string   `json:"currency"`
	Status        string   `json:"status"`
	TransactionID string   `json:"transaction_id"` // null until paid
	Events        []string `json:"events"`
	Flags         []struct {
		EventID       string `json:"event_id"`
		TransactionID string `json:"transaction_id"`
		Status        string `json:"status"`
		Reason        string `json:"reason"`
	} `json:"flags"`
}

func (s *shopProc) order(t *testing.T, id string) order {
	t.Helper()
	resp, err := client.Get(s.url + "/orders/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /orders/%s: %d %s", id, resp.StatusCode, body)
	}
	var o order
	if err := json.Unmarshal(body, &o); err != nil {
		t.Fatalf("GET /orders/%s: %v: %s", id, err, body)
	}
	return o
}

// checkout creates an order directly at the shop (not through Caddy) and returns its id.
func (s *shopProc) checkout(t *testing.T) string {
	t.Helper()
	resp, err := client.PostForm(s.url+"/checkout", url.Values{"product": {"wax"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get("Cinetpay-Order-Id")
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("checkout: %d, order id %q", resp.StatusCode, id)
	}
	return id
}

// post sends a delivery to the shop's webhook and returns the status and body.
func (s *shopProc) post(t *testing.T, h http.Header) (int, string) {
	t.Helper()
	return s.do(t, http.MethodPost, "/cinetpay/webhook", h)
}

func (s *shopProc) do(t *testing.T, method, path string, h http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// ---- Caddy and the sandbox -----------------------------------------------------------------------

func startSandbox(t *testing.T) (*sandbox.Server, string) {
	sb := sandbox.New(sandbox.Config{Merchants: []sandbox.Merchant{{SiteID: siteID, APIKey: apiKey, SecretKey: secretKey}},
		Accounts: []sandbox.Account{{APIKey: v1Key, APIPassword: v1Password, Country: "CI"}}})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = sb.Close() })
	return sb, srv.URL
}

// startCaddy loads the example's own Caddyfile into the in-process Caddy, its values given through
// the environment as the README says. With v2, the Caddyfile's credentials are those of a legacy
// Checkout v2 account, as the README tells such merchants to write them.
func startCaddy(t *testing.T, lang, shopPort, endpoint string, v2 bool) {
	t.Helper()
	storageDir := t.TempDir()
	for k, v := range map[string]string{
		"SITE_PORT": sitePort, "CADDY_ADMIN": "localhost:" + strconv.Itoa(adminPort),
		"CINETPAY_STORAGE": storageDir, "CINETPAY_ENDPOINT": endpoint, "SHOP_PORT": shopPort,
		"CINETPAY_API_KEY": v1Key, "CINETPAY_API_PASSWORD": v1Password,
		"SIGNING_KEY_ID": keyID, "SIGNING_KEY": signingKey,
	} {
		t.Setenv(k, v)
	}
	raw, err := os.ReadFile(filepath.Join(lang, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	// the Caddyfile imports ../checkout-errors.caddy, relative to its own directory; given as
	// text, it is adapted as if in the working directory
	cfg := strings.ReplaceAll(string(raw), "import ../checkout-errors.caddy", "import "+abs(t, "checkout-errors.caddy"))
	adminSite = v1Account
	if v2 {
		t.Setenv("CINETPAY_API_KEY", apiKey)
		t.Setenv("CINETPAY_SITE_ID", siteID)
		t.Setenv("CINETPAY_SECRET_KEY", secretKey)
		v1Lines := "\t\tapi_password {env.CINETPAY_API_PASSWORD}\n\t\tcountry {$CINETPAY_COUNTRY:CI}\n"
		if !strings.Contains(cfg, v1Lines) {
			t.Fatalf("%s/Caddyfile: no v1 credentials to replace", lang)
		}
		cfg = strings.Replace(cfg, v1Lines, "\t\tsite_id {env.CINETPAY_SITE_ID}\n\t\tsecret_key {env.CINETPAY_SECRET_KEY}\n", 1)
		adminSite = siteID
	}
	// load a config without the module afterwards, so the store closes before its directory goes
	t.Cleanup(func() {
		resp, err := client.Post(adminURL+"/load", "application/json",
			strings.NewReader(fmt.Sprintf(`{"admin":{"listen":"localhost:%d"}}`, adminPort)))
		if err != nil {
			t.Logf("unloading Caddy: %v", err)
			return
		}
		resp.Body.Close()
	})
	tester := caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{AdminPort: adminPort,
		LoadRequestTimeout: 30 * time.Second, TestRequestTimeout: 30 * time.Second})
	tester.InitServer(cfg, "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	// Caddy binds the site's port again at each load (SO_REUSEPORT): until the previous config's
	// socket is closed, a new connection can land in its queue and be reset (CI saw it once on
	// the first POST). An idempotent GET is retried until the new server answers, so the test's
	// POSTs, which are not retried, go to it.
	waitFor(t, "Caddy to answer on "+siteURL, func() bool {
		resp, err := client.Get(siteURL + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	// a connection kept from the previous config's server may be closed under a POST (EOF),
	// which the client does not retry
	client.CloseIdleConnections()
	noRedirect.CloseIdleConnections()
}

// adminSite is where the payments of the Caddy startCaddy loaded are stored.
var adminSite = v1Account

// client talks to the shops directly.
var client = &http.Client{Timeout: 30 * time.Second}

var noRedirect = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// waitFor polls cond until it holds; the deadline is generous, so only a real failure fails.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- signed requests, as the module sends them -----------------------------------------------------

type result struct {
	order, status, amount, currency, env, event, tx string
}

var eventSeq struct {
	sync.Mutex
	n int
}

// newResult is an ACCEPTED live result for an order of the default product.
func newResult(orderID string) result {
	eventSeq.Lock()
	eventSeq.n++
	n := eventSeq.n
	eventSeq.Unlock()
	return result{order: orderID, status: "ACCEPTED", amount: productAmount, currency: "XOF", env: "live",
		event: fmt.Sprintf("evt%d%08x", n, time.Now().UnixNano()&0xffffffff), tx: fmt.Sprintf("TESTTX%06d", n)}
}

// headers are the result headers the module sends (deliver.go's setResultHeaders), unsigned.
func (r result) headers() http.Header {
	h := http.Header{}
	h.Set("User-Agent", "caddy-cinetpay examples test")
	h.Set(httpsig.HeaderTransactionID, r.tx)
	h.Set(httpsig.HeaderOrderID, r.order)
	h.Set(httpsig.HeaderStatus, r.status)
	h.Set(httpsig.HeaderAmount, r.amount)
	h.Set(httpsig.HeaderCurrency, r.currency)
	h.Set(httpsig.HeaderPaymentMethod, "OM")
	h.Set(httpsig.HeaderOperatorID, "MP2611"+r.tx[len(r.tx)-4:])
	h.Set(httpsig.HeaderPaymentDate, "2026-11-25 12:00:00")
	h.Set(httpsig.HeaderEnvironment, r.env)
	if r.event != "" {
		h.Set(httpsig.HeaderEventID, r.event)
	}
	return h
}

type signOpts struct {
	keyID, key, tag, method string
	created                 time.Time
}

var defaultSign = signOpts{keyID: keyID, key: signingKey, tag: httpsig.TagNotify, method: http.MethodPost}

// signed returns r's headers signed with httpsig.Signer, as the module signs them.
func (r result) signed(t *testing.T, o signOpts) http.Header {
	t.Helper()
	if o.created.IsZero() {
		o.created = time.Now()
	}
	h := r.headers()
	nonce := r.event
	if nonce == "" {
		nonce = "fresh-nonce-0123"
	}
	if err := (httpsig.Signer{KeyID: o.keyID, Key: []byte(o.key)}).Sign(o.method, h, o.tag, nonce, o.created); err != nil {
		t.Fatal(err)
	}
	return h
}

// resign rewrites the signature parameters of signed headers with edit and signs them again with
// key: a sender that knows the key but breaks a rule of the scheme.
func resign(t *testing.T, h http.Header, method, key string, edit func(string) string) {
	t.Helper()
	params := edit(strings.TrimPrefix(h.Get("Signature-Input"), "cinetpay="))
	var base strings.Builder
	for _, c := range strings.Fields(params[1:strings.IndexByte(params, ')')]) {
		name := strings.Trim(c, `"`)
		v := h.Get(name)
		if name == "@method" {
			v = method
		}
		base.WriteString(`"` + name + `": ` + v + "\n")
	}
	base.WriteString(`"@signature-params": ` + params)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(base.String()))
	h.Set("Signature-Input", "cinetpay="+params)
	h.Set("Signature", "cinetpay=:"+base64.StdEncoding.EncodeToString(mac.Sum(nil))+":")
}

func refused(code int) bool { return code == http.StatusUnauthorized || code == http.StatusForbidden }

// ---- the tests ---------------------------------------------------------------------------------------

// testCheckoutHeaders: the shop's checkout answer carries the intent of the README's "1. Checkout", text
// percent-encoded the same way in every language, and creates the order.
func testCheckoutHeaders(t *testing.T, s *shopProc) {
	resp, err := client.PostForm(s.url+"/checkout", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	id := h.Get("Cinetpay-Order-Id")
	if resp.StatusCode != http.StatusOK || !regexp.MustCompile(`^ord_[A-Za-z0-9]{8,}$`).MatchString(id) {
		t.Fatalf("checkout: %d, order id %q", resp.StatusCode, id)
	}
	want := map[string]string{
		"Cinetpay-Amount": productAmount, "Cinetpay-Currency": "XOF", "Cinetpay-Description": encodedName,
		"Cinetpay-Customer-Email": "aya.kouadio@example.test", "Cinetpay-Customer-Country": "CI",
		"Cinetpay-Metadata": "order%3D" + id,
	}
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"Cinetpay-Customer-Name", "Cinetpay-Customer-Surname", "Cinetpay-Customer-Phone-Number"} {
		if h.Get(k) == "" {
			t.Errorf("%s missing", k)
		}
	}
	o := s.order(t, id)
	if o.ID != id || o.Amount != 5000 || o.Currency != "XOF" || o.Status != "awaiting_payment" ||
		o.TransactionID != "" || len(o.Events) != 0 || len(o.Flags) != 0 {
		t.Fatalf("new order: %+v", o)
	}
	// a product the shop does not sell starts nothing
	resp, err = client.PostForm(s.url+"/checkout", url.Values{"product": {"caviar"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Cinetpay-Amount") != "" {
		t.Fatalf("unknown product: %d, amount %q", resp.StatusCode, resp.Header.Get("Cinetpay-Amount"))
	}
}

// adminPayment reads a payment through Caddy's admin API.
func adminPayment(t *testing.T, txid string) storage.Payment {
	t.Helper()
	resp, err := client.Get(adminURL + "/cinetpay/payments/" + adminSite + "/" + txid)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Payment storage.Payment `json:"payment"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("admin payment %s: %d %v", txid, resp.StatusCode, err)
	}
	return out.Payment
}

// caddyCheckout starts a payment through Caddy and returns the sandbox transaction and the
// shop's order id.
func caddyCheckout(t *testing.T, sb *sandbox.Server) (sandbox.Transaction, string) {
	t.Helper()
	resp, err := noRedirect.PostForm(siteURL+"/checkout", url.Values{"product": {"wax"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || loc == "" {
		t.Fatalf("checkout through Caddy: %d %q", resp.StatusCode, body)
	}
	for k := range resp.Header {
		if strings.HasPrefix(strings.ToLower(k), "cinetpay") {
			t.Errorf("%s reached the browser", k)
		}
	}
	var tx sandbox.Transaction
	for _, x := range sb.Transactions() {
		if x.PaymentURL == loc {
			tx = x
		}
	}
	if tx.TransactionID == "" {
		t.Fatalf("no sandbox transaction has payment_url %s", loc)
	}
	if tx.Amount != 5000 || tx.Currency != "XOF" || tx.Description != productName {
		t.Fatalf("sandbox transaction: %d %s %q", tx.Amount, tx.Currency, tx.Description)
	}
	p := adminPayment(t, tx.TransactionID)
	if !strings.HasPrefix(p.OrderID, "ord_") || p.Amount != 5000 {
		t.Fatalf("payment in Caddy: %+v", p)
	}
	return tx, p.OrderID
}

// testPaymentThroughCaddy: POST /checkout through Caddy → 303 to the sandbox → accepted → the
// delivery marks the shop's order paid with the event id; the return page shows it.
func testPaymentThroughCaddy(t *testing.T, s *shopProc, sb *sandbox.Server) {
	tx, id := caddyCheckout(t, sb)
	if o := s.order(t, id); o.Status != "awaiting_payment" || len(o.Events) != 0 {
		t.Fatalf("before payment: %+v", o)
	}
	if _, err := sb.Act(tx.TransactionID, "accept"); err != nil {
		t.Fatal(err)
	}
	var o order
	waitFor(t, "the order to be paid", func() bool { o = s.order(t, id); return o.Status == "paid" })
	p := adminPayment(t, tx.TransactionID)
	if p.State != storage.StateAccepted || len(p.History) == 0 {
		t.Fatalf("payment in Caddy: %+v", p)
	}
	event := p.History[len(p.History)-1].EventID
	if event == "" || len(o.Events) != 1 || o.Events[0] != event || o.TransactionID != tx.TransactionID ||
		len(o.Flags) != 0 {
		t.Fatalf("paid order %+v, event %q", o, event)
	}

	resp, err := noRedirect.Get(siteURL + "/cinetpay/return?transaction_id=" + tx.TransactionID)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="payment-status" data-status="ACCEPTED">accepté<`) ||
		!strings.Contains(page, `id="order-status" data-status="paid">payée<`) || !strings.Contains(page, id) {
		t.Fatalf("return page: %d %s", resp.StatusCode, page)
	}

	// a refused payment: delivered too, the order is not paid
	tx2, id2 := caddyCheckout(t, sb)
	if _, err := sb.Act(tx2.TransactionID, "refuse"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refusal", func() bool { o = s.order(t, id2); return o.Status == "payment_failed" })
	if len(o.Events) != 1 || o.TransactionID != "" {
		t.Fatalf("refused order: %+v", o)
	}
	// the first order got nothing more
	if o := s.order(t, id); o.Status != "paid" || len(o.Events) != 1 {
		t.Fatalf("paid order changed: %+v", o)
	}
}

// testDecimalAmounts: CinetPay's /check may write the amount as "5000.00", "5000.0" or "05000";
// the module delivers the integer it compared, so the shop, comparing Cinetpay-Amount with its
// own integer amount, marks the order paid and flags nothing.
func testDecimalAmounts(t *testing.T, s *shopProc, sb *sandbox.Server) {
	t.Cleanup(func() { sb.SetFaults(sandbox.Faults{}) })
	for _, format := range []string{"%d.00", "%d.0", "0%d"} {
		sb.SetFaults(sandbox.Faults{AmountFormat: format})
		tx, id := caddyCheckout(t, sb)
		if _, err := sb.Act(tx.TransactionID, "accept"); err != nil {
			t.Fatal(err)
		}
		var o order
		waitFor(t, "the order to be paid", func() bool { o = s.order(t, id); return o.Status == "paid" })
		if len(o.Flags) != 0 || len(o.Events) != 1 {
			t.Fatalf("%s: paid order %+v", fmt.Sprintf(format, 5000), o)
		}
		if p := adminPayment(t, tx.TransactionID); p.Confirmed == nil || p.Confirmed.Amount != "5000" ||
			p.Confirmed.RawAmount != fmt.Sprintf(format, 5000) {
			t.Fatalf("%s: confirmation %+v", fmt.Sprintf(format, 5000), p.Confirmed)
		}
	}
}

// assertUntouched fails unless the order is as created.
func assertUntouched(t *testing.T, s *shopProc, id, after string) {
	t.Helper()
	if o := s.order(t, id); o.Status != "awaiting_payment" || o.TransactionID != "" || len(o.Events) != 0 || len(o.Flags) != 0 {
		t.Fatalf("after %s the order changed: %+v", after, o)
	}
}

// testRefusedDeliveries: every delivery breaking a rule of the README's "2. Deliveries" is answered 401 (or 403) and
// changes nothing; the same delivery signed correctly is then applied.
func testRefusedDeliveries(t *testing.T, s *shopProc) {
	id := s.checkout(t)
	r := newResult(id)
	now := time.Now()
	cases := []struct {
		name string
		h    func() http.Header
	}{
		{"no signature", func() http.Header { return r.headers() }},
		{"tampered amount", func() http.Header {
			h := r.signed(t, defaultSign)
			h.Set("Cinetpay-Amount", "50")
			return h
		}},
		{"tampered status", func() http.Header {
			h := r2(r, func(x *result) { x.status = "REFUSED" }).signed(t, defaultSign)
			h.Set("Cinetpay-Status", "ACCEPTED")
			return h
		}},
		{"wrong key", func() http.Header { o := defaultSign; o.key = wrongKey; return r.signed(t, o) }},
		{"unknown keyid", func() http.Header { o := defaultSign; o.keyID = "shop9"; return r.signed(t, o) }},
		{"expired", func() http.Header { o := defaultSign; o.created = now.Add(-10 * time.Minute); return r.signed(t, o) }},
		{"created in the future", func() http.Header { o := defaultSign; o.created = now.Add(10 * time.Minute); return r.signed(t, o) }},
		{"return tag on a delivery", func() http.Header { o := defaultSign; o.tag = httpsig.TagReturn; return r.signed(t, o) }},
		{"sandbox result to a live shop", func() http.Header {
			return r2(r, func(x *result) { x.env = "sandbox" }).signed(t, defaultSign)
		}},
		{"unknown environment", func() http.Header {
			return r2(r, func(x *result) { x.env = "staging" }).signed(t, defaultSign)
		}},
		{"event id not covered", func() http.Header {
			return r2(r, func(x *result) { x.event = "" }).signed(t, defaultSign)
		}},
		{"uncovered Cinetpay header", func() http.Header {
			h := r.signed(t, defaultSign)
			h.Set("Cinetpay-Refund", "none")
			return h
		}},
		{"uncovered Cinetpay_ header", func() http.Header {
			h := r2(r, func(x *result) { x.status = "REFUSED" }).signed(t, defaultSign)
			h["Cinetpay_Status"] = []string{"ACCEPTED"}
			return h
		}},
		{"wrong label", func() http.Header {
			h := r.signed(t, defaultSign)
			h.Set("Signature-Input", "shop="+strings.TrimPrefix(h.Get("Signature-Input"), "cinetpay="))
			h.Set("Signature", "shop="+strings.TrimPrefix(h.Get("Signature"), "cinetpay="))
			return h
		}},
		{"alg rsa-pss-sha512", func() http.Header {
			h := r.signed(t, defaultSign)
			resign(t, h, http.MethodPost, signingKey, func(p string) string {
				return strings.Replace(p, `alg="hmac-sha256"`, `alg="rsa-pss-sha512"`, 1)
			})
			return h
		}},
		{"alg as a token", func() http.Header {
			h := r.signed(t, defaultSign)
			resign(t, h, http.MethodPost, signingKey, func(p string) string {
				return strings.Replace(p, `alg="hmac-sha256"`, `alg=hmac-sha256`, 1)
			})
			return h
		}},
		{"created as a string", func() http.Header {
			h := r.signed(t, defaultSign)
			resign(t, h, http.MethodPost, signingKey, func(p string) string {
				return regexp.MustCompile(`;created=(\d+)`).ReplaceAllString(p, `;created="$1"`)
			})
			return h
		}},
		{"signed as a GET", func() http.Header { o := defaultSign; o.method = http.MethodGet; return r.signed(t, o) }},
		{"malformed Signature-Input", func() http.Header {
			h := r.signed(t, defaultSign)
			h.Set("Signature-Input", strings.TrimSuffix(h.Get("Signature-Input"), `"`))
			return h
		}},
	}
	for _, c := range cases {
		code, body := s.post(t, c.h())
		if !refused(code) {
			t.Errorf("%s: %d %q, want 401 or 403", c.name, code, body)
		}
		assertUntouched(t, s, id, c.name)
	}
	// the helper that resigns is right: with no edit it reproduces the module's signature
	h := r.signed(t, defaultSign)
	want := h.Get("Signature")
	resign(t, h, http.MethodPost, signingKey, func(p string) string { return p })
	if h.Get("Signature") != want {
		t.Fatal("resign does not reproduce httpsig's signature")
	}
	// and the very delivery the cases above broke is accepted
	if code, body := s.post(t, r.signed(t, defaultSign)); code != http.StatusOK {
		t.Fatalf("valid delivery: %d %q", code, body)
	}
	if o := s.order(t, id); o.Status != "paid" || len(o.Events) != 1 || o.Events[0] != r.event {
		t.Fatalf("after the valid delivery: %+v", o)
	}
}

func r2(r result, change func(*result)) result {
	change(&r)
	return r
}

// testAcceptedSignatures: what RFC 9421 and RFC 8941 allow, and the module could send, verifies:
// another label beside "cinetpay" (on its own header line), unknown signature parameters (part
// of the signature base), clock skew within the 60 s allowed.
func testAcceptedSignatures(t *testing.T, s *shopProc) {
	cases := []struct {
		name string
		h    func(r result) http.Header
	}{
		{"another label on another line", func(r result) http.Header {
			h := r.signed(t, defaultSign)
			h["Signature-Input"] = append([]string{`other=("@method");created=1;keyid="x"`}, h["Signature-Input"]...)
			h["Signature"] = append([]string{"other=:AAAA:"}, h["Signature"]...)
			return h
		}},
		{"unknown parameters", func(r result) http.Header {
			h := r.signed(t, defaultSign)
			resign(t, h, http.MethodPost, signingKey, func(p string) string { return p + `;x-note="a \"b\" \\ c";flag;n=-12;d=4.5` })
			return h
		}},
		{"created 30 s ahead", func(r result) http.Header {
			o := defaultSign
			o.created = time.Now().Add(30 * time.Second)
			return r.signed(t, o)
		}},
		{"expired 30 s ago", func(r result) http.Header {
			o := defaultSign
			o.created = time.Now().Add(-httpsig.Validity - 30*time.Second)
			return r.signed(t, o)
		}},
	}
	for _, c := range cases {
		id := s.checkout(t)
		r := newResult(id)
		if code, body := s.post(t, c.h(r)); code != http.StatusOK {
			t.Errorf("%s: %d %q", c.name, code, body)
			continue
		}
		if o := s.order(t, id); o.Status != "paid" || len(o.Events) != 1 {
			t.Errorf("%s: %+v", c.name, o)
		}
	}
}

// testRedeliveryAndRotation: a redelivered event (the same request, or signed again) is answered
// 2xx and applied once; the previous key of SIGNING_KEYS verifies as well as the current one.
func testRedeliveryAndRotation(t *testing.T, s *shopProc) {
	id := s.checkout(t)
	r := newResult(id)
	h := r.signed(t, defaultSign)
	for i := range 2 {
		if code, body := s.post(t, h); code < 200 || code > 299 {
			t.Fatalf("delivery %d: %d %q", i+1, code, body)
		}
	}
	o := defaultSign
	o.created = time.Now().Add(2 * time.Second)
	if code, body := s.post(t, r.signed(t, o)); code < 200 || code > 299 {
		t.Fatalf("re-signed redelivery: %d %q", code, body)
	}
	if o := s.order(t, id); o.Status != "paid" || len(o.Events) != 1 || o.Events[0] != r.event {
		t.Fatalf("after redeliveries: %+v", o)
	}

	// a refusal redelivered after a later success does not undo it
	id2 := s.checkout(t)
	refusal := r2(newResult(id2), func(x *result) { x.status = "REFUSED" })
	refusalH := refusal.signed(t, defaultSign)
	success := newResult(id2)
	for i, h := range []http.Header{refusalH, success.signed(t, defaultSign), refusalH} {
		if code, body := s.post(t, h); code != http.StatusOK {
			t.Fatalf("delivery %d: %d %q", i+1, code, body)
		}
	}
	if o := s.order(t, id2); o.Status != "paid" || strings.Join(o.Events, ",") != refusal.event+","+success.event {
		t.Fatalf("refused then paid, refusal redelivered: %+v", o)
	}

	// key rotation: the old key and the new one both verify
	for _, k := range []struct{ id, key string }{{oldKeyID, oldKey}, {keyID, signingKey}} {
		id := s.checkout(t)
		r := newResult(id)
		o := defaultSign
		o.keyID, o.key = k.id, k.key
		if code, body := s.post(t, r.signed(t, o)); code != http.StatusOK {
			t.Fatalf("key %s: %d %q", k.id, code, body)
		}
		if o := s.order(t, id); o.Status != "paid" || len(o.Events) != 1 {
			t.Fatalf("key %s: %+v", k.id, o)
		}
	}
	// a key under the other key's id does not
	id3 := s.checkout(t)
	o = defaultSign
	o.keyID, o.key = oldKeyID, signingKey
	if code, _ := s.post(t, newResult(id3).signed(t, o)); !refused(code) {
		t.Fatalf("key under the wrong id: %d", code)
	}
	assertUntouched(t, s, id3, "a key under the wrong id")
}

// testMismatch: a valid delivery whose amount or currency differs from the shop's order, or for
// an order the shop does not know, is acknowledged (so the module stops retrying), recorded and
// not applied.
func testMismatch(t *testing.T, s *shopProc) {
	id := s.checkout(t)
	amount := r2(newResult(id), func(x *result) { x.amount = "4995" })
	currency := r2(newResult(id), func(x *result) { x.currency = "XAF" })
	for _, r := range []result{amount, currency, amount} { // the last one is a redelivery
		if code, body := s.post(t, r.signed(t, defaultSign)); code < 200 || code > 299 {
			t.Fatalf("%s %s: %d %q", r.amount, r.currency, code, body)
		}
	}
	o := s.order(t, id)
	if o.Status != "awaiting_payment" || o.TransactionID != "" {
		t.Fatalf("a mismatched result was applied: %+v", o)
	}
	if strings.Join(o.Events, ",") != amount.event+","+currency.event || len(o.Flags) != 2 ||
		o.Flags[0].EventID != amount.event || o.Flags[1].EventID != currency.event ||
		!strings.Contains(o.Flags[0].Reason, "4995") || !strings.Contains(o.Flags[1].Reason, "XAF") {
		t.Fatalf("mismatches not recorded once each: %+v", o)
	}
	// the right amount still pays the order
	if code, _ := s.post(t, newResult(id).signed(t, defaultSign)); code != http.StatusOK {
		t.Fatalf("valid delivery: %d", code)
	}
	if o := s.order(t, id); o.Status != "paid" || len(o.Events) != 3 || len(o.Flags) != 2 {
		t.Fatalf("after the valid delivery: %+v", o)
	}

	// an order the shop does not have: acknowledged, nothing created
	if code, body := s.post(t, newResult("ord_unknown42").signed(t, defaultSign)); code < 200 || code > 299 {
		t.Fatalf("unknown order: %d %q", code, body)
	}
	if code, _ := s.do(t, http.MethodGet, "/orders/ord_unknown42", nil); code != http.StatusNotFound {
		t.Fatalf("unknown order created: %d", code)
	}
}

// testStatuses: REFUSED and EXPIRED leave the order unpaid (a later ACCEPTED wins), MISMATCH and
// DUPLICATE are flagged for the merchant and never pay.
func testStatuses(t *testing.T, s *shopProc) {
	post := func(r result) {
		t.Helper()
		if code, body := s.post(t, r.signed(t, defaultSign)); code != http.StatusOK {
			t.Fatalf("%s: %d %q", r.status, code, body)
		}
	}
	id := s.checkout(t)
	post(r2(newResult(id), func(x *result) { x.status = "EXPIRED" }))
	if o := s.order(t, id); o.Status != "payment_failed" || len(o.Events) != 1 {
		t.Fatalf("expired: %+v", o)
	}
	accepted := newResult(id)
	post(accepted)
	post(r2(newResult(id), func(x *result) { x.status = "REFUSED" })) // another transaction, later
	dup := r2(newResult(id), func(x *result) { x.status = "DUPLICATE" })
	post(dup)
	o := s.order(t, id)
	if o.Status != "paid" || o.TransactionID != accepted.tx || len(o.Events) != 4 ||
		len(o.Flags) != 1 || o.Flags[0].EventID != dup.event || o.Flags[0].Status != "DUPLICATE" ||
		o.Flags[0].TransactionID != dup.tx {
		t.Fatalf("expired, accepted, refused, duplicate: %+v", o)
	}

	id2 := s.checkout(t)
	mismatch := r2(newResult(id2), func(x *result) { x.status = "MISMATCH"; x.amount = "4000" })
	post(mismatch)
	o = s.order(t, id2)
	if o.Status == "paid" || len(o.Flags) != 1 || o.Flags[0].EventID != mismatch.event || o.Flags[0].Status != "MISMATCH" {
		t.Fatalf("mismatch: %+v", o)
	}
}

// testReturnPage: the return page shows the verified status and changes nothing; an unverified
// one shows no status.
func testReturnPage(t *testing.T, s *shopProc) {
	id := s.checkout(t)
	r := r2(newResult(id), func(x *result) { x.event = "" })
	ret := signOpts{keyID: keyID, key: signingKey, tag: httpsig.TagReturn, method: http.MethodGet}
	code, page := s.do(t, http.MethodGet, "/cinetpay/return?transaction_id="+r.tx, r.signed(t, ret))
	if code != http.StatusOK || !strings.Contains(page, `id="payment-status" data-status="ACCEPTED">accepté<`) ||
		!strings.Contains(page, `id="order-status" data-status="awaiting_payment">en attente de paiement<`) {
		t.Fatalf("return page: %d %s", code, page)
	}
	assertUntouched(t, s, id, "a return page")

	for name, h := range map[string]http.Header{
		"delivery signature": r2(r, func(x *result) { x.event = "evt-return" }).signed(t, signOpts{
			keyID: keyID, key: signingKey, tag: httpsig.TagNotify, method: http.MethodGet}),
		"wrong key": r.signed(t, signOpts{keyID: keyID, key: wrongKey, tag: httpsig.TagReturn, method: http.MethodGet}),
		"unsigned":  r.headers(),
	} {
		code, page := s.do(t, http.MethodGet, "/cinetpay/return?transaction_id="+r.tx, h)
		if code != http.StatusOK || strings.Contains(page, "ACCEPTED") || strings.Contains(page, "accepté") ||
			!strings.Contains(page, `id="unverified"`) {
			t.Errorf("%s: %d %s", name, code, page)
		}
	}
	assertUntouched(t, s, id, "unverified return pages")
}

// ---- the store -----------------------------------------------------------------------------------

// storePaths returns the shop's store file, and a path that, made a non-empty directory, makes
// every write to the store fail: the temporary file each JSON shop renames over its store (see
// update/writeAtomic in main.go and server.js, write_atomic in router.php), and SQLite's rollback
// journal for the Python shop (SQLite then fails with a disk I/O error, as on a broken disk).
func (s *shopProc) storePaths() (store, blocker string) {
	switch s.lang {
	case "go":
		return filepath.Join(s.data, "orders.json"), filepath.Join(s.data, "orders.json.tmp")
	case "node", "php":
		return filepath.Join(s.data, "orders.json"), filepath.Join(s.data, fmt.Sprintf("orders.json.%d.tmp", s.pid))
	case "python":
		return filepath.Join(s.data, "shop.sqlite3"), filepath.Join(s.data, "shop.sqlite3-journal")
	}
	panic("unknown shop " + s.lang)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ok2xx(code int) bool { return code >= 200 && code <= 299 }

// testStoreWriteFailure: when the store cannot be written (a full or broken disk), a delivery is
// answered non-2xx (the module retries it), the store is left byte for byte as it was, a checkout
// is answered 500 and the shop keeps running; once the disk is back, the same delivery is applied
// exactly once.
func testStoreWriteFailure(t *testing.T, s *shopProc) {
	id := s.checkout(t)
	store, blocker := s.storePaths()
	before := readFile(t, store)
	if err := os.Mkdir(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(blocker) })
	if err := os.WriteFile(filepath.Join(blocker, "keep"), []byte("a non-empty directory"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := newResult(id)
	h := r.signed(t, defaultSign)
	if code, body := s.post(t, h); ok2xx(code) {
		t.Fatalf("delivery while the store cannot be written: %d %q, want non-2xx", code, body)
	}
	resp, err := client.PostForm(s.url+"/checkout", url.Values{"product": {"wax"}})
	if err != nil {
		t.Fatalf("checkout while the store cannot be written: %v (did the shop die?)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Cinetpay-Amount") != "" {
		t.Fatalf("checkout while the store cannot be written: %d, amount %q, want 500 and no intent",
			resp.StatusCode, resp.Header.Get("Cinetpay-Amount"))
	}
	if after := readFile(t, store); !bytes.Equal(after, before) {
		t.Fatalf("the store changed while it could not be written:\nbefore %q\nafter  %q", before, after)
	}
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}

	// the disk is back: the shop still runs, the order was not touched, the redelivery applies
	assertUntouched(t, s, id, "a delivery that could not be stored")
	code, body := s.post(t, h)
	if code != http.StatusOK || !strings.Contains(body, "order paid") {
		t.Fatalf("redelivery: %d %q", code, body)
	}
	if code, body := s.post(t, r.signed(t, defaultSign)); !ok2xx(code) || !strings.Contains(body, "already applied") {
		t.Fatalf("second redelivery: %d %q", code, body)
	}
	if o := s.order(t, id); o.Status != "paid" || o.TransactionID != r.tx || len(o.Events) != 1 || o.Events[0] != r.event {
		t.Fatalf("after the redelivery: %+v", o)
	}
	if _, err := os.Stat(blocker); !os.IsNotExist(err) && s.lang != "python" { // SQLite deletes its journal itself
		t.Errorf("temporary file left behind: %v", err)
	}
}

// testConcurrentDeliveries: one signed delivery POSTed ten times at once (the module never does,
// but a proxy retrying or two Caddy worker sets could) is answered 2xx every time and applied once.
func testConcurrentDeliveries(t *testing.T, s *shopProc) {
	id := s.checkout(t)
	r := newResult(id)
	h := r.signed(t, defaultSign)
	const n = 10
	codes, bodies, errs := make([]int, n), make([]string, n), make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			req, err := http.NewRequest(http.MethodPost, s.url+"/cinetpay/webhook", nil)
			if err != nil {
				errs[i] = err
				return
			}
			req.Header = h.Clone()
			resp, err := client.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			codes[i], bodies[i] = resp.StatusCode, string(b)
		})
	}
	close(start)
	wg.Wait()
	paid := 0
	for i := range n {
		switch {
		case errs[i] != nil:
			t.Errorf("delivery %d: %v", i, errs[i])
		case !ok2xx(codes[i]):
			t.Errorf("delivery %d: %d %q", i, codes[i], bodies[i])
		case strings.Contains(bodies[i], "order paid"):
			paid++
		case !strings.Contains(bodies[i], "already applied"):
			t.Errorf("delivery %d: %q, want order paid or already applied", i, bodies[i])
		}
	}
	if paid != 1 {
		t.Errorf("%d of %d concurrent deliveries applied the event, want 1", paid, n)
	}
	if o := s.order(t, id); o.Status != "paid" || o.TransactionID != r.tx || len(o.Events) != 1 ||
		o.Events[0] != r.event || len(o.Flags) != 0 {
		t.Fatalf("after %d concurrent deliveries: %+v", n, o)
	}
}

// testPaidTwice: an ACCEPTED for an order already paid by another transaction leaves the order
// paid by the first one, with a flag to refund the second, and its event recorded.
func testPaidTwice(t *testing.T, s *shopProc) {
	id := s.checkout(t)
	first, second := newResult(id), newResult(id)
	for _, r := range []result{first, second, second} { // the last one is a redelivery
		if code, body := s.post(t, r.signed(t, defaultSign)); code != http.StatusOK {
			t.Fatalf("%s %s: %d %q", r.tx, r.event, code, body)
		}
	}
	o := s.order(t, id)
	if o.Status != "paid" || o.TransactionID != first.tx || strings.Join(o.Events, ",") != first.event+","+second.event {
		t.Fatalf("paid by %s, then accepted %s: %+v", first.tx, second.tx, o)
	}
	if len(o.Flags) != 1 || o.Flags[0].EventID != second.event || o.Flags[0].TransactionID != second.tx ||
		o.Flags[0].Status != "ACCEPTED" || o.Flags[0].Reason != "paid twice: refund "+second.tx {
		t.Fatalf("paid twice, flags: %+v", o.Flags)
	}
	// the paying transaction's event again (replayed under a new event id): still paid, no flag
	again := r2(newResult(id), func(x *result) { x.tx = first.tx })
	if code, body := s.post(t, again.signed(t, defaultSign)); code != http.StatusOK {
		t.Fatalf("accepted again by %s: %d %q", first.tx, code, body)
	}
	if o := s.order(t, id); o.Status != "paid" || o.TransactionID != first.tx || len(o.Flags) != 1 || len(o.Events) != 3 {
		t.Fatalf("accepted again by the paying transaction: %+v", o)
	}
}

// testUnknownOrderRestored: a delivery for an order the shop does not have is acknowledged but
// not recorded, so that once the order is back (restored from a backup), the same event (replayed
// through Caddy's admin API) is applied, not answered "already applied".
func testUnknownOrderRestored(t *testing.T, s *shopProc) {
	id := s.checkout(t)
	saved := s.removeOrder(t, id)
	if code, _ := s.do(t, http.MethodGet, "/orders/"+id, nil); code != http.StatusNotFound {
		t.Fatalf("removed order: %d", code)
	}
	r := newResult(id)
	if code, body := s.post(t, r.signed(t, defaultSign)); !ok2xx(code) || strings.Contains(body, "order paid") {
		t.Fatalf("delivery for an unknown order: %d %q", code, body)
	}
	if code, _ := s.do(t, http.MethodGet, "/orders/"+id, nil); code != http.StatusNotFound {
		t.Fatalf("a delivery created the unknown order: %d", code)
	}
	s.restoreOrder(t, id, saved)
	assertUntouched(t, s, id, "the restore")
	code, body := s.post(t, r.signed(t, defaultSign))
	if code != http.StatusOK || !strings.Contains(body, "order paid") {
		t.Fatalf("the event replayed after the restore: %d %q, want it applied", code, body)
	}
	if o := s.order(t, id); o.Status != "paid" || o.TransactionID != r.tx || len(o.Events) != 1 || o.Events[0] != r.event {
		t.Fatalf("after the replay: %+v", o)
	}
}

// testUnreadableStore: a store that exists but cannot be opened (a unix socket in its place here:
// open fails with ENXIO, as it would with EACCES, even for root) is not taken for an empty one: a
// delivery is answered non-2xx and the store is not replaced; once the store is back, the same
// delivery is applied once.
func testUnreadableStore(t *testing.T, s *shopProc) {
	id := s.checkout(t)
	store, _ := s.storePaths()
	saved := store + ".saved"
	if err := os.Rename(store, saved); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", store)
	if err != nil {
		t.Fatal(err)
	}
	r := newResult(id)
	code, body := s.post(t, r.signed(t, defaultSign))
	fi, statErr := os.Lstat(store)
	l.Close() // removes the socket
	if ok2xx(code) {
		t.Errorf("delivery while the store cannot be opened: %d %q, want non-2xx", code, body)
	}
	if statErr != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("the store was replaced while it could not be opened: %v %v", statErr, fi)
	}
	os.Remove(store)
	if err := os.Rename(saved, store); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	assertUntouched(t, s, id, "a delivery while the store could not be opened")
	if code, body := s.post(t, r.signed(t, defaultSign)); code != http.StatusOK || !strings.Contains(body, "order paid") {
		t.Fatalf("redelivery: %d %q", code, body)
	}
	if o := s.order(t, id); o.Status != "paid" || len(o.Events) != 1 || o.Events[0] != r.event {
		t.Fatalf("after the redelivery: %+v", o)
	}
}

// removeOrder takes an order out of the shop's store (as if lost) while the shop is idle, and
// returns it; restoreOrder puts it back into the store as it is then.
func (s *shopProc) removeOrder(t *testing.T, id string) string {
	t.Helper()
	if s.lang == "python" {
		return s.sqlite(t, "remove", id, "")
	}
	store, _ := s.storePaths()
	top, orders := readJSONStore(t, store)
	saved, ok := orders[id]
	if !ok {
		t.Fatalf("order %s not in %s", id, store)
	}
	delete(orders, id)
	writeJSONStore(t, store, top, orders)
	return string(saved)
}

func (s *shopProc) restoreOrder(t *testing.T, id, saved string) {
	t.Helper()
	if s.lang == "python" {
		s.sqlite(t, "restore", id, saved)
		return
	}
	store, _ := s.storePaths()
	top, orders := readJSONStore(t, store)
	orders[id] = json.RawMessage(saved)
	writeJSONStore(t, store, top, orders)
}

func readJSONStore(t *testing.T, path string) (top, orders map[string]json.RawMessage) {
	t.Helper()
	b := readFile(t, path)
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	orders = map[string]json.RawMessage{}
	if raw := top["orders"]; string(raw) != "[]" { // PHP writes an empty map as []
		if err := json.Unmarshal(raw, &orders); err != nil {
			t.Fatalf("%s orders: %v", path, err)
		}
	}
	return top, orders
}

func writeJSONStore(t *testing.T, path string, top, orders map[string]json.RawMessage) {
	t.Helper()
	o, err := json.Marshal(orders)
	if err != nil {
		t.Fatal(err)
	}
	top["orders"] = o
	b, err := json.MarshalIndent(top, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".test-tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// sqlite removes an order row from the Python shop's database (printing it as JSON) or restores
// it, with Python's sqlite3 module (the test needs python3 for that shop anyway).
func (s *shopProc) sqlite(t *testing.T, op, id, saved string) string {
	t.Helper()
	const script = `
import json, sqlite3, sys
op, path, order_id, saved = sys.argv[1:5]
db = sqlite3.connect(path, timeout=30, isolation_level=None)
db.row_factory = sqlite3.Row
db.execute("BEGIN IMMEDIATE")
if op == "remove":
    row = db.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
    if row is None:
        sys.exit("no order " + order_id)
    db.execute("DELETE FROM orders WHERE id = ?", (order_id,))
    print(json.dumps(dict(row)))
else:
    row = json.loads(saved)
    db.execute("INSERT INTO orders (%s) VALUES (%s)" % (", ".join(row), ", ".join("?" * len(row))), list(row.values()))
db.execute("COMMIT")
`
	store, _ := s.storePaths()
	py := requireTool(t, "python3", "apt-get install -y python3")
	out, err := exec.Command(py, "-c", script, op, store, id, saved).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite %s %s: %v\n%s", op, id, err, out)
	}
	return strings.TrimSpace(string(out))
}
