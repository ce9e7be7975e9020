package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpay"
)

// Faults are the knobs with which a test makes the sandbox misbehave. The
// zero value is a well-behaved CinetPay. Each knob is off when absent (nil,
// zero). A knob with a Times field applies to the next Times occasions and
// then switches itself off (it disappears from GET /_sandbox/faults); with
// Times 0 it applies every time until cleared.
//
// Example (PUT /_sandbox/faults):
//
//	{"payment": {"times": 2, "code": "429", "retry_after": 3},
//	 "check": {"hang": "30s"},
//	 "notify": {"times": 1, "duplicate": 2},
//	 "paid": {"amount": 95},
//	 "late_success": {"after": "2s"},
//	 "rate_limit": 5,
//	 "v1_token_lifetime": "2s",
//	 "v1_not_allowed": {"times": 1, "login": true},
//	 "v1_status": {"times": 1, "status": 503}}
type Faults struct {
	// Payment shapes the answers of POST /v2/payment; an occasion is one
	// call.
	Payment *APIFault `json:"payment,omitempty"`
	// Check shapes the answers of POST /v2/payment/check; an occasion is
	// one call.
	Check *APIFault `json:"check,omitempty"`
	// RateLimit, when above 0, answers code 429 TOO_MANY_REQUEST (HTTP 429,
	// Retry-After: 1) to API calls (all endpoints together, v1 included,
	// whose answer is {"code":429,"status":"TOO_MANY_REQUESTS",…}) beyond
	// RateLimit within one second. Calls answered 429 do not count.
	RateLimit int `json:"rate_limit,omitempty"`
	// Notify shapes notifications; an occasion is one notification (one
	// state of one transaction: its copies and retries are one occasion).
	Notify *NotifyFault `json:"notify,omitempty"`
	// NotifyAsync sends notifications in the background after the browser
	// (or the control API caller) has its answer, instead of before.
	NotifyAsync bool `json:"notify_async,omitempty"`
	// Paid makes the customer pay another amount or currency than
	// requested; an occasion is one acceptance. /v2/payment/check's data and
	// the notifications then carry the paid values.
	Paid *PaidFault `json:"paid,omitempty"`
	// LateSuccess turns refused transactions ACCEPTED (v1: FAILED ones
	// SUCCESS) later, with a notification; an occasion is one refusal.
	LateSuccess *LateSuccessFault `json:"late_success,omitempty"`
	// AmountFormat writes the amount of /v2/payment/check's data with this
	// format, which holds one %d: "%d.00" answers "5000.00", "0%d" answers
	// "05000". CinetPay's documentation shows integers, but its answers carry
	// the amount as text, and integrations have seen decimals. Empty: "5000".
	AmountFormat string `json:"amount_format,omitempty"`

	// The knobs below concern CinetPay's current API (v1). RateLimit,
	// Notify, NotifyAsync and LateSuccess apply to it too; Payment, Check,
	// Paid and AmountFormat do not.

	// V1Login, V1Payment and V1Status shape the answers of POST
	// /v1/oauth/login, POST /v1/payment and GET /v1/payment/{id} as
	// Payment and Check do those of v2; an occasion is one call. Their Code
	// answers the v1 error shape ({"code":1004,"status":"INVALID_PARAMS",
	// "description":…}, the code as a number) with the HTTP status of
	// V1ErrorStatus.
	V1Login   *APIFault `json:"v1_login,omitempty"`
	V1Payment *APIFault `json:"v1_payment,omitempty"`
	V1Status  *APIFault `json:"v1_status,omitempty"`
	// V1TokenLifetime is how long the bearer tokens minted while it is set
	// stay valid. Zero: 24 h, as CinetPay's SDKs document (one integrator
	// saw about 1 h 36 min on CinetPay's sandbox).
	V1TokenLifetime Duration `json:"v1_token_lifetime,omitempty"`
	// V1ExpiresIn, when above 0, is the expires_in (seconds) that logins
	// answer, whatever the real lifetime: a token may then die before the
	// client expects it. Zero: the real lifetime, rounded up to the second.
	V1ExpiresIn int `json:"v1_expires_in,omitempty"`
	// V1ExpiredToken answers 1003 EXPIRED_TOKEN to authenticated calls that
	// bear a valid token, and expires that token, so the client must log in
	// again; an occasion is one such call.
	V1ExpiredToken *TimesFault `json:"v1_expired_token,omitempty"`
	// V1NotAllowed answers 2011 NOT_ALLOWED ("This Ip is not withlisted"),
	// as CinetPay does to a client outside the account's IP whitelist.
	V1NotAllowed *NotAllowedFault `json:"v1_not_allowed,omitempty"`
	// V1TransactionExist answers 1200 TRANSACTION_EXIST to POST /v1/payment
	// calls that pass every check, even for a new merchant_transaction_id;
	// nothing is stored. An occasion is one such call. (For a 1200 after
	// which the transaction exists, use V1Payment with code 1200 and
	// processed.)
	V1TransactionExist *TimesFault `json:"v1_transaction_exist,omitempty"`
	// V1UnknownID answers HTTP 422 {"code":404,"status":"NOT_FOUND"} to GET
	// /v1/payment/{id} for a transaction that exists; an occasion is one
	// such call.
	V1UnknownID *TimesFault `json:"v1_unknown_id,omitempty"`
	// V1ErrorStatus sets the HTTP status of v1 error answers by body code
	// ({"1003": 200, "1004": 400}); CinetPay's are not known. Codes absent
	// keep the sandbox's choice: 401 for 1002, 1003 and 1005; 422 for 1004
	// and 404; 400 for 1200; 403 for 2011; 429 for 429; 400 otherwise.
	V1ErrorStatus map[int]int `json:"v1_error_status,omitempty"`
	// V1ErrorsInDetails answers 1004 INVALID_PARAMS of POST /v1/payment
	// inside a successful envelope, HTTP 200 {"code":200,"status":"OK",
	// "details":{"code":1004,"status":"INVALID_PARAMS","message":…}}, a
	// shape integrators report, instead of the top-level error.
	V1ErrorsInDetails bool `json:"v1_errors_in_details,omitempty"`
	// V1StatusByToken lets GET /v1/payment/{id} find a transaction by its
	// payment_token too, as CinetPay's JS SDK says (its PHP SDK names only
	// merchant_transaction_id and transaction_id). Default: it does not.
	V1StatusByToken bool `json:"v1_status_by_token,omitempty"`
	// V1Redirect sets how the payment page sends the browser back to
	// success_url or failed_url. Default: a plain GET (303 See Other) to
	// the URL as given.
	V1Redirect *RedirectMode `json:"v1_redirect,omitempty"`
	// V1NotifyStatuses are the states whose reaching is notified to
	// notify_url: any of PENDING, EXPIRED, SUCCESS and FAILED. Empty:
	// SUCCESS and FAILED, the final states CinetPay documents as notified.
	V1NotifyStatuses []string `json:"v1_notify_statuses,omitempty"`
	// V1NotifyPing sends a GET to notify_url before the first notification
	// of a v1 transaction, as Checkout v2 does; nothing says v1 does.
	V1NotifyPing bool `json:"v1_notify_ping,omitempty"`
	// V1ExpireAfter, when above 0, turns v1 transactions created while it
	// is set EXPIRED this long after their creation if the customer has
	// not decided by then. Zero: they only expire by the expire action.
	V1ExpireAfter Duration `json:"v1_expire_after,omitempty"`
}

