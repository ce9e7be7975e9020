package cinetpay

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
)

// CheckResult is a usable answer of /v2/payment/check.
type CheckResult struct {
	// Code is the body's code: "00" for an accepted payment, an error or
	// waiting code ("627", "662", …) otherwise.
	Code string
	// Message is CinetPay's message ("SUCCES"), informational only.
	Message string
	// APIResponseID is CinetPay's id of the answer.
	APIResponseID string
	// Data is the payment as CinetPay sees it; never nil in a result returned
	// without error.
	Data *PaymentData
}

// PaymentData is the data object of a /v2/payment/check answer. Fields
// CinetPay sent as null or left out are "". Every field but Description and
// Metadata is trimmed of surrounding white space.
type PaymentData struct {
	// Amount is the amount as CinetPay sent it (a JSON string or number);
	// see IntAmount.
	Amount string
	// Currency is the payment's currency ("XOF").
	Currency string
	// Status is "ACCEPTED", "REFUSED", "WAITING_FOR_CUSTOMER", or anything
	// else (to be treated as pending); never empty in a returned result. A
	// status that is not a JSON string makes the answer unusable.
	Status string
	// PaymentMethod is the means of payment ("OM", "MOMO", "FLOOZ", …).
	PaymentMethod string
	// Description is the payment's description.
	Description string
	// Metadata is the metadata given at the start, "" for null.
	Metadata string
	// OperatorID is the operator's transaction reference, "" for null.
	OperatorID string
	// PaymentDate is "2006-01-02 15:04:05", or "" for null or a blank like " ".
	PaymentDate string
	// FundAvailabilityDate is when the funds reach the merchant.
	FundAvailabilityDate string
	// PhoneNumber is the payer's phone number (2021 format), when present.
	PhoneNumber string
	// PhonePrefix is the payer's phone prefix (2021 format), when present.
	PhonePrefix string
}

// wirePaymentData is PaymentData as CinetPay sends it.
type wirePaymentData struct {
	Amount               flexString `json:"amount"`
	Currency             flexString `json:"currency"`
	Status               stringOnly `json:"status"`
	PaymentMethod        flexString `json:"payment_method"`
	Description          flexString `json:"description"`
	Metadata             flexString `json:"metadata"`
	OperatorID           flexString `json:"operator_id"`
	PaymentDate          flexString `json:"payment_date"`
	FundAvailabilityDate flexString `json:"fund_availability_date"`
	PhoneNumber          flexString `json:"phone_number"`
	PhonePrefix          flexString `json:"phone_prefix"`
}

// stringOnly decodes a JSON string as is and any other value (null, a
// number, an object, …) as "": data.status must be a string to be usable.
type stringOnly string

// UnmarshalJSON implements json.Unmarshaler.
func (s *stringOnly) UnmarshalJSON(b []byte) error {
	var v string
	if json.Unmarshal(b, &v) != nil {
		v = ""
	}
	*s = stringOnly(v)
	return nil
}

// decodePaymentData decodes a check answer's data; nil when it is absent,
// null, not an object ("data": [] is seen from PHP APIs) or unreadable.
func decodePaymentData(raw json.RawMessage) *PaymentData {
	if !isObject(raw) {
		return nil
	}
	var w wirePaymentData
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil
	}
	t := func(f flexString) string { return strings.TrimSpace(string(f)) }
	return &PaymentData{
		Amount:               t(w.Amount),
		Currency:             t(w.Currency),
		Status:               strings.TrimSpace(string(w.Status)),
		PaymentMethod:        t(w.PaymentMethod),
		Description:          string(w.Description),
		Metadata:             string(w.Metadata),
		OperatorID:           t(w.OperatorID),
		PaymentDate:          t(w.PaymentDate),
		FundAvailabilityDate: t(w.FundAvailabilityDate),
		PhoneNumber:          t(w.PhoneNumber),
		PhonePrefix:          t(w.PhonePrefix),
	}
}

// IntAmount parses Amount as an exact, non-negative integer: "100" → 100;
// "100.00" and "100.0" → 100. A fraction that is not zero ("100.5"), an empty
// or non-numeric amount, a sign, an exponent or an overflow give false.
func (d *PaymentData) IntAmount() (int64, bool) {
	if d == nil {
		return 0, false
	}
	s := strings.TrimSpace(d.Amount)
	whole, frac, hasDot := strings.Cut(s, ".")
	if !allDigits(whole) {
		return 0, false
	}
	if hasDot {
		if !allDigits(frac) || strings.Trim(frac, "0") != "" {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// CanonicalAmount is Amount in the one form a shop should see: the
// integer in decimal without leading zeros when Amount is an exact integer
// ("5000.00", "5000.0", "05000" → "5000"); a non-integer decimal with its
// leading zeros and trailing fractional zeros removed ("0995.50" → "995.5");
// and, when Amount is no number at all, its trimmed text unchanged, so that
// nothing is silently invented. ok reports whether Amount was a number.
func (d *PaymentData) CanonicalAmount() (s string, ok bool) {
	if d == nil {
		return "", false
	}
	if n, ok := d.IntAmount(); ok {
		return strconv.FormatInt(n, 10), true
	}
	raw := strings.TrimSpace(d.Amount)
	whole, frac, hasDot := strings.Cut(raw, ".")
	if !allDigits(whole) || (hasDot && !allDigits(frac)) {
		return raw, false
	}
	whole = strings.TrimLeft(whole, "0")
	if whole == "" {
		whole = "0"
	}
	frac = strings.TrimRight(frac, "0")
	if frac == "" {
		// an integer too large for int64
		return whole, true
	}
	return whole + "." + frac, true
}

// allDigits reports whether s is one or more ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Verdict is what a check result means for a payment: the module's one verdict,
// engine.Verdict (this API gives only the three below).
type Verdict = engine.Verdict

const (
	// VerdictPending: not decided yet (waiting for the customer, an unknown
	// status, or ACCEPTED without code "00"). Check again later.
	VerdictPending = engine.Pending
	// VerdictAccepted: code "00" and status ACCEPTED. The caller still
	// compares amount and currency with what it started.
	VerdictAccepted = engine.Accepted
	// VerdictRefused: status REFUSED. A late success remains possible.
	VerdictRefused = engine.Refused
)

// Verdict decides on the code and data.status only, never on the message:
// code "00" with status ACCEPTED is VerdictAccepted; status REFUSED is
// VerdictRefused; anything else, including ACCEPTED with another code, is
// VerdictPending.
func (r *CheckResult) Verdict() Verdict {
	if r == nil || r.Data == nil {
		return VerdictPending
	}
	switch {
	case r.Code == CodeSuccess && r.Data.Status == StatusAccepted:
		return VerdictAccepted
	case r.Data.Status == StatusRefused:
		return VerdictRefused
	}
	return VerdictPending
}
