package cinetpay

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
)

// Outcome says what a failed call may have done at CinetPay: the module's one classification,
// engine.Outcome.
type Outcome = engine.Outcome

// The outcomes of a failed call, as this API gives them.
const (
	// OutcomeUnknown means the call may or may not have taken effect: a
	// timeout, a network error, a 5xx, an unreadable answer or an unknown
	// code. A payment started with this outcome may exist at CinetPay and
	// must be checked later.
	OutcomeUnknown = engine.OutcomeUnknown
	// OutcomeRefused is a definite refusal: nothing was created (codes 608,
	// 609, 613, 624, 403, 1010, or a request that was never sent).
	OutcomeRefused = engine.OutcomeRefused
	// OutcomeRateLimited is CinetPay's 429 TOO_MANY_REQUEST (body code "429",
	// or HTTP 429 with no readable body); nothing was created. Error.RetryAfter
	// holds CinetPay's Retry-After, if any.
	OutcomeRateLimited = engine.OutcomeRateLimited
)

// Error is the only error type that Client.InitPayment and
// Client.CheckPayment return. Its Error method is short and never contains
// the API key, the request body or the raw response body, so it may be
// logged or shown to a customer.
type Error struct {
	// Op is the call that failed: "payment" or "check".
	Op string
	// HTTPStatus is the status of CinetPay's answer, 0 when there was none.
	// It is informational: CinetPay's HTTP statuses are not reliable.
	HTTPStatus int
	// Code is the body's code ("609"), "" if the answer had none.
	Code string
	// Message is CinetPay's message ("AUTH_NOT_FOUND"), informational only.
	Message string
	// Description is CinetPay's description, informational only.
	Description string
	// APIResponseID is CinetPay's api_response_id, useful when talking to
	// CinetPay's support.
	APIResponseID string
	// Outcome says whether the call may have taken effect.
	Outcome Outcome
	// RetryAfter is the delay of a Retry-After header when CinetPay sent one
	// (seconds or HTTP date, capped at 24 hours), else 0.
	RetryAfter time.Duration
	// Err is the underlying transport or decoding error, if any.
	Err error

	// detail is a short, fixed explanation ("unreadable answer").
	detail string
	// timeout is the Client's per-call timeout when the call hit it.
	timeout time.Duration
	// timedOut is set when the call's context reached its deadline.
	timedOut bool
}

// Error returns a short description such as
// "cinetpay payment: code 609 AUTH_NOT_FOUND",
// "cinetpay check: timeout after 15s" or
// "cinetpay check: HTTP 502, unreadable answer".
func (e *Error) Error() string {
	op := e.Op
	if op == "" {
		op = "call"
	}
	var parts []string
	switch {
	case e.Timeout():
		if e.timeout > 0 {
			parts = append(parts, "timeout after "+e.timeout.String())
		} else {
			parts = append(parts, "timeout")
		}
	case errors.Is(e.Err, context.Canceled):
		parts = append(parts, "canceled")
	case e.Err != nil && e.detail == "":
		parts = append(parts, "network error: "+transportText(e.Err))
	}
	if e.Code != "" {
		s := "code " + printableCode(e.Code)
		if m := e.printableMessage(); m != "" {
			s += " " + m
		}
		parts = append(parts, s)
	} else if e.HTTPStatus != 0 {
		parts = append(parts, "HTTP "+strconv.Itoa(e.HTTPStatus))
	}
	if e.detail != "" {
		parts = append(parts, e.detail)
	}
	if e.RetryAfter > 0 {
		parts = append(parts, "retry after "+e.RetryAfter.String())
	}
	if len(parts) == 0 {
		parts = append(parts, "failed")
	}
	return "cinetpay " + op + ": " + strings.Join(parts, ", ")
}

// Unwrap returns the underlying transport or decoding error, if any.
func (e *Error) Unwrap() error { return e.Err }

// CallOutcome implements engine.Classified.
func (e *Error) CallOutcome() (engine.Outcome, time.Duration) { return e.Outcome, e.RetryAfter }

// Timeout reports whether the call hit its deadline (the Client's Timeout,
// the caller's context deadline, or a transport timeout).
func (e *Error) Timeout() bool {
	if e.timedOut {
		return true
	}
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// OutcomeOf returns the Outcome of err: the Outcome of the *Error it wraps,
// OutcomeUnknown for any other non-nil error. For a nil error it returns
// OutcomeUnknown too; callers test err != nil first.
func OutcomeOf(err error) Outcome {
	var e *Error
	if errors.As(err, &e) {
		return e.Outcome
	}
	return OutcomeUnknown
}

// printableMessage returns CinetPay's message when it is a short plain token
// (letters, digits, '_', '-', spaces), else the documented message of the
// code, so that nothing unexpected from the answer reaches Error().
func (e *Error) printableMessage() string {
	if isPlainToken(e.Message, 64, true) {
		return e.Message
	}
	return CodeMessage(e.Code)
}

func printableCode(code string) string {
	if isPlainToken(code, 16, false) {
		return code
	}
	return "(invalid)"
}

// isPlainToken reports whether s is 1..max bytes of ASCII letters, digits,
// '_', '-' (and spaces when spaces is true).
func isPlainToken(s string, max int, spaces bool) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		case c == ' ' && spaces:
		default:
			return false
		}
	}
	return true
}

// transportText describes a transport error without the request URL.
func transportText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	s := err.Error()
	const max = 200
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}
