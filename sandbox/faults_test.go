package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFaultsControlAPI(t *testing.T) {
	s, ts := newSandbox(t)
	setFaults(t, ts.URL, `{"payment":{"times":2,"code":"609"},"check":{"hang":"1.5s"},"rate_limit":7,
		"notify":{"duplicate":1,"omit_fields":["cpm_custom"]},"notify_async":true,
		"paid":{"amount":95},"late_success":{"after":"2s","on_check":true}}`)
	var got map[string]any
	if st := control(t, ts.URL, http.MethodGet, "/faults", nil, &got); st != 200 {
		t.Fatalf("GET: %d", st)
	}
	raw, _ := json.Marshal(got)
	want := `{"check":{"hang":"1.5s"},"late_success":{"after":"2s","on_check":true},` +
		`"notify":{"duplicate":1,"omit_fields":["cpm_custom"]},"notify_async":true,"paid":{"amount":95},` +
		`"payment":{"code":"609","times":2},"rate_limit":7}`
	if string(raw) != want {
		t.Fatalf("GET faults:\n%s\nwant\n%s", raw, want)
	}
	f := s.Faults()
	if f.Check.Hang != Duration(1500*time.Millisecond) || f.Payment.Times != 2 {
		t.Fatalf("Faults() %+v", f)
	}
	// Faults returns a copy.
	f.Payment.Times = 99
	if s.Faults().Payment.Times != 2 {
		t.Fatal("Faults() shares its knobs")
	}
	// Times count down and the knob disappears.
	call(t, ts.URL, "/v2/payment", paymentBody("TXF1", "http://127.0.0.1:1"))
	if s.Faults().Payment.Times != 1 {
		t.Fatalf("times after one call: %d", s.Faults().Payment.Times)
	}
	call(t, ts.URL, "/v2/payment", paymentBody("TXF2", "http://127.0.0.1:1"))
	if s.Faults().Payment != nil {
		t.Fatal("used-up knob still there")
	}
	if st := control(t, ts.URL, http.MethodDelete, "/faults", nil, nil); st != http.StatusNoContent {
		t.Fatalf("DELETE: %d", st)
	}
	if !isZeroFaults(s.Faults()) {
		t.Fatalf("after DELETE: %+v", s.Faults())
	}

	for _, bad := range []string{
		`{"payment":{"code":"609"},"typo":1}`,
		`{"payment":{"body":"weird"}}`,
		`{"payment":{"times":1}}`,
		`{"payment":{"status":42}}`,
		`{"check":{"hang":"soon"}}`,
		`{"late_success":{"times":1}}`,
		`{"paid":{}}`,
		`{"notify":{"omit_fields":["cpm_nothing"]}}`,
		`{"rate_limit":-1}`,
		`{"amount_format":"%s"}`,
		`{"amount_format":"%d%d"}`,
		`{"amount_format":"5000"}`,
		`not json`,
	} {
		var e map[string]string
		req, _ := http.NewRequest(http.MethodPut, ts.URL+"/_sandbox/faults", strings.NewReader(bad))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || e["error"] == "" {
			t.Errorf("PUT %s: %d %v", bad, resp.StatusCode, e)
		}
	}
}

func isZeroFaults(f Faults) bool {
	return f.Payment == nil && f.Check == nil && f.RateLimit == 0 && f.Notify == nil &&
		!f.NotifyAsync && f.Paid == nil && f.LateSuccess == nil
}

func TestPaymentFaultCode(t *testing.T) {
	s, ts := newSandbox(t)
	setFaults(t, ts.URL, `{"payment":{"times":2,"code":"609"}}`)
	for i := range 2 {
		r := call(t, ts.URL, "/v2/payment", paymentBody("TXFC"+string(rune('A'+i)), "http://127.0.0.1:1"))
		if r.code() != "609" || r.Body["message"] != "AUTH_NOT_FOUND" || r.Status != 400 {
			t.Fatalf("call %d: %d %s", i, r.Status, r.Raw)
		}
	}
	if len(s.Transactions()) != 0 {
		t.Fatal("a faulted call created a transaction")
	}
	if r := call(t, ts.URL, "/v2/payment", paymentBody("TXFCC", "http://127.0.0.1:1")); r.code() != "201" {
		t.Fatalf("third call: %s", r.Raw)
	}
	if reqs := s.Requests(); reqs[0].Fault != "payment" || reqs[0].Code != "609" || reqs[2].Fault != "" {
		t.Fatalf("requests: %+v", reqs)
	}
}

