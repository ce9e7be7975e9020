// Command loadgen drives the load test of bench/load.sh: it sends requests to a running Caddy
// started with bench/Caddyfile, scenario after scenario, and prints throughput and latency of
// each path of the module next to plain Caddy measured in the same run.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpay"
)

const (
	plain   = "http://127.0.0.1:9300"
	module  = "http://127.0.0.1:9301"
	sandbox = "http://127.0.0.1:9303"
	admin   = "http://localhost:2399"
	siteID  = "900000"
	secret  = "bench-secret-key"
)

type scenario struct {
	name     string
	baseline string // the scenario it is compared with
	method   string
	url      string
	body     string
	header   http.Header
	want     int
}

type result struct {
	n        int64
	errs     int64
	rps      float64
	p50, p99 time.Duration
}

func main() {
	seconds := flag.Int("seconds", 10, "duration of each scenario")
	conc := flag.Int("concurrency", 16, "concurrent clients")
	flag.Parse()
	client := &http.Client{
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{MaxIdleConnsPerHost: *conc * 2},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	form, token, err := finalPayment(client)
	if err != nil {
		fmt.Fprintln(os.Stderr, "setting up a paid payment:", err)
		os.Exit(1)
	}
	notifyHeader := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Token": {token}}
	scenarios := []scenario{
		{name: "plain GET", method: "GET", url: plain + "/page", want: 200},
		{name: "module GET (pass-through)", baseline: "plain GET", method: "GET", url: module + "/page", want: 200},
		{name: "plain POST checkout", method: "POST", url: plain + "/checkout", body: "x=1", want: 200},
		{name: "module POST checkout (payment start)", baseline: "plain POST checkout", method: "POST", url: module + "/checkout", body: "x=1", want: 303},
		{name: "plain POST form", method: "POST", url: plain + "/notify-like", body: form, header: notifyHeader, want: 200},
		{name: "module notification (duplicate)", baseline: "plain POST form", method: "POST", url: module + "/cinetpay/notify", body: form, header: notifyHeader, want: 200},
	}
	results := map[string]result{}
	fmt.Printf("%-38s %9s %10s %9s %9s %8s %s\n", "scenario", "requests", "req/s", "p50", "p99", "errors", "vs baseline")
	for _, s := range scenarios {
		r := run(client, s, *conc, time.Duration(*seconds)*time.Second)
		results[s.name] = r
		ratio := ""
		if b, ok := results[s.baseline]; ok && b.rps > 0 {
			ratio = fmt.Sprintf("%.2f× throughput, %.2f× p50 of %q", r.rps/b.rps, float64(r.p50)/float64(b.p50), s.baseline)
		}
		fmt.Printf("%-38s %9d %10.0f %9s %9s %8d %s\n", s.name, r.n, r.rps, r.p50.Round(time.Microsecond),
			r.p99.Round(time.Microsecond), r.errs, ratio)
	}
}

// run sends the scenario's request from conc clients for d.
func run(client *http.Client, s scenario, conc int, d time.Duration) result {
	var n, errs atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest(s.method, s.url, strings.NewReader(s.body))
				for k, v := range s.header {
					req.Header[k] = v
				}
				if s.body != "" && req.Header.Get("Content-Type") == "" {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				start := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				local = append(local, time.Since(start))
				n.Add(1)
				if err != nil || resp.StatusCode != s.want {
					errs.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	r := result{n: n.Load(), errs: errs.Load(), rps: float64(n.Load()) / d.Seconds()}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r
}

// finalPayment starts a payment, accepts it at the sandbox, waits until the module has it
// ACCEPTED, and returns a valid notification for it.
func finalPayment(client *http.Client) (string, string, error) {
	resp, err := client.Post(module+"/checkout", "application/x-www-form-urlencoded", strings.NewReader("x=1"))
	if err != nil {
		return "", "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return "", "", fmt.Errorf("checkout answered %d", resp.StatusCode)
	}
	var txs []struct {
		TransactionID string `json:"transaction_id"`
		PaymentURL    string `json:"payment_url"`
	}
	if err := getJSON(client, sandbox+"/_sandbox/transactions", &txs); err != nil {
		return "", "", err
	}
	txid := ""
	for _, tx := range txs {
		if tx.PaymentURL == resp.Header.Get("Location") {
			txid = tx.TransactionID
		}
	}
	if txid == "" {
		return "", "", fmt.Errorf("no sandbox transaction")
	}
	ar, err := client.Post(sandbox+"/_sandbox/transactions/"+txid+"/accept", "application/json", nil)
	if err != nil {
		return "", "", err
	}
	ar.Body.Close()
	for range 100 {
		var p struct {
			Payment struct {
				State string `json:"state"`
			} `json:"payment"`
		}
		if err := getJSON(client, admin+"/cinetpay/payments/"+siteID+"/"+txid, &p); err == nil && p.Payment.State == "ACCEPTED" {
			fields := map[string]string{"cpm_site_id": siteID, "cpm_trans_id": txid, "cpm_amount": "1000",
				"cpm_currency": "XOF", "cpm_trans_date": "2026-11-25 12:00:00", "cpm_error_message": "SUCCES"}
			form := url.Values{}
			for k, v := range fields {
				form.Set(k, v)
			}
			return form.Encode(), cinetpay.XToken(secret, fields), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", "", fmt.Errorf("payment %s never ACCEPTED", txid)
}

func getJSON(client *http.Client, u string, v any) error {
	resp, err := client.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", u, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
