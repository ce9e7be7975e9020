package sandbox

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// Paths of CinetPay's current API (v1).
const (
	v1PathLogin   = "/v1/oauth/login"
	v1PathPayment = "/v1/payment"

	defaultV1PagePath = "/payment"
)

// Prefixes of v1 api_keys: sk_test_ for the sandbox environment, sk_live_
// for production.
const (
	KeyPrefixTest = "sk_test_"
	KeyPrefixLive = "sk_live_"
)

// Account is one merchant account of CinetPay's current API (v1): the
// api_key and api_password that POST /v1/oauth/login takes, and the
// account's country. One account is one country: its payments must be in
// that country's currency, and phone numbers must carry its calling code.
type Account struct {
	// APIKey is the account's api_key (sk_test_… or sk_live_…).
	APIKey string `json:"api_key,omitempty"`
	// APIPassword is the account's api_password.
	APIPassword string `json:"api_password,omitempty"`
	// Country is the account's country, an ISO 3166 code in upper case:
	// CI, BF, ML, SN, TG, GN, CM, BJ, CD, NE, TD, CG, CF, GA or GQ.
	Country string `json:"country,omitempty"`
}

// Environment is "live" for an api_key starting with sk_live_, "test"
// otherwise. The sandbox treats both alike and only reports it.
func (a Account) Environment() string {
	if strings.HasPrefix(a.APIKey, KeyPrefixLive) {
		return "live"
	}
	return "test"
}

// v1Country is what a country imposes on v1 payments.
type v1Country struct {
	currency    string
	callingCode string   // without +
	methods     []string // payment_method codes known to CinetPay's JS SDK
}

// v1Countries are the countries of CinetPay's v1 accounts.
var v1Countries = map[string]v1Country{
	"CI": {"XOF", "225", []string{"OM_CI", "MOOV_CI", "MTN_CI", "WAVE_CI"}},
	"BF": {"XOF", "226", []string{"OM_BF", "MOOV_BF", "WAVE_BF"}},
	"ML": {"XOF", "223", []string{"OM_ML", "MOOV_ML"}},
	"SN": {"XOF", "221", []string{"OM_SN", "FREE_SN", "EXPRESSO_SN", "WAVE_SN"}},
	"TG": {"XOF", "228", []string{"MOOV_TG", "TMONEY_TG"}},
	"GN": {"GNF", "224", []string{"OM_GN", "MTN_GN"}},
	"CM": {"XAF", "237", []string{"OM_CM", "MTN_CM"}},
	"BJ": {"XOF", "229", []string{"MOOV_BJ", "MTN_BJ"}},
	"CD": {"CDF", "243", []string{"OM_CD", "AIRTEL_CD", "MPESA_CD", "AFRICELL_CD"}},
	"NE": {"XOF", "227", []string{"AIRTEL_NE", "MOOV_NE", "ZAMANI_NE"}},
	"TD": {"XAF", "235", nil},
	"CG": {"XAF", "242", nil},
	"CF": {"XAF", "236", nil},
	"GA": {"XAF", "241", nil},
	"GQ": {"XAF", "240", nil},
}

// v1CountryList lists the country codes, for error messages.
const v1CountryList = "CI, BF, ML, SN, TG, GN, CM, BJ, CD, NE, TD, CG, CF, GA, GQ"

// validKeyPrefix reports whether key starts with sk_test_ or sk_live_.
func validKeyPrefix(key string) bool {
	return strings.HasPrefix(key, KeyPrefixTest) || strings.HasPrefix(key, KeyPrefixLive)
}

// Codes of the v1 API: the body's "code", a JSON number.
const (
	V1CodeOK                 = 200  // the call succeeded (not a payment state)
	V1CodeSuccess            = 100  // SUCCESS: paid, final
	V1CodeOperationError     = -1   // OPERATION_ERROR
	V1CodeNotFound           = 404  // NOT_FOUND: unknown transaction
	V1CodeInvalidToken       = 1002 // INVALID_TOKEN: bearer token missing or unknown
	V1CodeExpiredToken       = 1003 // EXPIRED_TOKEN: log in again
	V1CodeInvalidParams      = 1004 // INVALID_PARAMS
	V1CodeInvalidCredentials = 1005 // INVALID_CREDENTIALS: wrong api_key or api_password
	V1CodeTransactionExist   = 1200 // TRANSACTION_EXIST: merchant_transaction_id already used
	V1CodeInitiated          = 2001 // INITIATED: waiting for the customer
	V1CodePending            = 2002 // PENDING: the customer started paying
	V1CodeExpired            = 2003 // EXPIRED: the customer never confirmed; not final
	V1CodeFailed             = 2010 // FAILED: final (a late success remains possible)
	V1CodeNotAllowed         = 2011 // NOT_ALLOWED: IP not whitelisted
)

