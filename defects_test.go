package caddycinetpay

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddy-cinetpay/caddy-cinetpay/sandbox"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Regression tests of the defects an outside soak found (issue 7): each fails on the code
// before its fix.

// refusedAndSettled starts a payment, refuses it at the sandbox and waits until the module has
// it REFUSED with only its 1 h re-check ahead and no quiet period running (any check a
// notification stored inside one has run, and its own quiet period is over).
func (e *env) refusedAndSettled(clk *fakeClock, order string) string {
	e.t.Helper()
	txid, _ := e.checkout(order, 1000)
	e.act(txid, "refuse")
	p := e.waitState(txid, storage.StateRefused, 5*time.Second)
	clk.advance(engine.QuietPeriod + time.Second)
	waitFor(e.t, 10*time.Second, func() bool {
		p = e.payment(testSiteID, txid)
		return p.NextCheck.Sub(clk.now()) > 30*time.Minute
	})
	clk.advance(engine.QuietPeriod + time.Second)
	return txid
}

// A late success notified 1 s after a /check that got a 5xx is checked, not acknowledged on
// the failed check's account: ACCEPTED and delivered at once, with no re-check of the schedule.
// If CinetPay keeps failing, the module tries again within a minute.
func TestLateSuccessAfterAFailedCheck(t *testing.T) {
	clk := useFakeClock(t)
	e := newEnv(t, envOptions{})
	for _, c := range []struct {
		order    string
		failures int // /check calls answered 503
	}{{"late-5xx-once", 1}, {"late-5xx-twice", 2}} {
		txid := e.refusedAndSettled(clk, c.order)
		delivered := len(e.shop.okDeliveries())
		// the customer pays after all; CinetPay's own notification is lost, and /check
		// answers 503 for a while
		e.sb.SetFaults(sandbox.Faults{Notify: &sandbox.NotifyFault{Lost: true}})
		e.act(txid, sandbox.ActionPayLate)
		e.sb.SetFaults(sandbox.Faults{Check: &sandbox.APIFault{Status: http.StatusServiceUnavailable, Times: c.failures}})
		form, token := notification(testSiteID, txid, testSecret)
		if resp, _ := e.notify(form, token); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s: notification during the 5xx: %d", c.order, resp.StatusCode)
		}
		checks := e.sb.CheckCount(txid)
		clk.advance(time.Second)
		resp, _ := e.notify(form, token)
		if e.sb.CheckCount(txid) != checks+1 {
			t.Fatalf("%s: the retried notification was not checked (%d calls)", c.order, e.sb.CheckCount(txid)-checks)
		}
		p := e.payment(testSiteID, txid)
		if c.failures == 1 {
			if resp.StatusCode != http.StatusOK || p.State != storage.StateAccepted {
				t.Fatalf("%s: retried notification %d, payment %s", c.order, resp.StatusCode, p.State)
			}
		} else {
			// still no answer: 503 again, and a check stored within a minute
			if resp.StatusCode != http.StatusServiceUnavailable || p.State != storage.StateRefused {
				t.Fatalf("%s: second failure %d, payment %s", c.order, resp.StatusCode, p.State)
			}
			if next := p.NextCheck.Sub(clk.now()); next <= 0 || next > time.Minute {
				t.Fatalf("%s: next check in %v after a failed check", c.order, next)
			}
			clk.advance(time.Minute)
			p = e.waitState(txid, storage.StateAccepted, 10*time.Second)
		}
		if p.LastChange().Sub(p.CreatedAt) > time.Hour/2 {
			t.Fatalf("%s: accepted %v after the start: the 1 h re-check was needed", c.order, p.LastChange().Sub(p.CreatedAt))
		}
		ds := e.shop.waitDeliveries(t, delivered+1, 10*time.Second)
		if r := ds[len(ds)-1].Result; r.TransactionID != txid || r.Status != "ACCEPTED" {
			t.Fatalf("%s: last delivery %+v", c.order, r)
		}
	}
}

