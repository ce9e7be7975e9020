// Package demo tests the offline demo (examples/demo/Caddyfile) with real Caddy run in-process:
// a customer's HTTP flow, and the same in headless Chromium with screenshots.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/chromedp/chromedp"

	_ "github.com/caddy-cinetpay/caddy-cinetpay"
	_ "github.com/caddy-cinetpay/caddy-cinetpay/examples/demo/shop"
	_ "github.com/caddy-cinetpay/caddy-cinetpay/sandbox"
)

// Ports of this package's tests. Other test packages use 2999/9080 and 3999/9180 in parallel.
const (
	adminPort   = 4999
	shopPort    = 18080
	sandboxPort = 18081
	backendPort = 18082
)

var (
	shopURL    = fmt.Sprintf("http://localhost:%d", shopPort)
	sandboxURL = fmt.Sprintf("http://127.0.0.1:%d", sandboxPort)
)

// stepTimeout bounds each browser step and each wait; generous, nothing here measures speed.
const stepTimeout = 60 * time.Second

// startDemo loads a demo Caddyfile (Caddyfile: CinetPay's current API; Caddyfile.v2: Checkout
// v2) into an in-process Caddy with this package's ports
// and data dir (a fresh one unless given), and unloads it at the end of the test so the stores
// close before the temporary directories are removed.
func startDemo(t *testing.T, caddyfile, data string) string {
	t.Helper()
	if data == "" {
		data = t.TempDir()
	}
	t.Setenv("DEMO_ADMIN_PORT", fmt.Sprint(adminPort))
	t.Setenv("DEMO_PORT", fmt.Sprint(shopPort))
	t.Setenv("DEMO_SANDBOX_PORT", fmt.Sprint(sandboxPort))
	t.Setenv("DEMO_SHOP_PORT", fmt.Sprint(backendPort))
	t.Setenv("DEMO_DATA", data)
	cfg, err := os.ReadFile(caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	tester := caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{
		AdminPort: adminPort, LoadRequestTimeout: 30 * time.Second, TestRequestTimeout: 30 * time.Second})
	t.Cleanup(func() { unloadCaddy(t) })
	tester.InitServer(string(cfg), "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	return data
}

// unloadCaddy loads an empty config, stopping the demo's sites and closing their stores.
func unloadCaddy(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/load", adminPort),
		strings.NewReader(fmt.Sprintf(`{"admin":{"listen":"localhost:%d"}}`, adminPort)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: stepTimeout}).Do(req)
	if err != nil {
		t.Logf("unloading Caddy: %v", err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// ordersJSON is the part of /orders.json the tests read.
type ordersJSON struct {
	Orders []struct {
		ID         string `json:"id"`
		Status     string `json:"status"`
		Amount     int64  `json:"amount"`
		Deliveries []struct {
			EventID  string `json:"event_id"`
			Status   string `json:"status"`
			Outcome  string `json:"outcome"`
			Verified bool   `json:"verified"`
		} `json:"deliveries"`
	} `json:"orders"`
	Rejected []json.RawMessage `json:"rejected"`
}

func getOrders(t *testing.T) ordersJSON {
	t.Helper()
	resp, err := (&http.Client{Timeout: stepTimeout}).Get(shopURL + "/orders.json")
	if err != nil {
		t.Fatalf("orders.json: %v", err)
	}
	defer resp.Body.Close()
	var v ordersJSON
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("orders.json: %v", err)
	}
	return v
}

// waitOrders waits until every order in want has its status in /orders.json (deliveries are
// asynchronous: they may land a moment after the return page).
func waitOrders(t *testing.T, want map[string]string) ordersJSON {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		v := getOrders(t)
		got := map[string]string{}
		for _, o := range v.Orders {
			got[o.ID] = o.Status
		}
		ok := true
		for id, st := range want {
			ok = ok && got[id] == st
		}
		if ok {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("orders are %v, want %v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deliveredStatus is the Cinetpay-Status of the delivery that gives an order its status.
var deliveredStatus = map[string]string{"paid": "ACCEPTED", "refused": "REFUSED", "expired": "EXPIRED"}

// assertOneDeliveryEach checks that the shop applied exactly one verified delivery per order,
// with the status that gave the order its wanted status, and rejected none.
func assertOneDeliveryEach(t *testing.T, v ordersJSON, want map[string]string) {
	t.Helper()
	seen := 0
	for _, o := range v.Orders {
		orderStatus, ok := want[o.ID]
		if !ok {
			continue
		}
		seen++
		status := deliveredStatus[orderStatus]
		n := 0
		for _, d := range o.Deliveries {
			if d.Outcome == "applied" {
				n++
				if !d.Verified || d.Status != status || d.EventID == "" {
					t.Errorf("order %s: applied delivery %+v, want a verified %s", o.ID, d, status)
				}
			}
		}
		if n != 1 {
			t.Errorf("order %s: %d deliveries applied, want exactly 1 (%+v)", o.ID, n, o.Deliveries)
		}
	}
	if seen != len(want) {
		t.Errorf("orders.json lists %d of the %d orders", seen, len(want))
	}
	if len(v.Rejected) != 0 {
		t.Errorf("the shop rejected deliveries: %s", v.Rejected)
	}
}

var orderIDRe = regexp.MustCompile(`id="order-id">(ord_[0-9a-f]+)<`)
var statusRe = regexp.MustCompile(`id="status" data-status="([A-Z]+)"`)

// TestDemoHTTP pays and refuses through the demo with a plain HTTP client, as a browser would,
// then reloads the config on the same data directory (a restart) and checks that the orders
// and the module's payments are kept.
func TestDemoHTTP(t *testing.T) {
	for _, d := range demos {
		t.Run(d.api, func(t *testing.T) { testDemoHTTP(t, d) })
	}
}

// demos are the demo's two Caddyfiles, and the sandbox's payment page path on each.
var demos = []struct{ api, caddyfile, page string }{
	{"v1", "Caddyfile", "/payment/"},
	{"v2", "Caddyfile.v2", "/pay/"},
}

func testDemoHTTP(t *testing.T, d struct{ api, caddyfile, page string }) {
	data := startDemo(t, d.caddyfile, "")
	noRedirect := &http.Client{Timeout: stepTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	client := &http.Client{Timeout: stepTimeout}

	pay := func(action, wantStatus string) (order, returnURL string) {
		t.Helper()
		resp, err := noRedirect.PostForm(shopURL+"/checkout", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, sandboxURL+d.page) {
			t.Fatalf("checkout: %d to %q, want 303 to the sandbox", resp.StatusCode, loc)
		}
		for name := range resp.Header {
			if strings.HasPrefix(strings.ToLower(name), "cinetpay-") {
				t.Errorf("%s reached the browser", name)
			}
		}
		// the customer's choice on the payment page; the answer is the auto-submitted return
		// form (Checkout v2), or a redirect to success_url / failed_url (current API)
		resp, err = client.PostForm(loc, url.Values{"action": {action}})
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if m := regexp.MustCompile(`id="return-form" method="post" action="([^"]+)"`).FindSubmatch(page); m != nil {
			action2 := strings.ReplaceAll(string(m[1]), "&amp;", "&")
			txid := regexp.MustCompile(`name="transaction_id" value="([A-Za-z0-9]+)"`).FindSubmatch(page)
			resp, err = client.PostForm(action2, url.Values{"transaction_id": {string(txid[1])}})
			if err != nil {
				t.Fatal(err)
			}
			page, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if st := statusRe.FindSubmatch(page); st == nil || string(st[1]) != wantStatus {
			t.Fatalf("return page: %d, status %q, want %s", resp.StatusCode, st, wantStatus)
		}
		om := orderIDRe.FindSubmatch(page)
		if om == nil {
			t.Fatalf("no order id on the return page: %s", page)
		}
		return string(om[1]), resp.Request.URL.String()
	}
	paid, paidReturn := pay("accept", "ACCEPTED")
	refused, _ := pay("refuse", "REFUSED")
	want := map[string]string{paid: "paid", refused: "refused"}
	assertOneDeliveryEach(t, waitOrders(t, want), want)

	// CinetPay writing the amount as "N.00", "N.0" or "0N": the shop still sees its integer
	decimals := map[string]string{}
	for _, format := range []string{"%d.00", "%d.0", "0%d"} {
		setSandboxFaults(t, fmt.Sprintf(`{"amount_format":%q}`, format))
		order, _ := pay("accept", "ACCEPTED")
		decimals[order] = "paid"
	}
	setSandboxFaults(t, `{}`)
	assertOneDeliveryEach(t, waitOrders(t, decimals), decimals)

	// a restart on the same data: orders, applied event ids and payments are kept
	unloadCaddy(t)
	startDemo(t, d.caddyfile, data)
	v := getOrders(t)
	if len(v.Orders) != 2+len(decimals) {
		t.Fatalf("after a restart: %d orders, want %d", len(v.Orders), 2+len(decimals))
	}
	assertOneDeliveryEach(t, waitOrders(t, want), want)
	resp, err := client.Get(paidReturn)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if st := statusRe.FindSubmatch(page); st == nil || string(st[1]) != "ACCEPTED" {
		t.Fatalf("return page after a restart: %q", st)
	}
}

// setSandboxFaults sets the sandbox's fault knobs through its control API.
func setSandboxFaults(t *testing.T, faults string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, sandboxURL+"/_sandbox/faults", strings.NewReader(faults))
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: stepTimeout}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		t.Fatalf("sandbox faults %s: %d %s", faults, resp.StatusCode, body)
	}
}

// findChromium looks for a Chromium or Chrome on PATH.
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// screenshotDir is where the browser test saves its screenshots: $CINETPAY_SCREENSHOTS, or
// examples/demo/screenshots.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("CINETPAY_SCREENSHOTS")
	if dir == "" {
		dir = "screenshots"
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// browser drives one headless Chromium tab.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string
}

func newBrowser(t *testing.T, chrome string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox, // as root, in a container
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true), // this machine's network is closed
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	// Closing waits for the browser to exit, before its user data dir is removed.
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// The first run starts the browser: no timeout on its context (it would bound the browser).
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx, chromedp.Navigate("about:blank")) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting %s: %v", chrome, err)
		}
	case <-time.After(stepTimeout):
		t.Fatalf("starting %s: no answer within %s", chrome, stepTimeout)
	}
	return &browser{t: t, ctx: ctx}
}

