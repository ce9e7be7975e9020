package main

import (
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// dataset is a seeded store kept as a template: each run copies it, so every run starts from
// the same records, and Caddy (which owns the copy while it runs) never changes the template.
type dataset struct {
	dir string
	// txids lists the transactions that the scenario needs to know, in seeding order (for the
	// stored set, a sample of settled ones).
	txids []string
	// pending is how many payments are PENDING.
	pending int
	// seedTime is when the records were made.
	seedTime time.Time
	took     time.Duration
	// cached: read from -cache, not seeded by this invocation.
	cached bool
}

// datasetVersion changes whenever the records the generators make change, so that a cached
// dataset (-cache) of an older generator is not reused.
const datasetVersion = "1"

// generator makes the i-th payment of a dataset and its deliveries.
type generator func(s *storage.Badger, i int) (storage.Payment, []storage.Delivery)

// importChunk is how many payments go to one Import call.
const importChunk = 20000

// seedStore creates a store in dir and writes n payments made by gen into it with the storage
// package's bulk loader, before any Caddy opens the directory (Badger allows one process per
// directory). keep says which transaction ids to return.
func seedStore(dir string, n int, gen generator, keep func(i int, p *storage.Payment) bool) ([]string, error) {
	s, err := storage.Open(dir, storage.Options{})
	if err != nil {
		return nil, err
	}
	var txids []string
	for start := 0; start < n; start += importChunk {
		end := min(start+importChunk, n)
		ps := make([]storage.Payment, 0, end-start)
		var ds []storage.Delivery
		for i := start; i < end; i++ {
			p, pds := gen(s, i)
			if keep(i, &p) {
				txids = append(txids, p.TransactionID)
			}
			ps = append(ps, p)
			ds = append(ds, pds...)
		}
		if err := s.Import(ps, ds); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("importing payments %d to %d: %w", start, end, err)
		}
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	if flattenSeeded {
		if err := flatten(dir); err != nil {
			return nil, fmt.Errorf("compacting the seeded store: %w", err)
		}
	}
	return txids, nil
}

// flattenSeeded is -flatten: compact seeded stores before Caddy opens them.
var flattenSeeded = true

// flatten compacts a closed store into one level, as a store that grew through months of
// single transactions would be. Import leaves its records in level-0 tables, and Badger would
// otherwise compact them in the background once Caddy opens the store: at 1M payments that
// costs several seconds of CPU and hundreds of MB of compaction buffers, which the idle
// figures would then measure instead of the module. The options that shape what compaction
// writes are those of storage.Open (which sets only memory sizes besides these).
func flatten(dir string) error {
	db, err := badger.Open(badger.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil).
		WithNumVersionsToKeep(1).WithValueLogFileSize(64 << 20))
	if err != nil {
		return err
	}
	if err := db.Flatten(2); err != nil {
		_ = db.Close()
		return err
	}
	return db.Close()
}

// recordOf describes one payment to generate.
type recordOf struct {
	order    string
	state    storage.State // PENDING or a state that delivers
	created  time.Time
	changed  time.Time // of the change to state (unused for PENDING)
	next     time.Time // NextCheck (zero: none)
	checks   int
	delivery storage.DeliveryState // of the delivery the change to state caused
}

