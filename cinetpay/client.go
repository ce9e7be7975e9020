package cinetpay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/internal/cpjson"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
)

// API is what the rest of the product needs from a payment provider: start a
// payment and look up its status. *Client implements it for CinetPay
// Checkout v2; a second provider (or a test double) implements it too.
type API interface {
	// InitPayment starts a payment; see Client.InitPayment.
	InitPayment(ctx context.Context, req *PaymentRequest) (*PaymentStart, error)
	// CheckPayment reports a payment's status; see Client.CheckPayment.
	CheckPayment(ctx context.Context, transactionID string) (*CheckResult, error)
}

var _ API = (*Client)(nil)

// DefaultUserAgent is the User-Agent sent when Client.UserAgent is empty.
// CinetPay answers 1010 to a request without one.
const DefaultUserAgent = "caddy-cinetpay/1"

// DefaultTimeout is the per-call timeout used when Client.Timeout is not
// positive.
const DefaultTimeout = 15 * time.Second

// maxResponseBody bounds how much of an answer is read; a longer answer is
// unreadable.
const maxResponseBody = 1 << 20

// maxRetryAfter caps Error.RetryAfter.
const maxRetryAfter = 24 * time.Hour

// Client calls CinetPay Checkout v2. Its zero value is not usable: APIKey and
// SiteID are required. A Client must not be modified once in use; it is safe
// for concurrent use.
type Client struct {
	// Endpoint is the API's base URL, DefaultEndpoint when empty (a sandbox
	// URL in development). A trailing slash is tolerated.
	Endpoint string
	// APIKey is the merchant's API key. It is sent in request bodies only and
	// never appears in errors.
	APIKey string
	// SiteID is the merchant's site id.
	SiteID string
	// HTTPClient sends the requests. When nil, a private client is used.
	// Redirects are never followed, whatever the client's CheckRedirect says:
	// a redirected POST would carry the API key elsewhere.
	HTTPClient *http.Client
	// UserAgent is sent with every request; DefaultUserAgent when empty.
	UserAgent string
	// Timeout bounds each call, answer included (a context deadline);
	// DefaultTimeout when not positive. A shorter deadline of the caller's
	// context wins.
	Timeout time.Duration
}

// PaymentRequest holds the fields POSTed to /v2/payment, apart from apikey
// and site_id, which the Client adds. Validating them (amount a multiple of
// 5, known currency and channels, at most 3 invoice_data keys, a description
// without "# / $ _ &") is the caller's job: CinetPay refuses bad requests
// with code 608.
type PaymentRequest struct {
	// TransactionID is unique per site; CinetPay refuses a reused one. Keep
	// it to letters and digits.
	TransactionID string `json:"transaction_id"`
	// Amount is an integer amount in Currency.
	Amount int64 `json:"amount"`
	// Currency is one of XOF, XAF, CDF, GNF, USD (see ValidCurrency).
	Currency string `json:"currency"`
	// Description is shown to the customer.
	Description string `json:"description"`
	// NotifyURL receives CinetPay's notifications.
	NotifyURL string `json:"notify_url"`
	// ReturnURL is where the customer's browser comes back.
	ReturnURL string `json:"return_url"`
	// Channels is ALL, MOBILE_MONEY, CREDIT_CARD or WALLET (see ValidChannels).
	Channels string `json:"channels"`
	// Lang is the payment page's language, "fr" or "en"; omitted when empty.
	Lang string `json:"lang,omitempty"`
	// Metadata comes back as cpm_custom and data.metadata. JSON text in it
	// has been seen to trigger a 403: base64-encode it.
	Metadata string `json:"metadata,omitempty"`
	// InvoiceData is shown on the invoice, at most 3 keys.
	InvoiceData map[string]string `json:"invoice_data,omitempty"`
	// LockPhoneNumber locks CustomerPhoneNumber on the payment page.
	LockPhoneNumber bool `json:"lock_phone_number,omitempty"`

	// Customer fields: optional, but card payments are only offered when
	// they are given. CustomerCountry is an ISO 3166-1 alpha-2 code,
	// CustomerState a US or Canadian state code.
	CustomerID          string `json:"customer_id,omitempty"`
	CustomerName        string `json:"customer_name,omitempty"`
	CustomerSurname     string `json:"customer_surname,omitempty"`
	CustomerEmail       string `json:"customer_email,omitempty"`
	CustomerPhoneNumber string `json:"customer_phone_number,omitempty"`
	CustomerAddress     string `json:"customer_address,omitempty"`
	CustomerCity        string `json:"customer_city,omitempty"`
	CustomerCountry     string `json:"customer_country,omitempty"`
	CustomerState       string `json:"customer_state,omitempty"`
	CustomerZipCode     string `json:"customer_zip_code,omitempty"`
}

