package sandbox

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	siteA   = "123456"
	keyA    = "apikey-a"
	secretA = "secret-a-not-real"
	siteA2  = "123457" // a second site of account A
	siteB   = "654321"
	keyB    = "apikey-b"
	secretB = "secret-b-not-real"
)

// testMerchants are the sites of every test server.
var testMerchants = []Merchant{
	{SiteID: siteA, APIKey: keyA, SecretKey: secretA},
	{SiteID: siteA2, APIKey: keyA, SecretKey: secretA},
	{SiteID: siteB, APIKey: keyB, SecretKey: secretB},
}

// newSandbox starts a sandbox behind an httptest server (loopback).
func newSandbox(t *testing.T, mod ...func(*Config)) (*Server, *httptest.Server) {
	t.Helper()
	cfg := Config{Merchants: testMerchants}
	for _, m := range mod {
		m(&cfg)
	}
	s := New(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		_ = s.Close()
	})
	return s, ts
}

// notified is one request received by the test notify server.
type notified struct {
	Method      string
	ContentType string
	XToken      string
	Form        url.Values
	Body        string
	Start, End  time.Time
}

// notifyServer is a shop's notify_url and return_url.
type notifyServer struct {
	*httptest.Server
	status atomic.Int32 // answered status, 200 by default
	delay  atomic.Int64 // handling time, ns
	// gate, when set, holds every request until it is closed
	gate atomic.Pointer[chan struct{}]

	mu   sync.Mutex
	reqs []notified
}

func newNotifyServer(t *testing.T) *notifyServer {
	t.Helper()
	n := &notifyServer{}
	n.status.Store(http.StatusOK)
	n.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		if d := n.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		if g := n.gate.Load(); g != nil {
			<-*g
		}
		n.mu.Lock()
		n.reqs = append(n.reqs, notified{
			Method: r.Method, ContentType: r.Header.Get("Content-Type"),
			XToken: r.Header.Get("X-Token"), Form: form, Body: string(b),
			Start: start, End: time.Now(),
		})
		n.mu.Unlock()
		w.WriteHeader(int(n.status.Load()))
	}))
	t.Cleanup(n.Close)
	return n
}

func (n *notifyServer) requests() []notified {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]notified(nil), n.reqs...)
}

// posts returns the POSTs received.
func (n *notifyServer) posts() []notified {
	var out []notified
	for _, r := range n.requests() {
		if r.Method == http.MethodPost {
			out = append(out, r)
		}
	}
	return out
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fieldOrder is the x-token field order, written out independently of the
// cinetpay package.
var fieldOrder = []string{
	"cpm_site_id", "cpm_trans_id", "cpm_trans_date", "cpm_amount", "cpm_currency", "signature",
	"payment_method", "cel_phone_num", "cpm_phone_prefixe", "cpm_language", "cpm_version",
	"cpm_payment_config", "cpm_page_action", "cpm_custom", "cpm_designation", "cpm_error_message",
}

// expectedXToken recomputes an x-token with crypto/hmac.
func expectedXToken(secret string, form url.Values) string {
	var msg strings.Builder
	for _, f := range fieldOrder {
		msg.WriteString(form.Get(f))
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg.String()))
	return hex.EncodeToString(m.Sum(nil))
}

// apiResult is a decoded API answer.
type apiResult struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

func (r apiResult) code() string {
	c, _ := r.Body["code"].(string)
	return c
}

func (r apiResult) data() map[string]any {
	d, _ := r.Body["data"].(map[string]any)
	return d
}

// call POSTs body (marshalled unless it is a string) to the sandbox with
// the usual headers, minus those set to "" in headers.
func call(t *testing.T, base, path string, body any, headers ...string) apiResult {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sandbox-test")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "") // Go would send its own otherwise
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := apiResult{Status: resp.StatusCode, Header: resp.Header}
	out.Raw, _ = io.ReadAll(resp.Body)
	_ = json.Unmarshal(out.Raw, &out.Body)
	return out
}

// paymentBody is a valid /v2/payment body for site A.
func paymentBody(txID string, notifyURL string) map[string]any {
	return map[string]any{
		"apikey":         keyA,
		"site_id":        siteA,
		"transaction_id": txID,
		"amount":         1000,
		"currency":       "XOF",
		"description":    "Commande 42",
		"notify_url":     notifyURL + "/notify",
		"return_url":     notifyURL + "/return?transaction_id=" + txID,
		"channels":       "ALL",
		"lang":           "fr",
		"metadata":       "b3JkZXI9NDI=",
	}
}

// createPayment starts a payment and returns its token.
func createPayment(t *testing.T, base, txID, notifyURL string) string {
	t.Helper()
	r := call(t, base, "/v2/payment", paymentBody(txID, notifyURL))
	if r.code() != "201" {
		t.Fatalf("create %s: %d %s", txID, r.Status, r.Raw)
	}
	return r.data()["payment_token"].(string)
}

// check calls /v2/payment/check for site A.
func check(t *testing.T, base, txID string) apiResult {
	t.Helper()
	return call(t, base, "/v2/payment/check", map[string]any{"apikey": keyA, "site_id": siteA, "transaction_id": txID})
}

// choose posts a payment page button and returns the HTML answer.
func choose(t *testing.T, base, token, action string) (int, string) {
	t.Helper()
	resp, err := http.PostForm(base+"/pay/"+token, url.Values{"action": {action}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// control calls the control API and decodes its JSON answer into out.
func control(t *testing.T, base, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, base+"/_sandbox"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

// setFaults PUTs faults through the control API.
func setFaults(t *testing.T, base string, f string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, base+"/_sandbox/faults", strings.NewReader(f))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT faults %s: %d %s", f, resp.StatusCode, b)
	}
}
