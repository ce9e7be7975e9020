package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the Store shared by several processes: every instance of a site opens the same
// database, and the database holds everything one process would keep in memory with Badger
// (leases, the rate budget, who purges). Each record is a row with its JSON in `record` and the
// columns its queries select on beside it; every change of a record and its index columns is one
// database transaction, and a state change and its delivery are written in the same one.
//
// Concurrency comes from row locks: Claim locks the order's row (created if new), Update and
// Purge the payment's row and then the order's, FinishAttempt and Replay the delivery's row: in
// that order everywhere, so transactions wait for each other and never deadlock. BeginAttempt
// is a compare-and-set UPDATE of the delivery's lease columns. Times compared with a lease or a
// due time are the callers' (each instance's clock: keep them in sync with NTP); the rate budget
// uses the database's clock.
type Postgres struct {
	pool   *pgxpool.Pool
	prefix string
	// owned are the prefixes of the transaction ids this database answers for: its own, and
	// those of the Badger stores migrated into it
	owned   map[string]bool
	timeout time.Duration
	dsn     string // for redaction of errors
	// finals caches final payments (ACCEPTED, MISMATCH, DUPLICATE): nothing changes them, in
	// any instance, so a copy is never stale and a duplicate notification costs no query. A
	// payment purged by another instance may stay in it until it is evicted.
	finals recordCache[Payment]
}

var (
	_ Store  = (*Postgres)(nil)
	_ Shared = (*Postgres)(nil)
)

// Shared is what a store used by several processes at once offers the engine, to coordinate
// across them what one process coordinates in memory.
type Shared interface {
	// LeaseCheck gives holder the right to make the status call of a payment until
	// now+lease, unless another holder's lease runs at now (false then). ErrNotFound if the
	// payment does not exist.
	LeaseCheck(site, txid, holder string, now time.Time, lease time.Duration) (bool, error)
	// ReleaseCheck ends holder's lease of a payment's status call.
	ReleaseCheck(site, txid, holder string) error
	// ReserveCall takes one call from the budget of an account shared by every process
	// (perSecond calls per second, a burst of one second's worth) and says how long to wait
	// before making it. A reservation is never given back: one not used only slows the others.
	ReserveCall(account string, perSecond int) (time.Duration, error)
	// Exclusively runs fn unless another process runs the task of that name (ran false then).
	Exclusively(name string, fn func() error) (ran bool, err error)
}

// PostgresOptions tune OpenPostgres.
type PostgresOptions struct {
	// Timeout bounds each operation on the database (default 5 s): with the database down,
	// callers get an error within it rather than waiting.
	Timeout time.Duration
}

// DefaultPoolSize is the pool's size when the DSN does not set pool_max_conns: enough for the
// delivery and re-check workers and the requests of one instance.
const DefaultPoolSize = 24

// OpenPostgres connects to the database of dsn (a URL or key=value DSN pgx understands), and
// creates or migrates its schema (see migrations). Several processes may open one database at
// once. Errors never contain the DSN's password.
func OpenPostgres(dsn string, opts PostgresOptions) (*Postgres, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	cfg, err := ParsePostgresDSN(dsn)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = DefaultPoolSize
	}
	cfg.ConnConfig.ConnectTimeout = opts.Timeout
	// a connection that sat broken through an outage is checked before use
	cfg.HealthCheckPeriod = 5 * time.Second
	s := &Postgres{timeout: opts.Timeout, dsn: dsn}
	s.finals.clone = clonePayment
	ctx, cancel := context.WithTimeout(context.Background(), 2*opts.Timeout)
	defer cancel()
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, s.wrap("connecting", err)
	}
	if err := s.migrate(ctx); err != nil {
		s.pool.Close()
		return nil, err
	}
	return s, nil
}

// ParsePostgresDSN parses a DSN as OpenPostgres does; its error never shows the DSN's secrets.
func ParsePostgresDSN(dsn string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN; say only what is wrong with it
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return nil, fmt.Errorf("unreadable DSN: %s", redact(msg, dsn, ""))
	}
	return cfg, nil
}