// PaymentStart is a payment CinetPay has created.
type PaymentStart struct {
	// PaymentToken identifies the payment at CinetPay.
	PaymentToken string
	// PaymentURL is CinetPay's payment page; send the customer there. The
	// caller checks it is https on a host it trusts (see IsCinetPayHost).
	PaymentURL string
	// APIResponseID is CinetPay's id of the answer.
	APIResponseID string
}

// paymentBody is the JSON object POSTed to /v2/payment.
type paymentBody struct {
	APIKey string `json:"apikey"`
	SiteID string `json:"site_id"`
	*PaymentRequest
}

// checkBody is the JSON object POSTed to /v2/payment/check.
type checkBody struct {
	APIKey        string `json:"apikey"`
	SiteID        string `json:"site_id"`
	TransactionID string `json:"transaction_id"`
}

// InitPayment starts a payment: it POSTs {apikey, site_id, ...req} as JSON to
// Endpoint+PathPayment, with Content-Type and Accept application/json and a
// User-Agent.
//
// It succeeds only when the answer's body has code "201" and non-empty
// data.payment_url and data.payment_token, whatever the HTTP status. Any
// other answer is an *Error: a definite refusal (IsRefusalCode) is
// OutcomeRefused, code 429 (or HTTP 429 with no readable body) is
// OutcomeRateLimited, and everything else (timeout, network error, 5xx,
// unreadable answer, unexpected code, a 201 without payment data) is
// OutcomeUnknown: the transaction may exist at CinetPay.
func (c *Client) InitPayment(ctx context.Context, req *PaymentRequest) (*PaymentStart, error) {
	const op = "payment"
	if req == nil {
		return nil, &Error{Op: op, Outcome: OutcomeRefused, detail: "no request"}
	}
	a, e := c.post(ctx, op, PathPayment, paymentBody{APIKey: c.APIKey, SiteID: c.SiteID, PaymentRequest: req})
	if e != nil {
		return nil, e
	}
	if !a.readable {
		return nil, c.unreadable(op, a)
	}
	w := &a.wire
	switch code := string(w.Code); {
	case code == CodeCreated:
		var d struct {
			PaymentToken flexString `json:"payment_token"`
			PaymentURL   flexString `json:"payment_url"`
		}
		if isObject(w.Data) && json.Unmarshal(w.Data, &d) == nil {
			token := strings.TrimSpace(string(d.PaymentToken))
			u := strings.TrimSpace(string(d.PaymentURL))
			if token != "" && u != "" {
				return &PaymentStart{
					PaymentToken:  token,
					PaymentURL:    u,
					APIResponseID: string(w.APIResponseID),
				}, nil
			}
		}
		return nil, c.codeError(op, a, OutcomeUnknown, "no payment_url or payment_token")
	case code == CodeTooManyRequests:
		return nil, c.codeError(op, a, OutcomeRateLimited, "")
	case IsRefusalCode(code):
		return nil, c.codeError(op, a, OutcomeRefused, "")
	default:
		return nil, c.codeError(op, a, OutcomeUnknown, "unexpected code")
	}
}

