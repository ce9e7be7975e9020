// Package cinetpay is a small client for CinetPay Checkout v2
// (https://api-checkout.cinetpay.com), written with the standard library and
// this repository's plain-Go packages. It knows nothing about Caddy: the HTTP
// handler of this repository and the sandbox both build on it, and [Provider]
// is Checkout v2 as the payment engine (package engine) uses it.
//
// A CinetPay payment has three steps, and this package covers each of them:
//
//  1. Start. [Client.InitPayment] POSTs a [PaymentRequest] to /v2/payment and,
//     when CinetPay answers code "201" with a payment token and URL, returns a
//     [PaymentStart]; the customer is then sent to PaymentStart.PaymentURL.
//  2. Notify. CinetPay POSTs form-encoded notifications to the merchant's
//     notify_url after each status change. [ParseNotification] reads such a body
//     (never the query string) and [ValidXToken] checks its x-token header, an
//     HMAC-SHA256 over 16 fields ([XTokenFields]) keyed with the merchant's
//     secret key. A notification only says "something changed": it never
//     proves a payment.
//  3. Check. [Client.CheckPayment] asks /v2/payment/check for the status of a
//     transaction. Its [CheckResult] is the only thing a payment decision may
//     rest on, and [CheckResult.Verdict] turns it into accepted, refused or
//     pending.
//
// # Decide on codes, never on messages
//
// CinetPay's answers carry a code, a message and (for checks) data.status.
// This package decides on the body's code and on data.status only. The HTTP
// status is not reliable (CinetPay sends errors with HTTP 200 and successes
// with other statuses), and the message text is informational: the API spells
// it "SUCCES" while its own 2021 guide compared "SUCCESS". A payment is
// accepted only when the code is "00" and data.status is "ACCEPTED"; any
// status other than "ACCEPTED" or "REFUSED" is pending.
//
// # Errors
//
// Both API calls return either a usable answer or an [*Error] whose [Outcome]
// tells the caller what may have happened: [OutcomeRefused] (a definite
// refusal, nothing was created), [OutcomeRateLimited] (CinetPay's 429) or
// [OutcomeUnknown] (a timeout, a network error, a 5xx or an unreadable answer:
// the call may have taken effect). Error messages are short and never contain
// the API key, the request or the raw response body, so they can be logged
// and shown.
package cinetpay
