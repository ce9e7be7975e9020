package caddycinetpay

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
	"github.com/caddy-cinetpay/caddy-cinetpay/sandbox"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

func TestNotificationFlow(t *testing.T) {
	e := newEnv(t, envOptions{})
	if resp, _ := e.do(http.MethodGet, "/cinetpay/notify", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("ping: %d", resp.StatusCode)
	}
	txid, _ := e.checkout("order-7", 1000)

	// waiting: the payment stays pending, nothing is delivered
	tx := e.act(txid, "wait")
	if len(tx.Notifications) == 0 || tx.Notifications[len(tx.Notifications)-1].HTTPStatus != http.StatusOK {
		t.Fatalf("waiting notification: %+v", tx.Notifications)
	}
	if p := e.payment(testSiteID, txid); p.State != storage.StatePending {
		t.Fatalf("after waiting: %s", p.State)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(e.shop.allDeliveries()); n != 0 {
		t.Fatalf("%d deliveries for a waiting payment", n)
	}

	// accepted: one delivery, signed, with the confirmed values
	tx = e.act(txid, "accept")
	p := e.waitState(txid, storage.StateAccepted, 5*time.Second)
	ds := e.shop.waitDeliveries(t, 1, 5*time.Second)
	r := ds[0].Result
	if r.TransactionID != txid || r.OrderID != "order-7" || r.Status != "ACCEPTED" || r.Amount != "1000" ||
		r.Currency != "XOF" || r.Environment != "sandbox" || r.PaymentMethod != tx.PaymentMethod ||
		r.OperatorID != tx.OperatorID || r.PaymentDate != tx.PaymentDate || r.EventID == "" || r.Nonce != r.EventID {
		t.Fatalf("delivery %+v (sandbox %+v)", r, tx)
	}
	if body := ds[0].Header.Get("Content-Length"); body != "" && body != "0" {
		t.Fatalf("delivery has a body: %s", body)
	}
	if p.History[len(p.History)-1].EventID != r.EventID {
		t.Fatalf("event id not in history: %+v", p.History)
	}
	// a notification for a final payment: 200 at once, no /check
	checks := e.sb.CheckCount(txid)
	form, token := notification(testSiteID, txid, testSecret)
	if resp, _ := e.notify(form, token); resp.StatusCode != http.StatusOK {
		t.Fatalf("late notification: %d", resp.StatusCode)
	}
	if e.sb.CheckCount(txid) != checks {
		t.Fatal("a final payment was checked again")
	}
	// its repeats are answered from memory (engine.SettledNotices), and only exact repeats:
	// a changed token or site id is still refused
	repeats := func() float64 { return scrape(t)[`caddy_cinetpay_notifications_total{result="repeat"}`] }
	before := repeats()
	for range 3 {
		if resp, _ := e.notify(form, token); resp.StatusCode != http.StatusOK {
			t.Fatalf("repeat of a settled notification: %d", resp.StatusCode)
		}
	}
	if n := repeats() - before; n != 3 {
		t.Fatalf("%v of 3 repeats answered from memory", n)
	}
	_, forged := notification(testSiteID, txid, "not-the-secret")
	if resp, _ := e.notify(form, forged); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged repeat of a settled notification: %d", resp.StatusCode)
	}
	if resp, _ := e.notify(form, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("settled notification without its token: %d", resp.StatusCode)
	}
	otherForm, otherToken := notification(otherSiteID, txid, testSecret)
	if resp, _ := e.notify(otherForm, otherToken); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("settled notification for another site: %d", resp.StatusCode)
	}
	if e.sb.CheckCount(txid) != checks {
		t.Fatal("a final payment was checked again")
	}
	if n := repeats() - before; n != 3 {
		t.Fatalf("forged or other-site variants counted as repeats: %v", n-3)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(e.shop.allDeliveries()); n != 1 {
		t.Fatalf("%d deliveries", n)
	}
	e.assertNoSecrets()
}

