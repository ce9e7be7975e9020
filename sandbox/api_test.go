package sandbox

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestPaymentChecks(t *testing.T) {
	_, ts := newSandbox(t)
	n := newNotifyServer(t)

	type mod func(map[string]any)
	set := func(k string, v any) mod { return func(b map[string]any) { b[k] = v } }
	del := func(k string) mod { return func(b map[string]any) { delete(b, k) } }

	cases := []struct {
		name    string
		mods    []mod
		raw     string   // raw body instead of the JSON of the mods
		headers []string // header overrides
		code    string
		status  int
	}{
		{name: "no user agent", headers: []string{"User-Agent", ""}, code: "1010", status: 403},
		{name: "form content type", headers: []string{"Content-Type", "application/x-www-form-urlencoded"}, code: "403", status: 403},
		{name: "no content type", headers: []string{"Content-Type", ""}, code: "403", status: 403},
		{name: "json with charset", headers: []string{"Content-Type", "application/json; charset=utf-8"}, code: "201", status: 200},
		{name: "body not json", raw: "apikey=x&site_id=y", code: "608", status: 400},
		{name: "body a json array", raw: "[1,2]", code: "608", status: 400},
		{name: "blank body", raw: " ", code: "608", status: 400},
		{name: "missing apikey", mods: []mod{del("apikey")}, code: "608", status: 400},
		{name: "missing transaction_id", mods: []mod{del("transaction_id")}, code: "608", status: 400},
		{name: "misnamed transaction_id", mods: []mod{del("transaction_id"), set("transactionId", "TX1")}, code: "608", status: 400},
		{name: "missing amount", mods: []mod{del("amount")}, code: "608", status: 400},
		{name: "missing currency", mods: []mod{del("currency")}, code: "608", status: 400},
		{name: "missing description", mods: []mod{del("description")}, code: "608", status: 400},
		{name: "missing notify_url", mods: []mod{del("notify_url")}, code: "608", status: 400},
		{name: "missing return_url", mods: []mod{del("return_url")}, code: "608", status: 400},
		{name: "missing channels", mods: []mod{del("channels")}, code: "608", status: 400},
		{name: "null currency", mods: []mod{set("currency", nil)}, code: "608", status: 400},
		{name: "empty description", mods: []mod{set("description", " ")}, code: "608", status: 400},
		{name: "numeric currency", mods: []mod{set("currency", 952)}, code: "608", status: 400},
		{name: "amount 12.5", mods: []mod{set("amount", 12.5)}, code: "608", status: 400},
		{name: "amount string", mods: []mod{set("amount", "100")}, code: "608", status: 400},
		{name: "amount exponent", mods: []mod{set("amount", json.Number("1e3"))}, code: "608", status: 400},
		{name: "amount zero", mods: []mod{set("amount", 0)}, code: "608", status: 400},
		{name: "amount negative", mods: []mod{set("amount", -100)}, code: "608", status: 400},
		{name: "amount not multiple of 5 XOF", mods: []mod{set("amount", 1001)}, code: "608", status: 400},
		{name: "amount not multiple of 5 GNF", mods: []mod{set("amount", 1001), set("currency", "GNF")}, code: "608", status: 400},
		{name: "amount not multiple of 5 USD is fine", mods: []mod{set("amount", 1001), set("currency", "USD")}, code: "201", status: 200},
		{name: "unknown currency", mods: []mod{set("currency", "EUR")}, code: "608", status: 400},
		{name: "lowercase currency", mods: []mod{set("currency", "xof")}, code: "608", status: 400},
		{name: "unknown channels", mods: []mod{set("channels", "BITCOIN")}, code: "608", status: 400},
		{name: "lang de", mods: []mod{set("lang", "de")}, code: "608", status: 400},
		{name: "lang en", mods: []mod{set("lang", "en")}, code: "201", status: 200},
		{name: "no lang", mods: []mod{del("lang")}, code: "201", status: 200},
		{name: "invoice_data 3 keys", mods: []mod{set("invoice_data", map[string]string{"a": "1", "b": "2", "c": "3"})}, code: "201", status: 200},
		{name: "invoice_data 4 keys", mods: []mod{set("invoice_data", map[string]string{"a": "1", "b": "2", "c": "3", "d": "4"})}, code: "608", status: 400},
		{name: "invoice_data not an object", mods: []mod{set("invoice_data", "x")}, code: "608", status: 400},
		{name: "description #", mods: []mod{set("description", "Order #42")}, code: "608", status: 400},
		{name: "description /", mods: []mod{set("description", "a/b")}, code: "608", status: 400},
		{name: "description $", mods: []mod{set("description", "5$")}, code: "608", status: 400},
		{name: "description _", mods: []mod{set("description", "a_b")}, code: "608", status: 400},
		{name: "description &", mods: []mod{set("description", "a&b")}, code: "608", status: 400},
		{name: "transaction_id with dash", mods: []mod{set("transaction_id", "TX-1")}, code: "608", status: 400},
		{name: "transaction_id with dot", mods: []mod{set("transaction_id", "TX.1")}, code: "608", status: 400},
		{name: "notify_url relative", mods: []mod{set("notify_url", "/notify")}, code: "608", status: 400},
		{name: "customer field not a string", mods: []mod{set("customer_name", 12)}, code: "608", status: 400},
		{name: "unknown apikey", mods: []mod{set("apikey", "nope")}, code: "609", status: 400},
		{name: "apikey of another site", mods: []mod{set("apikey", keyB)}, code: "609", status: 400},
		{name: "unknown site_id", mods: []mod{set("site_id", "999999")}, code: "613", status: 400},
		{name: "second site of the account", mods: []mod{set("site_id", siteA2)}, code: "201", status: 200},
		{name: "integer site_id", mods: []mod{set("site_id", 123456)}, code: "201", status: 200},
		{name: "metadata json object text", mods: []mod{set("metadata", `{"order":"42"}`)}, code: "403", status: 403},
		{name: "metadata json array text", mods: []mod{set("metadata", ` [1,2]`)}, code: "403", status: 403},
		{name: "metadata json object", mods: []mod{set("metadata", map[string]string{"order": "42"})}, code: "403", status: 403},
		{name: "metadata braces not json", mods: []mod{set("metadata", "{order 42")}, code: "201", status: 200},
		{name: "metadata number", mods: []mod{set("metadata", 42)}, code: "608", status: 400},
		{name: "lock phone bad number", mods: []mod{set("lock_phone_number", true), set("customer_phone_number", "07-07")}, code: "624", status: 200},
		{name: "lock phone no number", mods: []mod{set("lock_phone_number", true)}, code: "624", status: 200},
		{name: "lock phone good number", mods: []mod{set("lock_phone_number", true), set("customer_phone_number", "+2250707070707")}, code: "201", status: 200},
		{name: "lock phone not a bool", mods: []mod{set("lock_phone_number", "yes")}, code: "608", status: 400},
		{name: "unknown fields ignored", mods: []mod{set("foo", "bar")}, code: "201", status: 200},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body any = c.raw
			if c.raw == "" {
				b := paymentBody("TXC"+strconv.Itoa(i), n.URL)
				for _, m := range c.mods {
					m(b)
				}
				body = b
			}
			r := call(t, ts.URL, "/v2/payment", body, c.headers...)
			if r.code() != c.code || r.Status != c.status {
				t.Fatalf("got code %q HTTP %d, want %q HTTP %d: %s", r.code(), r.Status, c.code, c.status, r.Raw)
			}
			if c.code == "201" {
				return
			}
			// The error shape: exactly code, message, description, api_response_id.
			keys := make([]string, 0, len(r.Body))
			for k := range r.Body {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if want := []string{"api_response_id", "code", "description", "message"}; !reflect.DeepEqual(keys, want) {
				t.Fatalf("error keys %v, want %v", keys, want)
			}
			wantMsg := map[string]string{"608": "MINIMUM_REQUIRED_FIELDS", "609": "AUTH_NOT_FOUND",
				"613": "ERROR_SITE_ID_NOTVALID", "403": "FORBIDDEN", "1010": "ACCESS_DENIED",
				"624": "An error occurred while processing the request"}[c.code]
			if r.Body["message"] != wantMsg {
				t.Fatalf("message %q, want %q", r.Body["message"], wantMsg)
			}
		})
	}
}

