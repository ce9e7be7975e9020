package shop

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStoreWriteFailure: when the state cannot be written, a delivery is answered 500 (the module
// retries it) and nothing is applied, on disk or in memory; once the disk is back, the same
// delivery is applied once.
func TestStoreWriteFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	s := newShop(t, dir, true)
	id := s.checkout(t)
	file := filepath.Join(dir, stateFile)
	before, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}

	// A real write failure, even as root: the data directory is moved away and a plain file takes
	// its place, so the store can create neither its directory nor its temporary file.
	away := dir + ".away"
	if err := os.Rename(dir, away); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := result{order: id, status: "ACCEPTED", event: "evt-w", txid: "DEMOTXW001"}
	if w := d.deliver(t, s); w.Code != http.StatusInternalServerError {
		t.Fatalf("delivery while the state cannot be written: %d %s, want 500", w.Code, w.Body)
	}
	if o := s.order(t, id); o.Status != OrderPending || len(o.Events) != 0 || len(o.Deliveries) != 0 || o.Transaction != "" {
		t.Fatalf("a delivery that was not stored changed the order: %+v", o)
	}
	if w := s.do(t, httptest.NewRequest(http.MethodPost, "/checkout", nil)); w.Code != http.StatusInternalServerError ||
		w.Header().Get("Cinetpay-Amount") != "" {
		t.Fatalf("checkout while the state cannot be written: %d, amount %q", w.Code, w.Header().Get("Cinetpay-Amount"))
	}
	if n := len(s.ordersJSON(t).Orders); n != 1 {
		t.Fatalf("%d orders after a checkout that was not stored, want 1", n)
	}

	// the disk is back: the file is as it was, and the redelivery is applied once
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(away, dir); err != nil {
		t.Fatal(err)
	}
	if after, err := os.ReadFile(file); err != nil || !bytes.Equal(after, before) {
		t.Fatalf("the state file changed: %v\n%s", err, after)
	}
	if w := d.deliver(t, s); w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != OutcomeApplied {
		t.Fatalf("redelivery: %d %s", w.Code, w.Body)
	}
	if w := d.deliver(t, s); w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != OutcomeAlreadyApplied {
		t.Fatalf("second redelivery: %d %s", w.Code, w.Body)
	}
	if o := s.order(t, id); o.Status != OrderPaid || o.Transaction != "DEMOTXW001" || applied(o) != 1 ||
		len(o.Events) != 1 || o.Events[0] != "evt-w" {
		t.Fatalf("after the redelivery: %+v", o)
	}
	// and on disk: a restart reads it back
	_ = s.Cleanup()
	c := newShop(t, dir, true)
	if o := c.order(t, id); o.Status != OrderPaid || applied(o) != 1 || len(o.Events) != 1 {
		t.Fatalf("after a restart: %+v", o)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("data dir holds %v", entries)
	}
}