// States of a v1 transaction, as GET /v1/payment/{id} says them.
const (
	V1StatusInitiated = "INITIATED"
	V1StatusPending   = "PENDING"
	V1StatusSuccess   = "SUCCESS"
	V1StatusFailed    = "FAILED"
	V1StatusExpired   = "EXPIRED"
)

// v1StatusWords are the status words of the v1 codes; 405 and 429 are the
// sandbox's own.
var v1StatusWords = map[int]string{
	V1CodeOK: "OK", V1CodeSuccess: V1StatusSuccess, V1CodeOperationError: "OPERATION_ERROR",
	V1CodeNotFound: "NOT_FOUND", V1CodeInvalidToken: "INVALID_TOKEN", V1CodeExpiredToken: "EXPIRED_TOKEN",
	V1CodeInvalidParams: "INVALID_PARAMS", V1CodeInvalidCredentials: "INVALID_CREDENTIALS",
	V1CodeTransactionExist: "TRANSACTION_EXIST", V1CodeInitiated: V1StatusInitiated,
	V1CodePending: V1StatusPending, V1CodeExpired: V1StatusExpired, 2004: "OTP_ERROR",
	2005: "INSUFFICIENT_BALANCE", 2006: "USER_NOT_FOUND", 2007: "USER_IS_BLOCKED", 2008: "OTP_EXPIRED",
	V1CodeFailed: V1StatusFailed, V1CodeNotAllowed: "NOT_ALLOWED",
	http.StatusMethodNotAllowed: "METHOD_NOT_ALLOWED", http.StatusTooManyRequests: "TOO_MANY_REQUESTS",
}

// v1Descriptions are the descriptions of the sandbox's error answers where
// CinetPay's are known (or, for the others, the sandbox's wording).
var v1Descriptions = map[int]string{
	V1CodeOperationError:     "Une erreur s'est produite",
	V1CodeNotFound:           "Not found",
	V1CodeInvalidToken:       "Invalid token",
	V1CodeExpiredToken:       "Token has expired",
	V1CodeInvalidCredentials: "Bad credentials",
	V1CodeTransactionExist:   "La transaction existe déjà",
	V1CodeNotAllowed:         "This Ip is not withlisted", // sic, as CinetPay answers
}

// v1StatusCodes are the codes of the transaction states.
var v1StatusCodes = map[string]int{
	V1StatusInitiated: V1CodeInitiated, V1StatusPending: V1CodePending, V1StatusSuccess: V1CodeSuccess,
	V1StatusFailed: V1CodeFailed, V1StatusExpired: V1CodeExpired,
}

// V1Details is what only v1 transactions have.
type V1Details struct {
	// Account is the account's api_key, masked ("sk_test_…9f3a").
	Account string `json:"account"`
	// Country is the account's country.
	Country string `json:"country"`
	// Environment is "test" or "live", from the api_key's prefix.
	Environment string `json:"environment"`
	// CinetPayTransactionID is CinetPay's transaction_id: 32 lower-case hex
	// digits.
	CinetPayTransactionID string `json:"cinetpay_transaction_id"`
	// NotifyToken is the per-payment secret that notifications carry.
	NotifyToken string `json:"notify_token"`
	// SuccessURL and FailedURL are where the payment page sends the browser.
	SuccessURL string `json:"success_url"`
	FailedURL  string `json:"failed_url"`
	// DirectPay is the request's direct_pay. The sandbox has no direct
	// mode: the customer always goes through the payment page.
	DirectPay bool `json:"direct_pay,omitempty"`
	// User is the payer as status answers and notifications report it.
	User V1User `json:"user"`
}

