package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Provider is one CinetPay API as the engine uses it: Checkout v2 (package cinetpay) and the
// current API (package cinetpayv1) are two implementations. A provider is made for one site; it
// knows its credentials and the site's notify and return addresses, and says nothing of HTTP to
// the shop.
type Provider interface {
	// Validate checks an intent against the API's own rules (required customer fields, amount
	// range, currency) before anything is stored; its error names the shop's header at fault.
	Validate(in *Intent) error
	// Start starts, at CinetPay, the payment p (stored INIT, with its transaction id) for the
	// intent. An error is classified with OutcomeOf: a Classified error says refused or rate
	// limited; anything else means the outcome is unknown (the transaction may exist).
	Start(ctx context.Context, p *storage.Payment, in *Intent) (*Started, error)
	// Status asks CinetPay what became of p and classifies the answer. An error means no usable
	// answer (network, timeout, 5xx, 429, an unreadable or unexpected answer): nothing changes.
	Status(ctx context.Context, p *storage.Payment) (*Answer, error)

	// ReadNotice reads a notification (its headers and a body of at most MaxNoticeBody bytes)
	// and names the payment it is about. A body that is no notification gives an error
	// wrapping ErrMalformedNotice. Nothing in it is trusted but the transaction id, and that
	// only once verified.
	ReadNotice(header http.Header, body []byte) (*Notice, error)
	// NoticeHeaders names every request header ReadNotice reads (Content-Type included): two
	// notifications with the same values of these and the same body are the same notification
	// (SettledNotices).
	NoticeHeaders() []string
	// Verify checks what needs no stored payment (Checkout v2: the x-token, the site id): nil,
	// or an error wrapping ErrForged or ErrWrongSite whose text says what to fix.
	Verify(n *Notice) error
	// VerifyFor checks the notice against the stored payment it names (the current API: the
	// payment's notify_token, compared in constant time): nil, or an error wrapping ErrForged,
	// or ErrUnverifiable when the payment holds nothing to check a notice with.
	VerifyFor(n *Notice, p *storage.Payment) error
	// PaymentURLAllowed reports whether CinetPay's payment_url may be shown to the customer:
	// https on one of CinetPay's payment hosts, or the endpoint's own host for a local one.
	PaymentURLAllowed(raw string) bool
}

// IsLoopbackHost reports whether host (no port) is localhost, a name under .localhost, or a
// loopback IP: a local endpoint, such as the sandbox, whose own payment pages are allowed.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// MaxNoticeBody bounds the body of a notification.
const MaxNoticeBody = 64 << 10

// Notice is a notification read by a provider.
type Notice struct {
	// TransactionID is the payment's transaction id (ours, not CinetPay's).
	TransactionID string
	// Data is the provider's own reading of the notification, for Verify and VerifyFor.
	Data any
}

// Errors of notifications.
var (
	ErrMalformedNotice = errors.New("malformed notification")
	ErrForged          = errors.New("notification not authentic")
	ErrWrongSite       = errors.New("notification for another site")
	// ErrUnverifiable (which wraps ErrForged): the payment has nothing to authenticate a notice
	// with (the current API: its start got no usable answer, so its notify_token was never
	// known). Not authentic, but not a sign of forgery either.
	ErrUnverifiable = fmt.Errorf("%w: the payment's start got no usable answer, so it has no notify_token to check it with", ErrForged)
)

// Intent is a payment the shop asked for, already validated.
type Intent struct {
	OrderID     string
	Amount      int64
	Currency    string
	Description string
	Channels    string
	Lang        string
	// Metadata is the shop's metadata text, as the shop sent it.
	Metadata string
	// Customer holds the customer fields by their Checkout v2 names (customer_name, …), plus
	// customer_first_name and customer_last_name.
	Customer map[string]string
	// PaymentMethod is the operator the shop chose (current API: "OM_CI"), "" for all.
	PaymentMethod string
}

// Started is what CinetPay answered to a successful start.
type Started struct {
	PaymentURL   string
	PaymentToken string
	// ProviderID is CinetPay's id of the transaction, when the API gives one.
	ProviderID string
	// NotifyToken is the secret that authenticates the payment's notifications, when the API
	// has one; stored with the payment, never shown.
	NotifyToken string
}

// Outcome says what a failed CinetPay call may have done. It is the one classification of the
// module: both API clients give it to their errors (cinetpay.Outcome and cinetpayv1.Outcome
// are this type), and the engine reads it from a failed start.
type Outcome int

const (
	// OutcomeUnknown: no usable answer; the call may have taken effect (a start is re-checked).
	OutcomeUnknown Outcome = iota
	// OutcomeRefused: a definite refusal; nothing exists at CinetPay.
	OutcomeRefused
	// OutcomeRateLimited: CinetPay asked to slow down; nothing exists at CinetPay.
	OutcomeRateLimited
)

// String returns "unknown", "refused" or "rate_limited".
func (o Outcome) String() string {
	switch o {
	case OutcomeUnknown:
		return "unknown"
	case OutcomeRefused:
		return "refused"
	case OutcomeRateLimited:
		return "rate_limited"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Classified is an error that knows what its call may have done, and CinetPay's Retry-After:
// the errors of the API clients, and StartError.
type Classified interface {
	error
	CallOutcome() (Outcome, time.Duration)
}

// StartError is a failed start with its outcome, for a Provider whose errors are not
// Classified themselves.
type StartError struct {
	Outcome Outcome
	// RetryAfter is CinetPay's Retry-After, when rate limited.
	RetryAfter time.Duration
	Err        error
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// CallOutcome implements Classified.
func (e *StartError) CallOutcome() (Outcome, time.Duration) { return e.Outcome, e.RetryAfter }

// OutcomeOf classifies an error: the outcome of the first Classified error in its chain, else
// unknown (the call may have taken effect).
func OutcomeOf(err error) (Outcome, time.Duration) {
	var c Classified
	if errors.As(err, &c) {
		return c.CallOutcome()
	}
	return OutcomeUnknown, 0
}

// Verdict is what a usable status answer says of a payment.
type Verdict int

const (
	// Pending: not decided yet (waiting for the customer, an unknown status, …).
	Pending Verdict = iota
	// Accepted: paid. The engine still compares the confirmed amount and currency, if the
	// answer confirms them, with those asked.
	Accepted
	// Refused: not paid; a late success remains possible.
	Refused
	// Expired: CinetPay gave up waiting for the customer; a late success remains possible.
	Expired
	// NotFound: CinetPay does not know the transaction.
	NotFound
)

// String returns "pending", "accepted", "refused", "expired" or "not_found".
func (v Verdict) String() string {
	switch v {
	case Accepted:
		return "accepted"
	case Refused:
		return "refused"
	case Expired:
		return "expired"
	case NotFound:
		return "not_found"
	case Pending:
		return "pending"
	}
	return "Verdict(" + strconv.Itoa(int(v)) + ")"
}

// Answer is a usable status answer.
type Answer struct {
	Verdict Verdict
	// AmountConfirmed says that the answer confirms an amount and a currency (Confirmed.Amount,
	// Confirmed.Currency), which must then equal those asked for the payment to be ACCEPTED.
	// An API whose status answer has no amount leaves it false: the result then carries the
	// amount and currency that were started.
	AmountConfirmed bool
	// Confirmed describes the payment as CinetPay did. Amount is canonical: the integer
	// "5000" for CinetPay's "5000.00" (see cinetpay.PaymentData.CanonicalAmount).
	Confirmed storage.Confirmation
	// Summary describes the answer for operators ("code 00, status ACCEPTED"); no secret.
	Summary string
}
