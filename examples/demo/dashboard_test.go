package demo

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserDashboard opens the operator's dashboard of the demo (cinetpay_dashboard, at
// /cinetpay-dashboard/ of the shop's site) in headless Chromium, with payments paid, refused and pending: the list and its
// filter, a payment's page, its "deliver again" button (the shop gets the result again, under
// its event id), the layout on a 390-px phone; screenshots of each.
func TestBrowserDashboard(t *testing.T) {
	chrome := requireChromium(t)
	startDemo(t, "Caddyfile", "")
	dash := shopURL + "/cinetpay-dashboard/"
	noRedirect := &http.Client{Timeout: stepTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// three orders: paid, refused, left pending
	for _, action := range []string{"accept", "refuse", ""} {
		resp, err := noRedirect.PostForm(shopURL+"/checkout", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("checkout: %d", resp.StatusCode)
		}
		if action == "" {
			continue
		}
		resp, err = noRedirect.PostForm(resp.Header.Get("Location"), url.Values{"action": {action}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// both results delivered to the shop
	deadline := time.Now().Add(stepTimeout)
	for len(getOrders(t).Orders) < 3 || countStatus(getOrders(t), "pending") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("orders: %+v", getOrders(t))
		}
		time.Sleep(100 * time.Millisecond)
	}

	b := newBrowser(t, chrome)
	b.dir = filepath.Join(screenshotDir(t), "dashboard")
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// 1. the list: three payments, newest first; one pending; the deliveries done
	b.do("opening the dashboard", chromedp.Navigate(dash))
	b.waitPage(dash, "#payments", "")
	rows, _ := b.eval(`(document.querySelectorAll("#payments tr").length - 1).toString()`)
	if rows != "3" {
		t.Fatalf("%s payment rows, want 3", rows)
	}
	if got, _ := b.eval(`document.querySelector("#payments tr:nth-child(2) .st").textContent`); got != "PENDING" {
		t.Errorf("newest payment is %q, want the PENDING one", got)
	}
	if got := b.text("#open tr:nth-child(2) td:nth-child(3)"); got != "1" {
		t.Errorf("open pending payments: %q", got)
	}
	if got := b.text("#pending td"); !strings.HasPrefix(got, "none") {
		t.Errorf("deliveries pending: %q", got)
	}
	b.shot("1-dashboard.png")

	// 2. filtered to the accepted one, then its page
	b.do("filtering", chromedp.SetValue(chromedp.CSS(`select[name=state]`), "accepted"),
		chromedp.Click(chromedp.CSS(`form.filters button`)))
	b.waitPage(dash+"?", "#payments", "")
	if rows, _ := b.eval(`(document.querySelectorAll("#payments tr").length - 1).toString()`); rows != "1" {
		t.Fatalf("accepted payments: %s rows", rows)
	}
	b.do("opening the payment", chromedp.Click(chromedp.CSS(`#payments a`)))
	b.waitPage(dash+"ui/payment", "#state", "ACCEPTED")
	event := b.text("#deliveries tr:nth-child(2) td")
	paidTx := b.text("#payment dd")
	if len(event) != 32 {
		t.Fatalf("event id %q", event)
	}
	b.shot("2-payment.png")

	// 3. deliver again: the shop gets the same event id a second time
	before := deliveriesOf(t, event)
	b.do("clicking deliver again", chromedp.Click(chromedp.CSS(`button.replay`)))
	b.waitPage(dash+"ui/payment", "#flash", "delivery "+event+" queued for a new round of attempts")
	deadline = time.Now().Add(stepTimeout)
	for deliveriesOf(t, event) <= before {
		if time.Now().After(deadline) {
			t.Fatalf("the replay of %s was not delivered", event)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.do("reloading", chromedp.Reload())
	b.waitPage(dash+"ui/payment", "#state", "ACCEPTED")
	b.shot("3-replayed.png")

	// 4. on a phone: nothing wider than the screen but the tables, which scroll in their card
	b.do("phone size", chromedp.EmulateViewport(390, 844), chromedp.Navigate(dash))
	b.waitPage(dash, "#payments", "")
	if w, _ := b.eval(`document.documentElement.scrollWidth.toString()`); w != "390" {
		t.Errorf("the page is %s px wide on a 390-px screen", w)
	}
	b.shot("4-phone.png")

	// a button pressed from another site is refused; the pages show no key, token or URL
	req, _ := http.NewRequest(http.MethodPost, dash+"ui/replay", strings.NewReader(url.Values{"event": {event}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site replay: %d", resp.StatusCode)
	}
	// the same pages on the admin endpoint, for a client that sends an allowed Origin
	admin := fmt.Sprintf("http://localhost:%d/cinetpay/", adminPort)
	for _, page := range []string{dash, dash + "?state=pending", admin, admin + "ui/payment?tx=" + paidTx} {
		req, _ := http.NewRequest(http.MethodGet, page, nil)
		req.Header.Set("Origin", fmt.Sprintf("http://localhost:%d", adminPort))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `id="`) {
			t.Errorf("%s: %d %.200s", page, resp.StatusCode, body)
		}
		for _, secret := range []string{"sk_test_demo-api-key", "demo-api-password", "demo-signing-key", "notify_token", "/payment/"} {
			if strings.Contains(string(body), secret) {
				t.Errorf("%s shows %q", page, secret)
			}
		}
	}
}

func countStatus(v ordersJSON, status string) int {
	n := 0
	for _, o := range v.Orders {
		if o.Status == status {
			n++
		}
	}
	return n
}

// deliveriesOf counts the deliveries the demo shop received under an event id.
func deliveriesOf(t *testing.T, event string) int {
	n := 0
	for _, o := range getOrders(t).Orders {
		for _, d := range o.Deliveries {
			if d.EventID == event {
				n++
			}
		}
	}
	return n
}
