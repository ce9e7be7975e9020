package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpay"
)

// newClient is an HTTP client for conc concurrent callers that does not follow redirects.
func newClient(conc int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:       timeout,
		Transport:     &http.Transport{MaxIdleConnsPerHost: conc * 2, MaxIdleConns: conc * 4},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// do sends one request and reads the answer; an answer other than want is an error.
func do(client *http.Client, method, u, contentType string, body []byte, hdr http.Header, want int) ([]byte, error) {
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return b, fmt.Errorf("%s %s: %s (want %d): %s", method, u, resp.Status, want, strings.TrimSpace(string(truncate(b, 300))))
	}
	return b, nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return append(b[:n:n], "…"...)
	}
	return b
}

// getJSON GETs u and decodes its 200 answer into v.
func getJSON(client *http.Client, u string, v any) error {
	b, err := do(client, http.MethodGet, u, "", nil, nil, http.StatusOK)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// request is one request a load run sends again and again.
type request struct {
	method, url string
	body        []byte
	header      http.Header
	want        int
}

// loadResult is the outcome of a load run.
type loadResult struct {
	n, errs  int64
	rps      float64
	p50, p99 time.Duration
	firstErr error
}

// hammer sends r from conc clients for d, as bench/loadgen does.
func hammer(client *http.Client, r request, conc int, d time.Duration) loadResult {
	var n, errs atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			var local []time.Duration
			for time.Now().Before(deadline) {
				t := time.Now()
				_, err := do(client, r.method, r.url, "", r.body, r.header, r.want)
				local = append(local, time.Since(t))
				n.Add(1)
				if err != nil {
					errs.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	res := loadResult{n: n.Load(), errs: errs.Load(), rps: float64(n.Load()) / elapsed.Seconds(), firstErr: firstErr}
	if len(lat) > 0 {
		res.p50, res.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return res
}

// parallel runs fn(i) for i in [0, n) from conc goroutines and returns the first error.
func parallel(n, conc int, fn func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(n)) // stop the others
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// notification is a Checkout v2 notification of txid, as CinetPay sends it (the fields of the
// repository's test harness), with its x-token.
func notification(txid string) (body []byte, header http.Header) {
	fields := map[string]string{
		"cpm_site_id": siteID, "cpm_trans_id": txid, "cpm_trans_date": "2026-11-25 12:00:00",
		"cpm_amount": "1000", "cpm_currency": "XOF", "signature": "tok", "payment_method": "OM",
		"cel_phone_num": "0707123456", "cpm_phone_prefixe": "225", "cpm_language": "fr",
		"cpm_version": "V4", "cpm_payment_config": "SINGLE", "cpm_page_action": "PAYMENT",
		"cpm_custom": "", "cpm_designation": "Commande", "cpm_error_message": "SUCCES",
	}
	form := url.Values{}
	for k, v := range fields {
		form.Set(k, v)
	}
	return []byte(form.Encode()), http.Header{
		"Content-Type":        {"application/x-www-form-urlencoded"},
		cinetpay.XTokenHeader: {cinetpay.XToken(secretKey, fields)},
	}
}