// makePayment builds a payment as the module would have stored it: started at created
// (INIT → PENDING), then, unless it is PENDING, changed to its state by a check at changed,
// with the delivery that change caused.
func makePayment(s *storage.Badger, r recordOf) (storage.Payment, []storage.Delivery) {
	started := r.created.Add(800 * time.Millisecond)
	token := randomHex(32)
	p := storage.Payment{
		SiteID:        siteID,
		TransactionID: s.NewTransactionID(),
		OrderID:       r.order,
		Amount:        1000,
		Currency:      "XOF",
		Environment:   "sandbox",
		State:         r.state,
		PaymentToken:  token,
		PaymentURL:    sandboxURL + "/pay/" + token,
		CreatedAt:     r.created,
		UpdatedAt:     started,
		NextCheck:     r.next,
		Checks:        r.checks,
		History: []storage.Transition{
			{From: storage.StateInit, To: storage.StatePending, At: started, Reason: "start"},
		},
	}
	if r.checks > 0 {
		at := started.Add(30 * time.Second)
		p.LastCheck, p.LastAnswer, p.LastCheckResult = at, at, "code 662, status WAITING_FOR_CUSTOMER"
		p.UpdatedAt = at
	}
	if r.state == storage.StatePending {
		return p, nil
	}
	reason, status := "check", r.state
	switch r.state {
	case storage.StateAccepted:
		p.Confirmed = &storage.Confirmation{Amount: "1000", Currency: "XOF", Status: "ACCEPTED", PaymentMethod: "OM",
			OperatorID: "MP" + r.changed.UTC().Format("060102.1504") + ".A12345", PaymentDate: r.changed.UTC().Format(time.DateTime)}
		p.LastCheckResult = "code 00, status ACCEPTED"
	case storage.StateRefused:
		p.Confirmed = &storage.Confirmation{Amount: "1000", Currency: "XOF", Status: "REFUSED", PaymentMethod: "OM"}
		p.LastCheckResult = "code 627, status REFUSED"
	case storage.StateExpired:
		reason = "no final answer within 48 h"
		p.LastCheckResult = "code 662, status WAITING_FOR_CUSTOMER"
	}
	p.LastCheck, p.LastAnswer, p.UpdatedAt = r.changed, r.changed, r.changed
	d := storage.Delivery{
		ID:            randomHex(16),
		SiteID:        siteID,
		TransactionID: p.TransactionID,
		OrderID:       p.OrderID,
		Status:        status,
		Result:        p.Result(),
		Environment:   p.Environment,
		State:         r.delivery,
		CreatedAt:     r.changed,
		Since:         r.changed,
		NextAttempt:   r.changed,
	}
	if r.delivery == storage.DeliveryDelivered {
		at := r.changed.Add(40 * time.Millisecond)
		d.Attempts, d.RoundAttempts, d.LastAttempt, d.LastHTTPStatus = 1, 1, at, http204
		d.DeliveredAt, d.NextAttempt = at.Add(5*time.Millisecond), time.Time{}
	}
	p.History = append(p.History, storage.Transition{From: storage.StatePending, To: r.state, At: r.changed,
		Reason: reason, EventID: d.ID})
	return p, []storage.Delivery{d}
}

const http204 = 204

// backlogGen makes ACCEPTED payments whose deliveries are pending and all due at t0 (just
// before Caddy starts), in order of i.
func backlogGen(t0 time.Time, n int) generator {
	return func(s *storage.Badger, i int) (storage.Payment, []storage.Delivery) {
		due := t0.Add(-time.Duration(n-i) * time.Microsecond)
		return makePayment(s, recordOf{order: "perf-backlog-" + strconv.Itoa(i), state: storage.StateAccepted,
			created: due.Add(-2 * time.Minute), changed: due, delivery: storage.DeliveryPending})
	}
}

// recheckGen makes PENDING payments, checked once 30 s after their start, whose next re-check
// is due at t0 (just before Caddy starts), in order of i.
func recheckGen(t0 time.Time, n int) generator {
	return func(s *storage.Badger, i int) (storage.Payment, []storage.Delivery) {
		due := t0.Add(-time.Duration(n-i) * time.Microsecond)
		return makePayment(s, recordOf{order: "perf-recheck-" + strconv.Itoa(i), state: storage.StatePending,
			created: t0.Add(-5 * time.Minute), next: due, checks: 1})
	}
}

// notifyGen makes n PENDING payments whose next re-check is hours away (so that only the
// notifications settle them), then one ACCEPTED payment, delivered (the duplicate
// notification's).
func notifyGen(t0 time.Time, n int) generator {
	return func(s *storage.Badger, i int) (storage.Payment, []storage.Delivery) {
		if i == n {
			return makePayment(s, recordOf{order: "perf-final", state: storage.StateAccepted, created: t0.Add(-time.Hour),
				changed: t0.Add(-time.Hour + time.Minute), delivery: storage.DeliveryDelivered})
		}
		return makePayment(s, recordOf{order: "perf-first-" + strconv.Itoa(i), state: storage.StatePending,
			created: t0.Add(-time.Minute), next: t0.Add(6 * time.Hour)})
	}
}