func TestNotificationToken(t *testing.T) {
	e := newEnv(t, envOptions{})
	txid, _ := e.checkout("order-8", 1000)
	form, token := notification(testSiteID, txid, testSecret)
	_, forged := notification(testSiteID, txid, "not-the-secret")
	_, apiKeyAsSecret := notification(testSiteID, txid, testAPIKey)
	for name, tok := range map[string]string{"forged": forged, "missing": "", "api key as secret": apiKeyAsSecret,
		"truncated": token[:63], "non-hex": strings.Repeat("z", 64)} {
		resp, _ := e.notify(form, tok)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s token: %d", name, resp.StatusCode)
		}
	}
	// a valid token for another site id
	otherForm, otherToken := notification(otherSiteID, txid, testSecret)
	if resp, _ := e.notify(otherForm, otherToken); resp.StatusCode != http.StatusForbidden {
		t.Errorf("wrong site: %d", resp.StatusCode)
	}
	// bad tokens change nothing; they start one early re-check (at most one per 15 s)
	time.Sleep(300 * time.Millisecond)
	if n := e.sb.CheckCount(txid); n > 1 {
		t.Fatalf("refused notifications caused %d /check", n)
	}
	if p := e.payment(testSiteID, txid); p.State != storage.StatePending || len(p.History) != 1 {
		t.Fatalf("refused notifications changed the payment: %+v", p)
	}
	// an upper-case token is the same token
	if resp, _ := e.notify(form, strings.ToUpper(token)); resp.StatusCode != http.StatusOK {
		t.Errorf("upper-case token: %d", resp.StatusCode)
	}
	// foreign transactions are acknowledged and ignored; ours but unknown → 503
	foreign, ftok := notification(testSiteID, "ORDER-2024-0001", testSecret)
	if resp, _ := e.notify(foreign, ftok); resp.StatusCode != http.StatusOK {
		t.Errorf("foreign: %d", resp.StatusCode)
	}
	lost, ltok := notification(testSiteID, txid[:6]+strings.Repeat("Z", len(txid)-6), testSecret)
	if resp, _ := e.notify(lost, ltok); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("unknown with our prefix: %d", resp.StatusCode)
	}

	// a wrong secret_key must not leave payments hanging: the bad token starts a re-check
	e.sb.SetFaults(sandbox.Faults{Notify: &sandbox.NotifyFault{Lost: true}})
	tx2, _ := e.checkout("order-9", 1000)
	e.act(tx2, "accept")
	form2, _ := notification(testSiteID, tx2, testSecret)
	if resp, _ := e.notify(form2, forged); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged: %d", resp.StatusCode)
	}
	e.waitState(tx2, storage.StateAccepted, 5*time.Second)
	found := false
	for _, l := range e.logLines() {
		if strings.Contains(l, `"level":"error"`) && strings.Contains(l, "check secret_key") && strings.Contains(l, tx2) {
			found = true
		}
	}
	if !found {
		t.Error("no error log for a bad token on a pending payment")
	}
	e.assertNoSecrets()
}

