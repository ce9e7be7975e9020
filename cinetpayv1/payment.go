package cinetpayv1

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of a PaymentRequest, as CinetPay's SDKs check them.
const (
	// MinAmount and MaxAmount bound PaymentRequest.Amount.
	MinAmount = 100
	MaxAmount = 2_500_000
	// MaxMerchantTransactionID is the longest merchant_transaction_id, in
	// characters.
	MaxMerchantTransactionID = 30
	// MaxURL is the longest success_url, failed_url or notify_url, in
	// characters.
	MaxURL = 120
)

// PaymentRequest holds the fields POSTed to /v1/payment. Validate checks
// them; InitPayment calls it before anything is sent.
type PaymentRequest struct {
	// Currency is one of XOF, XAF, GNF, CDF, USD, and must be the account
	// country's currency (CinetPay refuses another).
	Currency string `json:"currency"`
	// PaymentMethod optionally restricts the payment page to one method,
	// an operator code with the account's country suffix ("OM_CI",
	// "WAVE_SN"); all the country's methods are offered when empty.
	PaymentMethod string `json:"payment_method,omitempty"`
	// MerchantTransactionID is our id of the payment, 1 to 30 characters,
	// unique per account: CinetPay answers 1200 TRANSACTION_EXIST to a
	// reused one.
	MerchantTransactionID string `json:"merchant_transaction_id"`
	// Amount is an integer amount in Currency, 100 to 2,500,000.
	Amount int64 `json:"amount"`
	// Lang is the payment page's language, "fr" or "en".
	Lang string `json:"lang"`
	// Designation is shown to the customer, 1 to 255 characters.
	Designation string `json:"designation"`
	// ClientEmail is the customer's e-mail address.
	ClientEmail string `json:"client_email"`
	// ClientFirstName is the customer's first name, 2 to 255 characters.
	ClientFirstName string `json:"client_first_name"`
	// ClientLastName is the customer's last name, 2 to 255 characters.
	ClientLastName string `json:"client_last_name"`
	// ClientPhoneNumber is optional, in E.164 form ("+2250707000000"); it
	// should start with the account country's calling code, which this
	// package does not know.
	ClientPhoneNumber string `json:"client_phone_number,omitempty"`
	// SuccessURL and FailedURL are where the customer's browser is sent
	// back; NotifyURL receives CinetPay's notification. Each is http(s) and
	// at most 120 characters.
	SuccessURL string `json:"success_url"`
	FailedURL  string `json:"failed_url"`
	NotifyURL  string `json:"notify_url"`
	// Channel is optional: PUSH, OTP or QRCODE. CinetPay accepts a request
	// without it.
	Channel string `json:"channel,omitempty"`
}

// ValidationError is a PaymentRequest field that CinetPay would refuse. It
// names the field, never its value.
type ValidationError struct {
	// Field is the JSON name of the field ("client_email").
	Field string
	// Reason is a short, fixed explanation ("must be 2 to 255 characters").
	Reason string
}

// Error returns "cinetpay v1: invalid <field>: <reason>".
func (e *ValidationError) Error() string {
	return "cinetpay v1: invalid " + e.Field + ": " + e.Reason
}

