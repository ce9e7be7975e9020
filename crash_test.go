package caddycinetpay

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/sandbox"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// These tests run the built binary (cmd/caddy), so that it can be killed.

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// caddyBinary builds cmd/caddy once per test run.
func caddyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "caddy-cinetpay-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "caddy")
		out, err := exec.Command("go", "build", "-o", builtBin, "./cmd/caddy").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

const binCaddyfile = `{
	admin localhost:2899
	http_port 9280
	grace_period 1ns
	persist_config off
	log {
		output file %[5]s/caddy.log
		format json
	}
}
http://localhost:9280 {
	cinetpay {
		%[6]s
		signing_key ` + testKeyID + ` ` + testSigningKey + `
		endpoint %[1]s
		checkout /checkout/*
		forward http://%[2]s/cinetpay/webhook
		storage %[3]s
		%[4]s
	}
	reverse_proxy %[2]s
}
`

// binEnv is a built Caddy in front of the shop and the sandbox, which live in the test process
// and survive the kills.
type binEnv struct {
	t       *testing.T
	bin     string
	cfgPath string
	sb      *sandbox.Server
	sbURL   string
	shop    *testShop
	dir     string
	logDir  string
	cmd     *exec.Cmd
	client  *http.Client
	// v1: the site speaks CinetPay's current API
	v1 bool
}

func newBinEnv(t *testing.T, v1 bool) *binEnv {
	if testing.Short() {
		t.Skip("builds and kills a Caddy binary")
	}
	b := &binEnv{t: t, bin: caddyBinary(t), dir: t.TempDir(), logDir: t.TempDir(), v1: v1}
	b.sb = sandbox.New(sandbox.Config{Merchants: []sandbox.Merchant{{SiteID: testSiteID, APIKey: testAPIKey, SecretKey: testSecret}},
		Accounts: []sandbox.Account{{APIKey: testV1Key, APIPassword: testV1Password, Country: "CI"}}})
	srv := httptest.NewServer(b.sb)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = b.sb.Close() })
	b.sbURL = srv.URL
	b.shop = newTestShop(t)
	b.client = &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	b.cfgPath = filepath.Join(t.TempDir(), "Caddyfile")
	b.writeConfig("")
	t.Cleanup(func() {
		if b.cmd != nil && b.cmd.Process != nil {
			_ = b.cmd.Process.Kill()
			_ = b.cmd.Wait()
		}
	})
	return b
}

func (b *binEnv) writeConfig(extra string) {
	creds := "api_key " + testAPIKey + "\n\t\tsite_id " + testSiteID + "\n\t\tsecret_key " + testSecret
	if b.v1 {
		creds = "api_key " + testV1Key + "\n\t\tapi_password " + testV1Password + "\n\t\tcountry CI"
	}
	cfg := fmt.Sprintf(binCaddyfile, b.sbURL, b.shop.addr(), b.dir, extra, b.logDir, creds)
	if err := os.WriteFile(b.cfgPath, []byte(cfg), 0o600); err != nil {
		b.t.Fatal(err)
	}
}

