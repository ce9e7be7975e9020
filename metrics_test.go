package caddycinetpay

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads Caddy's metrics: name{labels} → value.
func scrape(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://localhost:2999/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "caddy_cinetpay_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// The gauges follow a backlog as it builds (the shop down) and drains (the shop back); label
// values are lowercase; CinetPay calls are timed by outcome.
func TestGaugesFollowABacklog(t *testing.T) {
	e := newEnv(t, envOptions{})
	site := `site_id="` + testSiteID + `"`
	m := scrape(t)
	for _, name := range []string{"caddy_cinetpay_deliveries_pending{" + site + "}", "caddy_cinetpay_delivery_oldest_pending_seconds{" + site + "}",
		"caddy_cinetpay_payments_open{" + site + `,state="pending"}`, "caddy_cinetpay_rechecks_due{" + site + "}"} {
		if v, ok := m[name]; !ok || v != 0 {
			t.Errorf("%s = %v, %v before any payment", name, v, ok)
		}
	}
	e.shop.mu.Lock()
	e.shop.failNext = 1000 // the shop is down
	e.shop.mu.Unlock()
	var txs []string
	for _, o := range []string{"g1", "g2", "g3"} {
		tx, _ := e.checkout(o, 1000)
		txs = append(txs, tx)
	}
	if v := scrape(t)["caddy_cinetpay_payments_open{"+site+`,state="pending"}`]; v != 3 {
		t.Fatalf("open pending payments: %v", v)
	}
	for _, tx := range txs {
		e.act(tx, "accept")
	}
	waitFor(t, 10*time.Second, func() bool { return scrape(t)["caddy_cinetpay_deliveries_pending{"+site+"}"] == 3 })
	time.Sleep(1100 * time.Millisecond)
	m = scrape(t)
	if m["caddy_cinetpay_payments_open{"+site+`,state="pending"}`] != 0 || m["caddy_cinetpay_delivery_oldest_pending_seconds{"+site+"}"] < 1 {
		t.Fatalf("with the shop down: %v", m)
	}
	if m[`caddy_cinetpay_state_changes_total{state="accepted"}`] < 3 {
		t.Errorf("state changes not counted in lowercase: %v", m)
	}
	if m[`caddy_cinetpay_api_call_duration_seconds_count{op="check",outcome="ok"}`] < 3 ||
		m[`caddy_cinetpay_api_call_duration_seconds_count{op="payment",outcome="ok"}`] < 3 {
		t.Errorf("calls not timed by outcome: %v", m)
	}
	// the shop is back: the backlog drains to 0
	e.shop.mu.Lock()
	e.shop.failNext = 0
	e.shop.mu.Unlock()
	waitFor(t, 30*time.Second, func() bool {
		m := scrape(t)
		return m["caddy_cinetpay_deliveries_pending{"+site+"}"] == 0 && m["caddy_cinetpay_delivery_oldest_pending_seconds{"+site+"}"] == 0
	})
}

// Every metric the example alert rules use is one Caddy exports.
func TestAlertRulesNameRealMetrics(t *testing.T) {
	rules, err := os.ReadFile("examples/prometheus/cinetpay-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`caddy_cinetpay_[a-z_]+`).FindAllString(string(rules), -1)
	if len(used) < 5 {
		t.Fatalf("rules name %v", used)
	}
	e := newEnv(t, envOptions{})
	tx, _ := e.checkout("alerts", 1000)
	e.act(tx, "accept")
	e.shop.waitDeliveries(t, 1, 5*time.Second)
	names := map[string]bool{}
	for k := range scrape(t) {
		name, _, _ := strings.Cut(k, "{")
		names[name] = true
	}
	for _, n := range used {
		if !names[n] {
			t.Errorf("the rules use %s, which Caddy does not export", n)
		}
	}
}

// Every line the module logs is under the logger cinetpay (cinetpay.http, cinetpay.engine,
// cinetpay.store), and the lines about a site's payments name the site.
func TestLogsUnderOneNamespace(t *testing.T) {
	e := newEnv(t, envOptions{})
	tx, _ := e.checkout("logs", 1000)
	e.act(tx, "accept")
	e.shop.waitDeliveries(t, 1, 5*time.Second)
	form, _ := notification(testSiteID, tx, testSecret)
	e.notify(form, "forged-token") // a warning of the http side
	seen := map[string]bool{}
	for _, line := range e.logLines() {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		logger, _ := l["logger"].(string)
		msg, _ := l["msg"].(string)
		if strings.Contains(logger, "cinetpay") && !strings.HasPrefix(logger, "cinetpay") && !strings.Contains(logger, "cinetpay_") {
			t.Errorf("a line under %s: %s", logger, line)
		}
		if !strings.HasPrefix(logger, "cinetpay") {
			continue
		}
		seen[logger] = true
		if (strings.HasPrefix(logger, "cinetpay.http") || msg == "payment state changed" || msg == "payment started") && l["site_id"] != testSiteID {
			t.Errorf("no site_id on %s", line)
		}
	}
	for _, want := range []string{"cinetpay.http", "cinetpay.engine", "cinetpay.store"} {
		if !seen[want] {
			t.Errorf("no line under %s: %v", want, seen)
		}
	}
}