// A late success notified within 15 s of a usable REFUSED answer is acknowledged only once a
// check due at the end of those 15 s is on disk; that check (made after a restart, here) finds
// the success.
func TestLateSuccessInsideTheQuietPeriod(t *testing.T) {
	clk := useFakeClock(t)
	e := newEnv(t, envOptions{})
	txid := e.refusedAndSettled(clk, "late-quiet")
	// a usable REFUSED answer now (a notification is checked: no quiet period runs)
	form, token := notification(testSiteID, txid, testSecret)
	if resp, _ := e.notify(form, token); resp.StatusCode != http.StatusOK {
		t.Fatalf("notification: %d", resp.StatusCode)
	}
	answered := e.payment(testSiteID, txid).LastAnswer
	if !answered.Equal(clk.now()) {
		t.Fatalf("last usable answer at %v, want now (%v)", answered, clk.now())
	}
	// the customer pays a second later, and CinetPay notifies
	clk.advance(time.Second)
	checks := e.sb.CheckCount(txid)
	tx := e.act(txid, sandbox.ActionPayLate)
	if n := len(tx.Notifications); n == 0 || tx.Notifications[n-1].Status != "ACCEPTED" ||
		tx.Notifications[n-1].HTTPStatus != http.StatusOK {
		t.Fatalf("the late success's notification: %+v", tx.Notifications)
	}
	p := e.payment(testSiteID, txid)
	if e.sb.CheckCount(txid) != checks || p.State != storage.StateRefused {
		t.Fatalf("checked inside the quiet period: %d calls, %s", e.sb.CheckCount(txid)-checks, p.State)
	}
	if !p.NextCheck.Equal(answered.Add(engine.QuietPeriod)) {
		t.Fatalf("check due %v after the last answer, want %v", p.NextCheck.Sub(answered), engine.QuietPeriod)
	}
	// the due check is on disk: it survives a restart
	unloadCaddy(t)
	e.load(e.caddyfile())
	clk.advance(engine.QuietPeriod)
	e.waitState(txid, storage.StateAccepted, 10*time.Second)
	ds := e.shop.waitDeliveries(t, 2, 10*time.Second)
	if ds[0].Result.Status != "REFUSED" || ds[1].Result.Status != "ACCEPTED" {
		t.Fatalf("deliveries %+v, %+v", ds[0].Result, ds[1].Result)
	}
}

// CinetPay's amount text ("5000.00", "5000.0", "05000") never reaches the shop: deliveries,
// return pages and the admin API carry the integer that was compared.
func TestConfirmedAmountReachesTheShopCanonical(t *testing.T) {
	e := newEnv(t, envOptions{})
	for i, format := range []string{"%d.00", "%d.0", "0%d"} {
		e.sb.SetFaults(sandbox.Faults{AmountFormat: format})
		order := fmt.Sprintf("order-amount-%d", i)
		txid, _ := e.checkout(order, 5000)
		e.act(txid, "accept")
		p := e.waitState(txid, storage.StateAccepted, 5*time.Second)
		raw := fmt.Sprintf(format, 5000)
		if p.Confirmed == nil || p.Confirmed.Amount != "5000" || p.Confirmed.RawAmount != raw {
			t.Fatalf("%s: admin view of the confirmation %+v", raw, p.Confirmed)
		}
		ds := e.shop.waitDeliveries(t, i+1, 5*time.Second)
		d := ds[len(ds)-1]
		if d.Result.TransactionID != txid || d.Result.Amount != "5000" || d.Header.Get("Cinetpay-Amount") != "5000" {
			t.Fatalf("%s: delivery %+v", raw, d.Result)
		}
		if _, body := e.do(http.MethodGet, "/cinetpay/return?transaction_id="+txid, nil, nil); body != "return page: ACCEPTED" {
			t.Fatalf("%s: return page %q", raw, body)
		}
		e.shop.mu.Lock()
		ret := e.shop.returns[len(e.shop.returns)-1]
		e.shop.mu.Unlock()
		if ret.Err != nil || ret.Result.Amount != "5000" {
			t.Fatalf("%s: return page result %+v %v", raw, ret.Result, ret.Err)
		}
	}
}