func TestConcurrentIdenticalNotifications(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.sb.SetFaults(sandbox.Faults{Notify: &sandbox.NotifyFault{Lost: true}})
	txid, _ := e.checkout("order-100", 1000)
	e.act(txid, "accept") // accepted at CinetPay; the notifications are lost
	form, token := notification(testSiteID, txid, testSecret)
	body := form.Encode()
	var wg sync.WaitGroup
	codes := make(chan int, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, caddyBase+"/cinetpay/notify", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Token", token)
			resp, err := e.client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Fatalf("a notification got %d", c)
		}
	}
	if n := e.sb.CheckCount(txid); n != 1 {
		t.Fatalf("100 notifications → %d /check", n)
	}
	e.shop.waitDeliveries(t, 1, 5*time.Second)
	for range 10 {
		if resp, _ := e.notify(form, token); resp.StatusCode != http.StatusOK {
			t.Fatal(resp.StatusCode)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n := e.sb.CheckCount(txid); n != 1 {
		t.Fatalf("later notifications → %d /check", n)
	}
	if n := len(e.shop.allDeliveries()); n != 1 {
		t.Fatalf("%d deliveries", n)
	}
}

func TestNotificationReturnAndRecheckRace(t *testing.T) {
	clk := useFakeClock(t)
	e := newEnv(t, envOptions{})
	e.sb.SetFaults(sandbox.Faults{Notify: &sandbox.NotifyFault{Lost: true}})
	txid, _ := e.checkout("order-race", 1000)
	e.act(txid, "accept")
	// /check answers slowly, so that the three callers overlap
	e.sb.SetFaults(sandbox.Faults{Check: &sandbox.APIFault{Hang: sandbox.Duration(1500 * time.Millisecond)}})
	form, token := notification(testSiteID, txid, testSecret)
	clk.advance(time.Minute) // the re-check is due: the re-checker joins within a second
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if resp, _ := e.notify(form, token); resp.StatusCode != http.StatusOK {
			t.Errorf("notification: %d", resp.StatusCode)
		}
	}()
	go func() {
		defer wg.Done()
		time.Sleep(100 * time.Millisecond)
		resp, body := e.do(http.MethodGet, "/cinetpay/return?transaction_id="+txid, nil, nil)
		if resp.StatusCode != http.StatusOK || body != "return page: ACCEPTED" {
			t.Errorf("return: %d %q", resp.StatusCode, body)
		}
	}()
	wg.Wait()
	time.Sleep(1500 * time.Millisecond) // let the re-checker's tick pass
	if n := e.sb.CheckCount(txid); n != 1 {
		t.Fatalf("%d /check for one payment", n)
	}
	e.shop.waitDeliveries(t, 1, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	if n := len(e.shop.allDeliveries()); n != 1 {
		t.Fatalf("%d deliveries", n)
	}
	if p := e.payment(testSiteID, txid); p.State != storage.StateAccepted || len(p.History) != 2 {
		t.Fatalf("%+v", p)
	}
}

func TestMismatchAndDuplicate(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.sb.SetFaults(sandbox.Faults{Paid: &sandbox.PaidFault{Amount: 995, Times: 1}})
	tx1, _ := e.checkout("order-m1", 1000)
	e.act(tx1, "accept")
	e.waitState(tx1, storage.StateMismatch, 5*time.Second)
	e.sb.SetFaults(sandbox.Faults{Paid: &sandbox.PaidFault{Currency: "XAF", Times: 1}})
	tx2, _ := e.checkout("order-m2", 1000)
	e.act(tx2, "accept")
	e.waitState(tx2, storage.StateMismatch, 5*time.Second)

	// two payments of one order started before either was paid: the second is a duplicate
	a, _ := e.checkout("order-d", 1000)
	b, _ := e.checkout("order-d", 1005)
	e.act(a, "accept")
	e.waitState(a, storage.StateAccepted, 5*time.Second)
	e.act(b, "accept")
	e.waitState(b, storage.StateDuplicate, 5*time.Second)

	ds := e.shop.waitDeliveries(t, 4, 5*time.Second)
	got := map[string]*httpsig.Result{}
	for _, d := range ds {
		got[d.Result.TransactionID] = d.Result
	}
	if r := got[tx1]; r.Status != "MISMATCH" || r.Amount != "995" || r.Currency != "XOF" {
		t.Errorf("amount mismatch: %+v", r)
	}
	if r := got[tx2]; r.Status != "MISMATCH" || r.Amount != "1000" || r.Currency != "XAF" {
		t.Errorf("currency mismatch: %+v", r)
	}
	if r := got[a]; r.Status != "ACCEPTED" || r.OrderID != "order-d" {
		t.Errorf("first: %+v", r)
	}
	if r := got[b]; r.Status != "DUPLICATE" || r.OrderID != "order-d" || r.Amount != "1005" {
		t.Errorf("second: %+v", r)
	}
	var mismatchLogged bool
	for _, l := range e.logLines() {
		if strings.Contains(l, `"level":"error"`) && strings.Contains(l, "MISMATCH") {
			mismatchLogged = true
		}
	}
	if !mismatchLogged {
		t.Error("no error log for a mismatch")
	}
}

func TestLateSuccessAfterRefusal(t *testing.T) {
	clk := useFakeClock(t)
	e := newEnv(t, envOptions{})

	// found by its notification (more than 15 s after the refusal's check)
	e.sb.SetFaults(sandbox.Faults{LateSuccess: &sandbox.LateSuccessFault{After: sandbox.Duration(time.Second), Times: 1}})
	txid, _ := e.checkout("order-late", 1000)
	e.act(txid, "refuse")
	p := e.waitState(txid, storage.StateRefused, 5*time.Second)
	// next: the 1 h re-check, or the check a notification inside the quiet period stored
	if next := p.NextCheck.Sub(clk.now()); next > engine.QuietPeriod && next < 59*time.Minute {
		t.Fatalf("refused payment re-checked in %v", next)
	}
	clk.advance(16 * time.Second)
	// the late success's notification is checked at once or, inside a quiet period, stored as
	// a check due at its end: acknowledged either way, and ACCEPTED once the period is over
	waitFor(t, 5*time.Second, func() bool {
		tx, _ := e.sb.Transaction(txid)
		n := len(tx.Notifications)
		return tx.Status == "ACCEPTED" && n > 0 && tx.Notifications[n-1].Status == "ACCEPTED" &&
			tx.Notifications[n-1].HTTPStatus == http.StatusOK
	})
	clk.advance(16 * time.Second)
	e.waitState(txid, storage.StateAccepted, 10*time.Second)
	ds := e.shop.waitDeliveries(t, 2, 5*time.Second)
	if ds[0].Result.Status != "REFUSED" || ds[1].Result.Status != "ACCEPTED" || ds[0].Result.EventID == ds[1].Result.EventID {
		t.Fatalf("deliveries %+v %+v", ds[0].Result, ds[1].Result)
	}

	// found by the re-check an hour after the refusal (its notification lost)
	e.sb.SetFaults(sandbox.Faults{LateSuccess: &sandbox.LateSuccessFault{After: sandbox.Duration(time.Second), Times: 1}})
	tx2, _ := e.checkout("order-late2", 1000)
	e.act(tx2, "refuse")
	e.waitState(tx2, storage.StateRefused, 5*time.Second)
	e.sb.SetFaults(sandbox.Faults{Notify: &sandbox.NotifyFault{Lost: true}})
	waitFor(t, 5*time.Second, func() bool { tx, _ := e.sb.Transaction(tx2); return tx.Status == "ACCEPTED" })
	time.Sleep(200 * time.Millisecond)
	if p := e.payment(testSiteID, tx2); p.State != storage.StateRefused {
		t.Fatalf("changed without a check: %s", p.State)
	}
	clk.advance(time.Hour + time.Second)
	e.waitState(tx2, storage.StateAccepted, 10*time.Second)
	e.shop.waitDeliveries(t, 4, 5*time.Second)
}

func TestRefusedRecheckedTwiceThenLeft(t *testing.T) {
	clk := useFakeClock(t)
	e := newEnv(t, envOptions{})
	txid, _ := e.checkout("order-refused", 1000)
	e.act(txid, "refuse")
	e.waitState(txid, storage.StateRefused, 5*time.Second)
	before := e.sb.CheckCount(txid)
	clk.advance(time.Hour + time.Second)
	e.waitCheckedAt(txid, clk.now())
	clk.advance(23 * time.Hour)
	e.waitCheckedAt(txid, clk.now())
	if n := e.sb.CheckCount(txid); n != before+2 {
		t.Fatalf("%d re-checks", n-before)
	}
	if p := e.payment(testSiteID, txid); !p.NextCheck.IsZero() || p.State != storage.StateRefused {
		t.Fatalf("after the 24 h re-check: %+v", p)
	}
	clk.advance(48 * time.Hour)
	time.Sleep(1500 * time.Millisecond)
	if n := e.sb.CheckCount(txid); n != before+2 {
		t.Fatalf("%d checks", n-before)
	}
}

func TestExpiryAfter48Hours(t *testing.T) {
	clk := useFakeClock(t)
	e := newEnv(t, envOptions{})
	txid, _ := e.checkout("order-silent", 1000)
	// the customer never pays; the module re-checks, spreading out
	clk.advance(31 * time.Second)
	p := e.waitCheckedAt(txid, clk.now())
	if p.State != storage.StatePending || p.NextCheck.Sub(clk.now()) < 50*time.Second {
		t.Fatalf("after the first re-check: %+v", p)
	}
	clk.advance(48 * time.Hour)
	e.waitState(txid, storage.StateExpired, 10*time.Second)
	ds := e.shop.waitDeliveries(t, 1, 5*time.Second)
	if r := ds[0].Result; r.Status != "EXPIRED" || r.Amount != "1000" {
		t.Fatalf("%+v", r)
	}
	// a late success still wins
	clk.advance(16 * time.Second)
	e.act(txid, "accept")
	e.waitState(txid, storage.StateAccepted, 5*time.Second)
	e.shop.waitDeliveries(t, 2, 5*time.Second)
}

func TestCheckOutageThenRecheck(t *testing.T) {
	clk := useFakeClock(t)
	e := newEnv(t, envOptions{})
	txid, _ := e.checkout("order-outage", 1000)
	for _, fault := range []*sandbox.APIFault{{Code: "429"}, {Status: 503}, {Body: sandbox.BodyGarbage}} {
		e.sb.SetFaults(sandbox.Faults{Check: fault})
		form, token := notification(testSiteID, txid, testSecret)
		if resp, _ := e.notify(form, token); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%+v: %d", fault, resp.StatusCode)
		}
	}
	e.act(txid, "accept")
	tx, _ := e.sb.Transaction(txid)
	last := tx.Notifications[len(tx.Notifications)-1]
	if last.HTTPStatus != http.StatusServiceUnavailable {
		t.Fatalf("notification during the outage: %+v", last)
	}
	if p := e.payment(testSiteID, txid); p.State != storage.StatePending {
		t.Fatalf("changed during the outage: %s", p.State)
	}
	e.sb.SetFaults(sandbox.Faults{})
	clk.advance(time.Minute)
	e.waitState(txid, storage.StateAccepted, 10*time.Second)
	e.shop.waitDeliveries(t, 1, 5*time.Second)
}