// Validate checks every limit CinetPay's SDKs check before sending, in the
// order of the fields on the wire, and returns the first failure as a
// *ValidationError. Every text field must be valid UTF-8 without control
// characters. Lengths are counted in characters.
func (r *PaymentRequest) Validate() error {
	if r == nil {
		return &ValidationError{Field: "request", Reason: "missing"}
	}
	bad := func(field, reason string) error { return &ValidationError{Field: field, Reason: reason} }
	text := func(field, v string, lo, hi int) error {
		if !utf8.ValidString(v) || hasControl(v) {
			return bad(field, "must be valid UTF-8 without control characters")
		}
		if n := utf8.RuneCountInString(v); n < lo || n > hi {
			return bad(field, "must be "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi)+" characters")
		}
		if strings.TrimSpace(v) == "" {
			return bad(field, "must not be blank")
		}
		return nil
	}
	if !ValidCurrency(r.Currency) {
		return bad("currency", "must be one of XOF, XAF, GNF, CDF, USD")
	}
	if r.PaymentMethod != "" && !ValidPaymentMethod(r.PaymentMethod) {
		return bad("payment_method", "must be an operator code with a country suffix, such as OM_CI")
	}
	if err := text("merchant_transaction_id", r.MerchantTransactionID, 1, MaxMerchantTransactionID); err != nil {
		return err
	}
	if r.Amount < MinAmount || r.Amount > MaxAmount {
		return bad("amount", "must be an integer from 100 to 2500000")
	}
	if !ValidLang(r.Lang) {
		return bad("lang", `must be "fr" or "en"`)
	}
	if err := text("designation", r.Designation, 1, 255); err != nil {
		return err
	}
	if !ValidEmail(r.ClientEmail) {
		return bad("client_email", "is not an e-mail address")
	}
	if err := text("client_first_name", r.ClientFirstName, 2, 255); err != nil {
		return err
	}
	if err := text("client_last_name", r.ClientLastName, 2, 255); err != nil {
		return err
	}
	if r.ClientPhoneNumber != "" && !ValidPhoneNumber(r.ClientPhoneNumber) {
		return bad("client_phone_number", "must be in E.164 form, such as +2250707000000")
	}
	for _, u := range []struct{ field, v string }{
		{"success_url", r.SuccessURL}, {"failed_url", r.FailedURL}, {"notify_url", r.NotifyURL},
	} {
		if !validURL(u.v) {
			return bad(u.field, "must be an http(s) URL of at most 120 characters")
		}
	}
	if r.Channel != "" && !ValidChannel(r.Channel) {
		return bad("channel", "must be PUSH, OTP or QRCODE")
	}
	return nil
}

// ValidCurrency reports whether c is a currency of CinetPay API v1: XOF,
// XAF, GNF, CDF or USD, exactly.
func ValidCurrency(c string) bool {
	switch c {
	case "XOF", "XAF", "GNF", "CDF", "USD":
		return true
	}
	return false
}

// ValidLang reports whether s is "fr" or "en".
func ValidLang(s string) bool { return s == "fr" || s == "en" }

// ValidChannel reports whether s is PUSH, OTP or QRCODE.
func ValidChannel(s string) bool {
	switch s {
	case "PUSH", "OTP", "QRCODE":
		return true
	}
	return false
}

// ValidPaymentMethod reports whether s has the shape of CinetPay's method
// codes: upper-case letters and digits, with an "_XX" country suffix
// ("OM_CI", "EXPRESSO_SN"), at most 32 characters. Whether the account
// offers the method is CinetPay's to say.
func ValidPaymentMethod(s string) bool {
	if len(s) < 4 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	op, country := s[:len(s)-3], s[len(s)-3:]
	return country[0] == '_' && isUpper(country[1]) && isUpper(country[2]) &&
		op != "" && op[0] != '_' && op[len(op)-1] != '_'
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }

// ValidPhoneNumber reports whether s is an E.164 number: '+', a first digit
// 1-9, then 7 to 14 digits.
func ValidPhoneNumber(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ValidEmail reports whether s looks like an e-mail address the way
// CinetPay's JS SDK checks it: one '@', no white space, a domain with a dot
// that is neither its first nor its last character; at most 254
// characters, valid UTF-8, no control characters.
func ValidEmail(s string) bool {
	if s == "" || len(s) > 254 || !utf8.ValidString(s) || hasControl(s) {
		return false
	}
	if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return false
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || strings.Contains(domain, "@") {
		return false
	}
	return len(domain) >= 3 && strings.Contains(domain[1:len(domain)-1], ".")
}

// validURL reports whether s is an absolute http:// or https:// URL with a
// host, at most MaxURL characters, without white space or control
// characters.
func validURL(s string) bool {
	if utf8.RuneCountInString(s) > MaxURL || !utf8.ValidString(s) || hasControl(s) ||
		strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return false
	}
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Host != "" && u.Hostname() != ""
}

