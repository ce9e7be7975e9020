package cinetpayv1

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
	// timeout, a network error, a 5xx, an unreadable answer, -1
	// OPERATION_ERROR, 1200 TRANSACTION_EXIST (an earlier try reached
	// CinetPay) or an unexpected code. A payment started with this outcome
	// may exist at CinetPay and must be checked later.
	OutcomeUnknown = engine.OutcomeUnknown
	// OutcomeRefused is a definite refusal: nothing was created (1004
	// INVALID_PARAMS, 1005, 2011, a token still refused after a new login,
	// another definite error code, a request that failed validation, or a
	// failed login, after which the call itself was never sent).
	OutcomeRefused = engine.OutcomeRefused
	// OutcomeRateLimited is HTTP 429 without a usable code in the body;
	// nothing was created. APIError.RetryAfter holds CinetPay's Retry-After,
	// if any.
	OutcomeRateLimited = engine.OutcomeRateLimited
)

// Sentinels matched by errors.Is against an *APIError with the same code,
// whatever its Op: a login refused for these reasons is the usual case.
var (
	// ErrInvalidCredentials matches code 1005 INVALID_CREDENTIALS: the
	// api_key or api_password is wrong (or belongs to another environment).
	ErrInvalidCredentials = errors.New("cinetpay v1: invalid credentials (1005)")
	// ErrNotAllowed matches code 2011 NOT_ALLOWED: this server's IP address
	// is not in the account's IP whitelist.
	ErrNotAllowed = errors.New("cinetpay v1: IP address not whitelisted (2011)")
)

// APIError is the error type of every Client call. Its Error text is short
// and never contains the api_key, the api_password, a bearer token, a
// notify_token, the request or the raw response body, so it may be logged.
type APIError struct {
	// Op is the call that failed: "login", "init" or "status". A call that
	// needed a token and could not get one fails with Op "login".
	Op string
	// HTTPStatus is the status of CinetPay's answer, 0 when there was none.
	HTTPStatus int
	// Code is the answer's code (for init, the code in details when the
	// envelope says OK), 0 when it had none.
	Code int
	// Status is the answer's status word ("INVALID_PARAMS") when it has the
	// shape of one (upper-case letters and '_'), informational only.
	Status string
	// Description is CinetPay's description or message, sanitised: trimmed,
	// no control characters, at most 120 characters, and dropped whole if it
	// echoes a secret or holds anything that looks like a key or token.
	// Informational only.
	Description string
	// Outcome says whether the call may have taken effect.
	Outcome Outcome
	// RetryAfter is the delay of a Retry-After header when CinetPay sent one
	// (seconds or HTTP date, capped at 24 hours), else 0.
	RetryAfter time.Duration
	// Err is the underlying transport, decoding or validation error, if any
	// (for a transport error, the cause without the request URL).
	Err error

	// detail is a short, fixed explanation ("unreadable answer").
	detail string
	// netText is Err's text, computed and scrubbed when the error was built.
	netText string
	// timeout is the Client's per-call timeout when the call hit it.
	timeout time.Duration
	// timedOut is set when the call's context reached its deadline.
	timedOut bool
}

// Error returns a short description such as
// "cinetpay v1 login: code 1005 INVALID_CREDENTIALS "Bad credentials" (HTTP 401): check api_key and api_password",
// "cinetpay v1 init: timeout after 15s" or
// "cinetpay v1 status: HTTP 502, unreadable answer".
func (e *APIError) Error() string {
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
	case e.netText != "":
		parts = append(parts, "network error: "+e.netText)
	case e.Err != nil && e.detail == "":
		parts = append(parts, "network error: "+transportText(e.Err))
	}
	if e.Code != 0 {
		s := "code " + strconv.Itoa(e.Code)
		if w := plainWord(e.Status); w != "" {
			s += " " + w
		} else if n := CodeName(e.Code); n != "" {
			s += " " + n
		}
		if d := cleanText(e.Description, maxDescription); d != "" {
			s += " " + strconv.Quote(d)
		}
		if e.HTTPStatus != 0 && e.HTTPStatus != 200 {
			s += " (HTTP " + strconv.Itoa(e.HTTPStatus) + ")"
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
	s := "cinetpay v1 " + op + ": " + strings.Join(parts, ", ")
	if h := hint(e.Code); h != "" {
		s += ": " + h
	}
	return s
}

// hint says what to fix for the codes an operator can fix.
func hint(code int) string {
	switch code {
	case CodeInvalidCredentials:
		return "check api_key and api_password (one pair per country account; sk_test_ keys belong to " + SandboxHost + ")"
	case CodeNotAllowed:
		return "add this server's public IP address to the IP whitelist in CinetPay's dashboard (API & security); a dual-stack host may be reaching CinetPay over IPv6 (use IPv4 only)"
	}
	return ""
}

// Unwrap returns the underlying error, if any.
func (e *APIError) Unwrap() error { return e.Err }

// CallOutcome implements engine.Classified.
func (e *APIError) CallOutcome() (engine.Outcome, time.Duration) { return e.Outcome, e.RetryAfter }

// Is makes errors.Is(err, ErrInvalidCredentials) and errors.Is(err,
// ErrNotAllowed) match an *APIError with code 1005 or 2011.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrInvalidCredentials:
		return e.Code == CodeInvalidCredentials
	case ErrNotAllowed:
		return e.Code == CodeNotAllowed
	}
	return false
}

// Timeout reports whether the call hit its deadline (the Client's Timeout,
// the caller's context deadline, or a transport timeout).
func (e *APIError) Timeout() bool {
	if e.timedOut {
		return true
	}
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// OutcomeOf returns the Outcome of err: the Outcome of the *APIError it
// wraps, OutcomeUnknown for any other error (and for nil; callers test
// err != nil first).
func OutcomeOf(err error) Outcome {
	var e *APIError
	if errors.As(err, &e) {
		return e.Outcome
	}
	return OutcomeUnknown
}

// CodeOf returns the code of the *APIError err wraps, 0 if none.
func CodeOf(err error) int {
	var e *APIError
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// IsInvalidCredentials reports whether err is CinetPay's 1005
// INVALID_CREDENTIALS: fix api_key / api_password.
func IsInvalidCredentials(err error) bool { return errors.Is(err, ErrInvalidCredentials) }

// IsNotAllowed reports whether err is CinetPay's 2011 NOT_ALLOWED: add the
// server's IP address to the account's whitelist, or reach CinetPay over
// IPv4 only.
func IsNotAllowed(err error) bool { return errors.Is(err, ErrNotAllowed) }

// transportText describes a transport error without the request URL, cut to
// 200 bytes.
func transportText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	return cleanText(err.Error(), 200)
}