// V1User is the payer in v1 status answers and notifications: name is
// client_last_name and client_first_name, as CinetPay's examples show
// ("Doe John"); phone_number is client_phone_number or, when none was
// sent, a made-up number of the account's country.
type V1User struct {
	Name        string `json:"name"`
	Email       string `json:"email"`
	PhoneNumber string `json:"phone_number"`
}

// v1Session is a bearer token minted by a login.
type v1Session struct {
	key     string // the account's api_key
	expires time.Time
}

// v1ErrorBody is the v1 error shape.
type v1ErrorBody struct {
	Code        int    `json:"code"`
	Status      string `json:"status"`
	Description string `json:"description"`
}

func v1StatusWord(code int) string {
	if w, ok := v1StatusWords[code]; ok {
		return w
	}
	return "ERROR"
}

// v1HTTPStatus is the HTTP status of a v1 error answer with this code.
func (s *Server) v1HTTPStatus(code int) int {
	s.mu.Lock()
	st, ok := s.faults.V1ErrorStatus[code]
	s.mu.Unlock()
	if ok {
		return st
	}
	switch code {
	case V1CodeInvalidToken, V1CodeExpiredToken, V1CodeInvalidCredentials:
		return http.StatusUnauthorized
	case V1CodeInvalidParams, V1CodeNotFound:
		return http.StatusUnprocessableEntity
	case V1CodeNotAllowed:
		return http.StatusForbidden
	case http.StatusTooManyRequests:
		return http.StatusTooManyRequests
	}
	return http.StatusBadRequest
}

// v1Error is a v1 error answer; s.mu not held.
func (s *Server) v1Error(code int, description string) apiAnswer {
	b, _ := json.Marshal(v1ErrorBody{code, v1StatusWord(code), description})
	a := apiAnswer{status: s.v1HTTPStatus(code), code: strconv.Itoa(code), contentType: "application/json", body: b}
	if code == http.StatusTooManyRequests {
		a.header = http.Header{"Retry-After": {"1"}}
	}
	return a
}

// v1Std is the v1 error answer of code with its usual description.
func (s *Server) v1Std(code int) apiAnswer {
	return s.v1Error(code, v1Descriptions[code])
}

// v1FaultAnswer is the answer of an APIFault's Code on v1.
func (s *Server) v1FaultAnswer(code, description string) apiAnswer {
	n, _ := strconv.Atoi(code) // Faults.Validate checked it is an integer
	if d, ok := v1Descriptions[n]; ok {
		description = d
	}
	return s.v1Error(n, description)
}

// v1OK is a successful v1 answer whose body's code is code.
func v1OK(code int, v any) apiAnswer {
	b, _ := json.Marshal(v)
	return apiAnswer{status: http.StatusOK, code: strconv.Itoa(code), contentType: "application/json", body: b}
}

// serveV1 serves /v1/...: the three endpoints of the v1 API.
func (s *Server) serveV1(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	rawID, _ := strings.CutPrefix(r.URL.EscapedPath(), v1PathPayment+"/")
	switch {
	case p == v1PathLogin:
		s.v1Serve(w, r, http.MethodPost, v1PathLogin, "v1_login", &s.faults.V1Login, s.v1Login)
	case p == v1PathPayment:
		s.v1Serve(w, r, http.MethodPost, v1PathPayment, "v1_payment", &s.faults.V1Payment, s.v1CreatePayment)
	case strings.HasPrefix(p, v1PathPayment+"/") && rawID != "" && !strings.Contains(rawID, "/"):
		id, err := url.PathUnescape(rawID)
		if err != nil {
			id = rawID
		}
		s.v1Serve(w, r, http.MethodGet, v1PathPayment+"/"+rawID, "v1_status", &s.faults.V1Status,
			func(r *http.Request, body []byte, readErr error, rec *Request) apiAnswer {
				return s.v1PaymentStatus(r, id, rec)
			})
	default:
		writeJSON(w, http.StatusNotFound, v1ErrorBody{V1CodeNotFound, "NOT_FOUND",
			"the sandbox has no such endpoint (it serves /v1/oauth/login, /v1/payment and /v1/payment/{id})"})
	}
}