// RedactDSN is a DSN as it may be shown: host, port, database and user, no password.
func RedactDSN(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// redact removes the password of dsn (and the DSN itself) from a message.
func redact(msg, dsn, password string) string {
	if password == "" {
		if cfg, err := pgx.ParseConfig(dsn); err == nil {
			password = cfg.Password
		}
	}
	if dsn != "" {
		msg = strings.ReplaceAll(msg, dsn, RedactDSN(dsn))
	}
	if password != "" {
		msg = strings.ReplaceAll(msg, password, "********")
	}
	return msg
}

// pgError is an error of the database with the DSN's secrets removed from its text; errors.Is
// and errors.As still reach the driver's error.
type pgError struct {
	msg string
	err error
}

func (e *pgError) Error() string { return e.msg }
func (e *pgError) Unwrap() error { return e.err }

func (s *Postgres) wrap(what string, err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrStaleAttempt) ||
		errors.Is(err, ErrBadTransition) || errors.Is(err, errKeep) || errors.Is(err, ErrInvalidKeyPart) {
		return err
	}
	var pe *pgError
	if errors.As(err, &pe) {
		return err
	}
	return &pgError{msg: "postgres: " + what + ": " + redact(err.Error(), s.dsn, ""), err: err}
}

// migrations are the schema's versions, applied in order at Open, each once, in one
// transaction holding an advisory lock: instances starting at once apply each one once.
// Never edit one that shipped; add the next.
var migrations = []string{
	// 1: payments, orders, deliveries, the shared leases and rate budget
	`CREATE TABLE cinetpay_meta (
		key   text PRIMARY KEY,
		value text NOT NULL
	);
	CREATE TABLE cinetpay_payments (
		site_id     text NOT NULL,
		txid        text NOT NULL,
		order_id    text NOT NULL,
		state       text NOT NULL,
		created_at  timestamptz NOT NULL,
		last_change timestamptz NOT NULL,
		next_check  timestamptz,
		record      jsonb NOT NULL,
		PRIMARY KEY (site_id, txid)
	);
	CREATE INDEX cinetpay_payments_order ON cinetpay_payments (site_id, order_id);
	CREATE INDEX cinetpay_payments_state ON cinetpay_payments (state, site_id, txid);
	CREATE INDEX cinetpay_payments_created ON cinetpay_payments (created_at, site_id, txid);
	CREATE INDEX cinetpay_payments_state_created ON cinetpay_payments (state, created_at, site_id, txid);
	CREATE INDEX cinetpay_payments_due ON cinetpay_payments (next_check) WHERE next_check IS NOT NULL;
	CREATE INDEX cinetpay_payments_settled ON cinetpay_payments (last_change)
		WHERE state NOT IN ('INIT', 'PENDING', 'UNKNOWN');
	CREATE TABLE cinetpay_orders (
		site_id   text NOT NULL,
		order_id  text NOT NULL,
		head_txid text,
		paid_txid text,
		PRIMARY KEY (site_id, order_id)
	);
	CREATE TABLE cinetpay_deliveries (
		site_id       text NOT NULL,
		id            text NOT NULL,
		txid          text NOT NULL,
		state         text NOT NULL,
		next_attempt  timestamptz,
		lease_attempt integer NOT NULL DEFAULT 0,
		lease_start   timestamptz,
		lease_until   timestamptz,
		due_at        timestamptz GENERATED ALWAYS AS
			(CASE WHEN state = 'pending' THEN GREATEST(next_attempt, lease_until) END) STORED,
		record        jsonb NOT NULL,
		PRIMARY KEY (site_id, id)
	);
	CREATE INDEX cinetpay_deliveries_due ON cinetpay_deliveries (due_at) WHERE due_at IS NOT NULL;
	CREATE INDEX cinetpay_deliveries_state ON cinetpay_deliveries (state, site_id, id);
	CREATE INDEX cinetpay_deliveries_tx ON cinetpay_deliveries (txid);
	-- what lives only while processes run needs no WAL: a crash of the database loses a
	-- lease (the call ends anyway) or resets a bucket
	CREATE UNLOGGED TABLE cinetpay_check_leases (
		site_id text NOT NULL,
		txid    text NOT NULL,
		holder  text NOT NULL,
		until   timestamptz NOT NULL,
		PRIMARY KEY (site_id, txid)
	);
	CREATE UNLOGGED TABLE cinetpay_rate (
		account text PRIMARY KEY,
		tokens  double precision NOT NULL,
		at      timestamptz NOT NULL
	);`,
}

// migrationLock is the advisory lock key of schema migrations.
const migrationLock = 0x63696e6574706179 // "cinetpay"

func (s *Postgres) migrate(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS cinetpay_schema (version integer NOT NULL)`); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM cinetpay_schema`).Scan(&have); err != nil {
			return err
		}
		if have > len(migrations) {
			return fmt.Errorf("the database's schema is version %d, newer than this build knows (%d): upgrade the module", have, len(migrations))
		}
		for v := have + 1; v <= len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return fmt.Errorf("schema version %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO cinetpay_schema (version) VALUES ($1)`, v); err != nil {
				return err
			}
		}
		// one prefix per database, drawn by the first instance
		if _, err := tx.Exec(ctx, `INSERT INTO cinetpay_meta (key, value) VALUES ('prefix', $1) ON CONFLICT DO NOTHING`,
			randomAlnum(prefixLen)); err != nil {
			return err
		}
		return s.loadPrefixes(ctx, tx)
	})
	return s.wrap("creating the schema", err)
}