// do runs steps with the step timeout.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression that yields a string.
func (b *browser) eval(expr string) (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[string](expr))
}

// waitPage waits until the page's URL starts with prefix and the element sel exists (and, if
// text is set, holds exactly that text). Errors while the page navigates are retried.
func (b *browser) waitPage(prefix, sel, text string) string {
	b.t.Helper()
	expr := fmt.Sprintf(`(() => { const e = document.querySelector(%q);
		return location.href + "\n" + (document.readyState === "complete" && e ? "found:" + e.textContent.trim() : ""); })()`, sel)
	deadline := time.Now().Add(stepTimeout)
	var last string
	var lastErr error
	for time.Now().Before(deadline) {
		v, err := b.eval(expr)
		lastErr = err
		if err == nil {
			last = v
			href, state, _ := strings.Cut(v, "\n")
			if strings.HasPrefix(href, prefix) && strings.HasPrefix(state, "found:") &&
				(text == "" || strings.TrimPrefix(state, "found:") == text) {
				return href
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("waiting for %s on %s (text %q): last seen %q, %v", sel, prefix, text, last, lastErr)
	return ""
}

// text returns the trimmed text of the element sel ("" if absent).
func (b *browser) text(sel string) string {
	b.t.Helper()
	v, err := b.eval(fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? "").trim()`, sel))
	if err != nil {
		b.t.Fatalf("reading %s: %v", sel, err)
	}
	return v
}

// attr returns the attribute name of the element sel ("" if absent).
func (b *browser) attr(sel, name string) string {
	b.t.Helper()
	v, err := b.eval(fmt.Sprintf(`document.querySelector(%q)?.getAttribute(%q) ?? ""`, sel, name))
	if err != nil {
		b.t.Fatalf("reading %s of %s: %v", name, sel, err)
	}
	return v
}

// shot saves a PNG of the whole page.
func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}

// TestBrowserDemo clicks through the demo in headless Chromium: a paid order and a refused one,
// then the orders page, saving a screenshot of each page.
func TestBrowserDemo(t *testing.T) {
	chrome := requireChromium(t)
	for _, d := range demos {
		t.Run(d.api, func(t *testing.T) { testBrowserDemo(t, chrome, d.caddyfile, d.page) })
	}
}

func testBrowserDemo(t *testing.T, chrome, caddyfile, pagePath string) {
	startDemo(t, caddyfile, "")
	b := newBrowser(t, chrome)
	b.dir = filepath.Join(screenshotDir(t), filepath.Base(t.Name()))
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()

	// 1. the shop
	b.do("opening the shop", chromedp.Navigate(shopURL+"/"))
	b.waitPage(shopURL+"/", "#pay", "")
	b.shot("1-shop.png")

	// 2. pay → the sandbox's payment page
	b.do("clicking Pay", chromedp.Click(chromedp.CSS("#pay")))
	b.waitPage(sandboxURL+pagePath, "#accept", "")
	if got := b.text("#amount"); got != "5000 XOF" {
		t.Errorf("sandbox amount %q, want 5000 XOF", got)
	}
	if got := b.text("#description"); got != "Tissu wax — pagne 6 yards" {
		t.Errorf("sandbox description %q (percent-encoded UTF-8 decoded?)", got)
	}
	b.shot("2-sandbox.png")

	// 3. accept → the return form is posted back → the shop's return page shows ACCEPTED
	b.do("clicking accept", chromedp.Click(chromedp.CSS("#accept")))
	b.waitPage(shopURL+"/cinetpay/return", `#status[data-status="ACCEPTED"]`, "")
	paid := b.text("#order-id")
	// "confirmed" once the shop's record is paid (the page refreshes itself until then)
	b.waitPage(shopURL+"/cinetpay/return", `#order-status[data-status="paid"]`, "")
	if got := b.text("#status-label"); got != "Commande confirmée" {
		t.Errorf("return page says %q, want Commande confirmée", got)
	}
	b.shot("3-return-paid.png")

	// 4. a second order, refused
	b.do("back to the shop", chromedp.Click(chromedp.CSS("#back-shop")))
	b.waitPage(shopURL+"/", "#pay", "")
	b.do("clicking Pay again", chromedp.Click(chromedp.CSS("#pay")))
	b.waitPage(sandboxURL+pagePath, "#refuse", "")
	b.do("clicking refuse", chromedp.Click(chromedp.CSS("#refuse")))
	b.waitPage(shopURL+"/cinetpay/return", `#status[data-status="REFUSED"]`, "")
	refused := b.text("#order-id")
	b.shot("4-return-refused.png")
	if paid == "" || refused == "" || paid == refused {
		t.Fatalf("order ids %q and %q", paid, refused)
	}

	// 5. the orders page, once both deliveries have landed
	want := map[string]string{paid: "paid", refused: "refused"}
	v := waitOrders(t, want)
	b.do("opening the orders", chromedp.Click(chromedp.CSS("#back-orders")))
	b.waitPage(shopURL+"/orders", "#orders", "")
	for id, st := range want {
		if got := b.attr(fmt.Sprintf(`[data-order=%q] .status`, id), "data-status"); got != st {
			t.Errorf("orders page: %s is %q, want %s", id, got, st)
		}
	}
	b.shot("5-orders.png")
	assertOneDeliveryEach(t, v, want)
	t.Logf("browser flow took %s", time.Since(start).Round(time.Millisecond))
}