// v1Serve records a v1 call, applies the rate limit and the endpoint's
// fault (in slot), and answers with handle's answer otherwise.
func (s *Server) v1Serve(w http.ResponseWriter, r *http.Request, method, path, faultName string, slot **APIFault,
	handle func(*http.Request, []byte, error, *Request) apiAnswer) {
	if r.Method != method {
		w.Header().Set("Allow", method)
		writeJSON(w, http.StatusMethodNotAllowed, v1ErrorBody{http.StatusMethodNotAllowed,
			v1StatusWord(http.StatusMethodNotAllowed), "use " + method})
		return
	}
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	rec := s.addV1Request(r, path, body)
	var a apiAnswer
	if s.rateLimited() {
		a = s.v1Error(http.StatusTooManyRequests, "Too many requests, retry later")
		a.fault = "rate_limit"
	} else {
		s.mu.Lock()
		f := take(slot)
		s.mu.Unlock()
		a = s.withFault(r, f, faultName, s.v1FaultAnswer, func() apiAnswer { return handle(r, body, readErr, rec) })
	}
	s.mu.Lock()
	rec.Status, rec.Code, rec.Fault = a.status, a.code, a.fault
	rec.Answered = time.Now()
	s.mu.Unlock()
	a.write(w)
}

// addV1Request records a v1 call as it arrives, with its secrets masked.
func (s *Server) addV1Request(r *http.Request, path string, body []byte) *Request {
	rec := &Request{
		Time:          time.Now(),
		Method:        r.Method,
		Path:          path,
		UserAgent:     r.Header.Get("User-Agent"),
		ContentType:   r.Header.Get("Content-Type"),
		Authorization: maskAuthorization(r.Header.Get("Authorization")),
		Body:          recordedBody(s.maskPasswords(body)),
	}
	var probe struct {
		ID any `json:"merchant_transaction_id"`
	}
	if json.Unmarshal(body, &probe) == nil {
		if id, ok := probe.ID.(string); ok {
			rec.TransactionID = id
		}
	}
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.mu.Unlock()
	return rec
}

var formPasswordRE = regexp.MustCompile(`(api_password=)[^&\s]*`)

// maskPasswords replaces in body the value of a top-level api_password
// (JSON or form-encoded) and any configured password of 6 characters or
// more with "****".
func (s *Server) maskPasswords(body []byte) []byte {
	out := body
	for _, raw := range topLevelValues(body, "api_password") {
		if len(raw) > 2 && raw[0] == '"' {
			out = bytes.ReplaceAll(out, raw, []byte(`"****"`))
		}
	}
	out = formPasswordRE.ReplaceAll(out, []byte("${1}****"))
	for _, a := range s.accounts {
		if len(a.APIPassword) < 6 {
			continue
		}
		if q, err := json.Marshal(a.APIPassword); err == nil {
			out = bytes.ReplaceAll(out, q[1:len(q)-1], []byte("****"))
		}
		out = bytes.ReplaceAll(out, []byte(a.APIPassword), []byte("****"))
	}
	return out
}

// topLevelValues returns the raw values of every member named key of the
// JSON object body (a repeated member included), as written in body.
func topLevelValues(body []byte, key string) [][]byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var out [][]byte
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return out
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return out
		}
		if t == key {
			out = append(out, raw)
		}
	}
	return out
}

// maskTail masks a secret but for its last 4 characters, if it is long
// enough for them not to help guess it.
func maskTail(secret string) string {
	if len(secret) < 12 {
		return "****"
	}
	return "…" + secret[len(secret)-4:]
}