// loadPrefixes reads the database's prefix and the ones it adopted (see MigrateBadger).
func (s *Postgres) loadPrefixes(ctx context.Context, tx pgx.Tx) error {
	if err := tx.QueryRow(ctx, `SELECT value FROM cinetpay_meta WHERE key = 'prefix'`).Scan(&s.prefix); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT substr(key, 7) FROM cinetpay_meta WHERE key LIKE 'owned:%'`)
	if err != nil {
		return err
	}
	owned, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	s.owned = map[string]bool{s.prefix: true}
	for _, p := range owned {
		s.owned[p] = true
	}
	return nil
}

// ctx is the context of one operation.
func (s *Postgres) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

// tx runs fn in a transaction, again on a serialization failure or a deadlock.
func (s *Postgres) tx(what string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	var err error
	for range 8 {
		ctx, cancel := s.ctx()
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(ctx, tx) })
		cancel()
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "40001" && pe.Code != "40P01" {
			break
		}
	}
	return s.wrap(what, err)
}

// Prefix implements Store.
func (s *Postgres) Prefix() string { return s.prefix }

// OwnsTransaction implements Store.
func (s *Postgres) OwnsTransaction(txid string) bool {
	return len(txid) == TransactionIDLen && s.owned[txid[:prefixLen]] && isUpperAlnum(txid)
}

// NewTransactionID makes a transaction id: the database's prefix, then random letters and
// digits (18 of them: no two instances draw the same one).
func (s *Postgres) NewTransactionID() string {
	return s.prefix + randomAlnum(TransactionIDLen-prefixLen)
}

// Close implements Store.
func (s *Postgres) Close() error {
	s.pool.Close()
	return nil
}

// GC implements Store: PostgreSQL's autovacuum reclaims space.
func (s *Postgres) GC() error { return nil }

// nullTime is t, or NULL for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

const paymentColumns = `site_id, txid, order_id, state, created_at, last_change, next_check, record`

func paymentArgs(p *Payment) ([]any, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return []any{p.SiteID, p.TransactionID, p.OrderID, string(p.State), p.CreatedAt, p.LastChange(),
		nullTime(p.NextCheck), b}, nil
}

func insertPayment(ctx context.Context, tx pgx.Tx, p *Payment) error {
	args, err := paymentArgs(p)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO cinetpay_payments (`+paymentColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`, args...)
	return err
}

func updatePayment(ctx context.Context, tx pgx.Tx, p *Payment) error {
	args, err := paymentArgs(p)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE cinetpay_payments SET order_id = $3, state = $4, created_at = $5,
		last_change = $6, next_check = $7, record = $8 WHERE site_id = $1 AND txid = $2`, args...)
	return err
}

const deliveryColumns = `site_id, id, txid, state, next_attempt, record`

func deliveryArgs(d *Delivery) ([]any, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	next := nullTime(d.NextAttempt)
	if d.State != DeliveryPending {
		next = nil
	}
	return []any{d.SiteID, d.ID, d.TransactionID, string(d.State), next, b}, nil
}