// Values of APIFault.Body.
const (
	// BodyGarbage answers text that is not JSON, labelled application/json.
	BodyGarbage = "garbage"
	// BodyTruncated processes the call for real and answers the first half
	// of the real body (so a payment may exist though the answer is
	// unreadable).
	BodyTruncated = "truncated"
	// BodyHTML answers an HTML error page.
	BodyHTML = "html"
	// BodyEmpty answers an empty body.
	BodyEmpty = "empty"
)

// APIFault replaces or delays the answers of an API endpoint.
//
// Precedence: Hang first (then the rest applies); then Body; then Code; then
// Status alone (an HTML error page, as a proxy in front of CinetPay would
// send). Except with BodyTruncated or Processed, a replaced answer means the
// call had no effect (no transaction created).
type APIFault struct {
	// Times limits the fault to the next Times calls; 0: every call.
	Times int `json:"times,omitempty"`
	// Hang waits this long before answering (or until the client gives
	// up), like a timeout. If nothing else is set, the call is then
	// processed normally: a payment is created even though the client,
	// having timed out, never learns it.
	Hang Duration `json:"hang,omitempty"`
	// Code answers CinetPay's error shape with this code ("609", "429",
	// "603", …) and the sandbox's HTTP status for it (see the package
	// documentation) unless Status is set.
	Code string `json:"code,omitempty"`
	// Status is the HTTP status of the answer; alone, it answers an HTML
	// error page (for instance 502 or 503).
	Status int `json:"status,omitempty"`
	// RetryAfter, in seconds, is sent as a Retry-After header when above 0.
	RetryAfter int `json:"retry_after,omitempty"`
	// Body is "garbage", "truncated", "html" or "empty"; see the Body*
	// constants. Its HTTP status is Status, else 200.
	Body string `json:"body,omitempty"`
	// Processed handles the call for real before answering the fault (a
	// payment is created, a late success on check happens): the call took
	// effect but the client cannot know it.
	Processed bool `json:"processed,omitempty"`
}

