package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// ReuseWindow: resubmitting an order whose payment is PENDING and younger than this, with the
// same amount and currency, sends the customer back to the same payment page.
const ReuseWindow = 15 * time.Minute

// StartKind says how a start ended.
type StartKind int

const (
	// StartNew: a new payment, now PENDING; send the customer to Payment.PaymentURL.
	StartNew StartKind = iota
	// StartReused: the order has a fresh PENDING payment with the same amount and currency.
	StartReused
	// StartPaid: the order is already paid, by Payment.
	StartPaid
	// StartBusy: another start of the order is in progress.
	StartBusy
	// StartRefused: CinetPay refused the start; the payment is FAILED.
	StartRefused
	// StartRateLimited: CinetPay (or the site's own rate limit) asked to slow down; FAILED.
	StartRateLimited
	// StartUnknown: no usable answer; the payment is UNKNOWN and will be re-checked.
	StartUnknown
	// StartStoreError: the store failed; nothing can be said. A payment whose rate budget could
	// not be read from the store is FAILED when that can still be stored (CinetPay was not
	// called).
	StartStoreError
	// StartInvalid: the intent breaks a rule of the site's API (Err says which); nothing was
	// stored.
	StartInvalid
)

// StartResult is how a start ended; concurrent starts of one order share it.
type StartResult struct {
	Kind    StartKind
	Payment storage.Payment
	// RetryAfter is how long the customer should wait, when rate limited or busy.
	RetryAfter time.Duration
	// Err is why the intent is invalid (StartInvalid).
	Err error
}

// Start claims the order and, for a new payment, stores it as INIT, starts it at CinetPay and
// stores the outcome before answering. Concurrent starts of one order run once and share the
// result.
func (e *Engine) Start(s *Site, in *Intent) StartResult {
	if err := s.Provider.Validate(in); err != nil {
		return StartResult{Kind: StartInvalid, Err: err}
	}
	res, _ := e.starts.do(s.ID+"/"+in.OrderID, func() (StartResult, error) { return e.start(s, in), nil })
	return res
}

