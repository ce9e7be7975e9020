package storage

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/jackc/pgx/v5"
)

// MigrateCounts counts what MigrateBadger copied, and what it found in the database already
// (a run that is resumed or repeated copies nothing twice).
type MigrateCounts struct {
	Payments, PaymentsThere     int
	Deliveries, DeliveriesThere int
	// Pending counts the deliveries copied that are still to be delivered: the instances on
	// PostgreSQL deliver them.
	Pending int
	// Orders counts the order heads (latest payments) and paid markers written.
	Orders int
}

func (c MigrateCounts) String() string {
	return fmt.Sprintf("%d payments copied (%d there already), %d deliveries copied (%d pending; %d there already), %d order heads and paid markers",
		c.Payments, c.PaymentsThere, c.Deliveries, c.Pending, c.DeliveriesThere, c.Orders)
}

// migrateBatch is how many records one database transaction of MigrateBadger writes.
const migrateBatch = 500

// MigrateBadger copies every payment, delivery, order head and paid marker of a Badger store
// into a PostgreSQL store, as they are. A record the database has already is left as it is, so
// the copy can be run again, or resumed after it stopped half-way. The database adopts the
// Badger store's transaction id prefix, so that CinetPay's notifications of payments started
// before the move are recognised; a database that has no payment yet takes it as its own
// prefix. progress, if set, is called after each batch. Run it with no Caddy using either
// store: the instances on PostgreSQL read the adopted prefixes when they start.
func MigrateBadger(from *Badger, to *Postgres, progress func(MigrateCounts)) (MigrateCounts, error) {
	var c MigrateCounts
	if err := to.adoptPrefix(from.Prefix()); err != nil {
		return c, err
	}
	report := func() {
		if progress != nil {
			progress(c)
		}
	}
	err := from.db.View(func(txn *badger.Txn) error {
		var batch pgx.Batch
		var kinds []string
		flush := func() error {
			if batch.Len() == 0 {
				return nil
			}
			err := to.tx("copying records", func(ctx context.Context, tx pgx.Tx) error {
				br := tx.SendBatch(ctx, &batch)
				defer br.Close()
				n := MigrateCounts{}
				for _, kind := range kinds {
					tag, err := br.Exec()
					if err != nil {
						return err
					}
					copied := tag.RowsAffected() == 1
					switch {
					case kind == "p" && copied:
						n.Payments++
					case kind == "p":
						n.PaymentsThere++
					case kind == "d" && copied:
						n.Deliveries++
					case kind == "dp" && copied:
						n.Deliveries++
						n.Pending++
					case kind == "d", kind == "dp":
						n.DeliveriesThere++
					case kind == "o":
						n.Orders++
					}
				}
				if err := br.Close(); err != nil {
					return err
				}
				c.Payments += n.Payments
				c.PaymentsThere += n.PaymentsThere
				c.Deliveries += n.Deliveries
				c.Pending += n.Pending
				c.DeliveriesThere += n.DeliveriesThere
				c.Orders += n.Orders
				return nil
			})
			batch, kinds = pgx.Batch{}, nil
			report()
			return err
		}
		add := func(kind, sql string, args ...any) error {
			batch.Queue(sql, args...)
			kinds = append(kinds, kind)
			if batch.Len() >= migrateBatch {
				return flush()
			}
			return nil
		}
		if err := iterate(txn, []byte(kindPayment), true, func(_, v []byte) (bool, error) {
			var p Payment
			if err := json.Unmarshal(v, &p); err != nil {
				return false, err
			}
			args, err := paymentArgs(&p)
			if err != nil {
				return false, err
			}
			return true, add("p", `INSERT INTO cinetpay_payments (`+paymentColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
				ON CONFLICT DO NOTHING`, args...)
		}); err != nil {
			return err
		}
		if err := iterate(txn, []byte(kindDelivery), true, func(_, v []byte) (bool, error) {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return false, err
			}
			args, err := deliveryArgs(&d)
			if err != nil {
				return false, err
			}
			kind := "d"
			if d.State == DeliveryPending {
				kind = "dp"
			}
			return true, add(kind, `INSERT INTO cinetpay_deliveries (`+deliveryColumns+`) VALUES ($1,$2,$3,$4,$5,$6)
				ON CONFLICT DO NOTHING`, args...)
		}); err != nil {
			return err
		}
		// order heads, then paid markers: the database's own are kept
		for _, o := range []struct{ kind, column string }{{kindOrderHead, "head_txid"}, {kindPaid, "paid_txid"}} {
			if err := iterate(txn, []byte(o.kind), true, func(k, v []byte) (bool, error) {
				site, order, ok := splitKey(k[len(o.kind):])
				if !ok {
					return true, nil
				}
				return true, add("o", `INSERT INTO cinetpay_orders (site_id, order_id, `+o.column+`) VALUES ($1, $2, $3)
					ON CONFLICT (site_id, order_id) DO UPDATE SET `+o.column+` = coalesce(cinetpay_orders.`+o.column+`, EXCLUDED.`+o.column+`)`,
					site, order, string(v))
			}); err != nil {
				return err
			}
		}
		return flush()
	})
	return c, err
}

// splitKey splits <site>/<rest>.
func splitKey(k []byte) (site, rest string, ok bool) {
	for i, b := range k {
		if b == '/' {
			return string(k[:i]), string(k[i+1:]), true
		}
	}
	return "", "", false
}

// adoptPrefix makes the database answer for transaction ids of prefix p; a database without
// payments takes p as its own prefix.
func (s *Postgres) adoptPrefix(p string) error {
	return s.tx("adopting a prefix", func(ctx context.Context, tx pgx.Tx) error {
		var empty bool
		if err := tx.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM cinetpay_payments)`).Scan(&empty); err != nil {
			return err
		}
		if empty {
			if _, err := tx.Exec(ctx, `UPDATE cinetpay_meta SET value = $1 WHERE key = 'prefix'`, p); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO cinetpay_meta (key, value) VALUES ($1, '') ON CONFLICT DO NOTHING`, "owned:"+p); err != nil {
			return err
		}
		return s.loadPrefixes(ctx, tx)
	})
}
