package cinetpay

import "strings"

// DefaultEndpoint is the base URL of CinetPay's live Checkout v2 API.
const DefaultEndpoint = "https://api-checkout.cinetpay.com"

// PathPayment is the path, under the endpoint, that starts a payment.
const PathPayment = "/v2/payment"

// PathCheck is the path, under the endpoint, that reports a payment's status.
const PathCheck = "/v2/payment/check"

// Codes of CinetPay's answers that this package branches on. They are the
// body's "code" field, always compared as strings.
const (
	// CodeCreated is /v2/payment's success code.
	CodeCreated = "201"
	// CodeSuccess is /v2/payment/check's code for an accepted payment.
	CodeSuccess = "00"
	// CodeTooManyRequests is CinetPay's rate-limit code, on both endpoints.
	CodeTooManyRequests = "429"
)

// Values of data.status in a /v2/payment/check answer. Other values exist
// and are treated as pending.
const (
	// StatusAccepted: the customer paid (with code "00" only).
	StatusAccepted = "ACCEPTED"
	// StatusRefused: the payment failed or was cancelled; a late success
	// remains possible.
	StatusRefused = "REFUSED"
	// StatusWaitingForCustomer: the customer has not paid yet.
	StatusWaitingForCustomer = "WAITING_FOR_CUSTOMER"
)

// ValidCurrency reports whether c is a currency CinetPay Checkout v2 accepts:
// XOF, XAF, CDF, GNF or USD, exactly, in upper case.
func ValidCurrency(c string) bool {
	switch c {
	case "XOF", "XAF", "CDF", "GNF", "USD":
		return true
	}
	return false
}

// RequiresMultipleOf5 reports whether amounts in currency c must be a
// multiple of 5 (XOF, XAF, CDF and GNF).
func RequiresMultipleOf5(c string) bool {
	switch c {
	case "XOF", "XAF", "CDF", "GNF":
		return true
	}
	return false
}

// ValidChannels reports whether s is exactly one of the channel values
// CinetPay accepts: ALL, MOBILE_MONEY, CREDIT_CARD or WALLET.
func ValidChannels(s string) bool {
	switch s {
	case "ALL", "MOBILE_MONEY", "CREDIT_CARD", "WALLET":
		return true
	}
	return false
}

// ValidLang reports whether s is a language of CinetPay's payment page:
// "fr" or "en".
func ValidLang(s string) bool {
	return s == "fr" || s == "en"
}

// IsCinetPayHost reports whether host, a host name without a port, is
// cinetpay.com or one of its subdomains. The comparison ignores ASCII case
// and one trailing dot; anything that is not a plain ASCII host name
// (a port, an empty label, non-ASCII letters) is refused.
func IsCinetPayHost(host string) bool {
	host = strings.TrimSuffix(host, ".")
	const base = "cinetpay.com"
	if len(host) < len(base) {
		return false
	}
	b := make([]byte, len(host))
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.':
		default:
			return false
		}
		b[i] = c
	}
	h := string(b)
	if h == base {
		return true
	}
	prefix, ok := strings.CutSuffix(h, "."+base)
	if !ok {
		return false
	}
	for _, label := range strings.Split(prefix, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
	}
	return true
}

// codeMessages holds the codes documented for /v2/payment and
// /v2/payment/check. Where CinetPay documents a message it is given as
// CinetPay spells it (including "SUCCES" and "INSUFFISENT_BALANCE"); where
// only a meaning is documented, a short lower-case description is given.
var codeMessages = map[string]string{
	// /v2/payment
	"201":  "CREATED",
	"608":  "MINIMUM_REQUIRED_FIELDS",
	"609":  "AUTH_NOT_FOUND",
	"613":  "ERROR_SITE_ID_NOTVALID",
	"624":  "error processing request",
	"403":  "forbidden",
	"429":  "TOO_MANY_REQUEST",
	"1010": "missing User-Agent",

	// /v2/payment/check
	"00":  "SUCCES",
	"600": "PAYMENT_FAILED",
	"602": "INSUFFISENT_BALANCE",
	"603": "SERVICE_UNAVAILABLE",
	"604": "OTP_CODE_ERROR",
	"606": "INCORRECT_SETTINGS",
	"623": "WAITING_CUSTOMER_TO_VALIDATE",
	"627": "TRANSACTION_CANCEL",
	"635": "phone number not found",
	"636": "phone number not supported",
	"641": "ERROR_AMOUNT_TOO_LOW",
	"642": "ERROR_AMOUNT_TOO_HIGH",
	"662": "WAITING_CUSTOMER_PAYMENT",
	"663": "WAITING_CUSTOMER_OTP_CODE",
	"664": "WAITING_CUSTOMER_PAYMENT_AT_OPERATOR_SIDE",
	"804": "OPERATOR_UNAVAILABLE",
	"807": "amount or count limit reached",
	"808": "amount or count limit reached",
	"809": "amount or count limit reached",
	"810": "amount or count limit reached",
	"811": "amount or count limit reached",
	"812": "amount or count limit reached",
}

// CodeMessage returns the message documented for a /v2/payment or
// /v2/payment/check code ("609" → "AUTH_NOT_FOUND", "00" → "SUCCES"), or ""
// for a code that is not documented. It is for logs and error messages only:
// decisions are taken on the code itself.
func CodeMessage(code string) string {
	return codeMessages[code]
}

// refusalCodes are the /v2/payment codes after which CinetPay has certainly
// not created the transaction.
var refusalCodes = map[string]bool{
	"608":  true,
	"609":  true,
	"613":  true,
	"624":  true,
	"403":  true,
	"1010": true,
}

// IsRefusalCode reports whether code, in a /v2/payment answer, is a definite
// refusal (608, 609, 613, 624, 403, 1010): nothing was created at CinetPay.
// Any other code but "201" and "429" leaves the outcome unknown.
func IsRefusalCode(code string) bool {
	return refusalCodes[code]
}
