package sandbox

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// noRedirect is a client that does not follow redirects.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// v1Choose posts a v1 payment page button; it returns the status, the
// Location header and the HTML.
func v1Choose(t *testing.T, pageURL, action string) (int, string, string) {
	t.Helper()
	resp, err := noRedirect.PostForm(pageURL, url.Values{"action": {action}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// v1Setup starts a sandbox and a shop, logs in and creates payments.
func v1Setup(t *testing.T, ids ...string) (*Server, string, *notifyServer, map[string]v1Result) {
	t.Helper()
	s, ts := newV1Sandbox(t)
	n := newNotifyServer(t)
	tok := login(t, ts.URL, keyCI, passCI)
	out := map[string]v1Result{}
	for _, id := range ids {
		out[id] = v1Create(t, ts.URL, tok, id, n.URL)
	}
	return s, ts.URL, n, out
}

// wantNotification checks that p is the v1 notification of init's payment.
func wantNotification(t *testing.T, p notified, init v1Result) {
	t.Helper()
	want := `{"notify_token":"` + init.str("notify_token") + `","merchant_transaction_id":"` +
		init.str("merchant_transaction_id") + `","transaction_id":"` + init.str("transaction_id") +
		`","user":{"name":"Doe Jane","email":"jane.doe@example.com","phone_number":"+2250707000000"}}`
	if p.Method != http.MethodPost || p.ContentType != "application/json" || p.Body != want || p.XToken != "" {
		t.Fatalf("notification %s %s x-token %q\n%s\nwant\n%s", p.Method, p.ContentType, p.XToken, p.Body, want)
	}
}

func TestV1PageFlows(t *testing.T) {
	s, base, n, ids := v1Setup(t, "PG-OK", "PG-KO", "PG-WAIT", "PG-EXP")

	// The page.
	pageURL := ids["PG-OK"].str("payment_url")
	status, html := getPage(t, pageURL)
	if status != 200 {
		t.Fatalf("page: %d", status)
	}
	for _, want := range []string{`id="accept"`, `id="refuse"`, `id="wait"`, `id="expire"`,
		`name="action" value="expire"`, "1000 XOF", "PG-OK", "Commande 42", "CI (test)", `lang="fr"`,
		">Payer<", ">Laisser expirer<", "Paiement en cours"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if v, _ := s.Transaction("PG-OK"); v.Status != V1StatusPending {
		t.Fatalf("opening the page: %s, want PENDING", v.Status)
	}

	// accept → success_url, plain GET, nothing added.
	status, loc, _ := v1Choose(t, pageURL, ActionAccept)
	if status != http.StatusSeeOther || loc != n.URL+"/return/success" {
		t.Fatalf("accept: %d %q", status, loc)
	}
	p := n.posts()
	if len(p) != 1 || len(n.requests()) != 1 {
		t.Fatalf("%d requests, want one notification and no ping", len(n.requests()))
	}
	wantNotification(t, p[0], ids["PG-OK"])
	// A second click goes back again and sends nothing.
	if status, loc, _ := v1Choose(t, pageURL, ActionRefuse); status != http.StatusSeeOther || loc != n.URL+"/return/success" {
		t.Fatalf("second click: %d %q", status, loc)
	}
	if len(n.requests()) != 1 {
		t.Fatal("second click notified")
	}
	// The page of a decided transaction shows the way back.
	_, html = getPage(t, pageURL)
	if strings.Contains(html, `id="accept"`) || !strings.Contains(html, `<a id="return" class="button" href="`+n.URL+`/return/success">`) ||
		!strings.Contains(html, "Paiement réussi") {
		t.Fatalf("final page: %s", html)
	}

	// refuse → failed_url.
	status, loc, _ = v1Choose(t, ids["PG-KO"].str("payment_url"), ActionRefuse)
	if status != http.StatusSeeOther || loc != n.URL+"/return/failed" {
		t.Fatalf("refuse: %d %q", status, loc)
	}
	if p := n.posts(); len(p) != 2 {
		t.Fatalf("refuse: %d notifications", len(p))
	} else {
		wantNotification(t, p[1], ids["PG-KO"])
	}

	// wait: PENDING, the customer stays on the page, nothing notified.
	status, loc, html = v1Choose(t, ids["PG-WAIT"].str("payment_url"), ActionWait)
	if status != 200 || loc != "" || !strings.Contains(html, `id="accept"`) || !strings.Contains(html, "Paiement en cours") {
		t.Fatalf("wait: %d %q", status, loc)
	}
	if v, _ := s.Transaction("PG-WAIT"); v.Status != V1StatusPending || len(n.posts()) != 2 {
		t.Fatalf("wait: %s, %d notifications", v.Status, len(n.posts()))
	}

	// expire → failed_url; EXPIRED is not final, so not notified.
	status, loc, _ = v1Choose(t, ids["PG-EXP"].str("payment_url"), ActionExpire)
	if status != http.StatusSeeOther || loc != n.URL+"/return/failed" {
		t.Fatalf("expire: %d %q", status, loc)
	}
	if v, _ := s.Transaction("PG-EXP"); v.Status != V1StatusExpired || len(n.posts()) != 2 {
		t.Fatalf("expire: %s, %d notifications", v.Status, len(n.posts()))
	}

	if status, _, _ := v1Choose(t, pageURL, "dance"); status != http.StatusBadRequest {
		t.Fatalf("bad action: %d", status)
	}
	// Unknown tokens; each API's tokens only on its own page.
	if status, html := getPage(t, base+"/payment/nope"); status != 404 || !strings.Contains(html, `id="unknown"`) {
		t.Fatalf("unknown token: %d", status)
	}
	if status, _ := getPage(t, base+"/pay/"+ids["PG-OK"].str("payment_token")); status != 404 {
		t.Fatalf("v1 token on the v2 page: %d", status)
	}
	v2tok := createPayment(t, base, "TXV2", n.URL)
	if status, _ := getPage(t, base+"/payment/"+v2tok); status != 404 {
		t.Fatalf("v2 token on the v1 page: %d", status)
	}
}

func TestV1PageEnglishAndEscaping(t *testing.T) {
	_, ts := newV1Sandbox(t)
	tok := login(t, ts.URL, keyCI, passCI)
	b := v1PaymentBody("PG-EN", "http://127.0.0.1:1")
	b["lang"] = "en"
	b["designation"] = `<script>alert(1)</script>`
	r := v1Init(t, ts.URL, tok, b)
	_, html := getPage(t, r.str("payment_url"))
	for _, want := range []string{`lang="en"`, ">Pay<", ">Let it expire<", "&lt;script&gt;alert(1)&lt;/script&gt;"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(html, "<script>alert") {
		t.Error("designation not escaped")
	}
}

func TestV1RedirectModes(t *testing.T) {
	s, base, n, ids := v1Setup(t, "RD-1", "RD-2", "RD-3")
	tx := func(id string) Transaction { v, _ := s.Transaction(id); return v }

	// POST: an auto-submitted form, no fields.
	s.SetFaults(Faults{V1Redirect: &RedirectMode{Method: http.MethodPost}})
	status, _, html := v1Choose(t, ids["RD-1"].str("payment_url"), ActionAccept)
	action, fields := returnForm(t, html)
	if status != 200 || action != n.URL+"/return/success" || len(fields) != 0 || !strings.Contains(html, ".submit()") {
		t.Fatalf("POST: %d %q %v", status, action, fields)
	}

	// POST with the ids.
	s.SetFaults(Faults{V1Redirect: &RedirectMode{Method: http.MethodPost, AppendIDs: true}})
	_, _, html = v1Choose(t, ids["RD-2"].str("payment_url"), ActionRefuse)
	action, fields = returnForm(t, html)
	if action != n.URL+"/return/failed" || fields["transaction_id"] != tx("RD-2").V1.CinetPayTransactionID ||
		fields["merchant_transaction_id"] != "RD-2" || len(fields) != 2 {
		t.Fatalf("POST with ids: %q %v", action, fields)
	}

	// GET with the ids, after the URL's own query.
	s.SetFaults(Faults{V1Redirect: &RedirectMode{AppendIDs: true}})
	_, loc, _ := v1Choose(t, ids["RD-3"].str("payment_url"), ActionAccept)
	want := n.URL + "/return/success?merchant_transaction_id=RD-3&transaction_id=" + tx("RD-3").V1.CinetPayTransactionID
	if loc != want {
		t.Fatalf("GET with ids: %q, want %q", loc, want)
	}
	// A success_url with a query keeps it.
	b := v1PaymentBody("RD-4", n.URL)
	b["success_url"] = n.URL + "/r?order=4"
	r := v1Init(t, base, login(t, base, keyCI, passCI), b)
	if _, loc, _ := v1Choose(t, r.str("payment_url"), ActionAccept); !strings.HasPrefix(loc, n.URL+"/r?order=4&merchant_transaction_id=RD-4&") {
		t.Fatalf("query kept: %q", loc)
	}
	// The final page offers the same way back.
	s.SetFaults(Faults{V1Redirect: &RedirectMode{Method: http.MethodPost}})
	_, html = getPage(t, ids["RD-1"].str("payment_url"))
	if !strings.Contains(html, `<form method="post" action="`+n.URL+`/return/success">`) {
		t.Fatalf("final page in POST mode: %s", html)
	}
}

func TestV1NotifyStatusesAndPing(t *testing.T) {
	s, _, n, ids := v1Setup(t, "NS-1", "NS-2")
	s.SetFaults(Faults{V1NotifyStatuses: []string{V1StatusPending, V1StatusExpired}, V1NotifyPing: true})
	getPage(t, ids["NS-1"].str("payment_url")) // PENDING
	if _, err := s.Act("NS-1", ActionExpire); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Act("NS-2", ActionAccept); err != nil { // SUCCESS: not in the list
		t.Fatal(err)
	}
	reqs := n.requests()
	if len(reqs) != 3 || reqs[0].Method != http.MethodGet || reqs[0].Body != "" {
		t.Fatalf("requests %+v, want a ping and two notifications", reqs)
	}
	wantNotification(t, reqs[1], ids["NS-1"])
	wantNotification(t, reqs[2], ids["NS-1"])
	v, _ := s.Transaction("NS-1")
	if len(v.Notifications) != 3 || v.Notifications[1].Status != V1StatusPending || v.Notifications[2].Status != V1StatusExpired ||
		v.Notifications[2].Body != reqs[2].Body || v.Notifications[2].HTTPStatus != 200 {
		t.Fatalf("records %+v", v.Notifications)
	}
}

func TestV1NotifyFaults(t *testing.T) {
	s, _, n, ids := v1Setup(t, "NF-LOST", "NF-DUP", "NF-CONC", "NF-DELAY", "NF-BAD", "NF-RETRY", "NF-ASYNC")
	act := func(id, action string) {
		t.Helper()
		if _, err := s.Act(id, action); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("lost", func(t *testing.T) {
		s.SetFaults(Faults{Notify: &NotifyFault{Times: 1, Lost: true}})
		act("NF-LOST", ActionAccept)
		if len(n.requests()) != 0 {
			t.Fatal("a lost notification arrived")
		}
		v, _ := s.Transaction("NF-LOST")
		if len(v.Notifications) != 1 || v.Notifications[0].Fault != "lost" || !strings.Contains(v.Notifications[0].Body, `"NF-LOST"`) {
			t.Fatalf("record %+v", v.Notifications)
		}
		act("NF-LOST", ActionNotify) // used up
		wantNotification(t, n.posts()[0], ids["NF-LOST"])
	})
	t.Run("duplicate", func(t *testing.T) {
		s.SetFaults(Faults{Notify: &NotifyFault{Times: 1, Duplicate: 2}})
		before := len(n.posts())
		act("NF-DUP", ActionRefuse)
		p := n.posts()[before:]
		if len(p) != 3 {
			t.Fatalf("%d copies, want 3", len(p))
		}
		for _, x := range p {
			wantNotification(t, x, ids["NF-DUP"])
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		n.delay.Store(int64(150 * time.Millisecond))
		defer n.delay.Store(0)
		s.SetFaults(Faults{Notify: &NotifyFault{Times: 1, Concurrent: 3}})
		before := len(n.posts())
		act("NF-CONC", ActionAccept)
		p := n.posts()[before:]
		if len(p) != 3 {
			t.Fatalf("%d copies", len(p))
		}
		for i := range p {
			wantNotification(t, p[i], ids["NF-CONC"])
			for j := range p {
				if p[i].Start.After(p[j].End) {
					t.Fatalf("copies %d and %d did not overlap", i, j)
				}
			}
		}
	})
	t.Run("delay", func(t *testing.T) {
		s.SetFaults(Faults{Notify: &NotifyFault{Times: 1, Delay: Duration(150 * time.Millisecond)}})
		start := time.Now()
		act("NF-DELAY", ActionAccept)
		if time.Since(start) < 150*time.Millisecond {
			t.Fatal("not delayed")
		}
		v, _ := s.Transaction("NF-DELAY")
		if v.Notifications[0].Fault != "delay" {
			t.Fatalf("record %+v", v.Notifications[0])
		}
	})
	t.Run("bad_token", func(t *testing.T) {
		s.SetFaults(Faults{Notify: &NotifyFault{Times: 1, BadToken: true}})
		before := len(n.posts())
		act("NF-BAD", ActionAccept)
		p := n.posts()[before]
		var got v1Notification
		if err := json.Unmarshal([]byte(p.Body), &got); err != nil {
			t.Fatal(err)
		}
		right := ids["NF-BAD"].str("notify_token")
		if got.NotifyToken == right || len(got.NotifyToken) != len(right) || got.TransactionID != ids["NF-BAD"].str("transaction_id") {
			t.Fatalf("bad_token sent %+v", got)
		}
		v, _ := s.Transaction("NF-BAD")
		if v.Notifications[0].Fault != "bad_token" {
			t.Fatalf("record %+v", v.Notifications[0])
		}
		act("NF-BAD", ActionNotify) // used up: the right token again
		wantNotification(t, n.posts()[before+1], ids["NF-BAD"])
	})
	t.Run("retries", func(t *testing.T) {
		s.SetFaults(Faults{})
		n.status.Store(http.StatusServiceUnavailable)
		defer n.status.Store(http.StatusOK)
		before := len(n.posts())
		act("NF-RETRY", ActionAccept)
		if p := n.posts()[before:]; len(p) != notifyAttempts {
			t.Fatalf("%d attempts, want %d", len(p), notifyAttempts)
		}
	})
	t.Run("async", func(t *testing.T) {
		gate := make(chan struct{})
		n.gate.Store(&gate)
		defer n.gate.Store(nil)
		s.SetFaults(Faults{NotifyAsync: true})
		before := len(n.posts())
		status, loc, _ := v1Choose(t, ids["NF-ASYNC"].str("payment_url"), ActionAccept)
		if status != http.StatusSeeOther || loc == "" || len(n.posts()) != before {
			t.Fatalf("the browser waited: %d %q", status, loc)
		}
		close(gate)
		waitFor(t, "the async notification", func() bool { return len(n.posts()) == before+1 })
	})
}

func TestV1ControlAct(t *testing.T) {
	s, base, n, ids := v1Setup(t, "ACT-1", "ACT-2", "ACT-3")

	// By merchant_transaction_id through the control API.
	var v Transaction
	if st := control(t, base, http.MethodPost, "/transactions/ACT-1/refuse", nil, &v); st != 200 || v.Status != V1StatusFailed || v.V1 == nil {
		t.Fatalf("refuse: %d %+v", st, v)
	}
	wantNotification(t, n.posts()[0], ids["ACT-1"])
	// pay_late: a late success after the failure.
	if st := control(t, base, http.MethodPost, "/transactions/ACT-1/pay_late", nil, &v); st != 200 || v.Status != V1StatusSuccess {
		t.Fatalf("pay_late: %d %+v", st, v)
	}
	if p := n.posts(); len(p) != 2 {
		t.Fatalf("pay_late: %d notifications", len(p))
	} else {
		wantNotification(t, p[1], ids["ACT-1"])
	}
	tok := login(t, base, keyCI, passCI)
	if r := v1Status(t, base, tok, "ACT-1"); r.code() != 100 {
		t.Fatalf("after pay_late: %s", r.Raw)
	}
	var e map[string]string
	if st := control(t, base, http.MethodPost, "/transactions/ACT-1/pay_late", nil, &e); st != http.StatusConflict {
		t.Fatalf("pay_late twice: %d", st)
	}
	if st := control(t, base, http.MethodPost, "/transactions/ACT-1/refuse", nil, &e); st != http.StatusConflict {
		t.Fatalf("refuse after success: %d", st)
	}

	// By CinetPay's transaction_id: expire, then pay_late.
	cp := ids["ACT-2"].str("transaction_id")
	if _, err := s.Act(cp, ActionPayLate); !errors.Is(err, ErrNotRefused) {
		t.Fatalf("pay_late on INITIATED: %v", err)
	}
	if st := control(t, base, http.MethodPost, "/transactions/"+cp+"/expire", nil, &v); st != 200 || v.Status != V1StatusExpired {
		t.Fatalf("expire: %d %+v", st, v)
	}
	if r := v1Status(t, base, tok, "ACT-2"); r.code() != 2003 {
		t.Fatalf("expired: %s", r.Raw)
	}
	if _, err := s.Act("ACT-2", ActionAccept); !errors.Is(err, ErrFinal) {
		t.Fatalf("accept after expire: %v", err)
	}
	if v, err := s.Act("ACT-2", ActionPayLate); err != nil || v.Status != V1StatusSuccess {
		t.Fatalf("pay_late on EXPIRED: %v %+v", err, v)
	}

	// notify re-sends, whatever the state; by payment_token.
	before := len(n.posts())
	if v, err := s.Act(ids["ACT-3"].str("payment_token"), ActionNotify); err != nil || v.Status != V1StatusInitiated {
		t.Fatalf("notify: %v", err)
	}
	wantNotification(t, n.posts()[before], ids["ACT-3"])

	// expire is v1 only.
	createPayment(t, base, "TXV2", n.URL)
	if st := control(t, base, http.MethodPost, "/transactions/TXV2/expire", nil, &e); st != http.StatusNotFound {
		t.Fatalf("expire on v2: %d", st)
	}
	// Both APIs in one list, in creation order.
	var list []Transaction
	control(t, base, http.MethodGet, "/transactions", nil, &list)
	if len(list) != 4 || list[0].V1 == nil || list[3].V1 != nil {
		t.Fatalf("list %+v", list)
	}
	// Reset forgets v1 transactions but keeps tokens.
	s.Reset()
	if _, ok := s.Transaction(cp); ok {
		t.Fatal("Reset kept a v1 transaction")
	}
	if r := v1Status(t, base, tok, "ACT-1"); r.code() != 404 {
		t.Fatalf("after Reset: %s", r.Raw)
	}
}

func TestV1LateSuccess(t *testing.T) {
	s, base, n, ids := v1Setup(t, "LATE-1", "LATE-2")
	tok := login(t, base, keyCI, passCI)

	s.SetFaults(Faults{LateSuccess: &LateSuccessFault{Times: 1, After: Duration(300 * time.Millisecond)}})
	v1Choose(t, ids["LATE-1"].str("payment_url"), ActionRefuse)
	if r := v1Status(t, base, tok, "LATE-1"); r.code() != 2010 {
		t.Fatalf("right after the refusal: %s", r.Raw)
	}
	if v, _ := s.Transaction("LATE-1"); v.LateSuccess != "after 300ms" {
		t.Fatalf("late_success %q", v.LateSuccess)
	}
	waitFor(t, "the late notification", func() bool { return len(n.posts()) == 2 })
	wantNotification(t, n.posts()[1], ids["LATE-1"])
	if r := v1Status(t, base, tok, "LATE-1"); r.code() != 100 {
		t.Fatalf("after the delay: %s", r.Raw)
	}

	s.SetFaults(Faults{LateSuccess: &LateSuccessFault{OnCheck: true}})
	v1Choose(t, ids["LATE-2"].str("payment_url"), ActionRefuse)
	if r := v1Status(t, base, tok, "LATE-2"); r.code() != 100 || r.status() != "SUCCESS" {
		t.Fatalf("on_check: %s", r.Raw)
	}
	waitFor(t, "the late notification", func() bool { return len(n.posts()) == 4 })
	wantNotification(t, n.posts()[3], ids["LATE-2"])
}

func TestV1ExpireAfter(t *testing.T) {
	s, ts := newV1Sandbox(t)
	n := newNotifyServer(t)
	tok := login(t, ts.URL, keyCI, passCI)
	s.SetFaults(Faults{V1ExpireAfter: Duration(200 * time.Millisecond), V1NotifyStatuses: []string{V1StatusExpired}})
	exp := v1Create(t, ts.URL, tok, "EXP-1", n.URL)
	v1Create(t, ts.URL, tok, "EXP-2", n.URL)
	v1Choose(t, exp.str("payment_url"), ActionWait) // PENDING still expires
	if _, err := s.Act("EXP-2", ActionAccept); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the expiry", func() bool { v, _ := s.Transaction("EXP-1"); return v.Status == V1StatusExpired })
	waitFor(t, "its notification", func() bool { return len(n.posts()) == 1 })
	wantNotification(t, n.posts()[0], exp)
	time.Sleep(100 * time.Millisecond)
	if v, _ := s.Transaction("EXP-2"); v.Status != V1StatusSuccess {
		t.Fatalf("a decided transaction expired: %s", v.Status)
	}
}
