// Package sandbox is a local imitation of CinetPay Checkout v2, for
// development, demos and tests. It is never part of production builds: the
// root module does not import it, so `xcaddy build --with <module>` leaves it
// out; cmd/caddy imports it explicitly.
//
// A [Server] is a plain [net/http.Handler]; the Caddy module
// http.handlers.cinetpay_sandbox (directive cinetpay_sandbox, see [Handler])
// wraps one. Paths are relative to the site root:
//
//	POST /v2/payment                      start a payment (CinetPay's checks and codes)
//	POST /v2/payment/check                a payment's status
//	GET  /pay/<token>                     the payment page: #accept, #refuse, #wait
//	POST /pay/<token>                     the customer's choice (form field action=accept|refuse|wait)
//	GET|DELETE /_sandbox/requests         the API calls received / clear them
//	GET  /_sandbox/transactions[/<id>]    transactions as the sandbox holds them
//	POST /_sandbox/transactions/<id>/accept|refuse|wait|notify|pay_late
//	GET|PUT|DELETE /_sandbox/faults       fault knobs (see [Faults])
//	POST /_sandbox/reset                  forget transactions, requests and faults
//
// Only loopback clients (by the connection's remote address; a Unix socket
// counts as local) are answered unless Config.AllowRemote is set; others get
// 403.
//
// # Checks of POST /v2/payment, in order
//
//  1. no User-Agent → code 1010 (HTTP 403);
//  2. Content-Type not application/json → code 403 (HTTP 403);
//  3. body unreadable, not a JSON object, or a required field (apikey,
//     site_id, transaction_id, amount, currency, description, notify_url,
//     return_url, channels) missing, empty or of the wrong JSON type → 608;
//  4. apikey unknown, or site_id belonging to another apikey → 609;
//     site_id unknown → 613;
//  5. bad values → 608: transaction_id not only ASCII letters and digits,
//     amount not a JSON integer (12.5, "100", 1e3) or ≤ 0, not a multiple of
//     5 in XOF/XAF/CDF/GNF, unknown currency or channels, lang present and
//     not fr/en, notify_url/return_url not absolute http(s) URLs,
//     description containing one of # / $ _ &, invoice_data not an object or
//     with more than 3 keys, lock_phone_number not a boolean, a customer_*
//     field not a string;
//  6. metadata that is JSON (a JSON object or array, or a string whose text
//     starts with { or [ and parses) → code 403; metadata of another type →
//     608;
//  7. lock_phone_number true with a customer_phone_number that is not
//     8 to 15 digits with an optional leading + → 624;
//  8. transaction_id already used on this site → 608 "transaction_id already
//     used".
//
// site_id may be a JSON string or integer, as the real API accepts both.
//
// # HTTP statuses
//
// Like CinetPay's, they are not reliable; clients must branch on the body's
// code. The sandbox answers: 201 → 200; 608, 609, 613 → 400; 624 → 200 (an
// error with a success status); 403 and 1010 → 403; 429 → 429 with
// Retry-After: 1. /v2/payment/check answers 200 for 00, 627 and 662, and
// 400 for errors without data.
//
// # Sandbox choices where CinetPay's documentation is silent
//
//   - An unknown transaction on /v2/payment/check answers code "605",
//     message "TRANSACTION_NOT_FOUND", with no data.
//   - The 1010 answer is JSON ({"code":"1010","message":"ACCESS_DENIED",…})
//     rather than Cloudflare's HTML page.
//   - Message of 624: "An error occurred while processing the request".
//   - The payment method is always OM; cel_phone_num is a made-up number.
//   - The WAITING_FOR_CUSTOMER notification is sent once per transaction,
//     just before the first decision (accept, refuse or wait); the GET ping
//     of notify_url once per transaction, before the first notification
//     actually sent.
//   - Notifications are retried (3 attempts, 100 ms then 200 ms apart) while
//     the answer is not 200; redirects are not followed.
//   - State is in memory and lost when the server (or the Caddy config) is
//     replaced.
package sandbox