func TestLostNotificationFinishedByRecheck(t *testing.T) {
	clk := useFakeClock(t)
	e := newEnv(t, envOptions{})
	e.sb.SetFaults(sandbox.Faults{Notify: &sandbox.NotifyFault{Lost: true}})
	txid, _ := e.checkout("order-lost", 1000)
	e.act(txid, "accept")
	clk.advance(31 * time.Second)
	e.waitState(txid, storage.StateAccepted, 10*time.Second)
	e.shop.waitDeliveries(t, 1, 5*time.Second)
}

func TestUnknownStartResolvedByRecheck(t *testing.T) {
	clk := useFakeClock(t)
	e := newEnv(t, envOptions{})
	e.sb.SetFaults(sandbox.Faults{Payment: &sandbox.APIFault{Hang: sandbox.Duration(2500 * time.Millisecond), Times: 1}})
	e.shop.setIntent(intentHeaders("order-unknown", 1000))
	if resp, _ := e.do(http.MethodPost, "/checkout/cart", nil, nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("%d", resp.StatusCode)
	}
	ps := e.payments("state=UNKNOWN")
	if len(ps) != 1 {
		t.Fatalf("%+v", ps)
	}
	txid := ps[0].TransactionID
	waitFor(t, 5*time.Second, func() bool { _, ok := e.sb.Transaction(txid); return ok })
	clk.advance(31 * time.Second)
	e.waitState(txid, storage.StatePending, 10*time.Second)
	e.act(txid, "accept")
	e.waitState(txid, storage.StateAccepted, 5*time.Second)
	e.shop.waitDeliveries(t, 1, 5*time.Second)
}

