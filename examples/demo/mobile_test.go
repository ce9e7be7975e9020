package demo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/caddy-cinetpay/caddy-cinetpay/internal/tooltest"
)

// The phone the mobile test plays: 390×844 CSS pixels, device scale 1 (small screenshots).
const (
	phoneWidth  = 390
	phoneHeight = 844
)

// docsShots holds the phone screenshots the demo's README shows. TestMobileDemo refreshes them
// when CINETPAY_UPDATE_SCREENSHOTS=1; otherwise it saves its screenshots beside the browser
// test's (screenshotDir), so that a test run leaves the repository as it was.
const docsShots = "../../docs/screenshots"

// requireChromium returns Chromium's path, or skips the test (fails it with
// CINETPAY_REQUIRE_TOOLS=1) when there is none.
func requireChromium(t *testing.T) string {
	t.Helper()
	chrome := findChromium()
	if chrome == "" {
		const msg = "chromium not found: install it (apt-get install -y chromium)"
		if tooltest.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return chrome
}

// fitsPhone checks that the page has the viewport meta and does not scroll sideways, then
// saves its full-page screenshot as name.png.
func (b *browser) fitsPhone(name string) {
	b.t.Helper()
	v, err := b.eval(`(() => { const m = document.querySelector('meta[name="viewport"]');
		return [m ? m.content : "", document.documentElement.scrollWidth, window.innerWidth].join("|"); })()`)
	if err != nil {
		b.t.Fatalf("%s: %v", name, err)
	}
	parts := strings.Split(v, "|")
	if parts[0] != "width=device-width, initial-scale=1" {
		b.t.Errorf("%s: viewport meta %q", name, parts[0])
	}
	var scroll, inner int
	fmt.Sscan(parts[1], &scroll)
	fmt.Sscan(parts[2], &inner)
	if inner != phoneWidth || scroll > inner {
		b.t.Errorf("%s: scrollWidth %d, innerWidth %d (want %d): the page overflows sideways", name, scroll, inner, phoneWidth)
	}
	b.shot(name + ".png")
}

// visible returns the text of sel if it is displayed within the phone's width, else "".
func (b *browser) visible(sel string) string {
	b.t.Helper()
	v, err := b.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return "";
		const r = e.getBoundingClientRect(), s = getComputedStyle(e);
		if (r.width === 0 || r.height === 0 || r.left < 0 || r.right > window.innerWidth ||
			s.visibility === "hidden" || s.display === "none") return "";
		return e.textContent.trim(); })()`, sel))
	if err != nil {
		b.t.Fatalf("reading %s: %v", sel, err)
	}
	return v
}

// TestMobileDemo goes through every page a customer sees on a 390-px-wide phone: the shop, the
// checkout error page (examples/checkout-errors.caddy), the sandbox's payment page, the return
// page accepted, refused and pending (and resuming the payment from it), the orders page, in
// French and in English. None may scroll sideways; each is saved as a screenshot (docsShots).
func TestMobileDemo(t *testing.T) {
	chrome := requireChromium(t)
	startDemo(t, "Caddyfile", "")
	b := newBrowser(t, chrome)
	b.dir = filepath.Join(screenshotDir(t), "phone")
	if os.Getenv("CINETPAY_UPDATE_SCREENSHOTS") == "1" {
		b.dir = docsShots
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b.do("emulating a phone", chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateScale(1),
		chromedp.EmulateMobile))
	const page = "/payment/" // the sandbox's payment page (current API)

	// the shop, in French by default
	b.do("opening the shop", chromedp.Navigate(shopURL+"/"))
	b.waitPage(shopURL+"/", "#pay", "")
	if got := b.attr("html", "lang"); got != "fr" {
		t.Errorf("the shop's language is %q, want fr", got)
	}
	b.fitsPhone("home")

	// (a) CinetPay refuses to start the payment: the error page, 502, in French and English
	setSandboxFaults(t, `{"v1_payment":{"times":1,"code":"1004"}}`)
	b.do("clicking Pay (CinetPay refusing)", chromedp.Click(chromedp.CSS("#pay")))
	b.waitPage(shopURL+"/checkout", "#fr-title", "")
	if got := b.visible("#fr-title"); got != "Le paiement n'a pas pu démarrer" {
		t.Errorf("error page, French title %q", got)
	}
	if got := b.visible("#en-title"); got != "The payment could not start" {
		t.Errorf("error page, English title %q", got)
	}
	if got := b.visible("section[lang=fr] p"); !strings.Contains(got, "Aucun paiement") {
		t.Errorf("error page, French text %q", got)
	}
	if got := b.visible("section[lang=en] p"); !strings.Contains(got, "not been charged") {
		t.Errorf("error page, English text %q", got)
	}
	code, err := b.eval(`String(performance.getEntriesByType("navigation")[0].responseStatus)`)
	if err != nil || code != "502" {
		t.Errorf("error page status %q (%v), want 502", code, err)
	}
	if got := b.visible(".detail"); !strings.Contains(got, "502") || strings.Contains(got, "cinetpay:") {
		t.Errorf("error page detail %q, want the status code and the module's message", got)
	}
	b.fitsPhone("error-page")
	setSandboxFaults(t, `{}`)

	// the sandbox's payment page, then accepted: confirmed once the shop's record is paid
	b.do("back to the shop", chromedp.Click(chromedp.CSS("a.button")))
	b.waitPage(shopURL+"/", "#pay", "")
	b.do("clicking Pay", chromedp.Click(chromedp.CSS("#pay")))
	b.waitPage(sandboxURL+page, "#accept", "")
	b.fitsPhone("sandbox-payment")
	b.do("clicking accept", chromedp.Click(chromedp.CSS("#accept")))
	b.waitPage(shopURL+"/cinetpay/return", `#order-status[data-status="paid"]`, "")
	if got := b.visible("#status-label"); got != "Commande confirmée" {
		t.Errorf("accepted return page says %q", got)
	}
	b.fitsPhone("return-accepted")

	// refused
	b.do("back to the shop", chromedp.Click(chromedp.CSS("#back-shop")))
	b.waitPage(shopURL+"/", "#pay", "")
	b.do("clicking Pay", chromedp.Click(chromedp.CSS("#pay")))
	b.waitPage(sandboxURL+page, "#refuse", "")
	b.do("clicking refuse", chromedp.Click(chromedp.CSS("#refuse")))
	b.waitPage(shopURL+"/cinetpay/return", `#status[data-status="REFUSED"]`, "")
	if got := b.visible("#status-label"); got != "Paiement refusé" {
		t.Errorf("refused return page says %q", got)
	}
	b.fitsPhone("return-refused")

	// the orders page, in French then English
	b.do("opening the orders", chromedp.Click(chromedp.CSS("#back-orders")))
	b.waitPage(shopURL+"/orders", "#orders", "")
	if got := b.attr(`[data-order] .status`, "data-status"); got != "refused" {
		t.Errorf("orders page: the latest order is %q, want refused", got)
	}
	b.fitsPhone("orders")
	b.do("switching to English", chromedp.Click(chromedp.CSS("#lang-en")))
	b.waitPage(shopURL+"/orders?lang=en", "#orders", "")
	if got := b.attr("html", "lang"); got != "en" {
		t.Errorf("after the switch the language is %q", got)
	}
	if got := b.visible("h1"); got != "My orders" {
		t.Errorf("orders page in English: %q", got)
	}
	b.fitsPhone("orders-en")
	// the cookie keeps the language
	b.do("opening the shop", chromedp.Navigate(shopURL+"/"))
	b.waitPage(shopURL+"/", "#pay", "")
	if got := b.visible("#pay"); !strings.HasPrefix(got, "Pay 5,000") {
		t.Errorf("the shop after the switch: %q", got)
	}
	b.fitsPhone("home-en")

	// pending ("Attendre"), then "Reprendre le paiement": the same payment page, then paid. On
	// the current API the sandbox keeps a waiting customer on its page; on Checkout v2 it sends
	// them back to the shop at once, to a pending return page: that is the demo's Caddyfile.v2.
	unloadCaddy(t)
	startDemo(t, "Caddyfile.v2", "")
	const pageV2 = "/pay/"
	b.do("opening the shop (Checkout v2)", chromedp.Navigate(shopURL+"/?lang=fr"))
	b.waitPage(shopURL+"/", "#pay", "")
	b.do("clicking Pay", chromedp.Click(chromedp.CSS("#pay")))
	payURL := b.waitPage(sandboxURL+pageV2, "#wait", "")
	b.do("clicking wait", chromedp.Click(chromedp.CSS("#wait")))
	b.waitPage(shopURL+"/cinetpay/return", `#status[data-status="PENDING"]`, "")
	pending := b.text("#order-id")
	if got := b.visible("#resume"); got != "Reprendre le paiement" {
		t.Errorf("pending return page: resume button %q", got)
	}
	if got := b.visible("#status-text"); strings.Contains(got, "PENDING") || got == "" {
		t.Errorf("pending return page text %q", got)
	}
	b.fitsPhone("return-pending")
	b.do("resuming the payment", chromedp.Click(chromedp.CSS("#resume")))
	if got := b.waitPage(sandboxURL+pageV2, "#accept", ""); got != payURL {
		t.Errorf("resumed on %s, want the same payment page %s", got, payURL)
	}
	b.do("clicking accept", chromedp.Click(chromedp.CSS("#accept")))
	b.waitPage(shopURL+"/cinetpay/return", `#order-status[data-status="paid"]`, "")
	if got := b.text("#order-id"); got != pending {
		t.Errorf("paid order %s, want the resumed %s", got, pending)
	}
	if v := getOrders(t); len(v.Orders) != 1 {
		t.Errorf("resuming made %d orders, want 1", len(v.Orders))
	}
	b.do("opening the orders", chromedp.Click(chromedp.CSS("#back-orders")))
	b.waitPage(shopURL+"/orders", "#orders", "")
	if got := b.attr(fmt.Sprintf(`[data-order=%q] .status`, pending), "data-status"); got != "paid" {
		t.Errorf("orders page: %s is %q, want paid", pending, got)
	}
}
