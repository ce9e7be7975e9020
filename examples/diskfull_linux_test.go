//go:build linux

package examples_test

import (
	"bytes"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestExamplesDiskFull runs each shop with a file size limit (RLIMIT_FSIZE, SIGXFSZ ignored) that
// lets the next version of its store be written only in part, as a full disk does: PHP's fwrite
// and Node's fs.writeSync then return a short count without an error. The delivery must be
// answered non-2xx with the store byte for byte as it was, and, once the limit is lifted, the same
// delivery applied exactly once.
func TestExamplesDiskFull(t *testing.T) {
	for _, ex := range examples {
		t.Run(ex.lang, func(t *testing.T) {
			// sh ignores SIGXFSZ (an ignored signal stays ignored across exec) and execs the
			// shop, which keeps sh's pid
			s := startShopWrapped(t, ex, "", func(argv []string) []string {
				return append([]string{"/bin/sh", "-c", `trap '' XFSZ; exec "$@"`, "sh"}, argv...)
			})
			id := s.checkout(t)
			store, _ := s.storePaths()
			before := readFile(t, store)
			// half the store: a JSON shop writes its temporary file in part; SQLite fails while
			// writing its journal, before it touches the database
			limit := uint64(len(before) / 2)
			if s.lang == "python" {
				limit = 1024
			}
			var old unix.Rlimit
			if err := unix.Prlimit(s.pid, unix.RLIMIT_FSIZE, nil, &old); err != nil {
				t.Fatalf("prlimit %d: %v", s.pid, err)
			}
			if old.Cur != unix.RLIM_INFINITY && old.Cur <= limit {
				t.Skipf("the shop's file size limit (%d) is already below the test's", old.Cur)
			}
			setFileSizeLimit(t, s.pid, limit, old.Max)
			lifted := false
			lift := func() {
				if !lifted {
					lifted = true
					setFileSizeLimit(t, s.pid, old.Cur, old.Max)
				}
			}
			t.Cleanup(lift)

			r := newResult(id)
			h := r.signed(t, defaultSign)
			if code, body := s.post(t, h); ok2xx(code) {
				t.Fatalf("delivery on a full disk: %d %q, want non-2xx", code, body)
			}
			resp, err := client.PostForm(s.url+"/checkout", url.Values{"product": {"wax"}})
			if err != nil {
				t.Fatalf("checkout on a full disk: %v (did the shop die?)", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("checkout on a full disk: %d, want 500", resp.StatusCode)
			}
			if after := readFile(t, store); !bytes.Equal(after, before) {
				t.Fatalf("the store changed on a full disk:\nbefore %q\nafter  %q", before, after)
			}

			lift()
			assertUntouched(t, s, id, "a delivery on a full disk")
			if code, body := s.post(t, h); code != http.StatusOK || !strings.Contains(body, "order paid") {
				t.Fatalf("redelivery: %d %q", code, body)
			}
			if code, body := s.post(t, h); !ok2xx(code) || !strings.Contains(body, "already applied") {
				t.Fatalf("second redelivery: %d %q", code, body)
			}
			if o := s.order(t, id); o.Status != "paid" || o.TransactionID != r.tx || len(o.Events) != 1 || o.Events[0] != r.event {
				t.Fatalf("after the redelivery: %+v", o)
			}
			// no partial temporary file left behind
			entries, err := os.ReadDir(s.data)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".tmp") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}

// setFileSizeLimit sets the RLIMIT_FSIZE of process pid: the soft limit to limit, the hard one
// left as it was (hard), so the soft limit can be raised again.
func setFileSizeLimit(t *testing.T, pid int, limit, hard uint64) {
	t.Helper()
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: limit, Max: hard}, nil); err != nil {
		t.Fatalf("prlimit %d: %v", pid, err)
	}
}