// PaymentInit is a payment CinetPay has created.
type PaymentInit struct {
	// PaymentToken identifies the payment at CinetPay.
	PaymentToken string
	// NotifyToken is a per-payment secret: CinetPay's notification for this
	// payment carries it. Store it; never log or show it.
	NotifyToken string
	// TransactionID is CinetPay's id of the payment.
	TransactionID string
	// MerchantTransactionID is ours, as CinetPay echoed it (or as sent,
	// when the answer did not echo it).
	MerchantTransactionID string
	// PaymentURL is CinetPay's payment page; send the customer there after
	// checking it with PaymentURLAllowed. Never empty.
	PaymentURL string
	// Details is the payment's own status at the start.
	Details Details
}

// Details is the details object of an init answer: the payment's status
// (the envelope's code only says the call worked).
type Details struct {
	// Code is 2001 INITIATED for a hosted payment page; 0 when absent.
	Code int
	// Status is the status word ("INITIATED"), informational only.
	Status string
	// Message is CinetPay's message to the customer, informational only.
	Message string
	// MustBeRedirected is true when the customer must be sent to
	// PaymentURL (always, for a hosted payment page).
	MustBeRedirected bool
}

// String describes the PaymentInit without its notify token.
func (p PaymentInit) String() string {
	return "cinetpayv1.PaymentInit{MerchantTransactionID: " + strconv.Quote(p.MerchantTransactionID) +
		", TransactionID: " + strconv.Quote(p.TransactionID) +
		", PaymentURL: " + strconv.Quote(p.PaymentURL) +
		", NotifyToken: [redacted], Details.Code: " + strconv.Itoa(p.Details.Code) + "}"
}

// GoString describes the PaymentInit without its notify token, for %#v.
func (p PaymentInit) GoString() string { return p.String() }

// wireInit is an init answer.
type wireInit struct {
	PaymentToken          flexString      `json:"payment_token"`
	NotifyToken           flexString      `json:"notify_token"`
	TransactionID         flexString      `json:"transaction_id"`
	MerchantTransactionID flexString      `json:"merchant_transaction_id"`
	PaymentURL            flexString      `json:"payment_url"`
	Details               json.RawMessage `json:"details"`
}

// wireDetails is an init answer's details object.
type wireDetails struct {
	Code             flexString `json:"code"`
	Status           flexString `json:"status"`
	Message          flexString `json:"message"`
	MustBeRedirected flexString `json:"must_be_redirected"`
}

// initRefusals are the codes after which CinetPay has certainly not created
// a payment that could still succeed: invalid parameters, credentials or
// token (still refused after a new login), an IP address off the whitelist,
// OTP or user errors, and a payment failed outright.
var initRefusals = map[int]bool{
	CodeInvalidToken:        true,
	CodeExpiredToken:        true,
	CodeInvalidParams:       true,
	CodeInvalidCredentials:  true,
	CodeNotAllowed:          true,
	CodeNotFound:            true,
	CodeOTPError:            true,
	CodeInsufficientBalance: true,
	CodeUserNotFound:        true,
	CodeUserIsBlocked:       true,
	CodeOTPExpired:          true,
	CodeFailed:              true,
}

