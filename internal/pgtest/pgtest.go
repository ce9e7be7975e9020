// Package pgtest gives tests a PostgreSQL database: the server named by the environment
// variable CINETPAY_TEST_POSTGRES (a DSN, as .ci/run sets it), one fresh schema per call.
// Without it a test skips, saying so, unless CINETPAY_REQUIRE_TOOLS is set (CI): then it fails.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the variable holding the test server's DSN.
const EnvDSN = "CINETPAY_TEST_POSTGRES"

// Server is the DSN of the test server, or skips (fails in CI) when there is none.
func Server(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		msg := "no PostgreSQL server for the tests: set " + EnvDSN + " to a DSN (bash .ci/run starts one)"
		if os.Getenv("CINETPAY_REQUIRE_TOOLS") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dsn
}

// Fresh creates an empty schema on the test server, dropped when the test ends, and returns a
// DSN whose connections use it.
func Fresh(t testing.TB) string {
	t.Helper()
	dsn := Server(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	exec(t, dsn, `CREATE SCHEMA `+schema)
	t.Cleanup(func() { exec(t, dsn, `DROP SCHEMA `+schema+` CASCADE`) })
	return WithParam(dsn, "search_path", schema)
}

// WithParam adds a connection parameter to a DSN, URL or key=value.
func WithParam(dsn, name, value string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + name + "=" + value
	}
	return dsn + " " + name + "=" + value
}

// Exec runs one statement on the server of dsn.
func Exec(t testing.TB, dsn, sql string) { exec(t, dsn, sql) }

func exec(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to the test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
