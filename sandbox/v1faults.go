package sandbox

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
)

// TimesFault is a knob with nothing to set but how long it lasts: {} applies
// it every time, {"times": 2} to the next two occasions.
type TimesFault struct {
	// Times limits the fault to the next Times occasions; 0: all.
	Times int `json:"times,omitempty"`
}

// NotAllowedFault answers 2011 NOT_ALLOWED, as to a client outside the
// account's IP whitelist. At least one of Login and Calls is needed; an
// occasion is one call it applies to.
type NotAllowedFault struct {
	// Times limits the fault to the next Times calls it applies to; 0: all.
	Times int `json:"times,omitempty"`
	// Login answers 2011 to POST /v1/oauth/login (after the body's checks,
	// before the credentials' one), as measured on CinetPay.
	Login bool `json:"login,omitempty"`
	// Calls answers 2011 to the authenticated calls (POST /v1/payment,
	// GET /v1/payment/{id}), before the bearer token's check.
	Calls bool `json:"calls,omitempty"`
	// IPv6 limits the fault to clients connecting over IPv6, as when the
	// whitelist holds only a dual-stack host's IPv4 address. Calls over
	// IPv4 are not occasions.
	IPv6 bool `json:"ipv6,omitempty"`
}

// RedirectMode is how the v1 payment page sends the browser back to the
// shop. CinetPay documents neither the method nor any parameters.
type RedirectMode struct {
	// Method is "GET" (the default: 303 See Other to the URL) or "POST" (an
	// auto-submitted form, as Checkout v2 does).
	Method string `json:"method,omitempty"`
	// AppendIDs adds transaction_id (CinetPay's) and merchant_transaction_id:
	// to the query with GET, as form fields with POST. Not CinetPay's
	// documented behaviour.
	AppendIDs bool `json:"append_ids,omitempty"`
}

func (f *TimesFault) counter() *int      { return &f.Times }
func (f *NotAllowedFault) counter() *int { return &f.Times }

// validateV1 reports the first v1 knob with an impossible value (the
// APIFaults are checked with the others).
func (f Faults) validateV1() error {
	switch {
	case f.V1TokenLifetime < 0:
		return errors.New("v1_token_lifetime must not be negative")
	case f.V1ExpiresIn < 0:
		return errors.New("v1_expires_in must not be negative")
	case f.V1ExpireAfter < 0:
		return errors.New("v1_expire_after must not be negative")
	}
	for _, t := range []struct {
		name string
		f    *TimesFault
	}{{"v1_expired_token", f.V1ExpiredToken}, {"v1_transaction_exist", f.V1TransactionExist},
		{"v1_unknown_id", f.V1UnknownID}} {
		if t.f != nil && t.f.Times < 0 {
			return fmt.Errorf("%s.times must not be negative", t.name)
		}
	}
	if n := f.V1NotAllowed; n != nil {
		switch {
		case n.Times < 0:
			return errors.New("v1_not_allowed.times must not be negative")
		case !n.Login && !n.Calls:
			return errors.New("v1_not_allowed needs login or calls")
		}
	}
	for code, status := range f.V1ErrorStatus {
		if status < 100 || status > 599 {
			return fmt.Errorf("v1_error_status: %d for code %d is not an HTTP status", status, code)
		}
	}
	if m := f.V1Redirect; m != nil && m.Method != "" && m.Method != http.MethodGet && m.Method != http.MethodPost {
		return errors.New("v1_redirect.method must be GET or POST")
	}
	for _, st := range f.V1NotifyStatuses {
		if !slices.Contains([]string{V1StatusPending, V1StatusExpired, V1StatusSuccess, V1StatusFailed}, st) {
			return fmt.Errorf("v1_notify_statuses: %q is not one of PENDING, EXPIRED, SUCCESS, FAILED", st)
		}
	}
	return nil
}