// InitPayment starts a payment: it validates req, gets a token (logging in
// if needed) and POSTs req as JSON to Endpoint+PathPayment with the bearer
// token.
//
// It succeeds when the answer has a payment_url (an absolute http(s) URL)
// and a code that is 200 or absent, whatever the HTTP status, and any
// merchant_transaction_id it echoes is req's. Every other answer is an
// *APIError whose Outcome is decided on the body's code first:
//
//   - OutcomeRefused: 1004 INVALID_PARAMS, 1005, 2011 NOT_ALLOWED, and the
//     other codes after which nothing can succeed (404, 2004-2008, 2010), at
//     the top level or, when the envelope says 200 OK without a payment_url,
//     in details; a token still refused after one new login; a request that
//     fails Validate; a failed login (Op "login").
//   - OutcomeRateLimited: HTTP 429 (or code 429) with no other code.
//   - OutcomeUnknown: 1200 TRANSACTION_EXIST (an earlier try reached
//     CinetPay), -1 OPERATION_ERROR, 100, 2001-2003 or an unknown code
//     without a payment_url, 200 OK without payment_url or refusal code, an
//     echo of another merchant_transaction_id, and any answer without a
//     usable code (5xx, HTML, garbage, empty), a timeout or a network error.
func (c *Client) InitPayment(ctx context.Context, req *PaymentRequest) (*PaymentInit, error) {
	const op = "init"
	if err := req.Validate(); err != nil {
		ve := err.(*ValidationError)
		return nil, &APIError{Op: op, Outcome: OutcomeRefused, Err: err, detail: "invalid request: " + ve.Field + " " + ve.Reason}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(req); err != nil {
		return nil, &APIError{Op: op, Outcome: OutcomeRefused, Err: err, detail: "cannot encode request"}
	}
	a, e := c.authCall(ctx, op, http.MethodPost, PathPayment, bytes.TrimSpace(buf.Bytes()))
	if e != nil {
		return nil, e
	}
	if a.tokenRefused() {
		return nil, c.tokenError(op, a)
	}
	return c.classifyInit(req, a)
}

func (c *Client) classifyInit(req *PaymentRequest, a *answer) (*PaymentInit, error) {
	const op = "init"
	if !a.object {
		return nil, c.unreadable(op, a)
	}
	var w wireInit
	if err := json.Unmarshal(a.body, &w); err != nil {
		a.decodeErr = err
		return nil, c.unreadable(op, a)
	}
	var d wireDetails
	hasDetails := isObject(w.Details) && json.Unmarshal(w.Details, &d) == nil
	details := Details{}
	dCode, dHasCode := 0, false
	if hasDetails {
		dCode, dHasCode = parseCode(d.Code)
		if dHasCode {
			details.Code = dCode
		}
		details.Status = plainWord(string(d.Status))
		details.Message = cleanText(string(d.Message), 255)
		details.MustBeRedirected = parseBool(d.MustBeRedirected)
	}

	if u := trim(w.PaymentURL); u != "" && a.okOrNoCode() {
		mtid := trim(w.MerchantTransactionID)
		if mtid != "" && mtid != req.MerchantTransactionID {
			return nil, c.envelopeError(op, a, OutcomeUnknown, "answer is for another merchant_transaction_id")
		}
		if !validAbsoluteURL(u) {
			return nil, c.envelopeError(op, a, OutcomeUnknown, "unusable payment_url")
		}
		if mtid == "" {
			mtid = req.MerchantTransactionID
		}
		return &PaymentInit{
			PaymentToken:          trim(w.PaymentToken),
			NotifyToken:           trim(w.NotifyToken),
			TransactionID:         trim(w.TransactionID),
			MerchantTransactionID: mtid,
			PaymentURL:            u,
			Details:               details,
		}, nil
	}

	if !a.hasCode {
		return nil, c.unreadable(op, a)
	}
	if a.code == CodeOK {
		// The envelope says the call worked; the reason it did not start
		// a payment, if any, is in details.
		if dHasCode {
			e := c.codeError(op, a, dCode, string(d.Status), string(d.Message), OutcomeUnknown, "no payment_url")
			switch {
			case initRefusals[dCode]:
				e.Outcome, e.detail = OutcomeRefused, ""
			case dCode == http.StatusTooManyRequests:
				e.Outcome, e.detail = OutcomeRateLimited, ""
			case dCode == CodeTransactionExist:
				e.detail = "transaction already exists"
			}
			return nil, e
		}
		return nil, c.envelopeError(op, a, OutcomeUnknown, "no payment_url")
	}
	switch {
	case initRefusals[a.code]:
		return nil, c.envelopeError(op, a, OutcomeRefused, "")
	case a.code == http.StatusTooManyRequests:
		return nil, c.envelopeError(op, a, OutcomeRateLimited, "")
	case a.code == CodeTransactionExist:
		return nil, c.envelopeError(op, a, OutcomeUnknown, "transaction already exists")
	case a.code == CodeOperationError:
		return nil, c.envelopeError(op, a, OutcomeUnknown, "")
	}
	return nil, c.envelopeError(op, a, OutcomeUnknown, "unexpected code")
}

// validAbsoluteURL reports whether s is an absolute http(s) URL with a host
// and no user information.
func validAbsoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && !hasControl(s)
}
