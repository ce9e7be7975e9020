package sandbox

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func getPage(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	return resp.StatusCode, string(b)
}

func TestPageRendersAndEscapes(t *testing.T) {
	_, ts := newSandbox(t)
	b := paymentBody("TXPAGE", "http://127.0.0.1:1")
	b["description"] = `<script>alert("x")<script> <img src=x onerror=alert(1)> Commande`
	b["amount"] = 2500
	r := call(t, ts.URL, "/v2/payment", b)
	if r.code() != "201" {
		t.Fatalf("create: %s", r.Raw)
	}
	status, html := getPage(t, r.data()["payment_url"].(string))
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	for _, want := range []string{
		`id="accept"`, `id="refuse"`, `id="wait"`,
		`name="action" value="accept"`, `name="action" value="refuse"`, `name="action" value="wait"`,
		`method="post"`, siteA, "2500 XOF", "TXPAGE", `lang="fr"`, ">Payer<", ">Refuser<", ">Attendre<",
		"&lt;script&gt;alert(&#34;x&#34;)&lt;script&gt; &lt;img src=x onerror=alert(1)&gt; Commande",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(html, `<script>alert`) || strings.Contains(html, `<img`) {
		t.Error("description not escaped")
	}
	if regexp.MustCompile(`(?i)(src|href)="https?:`).MatchString(html) {
		t.Error("page loads external assets")
	}

	// English.
	b = paymentBody("TXPAGEEN", "http://127.0.0.1:1")
	b["lang"] = "en"
	r = call(t, ts.URL, "/v2/payment", b)
	_, html = getPage(t, r.data()["payment_url"].(string))
	for _, want := range []string{`lang="en"`, ">Pay<", ">Refuse<", ">Wait<"} {
		if !strings.Contains(html, want) {
			t.Errorf("English page lacks %q", want)
		}
	}

	// Unknown token.
	if status, html := getPage(t, ts.URL+"/pay/nope"); status != 404 || !strings.Contains(html, `id="unknown"`) {
		t.Errorf("unknown token: %d", status)
	}
}

var (
	formActionRE = regexp.MustCompile(`<form id="return-form" method="post" action="([^"]*)">`)
	hiddenRE     = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)
)

// returnForm extracts the return form of a page.
func returnForm(t *testing.T, html string) (action string, fields map[string]string) {
	t.Helper()
	m := formActionRE.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no return form in %s", html)
	}
	fields = map[string]string{}
	for _, h := range hiddenRE.FindAllStringSubmatch(html, -1) {
		fields[h[1]] = h[2]
	}
	return strings.ReplaceAll(m[1], "&amp;", "&"), fields
}

