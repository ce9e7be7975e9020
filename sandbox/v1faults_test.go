package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestV1FaultsControlAPI(t *testing.T) {
	s, ts := newV1Sandbox(t)
	in := `{"v1_login":{"times":1,"status":503},"v1_payment":{"code":"1200","processed":true},` +
		`"v1_status":{"hang":"2s"},"v1_token_lifetime":"2s","v1_expires_in":60,"v1_expired_token":{"times":2},` +
		`"v1_not_allowed":{"login":true,"calls":true},"v1_transaction_exist":{},"v1_unknown_id":{"times":1},` +
		`"v1_error_status":{"1003":200,"404":404},"v1_errors_in_details":true,"v1_status_by_token":true,` +
		`"v1_redirect":{"method":"POST","append_ids":true},"v1_notify_statuses":["PENDING","SUCCESS"],` +
		`"v1_notify_ping":true,"v1_expire_after":"1m0s"}`
	setFaults(t, ts.URL, in)
	var got map[string]any
	control(t, ts.URL, http.MethodGet, "/faults", nil, &got)
	var want map[string]any
	_ = json.Unmarshal([]byte(in), &want)
	rawGot, _ := json.Marshal(got)
	rawWant, _ := json.Marshal(want)
	if string(rawGot) != string(rawWant) {
		t.Fatalf("GET faults:\n%s\nwant\n%s", rawGot, rawWant)
	}
	// Faults returns a deep copy.
	f := s.Faults()
	f.V1ErrorStatus[1003] = 500
	f.V1NotifyStatuses[0] = "FAILED"
	f.V1Redirect.Method = "GET"
	if g := s.Faults(); g.V1ErrorStatus[1003] != 200 || g.V1NotifyStatuses[0] != "PENDING" || g.V1Redirect.Method != "POST" {
		t.Fatalf("Faults() shares its knobs: %+v", g)
	}

	for _, bad := range []string{
		`{"v1_login":{"times":1}}`,
		`{"v1_status":{"body":"weird"}}`,
		`{"v1_payment":{"code":"abc"}}`,
		`{"v1_token_lifetime":"-1s"}`,
		`{"v1_expires_in":-1}`,
		`{"v1_expired_token":{"times":-1}}`,
		`{"v1_not_allowed":{"times":1}}`,
		`{"v1_error_status":{"1003":42}}`,
		`{"v1_error_status":{"x":400}}`,
		`{"v1_redirect":{"method":"PUT"}}`,
		`{"v1_notify_statuses":["INITIATED"]}`,
		`{"v1_expire_after":"soon"}`,
	} {
		req, _ := http.NewRequest(http.MethodPut, ts.URL+"/_sandbox/faults", strings.NewReader(bad))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "faults: ") {
			t.Errorf("PUT %s: %d %s", bad, resp.StatusCode, b)
		}
	}
}

// TestV1SecretsNeverShown checks that api_passwords and bearer tokens
// appear neither in the request log nor in the logs.
func TestV1SecretsNeverShown(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	s, ts := newV1Sandbox(t, func(c *Config) { c.Logger = zap.New(core) })
	n := newNotifyServer(t)

	tok := login(t, ts.URL, keyCI, passCI)
	v1Do(t, http.MethodPost, ts.URL+"/v1/oauth/login", "", map[string]any{"api_key": keyCI, "api_password": "wrong-password-42"})
	v1Do(t, http.MethodPost, ts.URL+"/v1/oauth/login", "", `{"api_key":"`+keyCM+`", "api_password" : "`+passCM+`","extra":"`+passCM+`","api_password":"repeated-password-99"}`)
	v1Do(t, http.MethodPost, ts.URL+"/v1/oauth/login", "", "api_key="+keyCI+"&api_password=form-password-77",
		"Content-Type", "application/x-www-form-urlencoded")
	r := v1Create(t, ts.URL, tok, "SEC-1", n.URL)
	v1Status(t, ts.URL, tok, "SEC-1")
	v1Status(t, ts.URL, "expired-or-unknown-token-abcdef", "SEC-1")
	if _, err := s.Act("SEC-1", ActionAccept); err != nil {
		t.Fatal(err)
	}

	secrets := []string{passCI, passCM, "wrong-password-42", "form-password-77", "repeated-password-99", tok,
		"expired-or-unknown-token-abcdef", keyCI, keyCM}
	resp, err := http.Get(ts.URL + "/_sandbox/requests")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, secret := range secrets[:7] {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the request log shows %q:\n%s", secret, raw)
		}
	}
	var reqs []Request
	if err := json.Unmarshal(raw, &reqs); err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 7 {
		t.Fatalf("%d requests", len(reqs))
	}
	var first map[string]any
	if err := json.Unmarshal(reqs[0].Body, &first); err != nil || first["api_password"] != "****" || first["api_key"] != keyCI {
		t.Fatalf("masked login body: %s", reqs[0].Body)
	}
	if !json.Valid(reqs[2].Body) || !strings.Contains(string(reqs[3].Body), "api_password=****") {
		t.Fatalf("masked bodies: %s / %s", reqs[2].Body, reqs[3].Body)
	}
	if a := reqs[4].Authorization; a != "Bearer …"+tok[len(tok)-4:] {
		t.Fatalf("masked authorization %q", a)
	}
	if reqs[4].Path != "/v1/payment" || reqs[4].Method != http.MethodPost || reqs[4].TransactionID != "SEC-1" || reqs[4].Code != "200" ||
		reqs[5].Path != "/v1/payment/SEC-1" || reqs[5].Method != http.MethodGet || reqs[5].Code != "2001" || reqs[6].Code != "1002" {
		t.Fatalf("requests %+v", reqs[4:])
	}

	// The logs name accounts by their masked key and show no secret.
	waitFor(t, "the notification", func() bool { return len(n.posts()) == 1 })
	time.Sleep(50 * time.Millisecond)
	if logs.Len() == 0 {
		t.Fatal("no logs")
	}
	for _, e := range logs.All() {
		text := e.Message
		for k, v := range e.ContextMap() {
			b, _ := json.Marshal(v)
			text += " " + k + "=" + string(b)
		}
		for _, secret := range append(secrets, r.str("notify_token")) {
			if strings.Contains(text, secret) {
				t.Errorf("log %q shows a secret", text)
			}
		}
	}
	if logs.FilterField(zap.String("account", "sk_test_…WXYZ")).Len() == 0 {
		t.Error("no log names the account by its masked key")
	}
}
