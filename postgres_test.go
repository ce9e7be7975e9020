package caddycinetpay

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-cinetpay/caddy-cinetpay/internal/pgtest"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// The whole flow on PostgreSQL, in a real Caddy: checkout, notification, delivery, duplicates
// from many clients at once, a refusal; the admin API names the database without its password.
func TestPostgresPaymentFlow(t *testing.T) {
	const secret = "pg-Secret-4242"
	dsn := pgtest.Fresh(t)
	pgtest.Exec(t, dsn, `CREATE ROLE cinetpay_test LOGIN PASSWORD '`+secret+`'`)
	t.Cleanup(func() { pgtest.Exec(t, pgtest.Server(t), `DROP OWNED BY cinetpay_test; DROP ROLE cinetpay_test`) })
	cfg, err := storage.ParsePostgresDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := cfg.ConnConfig.RuntimeParams["search_path"]
	pgtest.Exec(t, dsn, `GRANT ALL ON SCHEMA `+schema+` TO cinetpay_test`)
	userDSN := fmt.Sprintf("postgres://cinetpay_test:%s@%s:%d/%s?sslmode=disable&search_path=%s",
		secret, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, schema)

	e := newEnv(t, envOptions{postgres: userDSN})
	tx, _ := e.checkout("pg-order", 1000)
	if again, _ := e.checkout("pg-order", 1000); again != tx {
		t.Fatalf("the pending order started twice: %s, %s", tx, again)
	}
	e.act(tx, "accept")
	e.waitState(tx, storage.StateAccepted, 5*time.Second)
	ds := e.shop.waitDeliveries(t, 1, 5*time.Second)
	if ds[0].Result.TransactionID != tx || ds[0].Result.Status != "ACCEPTED" {
		t.Fatalf("delivered %+v", ds[0].Result)
	}
	// duplicates from many clients at once: 200 each, nothing delivered again
	form, token := notification(testSiteID, tx, testSecret)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, _ := e.notify(form, token); resp.StatusCode != http.StatusOK {
				t.Errorf("duplicate notification: %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	// a refusal, delivered too
	other, _ := e.checkout("pg-refused", 500)
	e.act(other, "refuse")
	e.waitState(other, storage.StateRefused, 5*time.Second)
	e.shop.waitDeliveries(t, 2, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	if n := len(e.shop.okDeliveries()); n != 2 {
		t.Fatalf("%d deliveries, want 2", n)
	}
	// the admin API and the logs name the database, never its password
	var out map[string]any
	e.admin(http.MethodGet, "/cinetpay/payments/"+testSiteID+"/"+tx, &out)
	got := fmt.Sprint(out)
	if strings.Contains(got, secret) || !strings.Contains(got, "cinetpay_test@") {
		t.Fatalf("admin payment: %s", got)
	}
	e.assertNotLogged(secret)
}

// storage's Caddyfile forms adapt to their JSON; a bad DSN is refused without being shown.
func TestStorageCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		line, backend, storage, err string
	}{
		{line: "storage /var/lib/cinetpay", storage: "/var/lib/cinetpay"},
		{line: "storage badger /var/lib/cinetpay", backend: "badger", storage: "/var/lib/cinetpay"},
		{line: "storage postgres {env.CINETPAY_DATABASE_URL}", backend: "postgres", storage: "{env.CINETPAY_DATABASE_URL}"},
		{line: "storage postgres", err: "storage takes a directory"},
		{line: "storage badger", err: "storage takes a directory"},
		{line: "storage postgres a b", err: "storage takes a directory"},
	} {
		block := fmt.Sprintf("cinetpay {\n api_key k\n site_id 1\n secret_key s\n signing_key k1 %s\n forward http://127.0.0.1:1/\n %s\n}",
			strings.Repeat("x", 32), tc.line)
		d := caddyfile.NewTestDispenser(block)
		var h Handler
		err := h.UnmarshalCaddyfile(d)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil || h.StorageBackend != tc.backend || h.Storage != tc.storage {
			t.Errorf("%s: %q %q %v", tc.line, h.StorageBackend, h.Storage, err)
		}
	}
	const secret = "Hunter2-secret"
	h := Handler{StorageBackend: "postgres", Storage: "postgres://u:" + secret + "@db:notaport/x"}
	if err := h.checkStorage(func(string) bool { return true }); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("bad DSN: %v", err)
	}
	h = Handler{StorageBackend: "postgres"}
	if err := h.checkStorage(func(string) bool { return true }); err == nil {
		t.Fatal("postgres without a DSN accepted")
	}
	h = Handler{StorageBackend: "sqlite", Storage: "x"}
	if err := h.checkStorage(func(string) bool { return true }); err == nil {
		t.Fatal("unknown backend accepted")
	}
}