func (e *Engine) start(s *Site, in *Intent) StartResult {
	claim := func() (storage.ClaimResult, error) {
		return e.store.Claim(storage.Claim{
			SiteID: s.ID, OrderID: in.OrderID, Amount: in.Amount, Currency: in.Currency,
			Environment: s.Environment, Now: Now(), ReuseWindow: ReuseWindow, InitGrace: s.StartGrace(),
		})
	}
	c, err := claim()
	if err == nil && c.Kind == storage.ClaimBusy {
		// Every start of this store runs in e.starts, so an INIT that no start here is working
		// on was left by a process that died during its call. Nobody has its payment_url (it is
		// stored before the customer is sent there), so it cannot be paid: the re-checker closes
		// it, and this order starts anew.
		if err = e.InterruptStart(s, c.Payment.TransactionID); err == nil {
			metricStarts.WithLabelValues("interrupted").Inc()
			c, err = claim()
		}
	}
	if err != nil {
		s.Logger.Error("claiming the order", zap.String("order_id", in.OrderID), zap.Error(err))
		return StartResult{Kind: StartStoreError}
	}
	p := c.Payment
	switch c.Kind {
	case storage.ClaimPaid:
		metricStarts.WithLabelValues("paid").Inc()
		s.Logger.Info("order already paid; sending the customer to the return page",
			zap.String("order_id", in.OrderID), zap.String("transaction_id", p.TransactionID))
		return StartResult{Kind: StartPaid, Payment: p}
	case storage.ClaimReuse:
		metricStarts.WithLabelValues("reused").Inc()
		return StartResult{Kind: StartReused, Payment: p}
	case storage.ClaimBusy:
		return StartResult{Kind: StartBusy, Payment: p, RetryAfter: 5 * time.Second}
	}

	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout+LimiterWait)
	defer cancel()
	txid := p.TransactionID
	if err := e.takeCall(ctx, s, PrioCustomer); err != nil {
		// CinetPay was not called: nothing exists there
		if errors.Is(err, errBudgetUnreadable) {
			s.Logger.Error("the payment was not started: the shared rate budget could not be read",
				zap.String("order_id", in.OrderID), zap.String("transaction_id", txid), zap.Error(err))
			p, _ = e.finishStart(s, txid, storage.StateFailed, "rate budget unreadable", nil)
			return StartResult{Kind: StartStoreError, Payment: p}
		}
		p, _ = e.finishStart(s, txid, storage.StateFailed, "local rate limit", nil)
		metricStarts.WithLabelValues("rate_limited").Inc()
		return StartResult{Kind: StartRateLimited, Payment: p, RetryAfter: 5 * time.Second}
	}
	started := time.Now()
	res, err := s.Provider.Start(ctx, &p, in)
	observeCall("payment", started, err)
	if err == nil {
		p, ok := e.finishStart(s, txid, storage.StatePending, "start", func(p *storage.Payment) {
			p.PaymentToken, p.PaymentURL = res.PaymentToken, res.PaymentURL
			p.ProviderTransactionID, p.NotifyToken = res.ProviderID, res.NotifyToken
		})
		if !ok {
			return StartResult{Kind: StartStoreError, Payment: p}
		}
		metricStarts.WithLabelValues("started").Inc()
		s.Logger.Info("payment started", zap.String("order_id", in.OrderID), zap.String("transaction_id", txid),
			zap.Int64("amount", in.Amount), zap.String("currency", in.Currency))
		return StartResult{Kind: StartNew, Payment: p}
	}
	fields := []zap.Field{zap.String("order_id", in.OrderID), zap.String("transaction_id", txid), zap.Error(err)}
	outcome, retryAfter := OutcomeOf(err)
	switch outcome {
	case OutcomeRefused:
		p, _ = e.finishStart(s, txid, storage.StateFailed, "refused at start", nil)
		metricStarts.WithLabelValues("refused").Inc()
		s.Logger.Error("CinetPay refused the payment start (check the credentials and the intent)", fields...)
		return StartResult{Kind: StartRefused, Payment: p}
	case OutcomeRateLimited:
		p, _ = e.finishStart(s, txid, storage.StateFailed, "rate limited at start", nil)
		metricStarts.WithLabelValues("rate_limited").Inc()
		s.Logger.Warn("CinetPay rate-limited the payment start", fields...)
		retry := 10 * time.Second
		if retryAfter > 0 {
			retry = min(max(retryAfter, time.Second), 5*time.Minute)
		}
		return StartResult{Kind: StartRateLimited, Payment: p, RetryAfter: retry}
	default:
		p, _ = e.finishStart(s, txid, storage.StateUnknown, "start outcome unknown", nil)
		metricStarts.WithLabelValues("unknown").Inc()
		s.Logger.Error("CinetPay gave no usable answer to the payment start; the payment will be re-checked", fields...)
		return StartResult{Kind: StartUnknown, Payment: p}
	}
}

// finishStart stores the outcome of the start call: INIT → PENDING, FAILED or UNKNOWN.
func (e *Engine) finishStart(s *Site, txid string, to storage.State, note string, set func(p *storage.Payment)) (storage.Payment, bool) {
	t := Now()
	res, err := e.store.Update(s.ID, txid, t, func(p *storage.Payment) error {
		if p.State != storage.StateInit {
			return fmt.Errorf("payment is %s, not INIT", p.State)
		}
		p.State, p.Note = to, note
		if set != nil {
			set(p)
		}
		if to.Open() {
			p.NextCheck, p.Checks = t.Add(FirstCheck), 0
		}
		return nil
	})
	if err != nil {
		s.Logger.Error("storing the start outcome", zap.String("transaction_id", txid), zap.Error(err))
		return res.Payment, false
	}
	metricStates.WithLabelValues(stateLabel(to)).Inc()
	return res.Payment, true
}
