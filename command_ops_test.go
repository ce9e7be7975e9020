package caddycinetpay

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// cli runs `caddy cinetpay ARGS` of the built binary against the binEnv's Caddy.
func cli(t *testing.T, b *binEnv, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	full := append([]string{"cinetpay"}, args...)
	if args[0] != "keygen" {
		full = append(full, "--address", "localhost:2899")
	}
	cmd := exec.Command(b.bin, full...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("%v: %v", args, err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// Each `caddy cinetpay` subcommand against a running Caddy with payments in several states:
// tables, --json, pages, exit codes, a replay that is delivered, an export whose totals match;
// no key or token on any of them.
func TestOperatorCommands(t *testing.T) {
	b := newBinEnv(t, false)
	b.start()
	accepted := b.checkout("ops-accepted")
	b.act(accepted, "accept")
	refused := b.checkout("ops-refused")
	b.act(refused, "refuse")
	pending := b.checkout("ops-pending")
	waitFor(t, 10*time.Second, func() bool { return len(b.shop.okDeliveries()) >= 2 })
	var outputs []string
	check := func(args ...string) (string, string) {
		t.Helper()
		out, errOut, code := cli(t, b, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		outputs = append(outputs, out, errOut)
		return out, errOut
	}

	// payments: newest first, as a table and as JSON, in pages
	var list paymentsAnswer
	out, _ := check("payments", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Payments) != 3 {
		t.Fatalf("payments --json: %v\n%s", err, out)
	}
	if got := []string{list.Payments[0].TransactionID, list.Payments[1].TransactionID, list.Payments[2].TransactionID}; got[0] != pending || got[2] != accepted {
		t.Fatalf("not newest first: %v", got)
	}
	out, _ = check("payments", "--limit", "2")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "CREATED (UTC)") || !strings.Contains(lines[1], pending) ||
		!strings.HasPrefix(lines[3], "more: --cursor ") {
		t.Fatalf("payments --limit 2:\n%s", out)
	}
	out, _ = check("payments", "--limit", "2", "--cursor", strings.TrimPrefix(lines[3], "more: --cursor "))
	if !strings.Contains(out, accepted) || strings.Contains(out, pending) || strings.Contains(out, "more:") {
		t.Fatalf("second page:\n%s", out)
	}
	out, _ = check("payments", "--state", "refused")
	if !strings.Contains(out, refused) || strings.Contains(out, accepted) {
		t.Fatalf("payments --state refused:\n%s", out)
	}

	// one payment, with its history and deliveries
	out, _ = check("payment", accepted)
	for _, want := range []string{"state        ACCEPTED", "history:", "PENDING → ACCEPTED", "deliveries:", "delivered"} {
		if !strings.Contains(out, want) {
			t.Fatalf("payment: no %q in\n%s", want, out)
		}
	}
	var one paymentAnswer
	out, _ = check("payment", accepted, "--json", "--site", testSiteID)
	if err := json.Unmarshal([]byte(out), &one); err != nil || one.Payment.State != storage.StateAccepted || len(one.Deliveries) != 1 {
		t.Fatalf("payment --json: %v\n%s", err, out)
	}
	event := one.Deliveries[0].ID

	// deliveries, then a replay that the shop receives again, under the same event id
	out, _ = check("deliveries", "--state", "delivered")
	if !strings.Contains(out, event) || !strings.Contains(out, accepted) {
		t.Fatalf("deliveries:\n%s", out)
	}
	before := len(b.shop.okDeliveries())
	out, _ = check("replay", event)
	if !strings.Contains(out, "queued") {
		t.Fatalf("replay:\n%s", out)
	}
	waitFor(t, 10*time.Second, func() bool { return len(b.shop.okDeliveries()) > before })
	if d := b.shop.okDeliveries(); d[len(d)-1].Result.EventID != event {
		t.Fatalf("replayed under %s, want %s", d[len(d)-1].Result.EventID, event)
	}

	// a re-check of the pending one; of the accepted one, nothing to do
	checks := func() int {
		n := 0
		for _, r := range b.sb.Requests() {
			if r.Path == "/v2/payment/check" && r.TransactionID == pending {
				n++
			}
		}
		return n
	}
	before = checks()
	out, _ = check("recheck", pending)
	if !strings.Contains(out, "still PENDING") || checks() != before+1 {
		t.Fatalf("recheck (%d status calls, %d before):\n%s", checks(), before, out)
	}
	out, _ = check("recheck", accepted)
	if !strings.Contains(out, "ACCEPTED (the payment is settled") {
		t.Fatalf("recheck of a settled one:\n%s", out)
	}

	// an export of today: one row per payment, totals that match
	today := time.Now().UTC().Format(time.DateOnly)
	tomorrow := time.Now().UTC().Add(24 * time.Hour).Format(time.DateOnly)
	out, errOut := check("export", "--since", today, "--until", tomorrow)
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 4 || rows[0][1] != "transaction_id" {
		t.Fatalf("export csv: %v\n%s", err, out)
	}
	var sum int64
	for _, r := range rows[1:] {
		if r[5] == "ACCEPTED" && r[7] == "XOF" {
			sum += 1000
			if r[8] != "1000" || r[9] != "XOF" {
				t.Errorf("confirmed amount of an accepted row: %v", r)
			}
		}
	}
	if sum != 1000 || !strings.Contains(errOut, "3 payments; accepted 1000 XOF") {
		t.Fatalf("export totals: %d, %q", sum, errOut)
	}
	out, _ = check("export", "--since", today, "--until", tomorrow, "--format", "json")
	var js []map[string]string
	if err := json.Unmarshal([]byte(out), &js); err != nil || len(js) != 3 {
		t.Fatalf("export json: %v\n%s", err, out)
	}

	// keygen: a key the config accepts
	out, _ = check("keygen", "--id", "shop2")
	keyLines := strings.Split(strings.TrimSpace(out), "\n")
	f := strings.Fields(keyLines[0])
	if len(keyLines) != 2 || len(f) != 3 || f[0] != "signing_key" || f[1] != "shop2" || len(f[2]) != 43 {
		t.Fatalf("keygen: %q", out)
	}
	// the comment's whsec_ secret is the same key, and --whsec gives it for an existing key
	whsec := httpsig.WebhookSecret([]byte(f[2]))
	if !strings.HasPrefix(keyLines[1], "# ") || !strings.HasSuffix(keyLines[1], " "+whsec) {
		t.Fatalf("keygen: %q, want %s", keyLines[1], whsec)
	}
	cmd := exec.Command(b.bin, "cinetpay", "keygen", "--whsec")
	cmd.Stdin = strings.NewReader(f[2] + "\n")
	if got, err := cmd.Output(); err != nil || strings.TrimSpace(string(got)) != whsec {
		t.Fatalf("keygen --whsec: %v %q, want %s", err, got, whsec)
	}

	// exit codes a script can trust
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"payment", "NOPE0000000000000000000X"}, 3, "no payment"},
		{[]string{"replay", "0123456789abcdef"}, 3, "no delivery"},
		{[]string{"payments", "--state", "paid"}, 2, `is not a payment state`},
		{[]string{"payments", "--since", "yesterday"}, 2, "since"},
		{[]string{"deliveries", "--state", "bogus"}, 2, "not a delivery state"},
		{[]string{"export", "--since", today}, 2, "--since and --until are required"},
		{[]string{"payment"}, 1, "accepts 1 arg"},
	} {
		out, errOut, code := cli(t, b, c.args...)
		if code != c.code || !strings.Contains(out+errOut, c.want) {
			t.Errorf("%v: exit %d, want %d with %q\n%s%s", c.args, code, c.code, c.want, out, errOut)
		}
	}
	// the admin API itself: unknown parameters and bad values are 400s naming them
	for path, want := range map[string]string{
		"/cinetpay/payments?stat=PENDING":                      `unknown parameter \"stat\"`,
		"/cinetpay/deliveries?state=bogus":                     `state: \"bogus\" is not a delivery state`,
		"/cinetpay/payments?limit=0":                           "limit",
		"/cinetpay/payments?cursor=garbage":                    "cursor",
		"/cinetpay/payments?state=a&state=b":                   `parameter \"state\" given 2 times`,
		"/cinetpay/deliveries?site=1":                          `unknown parameter \"site\"`,
		"/cinetpay/payments?since=2026-12-02&until=2026-12-01": "since must be before until",
	} {
		resp, err := http.Get("http://localhost:2899" + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), want) || !strings.HasPrefix(string(body), `{"error":`) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	// no key, secret or notify token anywhere (the payment token is in the payment page's URL,
	// which the customer holds: not a secret)
	for _, o := range outputs {
		for _, secret := range []string{testAPIKey, testSecret, testSigningKey, "notify_token"} {
			if strings.Contains(o, secret) {
				t.Fatalf("%q in an output:\n%s", secret, o)
			}
		}
	}
}