func TestPaymentSuccessShape(t *testing.T) {
	for _, tc := range []struct {
		name      string
		publicURL string
	}{{"derived", ""}, {"public_url", "https://sandbox.example.test/cp/"}} {
		t.Run(tc.name, func(t *testing.T) {
			_, ts := newSandbox(t, func(c *Config) { c.PublicURL = tc.publicURL })
			r := call(t, ts.URL, "/v2/payment", paymentBody("TX1", "http://127.0.0.1:1"))
			if r.Status != 200 || r.code() != "201" || r.Body["message"] != "CREATED" ||
				r.Body["description"] != "Transaction created with success" {
				t.Fatalf("answer %d %s", r.Status, r.Raw)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			// Field order as CinetPay: code, message, description, data, api_response_id.
			raw := string(r.Raw)
			if !(strings.Index(raw, `"code"`) < strings.Index(raw, `"message"`) &&
				strings.Index(raw, `"message"`) < strings.Index(raw, `"description"`) &&
				strings.Index(raw, `"description"`) < strings.Index(raw, `"data"`) &&
				strings.Index(raw, `"data"`) < strings.Index(raw, `"api_response_id"`)) {
				t.Fatalf("field order: %s", raw)
			}
			d := r.data()
			token, _ := d["payment_token"].(string)
			if len(token) < 32 {
				t.Fatalf("payment_token %q", token)
			}
			base := ts.URL
			if tc.publicURL != "" {
				base = "https://sandbox.example.test/cp"
			}
			if d["payment_url"] != base+"/pay/"+token {
				t.Fatalf("payment_url %q, want %q", d["payment_url"], base+"/pay/"+token)
			}
			if id, _ := r.Body["api_response_id"].(string); id == "" {
				t.Fatal("no api_response_id")
			}
		})
	}
}

func TestPaymentDuplicateTransactionID(t *testing.T) {
	_, ts := newSandbox(t)
	createPayment(t, ts.URL, "TXDUP", "http://127.0.0.1:1")
	r := call(t, ts.URL, "/v2/payment", paymentBody("TXDUP", "http://127.0.0.1:1"))
	if r.code() != "608" || r.Body["description"] != "transaction_id already used" {
		t.Fatalf("reuse: %s", r.Raw)
	}
	// The same id on another site is another transaction.
	b := paymentBody("TXDUP", "http://127.0.0.1:1")
	b["site_id"] = siteA2
	if r := call(t, ts.URL, "/v2/payment", b); r.code() != "201" {
		t.Fatalf("other site: %s", r.Raw)
	}
	// A refused request does not reserve its id.
	b = paymentBody("TXFRESH", "http://127.0.0.1:1")
	b["amount"] = 3
	call(t, ts.URL, "/v2/payment", b)
	createPayment(t, ts.URL, "TXFRESH", "http://127.0.0.1:1")
}

func TestAPIResponseIDsUnique(t *testing.T) {
	_, ts := newSandbox(t)
	seen := map[string]bool{}
	for i := range 50 {
		r := call(t, ts.URL, "/v2/payment", paymentBody("TXU"+strconv.Itoa(i), "http://127.0.0.1:1"))
		r2 := check(t, ts.URL, "TXU"+strconv.Itoa(i))
		for _, x := range []apiResult{r, r2} {
			id, _ := x.Body["api_response_id"].(string)
			if id == "" || seen[id] {
				t.Fatalf("api_response_id %q repeated or empty", id)
			}
			seen[id] = true
		}
	}
}

func TestCheckAnswers(t *testing.T) {
	_, ts := newSandbox(t)
	n := newNotifyServer(t)
	tokAcc := createPayment(t, ts.URL, "TXACC", n.URL)
	tokRef := createPayment(t, ts.URL, "TXREF", n.URL)
	tokWait := createPayment(t, ts.URL, "TXWAIT", n.URL)
	choose(t, ts.URL, tokAcc, "accept")
	choose(t, ts.URL, tokRef, "refuse")
	choose(t, ts.URL, tokWait, "wait")

	t.Run("accepted", func(t *testing.T) {
		r := check(t, ts.URL, "TXACC")
		d := r.data()
		if r.Status != 200 || r.code() != "00" || r.Body["message"] != "SUCCES" || d["status"] != "ACCEPTED" {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
		if d["amount"] != "1000" || d["currency"] != "XOF" || d["payment_method"] != "OM" ||
			d["description"] != "Commande 42" || d["metadata"] != "b3JkZXI9NDI=" {
			t.Fatalf("data %v", d)
		}
		if op, _ := d["operator_id"].(string); !strings.HasPrefix(op, "MP") || len(op) != len("MP240501.1234.A12345") {
			t.Fatalf("operator_id %q", d["operator_id"])
		}
		if pd, _ := d["payment_date"].(string); len(pd) != len("2006-01-02 15:04:05") {
			t.Fatalf("payment_date %q", pd)
		}
		if fd, _ := d["fund_availability_date"].(string); !strings.HasSuffix(fd, " 00:00:00") {
			t.Fatalf("fund_availability_date %q", fd)
		}
	})
	t.Run("refused", func(t *testing.T) {
		r := check(t, ts.URL, "TXREF")
		d := r.data()
		if r.code() != "627" || r.Body["message"] != "TRANSACTION_CANCEL" || d["status"] != "REFUSED" {
			t.Fatalf("%s", r.Raw)
		}
		if v, ok := d["operator_id"]; !ok || v != nil {
			t.Fatalf("operator_id %v, want null", v)
		}
		if d["payment_date"] != " " || d["amount"] != "1000" {
			t.Fatalf("data %v", d)
		}
	})
	t.Run("waiting", func(t *testing.T) {
		r := check(t, ts.URL, "TXWAIT")
		if d := r.data(); r.code() != "662" || r.Body["message"] != "WAITING_CUSTOMER_PAYMENT" ||
			d["status"] != "WAITING_FOR_CUSTOMER" || d["payment_date"] != " " {
			t.Fatalf("%s", r.Raw)
		}
	})
	t.Run("by token", func(t *testing.T) {
		for _, field := range []string{"token", "payment_token"} {
			r := call(t, ts.URL, "/v2/payment/check", map[string]any{"apikey": keyA, "site_id": siteA, field: tokAcc})
			if r.code() != "00" {
				t.Fatalf("%s: %s", field, r.Raw)
			}
		}
	})
	t.Run("unknown", func(t *testing.T) {
		r := check(t, ts.URL, "TXNONE")
		if r.code() != "605" || r.Body["message"] != "TRANSACTION_NOT_FOUND" || r.Status != 400 {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
		if _, ok := r.Body["data"]; ok {
			t.Fatal("unknown transaction answered with data")
		}
		// Another site of the same account does not see it.
		r = call(t, ts.URL, "/v2/payment/check", map[string]any{"apikey": keyA, "site_id": siteA2, "transaction_id": "TXACC"})
		if r.code() != "605" {
			t.Fatalf("other site: %s", r.Raw)
		}
	})
	t.Run("auth and fields", func(t *testing.T) {
		for _, c := range []struct {
			body map[string]any
			code string
		}{
			{map[string]any{"apikey": "nope", "site_id": siteA, "transaction_id": "TXACC"}, "609"},
			{map[string]any{"apikey": keyB, "site_id": siteA, "transaction_id": "TXACC"}, "609"},
			{map[string]any{"apikey": keyA, "site_id": "999", "transaction_id": "TXACC"}, "613"},
			{map[string]any{"apikey": keyA, "site_id": siteA}, "608"},
			{map[string]any{"site_id": siteA, "transaction_id": "TXACC"}, "608"},
		} {
			if r := call(t, ts.URL, "/v2/payment/check", c.body); r.code() != c.code {
				t.Fatalf("%v: %s, want %s", c.body, r.Raw, c.code)
			}
		}
		if r := call(t, ts.URL, "/v2/payment/check", map[string]any{"apikey": keyA, "site_id": siteA, "transaction_id": "TXACC"},
			"User-Agent", ""); r.code() != "1010" {
			t.Fatalf("no UA: %s", r.Raw)
		}
	})
}

func TestLoopbackOnly(t *testing.T) {
	body := `{}`
	for _, tc := range []struct {
		remote      string
		allowRemote bool
		want        int
	}{
		{"203.0.113.5:1234", false, http.StatusForbidden},
		{"203.0.113.5:1234", true, http.StatusBadRequest}, // answered: 608
		{"127.0.0.1:1234", false, http.StatusBadRequest},
		{"[::1]:1234", false, http.StatusBadRequest},
		{"@", false, http.StatusBadRequest},
	} {
		s := New(Config{Merchants: testMerchants, AllowRemote: tc.allowRemote})
		req := httptest.NewRequest(http.MethodPost, "/v2/payment", strings.NewReader(body))
		req.RemoteAddr = tc.remote
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "t")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != tc.want {
			t.Errorf("%s allow_remote=%v: %d, want %d", tc.remote, tc.allowRemote, w.Code, tc.want)
		}
		if tc.want == http.StatusForbidden && len(s.Requests()) != 0 {
			t.Errorf("a refused remote call was recorded")
		}
		// The page and the control API are guarded too.
		req = httptest.NewRequest(http.MethodGet, "/_sandbox/requests", nil)
		req.RemoteAddr = tc.remote
		w = httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if (w.Code == http.StatusForbidden) != (tc.want == http.StatusForbidden) {
			t.Errorf("%s control: %d", tc.remote, w.Code)
		}
		_ = s.Close()
	}
}

func TestRequestsLog(t *testing.T) {
	s, ts := newSandbox(t)
	createPayment(t, ts.URL, "TXLOG", "http://127.0.0.1:1")
	check(t, ts.URL, "TXLOG")
	check(t, ts.URL, "TXLOG")
	call(t, ts.URL, "/v2/payment", "not json")
	call(t, ts.URL, "/v2/payment/check", map[string]any{"apikey": keyA, "site_id": siteA,
		"token": s.Transactions()[0].Token})

	var got []Request
	if st := control(t, ts.URL, http.MethodGet, "/requests", nil, &got); st != 200 {
		t.Fatalf("GET requests: %d", st)
	}
	if len(got) != 5 {
		t.Fatalf("%d requests, want 5", len(got))
	}
	want := []struct {
		path, tx, code string
		status         int
	}{
		{"/v2/payment", "TXLOG", "201", 200},
		{"/v2/payment/check", "TXLOG", "662", 200},
		{"/v2/payment/check", "TXLOG", "662", 200},
		{"/v2/payment", "", "608", 400},
		{"/v2/payment/check", "TXLOG", "662", 200},
	}
	for i, w := range want {
		g := got[i]
		if g.Path != w.path || g.TransactionID != w.tx || g.Code != w.code || g.Status != w.status || g.Time.IsZero() {
			t.Errorf("request %d: %+v, want %+v", i, g, w)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(got[0].Body, &body); err != nil || body["transaction_id"] != "TXLOG" || body["amount"] != 1000.0 {
		t.Fatalf("body kept as JSON: %s", got[0].Body)
	}
	if string(got[3].Body) != `"not json"` {
		t.Fatalf("non-JSON body: %s", got[3].Body)
	}
	if s.PaymentCount() != 2 || s.CheckCount("TXLOG") != 3 || s.CheckCount("OTHER") != 0 {
		t.Fatalf("counts: payment %d check %d", s.PaymentCount(), s.CheckCount("TXLOG"))
	}
	if st := control(t, ts.URL, http.MethodDelete, "/requests", nil, nil); st != http.StatusNoContent {
		t.Fatalf("DELETE: %d", st)
	}
	if len(s.Requests()) != 0 || s.PaymentCount() != 0 {
		t.Fatal("requests not cleared")
	}
}

func TestTransactionView(t *testing.T) {
	_, ts := newSandbox(t)
	n := newNotifyServer(t)
	tok := createPayment(t, ts.URL, "TXVIEW", n.URL)
	var v Transaction
	if st := control(t, ts.URL, http.MethodGet, "/transactions/TXVIEW", nil, &v); st != 200 {
		t.Fatalf("GET: %d", st)
	}
	if v.Status != StatusWaiting || v.Amount != 1000 || v.Currency != "XOF" || v.Token != tok ||
		v.NotifyURL != n.URL+"/notify" || v.ReturnURL != n.URL+"/return?transaction_id=TXVIEW" ||
		v.Metadata != "b3JkZXI9NDI=" || v.SiteID != siteA || len(v.Notifications) != 0 {
		t.Fatalf("view %+v", v)
	}
	// By token too.
	if st := control(t, ts.URL, http.MethodGet, "/transactions/"+tok, nil, &v); st != 200 || v.TransactionID != "TXVIEW" {
		t.Fatalf("by token: %d %+v", st, v)
	}
	if st := control(t, ts.URL, http.MethodPost, "/transactions/TXVIEW/accept", nil, &v); st != 200 || v.Status != StatusAccepted {
		t.Fatalf("accept: %d %+v", st, v)
	}
	if len(v.Notifications) != 3 || v.Notifications[0].Method != "GET" ||
		v.Notifications[1].Status != StatusWaiting || v.Notifications[2].Status != StatusAccepted ||
		v.Notifications[2].HTTPStatus != 200 {
		t.Fatalf("notifications %+v", v.Notifications)
	}
	var e map[string]string
	if st := control(t, ts.URL, http.MethodPost, "/transactions/TXVIEW/refuse", nil, &e); st != http.StatusConflict {
		t.Fatalf("refuse after accept: %d %v", st, e)
	}
	if st := control(t, ts.URL, http.MethodPost, "/transactions/TXVIEW/dance", nil, &e); st != http.StatusNotFound {
		t.Fatalf("bad action: %d", st)
	}
	if st := control(t, ts.URL, http.MethodGet, "/transactions/NOPE", nil, &e); st != http.StatusNotFound {
		t.Fatalf("unknown: %d", st)
	}
	// notify re-sends the current state.
	if st := control(t, ts.URL, http.MethodPost, "/transactions/TXVIEW/notify", nil, &v); st != 200 {
		t.Fatalf("notify: %d", st)
	}
	if p := n.posts(); len(p) != 3 || p[2].Form.Get("cpm_error_message") != "SUCCES" {
		t.Fatalf("re-sent notification: %+v", p)
	}
	var list []Transaction
	if st := control(t, ts.URL, http.MethodGet, "/transactions", nil, &list); st != 200 || len(list) != 1 {
		t.Fatalf("list: %d %d", st, len(list))
	}
	if st := control(t, ts.URL, http.MethodPost, "/reset", nil, nil); st != http.StatusNoContent {
		t.Fatalf("reset: %d", st)
	}
	if st := control(t, ts.URL, http.MethodGet, "/transactions/TXVIEW", nil, &e); st != http.StatusNotFound {
		t.Fatalf("after reset: %d", st)
	}
}

func TestAmbiguousTransactionID(t *testing.T) {
	s, ts := newSandbox(t)
	createPayment(t, ts.URL, "TXAMB", "http://127.0.0.1:1")
	b := paymentBody("TXAMB", "http://127.0.0.1:1")
	b["site_id"] = siteA2
	call(t, ts.URL, "/v2/payment", b)
	var e map[string]string
	if st := control(t, ts.URL, http.MethodGet, "/transactions/TXAMB", nil, &e); st != http.StatusConflict {
		t.Fatalf("ambiguous: %d", st)
	}
	var v Transaction
	if st := control(t, ts.URL, http.MethodGet, "/transactions/TXAMB?site_id="+siteA2, nil, &v); st != 200 || v.SiteID != siteA2 {
		t.Fatalf("with site_id: %d %+v", st, v)
	}
	if _, err := s.Act("TXAMB", ActionAccept); err != ErrAmbiguous {
		t.Fatalf("Act: %v", err)
	}
}