// storedGen makes a store as it looks after months of use: n payments, pending of them PENDING
// (started in the last 24 h, re-checks due in the next hours), the others settled in the last
// 60 days (8 of 10 ACCEPTED, 1 REFUSED, 1 EXPIRED), each with its delivery delivered.
func storedGen(t0 time.Time, n, pending int) generator {
	every := max(n/max(pending, 1), 1)
	return func(s *storage.Badger, i int) (storage.Payment, []storage.Delivery) {
		rng := rand.New(rand.NewPCG(uint64(i), 42))
		order := "perf-order-" + strconv.Itoa(i)
		if i%every == 0 && i/every < pending {
			created := t0.Add(-time.Duration(rng.Int64N(int64(24 * time.Hour))))
			return makePayment(s, recordOf{order: order, state: storage.StatePending, created: created,
				next: t0.Add(time.Hour + time.Duration(rng.Int64N(int64(5*time.Hour)))), checks: 8})
		}
		created := t0.Add(-2*24*time.Hour - time.Duration(rng.Int64N(int64(58*24*time.Hour))))
		r := recordOf{order: order, state: storage.StateAccepted, created: created,
			changed: created.Add(time.Minute + time.Duration(rng.Int64N(int64(30*time.Minute)))), delivery: storage.DeliveryDelivered}
		switch i % 10 {
		case 3:
			r.state = storage.StateRefused
		case 7:
			r.state, r.changed = storage.StateExpired, created.Add(48*time.Hour)
		}
		return makePayment(s, r)
	}
}

// storedPending is how many PENDING payments a stored set of n holds: a few hundred.
func storedPending(n int) int { return min(300, n/10) }

// sampleSize is how many settled transaction ids a stored set keeps for the admin requests.
const sampleSize = 1000

// buildStored seeds the stored set of n payments into dir.
func buildStored(dir string, n int) (*dataset, error) {
	t0 := time.Now()
	pending := storedPending(n)
	every := max(n/sampleSize, 1)
	gen := storedGen(t0, n, pending)
	txids, err := seedStore(dir, n, gen, func(i int, p *storage.Payment) bool {
		return i%every == 1%every && p.State != storage.StatePending
	})
	if err != nil {
		return nil, err
	}
	return &dataset{dir: dir, txids: txids, pending: pending, seedTime: t0, took: time.Since(t0)}, nil
}

// storageFingerprint hashes the storage package's sources (the code that wrote a cached
// dataset and that Caddy reads it with) together with datasetVersion; "" when the sources are
// not found from the working directory.
func storageFingerprint() string {
	files, _ := filepath.Glob(filepath.Join("storage", "*.go"))
	h := sha256.New()
	fmt.Fprintf(h, "%s flatten=%v", datasetVersion, flattenSeeded)
	found := false
	for _, f := range files {
		if filepath.Ext(f) != ".go" || len(f) > 8 && f[len(f)-8:] == "_test.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return ""
		}
		found = true
		h.Write([]byte(f))
		h.Write(b)
	}
	if !found {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// cachedStored returns the stored set of n from the cache directory, building it there first
// if needed. The cache is keyed by the storage package's sources: another version of the
// store's format builds its own set.
func cachedStored(cache string, n int) (*dataset, error) {
	fp := storageFingerprint()
	if fp == "" {
		return nil, fmt.Errorf("-cache: storage/*.go not found from the working directory; run from the repository root")
	}
	dir := filepath.Join(cache, fmt.Sprintf("stored-%d-%s", n, fp))
	meta := filepath.Join(dir, "perf-dataset.json")
	type metaFile struct {
		TxIDs    []string      `json:"txids"`
		Pending  int           `json:"pending"`
		SeedTime time.Time     `json:"seed_time"`
		Took     time.Duration `json:"took"`
	}
	if b, err := os.ReadFile(meta); err == nil {
		var m metaFile
		if err := json.Unmarshal(b, &m); err == nil {
			return &dataset{dir: filepath.Join(dir, "store"), txids: m.TxIDs, pending: m.Pending, seedTime: m.SeedTime,
				took: m.Took, cached: true}, nil
		}
	}
	_ = os.RemoveAll(dir)
	tmp := dir + ".building"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	ds, err := buildStored(filepath.Join(tmp, "store"), n)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	b, _ := json.Marshal(metaFile{TxIDs: ds.txids, Pending: ds.pending, SeedTime: ds.seedTime, Took: ds.took})
	if err := os.WriteFile(filepath.Join(tmp, "perf-dataset.json"), b, 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	ds.dir = filepath.Join(dir, "store")
	return ds, nil
}

// copyDir copies the regular files of a closed store directory (Badger keeps no
// subdirectories) into dst, which it creates.
func copyDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == "LOCK" {
			continue
		}
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// dirSizeMB is the size of the files in dir, in MB.
func dirSizeMB(dir string) float64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
	}
	return float64(n) / (1 << 20)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}
