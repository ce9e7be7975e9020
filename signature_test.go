package caddycinetpay

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestParseRetryAfter(t *testing.T) {
	for v, want := range map[string]time.Duration{"": 0, "7": 7 * time.Second, "-1": 0, "soon": 0,
		t0.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second} {
		if got := parseRetryAfter(v, t0); got != want {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
}

func TestHeaderSafe(t *testing.T) {
	for in, want := range map[string]string{"OM": "OM", " MP2209.1 ": "MP2209.1", "é": "%C3%A9", "a%b": "a%25b", "x\ny": "x%0Ay"} {
		if got := headerSafe(in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}

// The amount header a shop receives is the confirmed canonical amount.
func TestResultHeaderAmount(t *testing.T) {
	p := storage.Payment{Amount: 1000, Currency: "XOF", Confirmed: &storage.Confirmation{Amount: "1000", RawAmount: "1000.00", Currency: "XOF"}}
	h := http.Header{}
	setResultHeaders(h, "TX", "order", "ACCEPTED", "sandbox", "ev", p.Result())
	if got := h.Get("Cinetpay-Amount"); got != "1000" {
		t.Fatalf("Cinetpay-Amount: %q", got)
	}
}