// NotifyFault changes how notifications are sent.
type NotifyFault struct {
	// Times limits the fault to the next Times notifications; 0: all.
	Times int `json:"times,omitempty"`
	// Lost: the notification is not sent at all (nor the GET ping, if it
	// was due). It is recorded with fault "lost". Lost, Duplicate,
	// Concurrent and Delay apply to v1 notifications too.
	Lost bool `json:"lost,omitempty"`
	// Duplicate sends the notification Duplicate more times, one after the
	// other.
	Duplicate int `json:"duplicate,omitempty"`
	// Concurrent sends the notification Concurrent times at once (each copy
	// of Duplicate, if both are set).
	Concurrent int `json:"concurrent,omitempty"`
	// Delay waits this long before sending.
	Delay Duration `json:"delay,omitempty"`
	// BadToken sends an x-token computed with a wrong secret key; on v1, a
	// wrong notify_token (of the right length).
	BadToken bool `json:"bad_token,omitempty"`
	// SiteID replaces cpm_site_id; the x-token is computed over the replaced
	// value with the right key, so only the site check can reject it. Not
	// applied to v1 notifications, nor is OmitFields.
	SiteID string `json:"site_id,omitempty"`
	// OmitFields leaves these fields out of the form (the x-token counts
	// them as empty), like the real 2022 notification without cpm_custom
	// and cpm_error_message.
	OmitFields []string `json:"omit_fields,omitempty"`
}

// PaidFault sets what the customer actually pays.
type PaidFault struct {
	// Times limits the fault to the next Times acceptances; 0: all.
	Times int `json:"times,omitempty"`
	// Amount paid, when above 0.
	Amount int64 `json:"amount,omitempty"`
	// Currency paid, when set.
	Currency string `json:"currency,omitempty"`
}

// LateSuccessFault turns a refusal into a success later. At least one of
// After and OnCheck is needed; with both, whichever comes first.
type LateSuccessFault struct {
	// Times limits the fault to the next Times refusals; 0: all.
	Times int `json:"times,omitempty"`
	// After: the refused transaction turns ACCEPTED this long after the
	// refusal, and its ACCEPTED notification is sent.
	After Duration `json:"after,omitempty"`
	// OnCheck: the refused transaction turns ACCEPTED at its next
	// /v2/payment/check (which answers 00 ACCEPTED), and its ACCEPTED
	// notification is sent in the background. On v1: SUCCESS at its next
	// GET /v1/payment/{id}, which answers 100 SUCCESS.
	OnCheck bool `json:"on_check,omitempty"`
}

