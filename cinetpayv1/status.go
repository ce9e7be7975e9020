package cinetpayv1

import (
	"context"
	"encoding/json"
	"net/http"
	"unicode/utf8"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
)

// Verdict is what a status answer means for a payment: the module's one verdict,
// engine.Verdict.
type Verdict = engine.Verdict

const (
	// VerdictPending: 2001 INITIATED or 2002 PENDING; check again later.
	VerdictPending = engine.Pending
	// VerdictAccepted: 100 SUCCESS. The answer carries no amount or
	// currency: the payment is for what was started.
	VerdictAccepted = engine.Accepted
	// VerdictRefused: 2010 FAILED or 2005 INSUFFICIENT_BALANCE. CinetPay
	// calls both final.
	VerdictRefused = engine.Refused
	// VerdictExpired: 2003 EXPIRED, the customer did not confirm in time.
	// CinetPay documents it as not final.
	VerdictExpired = engine.Expired
	// VerdictNotFound: CinetPay does not know the id (body code 404
	// NOT_FOUND, seen with HTTP 422). What that means — never started, or
	// not yet visible — is the caller's to decide.
	VerdictNotFound = engine.NotFound
)

// Status is a usable answer of GET /v1/payment/{id}.
type Status struct {
	// Verdict is decided on Code only.
	Verdict Verdict
	// Code is the answer's code: 100, 2001, 2002, 2003, 2005, 2010 or 404.
	Code int
	// Status is the answer's status word ("SUCCESS") when it has the shape
	// of one, informational only.
	Status string
	// MerchantTransactionID is ours, as CinetPay echoed it; "" when the
	// answer did not carry it.
	MerchantTransactionID string
	// TransactionID is CinetPay's id of the payment, "" when absent.
	TransactionID string
	// User is the payer as CinetPay reports it, nil when absent. Untrusted
	// and informational.
	User *User
	// HTTPStatus is the HTTP status of the answer.
	HTTPStatus int
}

// User is the payer as CinetPay reports it in status answers and
// notifications. Every field may be empty.
type User struct {
	Name        string `json:"name"`
	Email       string `json:"email"`
	PhoneNumber string `json:"phone_number"`
}

// wireStatus is a status answer.
type wireStatus struct {
	MerchantTransactionID flexString      `json:"merchant_transaction_id"`
	TransactionID         flexString      `json:"transaction_id"`
	User                  json.RawMessage `json:"user"`
}

type wireUser struct {
	Name        flexString `json:"name"`
	Email       flexString `json:"email"`
	PhoneNumber flexString `json:"phone_number"`
}

// statusVerdicts maps the codes of a usable status answer to their verdict.
var statusVerdicts = map[int]Verdict{
	CodeSuccess:             VerdictAccepted,
	CodeFailed:              VerdictRefused,
	CodeInsufficientBalance: VerdictRefused,
	CodeExpired:             VerdictExpired,
	CodeInitiated:           VerdictPending,
	CodePending:             VerdictPending,
	CodeNotFound:            VerdictNotFound,
}

// PaymentStatus asks CinetPay for the status of the payment whose
// merchant_transaction_id is id: GET Endpoint+PathPayment+"/"+id (id
// percent-encoded as one path segment) with the bearer token.
//
// It returns a Status only for an answer whose body code (a JSON number or
// numeric string) is 100, 2001, 2002, 2003, 2005, 2010 or 404, whatever the
// HTTP status, and whose merchant_transaction_id, when present, is id;
// Status.Verdict says what it means, and 404 NOT_FOUND is VerdictNotFound.
// Everything else is an *APIError meaning "no usable answer": another code
// (200, -1, 1004, 1200, …), an answer for another id, an answer without a
// usable code (HTTP 422 without code 404, 5xx, HTML, garbage, empty), HTTP
// 429 (OutcomeRateLimited), a token still refused after a new login, a
// failed login (Op "login"), a timeout or a network error. An id that is
// empty, longer than 255 bytes, not UTF-8, "." or "..", or has control
// characters is refused without calling CinetPay.
func (c *Client) PaymentStatus(ctx context.Context, id string) (*Status, error) {
	const op = "status"
	if id == "" || len(id) > 255 || id == "." || id == ".." || !utf8.ValidString(id) || hasControl(id) {
		return nil, &APIError{Op: op, Outcome: OutcomeRefused, detail: "invalid merchant_transaction_id"}
	}
	a, e := c.authCall(ctx, op, http.MethodGet, PathPayment+"/"+escapeSegment(id), nil)
	if e != nil {
		return nil, e
	}
	if a.tokenRefused() {
		e := c.tokenError(op, a)
		e.Outcome = OutcomeUnknown
		return nil, e
	}
	if !a.object || !a.hasCode {
		return nil, c.unreadable(op, a)
	}
	verdict, ok := statusVerdicts[a.code]
	if !ok {
		o := OutcomeUnknown
		if a.code == http.StatusTooManyRequests || a.httpStatus == http.StatusTooManyRequests {
			o = OutcomeRateLimited
		}
		return nil, c.envelopeError(op, a, o, "no usable status")
	}
	var w wireStatus
	if err := json.Unmarshal(a.body, &w); err != nil {
		a.decodeErr = err
		return nil, c.unreadable(op, a)
	}
	mtid := trim(w.MerchantTransactionID)
	if mtid != "" && mtid != id {
		return nil, c.envelopeError(op, a, OutcomeUnknown, "answer is for another merchant_transaction_id")
	}
	return &Status{
		Verdict:               verdict,
		Code:                  a.code,
		Status:                plainWord(string(a.env.Status)),
		MerchantTransactionID: mtid,
		TransactionID:         trim(w.TransactionID),
		User:                  decodeUser(w.User),
		HTTPStatus:            a.httpStatus,
	}, nil
}

// decodeUser decodes a user object; nil when absent, null, not an object or
// unreadable. Values are cleaned for logs.
func decodeUser(raw json.RawMessage) *User {
	if !isObject(raw) {
		return nil
	}
	var w wireUser
	if json.Unmarshal(raw, &w) != nil {
		return nil
	}
	return &User{
		Name:        cleanText(string(w.Name), 255),
		Email:       cleanText(string(w.Email), 255),
		PhoneNumber: cleanText(string(w.PhoneNumber), 32),
	}
}
