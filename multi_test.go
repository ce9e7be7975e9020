package caddycinetpay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/internal/pgtest"
	"github.com/caddy-cinetpay/caddy-cinetpay/sandbox"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Several Caddy processes (the built binary) on one PostgreSQL server behind a load balancer,
// under chaos: CinetPay's notifications (each sent again, concurrently, so they reach several
// instances at once) and customers' returns spread over the instances at random, the shop
// failing half of the deliveries, instances killed with SIGKILL at random moments and started
// again, and the database stopped for 10 s in the middle. At the end: every payment settled
// as CinetPay says and delivered, one event id per result, one CinetPay transaction per
// order, never two status calls in flight for one transaction, and the rate budget held by
// all instances together.

const multiCaddyfile = `{
	admin localhost:%[1]d
	http_port %[2]d
	grace_period 1ns
	persist_config off
	log {
		output file %[3]s/caddy-%[2]d.log
		format json
	}
}
http://:%[2]d {
	cinetpay {
		api_key ` + testAPIKey + `
		site_id ` + testSiteID + `
		secret_key ` + testSecret + `
		signing_key ` + testKeyID + ` ` + testSigningKey + `
		endpoint %[4]s
		checkout /checkout/*
		forward http://%[5]s/cinetpay/webhook
		public_url %[6]s
		storage postgres %[7]s
		rate_limit %[8]d
		timeout 2s
		forward_timeout 2s
	}
	reverse_proxy %[5]s
}
`

// instance is one Caddy process of the cluster.
type instance struct {
	t         *testing.T
	bin, cfg  string
	port, adm int
	logDir    string
	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan error // cmd.Wait's result, once the process ended
	up        atomic.Bool
}

func (in *instance) start() {
	if err := in.tryStart(); err != nil {
		in.t.Error(err)
	}
}

// tryStart starts the process and waits until it answers.
func (in *instance) tryStart() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	cmd := exec.Command(in.bin, "run", "--config", in.cfg, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+in.t.TempDir(), "XDG_DATA_HOME="+in.t.TempDir(), "XDG_CONFIG_HOME="+in.t.TempDir())
	out, err := os.OpenFile(filepath.Join(in.logDir, fmt.Sprintf("stderr-%d.log", in.port)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	in.cmd, in.exited = cmd, make(chan error, 1)
	go func(exited chan<- error) { exited <- cmd.Wait() }(in.exited)
	base := fmt.Sprintf("http://127.0.0.1:%d", in.port)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-in.exited:
			in.exited <- err // for kill9
			return fmt.Errorf("instance %d exited during its start (%v); see %s", in.port, err, in.logDir)
		default:
		}
		resp, err := http.Get(base + "/cinetpay/notify")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				in.up.Store(true)
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("instance %d did not start; see %s", in.port, in.logDir)
}

// kill9 kills the process with SIGKILL and reaps it.
func (in *instance) kill9() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.up.Store(false)
	if in.cmd != nil && in.cmd.Process != nil {
		_ = in.cmd.Process.Kill()
		<-in.exited
	}
	in.cmd, in.exited = nil, nil
}