// TestFlagsKeepPaidOrderPaid: a DUPLICATE, an ACCEPTED of another transaction or a MISMATCH on a
// paid order leave it paid by the transaction that paid it, each with a flag for a person.
func TestFlagsKeepPaidOrderPaid(t *testing.T) {
	dir := t.TempDir()
	s := newShop(t, dir, true)
	id := s.checkout(t)
	deliver := func(r result) {
		t.Helper()
		if w := r.deliver(t, s); w.Code != http.StatusOK {
			t.Fatalf("%s %s: %d %s", r.status, r.event, w.Code, w.Body)
		}
	}
	deliver(result{order: id, status: "ACCEPTED", event: "e1", txid: "FIRST"})
	deliver(result{order: id, status: "DUPLICATE", event: "e2", txid: "SECOND"})
	deliver(result{order: id, status: "ACCEPTED", event: "e3", txid: "THIRD"})
	deliver(result{order: id, status: "MISMATCH", event: "e4", txid: "FOURTH", amount: "4000"})
	deliver(result{order: id, status: "ACCEPTED", event: "e5", txid: "FIRST"}) // the paying one again
	check := func(s *Shop, when string) {
		t.Helper()
		o := s.order(t, id)
		if o.Status != OrderPaid || o.Transaction != "FIRST" || len(o.Events) != 5 || len(o.Flags) != 3 {
			t.Fatalf("%s: %+v", when, o)
		}
		for i, want := range []struct{ event, txid, status string }{
			{"e2", "SECOND", "DUPLICATE"}, {"e3", "THIRD", "ACCEPTED"}, {"e4", "FOURTH", "MISMATCH"},
		} {
			f := o.Flags[i]
			if f.EventID != want.event || f.TransactionID != want.txid || f.Status != want.status || f.Reason == "" {
				t.Errorf("%s: flag %d is %+v, want %+v", when, i, f, want)
			}
		}
		if !strings.Contains(o.Flags[0].Reason, "refund transaction SECOND") || !strings.Contains(o.Flags[1].Reason, "refund transaction THIRD") {
			t.Errorf("%s: flag reasons %q, %q", when, o.Flags[0].Reason, o.Flags[1].Reason)
		}
	}
	check(s, "after the flags")

	// the orders page shows the order paid, with every flag
	w := s.do(t, httptest.NewRequest(http.MethodGet, "/orders?lang=en", nil))
	page := w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(page, `s-paid" data-status="paid">Paid<`) ||
		!strings.Contains(page, "refund transaction SECOND") || !strings.Contains(page, "refund transaction THIRD") {
		t.Fatalf("orders page: %d %s", w.Code, page)
	}

	// kept on disk
	_ = s.Cleanup()
	check(newShop(t, dir, true), "after a restart")
}

// TestRejectedDeliveriesInMemoryOnly: forged deliveries are answered 401 and listed on the orders
// page, but never written to disk, and never wait for the lock that real deliveries take.
func TestRejectedDeliveriesInMemoryOnly(t *testing.T) {
	dir := t.TempDir()
	s := newShop(t, dir, true)
	id := s.checkout(t)
	file := filepath.Join(dir, stateFile)
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(file, past, past); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}

	const forged = maxRejected + 50
	for i := range forged {
		r := result{order: id, status: "ACCEPTED", event: "forged", key: strings.Repeat("x", 40)}
		if i%2 == 1 {
			r.env = "staging" // signed with the right key, refused anyway
			r.key = ""
		}
		if w := r.deliver(t, s); w.Code != http.StatusUnauthorized {
			t.Fatalf("forged delivery %d: %d", i, w.Code)
		}
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(past) || !bytes.Equal(after, before) {
		t.Fatalf("forged deliveries wrote the state file (modified %v, want %v)", fi.ModTime(), past)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("data dir holds %v", entries)
	}
	v := s.ordersJSON(t)
	if len(v.Rejected) != maxRejected || v.Rejected[0].Verified || v.Rejected[0].Outcome != OutcomeRejected ||
		!strings.Contains(v.Rejected[0].Detail, "environment") {
		t.Fatalf("rejected list: %d entries, newest %+v", len(v.Rejected), v.Rejected[0])
	}
	if o := s.order(t, id); o.Status != OrderPending || len(o.Events) != 0 || len(o.Deliveries) != 0 {
		t.Fatalf("forged deliveries changed the order: %+v", o)
	}

	// while a real delivery holds the state's lock (a slow disk), forged ones are still answered
	req := result{order: id, status: "ACCEPTED", event: "forged", key: strings.Repeat("y", 40)}.request(t, http.MethodPost, "/cinetpay/webhook")
	s.store.mu.Lock()
	done := make(chan int, 1)
	go func() {
		w := httptest.NewRecorder()
		_ = s.ServeHTTP(w, req, nil)
		done <- w.Code
	}()
	select {
	case code := <-done:
		s.store.mu.Unlock()
		if code != http.StatusUnauthorized {
			t.Fatalf("forged delivery: %d", code)
		}
	case <-time.After(10 * time.Second):
		s.store.mu.Unlock()
		<-done
		t.Fatal("a forged delivery waited for the state's lock")
	}

	// the shop still applies a real delivery
	if w := (result{order: id, status: "ACCEPTED", event: "evt-real"}).deliver(t, s); w.Code != http.StatusOK {
		t.Fatalf("real delivery: %d %s", w.Code, w.Body)
	}
	if o := s.order(t, id); o.Status != OrderPaid || len(o.Events) != 1 {
		t.Fatalf("after the real delivery: %+v", o)
	}
}