func insertDelivery(ctx context.Context, tx pgx.Tx, d *Delivery) error {
	args, err := deliveryArgs(d)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO cinetpay_deliveries (`+deliveryColumns+`) VALUES ($1,$2,$3,$4,$5,$6)`, args...)
	return err
}

// updateDelivery writes d; endLease also ends the lease of its attempt in flight.
func updateDelivery(ctx context.Context, tx pgx.Tx, d *Delivery, endLease bool) error {
	args, err := deliveryArgs(d)
	if err != nil {
		return err
	}
	q := `UPDATE cinetpay_deliveries SET txid = $3, state = $4, next_attempt = $5, record = $6`
	if endLease {
		q += `, lease_attempt = 0, lease_start = NULL, lease_until = NULL`
	} else if d.State != DeliveryPending {
		// a delivery that is not pending has no attempt in flight
		q += `, lease_until = NULL`
	}
	_, err = tx.Exec(ctx, q+` WHERE site_id = $1 AND id = $2`, args...)
	return err
}

// rowQuerier is what a pool and a transaction have in common for reading one row.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// getRecord reads the record of one row of table (cinetpay_payments or cinetpay_deliveries,
// whose key column besides site_id is idCol), or ErrNotFound; forUpdate locks the row until
// the transaction ends.
func getRecord[T any](ctx context.Context, q rowQuerier, table, idCol, site, id string, forUpdate bool) (T, error) {
	var v T
	sql := `SELECT record FROM ` + table + ` WHERE site_id = $1 AND ` + idCol + ` = $2`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	var b []byte
	if err := q.QueryRow(ctx, sql, site, id).Scan(&b); errors.Is(err, pgx.ErrNoRows) {
		return v, ErrNotFound
	} else if err != nil {
		return v, err
	}
	return v, json.Unmarshal(b, &v)
}

// getPaymentRow reads a payment; forUpdate locks its row until the transaction ends.
func getPaymentRow(ctx context.Context, q rowQuerier, site, txid string, forUpdate bool) (Payment, error) {
	return getRecord[Payment](ctx, q, "cinetpay_payments", "txid", site, txid, forUpdate)
}

// getDeliveryRow reads a delivery; forUpdate locks its row until the transaction ends.
func getDeliveryRow(ctx context.Context, q rowQuerier, site, id string, forUpdate bool) (Delivery, error) {
	return getRecord[Delivery](ctx, q, "cinetpay_deliveries", "id", site, id, forUpdate)
}

// Claim implements Store. The order's row (made if new) is locked first, so concurrent claims
// of one order, from any instance, take turns: the later ones see the first one's payment.
func (s *Postgres) Claim(c Claim) (ClaimResult, error) {
	if err := checkParts(c.SiteID, c.OrderID); err != nil {
		return ClaimResult{}, err
	}
	var res ClaimResult
	err := s.tx("claiming an order", func(ctx context.Context, tx pgx.Tx) error {
		res = ClaimResult{}
		var head, paid *string
		if err := tx.QueryRow(ctx, `INSERT INTO cinetpay_orders (site_id, order_id) VALUES ($1, $2)
			ON CONFLICT (site_id, order_id) DO UPDATE SET site_id = EXCLUDED.site_id
			RETURNING head_txid, paid_txid`, c.SiteID, c.OrderID).Scan(&head, &paid); err != nil {
			return err
		}
		var paidBy string
		var paidP, headP *Payment
		if paid != nil {
			paidBy = *paid
			p, err := getPaymentRow(ctx, tx, c.SiteID, *paid, false)
			if err == nil {
				paidP = &p
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
		} else if head != nil {
			// a head purged meanwhile is no head
			p, err := getPaymentRow(ctx, tx, c.SiteID, *head, false)
			if err == nil {
				headP = &p
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		if r, done := claimRule(c, paidBy, paidP, headP); done {
			res = r
			return nil
		}
		p := newClaimPayment(c, s.NewTransactionID())
		if err := insertPayment(ctx, tx, &p); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE cinetpay_orders SET head_txid = $3 WHERE site_id = $1 AND order_id = $2`,
			c.SiteID, c.OrderID, p.TransactionID); err != nil {
			return err
		}
		res = ClaimResult{Kind: ClaimNew, Payment: p}
		return nil
	})
	return res, err
}

// Get implements Store.
func (s *Postgres) Get(site, txid string) (Payment, error) {
	if err := checkParts(site, txid); err != nil {
		return Payment{}, ErrNotFound
	}
	k := Key{SiteID: site, ID: txid}
	if p, ok := s.finals.get(k); ok {
		return p, nil
	}
	ctx, cancel := s.ctx()
	defer cancel()
	p, err := getPaymentRow(ctx, s.pool, site, txid, false)
	if err != nil {
		return Payment{}, s.wrap("reading a payment", err)
	}
	if p.State.Final() {
		s.finals.put(k, &p)
	}
	return p, nil
}

// Update implements Store, with Badger.Update's rules, in one transaction holding the
// payment's row (and, for a change to ACCEPTED, the order's).
func (s *Postgres) Update(site, txid string, now time.Time, fn func(p *Payment) error) (UpdateResult, error) {
	if err := checkParts(site, txid); err != nil {
		return UpdateResult{}, ErrNotFound
	}
	var res UpdateResult
	err := s.tx("updating a payment", func(ctx context.Context, tx pgx.Tx) error {
		p, err := getPaymentRow(ctx, tx, site, txid, true)
		if err != nil {
			return err
		}
		var write bool
		res, _, write, err = applyUpdate(p, now, fn, func(order, txid string) (string, error) {
			var paidBy *string
			err := tx.QueryRow(ctx, `INSERT INTO cinetpay_orders (site_id, order_id, paid_txid) VALUES ($1, $2, $3)
				ON CONFLICT (site_id, order_id) DO UPDATE SET paid_txid = coalesce(cinetpay_orders.paid_txid, EXCLUDED.paid_txid)
				RETURNING paid_txid`, site, order, txid).Scan(&paidBy)
			if err != nil || paidBy == nil {
				return "", err
			}
			return *paidBy, nil
		})
		if err != nil || !write {
			return err
		}
		if res.Delivery != nil {
			if err := insertDelivery(ctx, tx, res.Delivery); err != nil {
				return err
			}
		}
		return updatePayment(ctx, tx, &res.Payment)
	})
	if err != nil {
		return UpdateResult{}, err
	}
	if res.Payment.State.Final() {
		s.finals.put(Key{SiteID: site, ID: txid}, &res.Payment)
	}
	return res, nil
}