func (b *binEnv) start() {
	b.t.Helper()
	b.cmd = exec.Command(b.bin, "run", "--config", b.cfgPath, "--adapter", "caddyfile")
	b.cmd.Env = append(os.Environ(), "HOME="+b.t.TempDir(), "XDG_DATA_HOME="+b.t.TempDir(), "XDG_CONFIG_HOME="+b.t.TempDir())
	out, err := os.Create(filepath.Join(b.logDir, "stderr.log"))
	if err != nil {
		b.t.Fatal(err)
	}
	b.cmd.Stdout, b.cmd.Stderr = out, out
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	waitFor(b.t, 30*time.Second, func() bool {
		resp, err := http.Get("http://localhost:9280/cinetpay/notify")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func (b *binEnv) kill9() {
	b.t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		b.t.Fatal(err)
	}
	_ = b.cmd.Wait()
	b.cmd = nil
}

func (b *binEnv) checkout(order string) string {
	b.t.Helper()
	b.shop.setIntent(intentHeaders(order, 1000))
	req, _ := http.NewRequest(http.MethodPost, "http://localhost:9280/checkout/cart", nil)
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("checkout %s: %d", order, resp.StatusCode)
	}
	for _, tx := range b.sb.Transactions() {
		if tx.PaymentURL == resp.Header.Get("Location") {
			return tx.TransactionID
		}
	}
	b.t.Fatal("no sandbox transaction")
	return ""
}

func (b *binEnv) act(txid, action string) {
	b.t.Helper()
	if _, err := b.sb.Act(txid, action); err != nil {
		b.t.Fatal(err)
	}
}

// assertOneEventPerResult checks that every result reached the shop under one event id, and
// was accepted by the shop exactly `accepted` times.
func assertOneEventPerResult(t *testing.T, shop *testShop, results int, maxAccepted int) {
	t.Helper()
	ids := map[string]map[string]bool{} // tx/status → event ids
	ok := map[string]int{}
	for _, d := range shop.allDeliveries() {
		if d.Err != nil {
			t.Fatalf("unverifiable delivery: %v", d.Err)
		}
		k := d.Result.TransactionID + "/" + d.Result.Status
		if ids[k] == nil {
			ids[k] = map[string]bool{}
		}
		ids[k][d.Result.EventID] = true
		if d.Status < 300 {
			ok[d.Result.EventID]++
		}
	}
	if len(ids) != results {
		t.Fatalf("%d results delivered, want %d: %v", len(ids), results, ids)
	}
	for k, set := range ids {
		if len(set) != 1 {
			t.Fatalf("result %s delivered under %d event ids", k, len(set))
		}
		for id := range set {
			if ok[id] < 1 || ok[id] > maxAccepted {
				t.Fatalf("event %s accepted %d times", id, ok[id])
			}
		}
	}
}

func TestKill9LosesNothing(t *testing.T) {
	for _, api := range []string{"v2", "v1"} {
		t.Run(api, func(t *testing.T) { testKill9LosesNothing(t, api == "v1") })
	}
}

func testKill9LosesNothing(t *testing.T, v1 bool) {
	b := newBinEnv(t, v1)
	b.start()

	// caddy validate works while this Caddy holds the store
	if out, err := exec.Command(b.bin, "validate", "--config", b.cfgPath, "--adapter", "caddyfile").CombinedOutput(); err != nil {
		t.Fatalf("caddy validate while running: %v\n%s", err, out)
	}

	b.shop.mu.Lock()
	b.shop.failNext = 1 << 30 // the shop is down: deliveries pile up
	b.shop.mu.Unlock()
	var notified, lost []string
	for i := range 3 {
		tx := b.checkout(fmt.Sprintf("order-n%d", i))
		b.act(tx, "accept")
		notified = append(notified, tx)
	}
	b.sb.SetFaults(sandbox.Faults{Notify: &sandbox.NotifyFault{Lost: true}})
	for i := range 2 {
		tx := b.checkout(fmt.Sprintf("order-l%d", i))
		b.act(tx, "accept")
		lost = append(lost, tx)
	}
	b.sb.SetFaults(sandbox.Faults{})
	// the notified ones are stored and delivery attempts are failing
	waitFor(t, 20*time.Second, func() bool { return len(b.shop.allDeliveries()) >= 3 })

	b.kill9()
	b.shop.mu.Lock()
	b.shop.failNext = 0
	b.shop.mu.Unlock()
	b.start()

	// the pending deliveries go out at once; the lost notifications are found by the re-checks
	// (the first within a minute of the start)
	b.shop.waitDeliveries(t, 3, 60*time.Second)
	ds := b.shop.waitDeliveries(t, 5, 120*time.Second)
	got := map[string]bool{}
	for _, d := range ds {
		got[d.Result.TransactionID] = true
	}
	for _, tx := range append(notified, lost...) {
		if !got[tx] {
			t.Fatalf("%s never delivered", tx)
		}
	}
	assertOneEventPerResult(t, b.shop, 5, 1)

	// after a kill -9 in the middle and the recovery, the store's indexes agree with its records
	b.kill9()
	st, err := storage.Open(b.dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = st.CheckIndexes()
	_ = st.Close()
	if err != nil {
		t.Fatalf("after kill -9: %v", err)
	}
	logs, _ := os.ReadFile(filepath.Join(b.logDir, "caddy.log"))
	for _, s := range customerSecrets {
		if strings.Contains(string(logs), s) {
			t.Fatalf("%q in the logs", s)
		}
	}
}

func TestReloadWithPendingWork(t *testing.T) {
	b := newBinEnv(t, false)
	b.start()
	b.shop.mu.Lock()
	b.shop.failNext = 1 << 30
	b.shop.mu.Unlock()
	var txs []string
	for i := range 4 {
		tx := b.checkout(fmt.Sprintf("order-r%d", i))
		b.act(tx, "accept")
		txs = append(txs, tx)
	}
	waitFor(t, 20*time.Second, func() bool { return len(b.shop.allDeliveries()) >= 4 })
	// reload through the admin API while deliveries are being retried, several times
	for i := range 3 {
		b.writeConfig(fmt.Sprintf("rate_limit %d", 20+i))
		out, err := exec.Command(b.bin, "reload", "--config", b.cfgPath, "--adapter", "caddyfile", "--address", "localhost:2899").CombinedOutput()
		if err != nil {
			t.Fatalf("reload: %v\n%s", err, out)
		}
		if i == 1 {
			b.shop.mu.Lock()
			b.shop.failNext = 0
			b.shop.mu.Unlock()
		}
	}
	ds := b.shop.waitDeliveries(t, 4, 60*time.Second)
	time.Sleep(2 * time.Second)
	// one worker set per store across reloads: each event accepted once
	assertOneEventPerResult(t, b.shop, 4, 1)
	got := map[string]bool{}
	for _, d := range ds {
		got[d.Result.TransactionID] = true
	}
	for _, tx := range txs {
		if !got[tx] {
			t.Fatalf("%s never delivered across the reloads", tx)
		}
	}
	var pay struct {
		Payments []storage.Payment `json:"payments"`
	}
	resp, err := http.Get("http://localhost:2899/cinetpay/payments?state=ACCEPTED")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := decodeJSON(resp, &pay); err != nil || len(pay.Payments) != 4 {
		t.Fatalf("%v %d", err, len(pay.Payments))
	}
}
