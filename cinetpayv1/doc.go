// Package cinetpayv1 is a client for CinetPay's current API, "API v1"
// (https://api.cinetpay.co, sandbox https://api.cinetpay.net), written with
// the standard library and this repository's plain-Go packages. It knows
// nothing about Caddy: the HTTP handler of this repository and the sandbox
// both build on it, and [Provider] is the API as the payment engine (package
// engine) uses it. The legacy Checkout v2 API lives in package cinetpay.
//
// A merchant account has an api_key (sk_live_… or sk_test_…) and an
// api_password, one pair per country. A payment has three steps:
//
//  1. Start. [Client.InitPayment] checks a [PaymentRequest] with
//     [PaymentRequest.Validate], POSTs it to /v1/payment and, when CinetPay
//     answers with a payment_url, returns a [PaymentInit]; the customer is then
//     sent to PaymentInit.PaymentURL (see [PaymentURLAllowed]). The answer
//     also carries a notify_token, a per-payment secret to keep.
//  2. Notify. CinetPay POSTs a JSON notification to notify_url.
//     [ParseNotification] reads it and [ValidNotifyToken] compares its
//     notify_token with the stored one in constant time. A notification has
//     no signature, no status and no amount: it only says "look again".
//  3. Check. [Client.PaymentStatus] GETs /v1/payment/{merchant_transaction_id};
//     its [Status.Verdict] is the only thing a payment decision may rest on.
//
// # Authentication
//
// Every call but the login carries "Authorization: Bearer <token>". The
// Client logs in (POST /v1/oauth/login) when it first needs a token, keeps
// the token in memory until shortly before its expires_in, and lets only one
// login run at a time: concurrent calls wait for it and share its result. A
// failed login is not remembered. When CinetPay answers a call with an
// invalid or expired token (code 1002 or 1003, 1005, or HTTP 401 without a
// code), the Client forgets the token, logs in once more and repeats the call
// once; it never loops.
//
// # Decide on codes, never on messages
//
// CinetPay's answers carry a numeric code (sent as a JSON number or a
// numeric string), a status word and a description. The HTTP status of error
// answers is not documented and has been seen as 200, 400, 401 and 422 for
// the same code, so this package decides on the body's code, and uses the
// HTTP status only when the body has no usable code (401 → token refused,
// 429 → rate limited). Status words and descriptions are never compared.
//
// # Errors
//
// Calls return either a usable answer or an [*APIError] carrying the call
// (Op), the HTTP status, CinetPay's code, status word and a sanitised
// description, and an [Outcome]: [OutcomeRefused] (nothing was created),
// [OutcomeRateLimited] (HTTP 429; nothing was created) or [OutcomeUnknown]
// (the call may have taken effect: a timeout, a network error, a 5xx, an
// unreadable answer, -1 OPERATION_ERROR or 1200 TRANSACTION_EXIST). Error
// texts never contain the api_key, the api_password, a bearer token, a
// notify_token or a raw response body, so they can be logged; wrong
// credentials (1005) and an IP address missing from CinetPay's whitelist
// (2011) say what to fix and can be tested with [ErrInvalidCredentials] and
// [ErrNotAllowed].
package cinetpayv1