// DueChecks implements Store: payments whose re-check is due, soonest first, but those whose
// status call another instance is making (their lease runs).
func (s *Postgres) DueChecks(now time.Time, limit int) ([]Key, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT p.site_id, p.txid FROM cinetpay_payments p
		WHERE p.next_check IS NOT NULL AND p.next_check <= $1
		AND NOT EXISTS (SELECT 1 FROM cinetpay_check_leases l
			WHERE l.site_id = p.site_id AND l.txid = p.txid AND l.until > $1)
		ORDER BY p.next_check LIMIT $2`, now, pageLimit(limit, maxDue))
	if err != nil {
		return nil, s.wrap("listing due checks", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) {
		var k Key
		return k, r.Scan(&k.SiteID, &k.ID)
	})
	return keys, s.wrap("listing due checks", err)
}

// collectRecords reads rows of one JSON record column.
func collectRecords[T any](rows pgx.Rows) ([]T, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) {
		var b []byte
		var v T
		if err := r.Scan(&b); err != nil {
			return v, err
		}
		return v, json.Unmarshal(b, &v)
	})
}

// DueDeliveries implements Store: pending deliveries due at now, soonest first; one in an
// attempt is due when its lease ends.
func (s *Postgres) DueDeliveries(now time.Time, limit int) ([]Delivery, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT record FROM cinetpay_deliveries WHERE due_at IS NOT NULL AND due_at <= $1
		ORDER BY due_at LIMIT $2`, now, pageLimit(limit, maxDue))
	if err != nil {
		return nil, s.wrap("listing due deliveries", err)
	}
	ds, err := collectRecords[Delivery](rows)
	return ds, s.wrap("listing due deliveries", err)
}

// GetDelivery implements Store.
func (s *Postgres) GetDelivery(site, id string) (Delivery, error) {
	if err := checkParts(site, id); err != nil {
		return Delivery{}, ErrNotFound
	}
	ctx, cancel := s.ctx()
	defer cancel()
	d, err := getDeliveryRow(ctx, s.pool, site, id, false)
	return d, s.wrap("reading a delivery", err)
}

// BeginAttempt implements Store: a compare-and-set of the delivery's lease columns, so one
// instance among all begins a given attempt. The lease is in the database: an instance that
// dies during an attempt leaves it to the others when the lease ends.
func (s *Postgres) BeginAttempt(site, id string, now time.Time, lease time.Duration) (Delivery, error) {
	if err := checkParts(site, id); err != nil {
		return Delivery{}, ErrNotFound
	}
	ctx, cancel := s.ctx()
	defer cancel()
	until := now.Add(lease)
	var b []byte
	var attempt int
	err := s.pool.QueryRow(ctx, `UPDATE cinetpay_deliveries
		SET lease_attempt = greatest((record->>'attempts')::int, lease_attempt) + 1, lease_start = $3, lease_until = $4
		WHERE site_id = $1 AND id = $2 AND state = 'pending' AND next_attempt <= $3
			AND (lease_until IS NULL OR lease_until <= $3)
		RETURNING record, lease_attempt`, site, id, now, until).Scan(&b, &attempt)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := s.GetDelivery(site, id); err != nil {
			return Delivery{}, err
		}
		return Delivery{}, ErrStaleAttempt
	} else if err != nil {
		return Delivery{}, s.wrap("leasing a delivery", err)
	}
	var d Delivery
	if err := json.Unmarshal(b, &d); err != nil {
		return Delivery{}, err
	}
	return leased(d, attempt, now, until), nil
}

