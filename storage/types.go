package storage

import (
	"errors"
	"strconv"
	"time"
)

// Payment is one CinetPay transaction started by the module. It holds no customer data: the
// customer fields go to CinetPay and are not kept.
type Payment struct {
	SiteID        string `json:"site_id"`
	TransactionID string `json:"transaction_id"`
	OrderID       string `json:"order_id"`
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency"`
	// Environment is "live" or "sandbox", from the endpoint the payment was started on.
	Environment string `json:"environment"`

	State        State  `json:"state"`
	PaymentToken string `json:"payment_token,omitempty"`
	PaymentURL   string `json:"payment_url,omitempty"`
	// ProviderTransactionID is CinetPay's own id of the transaction, when its API gives one
	// (the current API's transaction_id).
	ProviderTransactionID string `json:"cinetpay_transaction_id,omitempty"`
	// NotifyToken is the per-payment secret with which the current API authenticates its
	// notifications. It is a secret: never logged, and removed by Redacted before a payment is
	// shown to anyone.
	NotifyToken string `json:"notify_token,omitempty"`

	// Confirmed holds what /v2/payment/check last confirmed, if anything.
	Confirmed *Confirmation `json:"confirmed,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// NextCheck is when the module re-checks the payment at CinetPay (zero: no re-check scheduled).
	NextCheck time.Time `json:"next_check,omitzero"`
	// Checks counts the re-checks made in the current schedule (the backoff step).
	Checks int `json:"checks,omitempty"`
	// LastCheck and LastCheckResult describe the last /check call, for operators.
	LastCheck       time.Time `json:"last_check,omitzero"`
	LastCheckResult string    `json:"last_check_result,omitempty"`
	// LastAnswer is when a /check last got a usable answer; it starts the quiet period in which
	// another check is not made at once but scheduled (a failed check starts none).
	LastAnswer time.Time `json:"last_answer,omitzero"`
	// NoAnswerSince is when the current run of checks without a usable answer began (zero after a
	// usable answer); such checks are retried within a minute while the run is young enough.
	NoAnswerSince time.Time `json:"no_answer_since,omitzero"`

	// History lists the state changes, oldest first.
	History []Transition `json:"history,omitempty"`

	// Note is a reason for the pending state change, recorded in its Transition; not stored.
	Note string `json:"-"`
}

// Confirmation is the payment as CinetPay's /v2/payment/check described it.
type Confirmation struct {
	// Amount is the confirmed amount in canonical form: the integer that was compared with the
	// amount asked ("5000", never CinetPay's "5000.00"); see cinetpay.PaymentData.CanonicalAmount.
	Amount string `json:"amount"`
	// RawAmount is CinetPay's text of the amount, kept for operators when it differs from Amount.
	RawAmount     string `json:"raw_amount,omitempty"`
	Currency      string `json:"currency"`
	Status        string `json:"status"`
	PaymentMethod string `json:"payment_method,omitempty"`
	OperatorID    string `json:"operator_id,omitempty"`
	PaymentDate   string `json:"payment_date,omitempty"`
}

// Transition is one state change of a payment.
type Transition struct {
	From State     `json:"from"`
	To   State     `json:"to"`
	At   time.Time `json:"at"`
	// Reason says what caused the change ("check", "start", "expired", ...).
	Reason string `json:"reason,omitempty"`
	// EventID names the delivery the change caused, if any.
	EventID string `json:"event_id,omitempty"`
}

// Result is what a payment tells the shop: the amount and currency CinetPay confirmed (those
// asked, while unconfirmed), and the payment's details when known. Amount is canonical: the
// integer "5000", never "5000.00".
type Result struct {
	Amount        string `json:"amount"`
	Currency      string `json:"currency"`
	PaymentMethod string `json:"payment_method,omitempty"`
	OperatorID    string `json:"operator_id,omitempty"`
	PaymentDate   string `json:"payment_date,omitempty"`
}

// Result is the payment's result as the shop sees it (deliveries and return pages).
func (p *Payment) Result() Result {
	r := Result{Amount: strconv.FormatInt(p.Amount, 10), Currency: p.Currency}
	if c := p.Confirmed; c != nil {
		if c.Amount != "" {
			r.Amount = c.Amount
		}
		if c.Currency != "" {
			r.Currency = c.Currency
		}
		r.PaymentMethod, r.OperatorID, r.PaymentDate = c.PaymentMethod, c.OperatorID, c.PaymentDate
	}
	return r
}

// Redacted is the payment without its secrets, as operators may see it.
func (p Payment) Redacted() Payment {
	p.NotifyToken = ""
	return p
}

// LastChange is the time of the last state change (the creation time if none).
func (p *Payment) LastChange() time.Time {
	if n := len(p.History); n > 0 {
		return p.History[n-1].At
	}
	return p.CreatedAt
}

// DeliveryState is where a delivery stands.
type DeliveryState string

// The delivery states.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliveryDelivered DeliveryState = "delivered"
	DeliveryFailed    DeliveryState = "failed" // given up; kept and replayable
)

// Delivery is one result to deliver to the shop: a snapshot of the payment at the state change
// that caused it, under a stable event id.
type Delivery struct {
	ID            string `json:"id"`
	SiteID        string `json:"site_id"`
	TransactionID string `json:"transaction_id"`
	OrderID       string `json:"order_id"`
	Status        State  `json:"status"`
	Result
	Environment string `json:"environment"`

	State     DeliveryState `json:"state"`
	CreatedAt time.Time     `json:"created_at"`
	// Since is when the current round of attempts began: the creation, or the last replay.
	Since    time.Time `json:"since"`
	Attempts int       `json:"attempts"`
	// RoundAttempts counts the attempts since Since: the backoff starts again after a replay.
	RoundAttempts  int       `json:"round_attempts"`
	NextAttempt    time.Time `json:"next_attempt,omitzero"`
	LastAttempt    time.Time `json:"last_attempt,omitzero"`
	LastHTTPStatus int       `json:"last_http_status,omitempty"`
	LastError      string    `json:"last_error,omitempty"`
	DeliveredAt    time.Time `json:"delivered_at,omitzero"`
}

// Key names a record of one site.
type Key struct {
	SiteID string `json:"site_id"`
	ID     string `json:"id"`
}

// Errors of the store.
var (
	ErrNotFound       = errors.New("not found")
	ErrBadTransition  = errors.New("state change not allowed")
	ErrStaleAttempt   = errors.New("delivery attempt is stale")
	ErrInvalidKeyPart = errors.New("invalid key part")
)
