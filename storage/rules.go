package storage

import (
	"errors"
	"fmt"
	"time"
)

// The rules every store applies the same way, whatever it keeps its records in: what Update
// may change, and what an attempt's outcome and a replay do to a delivery.

// claimRule is Claim's rule on what a store holds for the order: the id its paid marker names
// (paidBy, "" if none) with that payment (paid, nil if purged), else its latest payment (head,
// nil if none). done false: a new payment is to be stored (newClaimPayment).
func claimRule(c Claim, paidBy string, paid, head *Payment) (res ClaimResult, done bool) {
	if paidBy != "" {
		if paid == nil {
			// purged long after: the marker alone says the order is paid
			return ClaimResult{Kind: ClaimPaid, Payment: Payment{SiteID: c.SiteID, TransactionID: paidBy,
				OrderID: c.OrderID, State: StateAccepted}}, true
		}
		return ClaimResult{Kind: ClaimPaid, Payment: *paid}, true
	}
	if head == nil {
		return ClaimResult{}, false
	}
	age := c.Now.Sub(head.CreatedAt)
	switch {
	case head.State == StateInit && age < c.InitGrace:
		return ClaimResult{Kind: ClaimBusy, Payment: *head}, true
	case head.State == StatePending && age < c.ReuseWindow && head.PaymentURL != "" &&
		head.Amount == c.Amount && head.Currency == c.Currency:
		return ClaimResult{Kind: ClaimReuse, Payment: *head}, true
	}
	return ClaimResult{}, false
}

// newClaimPayment is the INIT payment a claim stores, under transaction id txid.
func newClaimPayment(c Claim, txid string) Payment {
	return Payment{
		SiteID:        c.SiteID,
		TransactionID: txid,
		OrderID:       c.OrderID,
		Amount:        c.Amount,
		Currency:      c.Currency,
		Environment:   c.Environment,
		State:         StateInit,
		CreatedAt:     c.Now,
		UpdatedAt:     c.Now,
		// if the start never finishes (a crash), the re-checker takes the payment over
		NextCheck: c.Now.Add(c.InitGrace),
	}
}

// applyUpdate is Update's rule on a payment p as stored: a final payment is returned unchanged
// (write false) without calling fn; else fn changes a copy, identity fields and history are
// kept, a state change must follow the state machine (ErrBadTransition), a change to ACCEPTED
// of an order another payment paid becomes DUPLICATE, and a change into a delivering state
// makes its delivery (res.Delivery, due at now). markPaid records txid as the payer of order if
// no payment is, in the caller's transaction, and returns the payer. before is p.
func applyUpdate(p Payment, now time.Time, fn func(p *Payment) error,
	markPaid func(order, txid string) (string, error)) (res UpdateResult, before Payment, write bool, err error) {
	res.From = p.State
	if p.State.Final() {
		res.Payment = p
		return res, p, false, nil
	}
	before = p
	// fn gets its own history slice: an append of it must not reach before's
	p.History = append([]Transition(nil), before.History...)
	if err := fn(&p); err != nil {
		return UpdateResult{}, before, false, err
	}
	// identity fields never change; the start's secrets are set once
	p.SiteID, p.TransactionID, p.OrderID = before.SiteID, before.TransactionID, before.OrderID
	if before.NotifyToken != "" {
		p.NotifyToken = before.NotifyToken
	}
	p.Amount, p.Currency, p.CreatedAt = before.Amount, before.Currency, before.CreatedAt
	p.Environment, p.History = before.Environment, append([]Transition(nil), before.History...)
	p.UpdatedAt = now

	if p.State != before.State {
		if !CanTransition(before.State, p.State) {
			return UpdateResult{}, before, false, fmt.Errorf("%w: %s to %s", ErrBadTransition, before.State, p.State)
		}
		if p.State == StateAccepted {
			paidBy, err := markPaid(p.OrderID, p.TransactionID)
			if err != nil {
				return UpdateResult{}, before, false, err
			}
			if paidBy != p.TransactionID {
				p.State = StateDuplicate
			}
		}
		t := Transition{From: before.State, To: p.State, At: now, Reason: p.Note}
		if p.State.Delivers() {
			d := newDelivery(&p, now)
			t.EventID = d.ID
			res.Delivery = &d
		}
		p.History = append(p.History, t)
		res.Changed = true
	}
	if p.State.Final() || p.State == StateFailed {
		p.NextCheck = time.Time{}
	}
	p.Note = ""
	res.Payment = p
	return res, before, true, nil
}

// newDelivery snapshots a payment's result at a state change.
func newDelivery(p *Payment, now time.Time) Delivery {
	return Delivery{
		ID:            randomHex(16),
		SiteID:        p.SiteID,
		TransactionID: p.TransactionID,
		OrderID:       p.OrderID,
		Status:        p.State,
		Result:        p.Result(),
		Environment:   p.Environment,
		State:         DeliveryPending,
		CreatedAt:     now,
		Since:         now,
		NextAttempt:   now,
	}
}

// leased is the delivery as BeginAttempt returns it: counting attempt number attempt, begun at
// start and leased until until.
func leased(d Delivery, attempt int, start, until time.Time) Delivery {
	d.Attempts = attempt
	d.RoundAttempts++
	d.LastAttempt, d.NextAttempt = start, until
	return d
}

// finishAttempt records on d the outcome r of attempt number attempt, begun at start.
func finishAttempt(d *Delivery, attempt int, start time.Time, r AttemptResult) error {
	if d.State != DeliveryPending {
		return ErrStaleAttempt
	}
	// replayed while the attempt was in flight: the attempt belongs to the round before, and
	// the replay asked for one begun after it, whatever this one gave: due at once
	replayed := d.Since.After(start)
	d.Attempts = attempt
	if !replayed {
		d.RoundAttempts++
	}
	d.LastAttempt = start
	d.LastHTTPStatus, d.LastError = r.HTTPStatus, r.Error
	if r.Delivered {
		d.DeliveredAt, d.LastError = r.At, ""
	}
	switch {
	case replayed:
		d.NextAttempt = r.At
	case r.Delivered:
		d.State, d.NextAttempt = DeliveryDelivered, time.Time{}
	case r.GiveUp:
		d.State, d.NextAttempt = DeliveryFailed, time.Time{}
	default:
		d.NextAttempt = r.NextAttempt
	}
	return nil
}

// replay puts d back in the queue at now, for a new round of attempts.
func replay(d *Delivery, now time.Time) {
	d.State, d.Since, d.NextAttempt, d.RoundAttempts = DeliveryPending, now, now, 0
}

// purgeEach purges each candidate with one (which decides again, under its own lock, and
// answers errKeep for one to keep), and counts those removed.
func purgeEach(victims []Key, one func(Key) error) (int, error) {
	n := 0
	for _, k := range victims {
		err := one(k)
		if errors.Is(err, errKeep) {
			continue
		}
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