func TestPaymentFault429RetryAfter(t *testing.T) {
	_, ts := newSandbox(t)
	setFaults(t, ts.URL, `{"payment":{"code":"429","retry_after":3}}`)
	for range 3 { // always
		r := call(t, ts.URL, "/v2/payment", paymentBody("TX429", "http://127.0.0.1:1"))
		if r.Status != 429 || r.code() != "429" || r.Body["message"] != "TOO_MANY_REQUEST" || r.Header.Get("Retry-After") != "3" {
			t.Fatalf("%d %v %s", r.Status, r.Header, r.Raw)
		}
	}
}

func TestPaymentFaultStatusHTML(t *testing.T) {
	s, ts := newSandbox(t)
	setFaults(t, ts.URL, `{"payment":{"times":1,"status":503}}`)
	r := call(t, ts.URL, "/v2/payment", paymentBody("TX503", "http://127.0.0.1:1"))
	if r.Status != 503 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(r.Raw), "<h1>503 Service Unavailable</h1>") || r.Body != nil {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	if len(s.Transactions()) != 0 {
		t.Fatal("transaction created")
	}
	// processed: the transaction exists though the answer is a 502.
	setFaults(t, ts.URL, `{"payment":{"times":1,"status":502,"processed":true}}`)
	r = call(t, ts.URL, "/v2/payment", paymentBody("TX502", "http://127.0.0.1:1"))
	if r.Status != 502 {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	if _, ok := s.Transaction("TX502"); !ok {
		t.Fatal("processed fault did not create the transaction")
	}
}

func TestPaymentFaultBodies(t *testing.T) {
	s, ts := newSandbox(t)
	for _, tc := range []struct {
		body    string
		status  int
		created bool
	}{
		{BodyGarbage, 200, false},
		{BodyTruncated, 200, true},
		{BodyEmpty, 200, false},
		{BodyHTML, 200, false},
	} {
		setFaults(t, ts.URL, `{"payment":{"times":1,"body":"`+tc.body+`"}}`)
		id := "TXBODY" + strings.ToUpper(tc.body)
		r := call(t, ts.URL, "/v2/payment", paymentBody(id, "http://127.0.0.1:1"))
		if r.Status != tc.status || r.Body != nil {
			t.Errorf("%s: %d %q parsed as %v", tc.body, r.Status, r.Raw, r.Body)
		}
		if json.Valid(r.Raw) {
			t.Errorf("%s: answer is valid JSON: %q", tc.body, r.Raw)
		}
		if _, ok := s.Transaction(id); ok != tc.created {
			t.Errorf("%s: created %v, want %v", tc.body, ok, tc.created)
		}
		switch tc.body {
		case BodyTruncated:
			if !strings.HasPrefix(string(r.Raw), `{"code":"201"`) {
				t.Errorf("truncated: %q", r.Raw)
			}
		case BodyEmpty:
			if len(r.Raw) != 0 {
				t.Errorf("empty: %q", r.Raw)
			}
		case BodyHTML:
			if !strings.Contains(string(r.Raw), "<html>") {
				t.Errorf("html: %q", r.Raw)
			}
		}
	}
}

func TestPaymentFaultHang(t *testing.T) {
	s, ts := newSandbox(t)
	// The client times out; the payment is created anyway.
	setFaults(t, ts.URL, `{"payment":{"times":1,"hang":"10s"}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	raw, _ := json.Marshal(paymentBody("TXHANG", "http://127.0.0.1:1"))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v2/payment", strings.NewReader(string(raw)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "t")
	_, err := http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want a timeout", err)
	}
	waitFor(t, "the hung payment to be created", func() bool { _, ok := s.Transaction("TXHANG"); return ok })

	// A short hang delays a normal answer.
	setFaults(t, ts.URL, `{"payment":{"times":1,"hang":"200ms"}}`)
	start := time.Now()
	r := call(t, ts.URL, "/v2/payment", paymentBody("TXHANG2", "http://127.0.0.1:1"))
	if r.code() != "201" || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("short hang: %s after %v", r.Raw, time.Since(start))
	}
}

func TestCheckFaults(t *testing.T) {
	_, ts := newSandbox(t)
	createPayment(t, ts.URL, "TXCF", "http://127.0.0.1:1")

	setFaults(t, ts.URL, `{"check":{"times":1,"code":"603"}}`)
	r := check(t, ts.URL, "TXCF")
	if r.code() != "603" || r.Body["message"] != "SERVICE_UNAVAILABLE" || r.data() != nil {
		t.Fatalf("code: %s", r.Raw)
	}
	if r := check(t, ts.URL, "TXCF"); r.code() != "662" {
		t.Fatalf("after the fault: %s", r.Raw)
	}

	setFaults(t, ts.URL, `{"check":{"times":1,"status":502}}`)
	if r := check(t, ts.URL, "TXCF"); r.Status != 502 || r.Body != nil {
		t.Fatalf("status: %d %s", r.Status, r.Raw)
	}

	setFaults(t, ts.URL, `{"check":{"times":1,"body":"garbage"}}`)
	if r := check(t, ts.URL, "TXCF"); r.Status != 200 || r.Body != nil || len(r.Raw) == 0 {
		t.Fatalf("garbage: %d %s", r.Status, r.Raw)
	}

	setFaults(t, ts.URL, `{"check":{"times":1,"code":"429","retry_after":2}}`)
	if r := check(t, ts.URL, "TXCF"); r.Status != 429 || r.Header.Get("Retry-After") != "2" {
		t.Fatalf("429: %d %v", r.Status, r.Header)
	}

	setFaults(t, ts.URL, `{"check":{"times":1,"hang":"5s"}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v2/payment/check",
		strings.NewReader(`{"apikey":"`+keyA+`","site_id":"`+siteA+`","transaction_id":"TXCF"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "t")
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang: %v", err)
	}
}

func TestRateLimit(t *testing.T) {
	_, ts := newSandbox(t)
	createPayment(t, ts.URL, "TXRL", "http://127.0.0.1:1")
	setFaults(t, ts.URL, `{"rate_limit":3}`)
	var codes []string
	for range 5 {
		r := check(t, ts.URL, "TXRL")
		codes = append(codes, r.code())
		if r.code() == "429" && (r.Status != 429 || r.Header.Get("Retry-After") != "1") {
			t.Fatalf("429 answer: %d %v", r.Status, r.Header)
		}
	}
	if strings.Join(codes, ",") != "662,662,662,429,429" {
		t.Fatalf("codes %v", codes)
	}
	// Payments share the limit.
	if r := call(t, ts.URL, "/v2/payment", paymentBody("TXRL2", "http://127.0.0.1:1")); r.code() != "429" {
		t.Fatalf("payment: %s", r.Raw)
	}
	time.Sleep(1100 * time.Millisecond)
	if r := check(t, ts.URL, "TXRL"); r.code() != "662" {
		t.Fatalf("after a second: %s", r.Raw)
	}
}

func TestNotifyFaultLost(t *testing.T) {
	s, ts := newSandbox(t)
	n := newNotifyServer(t)
	tok := createPayment(t, ts.URL, "TXLOST", n.URL)
	setFaults(t, ts.URL, `{"notify":{"times":1,"lost":true}}`)
	choose(t, ts.URL, tok, "accept")
	reqs := n.requests()
	if len(reqs) != 2 || reqs[0].Method != http.MethodGet || reqs[1].Form.Get("cpm_error_message") != "SUCCES" {
		t.Fatalf("requests %+v, want the ping and ACCEPTED only", reqs)
	}
	v, _ := s.Transaction("TXLOST")
	if v.Notifications[0].Fault != "lost" || v.Notifications[0].Status != StatusWaiting {
		t.Fatalf("record %+v", v.Notifications[0])
	}
	// Always lost: nothing at all reaches the shop, not even the ping.
	tok = createPayment(t, ts.URL, "TXLOST2", n.URL)
	setFaults(t, ts.URL, `{"notify":{"lost":true}}`)
	choose(t, ts.URL, tok, "refuse")
	if len(n.requests()) != 2 {
		t.Fatalf("lost notifications arrived: %+v", n.requests()[2:])
	}
}

func TestNotifyFaultDuplicate(t *testing.T) {
	_, ts := newSandbox(t)
	n := newNotifyServer(t)
	tok := createPayment(t, ts.URL, "TXDUPN", n.URL)
	setFaults(t, ts.URL, `{"notify":{"times":1,"duplicate":2}}`)
	choose(t, ts.URL, tok, "accept")
	p := n.posts()
	if len(p) != 4 {
		t.Fatalf("%d POSTs, want 3 WAITING + 1 ACCEPTED", len(p))
	}
	for i := range 3 {
		if p[i].Form.Get("cpm_error_message") != "WAITING_CUSTOMER_PAYMENT" || p[i].Body != p[0].Body ||
			p[i].XToken != expectedXToken(secretA, p[i].Form) {
			t.Fatalf("copy %d: %+v", i, p[i])
		}
	}
	if p[3].Form.Get("cpm_error_message") != "SUCCES" {
		t.Fatalf("last: %+v", p[3])
	}
}

func TestNotifyFaultConcurrent(t *testing.T) {
	s, ts := newSandbox(t)
	n := newNotifyServer(t)
	n.delay.Store(int64(150 * time.Millisecond))
	tok := createPayment(t, ts.URL, "TXCONC", n.URL)
	if _, err := s.Act("TXCONC", ActionWait); err != nil { // the WAITING one, alone
		t.Fatal(err)
	}
	setFaults(t, ts.URL, `{"notify":{"concurrent":3}}`)
	choose(t, ts.URL, tok, "accept")
	p := n.posts()[1:]
	if len(p) != 3 {
		t.Fatalf("%d concurrent POSTs, want 3", len(p))
	}
	for i := range p {
		for j := range p {
			if p[i].Start.After(p[j].End) {
				t.Fatalf("copies %d and %d did not overlap", i, j)
			}
		}
		if p[i].Form.Get("cpm_error_message") != "SUCCES" {
			t.Fatalf("copy %d: %v", i, p[i].Form)
		}
	}
}

func TestNotifyFaultDelay(t *testing.T) {
	_, ts := newSandbox(t)
	n := newNotifyServer(t)
	tok := createPayment(t, ts.URL, "TXDELAY", n.URL)
	setFaults(t, ts.URL, `{"notify":{"delay":"150ms"}}`)
	start := time.Now()
	choose(t, ts.URL, tok, "accept")
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("two delayed notifications took %v", el)
	}
	if p := n.posts(); len(p) != 2 || p[1].Start.Sub(p[0].End) < 150*time.Millisecond {
		t.Fatalf("notifications not delayed: %+v", p)
	}
}

func TestNotifyFaultBadTokenAndSiteID(t *testing.T) {
	s, ts := newSandbox(t)
	n := newNotifyServer(t)
	tok := createPayment(t, ts.URL, "TXBAD", n.URL)
	setFaults(t, ts.URL, `{"notify":{"bad_token":true}}`)
	choose(t, ts.URL, tok, "accept")
	for _, p := range n.posts() {
		if p.XToken == "" || p.XToken == expectedXToken(secretA, p.Form) || len(p.XToken) != 64 {
			t.Fatalf("bad_token sent %q", p.XToken)
		}
	}
	v, _ := s.Transaction("TXBAD")
	if v.Notifications[1].Fault != "bad_token" {
		t.Fatalf("record %+v", v.Notifications[1])
	}

	tok = createPayment(t, ts.URL, "TXSITE", n.URL)
	setFaults(t, ts.URL, `{"notify":{"site_id":"999999"}}`)
	choose(t, ts.URL, tok, "accept")
	p := n.posts()[2:]
	if len(p) != 2 {
		t.Fatalf("%d POSTs", len(p))
	}
	for _, x := range p {
		if x.Form.Get("cpm_site_id") != "999999" || x.XToken != expectedXToken(secretA, x.Form) {
			t.Fatalf("site_id fault: %v %q", x.Form, x.XToken)
		}
	}
}

func TestNotifyFaultOmitFields(t *testing.T) {
	_, ts := newSandbox(t)
	n := newNotifyServer(t)
	tok := createPayment(t, ts.URL, "TXOMIT", n.URL)
	setFaults(t, ts.URL, `{"notify":{"omit_fields":["cpm_custom","cpm_error_message"]}}`)
	choose(t, ts.URL, tok, "accept")
	for _, p := range n.posts() {
		if _, ok := p.Form["cpm_custom"]; ok {
			t.Fatal("cpm_custom sent")
		}
		if _, ok := p.Form["cpm_error_message"]; ok {
			t.Fatal("cpm_error_message sent")
		}
		if p.XToken != expectedXToken(secretA, p.Form) {
			t.Fatal("x-token does not count missing fields as empty")
		}
	}
}

func TestNotifyAsync(t *testing.T) {
	_, ts := newSandbox(t)
	n := newNotifyServer(t)
	gate := make(chan struct{})
	n.gate.Store(&gate) // the shop holds every notification until the browser has its answer
	tok := createPayment(t, ts.URL, "TXASYNC", n.URL)
	setFaults(t, ts.URL, `{"notify_async":true}`)
	status, html := choose(t, ts.URL, tok, "accept")
	if status != 200 || !strings.Contains(html, `id="return-form"`) {
		t.Fatalf("browser answer: %d", status)
	}
	if len(n.requests()) != 0 {
		t.Fatal("the browser waited for the notifications")
	}
	close(gate)
	waitFor(t, "async notifications", func() bool { return len(n.posts()) == 2 })
	if p := n.posts(); p[0].Form.Get("cpm_error_message") != "WAITING_CUSTOMER_PAYMENT" || p[1].Form.Get("cpm_error_message") != "SUCCES" {
		t.Fatalf("order: %v / %v", p[0].Form, p[1].Form)
	}
}

func TestPaidFault(t *testing.T) {
	_, ts := newSandbox(t)
	n := newNotifyServer(t)
	tok := createPayment(t, ts.URL, "TXPAID", n.URL)
	setFaults(t, ts.URL, `{"paid":{"times":1,"amount":995,"currency":"XAF"}}`)
	choose(t, ts.URL, tok, "accept")
	r := check(t, ts.URL, "TXPAID")
	if d := r.data(); r.code() != "00" || d["amount"] != "995" || d["currency"] != "XAF" {
		t.Fatalf("check: %s", r.Raw)
	}
	p := n.posts()
	if last := p[len(p)-1].Form; last.Get("cpm_amount") != "995" || last.Get("cpm_currency") != "XAF" {
		t.Fatalf("notification: %v", last)
	}
	var v Transaction
	control(t, ts.URL, http.MethodGet, "/transactions/TXPAID", nil, &v)
	if v.Amount != 1000 || v.Currency != "XOF" || v.PaidAmount != 995 || v.PaidCurrency != "XAF" {
		t.Fatalf("view %+v", v)
	}
	// Used up: the next acceptance pays what was asked.
	tok = createPayment(t, ts.URL, "TXPAID2", n.URL)
	choose(t, ts.URL, tok, "accept")
	if d := check(t, ts.URL, "TXPAID2").data(); d["amount"] != "1000" || d["currency"] != "XOF" {
		t.Fatalf("second: %v", d)
	}
}

func TestAmountFormat(t *testing.T) {
	_, ts := newSandbox(t)
	n := newNotifyServer(t)
	tok := createPayment(t, ts.URL, "TXFMT", n.URL)
	choose(t, ts.URL, tok, "accept")
	for format, want := range map[string]string{"%d.00": "1000.00", "%d.0": "1000.0", "0%d": "01000"} {
		setFaults(t, ts.URL, fmt.Sprintf(`{"amount_format":%q}`, format))
		if d := check(t, ts.URL, "TXFMT").data(); d["amount"] != want {
			t.Fatalf("%s: amount %v", format, d["amount"])
		}
	}
	setFaults(t, ts.URL, `{}`)
	if d := check(t, ts.URL, "TXFMT").data(); d["amount"] != "1000" {
		t.Fatalf("without the knob: %v", d["amount"])
	}
}

func TestPayLate(t *testing.T) {
	s, ts := newSandbox(t)
	n := newNotifyServer(t)
	tok := createPayment(t, ts.URL, "TXPAYLATE", n.URL)
	if _, err := s.Act("TXPAYLATE", ActionPayLate); !errors.Is(err, ErrNotRefused) {
		t.Fatalf("pay_late on a waiting transaction: %v", err)
	}
	choose(t, ts.URL, tok, "refuse")
	if st := control(t, ts.URL, http.MethodPost, "/transactions/TXPAYLATE/pay_late", nil, nil); st != http.StatusOK {
		t.Fatalf("pay_late: %d", st)
	}
	if r := check(t, ts.URL, "TXPAYLATE"); r.code() != "00" || r.data()["status"] != "ACCEPTED" {
		t.Fatalf("after pay_late: %s", r.Raw)
	}
	p := n.posts()
	if last := p[len(p)-1]; last.Form.Get("cpm_error_message") != "SUCCES" || last.XToken != expectedXToken(secretA, last.Form) {
		t.Fatalf("late notification %v", last.Form)
	}
	if st := control(t, ts.URL, http.MethodPost, "/transactions/TXPAYLATE/pay_late", nil, nil); st != http.StatusConflict {
		t.Fatalf("pay_late twice: %d", st)
	}
}

func TestLateSuccessAfter(t *testing.T) {
	s, ts := newSandbox(t)
	n := newNotifyServer(t)
	tok := createPayment(t, ts.URL, "TXLATE", n.URL)
	setFaults(t, ts.URL, `{"late_success":{"times":1,"after":"300ms"}}`)
	choose(t, ts.URL, tok, "refuse")
	if r := check(t, ts.URL, "TXLATE"); r.code() != "627" {
		t.Fatalf("right after the refusal: %s", r.Raw)
	}
	if v, _ := s.Transaction("TXLATE"); v.LateSuccess != "after 300ms" {
		t.Fatalf("late_success %q", v.LateSuccess)
	}
	waitFor(t, "the late ACCEPTED notification", func() bool { return len(n.posts()) == 3 })
	p := n.posts()
	if p[1].Form.Get("cpm_error_message") != "PAYMENT_FAILED" || p[2].Form.Get("cpm_error_message") != "SUCCES" ||
		p[2].XToken != expectedXToken(secretA, p[2].Form) {
		t.Fatalf("notifications %v / %v", p[1].Form, p[2].Form)
	}
	if r := check(t, ts.URL, "TXLATE"); r.code() != "00" || r.data()["status"] != "ACCEPTED" {
		t.Fatalf("after the delay: %s", r.Raw)
	}
	if s.Faults().LateSuccess != nil {
		t.Fatal("late_success not used up")
	}
}

func TestLateSuccessOnCheck(t *testing.T) {
	_, ts := newSandbox(t)
	n := newNotifyServer(t)
	tok := createPayment(t, ts.URL, "TXLATEC", n.URL)
	setFaults(t, ts.URL, `{"late_success":{"on_check":true}}`)
	choose(t, ts.URL, tok, "refuse")
	if len(n.posts()) != 2 {
		t.Fatal("refusal notifications missing")
	}
	r := check(t, ts.URL, "TXLATEC")
	if r.code() != "00" || r.data()["status"] != "ACCEPTED" {
		t.Fatalf("check: %s", r.Raw)
	}
	waitFor(t, "the late ACCEPTED notification", func() bool { return len(n.posts()) == 3 })
	if p := n.posts(); p[2].Form.Get("cpm_error_message") != "SUCCES" {
		t.Fatalf("late notification %v", p[2].Form)
	}
}

// TestCloseStopsBackgroundWork checks that Close cancels pending work
// instead of waiting for it.
func TestCloseStopsBackgroundWork(t *testing.T) {
	s, ts := newSandbox(t)
	n := newNotifyServer(t)
	tok := createPayment(t, ts.URL, "TXCLOSE", n.URL)
	s.SetFaults(Faults{LateSuccess: &LateSuccessFault{After: Duration(time.Hour)}})
	choose(t, ts.URL, tok, "refuse")
	done := make(chan struct{})
	go func() { _ = s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not stop a pending late success")
	}
}
