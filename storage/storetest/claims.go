package storetest

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// The store's transaction ids carry its prefix, fit CinetPay's transaction_id (letters and
// digits, at most 30), never repeat, and are the only ones it owns.
func testPrefixAndOwnsTransaction(t *testing.T, s storage.Store) {
	prefix := s.Prefix()
	if prefix == "" || !upperAlnum(prefix) {
		t.Fatalf("prefix %q", prefix)
	}
	seen := map[string]bool{}
	var one string
	for i := range 50 {
		c := mustClaim(t, s, claim("1", "ID"+string(rune('A'+i%26))+string(rune('A'+i/26)), 100, t0))
		id := c.Payment.TransactionID
		if c.Kind != storage.ClaimNew || !strings.HasPrefix(id, prefix) || len(id) > 30 || len(id) <= len(prefix) ||
			!upperAlnum(id) || !s.OwnsTransaction(id) || seen[id] {
			t.Fatalf("claim %d: kind %v, bad or repeated id %q", i, c.Kind, id)
		}
		seen[id] = true
		one = id
	}
	other := "Z"
	if prefix[0] == 'Z' {
		other = "Y"
	}
	for _, foreign := range []string{
		"", "ORDER-2024-0001", prefix,
		other + one[1:],               // another store's prefix
		strings.ToLower(one),          // not a character the store makes
		one[:len(one)-3] + "a/b",      // with the prefix, but characters the store never makes
		one[:len(one)-1] + "\x00",     // idem
		one + strings.Repeat("1", 40), // longer than CinetPay allows
	} {
		if s.OwnsTransaction(foreign) {
			t.Errorf("owns foreign id %q", foreign)
		}
	}
}

func upperAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func testClaimRules(t *testing.T, s storage.Store) {
	c := mustClaim(t, s, claim("1", "A1", 1000, t0))
	p := c.Payment
	if c.Kind != storage.ClaimNew || p.State != storage.StateInit || p.SiteID != "1" || p.OrderID != "A1" ||
		p.Amount != 1000 || p.Currency != "XOF" || p.Environment != "sandbox" || !p.CreatedAt.Equal(t0) {
		t.Fatalf("first claim: %+v", c)
	}
	if got := mustGet(t, s, "1", p.TransactionID); got.State != storage.StateInit || got.OrderID != "A1" || got.Amount != 1000 {
		t.Fatalf("stored claim: %+v", got)
	}
	// a start in progress
	if c2 := mustClaim(t, s, claim("1", "A1", 1000, t0.Add(time.Second))); c2.Kind != storage.ClaimBusy || c2.Payment.TransactionID != p.TransactionID {
		t.Fatalf("busy: %+v", c2)
	}
	// a start in progress, whatever the amount
	if c2 := mustClaim(t, s, claim("1", "A1", 2000, t0.Add(time.Second))); c2.Kind != storage.ClaimBusy {
		t.Fatalf("busy, other amount: %v", c2.Kind)
	}
	// a stale INIT is left to the re-checker: a new payment may start
	c3 := mustClaim(t, s, claim("1", "A1", 1000, t0.Add(2*time.Minute)))
	if c3.Kind != storage.ClaimNew || c3.Payment.TransactionID == p.TransactionID {
		t.Fatalf("after stale init: %+v", c3)
	}
	if ps := listPayments(t, s, storage.PaymentFilter{SiteID: "1", OrderID: "A1"}); len(ps) != 2 {
		t.Fatalf("order A1 has %d payments, want 2", len(ps))
	}

	// a fresh PENDING payment of the same amount and currency is handed back
	b := started(t, s, "1", "B1", 500, t0)
	if r := mustClaim(t, s, claim("1", "B1", 500, t0.Add(14*time.Minute))); r.Kind != storage.ClaimReuse ||
		r.Payment.TransactionID != b.TransactionID || r.Payment.PaymentURL != b.PaymentURL {
		t.Errorf("resubmit: %+v", r)
	}
	// ... not for another amount, another currency, or once older than the reuse window
	started(t, s, "1", "B2", 500, t0)
	if r := mustClaim(t, s, claim("1", "B2", 505, t0.Add(time.Minute))); r.Kind != storage.ClaimNew {
		t.Errorf("other amount: %v", r.Kind)
	}
	started(t, s, "1", "B3", 500, t0)
	eur := claim("1", "B3", 500, t0.Add(time.Minute))
	eur.Currency = "EUR"
	if r := mustClaim(t, s, eur); r.Kind != storage.ClaimNew {
		t.Errorf("other currency: %v", r.Kind)
	}
	q := started(t, s, "1", "C1", 500, t0)
	if r := mustClaim(t, s, claim("1", "C1", 500, t0.Add(16*time.Minute))); r.Kind != storage.ClaimNew {
		t.Errorf("pending older than 15 min reused: %v", r.Kind)
	}
	// a PENDING payment without a payment URL cannot be handed back
	nu := mustClaim(t, s, claim("1", "NOURL", 500, t0))
	if _, err := s.Update("1", nu.Payment.TransactionID, t0, func(p *storage.Payment) error {
		p.State = storage.StatePending
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if r := mustClaim(t, s, claim("1", "NOURL", 500, t0.Add(time.Minute))); r.Kind != storage.ClaimNew {
		t.Errorf("pending without a payment URL reused: %v", r.Kind)
	}
	// an order refused, or whose start failed, may start again
	for _, st := range []storage.State{storage.StateRefused, storage.StateFailed, storage.StateExpired} {
		order := "AGAIN-" + string(st)
		reach(t, s, "1", order, st, t0)
		if r := mustClaim(t, s, claim("1", order, 100, t0.Add(time.Second))); r.Kind != storage.ClaimNew {
			t.Errorf("claim after %s: %v", st, r.Kind)
		}
	}
	// another site never sees the order
	if r := mustClaim(t, s, claim("2", "C1", 500, t0)); r.Kind != storage.ClaimNew {
		t.Errorf("other site: %v", r.Kind)
	}
	// a paid order is never started again, whatever is asked
	mustSetState(t, s, q, storage.StateAccepted, t0.Add(time.Minute))
	for _, c := range []storage.Claim{claim("1", "C1", 500, t0.Add(20*time.Minute)), claim("1", "C1", 999, t0.Add(48*time.Hour))} {
		if r := mustClaim(t, s, c); r.Kind != storage.ClaimPaid || r.Payment.TransactionID != q.TransactionID || r.Payment.State != storage.StateAccepted {
			t.Errorf("paid order, claim of %d: %v %s %s", c.Amount, r.Kind, r.Payment.TransactionID, r.Payment.State)
		}
	}
	if r := mustClaim(t, s, claim("2", "C1", 500, t0.Add(20*time.Minute))); r.Kind == storage.ClaimPaid {
		t.Errorf("order paid on site 1 is paid on site 2")
	}
	if _, err := s.Claim(claim("1", "bad/order", 5, t0)); !errors.Is(err, storage.ErrInvalidKeyPart) {
		t.Errorf("bad order id: %v", err)
	}
}

// A claimed payment is scheduled for a re-check when its start grace ends, so that the
// re-checker takes over a start that never finished (the process died during the call).
func testClaimSchedulesTheStaleInitCheck(t *testing.T, s storage.Store) {
	c := mustClaim(t, s, claim("1", "O", 100, t0))
	if !c.Payment.NextCheck.Equal(t0.Add(time.Minute)) {
		t.Fatalf("next check %v, want the end of the grace %v", c.Payment.NextCheck, t0.Add(time.Minute))
	}
	if keys, err := s.DueChecks(t0.Add(30*time.Second), 0); err != nil || len(keys) != 0 {
		t.Fatalf("due during the grace: %v %v", keys, err)
	}
	keys, err := s.DueChecks(t0.Add(2*time.Minute), 0)
	if err != nil || len(keys) != 1 || keys[0] != (storage.Key{SiteID: "1", ID: c.Payment.TransactionID}) {
		t.Fatalf("due after the grace: %v %v", keys, err)
	}
}

func testConcurrentClaimsStartOnce(t *testing.T, s storage.Store) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	kinds := map[storage.ClaimKind]int{}
	ids := map[string]bool{}
	for range 20 {
		wg.Go(func() {
			r, err := s.Claim(claim("1", "RACE", 1000, t0))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			kinds[r.Kind]++
			ids[r.Payment.TransactionID] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if kinds[storage.ClaimNew] != 1 || kinds[storage.ClaimBusy] != 19 || len(ids) != 1 {
		t.Fatalf("kinds %v ids %d", kinds, len(ids))
	}
	if ps := listPayments(t, s, storage.PaymentFilter{SiteID: "1", OrderID: "RACE"}); len(ps) != 1 {
		t.Fatalf("%d payments stored", len(ps))
	}
}