// CheckPayment asks Endpoint+PathCheck for the status of transactionID,
// POSTing {apikey, site_id, transaction_id} as JSON.
//
// It returns a result only when the answer is usable: a readable JSON body
// with a code and a data object carrying a non-empty status (code "00", or
// "627" with status REFUSED, or "662" with WAITING_FOR_CUSTOMER, …). The
// result's Verdict says what to make of it. Everything else is an *Error:
// code 429 or HTTP 429 with no readable body is OutcomeRateLimited; a
// network error, a timeout, a 5xx or other answer without a usable body, an
// error code with no data, or unreadable JSON is OutcomeUnknown. An empty
// transactionID is refused without calling CinetPay.
//
// It tolerates the answers' known quirks: an amount sent as a string or a
// number, null metadata or operator_id, a payment_date of " ".
func (c *Client) CheckPayment(ctx context.Context, transactionID string) (*CheckResult, error) {
	const op = "check"
	if transactionID == "" {
		return nil, &Error{Op: op, Outcome: OutcomeRefused, detail: "empty transaction id"}
	}
	a, e := c.post(ctx, op, PathCheck, checkBody{APIKey: c.APIKey, SiteID: c.SiteID, TransactionID: transactionID})
	if e != nil {
		return nil, e
	}
	if !a.readable {
		return nil, c.unreadable(op, a)
	}
	w := &a.wire
	if string(w.Code) == CodeTooManyRequests {
		return nil, c.codeError(op, a, OutcomeRateLimited, "")
	}
	data := decodePaymentData(w.Data)
	if data == nil || data.Status == "" {
		return nil, c.codeError(op, a, OutcomeUnknown, "no payment data")
	}
	return &CheckResult{
		Code:          string(w.Code),
		Message:       string(w.Message),
		APIResponseID: string(w.APIResponseID),
		Data:          data,
	}, nil
}

// answer is an HTTP answer from CinetPay.
type answer struct {
	status     int
	retryAfter time.Duration
	// readable is set when the body is a JSON object with a non-empty code.
	readable bool
	wire     wireAnswer
	// decodeErr is why the body could not be decoded, if it could not.
	decodeErr error
}

// wireAnswer is the common shape of CinetPay's answers.
type wireAnswer struct {
	Code          flexString      `json:"code"`
	Message       flexString      `json:"message"`
	Description   flexString      `json:"description"`
	APIResponseID flexString      `json:"api_response_id"`
	Data          json.RawMessage `json:"data"`
}

// post sends payload as JSON to the endpoint's path and reads the answer.
// A nil *Error means an HTTP answer was read in full (it may still be
// unreadable or an error code).
func (c *Client) post(ctx context.Context, op, path string, payload any) (*answer, *Error) {
	target, err := c.url(path)
	if err != nil {
		return nil, &Error{Op: op, Outcome: OutcomeRefused, Err: err, detail: "invalid endpoint"}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(payload); err != nil {
		return nil, &Error{Op: op, Outcome: OutcomeRefused, Err: err, detail: "cannot encode request"}
	}

	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(cctx, http.MethodPost, target, &buf)
	if err != nil {
		return nil, &Error{Op: op, Outcome: OutcomeRefused, Err: err, detail: "invalid endpoint"}
	}
	ua := c.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", ua)

	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, transportError(ctx, cctx, op, 0, err, timeout)
	}
	defer resp.Body.Close()
	a := &answer{
		status:     resp.StatusCode,
		retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		e := transportError(ctx, cctx, op, resp.StatusCode, err, timeout)
		e.RetryAfter = a.retryAfter
		return nil, e
	}
	if len(raw) > maxResponseBody {
		a.decodeErr = errors.New("answer larger than " + strconv.Itoa(maxResponseBody) + " bytes")
		return a, nil
	}
	a.wire, a.readable, a.decodeErr = decodeAnswer(raw)
	return a, nil
}

