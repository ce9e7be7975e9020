package cinetpayv1

import (
	"net/url"
	"strings"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
)

// CinetPay's API hosts. One host serves every country: the account the
// token was minted for decides the country.
const (
	// LiveEndpoint is the production API.
	LiveEndpoint = "https://" + LiveHost
	// SandboxEndpoint is CinetPay's test API (sk_test_ keys).
	SandboxEndpoint = "https://" + SandboxHost
	// LiveHost is the host name of LiveEndpoint.
	LiveHost = "api.cinetpay.co"
	// SandboxHost is the host name of SandboxEndpoint.
	SandboxHost = "api.cinetpay.net"
)

// Key prefixes. CinetPay's SDKs pick the sandbox for a sk_test_ key and
// production otherwise; the prefix does not always match the account's real
// environment, so the Endpoint can be set explicitly.
const (
	TestKeyPrefix = "sk_test_"
	LiveKeyPrefix = "sk_live_"
)

// Paths under the endpoint.
const (
	// PathLogin exchanges api_key and api_password for a bearer token.
	PathLogin = "/v1/oauth/login"
	// PathPayment starts a payment (POST); PathPayment + "/" + id reports
	// its status (GET).
	PathPayment = "/v1/payment"
)

// DefaultEndpoint returns the endpoint CinetPay's SDKs use for apiKey:
// SandboxEndpoint for a key starting with "sk_test_", LiveEndpoint otherwise.
func DefaultEndpoint(apiKey string) string {
	if IsTestKey(apiKey) {
		return SandboxEndpoint
	}
	return LiveEndpoint
}

// IsTestKey reports whether apiKey starts with "sk_test_".
func IsTestKey(apiKey string) bool { return strings.HasPrefix(apiKey, TestKeyPrefix) }

// IsLiveKey reports whether apiKey starts with "sk_live_".
func IsLiveKey(apiKey string) bool { return strings.HasPrefix(apiKey, LiveKeyPrefix) }

// IsLiveHost reports whether host, a host name without a port, is the
// production API host api.cinetpay.co (ASCII case and one trailing dot
// ignored). Only payments made there are real.
func IsLiveHost(host string) bool {
	h, ok := normalizeHost(host)
	return ok && h == LiveHost
}

// IsCinetPayHost reports whether host, a host name without a port, is one of
// CinetPay's v1 API hosts: api.cinetpay.co or api.cinetpay.net (ASCII case
// and one trailing dot ignored). api.cinetpay.com is not one: it answers
// HTML to v1 calls.
func IsCinetPayHost(host string) bool {
	h, ok := normalizeHost(host)
	return ok && (h == LiveHost || h == SandboxHost)
}

// IsLiveEndpoint reports whether endpoint is https on the production host
// (default port), the only endpoint whose payments are real.
func IsLiveEndpoint(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.User != nil {
		return false
	}
	if p := u.Port(); p != "" && p != "443" {
		return false
	}
	return IsLiveHost(u.Hostname())
}

// paymentURLHosts are the hosts of CinetPay's payment pages, as allowed by
// CinetPay's own front-end SDKs (production, sandbox and .com variants).
var paymentURLHosts = []string{
	"secure.cinetpay.co",
	"secure.cinetpay.net",
	"secure.cinetpay.com",
	"checkout.cinetpay.co",
	"checkout.cinetpay.net",
	"checkout.cinetpay.com",
}

// PaymentURLHosts returns the hosts a payment_url may point to: CinetPay's
// payment pages secure.cinetpay.{co,net,com} and checkout.cinetpay.{co,net,com}.
// The slice is a copy.
func PaymentURLHosts() []string {
	return append([]string(nil), paymentURLHosts...)
}

// IsPaymentURLHost reports whether host, a host name without a port, is one
// of PaymentURLHosts (ASCII case and one trailing dot ignored).
func IsPaymentURLHost(host string) bool {
	h, ok := normalizeHost(host)
	if !ok {
		return false
	}
	for _, a := range paymentURLHosts {
		if h == a {
			return true
		}
	}
	return false
}

// PaymentURLAllowed reports whether paymentURL, the payment_url of an
// answer from endpoint, may be shown to a customer: an absolute https URL on
// one of PaymentURLHosts with the default port; or, when endpoint's host is
// a loopback address or "localhost" (a local sandbox), an http or https URL
// on exactly endpoint's host and port. A URL with user information is never
// allowed. CinetPay's SDKs advise using payment_url as returned, never
// rebuilding it; its path is not checked.
func PaymentURLAllowed(endpoint, paymentURL string) bool {
	p, err := url.Parse(paymentURL)
	if err != nil || p.User != nil || p.Opaque != "" || p.Host == "" {
		return false
	}
	if p.Scheme == "https" && IsPaymentURLHost(p.Hostname()) {
		if port := p.Port(); port == "" || port == "443" {
			return true
		}
	}
	e, err := url.Parse(endpoint)
	if err != nil || e.Host == "" || !engine.IsLoopbackHost(e.Hostname()) {
		return false
	}
	return (p.Scheme == "http" || p.Scheme == "https") && strings.EqualFold(p.Host, e.Host)
}

