package engine

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

func TestSettledNoticesExactRepeatsOnly(t *testing.T) {
	s := NewSettledNotices([]string{"content-type", "x-token"})
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Token": {"abc"}}
	body := []byte("cpm_trans_id=T1&cpm_site_id=1")
	v := Settled{TransactionID: "T1", OrderID: "o-1", State: storage.StateAccepted}
	if _, ok := s.Lookup(h, body); ok {
		t.Fatal("hit before anything was remembered")
	}
	s.Remember(h, body, v)
	if got, ok := s.Lookup(h, body); !ok || got != v {
		t.Fatalf("repeat: %+v %v", got, ok)
	}
	// the same bytes in a fresh buffer and a fresh header still match
	h2 := http.Header{"X-Token": {"abc"}, "Content-Type": {"application/x-www-form-urlencoded"}, "User-Agent": {"other"}}
	if _, ok := s.Lookup(h2, bytes.Clone(body)); !ok {
		t.Fatal("a repeat with another unread header did not match")
	}
	misses := map[string]struct {
		h    http.Header
		body []byte
	}{
		"other token":          {http.Header{"Content-Type": h["Content-Type"], "X-Token": {"abd"}}, body},
		"no token":             {http.Header{"Content-Type": h["Content-Type"]}, body},
		"two tokens":           {http.Header{"Content-Type": h["Content-Type"], "X-Token": {"abc", "abc"}}, body},
		"other content type":   {http.Header{"Content-Type": {"application/json"}, "X-Token": {"abc"}}, body},
		"one byte more":        {h, append(bytes.Clone(body), '&')},
		"one byte less":        {h, body[:len(body)-1]},
		"token moved to body":  {http.Header{"Content-Type": h["Content-Type"], "X-Token": {""}}, append([]byte("abc"), body...)},
		"header moved to body": {http.Header{"X-Token": {"abc"}}, append([]byte("application/x-www-form-urlencoded"), body...)},
	}
	for name, m := range misses {
		if _, ok := s.Lookup(m.h, m.body); ok {
			t.Errorf("%s: matched", name)
		}
	}
}

func TestSettledNoticesOnlyFinalStates(t *testing.T) {
	s := NewSettledNotices([]string{"Content-Type"})
	h := http.Header{"Content-Type": {"application/json"}}
	for i, st := range storage.States {
		body := fmt.Appendf(nil, `{"n":%d}`, i)
		s.Remember(h, body, Settled{TransactionID: "T", State: st})
		if _, ok := s.Lookup(h, body); ok != st.Final() {
			t.Errorf("%s: remembered %v", st, ok)
		}
	}
}

func TestSettledNoticesBounded(t *testing.T) {
	s := NewSettledNotices([]string{"Content-Type"})
	h := http.Header{"Content-Type": {"application/json"}}
	body := func(i int) []byte { return fmt.Appendf(nil, `{"merchant_transaction_id":"T%d"}`, i) }
	n := settledEntries + 100
	for i := range n {
		s.Remember(h, body(i), Settled{TransactionID: fmt.Sprint("T", i), State: storage.StateAccepted})
		s.Remember(h, body(i), Settled{TransactionID: "again", State: storage.StateAccepted}) // kept once
	}
	if n := len(s.m); n != settledEntries {
		t.Fatalf("%d remembered, bound %d", n, settledEntries)
	}
	for i := range n {
		got, ok := s.Lookup(h, body(i))
		if want := i >= n-settledEntries; ok != want || ok && got.TransactionID != fmt.Sprint("T", i) {
			t.Fatalf("notification %d: %+v %v, want remembered %v", i, got, ok, want)
		}
	}
	// a notification larger than the bound is not remembered
	big := bytes.Repeat([]byte("a"), settledMaxKey)
	s.Remember(h, big, Settled{TransactionID: "big", State: storage.StateAccepted})
	if _, ok := s.Lookup(h, big); ok {
		t.Fatal("an oversize notification was remembered")
	}
}

func TestSettledNoticesLookupAllocatesNothing(t *testing.T) {
	s := NewSettledNotices([]string{"Content-Type", "X-Token"})
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Token": {"abc"}}
	body := bytes.Repeat([]byte("x"), 600)
	s.Remember(h, body, Settled{TransactionID: "T", State: storage.StateMismatch})
	if n := testing.AllocsPerRun(100, func() {
		if _, ok := s.Lookup(h, body); !ok {
			t.Fatal("miss")
		}
	}); n != 0 {
		t.Fatalf("%v allocations a lookup", n)
	}
	// nor does a miss on a header too long to be remembered
	long := http.Header{"Content-Type": h["Content-Type"], "X-Token": {strings.Repeat("a", 64<<10)}}
	if n := testing.AllocsPerRun(100, func() {
		if _, ok := s.Lookup(long, body); ok {
			t.Fatal("hit")
		}
	}); n != 0 {
		t.Fatalf("%v allocations a lookup with a long header", n)
	}
}