func TestAcceptFlow(t *testing.T) {
	_, ts := newSandbox(t)
	n := newNotifyServer(t)
	tok := createPayment(t, ts.URL, "TXFLOW", n.URL)

	status, html := choose(t, ts.URL, tok, "accept")
	if status != 200 {
		t.Fatalf("POST page: %d", status)
	}
	// Synchronous by default: everything arrived before the browser answer.
	reqs := n.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests to notify_url, want ping + 2", len(reqs))
	}
	if reqs[0].Method != http.MethodGet || reqs[0].Body != "" {
		t.Fatalf("first request %+v, want a GET ping", reqs[0])
	}
	for i, want := range []struct{ status, msg string }{
		{StatusWaiting, "WAITING_CUSTOMER_PAYMENT"},
		{StatusAccepted, "SUCCES"},
	} {
		r := reqs[i+1]
		if r.Method != http.MethodPost || r.ContentType != "application/x-www-form-urlencoded" {
			t.Fatalf("notification %d: %s %s", i, r.Method, r.ContentType)
		}
		f := r.Form
		if f.Get("cpm_error_message") != want.msg {
			t.Fatalf("notification %d: cpm_error_message %q, want %q", i, f.Get("cpm_error_message"), want.msg)
		}
		if r.XToken != expectedXToken(secretA, f) {
			t.Fatalf("notification %d: x-token %q, want %q", i, r.XToken, expectedXToken(secretA, f))
		}
		if r.XToken != strings.ToLower(r.XToken) || len(r.XToken) != 64 {
			t.Fatalf("x-token not lowercase hex: %q", r.XToken)
		}
		for _, name := range fieldOrder {
			if _, ok := f[name]; !ok {
				t.Errorf("notification %d lacks %s", i, name)
			}
		}
		checks := map[string]string{
			"cpm_site_id": siteA, "cpm_trans_id": "TXFLOW", "cpm_amount": "1000", "cpm_currency": "XOF",
			"signature": tok, "payment_method": "OM", "cpm_phone_prefixe": "225", "cpm_language": "fr",
			"cpm_version": "V4", "cpm_payment_config": "SINGLE", "cpm_page_action": "PAYMENT",
			"cpm_custom": "b3JkZXI9NDI=", "cpm_designation": "Commande 42",
		}
		for k, v := range checks {
			if f.Get(k) != v {
				t.Errorf("notification %d: %s = %q, want %q", i, k, f.Get(k), v)
			}
		}
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`).MatchString(f.Get("cpm_trans_date")) {
			t.Errorf("cpm_trans_date %q", f.Get("cpm_trans_date"))
		}
		if !regexp.MustCompile(`^\d{8,}$`).MatchString(f.Get("cel_phone_num")) {
			t.Errorf("cel_phone_num %q", f.Get("cel_phone_num"))
		}
	}

	// The browser is sent back with a POST form.
	action, fields := returnForm(t, html)
	if action != n.URL+"/return?transaction_id=TXFLOW" {
		t.Fatalf("form action %q", action)
	}
	if fields["transaction_id"] != "TXFLOW" || fields["token"] != tok {
		t.Fatalf("form fields %v", fields)
	}
	if !strings.Contains(html, `id="return"`) || !strings.Contains(html, `.submit()`) {
		t.Fatal("no #return button or auto-submit")
	}

	// A second click changes nothing and sends nothing.
	if status, html := choose(t, ts.URL, tok, "refuse"); status != 200 || !strings.Contains(html, `id="return-form"`) {
		t.Fatalf("second click: %d", status)
	}
	if len(n.requests()) != 3 {
		t.Fatal("second click sent notifications")
	}
	if r := check(t, ts.URL, "TXFLOW"); r.data()["status"] != "ACCEPTED" {
		t.Fatalf("check: %s", r.Raw)
	}
	// The page of a final transaction shows the status and the way back.
	_, html = getPage(t, ts.URL+"/pay/"+tok)
	if strings.Contains(html, `id="accept"`) || !strings.Contains(html, `id="return"`) || !strings.Contains(html, "Paiement accepté") {
		t.Fatalf("final page: %s", html)
	}
}

func TestRefuseAndWaitFlows(t *testing.T) {
	_, ts := newSandbox(t)
	n := newNotifyServer(t)

	tok := createPayment(t, ts.URL, "TXR", n.URL)
	choose(t, ts.URL, tok, "refuse")
	p := n.posts()
	if len(p) != 2 || p[0].Form.Get("cpm_error_message") != "WAITING_CUSTOMER_PAYMENT" ||
		p[1].Form.Get("cpm_error_message") != "PAYMENT_FAILED" || p[1].XToken != expectedXToken(secretA, p[1].Form) {
		t.Fatalf("refuse notifications: %+v", p)
	}

	tok = createPayment(t, ts.URL, "TXW", n.URL)
	status, html := choose(t, ts.URL, tok, "wait")
	p = n.posts()
	if status != 200 || len(p) != 3 || p[2].Form.Get("cpm_trans_id") != "TXW" ||
		p[2].Form.Get("cpm_error_message") != "WAITING_CUSTOMER_PAYMENT" {
		t.Fatalf("wait notifications: %+v", p)
	}
	if action, _ := returnForm(t, html); action != n.URL+"/return?transaction_id=TXW" {
		t.Fatalf("wait return: %q", action)
	}
	// Waiting again sends nothing new; accepting later sends only the final one.
	choose(t, ts.URL, tok, "wait")
	if len(n.posts()) != 3 {
		t.Fatal("second wait notified again")
	}
	_, html = getPage(t, ts.URL+"/pay/"+tok)
	if !strings.Contains(html, `id="accept"`) {
		t.Fatal("a waiting transaction's page lost its buttons")
	}
	choose(t, ts.URL, tok, "accept")
	p = n.posts()
	if len(p) != 4 || p[3].Form.Get("cpm_error_message") != "SUCCES" {
		t.Fatalf("accept after wait: %+v", p)
	}
	// One ping per transaction.
	pings := 0
	for _, r := range n.requests() {
		if r.Method == http.MethodGet {
			pings++
		}
	}
	if pings != 2 {
		t.Fatalf("%d pings, want 2", pings)
	}
	if status, _ := choose(t, ts.URL, tok, "dance"); status != http.StatusBadRequest {
		t.Fatalf("bad action: %d", status)
	}
}

func TestNotificationRetries(t *testing.T) {
	s, ts := newSandbox(t)
	n := newNotifyServer(t)
	n.status.Store(http.StatusServiceUnavailable)
	tok := createPayment(t, ts.URL, "TXRETRY", n.URL)
	choose(t, ts.URL, tok, "accept")
	if p := n.posts(); len(p) != 2*notifyAttempts {
		t.Fatalf("%d POSTs, want %d (each retried)", len(p), 2*notifyAttempts)
	}
	v, _ := s.Transaction("TXRETRY")
	last := v.Notifications[len(v.Notifications)-1]
	if last.Attempt != notifyAttempts || last.HTTPStatus != 503 {
		t.Fatalf("last notification %+v", last)
	}
	// A 200 stops the retries.
	n.status.Store(http.StatusOK)
	if _, err := s.Act("TXRETRY", ActionNotify); err != nil {
		t.Fatal(err)
	}
	if p := n.posts(); len(p) != 2*notifyAttempts+1 {
		t.Fatalf("%d POSTs after a 200", len(p))
	}
}
