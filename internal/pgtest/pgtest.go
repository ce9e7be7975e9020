// Package pgtest gives tests a PostgreSQL database: the server named by the environment
// variable CINETPAY_TEST_POSTGRES (a DSN, as .ci/run sets it), one fresh schema per call.
// Without it a test skips, saying so, unless CINETPAY_REQUIRE_TOOLS is set (CI): then it fails.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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
	execSQL(t, dsn, `CREATE SCHEMA `+schema)
	t.Cleanup(func() { execSQL(t, dsn, `DROP SCHEMA `+schema+` CASCADE`) })
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
func Exec(t testing.TB, dsn, sql string) { execSQL(t, dsn, sql) }

func execSQL(t testing.TB, dsn, sql string) {
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

// Own is a PostgreSQL server of the test's own, in a temporary directory, that the test may
// stop and start (an outage).
type Own struct {
	t    testing.TB
	dir  string
	bin  string
	port int
	// asUser runs the server as this user when the tests run as root (PostgreSQL refuses root)
	asUser string
}

// StartOwn starts a server of the test's own from the installed PostgreSQL binaries (initdb,
// pg_ctl on PATH or in /usr/lib/postgresql/*/bin), stopped when the test ends. Without them it
// skips, or fails under CINETPAY_REQUIRE_TOOLS.
func StartOwn(t testing.TB) *Own {
	t.Helper()
	bin := ""
	if p, err := exec.LookPath("initdb"); err == nil {
		bin = filepath.Dir(p)
	} else if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) > 0 {
		sort.Strings(m)
		bin = filepath.Dir(m[len(m)-1])
	}
	if bin == "" {
		msg := "no PostgreSQL binaries (initdb, pg_ctl) for a server of the test's own: install postgresql"
		if os.Getenv("CINETPAY_REQUIRE_TOOLS") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir, err := os.MkdirTemp("", "cinetpay-pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	o := &Own{t: t, dir: dir, bin: bin, port: freePort(t)}
	if os.Getuid() == 0 {
		o.asUser = "postgres"
		if out, err := exec.Command("chown", "-R", o.asUser, dir).CombinedOutput(); err != nil {
			t.Fatalf("chown %s to %s (PostgreSQL refuses to run as root): %v %s", dir, o.asUser, err, out)
		}
	}
	o.run("initdb", "-D", filepath.Join(dir, "data"), "-A", "trust", "-U", "postgres", "--no-sync")
	o.Start()
	t.Cleanup(func() { _ = o.cmd("pg_ctl", "-D", filepath.Join(dir, "data"), "-m", "immediate", "-w", "stop").Run() })
	return o
}

// DSN is the server's DSN, database postgres.
func (o *Own) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", o.port)
}

// Start starts the server and waits until it accepts connections.
func (o *Own) Start() {
	o.t.Helper()
	o.run("pg_ctl", "-D", filepath.Join(o.dir, "data"), "-l", filepath.Join(o.dir, "server.log"), "-w",
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", o.port, o.dir), "start")
}

// Stop stops the server (mode fast: sessions are cut, as in a failover).
func (o *Own) Stop() {
	o.t.Helper()
	o.run("pg_ctl", "-D", filepath.Join(o.dir, "data"), "-m", "fast", "-w", "stop")
}

func (o *Own) cmd(name string, args ...string) *exec.Cmd {
	path := filepath.Join(o.bin, name)
	if o.asUser != "" {
		return exec.Command("runuser", append([]string{"-u", o.asUser, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func (o *Own) run(name string, args ...string) {
	o.t.Helper()
	c := o.cmd(name, args...)
	c.Dir = o.dir
	if out, err := c.CombinedOutput(); err != nil {
		o.t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