// FinishAttempt implements Store: the outcome is written, and the lease ended, only if the
// attempt is still the one leased (its number and a lease not ended by another finish).
func (s *Postgres) FinishAttempt(site, id string, attempt int, r AttemptResult) (Delivery, error) {
	if err := checkParts(site, id); err != nil {
		return Delivery{}, ErrNotFound
	}
	var out Delivery
	err := s.tx("recording a delivery attempt", func(ctx context.Context, tx pgx.Tx) error {
		var b []byte
		var leaseAttempt int
		var start *time.Time
		err := tx.QueryRow(ctx, `SELECT record, lease_attempt, lease_start FROM cinetpay_deliveries
			WHERE site_id = $1 AND id = $2 FOR UPDATE`, site, id).Scan(&b, &leaseAttempt, &start)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		if start == nil || leaseAttempt != attempt {
			return ErrStaleAttempt
		}
		var d Delivery
		if err := json.Unmarshal(b, &d); err != nil {
			return err
		}
		if err := finishAttempt(&d, attempt, *start, r); err != nil {
			// not pending any more: the lease ends with nothing written
			if _, err := tx.Exec(ctx, `UPDATE cinetpay_deliveries SET lease_attempt = 0, lease_start = NULL,
				lease_until = NULL WHERE site_id = $1 AND id = $2`, site, id); err != nil {
				return err
			}
			out = Delivery{}
			return errStaleCommit
		}
		out = d
		return updateDelivery(ctx, tx, &d, true)
	})
	if errors.Is(err, errStaleCommit) {
		return Delivery{}, ErrStaleAttempt
	}
	return out, err
}

// errStaleCommit is a stale attempt whose transaction still commits (it ends the lease).
var errStaleCommit = errors.New("stale attempt, lease ended")

// Replay implements Store. A replay during an attempt lets the attempt finish first (the
// lease is kept), which leaves the delivery due at once (see finishAttempt).
func (s *Postgres) Replay(site, id string, now time.Time) (Delivery, error) {
	if err := checkParts(site, id); err != nil {
		return Delivery{}, ErrNotFound
	}
	var out Delivery
	err := s.tx("replaying a delivery", func(ctx context.Context, tx pgx.Tx) error {
		d, err := getDeliveryRow(ctx, tx, site, id, true)
		if err != nil {
			return err
		}
		replay(&d, now)
		out = d
		return updateDelivery(ctx, tx, &d, false)
	})
	return out, err
}

// sqlFilter builds the query of a listing: equality conditions on columns, a limit.
type sqlFilter struct {
	conds []string
	args  []any
}

// eq adds col = v, unless v is empty (no filter on col).
func (f *sqlFilter) eq(col, v string) {
	if v == "" {
		return
	}
	f.where(col+" = ?", v)
}

// where adds a condition whose ? are the values, in order.
func (f *sqlFilter) where(cond string, vals ...any) {
	for _, v := range vals {
		f.args = append(f.args, v)
		cond = strings.Replace(cond, "?", fmt.Sprintf("$%d", len(f.args)), 1)
	}
	f.conds = append(f.conds, cond)
}

// query selects the records of table that match, in order, at most limit.
func (f *sqlFilter) query(table, order string, limit int) string {
	q := "SELECT record FROM " + table
	if len(f.conds) > 0 {
		q += " WHERE " + strings.Join(f.conds, " AND ")
	}
	f.args = append(f.args, limit)
	return q + fmt.Sprintf(" ORDER BY %s LIMIT $%d", order, len(f.args))
}

// ListPayments implements Store, by index, newest first: an order's payments, a state's, a
// site's, within the creation-time bounds and after the cursor.
func (s *Postgres) ListPayments(f PaymentFilter) ([]Payment, error) {
	if f.SiteID != "" && checkParts(f.SiteID) != nil || f.OrderID != "" && checkParts(f.SiteID, f.OrderID) != nil {
		return nil, nil
	}
	var q sqlFilter
	q.eq("site_id", f.SiteID)
	q.eq("order_id", f.OrderID)
	q.eq("state", string(f.State))
	if !f.Since.IsZero() {
		q.where("created_at >= ?", f.Since)
	}
	if !f.Until.IsZero() {
		q.where("created_at < ?", f.Until)
	}
	if f.After != nil {
		// the column keeps microseconds
		q.where("(created_at, site_id, txid) < (?, ?, ?)", listTime(f.After.CreatedAt), f.After.SiteID, f.After.ID)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, q.query("cinetpay_payments", "created_at DESC, site_id DESC, txid DESC",
		pageLimit(f.Limit, 100)), q.args...)
	if err != nil {
		return nil, s.wrap("listing payments", err)
	}
	ps, err := collectRecords[Payment](rows)
	return ps, s.wrap("listing payments", err)
}

