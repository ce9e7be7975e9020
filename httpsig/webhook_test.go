package httpsig

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	whKey  = []byte("0123456789abcdef0123456789abcdef")
	whTime = time.Unix(1764652860, 0)
)

func whEvent() []byte {
	b, _ := json.Marshal(Event{Type: "payment.accepted", Timestamp: "2025-12-02T05:21:00Z", Data: EventData{
		TransactionID: "TX1", OrderID: "order-1", Status: "ACCEPTED", Amount: "5000", Currency: "XOF",
		PaymentMethod: "OM", Environment: "live", EventID: "ev1"}})
	return b
}

func whHeaders(key []byte, id string, ts time.Time, body []byte) http.Header {
	h := http.Header{}
	SetWebhookHeaders(h, key, id, ts, body)
	return h
}

// The signature of the specification's own example (github.com/standard-webhooks,
// spec/standard-webhooks.md): secret, id, timestamp and body as given there.
func TestSignWebhookSpecExample(t *testing.T) {
	key, err := ParseWebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := SignWebhook(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if s := WebhookSecret(key); s != "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" {
		t.Fatalf("secret %s", s)
	}
}

func TestWebhookVerifier(t *testing.T) {
	body := whEvent()
	v := &WebhookVerifier{Secrets: [][]byte{whKey}, Now: func() time.Time { return whTime }}
	ev, err := v.Verify(whHeaders(whKey, "ev1", whTime, body), body)
	if err != nil || ev.Data.OrderID != "order-1" || ev.Data.Amount != "5000" || ev.Type != "payment.accepted" {
		t.Fatalf("%v %+v", err, ev)
	}
	// rotation: the shop holds the old and the new secret; several signatures in one header
	other := []byte("another-key-of-at-least-32-bytes!!")
	rot := &WebhookVerifier{Secrets: [][]byte{other, whKey}, Now: v.Now}
	if _, err := rot.Verify(whHeaders(whKey, "ev1", whTime, body), body); err != nil {
		t.Fatal(err)
	}
	h := whHeaders(whKey, "ev1", whTime, body)
	h.Set(HeaderWebhookSignature, SignWebhook(other, "ev1", whTime, body)+" "+h.Get(HeaderWebhookSignature))
	if _, err := v.Verify(h, body); err != nil {
		t.Fatal(err)
	}

	sandbox := []byte(strings.Replace(string(body), `"environment":"live"`, `"environment":"sandbox"`, 1))
	for _, c := range []struct {
		name string
		h    http.Header
		body []byte
		want string
	}{
		{"tampered body", whHeaders(whKey, "ev1", whTime, body), []byte(strings.Replace(string(body), "5000", "50000", 1)), "no matching signature"},
		{"wrong key", whHeaders(other, "ev1", whTime, body), body, "no matching signature"},
		{"other id", func() http.Header {
			h := whHeaders(whKey, "ev1", whTime, body)
			h.Set(HeaderWebhookID, "ev2")
			return h
		}(), body, "no matching signature"},
		{"id not the event's", whHeaders(whKey, "ev2", whTime, body), body, "not the webhook-id"},
		{"stale", whHeaders(whKey, "ev1", whTime.Add(-6*time.Minute), body), body, "too far"},
		{"future", whHeaders(whKey, "ev1", whTime.Add(6*time.Minute), body), body, "too far"},
		{"no signature", func() http.Header {
			h := whHeaders(whKey, "ev1", whTime, body)
			h.Del(HeaderWebhookSignature)
			return h
		}(), body, "required"},
		{"bad timestamp", func() http.Header {
			h := whHeaders(whKey, "ev1", whTime, body)
			h.Set(HeaderWebhookTimestamp, "1e9")
			return h
		}(), body, "not a number"},
		{"v2 signature", func() http.Header {
			h := whHeaders(whKey, "ev1", whTime, body)
			h.Set(HeaderWebhookSignature, strings.Replace(h.Get(HeaderWebhookSignature), "v1,", "v2,", 1))
			return h
		}(), body, "no matching signature"},
		{"sandbox", whHeaders(whKey, "ev1", whTime, sandbox), sandbox, "sandbox result refused"},
		{"not JSON", whHeaders(whKey, "ev1", whTime, []byte("nope")), []byte("nope"), "body"},
		{"incomplete", whHeaders(whKey, "ev1", whTime, []byte(`{"data":{"event_id":"ev1"}}`)), []byte(`{"data":{"event_id":"ev1"}}`), "incomplete"},
	} {
		_, err := v.Verify(c.h, c.body)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		// the error classes of Verifier: missing, malformed, or a broken rule
		want := ErrInvalid
		switch c.name {
		case "no signature":
			want = ErrMissing
		case "bad timestamp", "not JSON":
			want = ErrMalformed
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: %v is not %v", c.name, err, want)
		}
	}
	v.AcceptSandbox = true
	if _, err := v.Verify(whHeaders(whKey, "ev1", whTime, sandbox), sandbox); err != nil {
		t.Fatalf("sandbox accepted: %v", err)
	}
	if _, err := ParseWebhookSecret("whsec_!!"); err == nil {
		t.Fatal("bad secret accepted")
	}
}

// FuzzWebhookVerify: no input makes Verify panic or accept a message it did not sign.
func FuzzWebhookVerify(f *testing.F) {
	body := whEvent()
	h := whHeaders(whKey, "ev1", whTime, body)
	f.Add("ev1", strconv.FormatInt(whTime.Unix(), 10), h.Get(HeaderWebhookSignature), string(body))
	f.Add("", "", "v1,", "{}")
	f.Add("ev1", "-1", "v1,=== v1 v1,AAAA", `{"data":null}`)
	v := &WebhookVerifier{Secrets: [][]byte{whKey}, Now: func() time.Time { return whTime }}
	f.Fuzz(func(t *testing.T, id, ts, sig, b string) {
		h := http.Header{}
		h.Set(HeaderWebhookID, id)
		h.Set(HeaderWebhookTimestamp, ts)
		h.Set(HeaderWebhookSignature, sig)
		ev, err := v.Verify(h, []byte(b))
		if err != nil {
			return
		}
		sec, _ := strconv.ParseInt(ts, 10, 64)
		if !strings.Contains(sig, SignWebhook(whKey, id, time.Unix(sec, 0), []byte(b))[3:]) || ev.Data.EventID != id {
			t.Fatalf("accepted a message not signed: %q %q %q %q", id, ts, sig, b)
		}
	})
}
