package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Coordination across processes. With a store several processes share (storage.Shared:
// PostgreSQL), what one process guards in memory is guarded in the store as well: one status
// call in flight per transaction across processes (a lease), one rate budget per site for all
// of them (a reservation per call), one purge at a time. With Badger, one process has the
// store, and the in-memory guards (the flight group, the limiter) are all there is.

// errCheckBusy: another process is making the status call of the payment.
var errCheckBusy = errors.New("another instance is checking this payment")

// checkLeaseMargin is added to the longest a status call may last (the limiter's wait and the
// call's timeout) for its lease: a process killed during a call holds the payment that much
// longer, at most.
const checkLeaseMargin = 5 * time.Second

// checkLeaseWait is how often a caller that waits for another process's status call looks
// again.
var checkLeaseWait = 100 * time.Millisecond

// errBudgetUnreadable: the budget shared by every process could not be read from the store (the
// database failed). It is not a rate limit: the budget may well have room.
var errBudgetUnreadable = errors.New("the shared rate budget could not be read from the store")

// errRateWait: the wait for the rate budget (this process's limiter, or the shared budget) ran
// out before a call could be made.
var errRateWait = errors.New("waiting for the rate limit")

// takeCall waits for the right to make one CinetPay call for site s: the site's limiter in this
// process (priorities, order), then the budget shared by every process, if the store has one.
// Its error says which: a wait that ran out ("waiting for the rate limit: ..."), or a budget
// that could not be read (errBudgetUnreadable).
func (e *Engine) takeCall(ctx context.Context, s *Site, prio int) error {
	if err := e.limiter(s.ID).wait(ctx, prio); err != nil {
		return fmt.Errorf("%w: %w", errRateWait, err)
	}
	sh, ok := e.store.(storage.Shared)
	if !ok {
		return nil
	}
	rate := s.RateLimit
	if rate <= 0 {
		rate = DefaultRateLimit
	}
	wait, err := sh.ReserveCall(s.ID, rate)
	if err != nil {
		return fmt.Errorf("%w: %w", errBudgetUnreadable, err)
	}
	if wait <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		return fmt.Errorf("%w: the shared rate budget is spent for %v: %w", errRateWait, wait.Round(time.Millisecond), context.DeadlineExceeded)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errRateWait, ctx.Err())
	}
}

// leaseCheck takes the lease of a payment's status call in a shared store, for as long as the
// call and the storing of its answer may last. A re-check gives up at once if another process
// holds it (that one's answer reschedules the payment); a notification or a customer waits for
// it, until ctx ends. release ends the lease; with a store of one process it does nothing.
func (e *Engine) leaseCheck(ctx context.Context, s *Site, txid string, prio int) (release func(), err error) {
	sh, ok := e.store.(storage.Shared)
	if !ok {
		return func() {}, nil
	}
	holder := e.holder + "-" + randomToken()
	lease := s.Timeout + LimiterWait + checkLeaseMargin
	for {
		got, err := sh.LeaseCheck(s.ID, txid, holder, Now(), lease)
		if err != nil {
			return nil, err
		}
		if got {
			return func() {
				if err := sh.ReleaseCheck(s.ID, txid, holder); err != nil {
					s.Logger.Warn("ending the lease of a status call (it ends by itself)", zap.String("transaction_id", txid), zap.Error(err))
				}
			}, nil
		}
		if prio == PrioRecheck {
			return nil, errCheckBusy
		}
		t := time.NewTimer(checkLeaseWait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w: %v", errCheckBusy, ctx.Err())
		}
	}
}

// randomToken is 8 random bytes in hex.
func randomToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// purge removes what ended more than Retention ago: in one process at a time when the store is
// shared.
func (e *Engine) purge() (int, error) {
	sh, ok := e.store.(storage.Shared)
	if !ok {
		return e.store.Purge(Now(), Retention)
	}
	var n int
	_, err := sh.Exclusively("purge", func() error {
		var err error
		n, err = e.store.Purge(Now(), Retention)
		return err
	})
	return n, err
}