// url returns the endpoint's URL for path.
func (c *Client) url(path string) (string, error) {
	ep := c.Endpoint
	if ep == "" {
		ep = DefaultEndpoint
	}
	u, err := url.Parse(ep)
	if err != nil {
		return "", errors.New("cannot parse endpoint")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", errors.New("endpoint is not an http(s) base URL")
	}
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawPath = ""
	return u.String(), nil
}

// defaultHTTPClient is the private client used when Client.HTTPClient is nil.
var defaultHTTPClient = &http.Client{Transport: newTransport(), CheckRedirect: noRedirect}

func newTransport() http.RoundTripper {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t = t.Clone()
		t.MaxIdleConnsPerHost = MaxIdleConns
		return t
	}
	return http.DefaultTransport
}

// MaxIdleConns is how many idle connections to CinetPay the default client keeps. Go's default
// of 2 made every call beyond two at once open a new connection (and a TLS handshake) and close
// it after.
const MaxIdleConns = 64

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// httpClient returns the client to send with, never following redirects.
func (c *Client) httpClient() *http.Client {
	if c.HTTPClient == nil {
		return defaultHTTPClient
	}
	hc := *c.HTTPClient
	hc.CheckRedirect = noRedirect
	return &hc
}

// transportError builds the error of a call that got no complete answer.
// parent is the caller's context, cctx the call's (with the Client's timeout).
func transportError(parent, cctx context.Context, op string, status int, err error, timeout time.Duration) *Error {
	e := &Error{Op: op, HTTPStatus: status, Outcome: OutcomeUnknown, Err: err}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(cctx.Err(), context.DeadlineExceeded) {
		e.timedOut = true
		if parent.Err() == nil {
			e.timeout = timeout
		}
	}
	return e
}

// unreadable builds the error of an answer whose body has no readable code.
func (c *Client) unreadable(op string, a *answer) *Error {
	e := &Error{
		Op:         op,
		HTTPStatus: a.status,
		Outcome:    OutcomeUnknown,
		RetryAfter: a.retryAfter,
		Err:        a.decodeErr,
		detail:     "unreadable answer",
	}
	if a.status == http.StatusTooManyRequests {
		e.Outcome = OutcomeRateLimited
		e.detail = "too many requests"
	}
	return e
}

// codeError builds the error of a readable answer with a code.
func (c *Client) codeError(op string, a *answer, o Outcome, detail string) *Error {
	return &Error{
		Op:            op,
		HTTPStatus:    a.status,
		Code:          c.redact(string(a.wire.Code)),
		Message:       c.redact(string(a.wire.Message)),
		Description:   c.redact(string(a.wire.Description)),
		APIResponseID: c.redact(string(a.wire.APIResponseID)),
		Outcome:       o,
		RetryAfter:    a.retryAfter,
		detail:        detail,
	}
}

// redact removes the API key from s, should CinetPay ever echo it.
func (c *Client) redact(s string) string {
	if c.APIKey != "" && strings.Contains(s, c.APIKey) {
		return strings.ReplaceAll(s, c.APIKey, "[redacted]")
	}
	return s
}

// decodeAnswer decodes a body into the common answer shape. ok is set only
// for a JSON object with a non-empty code.
func decodeAnswer(raw []byte) (w wireAnswer, ok bool, err error) {
	raw = bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(raw), []byte("\xef\xbb\xbf")))
	if len(raw) == 0 {
		return w, false, errors.New("empty answer")
	}
	if raw[0] != '{' {
		return w, false, errors.New("answer is not a JSON object")
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return wireAnswer{}, false, err
	}
	w.Code = flexString(strings.TrimSpace(string(w.Code)))
	if w.Code == "" {
		return w, false, errors.New("answer has no code")
	}
	return w, true, nil
}

// isObject reports whether raw is a JSON object.
func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// flexString decodes any JSON value into a string (see cpjson.FlexString).
type flexString = cpjson.FlexString

// parseRetryAfter parses a Retry-After value, delay-seconds or HTTP date,
// into a positive duration capped at maxRetryAfter; 0 when absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	return engine.ParseRetryAfter(v, now, maxRetryAfter)
}