// Duration is a time.Duration written in JSON as a string ("1.5s", "200ms");
// an integer is read as nanoseconds.
type Duration time.Duration

// MarshalJSON writes d as a string such as "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string or integer nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration must be a string such as \"2s\" or integer nanoseconds")
	}
	*d = Duration(n)
	return nil
}

// Validate reports the first knob with an impossible value.
func (f Faults) Validate() error {
	for _, a := range []struct {
		name string
		f    *APIFault
	}{{"payment", f.Payment}, {"check", f.Check},
		{"v1_login", f.V1Login}, {"v1_payment", f.V1Payment}, {"v1_status", f.V1Status}} {
		if a.f == nil {
			continue
		}
		switch {
		case a.f.Times < 0:
			return fmt.Errorf("%s.times must not be negative", a.name)
		case a.f.Hang < 0:
			return fmt.Errorf("%s.hang must not be negative", a.name)
		case a.f.RetryAfter < 0:
			return fmt.Errorf("%s.retry_after must not be negative", a.name)
		case a.f.Status != 0 && (a.f.Status < 100 || a.f.Status > 599):
			return fmt.Errorf("%s.status must be an HTTP status", a.name)
		case a.f.Code != "" && !integerRE.MatchString(a.f.Code):
			return fmt.Errorf("%s.code must be digits", a.name)
		case !slices.Contains([]string{"", BodyGarbage, BodyTruncated, BodyHTML, BodyEmpty}, a.f.Body):
			return fmt.Errorf("%s.body must be garbage, truncated, html or empty", a.name)
		case a.f.Hang == 0 && a.f.Code == "" && a.f.Status == 0 && a.f.Body == "":
			return fmt.Errorf("%s needs hang, code, status or body", a.name)
		}
	}
	if f.RateLimit < 0 {
		return errors.New("rate_limit must not be negative")
	}
	if a := f.AmountFormat; a != "" && (strings.Count(a, "%") != 1 || strings.Count(a, "%d") != 1) {
		return errors.New(`amount_format must hold exactly one %d and no other verb, such as "%d.00"`)
	}
	if n := f.Notify; n != nil {
		switch {
		case n.Times < 0 || n.Duplicate < 0 || n.Concurrent < 0 || n.Delay < 0:
			return errors.New("notify: times, duplicate, concurrent and delay must not be negative")
		}
		for _, name := range n.OmitFields {
			if !slices.Contains(cinetpay.XTokenFields[:], name) {
				return fmt.Errorf("notify.omit_fields: %q is not one of the 16 x-token fields", name)
			}
		}
	}
	if p := f.Paid; p != nil {
		switch {
		case p.Times < 0 || p.Amount < 0:
			return errors.New("paid: times and amount must not be negative")
		case p.Amount == 0 && p.Currency == "":
			return errors.New("paid needs amount or currency")
		}
	}
	if l := f.LateSuccess; l != nil {
		switch {
		case l.Times < 0 || l.After < 0:
			return errors.New("late_success: times and after must not be negative")
		case l.After == 0 && !l.OnCheck:
			return errors.New("late_success needs after or on_check")
		}
	}
	return f.validateV1()
}

