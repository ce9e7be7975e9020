// Package sandbox is a local imitation of CinetPay Checkout v2 and, beside
// it on the same server, of CinetPay's current API ("API v1", 2026), for
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
//	POST /v1/oauth/login                  v1: a bearer token for an account
//	POST /v1/payment                      v1: start a payment
//	GET  /v1/payment/<id>                 v1: a payment's status
//	GET  /payment/<token>                 v1 payment page (path: Config.V1PagePath)
//	POST /payment/<token>                 the customer's choice (action=accept|refuse|wait|expire)
//	GET|DELETE /_sandbox/requests         the API calls received / clear them
//	GET  /_sandbox/transactions[/<id>]    transactions as the sandbox holds them
//	POST /_sandbox/transactions/<id>/accept|refuse|wait|expire|notify|pay_late
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
//
// # CinetPay's current API (v1)
//
// Merchant accounts ([Account]: api_key sk_test_… or sk_live_…,
// api_password, country) are declared beside the v2 merchants. One
// account is one country: its currency and calling code are the country's
// (CI, BF, ML, SN, TG, NE, BJ: XOF; CM, TD, CG, CF, GA, GQ: XAF; GN: GNF;
// CD: CDF). Every v1 answer is JSON; errors are {code, status,
// description}, the code a JSON number. The environment (sk_live_ or not)
// is only reported.
//
// POST /v1/oauth/login takes {"api_key","api_password"} and answers
// {"code":200,"status":"OK","access_token","token_type":"bearer",
// "expires_in":86400}: a random opaque token (CinetPay's are JWTs; treat
// them as opaque) valid 24 h, bound to the account. A missing field → 1004;
// unknown key or wrong password → 1005 INVALID_CREDENTIALS "Bad
// credentials". Calls to the other endpoints need "Authorization: Bearer
// <token>": missing or unknown → 1002 INVALID_TOKEN; past its lifetime →
// 1003 EXPIRED_TOKEN.
//
// POST /v1/payment checks, in order, and answers 1004 INVALID_PARAMS with a
// description naming the field at the first failure: Content-Type
// application/json and a JSON object body; currency (the account
// country's); merchant_transaction_id (1 to 30 characters); amount (a JSON
// integer, 100 to 2,500,000); lang (fr or en); designation (1 to 255
// characters); client_email (an e-mail address); client_first_name and
// client_last_name (2 to 255 characters); success_url, failed_url and
// notify_url (at most 120 characters, http:// or https://); then the
// optional channel (PUSH, OTP or QRCODE), payment_method (ending with
// _<country>, such as OM_CI), client_phone_number (E.164, starting with the
// country's calling code), direct_pay (a boolean; true needs
// client_phone_number and payment_method) and otp_code (4 to 6 digits).
// Every required field must be a non-empty string (amount excepted). A
// merchant_transaction_id already used by the account → 1200
// TRANSACTION_EXIST "La transaction existe déjà"; a refused call does not
// reserve its id. The answer: {"code":200,"status":"OK","payment_token",
// "notify_token","transaction_id","merchant_transaction_id","payment_url",
// "details":{"code":2001,"status":"INITIATED","message":"Veuillez cliquer
// sur le lien pour continuer le paiement","must_be_redirected":true}}, with
// transaction_id CinetPay's own (32 lower-case hex digits), notify_token a
// random secret per payment, and payment_url on the sandbox's page.
//
// GET /v1/payment/<id> finds the account's transaction by
// merchant_transaction_id or CinetPay's transaction_id and answers
// {code, status, merchant_transaction_id, transaction_id,
// user{name,email,phone_number}}, with no amount nor currency: 2001
// INITIATED, 2002 PENDING (the customer opened the page or chose wait), 100
// SUCCESS, 2010 FAILED, 2003 EXPIRED (not final: pay_late may still make it
// SUCCESS). An unknown id, or a transaction of another account → HTTP 422
// {"code":404,"status":"NOT_FOUND","description":"Not found"}.
//
// The payment page offers accept (SUCCESS), refuse (FAILED), wait
// (PENDING: the customer stays on the page) and expire (EXPIRED). After
// accept the browser is sent to success_url, after refuse or expire to
// failed_url.
//
// Reaching SUCCESS or FAILED POSTs {"notify_token",
// "merchant_transaction_id","transaction_id","user":{"name","email",
// "phone_number"}} as application/json to notify_url, with no signature
// (CinetPay's v1 has none) and no GET ping. The Notify fault knobs apply;
// bad_token sends a wrong notify_token.
//
// # Sandbox choices where CinetPay's v1 documentation is silent
//
// Most can be changed with a fault knob (see [Faults], the v1_* knobs).
//
//   - HTTP statuses of errors (v1_error_status): 401 for 1002, 1003 and
//     1005; 422 for 1004 and 404 (404 is the one measured on CinetPay);
//     400 for 1200; 403 for 2011; 429 for the rate limit; 400 otherwise.
//     Successful answers, whatever the payment's state, are 200.
//   - 1004 is a top-level error, not an OK envelope with the error in
//     details (v1_errors_in_details); its description is the sandbox's.
//   - Tokens live 24 h (v1_token_lifetime, v1_expires_in); a new login
//     does not revoke older tokens; tokens survive Reset.
//   - The status endpoint does not look payment_tokens up
//     (v1_status_by_token).
//   - Opening the payment page turns INITIATED into PENDING. Transactions
//     never expire by themselves (v1_expire_after).
//   - The browser goes back with a plain GET (303 See Other) to the URL
//     exactly as given (v1_redirect: POST form, appended ids).
//   - Only SUCCESS and FAILED are notified (v1_notify_statuses), with no
//     GET ping (v1_notify_ping); notifications are retried as v2's are (3
//     attempts while the answer is not 200); the Content-Type is
//     application/json. A notification carries the same JSON whatever the
//     state (v1 notifications carry no state).
//   - user.name is client_last_name and client_first_name ("Doe John", as
//     CinetPay's examples show); user.phone_number is client_phone_number or
//     a made-up number of the country.
//   - direct_pay is checked but not simulated: the customer always goes
//     through the payment page (must_be_redirected is true), as CinetPay
//     answers for an account without direct mode.
//   - Unknown body fields are ignored; any User-Agent is accepted; the
//     amount need not be a multiple of 5.
//   - The rate_limit knob counts v1 calls too, answered 429
//     TOO_MANY_REQUESTS with Retry-After: 1 (no v1 rate limit is known).
//   - /v1/transfer and /v1/balances are not imitated (HTTP 404).
//   - The request log masks secrets: api_password values (and the
//     configured passwords) become "****", Authorization headers keep their
//     scheme and the token's last 4 characters; logs name accounts by their
//     masked api_key and never show a token or password.
package sandbox
