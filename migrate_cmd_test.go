package caddycinetpay

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/internal/pgtest"
)

// `caddy cinetpay migrate` moves a live shop from Badger to PostgreSQL: a payment still
// pending and a result the shop has not received yet come along; after the move, CinetPay's
// notification of the pending payment is recognised, and both results are delivered once.
func TestMigrateCommand(t *testing.T) {
	dsn := pgtest.Fresh(t)
	b := newBinEnv(t, false)
	b.start()
	pending := b.checkout("mig-pending")
	b.shop.mu.Lock()
	b.shop.failNext = 1000 // the shop is down: the refusal's delivery stays pending
	b.shop.mu.Unlock()
	refused := b.checkout("mig-refused")
	b.act(refused, "refuse")
	waitFor(t, 10*time.Second, func() bool { return len(b.shop.allDeliveries()) > 0 })
	b.kill9()

	migrate := func() string {
		t.Helper()
		cmd := exec.Command(b.bin, "cinetpay", "migrate", "--from", b.dir, "--to-env", "TEST_DSN")
		cmd.Env = append(os.Environ(), "TEST_DSN="+dsn)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("migrate: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := migrate(); !strings.Contains(out, "2 payments copied (0 there already), 1 deliveries copied (1 pending; 0 there already)") {
		t.Fatalf("first run:\n%s", out)
	}
	if out := migrate(); !strings.Contains(out, "0 payments copied (2 there already), 0 deliveries copied (0 pending; 1 there already)") {
		t.Fatalf("second run:\n%s", out)
	}
	cmd := exec.Command(b.bin, "cinetpay", "migrate", "--from", b.dir)
	if out, err := cmd.CombinedOutput(); err == nil || cmd.ProcessState.ExitCode() != 2 {
		t.Fatalf("without --to: %v\n%s", err, out)
	}

	// the shop now runs on PostgreSQL
	b.dir = "postgres " + dsn
	b.writeConfig("")
	b.shop.mu.Lock()
	b.shop.failNext = 0
	b.shop.mu.Unlock()
	b.start()
	b.act(pending, "accept")
	waitFor(t, 20*time.Second, func() bool { return len(b.shop.okDeliveries()) >= 2 })
	assertOneEventPerResult(t, b.shop, 2, 5)
	got := map[string]string{}
	for _, d := range b.shop.okDeliveries() {
		got[d.Result.TransactionID] = d.Result.Status
	}
	if got[pending] != "ACCEPTED" || got[refused] != "REFUSED" {
		t.Fatalf("delivered after the move: %v", got)
	}
	// the notification was recognised as this store's (not ignored as another's)
	for _, n := range b.sb.Transactions() {
		if n.TransactionID != pending {
			continue
		}
		for _, rec := range n.Notifications {
			if rec.Method == http.MethodPost && rec.HTTPStatus != http.StatusOK {
				t.Errorf("notification answered %d", rec.HTTPStatus)
			}
		}
	}
}