// ListDeliveries implements Store, by index: a transaction's deliveries, a state's (pending
// ones soonest due first), a site's.
func (s *Postgres) ListDeliveries(f DeliveryFilter) ([]Delivery, error) {
	if f.SiteID != "" && checkParts(f.SiteID) != nil || f.TransactionID != "" && checkParts(f.TransactionID) != nil {
		return nil, nil
	}
	var q sqlFilter
	q.eq("site_id", f.SiteID)
	q.eq("txid", f.TransactionID)
	q.eq("state", string(f.State))
	order := "site_id, id"
	if f.State == DeliveryPending {
		order = "due_at, site_id, id"
	}
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, q.query("cinetpay_deliveries", order, pageLimit(f.Limit, 100)), q.args...)
	if err != nil {
		return nil, s.wrap("listing deliveries", err)
	}
	ds, err := collectRecords[Delivery](rows)
	return ds, s.wrap("listing deliveries", err)
}

// Purge implements Store, with Badger.Purge's rules: candidates from the settled index, oldest
// change first, each decided again in the transaction that deletes it (holding its row), and
// kept if a delivery of it is pending. Paid markers stay.
func (s *Postgres) Purge(now time.Time, keep time.Duration) (int, error) {
	cutoff := now.Add(-keep)
	n := 0
	// keyset pagination over (last_change, site_id, txid): a kept candidate is not listed again
	var after Key
	var afterAt time.Time
	for {
		ctx, cancel := s.ctx()
		rows, err := s.pool.Query(ctx, `SELECT site_id, txid, last_change FROM cinetpay_payments
			WHERE state NOT IN ('INIT', 'PENDING', 'UNKNOWN') AND last_change < $1
				AND (last_change, site_id, txid) > ($2, $3, $4)
			ORDER BY last_change, site_id, txid LIMIT $5`, cutoff, afterAt, after.SiteID, after.ID, purgeChunk)
		if err != nil {
			cancel()
			return n, s.wrap("listing old payments", err)
		}
		var victims []Key
		var k Key
		var at time.Time
		_, err = pgx.ForEachRow(rows, []any{&k.SiteID, &k.ID, &at}, func() error {
			victims = append(victims, k)
			after, afterAt = k, at
			return nil
		})
		cancel()
		if err != nil {
			return n, s.wrap("listing old payments", err)
		}
		removed, err := purgeEach(victims, func(k Key) error { return s.purgeOne(k, now, keep) })
		n += removed
		if err != nil {
			return n, err
		}
		if len(victims) < purgeChunk {
			return n, nil
		}
	}
}

// purgeOne deletes one payment and its deliveries, decided again under its row lock.
func (s *Postgres) purgeOne(k Key, now time.Time, keep time.Duration) error {
	defer s.finals.drop(k)
	return s.tx("purging a payment", func(ctx context.Context, tx pgx.Tx) error {
		p, err := getPaymentRow(ctx, tx, k.SiteID, k.ID, true)
		if errors.Is(err, ErrNotFound) {
			return errKeep
		} else if err != nil {
			return err
		}
		if !purgeable(&p, now, keep) {
			return errKeep
		}
		var pending bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cinetpay_deliveries
			WHERE txid = $1 AND site_id = $2 AND state = 'pending')`, p.TransactionID, p.SiteID).Scan(&pending); err != nil {
			return err
		}
		if pending {
			return errKeep
		}
		if _, err := tx.Exec(ctx, `DELETE FROM cinetpay_deliveries WHERE txid = $1 AND site_id = $2`,
			p.TransactionID, p.SiteID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE cinetpay_orders SET head_txid = NULL
			WHERE site_id = $1 AND order_id = $2 AND head_txid = $3`, p.SiteID, p.OrderID, p.TransactionID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM cinetpay_check_leases WHERE site_id = $1 AND txid = $2`,
			p.SiteID, p.TransactionID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM cinetpay_payments WHERE site_id = $1 AND txid = $2`, p.SiteID, p.TransactionID)
		return err
	})
}