// normalizeHost lower-cases an ASCII host name and removes one trailing dot;
// ok is false for anything that is not a plain ASCII host name (a port, a
// path, user information, non-ASCII letters, an empty label).
func normalizeHost(host string) (string, bool) {
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > 253 {
		return "", false
	}
	b := []byte(host)
	for i, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.':
		default:
			return "", false
		}
	}
	h := string(b)
	for label := range strings.SplitSeq(h, ".") {
		if label == "" {
			return "", false
		}
	}
	return h, true
}

// Codes of CinetPay's v1 answers: the body's "code", the same list for API
// results and transaction statuses. The HTTP status of an answer is
// separate and not reliable.
const (
	// CodeOK: the API call succeeded (not a transaction status).
	CodeOK = 200
	// CodeSuccess: the transaction succeeded. Final.
	CodeSuccess = 100
	// CodeOperationError: "an error occurred"; the outcome is unknown.
	CodeOperationError = -1
	// CodeNotFound: no such resource (an unknown transaction id).
	CodeNotFound = 404
	// CodeInvalidToken: the bearer token is invalid.
	CodeInvalidToken = 1002
	// CodeExpiredToken: the bearer token has expired.
	CodeExpiredToken = 1003
	// CodeInvalidParams: the request's parameters are invalid.
	CodeInvalidParams = 1004
	// CodeInvalidCredentials: api_key or api_password is wrong.
	CodeInvalidCredentials = 1005
	// CodeTransactionExist: the merchant_transaction_id is already used.
	// Final.
	CodeTransactionExist = 1200
	// CodeInitiated: the transaction waits for the customer.
	CodeInitiated = 2001
	// CodePending: the customer has started paying.
	CodePending = 2002
	// CodeExpired: the customer did not confirm in time. Not final: CinetPay
	// documents it as non-final.
	CodeExpired = 2003
	// CodeOTPError: wrong OTP code.
	CodeOTPError = 2004
	// CodeInsufficientBalance: insufficient balance. Final.
	CodeInsufficientBalance = 2005
	// CodeUserNotFound: unknown user.
	CodeUserNotFound = 2006
	// CodeUserIsBlocked: blocked user.
	CodeUserIsBlocked = 2007
	// CodeOTPExpired: the OTP code has expired.
	CodeOTPExpired = 2008
	// CodeFailed: the payment failed. Final.
	CodeFailed = 2010
	// CodeNotAllowed: the caller's IP address is not in the account's IP
	// whitelist (seen on the login itself).
	CodeNotAllowed = 2011
)

// codeNames are the status words CinetPay pairs with each code.
var codeNames = map[int]string{
	CodeOK:                  "OK",
	CodeSuccess:             "SUCCESS",
	CodeOperationError:      "OPERATION_ERROR",
	CodeNotFound:            "NOT_FOUND",
	CodeInvalidToken:        "INVALID_TOKEN",
	CodeExpiredToken:        "EXPIRED_TOKEN",
	CodeInvalidParams:       "INVALID_PARAMS",
	CodeInvalidCredentials:  "INVALID_CREDENTIALS",
	CodeTransactionExist:    "TRANSACTION_EXIST",
	CodeInitiated:           "INITIATED",
	CodePending:             "PENDING",
	CodeExpired:             "EXPIRED",
	CodeOTPError:            "OTP_ERROR",
	CodeInsufficientBalance: "INSUFFICIENT_BALANCE",
	CodeUserNotFound:        "USER_NOT_FOUND",
	CodeUserIsBlocked:       "USER_IS_BLOCKED",
	CodeOTPExpired:          "OTP_EXPIRED",
	CodeFailed:              "FAILED",
	CodeNotAllowed:          "NOT_ALLOWED",
}

// CodeName returns the status word of a documented code (1005 →
// "INVALID_CREDENTIALS", 100 → "SUCCESS"), or "" for an undocumented one. It
// is for logs: decisions are taken on the code itself.
func CodeName(code int) string {
	return codeNames[code]
}

// Final reports whether code is one of the statuses CinetPay's SDKs call
// final: 100 SUCCESS, 2010 FAILED, 2005 INSUFFICIENT_BALANCE and 1200
// TRANSACTION_EXIST. 2003 EXPIRED is not final.
func Final(code int) bool {
	switch code {
	case CodeSuccess, CodeFailed, CodeInsufficientBalance, CodeTransactionExist:
		return true
	}
	return false
}