// balancer spreads requests over the instances at random, trying the others when one does not
// answer; 502 when none does.
type balancer struct {
	instances []*instance
	client    *http.Client
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	for _, i := range rand.Perm(len(b.instances)) {
		in := b.instances[i]
		req, _ := http.NewRequest(r.Method, fmt.Sprintf("http://127.0.0.1:%d%s", in.port, r.URL.RequestURI()), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		req.Host = r.Host
		resp, err := b.client.Do(req)
		if err != nil {
			continue
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.Header().Set("X-Instance", fmt.Sprint(in.port))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
	http.Error(w, "no instance answers", http.StatusBadGateway)
}

func TestPostgresSeveralInstancesUnderChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three Caddy processes and a PostgreSQL server")
	}
	pg := pgtest.StartOwn(t)
	bin := caddyBinary(t)
	const (
		orders = 36
		rate   = 8 // CinetPay calls per second for the whole cluster
	)
	sb := sandbox.New(sandbox.Config{Merchants: []sandbox.Merchant{{SiteID: testSiteID, APIKey: testAPIKey, SecretKey: testSecret}}})
	sbSrv := httptest.NewServer(sb)
	t.Cleanup(sbSrv.Close)
	t.Cleanup(func() { _ = sb.Close() })
	// every status call takes a while (two instances asked at once would overlap), and every
	// notification is sent twice, the copies at once, to whichever instances the balancer picks
	sb.SetFaults(sandbox.Faults{
		Check:  &sandbox.APIFault{Hang: sandbox.Duration(150 * time.Millisecond)},
		Notify: &sandbox.NotifyFault{Duplicate: 1, Concurrent: 2},
	})
	shop := newTestShop(t)
	shop.setIntent(http.Header{"Cinetpay-Order-Id": {"FORM"}, "Cinetpay-Currency": {"XOF"}})
	shop.mu.Lock()
	shop.failRate = 0.5
	shop.mu.Unlock()

	lb := &balancer{client: &http.Client{Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	lbSrv := httptest.NewServer(lb)
	t.Cleanup(lbSrv.Close)
	logDir := keptLogs(t)
	for i := range 3 {
		in := &instance{t: t, bin: bin, port: 9380 + i, adm: 2380 + i, logDir: logDir,
			cfg: filepath.Join(t.TempDir(), "Caddyfile")}
		cfg := fmt.Sprintf(multiCaddyfile, in.adm, in.port, logDir, sbSrv.URL, shop.addr(), lbSrv.URL, pg.DSN(), rate)
		if err := os.WriteFile(in.cfg, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		lb.instances = append(lb.instances, in)
	}
	// all three start at once on the empty database: the schema is made once
	var wg sync.WaitGroup
	for _, in := range lb.instances {
		wg.Add(1)
		go func() { defer wg.Done(); in.start() }()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, in := range lb.instances {
			in.kill9()
		}
	})
	client := &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// statuses answered to the clients, by phase
	var statMu sync.Mutex
	statuses := map[string]map[int]int{}
	var dbDown atomic.Bool
	var outages atomic.Int32 // database stops begun
	count := func(code int) {
		phase := "up"
		if dbDown.Load() {
			phase = "db down"
		}
		statMu.Lock()
		if statuses[phase] == nil {
			statuses[phase] = map[int]int{}
		}
		statuses[phase][code]++
		statMu.Unlock()
	}
	// until reports whether a request answered want, retrying for a while: long enough for a
	// start cut by a kill to pass its grace (timeout + 35 s) twice, and the outage, on a slow
	// machine (CI once needed more than the 60 s this was)
	until := func(method, path string, body url.Values, want int) (*http.Response, bool) {
		deadline := time.Now().Add(180 * time.Second)
		last := "none"
		for time.Now().Before(deadline) {
			var rd io.Reader
			req, _ := http.NewRequest(method, lbSrv.URL+path, rd)
			if body != nil {
				req, _ = http.NewRequest(method, lbSrv.URL+path, strings.NewReader(body.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			resp, err := client.Do(req)
			if err != nil {
				last = err.Error()
			} else {
				text, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				count(resp.StatusCode)
				if resp.StatusCode == want {
					return resp, true
				}
				last = fmt.Sprintf("%d %q", resp.StatusCode, text)
			}
			time.Sleep(time.Duration(100+rand.IntN(300)) * time.Millisecond)
		}
		// what the module kept answering tells a stuck start from a slow machine
		t.Logf("%s %s %v: no %d within 180 s; the last answer: %s", method, path, body, want, last)
		return nil, false
	}

	// chaos: one instance at a time killed with SIGKILL and started again, paused while the
	// database is down (an instance cannot start without it)
	stop := make(chan struct{})
	chaosDone := make(chan struct{})
	var kills atomic.Int64
	go func() {
		defer close(chaosDone)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(600+rand.IntN(900)) * time.Millisecond):
			}
			if dbDown.Load() {
				continue
			}
			in := lb.instances[rand.IntN(len(lb.instances))]
			in.kill9()
			kills.Add(1)
			time.Sleep(time.Duration(100+rand.IntN(500)) * time.Millisecond)
			// an instance cannot start without the database: a start that the outage began
			// during is made again once the database is back
			for {
				for dbDown.Load() {
					time.Sleep(100 * time.Millisecond)
				}
				before := outages.Load()
				err := in.tryStart()
				if err == nil {
					break
				}
				if outages.Load() == before {
					t.Error(err)
					break
				}
				in.kill9()
			}
		}
	}()

	// the workload: each order checked out by three customers' tabs at once (each reaching
	// any instance), paid or refused at CinetPay, and its customer coming back
	type order struct {
		id     string
		amount int
		accept bool
		txids  []string
	}
	all := make([]*order, orders)
	for i := range all {
		all[i] = &order{id: fmt.Sprintf("multi-%02d", i), amount: 100 * (i%5 + 1), accept: i%4 != 0}
	}
	var omu sync.Mutex
	work := make(chan *order)
	var workers sync.WaitGroup
	for range 6 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for o := range work {
				var tabs sync.WaitGroup
				for range 3 {
					tabs.Add(1)
					go func() {
						defer tabs.Done()
						resp, ok := until(http.MethodPost, "/checkout/cart", url.Values{"order": {o.id}, "amount": {fmt.Sprint(o.amount)}}, http.StatusSeeOther)
						if !ok {
							t.Errorf("checkout of %s never redirected to CinetPay", o.id)
							return
						}
						tx := sbTxOf(sb, resp.Header.Get("Location"))
						omu.Lock()
						o.txids = append(o.txids, tx)
						omu.Unlock()
					}()
				}
				tabs.Wait()
				if len(o.txids) == 0 {
					continue
				}
				action := "refuse"
				if o.accept {
					action = "accept"
				}
				if _, err := sb.Act(o.txids[0], action); err != nil {
					t.Errorf("sandbox %s %s: %v", action, o.txids[0], err)
					continue
				}
				until(http.MethodGet, "/cinetpay/return?transaction_id="+o.txids[0], nil, http.StatusOK)
			}
		}()
	}
	go func() {
		for i, o := range all {
			if i == orders/3 {
				// the database stops for 10 s in the middle of the run
				go func() {
					outages.Add(1)
					dbDown.Store(true)
					pg.Stop()
					time.Sleep(10 * time.Second)
					pg.Start()
					dbDown.Store(false)
				}()
			}
			work <- o
			time.Sleep(150 * time.Millisecond)
		}
		close(work)
	}()
	workers.Wait()
	for dbDown.Load() {
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	<-chaosDone
	for _, in := range lb.instances {
		if !in.up.Load() {
			in.start()
		}
	}

	// drain: every payment settles as CinetPay says and is delivered; a customer coming back
	// makes the check of a payment whose notifications were lost during the outage
	want := map[string]storage.State{}
	for _, o := range all {
		if len(o.txids) == 0 {
			continue
		}
		st := storage.StateRefused
		if o.accept {
			st = storage.StateAccepted
		}
		want[o.txids[0]] = st
	}
	admin := func(path string, v any) error {
		resp, err := http.Get(fmt.Sprintf("http://localhost:%d%s", lb.instances[rand.IntN(3)].adm, path))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %d", path, resp.StatusCode)
		}
		return json.NewDecoder(resp.Body).Decode(v)
	}
	deadline := time.Now().Add(240 * time.Second)
	var missing []string
	for {
		missing = missing[:0]
		delivered := map[string]string{}
		for _, d := range shop.okDeliveries() {
			delivered[d.Result.TransactionID+"/"+d.Result.Status] = d.Result.EventID
		}
		for tx, st := range want {
			if delivered[tx+"/"+string(st)] == "" {
				missing = append(missing, tx)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		for _, tx := range missing {
			until(http.MethodGet, "/cinetpay/return?transaction_id="+tx, nil, http.StatusOK)
		}
		time.Sleep(time.Second)
	}
	if len(missing) > 0 {
		t.Fatalf("%d payments not delivered with their result: %v (logs in %s)", len(missing), missing, logDir)
	}

	// every payment is in the state CinetPay gave it, with one event id for its result, which
	// the shop got (the shop applies an event id once: it never sees a second id for a result)
	eventsOf := map[string]map[string]bool{}
	for _, d := range shop.okDeliveries() {
		k := d.Result.TransactionID + "/" + d.Result.Status
		if eventsOf[k] == nil {
			eventsOf[k] = map[string]bool{}
		}
		eventsOf[k][d.Result.EventID] = true
	}
	for tx, st := range want {
		var out struct {
			Payment storage.Payment `json:"payment"`
		}
		if err := admin("/cinetpay/payments/"+testSiteID+"/"+tx, &out); err != nil {
			t.Fatal(err)
		}
		if out.Payment.State != st {
			t.Errorf("%s: %s, want %s", tx, out.Payment.State, st)
		}
		if n := len(eventsOf[tx+"/"+string(st)]); n != 1 {
			t.Errorf("%s: %d event ids for %s", tx, n, st)
		}
		for _, h := range out.Payment.History {
			if h.To == st && h.EventID != "" && !eventsOf[tx+"/"+string(st)][h.EventID] {
				t.Errorf("%s: the stored event %s is not the one delivered", tx, h.EventID)
			}
		}
	}

	// one CinetPay transaction per pending order: every tab of an order was sent to the same
	// payment, the only one of the order whose start reached the customer. A start cut by a
	// kill (INIT, its outcome unknown) never reached anyone; once its grace is over the order
	// may start again, and the cut one is checked and left open at CinetPay, unpaid.
	interrupted := 0
	sbStatus := map[string]string{}
	for _, tx := range sb.Transactions() {
		sbStatus[tx.TransactionID] = tx.Status
	}
	for _, o := range all {
		var out struct {
			Payments []storage.Payment `json:"payments"`
		}
		if err := admin("/cinetpay/payments?site_id="+testSiteID+"&order_id="+o.id, &out); err != nil {
			t.Fatal(err)
		}
		var handed []string
		for _, p := range out.Payments {
			if p.PaymentURL != "" {
				handed = append(handed, p.TransactionID)
			}
			for _, h := range p.History {
				if h.Reason == "start interrupted" {
					interrupted++
				}
			}
			// the module's state is CinetPay's
			switch st := sbStatus[p.TransactionID]; {
			case st == sandbox.StatusAccepted && p.State != storage.StateAccepted,
				st == sandbox.StatusRefused && p.State != storage.StateRefused,
				st == sandbox.StatusWaiting && !p.State.Open(),
				// a start cut before its call reached CinetPay: UNKNOWN until its grace ends, then FAILED
				st == "" && p.State != storage.StateFailed && p.State != storage.StateUnknown:
				t.Errorf("order %s: payment %s is %s, CinetPay says %q", o.id, p.TransactionID, p.State, st)
			}
		}
		if tabs := slices.Compact(slices.Sorted(slices.Values(o.txids))); len(handed) != 1 || len(tabs) != 1 || tabs[0] != handed[0] {
			t.Errorf("order %s: tabs sent to %v, payments handed to customers %v", o.id, o.txids, handed)
		}
	}

	// CinetPay's view: never two status calls of one transaction in flight at once, and the
	// cluster's calls within one budget
	reqs := sb.Requests()
	checks := map[string][]sandbox.Request{}
	var calls []time.Time
	for _, r := range reqs {
		if r.Path == "/v2/payment" || r.Path == "/v2/payment/check" {
			calls = append(calls, r.Time)
		}
		if r.Path == "/v2/payment/check" {
			checks[r.TransactionID] = append(checks[r.TransactionID], r)
		}
	}
	overlaps := 0
	for tx, rs := range checks {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Time.Before(rs[j].Time) })
		for i := 1; i < len(rs); i++ {
			if !rs[i-1].Answered.IsZero() && rs[i].Time.Before(rs[i-1].Answered) {
				overlaps++
				t.Errorf("%s: status call at %s while the one of %s was in flight (answered %s)", tx,
					rs[i].Time.Format("15:04:05.000"), rs[i-1].Time.Format("15:04:05.000"), rs[i-1].Answered.Format("15:04:05.000"))
			}
		}
	}
	slices.SortFunc(calls, func(a, b time.Time) int { return a.Compare(b) })
	peak := 0
	for i := range calls {
		j := sort.Search(len(calls), func(k int) bool { return !calls[k].Before(calls[i].Add(time.Second)) })
		peak = max(peak, j-i)
	}
	// a bucket of rate tokens refilled at rate per second grants at most w×rate + rate calls in
	// any w seconds; a call reaches CinetPay a little after its grant (the waits, the network),
	// so the windows seen here get a quarter of a second of slack. Three instances each on its
	// own budget would reach three times that (42 in one second when the test was made to fail).
	for _, w := range []int{1, 5} {
		most := 0
		for i := range calls {
			j := sort.Search(len(calls), func(k int) bool { return !calls[k].Before(calls[i].Add(time.Duration(w) * time.Second)) })
			most = max(most, j-i)
		}
		if most > int((float64(w)+0.25)*rate)+rate {
			t.Errorf("%d CinetPay calls within %d s; the cluster's budget is %d/s with a burst of %d", most, w, rate, rate)
		}
	}
	statMu.Lock()
	down := statuses["db down"]
	statMu.Unlock()
	if down[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no 503 while the database was down: %v", down)
	}
	for code, n := range down {
		if code >= 500 && code != http.StatusServiceUnavailable {
			t.Errorf("%d answers %d while the database was down", n, code)
		}
	}
	shopAll := shop.allDeliveries()
	t.Logf("%d orders, %d kills, %d starts cut by a kill, %d CinetPay calls (peak %d within 1 s, budget %d/s), "+
		"%d requests in all, %d delivery attempts (%d refused by the shop), statuses %v",
		orders, kills.Load(), interrupted, len(calls), peak, rate, len(reqs), len(shopAll),
		len(shopAll)-len(shop.okDeliveries()), statuses)
}

// sbTxOf is the sandbox transaction of a payment URL.
func sbTxOf(sb *sandbox.Server, loc string) string {
	for _, tx := range sb.Transactions() {
		if tx.PaymentURL == loc {
			return tx.TransactionID
		}
	}
	return ""
}

// keptLogs is a directory for the instances' logs: removed when the test passes, kept (and
// named) when it fails, so that a failure in CI can be read afterwards.
func keptLogs(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cinetpay-"+t.Name()+"-logs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the instances' logs are kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}