func TestDeliveryRetries(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.shop.mu.Lock()
	e.shop.failNext = 2
	e.shop.mu.Unlock()
	txid, _ := e.checkout("order-retry", 1000)
	e.act(txid, "accept")
	e.shop.waitDeliveries(t, 1, 20*time.Second)
	all := e.shop.allDeliveries()
	if len(all) != 3 {
		t.Fatalf("%d attempts", len(all))
	}
	for _, d := range all {
		if d.Err != nil || d.Result.EventID != all[0].Result.EventID {
			t.Fatalf("attempt %+v", d)
		}
	}
	if all[0].Header.Get("Signature") == all[2].Header.Get("Signature") && all[0].Result.Created.Equal(all[2].Result.Created) {
		t.Fatal("not re-signed")
	}
	var ds struct {
		Deliveries []storage.Delivery `json:"deliveries"`
	}
	// the shop has its answer before the module records the attempt's outcome
	waitFor(t, 5*time.Second, func() bool {
		e.admin(http.MethodGet, "/cinetpay/deliveries?transaction_id="+txid, &ds)
		return len(ds.Deliveries) == 1 && ds.Deliveries[0].State != storage.DeliveryPending
	})
	if len(ds.Deliveries) != 1 || ds.Deliveries[0].Attempts != 3 || ds.Deliveries[0].State != storage.DeliveryDelivered {
		t.Fatalf("%+v", ds.Deliveries)
	}
}