// maskAuthorization masks an Authorization header: "Bearer …3f9a".
func maskAuthorization(h string) string {
	h = strings.TrimSpace(h)
	if h == "" {
		return ""
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok {
		return "****"
	}
	return scheme + " " + maskTail(strings.TrimSpace(token))
}

// maskKey masks an api_key but for its prefix and last 4 characters.
func maskKey(key string) string {
	for _, p := range []string{KeyPrefixTest, KeyPrefixLive} {
		if rest, ok := strings.CutPrefix(key, p); ok {
			return p + maskTail(rest)
		}
	}
	return maskTail(key)
}

// v1Body reads the JSON object of a v1 POST, or answers invalid's error.
func v1Body(r *http.Request, body []byte, readErr error, invalid func(string) apiAnswer) (fieldSet, *apiAnswer) {
	fail := func(description string) (fieldSet, *apiAnswer) {
		a := invalid(description)
		return nil, &a
	}
	if !isJSONContentType(r.Header.Get("Content-Type")) {
		return fail("Content-Type must be application/json")
	}
	if readErr != nil {
		return fail("the body could not be read")
	}
	f, ok := decodeFields(body)
	if !ok {
		return fail("the body must be a JSON object")
	}
	return f, nil
}

// v1TakeNotAllowed takes the v1_not_allowed fault for r, a login (or
// another call), if it applies to it.
func (s *Server) v1TakeNotAllowed(r *http.Request, login bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults.V1NotAllowed
	if f == nil || (login && !f.Login) || (!login && !f.Calls) || (f.IPv6 && !isIPv6(r.RemoteAddr)) {
		return false
	}
	take(&s.faults.V1NotAllowed)
	return true
}

// isIPv6 reports whether addr, a RemoteAddr, is an IPv6 address (an
// IPv4-mapped one is IPv4).
func isIPv6(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.To4() == nil
}

// v1NotAllowed is the 2011 answer of the v1_not_allowed fault.
func (s *Server) v1NotAllowed() apiAnswer {
	a := s.v1Std(V1CodeNotAllowed)
	a.fault = "v1_not_allowed"
	return a
}

// v1Login handles POST /v1/oauth/login.
func (s *Server) v1Login(r *http.Request, body []byte, readErr error, _ *Request) apiAnswer {
	invalid := func(d string) apiAnswer { return s.v1Error(V1CodeInvalidParams, d) }
	f, fail := v1Body(r, body, readErr, invalid)
	if fail != nil {
		return *fail
	}
	key, bad := f.requiredStr("api_key")
	if bad != "" {
		return invalid(bad)
	}
	password, bad := f.requiredStr("api_password")
	if bad != "" {
		return invalid(bad)
	}
	if s.v1TakeNotAllowed(r, true) {
		return s.v1NotAllowed()
	}
	acct, ok := s.accounts[key]
	if !ok || subtle.ConstantTimeCompare([]byte(password), []byte(acct.APIPassword)) != 1 {
		s.logger.Info("sandbox v1 login refused: bad credentials", zap.String("account", maskKey(key)))
		return s.v1Std(V1CodeInvalidCredentials)
	}

	token := randomHex(32)
	now := time.Now()
	s.mu.Lock()
	lifetime := time.Duration(s.faults.V1TokenLifetime)
	if lifetime <= 0 {
		lifetime = 24 * time.Hour
	}
	expiresIn := s.faults.V1ExpiresIn
	if expiresIn <= 0 {
		expiresIn = int((lifetime + time.Second - 1) / time.Second)
	}
	for t, sess := range s.v1sessions { // forget tokens long dead
		if now.Sub(sess.expires) > 24*time.Hour {
			delete(s.v1sessions, t)
		}
	}
	s.v1sessions[token] = &v1Session{key: key, expires: now.Add(lifetime)}
	s.mu.Unlock()
	s.logger.Info("sandbox v1 login", zap.String("account", maskKey(key)),
		zap.String("country", acct.Country), zap.Duration("lifetime", lifetime))
	return v1OK(V1CodeOK, struct {
		Code        int    `json:"code"`
		Status      string `json:"status"`
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}{V1CodeOK, "OK", token, "bearer", expiresIn})
}

// v1Authenticate checks the bearer token of an authenticated call and
// returns its account, or the error answer.
func (s *Server) v1Authenticate(r *http.Request) (Account, *apiAnswer) {
	fail := func(a apiAnswer) (Account, *apiAnswer) { return Account{}, &a }
	if s.v1TakeNotAllowed(r, false) {
		return fail(s.v1NotAllowed())
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return fail(s.v1Error(V1CodeInvalidToken, "Missing bearer token"))
	}
	now := time.Now()
	s.mu.Lock()
	sess := s.v1sessions[token]
	switch {
	case sess == nil:
		s.mu.Unlock()
		return fail(s.v1Std(V1CodeInvalidToken))
	case !now.Before(sess.expires):
		s.mu.Unlock()
		return fail(s.v1Std(V1CodeExpiredToken))
	}
	if take(&s.faults.V1ExpiredToken) != nil {
		sess.expires = now
		s.mu.Unlock()
		a := s.v1Std(V1CodeExpiredToken)
		a.fault = "v1_expired_token"
		return fail(a)
	}
	acct := s.accounts[sess.key]
	s.mu.Unlock()
	return acct, nil
}

var (
	emailRE  = regexp.MustCompile(`^[^\s@]+@[^\s@]+\.[^\s@]+$`)
	e164RE   = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)
	otpRE    = regexp.MustCompile(`^[0-9]{4,6}$`)
	methodRE = regexp.MustCompile(`^[A-Z]+_[A-Z]{2}$`)
)