// A client that trickles the body of a notification or of the return form is cut off after
// bodyReadTimeout, while normal notifications are served meanwhile.
func TestSlowBodiesAreCutOff(t *testing.T) {
	e := newEnv(t, envOptions{})
	txid, _ := e.checkout("order-slow", 1000)
	type result struct {
		path    string
		elapsed time.Duration
		status  string
		err     error
	}
	results := make(chan result, 16)
	var wg sync.WaitGroup
	for i := range 12 {
		path := "/cinetpay/notify"
		if i%4 == 3 {
			path = "/cinetpay/return"
		}
		wg.Go(func() {
			start := time.Now()
			conn, err := net.Dial("tcp", strings.TrimPrefix(caddyBase, "http://"))
			if err != nil {
				results <- result{path: path, err: err}
				return
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
				"Content-Length: 1000\r\n\r\n", path)
			// one byte every second, for far longer than the deadline, while reading the answer
			stop := make(chan struct{})
			go func() {
				for range 60 {
					select {
					case <-stop:
						return
					case <-time.After(time.Second):
					}
					if _, err := conn.Write([]byte("a")); err != nil {
						return
					}
				}
			}()
			_ = conn.SetReadDeadline(time.Now().Add(bodyReadTimeout + 30*time.Second))
			br := bufio.NewReader(conn)
			status, err := br.ReadString('\n')
			close(stop)
			if err == nil {
				// then the connection is closed
				_, err = io.Copy(io.Discard, br)
			}
			if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) {
				// closed by the server (a byte written after its close may turn the close into a reset)
				err = nil
			}
			results <- result{path: path, elapsed: time.Since(start), status: strings.TrimSpace(status), err: err}
		})
	}
	// meanwhile, a normal notification is served at once
	time.Sleep(500 * time.Millisecond)
	form, token := notification(testSiteID, txid, testSecret)
	start := time.Now()
	if resp, _ := e.notify(form, token); resp.StatusCode != http.StatusOK || time.Since(start) > bodyReadTimeout {
		t.Fatalf("normal notification: %d after %v", resp.StatusCode, time.Since(start))
	}
	wg.Wait()
	close(results)
	answered := 0
	for r := range results {
		if strings.Contains(r.status, " 408 ") {
			answered++
		}
		if r.err != nil {
			t.Errorf("%s: %v", r.path, r.err)
			continue
		}
		// generous bound: the deadline, plus a scheduler's slack; never the 60 s of trickling
		if r.elapsed > bodyReadTimeout+15*time.Second {
			t.Errorf("%s: slow client held %v", r.path, r.elapsed)
		}
		if r.status != "" && !strings.Contains(r.status, " 408 ") {
			t.Errorf("%s: answer %q", r.path, r.status)
		}
	}
	if answered == 0 {
		t.Error("no slow client was told 408")
	}
}

// Cinetpay-* trailers are stripped both ways, as the headers are: a client's never reach the
// shop, and the shop's never reach the client; other trailers pass.
func TestTrailersStrippedBothWays(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/trailers"},       // passed through
		{http.MethodPut, "/cinetpay/return"}, // the return route, any other method
	} {
		pr, pw := io.Pipe()
		req, _ := http.NewRequest(c.method, caddyBase+c.path, pr)
		req.Trailer = http.Header{"Cinetpay-Status": nil, "X-Client-Trailer": nil}
		req.Trailer["Cinetpay_Amount"] = nil
		go func() {
			fmt.Fprint(pw, "a chunked body")
			req.Trailer.Set("Cinetpay-Status", "ACCEPTED")
			req.Trailer.Set("X-Client-Trailer", "kept")
			req.Trailer["Cinetpay_Amount"] = []string{"1"}
			pw.Close()
		}()
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "body with trailers" {
			t.Fatalf("%s %s: %d %q", c.method, c.path, resp.StatusCode, body)
		}
		if resp.Trailer.Get("X-Shop-Trailer") != "kept" || resp.Trailer.Get("X-Late-Trailer") != "kept too" {
			t.Errorf("%s: the shop's other trailers did not arrive: %v", c.path, resp.Trailer)
		}
		for name := range resp.Trailer {
			if isCinetpayHeader(name) {
				t.Errorf("%s: trailer %s reached the client", c.path, name)
			}
		}
		for _, v := range resp.Header.Values("Trailer") {
			if strings.Contains(strings.ToLower(v), "cinetpay") {
				t.Errorf("%s: Trailer declares %q to the client", c.path, v)
			}
		}
	}
	e.shop.mu.Lock()
	got := append([]http.Header(nil), e.shop.trailers...)
	e.shop.mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("the shop saw %d requests with trailers", len(got))
	}
	for i, tr := range got {
		if tr.Get("X-Client-Trailer") != "kept" {
			t.Errorf("request %d: the client's other trailer did not arrive: %v", i, tr)
		}
		for name := range tr {
			if isCinetpayHeader(name) {
				t.Errorf("request %d: trailer %s reached the shop", i, name)
			}
		}
	}
}