func TestBadNotificationBodies(t *testing.T) {
	e := newEnv(t, envOptions{})
	txid, _ := e.checkout("order-bodies", 1000)
	form, token := notification(testSiteID, txid, testSecret)
	valid := form.Encode()
	for _, c := range []struct {
		name, ctype, body string
		want              int
	}{
		{"oversize", "application/x-www-form-urlencoded", valid + "&pad=" + strings.Repeat("x", 65<<10), http.StatusRequestEntityTooLarge},
		{"malformed", "application/x-www-form-urlencoded", "cpm_trans_id=%zz", http.StatusBadRequest},
		{"empty", "application/x-www-form-urlencoded", "", http.StatusBadRequest},
		{"repeated field", "application/x-www-form-urlencoded", valid + "&cpm_trans_id=" + txid, http.StatusBadRequest},
		{"non-UTF-8", "application/x-www-form-urlencoded", valid + "&cpm_designation=%FF%FE", http.StatusBadRequest},
		{"JSON number", "application/json", `{"cpm_trans_id":1}`, http.StatusBadRequest},
		{"JSON garbage", "application/json", `{"cpm_trans_id":`, http.StatusBadRequest},
	} {
		resp, _ := e.do(http.MethodPost, "/cinetpay/notify", strings.NewReader(c.body), http.Header{
			"Content-Type": {c.ctype}, "X-Token": {token}})
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
	// a query string never counts: the body alone is read
	resp, _ := e.do(http.MethodPost, "/cinetpay/notify?"+valid, strings.NewReader("a=b"), http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"}, "X-Token": {token}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("query string: %d", resp.StatusCode)
	}
	if n := e.sb.CheckCount(txid); n != 0 {
		t.Fatalf("%d /check", n)
	}
	if p := e.payment(testSiteID, txid); p.State != storage.StatePending || len(p.History) != 1 {
		t.Fatalf("state changed: %+v", p)
	}
	// JSON with string values is accepted; the server is healthy
	js := `{`
	for k := range form {
		js += `"` + k + `":"` + form.Get(k) + `",`
	}
	js = strings.TrimSuffix(js, ",") + `}`
	resp, _ = e.do(http.MethodPost, "/cinetpay/notify", strings.NewReader(js), http.Header{
		"Content-Type": {"application/json"}, "X-Token": {token}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("JSON notification: %d", resp.StatusCode)
	}
	if resp, _ := e.do(http.MethodPut, "/cinetpay/notify", nil, nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
}

func TestSpoofedHeadersNeverReachTheShop(t *testing.T) {
	e := newEnv(t, envOptions{})
	txid, _ := e.checkout("order-spoof", 1000)
	spoof := http.Header{
		"Cinetpay-Status":   {"ACCEPTED"},
		"Cinetpay_Status":   {"ACCEPTED"},
		"CINETPAY-ORDER-ID": {"order-spoof"},
		"cinetpay_amount":   {"1"},
		"Cinetpay-Event-Id": {"evil"},
		"Signature":         {"cinetpay=:AAAA:"},
		"Signature-Input":   {`cinetpay=("@method");created=1;keyid="shop1"`},
		"Signature_Input":   {`cinetpay=("@method")`},
		"Content-Digest":    {"sha-256=:AAAA:"},
	}
	form, token := notification(testSiteID, txid, testSecret)
	notifyHdr := spoof.Clone()
	notifyHdr.Set("Content-Type", "application/x-www-form-urlencoded")
	notifyHdr.Set("X-Token", token)
	e.do(http.MethodPost, "/cinetpay/notify", strings.NewReader(form.Encode()), notifyHdr)
	resp, body := e.do(http.MethodGet, "/anything", nil, spoof)
	if body != "shop page" {
		t.Fatalf("%q", body)
	}
	for k := range resp.Header {
		if isCinetpayHeader(k) {
			t.Errorf("the shop's %s reached the browser", k)
		}
	}
	e.do(http.MethodPost, "/checkout/cart", nil, spoof)
	e.do(http.MethodGet, "/cinetpay/return?transaction_id=NOTOURS", nil, spoof)
	e.do(http.MethodGet, "/cinetpay/return?transaction_id="+txid, nil, spoof)
	for k := range e.shop.headersSeen() {
		if isCinetpayHeader(k) && !strings.Contains(k, "-") {
			t.Errorf("%s reached the shop", k)
		}
	}
	e.shop.mu.Lock()
	defer e.shop.mu.Unlock()
	for i, h := range e.shop.seen {
		path := e.shop.paths[i]
		signed := strings.HasPrefix(path, "/cinetpay/return?transaction_id="+txid) || path == "/cinetpay/webhook"
		for k, v := range h {
			lk := strings.ToLower(k)
			if !signed && (isCinetpayHeader(k) || (strings.HasPrefix(path, "/cinetpay/") && (strings.HasPrefix(lk, "signature") || lk == "content-digest"))) {
				t.Errorf("%s: %s: %v reached the shop", path, k, v)
			}
			if signed && (strings.Contains(strings.Join(v, ","), "evil") || lk == "content-digest" || lk == "signature_input") {
				t.Errorf("%s: spoofed %s: %v reached the shop", path, k, v)
			}
		}
	}
	for _, r := range e.shop.returns {
		if r.Header.Get("Cinetpay-Status") != "" && r.Err != nil {
			t.Errorf("return headers do not verify: %v", r.Err)
		}
	}
}

func TestReturnFlow(t *testing.T) {
	e := newEnv(t, envOptions{})
	txid, _ := e.checkout("order-ret", 1000)
	tx, _ := e.sb.Transaction(txid)
	// CinetPay's POST becomes a same-site GET
	form := url.Values{"transaction_id": {txid}, "token": {tx.Token}}
	resp, _ := e.do(http.MethodPost, "/cinetpay/return?transaction_id="+txid, strings.NewReader(form.Encode()),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/cinetpay/return?transaction_id="+txid {
		t.Fatalf("POST: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// pending: checked at CinetPay, shown as PENDING
	resp, body := e.do(http.MethodGet, resp.Header.Get("Location"), nil, nil)
	if resp.StatusCode != http.StatusOK || body != "return page: PENDING" {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	if e.sb.CheckCount(txid) != 1 {
		t.Fatalf("%d /check", e.sb.CheckCount(txid))
	}
	// a second visit within 15 s does not call CinetPay again
	e.do(http.MethodGet, "/cinetpay/return?transaction_id="+txid, nil, nil)
	if e.sb.CheckCount(txid) != 1 {
		t.Fatalf("%d /check", e.sb.CheckCount(txid))
	}
	e.act(txid, "accept")
	e.waitState(txid, storage.StateAccepted, 5*time.Second)
	_, body = e.do(http.MethodGet, "/cinetpay/return?transaction_id="+txid, nil, nil)
	if body != "return page: ACCEPTED" {
		t.Fatalf("%q", body)
	}
	e.shop.mu.Lock()
	rets := append([]shopReturn(nil), e.shop.returns...)
	e.shop.mu.Unlock()
	if len(rets) != 3 {
		t.Fatalf("%d return pages", len(rets))
	}
	for _, r := range rets {
		if r.Err != nil || r.Result.TransactionID != txid || r.Result.OrderID != "order-ret" || r.Result.EventID != "" {
			t.Fatalf("return %+v %v", r.Result, r.Err)
		}
	}
	if rets[0].Result.Nonce == rets[1].Result.Nonce {
		t.Fatal("return nonce reused")
	}
	// the return tag is not a delivery: the delivery verifier refuses it
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.Header = rets[2].Header
	if _, err := e.shop.verifier.Verify(req); err == nil {
		t.Fatal("a return page verified as a delivery")
	}
	// unknown transactions pass without result headers
	_, body = e.do(http.MethodGet, "/cinetpay/return?transaction_id=UNKNOWN1", nil, nil)
	if body != "return page: none" {
		t.Fatalf("%q", body)
	}
	// a form too big, a bad id
	if resp, _ := e.do(http.MethodPost, "/cinetpay/return", bytes.NewReader(make([]byte, 20<<10)), nil); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("big form: %d", resp.StatusCode)
	}
	if resp, _ := e.do(http.MethodPost, "/cinetpay/return", strings.NewReader("transaction_id=a/b"),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad id: %d", resp.StatusCode)
	}
}

func TestAdminRoutes(t *testing.T) {
	e := newEnv(t, envOptions{})
	a, _ := e.checkout("order-a", 1000)
	b, _ := e.checkout("order-b", 2000)
	e.sb.SetFaults(sandbox.Faults{Notify: &sandbox.NotifyFault{Lost: true}})
	e.act(b, "accept")

	if ps := e.payments("state=pending"); len(ps) != 2 {
		t.Fatalf("pending: %d", len(ps))
	}
	if ps := e.payments("site_id=" + testSiteID + "&order_id=order-a"); len(ps) != 1 || ps[0].TransactionID != a {
		t.Fatalf("by order: %+v", ps)
	}
	if code := e.admin(http.MethodGet, "/cinetpay/payments?state=BOGUS", nil); code != http.StatusBadRequest {
		t.Fatalf("bad state: %d", code)
	}
	if code := e.admin(http.MethodGet, "/cinetpay/payments/"+testSiteID+"/NOPE", nil); code != http.StatusNotFound {
		t.Fatalf("unknown: %d", code)
	}
	// re-check one payment now
	var rc struct {
		Payment storage.Payment `json:"payment"`
		Checked bool            `json:"checked"`
	}
	if code := e.admin(http.MethodPost, "/cinetpay/payments/"+testSiteID+"/"+b+"/recheck", &rc); code != http.StatusOK ||
		!rc.Checked || rc.Payment.State != storage.StateAccepted {
		t.Fatalf("recheck: %d %+v", code, rc)
	}
	ds := e.shop.waitDeliveries(t, 1, 5*time.Second)
	// replay the delivery: the same event id again
	if code := e.admin(http.MethodPost, "/cinetpay/deliveries/"+testSiteID+"/"+ds[0].Result.EventID+"/replay", nil); code != http.StatusOK {
		t.Fatalf("replay: %d", code)
	}
	ds = e.shop.waitDeliveries(t, 2, 5*time.Second)
	if ds[1].Result.EventID != ds[0].Result.EventID {
		t.Fatal("replay changed the event id")
	}
	if code := e.admin(http.MethodPost, "/cinetpay/deliveries/"+testSiteID+"/nope/replay", nil); code != http.StatusNotFound {
		t.Fatalf("unknown replay: %d", code)
	}
	if code := e.admin(http.MethodGet, "/cinetpay/payments/"+testSiteID+"/"+b+"/recheck", nil); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET recheck: %d", code)
	}
}

// waitCheckedAt waits until the module recorded a /check of the payment at time at (fake clock).
func (e *env) waitCheckedAt(txid string, at time.Time) storage.Payment {
	e.t.Helper()
	var p storage.Payment
	waitFor(e.t, 10*time.Second, func() bool {
		p = e.payment(testSiteID, txid)
		return !p.LastCheck.Before(at)
	})
	return p
}

// waitFor polls cond until it holds.
func waitFor(t testing.TB, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDeliveryGivenUpThenReplayed(t *testing.T) {
	clk := useFakeClock(t)
	e := newEnv(t, envOptions{})
	e.shop.mu.Lock()
	e.shop.failNext = 1 << 30
	e.shop.mu.Unlock()
	txid, _ := e.checkout("order-giveup", 1000)
	e.act(txid, "accept")
	var ds struct {
		Deliveries []storage.Delivery `json:"deliveries"`
	}
	// the first attempt's failure is stored before the clock moves (else it would be the last)
	waitFor(t, 5*time.Second, func() bool {
		e.admin(http.MethodGet, "/cinetpay/deliveries?transaction_id="+txid, &ds)
		return len(ds.Deliveries) == 1 && ds.Deliveries[0].LastHTTPStatus == http.StatusInternalServerError
	})
	// retried for three days, then given up: kept, listed, logged as an error
	clk.advance(72*time.Hour + time.Minute)
	waitFor(t, 10*time.Second, func() bool {
		e.admin(http.MethodGet, "/cinetpay/deliveries?state=failed", &ds)
		return len(ds.Deliveries) == 1
	})
	d := ds.Deliveries[0]
	if d.TransactionID != txid || d.Attempts < 2 || d.LastHTTPStatus != http.StatusInternalServerError {
		t.Fatalf("%+v", d)
	}
	var logged bool
	for _, l := range e.logLines() {
		if strings.Contains(l, `"level":"error"`) && strings.Contains(l, "delivery given up") && strings.Contains(l, d.ID) {
			logged = true
		}
	}
	if !logged {
		t.Error("giving up was not logged as an error")
	}
	// the shop is back, but fails once more: the operator replays it, and the backoff starts
	// again from its first step
	e.shop.mu.Lock()
	e.shop.failNext = 1
	e.shop.mu.Unlock()
	if code := e.admin(http.MethodPost, "/cinetpay/deliveries/"+testSiteID+"/"+d.ID+"/replay", nil); code != http.StatusOK {
		t.Fatalf("replay: %d", code)
	}
	waitFor(t, 10*time.Second, func() bool {
		e.admin(http.MethodGet, "/cinetpay/deliveries?transaction_id="+txid, &ds)
		r := ds.Deliveries[0]
		// attempted, and no longer leased (BeginAttempt leases for forward_timeout + engine.LeaseMargin)
		return r.Attempts == d.Attempts+1 && r.NextAttempt.Sub(r.LastAttempt) != defaultForwardTimeout+engine.LeaseMargin
	})
	if r := ds.Deliveries[0]; r.State != storage.DeliveryPending || r.NextAttempt.Sub(r.LastAttempt) > engine.FirstRetry {
		t.Fatalf("after a replay: %+v", r)
	}
	clk.advance(engine.FirstRetry)
	got := e.shop.waitDeliveries(t, 1, 10*time.Second)
	if got[0].Result.EventID != d.ID {
		t.Fatalf("replayed under another id: %s", got[0].Result.EventID)
	}
}