// v1Channels are the values of channel.
var v1Channels = []string{"PUSH", "OTP", "QRCODE"}

// Limits of POST /v1/payment.
const (
	v1MinAmount = 100
	v1MaxAmount = 2_500_000
	v1MaxID     = 30
	v1MaxURL    = 120
	v1MaxText   = 255
)

// v1InitMessage is details.message of a payment to be made on the page.
const v1InitMessage = "Veuillez cliquer sur le lien pour continuer le paiement"

// v1CreatePayment handles POST /v1/payment.
func (s *Server) v1CreatePayment(r *http.Request, body []byte, readErr error, rec *Request) apiAnswer {
	acct, fail := s.v1Authenticate(r)
	if fail != nil {
		return *fail
	}
	invalid := s.v1Invalid
	f, fail := v1Body(r, body, readErr, invalid)
	if fail != nil {
		return *fail
	}
	country := v1Countries[acct.Country]

	// Each field in turn: presence and type, then value.
	str := f.requiredStr
	length := func(name, v string, lo, hi int) string {
		if n := utf8.RuneCountInString(v); n < lo || n > hi {
			if lo <= 1 {
				return fmt.Sprintf("%s must be at most %d characters", name, hi)
			}
			return fmt.Sprintf("%s must be %d to %d characters", name, lo, hi)
		}
		return ""
	}

	currency, bad := str("currency")
	if bad == "" && currency != country.currency {
		bad = fmt.Sprintf("currency must be %s, the currency of the account's country (%s)", country.currency, acct.Country)
	}
	if bad != "" {
		return invalid(bad)
	}
	txID, bad := str("merchant_transaction_id")
	if bad == "" {
		bad = length("merchant_transaction_id", txID, 1, v1MaxID)
	}
	if bad != "" {
		return invalid(bad)
	}
	if !f.present("amount") {
		return invalid("amount is required")
	}
	rawAmount := string(bytes.TrimSpace(f["amount"]))
	if !integerRE.MatchString(rawAmount) {
		return invalid("amount must be an integer")
	}
	amount, err := strconv.ParseInt(rawAmount, 10, 64)
	if err != nil || amount < v1MinAmount || amount > v1MaxAmount {
		return invalid(fmt.Sprintf("amount must be between %d and %d", v1MinAmount, v1MaxAmount))
	}
	lang, bad := str("lang")
	if bad == "" && lang != "fr" && lang != "en" {
		bad = "lang must be fr or en"
	}
	if bad != "" {
		return invalid(bad)
	}
	designation, bad := str("designation")
	if bad == "" {
		bad = length("designation", designation, 1, v1MaxText)
	}
	if bad != "" {
		return invalid(bad)
	}
	email, bad := str("client_email")
	if bad == "" && !emailRE.MatchString(email) {
		bad = "client_email must be an e-mail address"
	}
	if bad != "" {
		return invalid(bad)
	}
	names := map[string]string{}
	for _, name := range []string{"client_first_name", "client_last_name"} {
		v, bad := str(name)
		if bad == "" {
			bad = length(name, v, 2, v1MaxText)
		}
		if bad != "" {
			return invalid(bad)
		}
		names[name] = v
	}
	urls := map[string]string{}
	for _, name := range []string{"success_url", "failed_url", "notify_url"} {
		v, bad := str(name)
		if bad == "" {
			bad = length(name, v, 1, v1MaxURL)
		}
		if bad == "" {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
				!(strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://")) {
				bad = name + " must be an http:// or https:// URL"
			}
		}
		if bad != "" {
			return invalid(bad)
		}
		urls[name] = v
	}

	// Optional fields.
	channel, ok := f.str("channel")
	if !ok || (f.present("channel") && !slices.Contains(v1Channels, channel)) {
		return invalid("channel must be PUSH, OTP or QRCODE")
	}
	method, ok := f.str("payment_method")
	if !ok {
		return invalid("payment_method must be a string")
	}
	if f.present("payment_method") && (!methodRE.MatchString(method) || !strings.HasSuffix(method, "_"+acct.Country)) {
		return invalid(fmt.Sprintf("payment_method must end with _%s, the account's country", acct.Country))
	}
	phone, ok := f.str("client_phone_number")
	if !ok {
		return invalid("client_phone_number must be a string")
	}
	if f.present("client_phone_number") {
		if !e164RE.MatchString(phone) {
			return invalid("client_phone_number must be an E.164 number, such as +" + country.callingCode + "0707000000")
		}
		if !strings.HasPrefix(phone, "+"+country.callingCode) {
			return invalid(fmt.Sprintf("client_phone_number must start with +%s, the calling code of the account's country (%s)",
				country.callingCode, acct.Country))
		}
	}
	direct := false
	if f.present("direct_pay") && json.Unmarshal(f["direct_pay"], &direct) != nil {
		return invalid("direct_pay must be a boolean")
	}
	if direct && phone == "" {
		return invalid("client_phone_number is required with direct_pay")
	}
	if direct && method == "" {
		return invalid("payment_method is required with direct_pay")
	}
	otp, ok := f.str("otp_code")
	if !ok || (f.present("otp_code") && !otpRE.MatchString(otp)) {
		return invalid("otp_code must be 4 to 6 digits")
	}

	s.mu.Lock()
	rec.TransactionID = txID
	exist := take(&s.faults.V1TransactionExist) != nil
	s.mu.Unlock()
	if exist {
		a := s.v1Std(V1CodeTransactionExist)
		a.fault = "v1_transaction_exist"
		return a
	}

	user := V1User{Name: names["client_last_name"] + " " + names["client_first_name"], Email: email, PhoneNumber: phone}
	if user.PhoneNumber == "" {
		user.PhoneNumber = "+" + country.callingCode + "07" + randomDigits(8)
	}
	tx := &transaction{
		Transaction: Transaction{
			TransactionID: txID,
			Token:         randomHex(32),
			Status:        V1StatusInitiated,
			Amount:        amount,
			Currency:      currency,
			PaidAmount:    amount,
			PaidCurrency:  currency,
			Description:   designation,
			Channels:      channel,
			Lang:          lang,
			NotifyURL:     urls["notify_url"],
			PaymentMethod: method,
			Created:       time.Now().UTC().Truncate(time.Second),
			Notifications: []Notification{},
			V1: &V1Details{
				Account:               maskKey(acct.APIKey),
				Country:               acct.Country,
				Environment:           acct.Environment(),
				CinetPayTransactionID: randomHex(16),
				NotifyToken:           randomHex(20),
				SuccessURL:            urls["success_url"],
				FailedURL:             urls["failed_url"],
				DirectPay:             direct,
				User:                  user,
			},
		},
		v1key: acct.APIKey,
	}
	tx.PaymentURL = s.baseURL(r) + s.cfg.V1PagePath + "/" + tx.Token

	s.mu.Lock()
	key := txKey{acct.APIKey, txID}
	if _, dup := s.v1txs[key]; dup {
		s.mu.Unlock()
		return s.v1Std(V1CodeTransactionExist)
	}
	s.v1txs[key] = tx
	s.v1ids[tx.V1.CinetPayTransactionID] = tx
	s.tokens[tx.Token] = tx
	s.order = append(s.order, tx)
	if d := time.Duration(s.faults.V1ExpireAfter); d > 0 {
		s.scheduleV1Expiry(tx, d)
	}
	s.mu.Unlock()
	s.logger.Info("sandbox v1 payment created", zapTxOf(tx), zapAmount(amount, currency))

	type initDetails struct {
		Code             int    `json:"code"`
		Status           string `json:"status"`
		Message          string `json:"message"`
		MustBeRedirected bool   `json:"must_be_redirected"`
	}
	return v1OK(V1CodeOK, struct {
		Code                  int         `json:"code"`
		Status                string      `json:"status"`
		PaymentToken          string      `json:"payment_token"`
		NotifyToken           string      `json:"notify_token"`
		TransactionID         string      `json:"transaction_id"`
		MerchantTransactionID string      `json:"merchant_transaction_id"`
		PaymentURL            string      `json:"payment_url"`
		Details               initDetails `json:"details"`
	}{V1CodeOK, "OK", tx.Token, tx.V1.NotifyToken, tx.V1.CinetPayTransactionID, txID, tx.PaymentURL,
		initDetails{V1CodeInitiated, V1StatusInitiated, v1InitMessage, true}})
}

