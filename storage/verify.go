package storage

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// CheckIndexes reads the whole store and reports the first disagreement between the records
// and their indexes, on disk (order, state, transaction and queue keys) and in memory (the
// re-check and delivery queues, the open payments). It costs O(stored): it is for tests and
// for operators who suspect damage, not for serving.
func (s *Badger) CheckIndexes() error {
	want := map[string]bool{}  // every index key the records call for
	checks := map[Key]int64{}  // the in-memory re-check queue they call for
	open := map[Key]int64{}    // the open payments
	pending := map[Key]int64{} // the pending deliveries, at their stored due time
	err := s.db.View(func(txn *badger.Txn) error {
		if err := iterate(txn, []byte(kindPayment), true, func(k, v []byte) (bool, error) {
			var p Payment
			if err := json.Unmarshal(v, &p); err != nil {
				return false, fmt.Errorf("%s: %v", k, err)
			}
			if string(k) != string(paymentKey(p.SiteID, p.TransactionID)) {
				return false, fmt.Errorf("%s holds payment %s/%s", k, p.SiteID, p.TransactionID)
			}
			key := Key{SiteID: p.SiteID, ID: p.TransactionID}
			want[string(payStateKey(p.State, p.SiteID, p.TransactionID))] = true
			for _, k := range append(payTimeKeys(&p), payStateTimeKeys(p.State, &p)...) {
				want[string(k)] = true
			}
			want[string(orderKey(p.SiteID, p.OrderID, p.TransactionID))] = true
			if !p.NextCheck.IsZero() {
				want[string(recheckKey(p.NextCheck, p.SiteID, p.TransactionID))] = true
				checks[key] = p.NextCheck.UnixNano()
			}
			if p.State.Open() {
				open[key] = stateRank(p.State)
			} else {
				want[string(settledKey(p.LastChange(), p.SiteID, p.TransactionID))] = true
			}
			return true, nil
		}); err != nil {
			return err
		}
		if err := iterate(txn, []byte(kindDelivery), true, func(k, v []byte) (bool, error) {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return false, fmt.Errorf("%s: %v", k, err)
			}
			want[string(delStateKey(d.State, d.SiteID, d.ID))] = true
			want[string(delByTxKey(d.TransactionID, d.SiteID, d.ID))] = true
			if d.State == DeliveryPending {
				want[string(dueDeliveryKey(d.NextAttempt, d.SiteID, d.ID))] = true
				pending[Key{SiteID: d.SiteID, ID: d.ID}] = d.NextAttempt.UnixNano()
			}
			return true, nil
		}); err != nil {
			return err
		}
		// every index key on disk is called for by a record, and every one called for exists
		for _, kind := range []string{kindOrder, kindPayState, kindRecheck, kindDelState, kindDelByTx, kindDueDeliv, kindSettled,
			kindPayTime, kindPaySiteT, kindPayStTime, kindPaySiteStT} {
			if err := iterate(txn, []byte(kind), false, func(k, _ []byte) (bool, error) {
				if !want[string(k)] {
					return false, fmt.Errorf("index key %q has no record", printable(k))
				}
				delete(want, string(k))
				return true, nil
			}); err != nil {
				return err
			}
		}
		for k := range want {
			return fmt.Errorf("index key %q is missing", printable([]byte(k)))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := sameIndex("re-check queue", s.checks, checks, nil); err != nil {
		return err
	}
	if err := sameIndex("open payments", s.open, open, nil); err != nil {
		return err
	}
	// a leased delivery is due when its lease ends
	return sameIndex("delivery queue", s.dues, pending, func(k Key, stored, got int64) bool {
		s.leaseMu.Lock()
		l, ok := s.leases[k]
		s.leaseMu.Unlock()
		return ok && got == max(stored, l.until.UnixNano())
	})
}

// sameIndex compares an in-memory index with what the records call for; leased allows a rank
// that differs for a reason.
func sameIndex(name string, m *memIndex, want map[Key]int64, leased func(k Key, want, got int64) bool) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if len(m.ranks) != len(want) || m.tree.Len() != len(want) {
		return fmt.Errorf("%s: %d entries in memory (%d in order), %d on disk", name, len(m.ranks), m.tree.Len(), len(want))
	}
	for k, r := range want {
		got, ok := m.ranks[k]
		if !ok {
			return fmt.Errorf("%s: %s/%s missing in memory", name, k.SiteID, k.ID)
		}
		if got != r && (leased == nil || !leased(k, r, got)) {
			return fmt.Errorf("%s: %s/%s at %d in memory, %d on disk", name, k.SiteID, k.ID, got, r)
		}
		if !m.tree.Has(memItem{got, k}) {
			return fmt.Errorf("%s: %s/%s not in order", name, k.SiteID, k.ID)
		}
	}
	return nil
}

// printable shows a key with its binary due time as a number.
func printable(k []byte) string {
	for _, kind := range []string{kindRecheck, kindDueDeliv, kindSettled} {
		if strings.HasPrefix(string(k), kind) && len(k) >= len(kind)+8 {
			return fmt.Sprintf("%s%d/%s", kind, binary.BigEndian.Uint64(k[len(kind):]), k[len(kind)+8:])
		}
	}
	return string(k)
}