// Stats implements Store, with three grouped counts on the indexes (every instance on the
// database reports the same figures).
func (s *Postgres) Stats(now time.Time) (map[string]*SiteStats, error) {
	out := map[string]*SiteStats{}
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT site_id, count(*), min((record->>'since')::timestamptz)
		FROM cinetpay_deliveries WHERE state = 'pending' GROUP BY site_id`)
	if err != nil {
		return nil, s.wrap("counting pending deliveries", err)
	}
	var site string
	var n int
	var oldest *time.Time
	if _, err := pgx.ForEachRow(rows, []any{&site, &n, &oldest}, func() error {
		st := siteStats(out, site)
		st.DeliveriesPending = n
		if oldest != nil {
			st.OldestPending = *oldest
		}
		return nil
	}); err != nil {
		return nil, s.wrap("counting pending deliveries", err)
	}
	var state string
	rows, err = s.pool.Query(ctx, `SELECT site_id, state, count(*) FROM cinetpay_payments
		WHERE state IN ('INIT', 'PENDING', 'UNKNOWN') GROUP BY site_id, state`)
	if err != nil {
		return nil, s.wrap("counting open payments", err)
	}
	if _, err := pgx.ForEachRow(rows, []any{&site, &state, &n}, func() error {
		siteStats(out, site).PaymentsOpen[State(state)] = n
		return nil
	}); err != nil {
		return nil, s.wrap("counting open payments", err)
	}
	rows, err = s.pool.Query(ctx, `SELECT site_id, count(*) FROM cinetpay_payments
		WHERE next_check IS NOT NULL AND next_check <= $1 GROUP BY site_id`, now)
	if err != nil {
		return nil, s.wrap("counting due re-checks", err)
	}
	if _, err := pgx.ForEachRow(rows, []any{&site, &n}, func() error {
		siteStats(out, site).RechecksDue = n
		return nil
	}); err != nil {
		return nil, s.wrap("counting due re-checks", err)
	}
	return out, nil
}

// LeaseCheck implements Shared.
func (s *Postgres) LeaseCheck(site, txid, holder string, now time.Time, lease time.Duration) (bool, error) {
	if err := checkParts(site, txid); err != nil {
		return false, ErrNotFound
	}
	ctx, cancel := s.ctx()
	defer cancel()
	tag, err := s.pool.Exec(ctx, `INSERT INTO cinetpay_check_leases AS l (site_id, txid, holder, until)
		SELECT site_id, txid, $3, $4 FROM cinetpay_payments WHERE site_id = $1 AND txid = $2
		ON CONFLICT (site_id, txid) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until
		WHERE l.until <= $5`, site, txid, holder, now.Add(lease), now)
	if err != nil {
		return false, s.wrap("leasing a status call", err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	if _, err := s.Get(site, txid); err != nil {
		return false, err
	}
	return false, nil
}

// ReleaseCheck implements Shared.
func (s *Postgres) ReleaseCheck(site, txid, holder string) error {
	ctx, cancel := s.ctx()
	defer cancel()
	_, err := s.pool.Exec(ctx, `DELETE FROM cinetpay_check_leases WHERE site_id = $1 AND txid = $2 AND holder = $3`,
		site, txid, holder)
	return s.wrap("ending a status call's lease", err)
}

// ReserveCall implements Shared: a token bucket in one row per account, on the database's
// clock, refilled at perSecond up to perSecond tokens. A reservation takes a token even when
// none is left (the balance goes negative), and the caller waits until the bucket has refilled
// to it: reservations are served in the order they were made.
func (s *Postgres) ReserveCall(account string, perSecond int) (time.Duration, error) {
	if perSecond <= 0 {
		return 0, fmt.Errorf("rate budget %d", perSecond)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	var tokens float64
	err := s.pool.QueryRow(ctx, `INSERT INTO cinetpay_rate AS r (account, tokens, at) VALUES ($1, $2::float8 - 1, clock_timestamp())
		ON CONFLICT (account) DO UPDATE SET
			tokens = least($2::float8, r.tokens + extract(epoch FROM clock_timestamp() - r.at)::float8 * $2::float8) - 1,
			at = clock_timestamp()
		RETURNING tokens`, account, float64(perSecond)).Scan(&tokens)
	if err != nil {
		return 0, s.wrap("reserving a CinetPay call", err)
	}
	if tokens >= 0 {
		return 0, nil
	}
	return time.Duration(-tokens / float64(perSecond) * float64(time.Second)), nil
}

// Exclusively implements Shared with a session advisory lock, held on one connection while fn
// runs: a process that dies lets go of it with its connection.
func (s *Postgres) Exclusively(name string, fn func() error) (bool, error) {
	h := fnv.New64a()
	_, _ = h.Write([]byte("cinetpay:" + name))
	key := int64(h.Sum64())
	ctx, cancel := s.ctx()
	conn, err := s.pool.Acquire(ctx)
	cancel()
	if err != nil {
		return false, s.wrap("taking the "+name+" lock", err)
	}
	var got bool
	ctx, cancel = s.ctx()
	err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got)
	cancel()
	if err != nil || !got {
		conn.Release()
		return false, s.wrap("taking the "+name+" lock", err)
	}
	defer func() {
		ctx, cancel := s.ctx()
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
			// the lock must not outlive fn: drop the connection, and the lock with it
			_ = conn.Hijack().Close(context.Background())
			return
		}
		conn.Release()
	}()
	return true, fn()
}