// v1Invalid is the 1004 answer of POST /v1/payment: a top-level error, or
// inside a successful envelope under the v1_errors_in_details fault.
func (s *Server) v1Invalid(description string) apiAnswer {
	s.mu.Lock()
	inDetails := s.faults.V1ErrorsInDetails
	s.mu.Unlock()
	if !inDetails {
		return s.v1Error(V1CodeInvalidParams, description)
	}
	type details struct {
		Code    int    `json:"code"`
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	return v1OK(V1CodeOK, struct {
		Code    int     `json:"code"`
		Status  string  `json:"status"`
		Details details `json:"details"`
	}{V1CodeOK, "OK", details{V1CodeInvalidParams, v1StatusWord(V1CodeInvalidParams), description}})
}

// v1StatusBody is the answer of GET /v1/payment/{id}.
type v1StatusBody struct {
	Code                  int    `json:"code"`
	Status                string `json:"status"`
	MerchantTransactionID string `json:"merchant_transaction_id"`
	TransactionID         string `json:"transaction_id"`
	User                  V1User `json:"user"`
}

// v1PaymentStatus handles GET /v1/payment/{id}.
func (s *Server) v1PaymentStatus(r *http.Request, id string, rec *Request) apiAnswer {
	acct, fail := s.v1Authenticate(r)
	if fail != nil {
		return *fail
	}
	s.mu.Lock()
	tx := s.v1txs[txKey{acct.APIKey, id}]
	if t := s.v1ids[id]; tx == nil && t != nil && t.v1key == acct.APIKey {
		tx = t
	}
	if t := s.tokens[id]; tx == nil && s.faults.V1StatusByToken && t != nil && t.v1key == acct.APIKey {
		tx = t
	}
	if tx == nil {
		rec.TransactionID = id
		s.mu.Unlock()
		return s.v1Std(V1CodeNotFound)
	}
	rec.TransactionID = tx.TransactionID
	if take(&s.faults.V1UnknownID) != nil {
		s.mu.Unlock()
		a := s.v1Std(V1CodeNotFound)
		a.fault = "v1_unknown_id"
		return a
	}
	var late []*pendingNotice
	if tx.refused() && tx.late != nil && tx.late.OnCheck {
		late = s.lateAcceptLocked(tx)
	}
	body := v1StatusBody{
		Code:                  v1StatusCodes[tx.Status],
		Status:                tx.Status,
		MerchantTransactionID: tx.TransactionID,
		TransactionID:         tx.V1.CinetPayTransactionID,
		User:                  tx.V1.User,
	}
	s.mu.Unlock()
	if len(late) > 0 {
		s.goAsync(func() {
			for _, n := range late {
				s.deliver(n)
			}
		})
	}
	return v1OK(body.Code, body)
}

// V1LoginCount returns how many POST /v1/oauth/login calls were received,
// whatever they were answered.
func (s *Server) V1LoginCount() int {
	return s.countRequests(func(r *Request) bool { return r.Path == v1PathLogin })
}

// V1PaymentCount returns how many POST /v1/payment calls were received,
// whatever they were answered.
func (s *Server) V1PaymentCount() int {
	return s.countRequests(func(r *Request) bool { return r.Path == v1PathPayment })
}

// V1StatusCount returns how many GET /v1/payment/{id} calls named the v1
// transaction whose merchant_transaction_id is txID (by any of its ids),
// whatever they were answered.
func (s *Server) V1StatusCount(txID string) int {
	return s.countRequests(func(r *Request) bool {
		return strings.HasPrefix(r.Path, v1PathPayment+"/") && r.TransactionID == txID
	})
}

func (s *Server) countRequests(match func(*Request) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if match(r) {
			n++
		}
	}
	return n
}