// clone returns a deep copy of f.
func (f Faults) clone() Faults {
	c := f
	c.Payment = clonePtr(f.Payment)
	c.Check = clonePtr(f.Check)
	c.Notify = clonePtr(f.Notify)
	if c.Notify != nil {
		c.Notify.OmitFields = slices.Clone(c.Notify.OmitFields)
	}
	c.Paid = clonePtr(f.Paid)
	c.LateSuccess = clonePtr(f.LateSuccess)
	c.V1Login = clonePtr(f.V1Login)
	c.V1Payment = clonePtr(f.V1Payment)
	c.V1Status = clonePtr(f.V1Status)
	c.V1ExpiredToken = clonePtr(f.V1ExpiredToken)
	c.V1NotAllowed = clonePtr(f.V1NotAllowed)
	c.V1TransactionExist = clonePtr(f.V1TransactionExist)
	c.V1UnknownID = clonePtr(f.V1UnknownID)
	c.V1ErrorStatus = maps.Clone(f.V1ErrorStatus)
	c.V1Redirect = clonePtr(f.V1Redirect)
	c.V1NotifyStatuses = slices.Clone(f.V1NotifyStatuses)
	return c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

// SetFaults replaces all the fault knobs. Values are not validated; use
// Faults.Validate first if they come from elsewhere.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f.clone()
	s.rateHits = nil
	s.mu.Unlock()
}

// Faults returns the fault knobs in force, with their remaining Times.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.clone()
}

// counted is a fault with a Times counter.
type counted[T any] interface {
	*T
	counter() *int
}

func (f *APIFault) counter() *int         { return &f.Times }
func (f *NotifyFault) counter() *int      { return &f.Times }
func (f *PaidFault) counter() *int        { return &f.Times }
func (f *LateSuccessFault) counter() *int { return &f.Times }

// take returns a copy of the fault in slot for one occasion and counts the
// occasion, removing the fault when its Times are used up; s.mu held.
func take[T any, P counted[T]](slot *P) P {
	f := *slot
	if f == nil {
		return nil
	}
	c := P(clonePtr((*T)(f)))
	if n := f.counter(); *n > 0 {
		*n--
		if *n == 0 {
			*slot = nil
		}
	}
	return c
}

// takeAPIFault takes the fault of an endpoint for one call, with its name.
func (s *Server) takeAPIFault(path string) (*APIFault, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if path == cinetpay.PathPayment {
		return take(&s.faults.Payment), "payment"
	}
	return take(&s.faults.Check), "check"
}

// rateLimited reports whether an API call exceeds the rate limit, and
// counts it if not.
func (s *Server) rateLimited() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := s.faults.RateLimit
	if limit <= 0 {
		s.rateHits = nil
		return false
	}
	now := time.Now()
	i := 0
	for i < len(s.rateHits) && now.Sub(s.rateHits[i]) >= time.Second {
		i++
	}
	s.rateHits = s.rateHits[i:]
	if len(s.rateHits) >= limit {
		return true
	}
	s.rateHits = append(s.rateHits, now)
	return false
}

// replaces reports whether the fault replaces the real answer.
func (f *APIFault) replaces() bool {
	switch f.Body {
	case BodyGarbage, BodyHTML, BodyEmpty:
		return true
	case BodyTruncated:
		return false
	}
	return f.Code != "" || f.Status != 0
}

// answer is the fault's replacement answer; codeAnswer makes the error
// answer of Code in the endpoint's API.
func (f *APIFault) answer(codeAnswer func(code, description string) apiAnswer) apiAnswer {
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	switch f.Body {
	case BodyGarbage:
		return apiAnswer{status: status, contentType: "application/json",
			body: []byte("Service temporarily overloaded }{ <br> code=201 \x00")}
	case BodyEmpty:
		return apiAnswer{status: status, contentType: "application/json"}
	case BodyHTML:
		return htmlErrorAnswer(status)
	}
	if f.Code != "" {
		a := codeAnswer(f.Code, "fault injected by the sandbox")
		if f.Status != 0 {
			a.status = f.Status
		}
		return a
	}
	return htmlErrorAnswer(status)
}

// htmlErrorAnswer is an HTML error page like a proxy's.
func htmlErrorAnswer(status int) apiAnswer {
	text := fmt.Sprintf("%d %s", status, http.StatusText(status))
	return apiAnswer{status: status, contentType: "text/html; charset=utf-8",
		body: []byte("<html>\r\n<head><title>" + text + "</title></head>\r\n<body>\r\n<center><h1>" + text +
			"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")}
}
