package storage_test

import (
	"testing"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage/storetest"
)

// TestBadgerConformance runs the Store conformance suite against Badger stores on disk, as
// the module opens them.
func TestBadgerConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		s, err := storage.Open(t.TempDir(), storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
