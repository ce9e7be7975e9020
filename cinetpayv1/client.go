package cinetpayv1

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// API is what the rest of the product needs from CinetPay v1: start a
// payment and look up its status. *Client implements it; a test double can
// too.
type API interface {
	// InitPayment starts a payment; see Client.InitPayment.
	InitPayment(ctx context.Context, req *PaymentRequest) (*PaymentInit, error)
	// PaymentStatus reports a payment's status; see Client.PaymentStatus.
	PaymentStatus(ctx context.Context, merchantTransactionID string) (*Status, error)
}

var _ API = (*Client)(nil)

// DefaultUserAgent is the User-Agent sent when Client.UserAgent is empty.
// CinetPay's hosts sit behind a filter that refuses some default user
// agents.
const DefaultUserAgent = "caddy-cinetpay/1"

// DefaultTimeout is the per-call timeout used when Client.Timeout is not
// positive (CinetPay's PHP SDK uses 15 s).
const DefaultTimeout = 15 * time.Second

// Token lifetimes.
const (
	// DefaultTokenLifetime is assumed when a login answer has no usable
	// expires_in, as CinetPay's PHP SDK does.
	DefaultTokenLifetime = 300 * time.Second
	// MaxTokenLifetime caps expires_in (CinetPay documents 86400 s).
	MaxTokenLifetime = 24 * time.Hour
	// maxRefreshMargin is the most a token is given up before it expires;
	// the margin is also at most a tenth of its lifetime.
	maxRefreshMargin = 60 * time.Second
	// maxTokenLength bounds an access_token.
	maxTokenLength = 8192
	// maxRecentTokens is how many past tokens are kept out of errors.
	maxRecentTokens = 8
)

// Client calls CinetPay API v1 for one merchant account. APIKey and
// APIPassword are required. Set its fields before the first call and do not
// change or copy it afterwards; it is safe for concurrent use.
type Client struct {
	// Endpoint is the API's base URL, such as https://api.cinetpay.co or a
	// local sandbox http://127.0.0.1:8080; DefaultEndpoint(APIKey) when
	// empty. A base path and a trailing slash are tolerated.
	Endpoint string
	// APIKey is the account's api_key (sk_live_… or sk_test_…). It is sent
	// in the login body only and never appears in errors.
	APIKey string
	// APIPassword is the account's api_password. It is sent in the login
	// body only and never appears in errors.
	APIPassword string
	// UserAgent is sent with every request; DefaultUserAgent when empty.
	UserAgent string
	// Timeout bounds each HTTP call, answer included (a context deadline);
	// DefaultTimeout when not positive. A login is a call of its own, so an
	// operation that logs in, is refused its token, logs in again and
	// retries may take up to four times Timeout. A shorter deadline of the
	// caller's context wins for the caller.
	Timeout time.Duration
	// IPv4Only makes every connection use IPv4 (network "tcp4"). CinetPay
	// whitelists IP addresses, and a dual-stack server otherwise reaches it
	// over IPv6 and gets 2011 NOT_ALLOWED. With HTTPClient set, its
	// Transport must be nil or an *http.Transport (which is cloned).
	IPv4Only bool
	// HTTPClient sends the requests (tests); a private client when nil.
	// Redirects are never followed, whatever its CheckRedirect says: a
	// redirected login would carry the credentials elsewhere.
	HTTPClient *http.Client

	// mu guards token, expires and flight.
	mu      sync.Mutex
	token   string
	expires time.Time
	flight  *loginFlight

	// recent are the last tokens this Client held, kept out of errors
	// should CinetPay echo one later.
	recent []string

	hcOnce sync.Once
	hc     *http.Client
	hcErr  error

	// now is the clock (tests); time.Now when nil.
	now func() time.Time
}

// loginFlight is a login in progress, shared by every call waiting for it.
type loginFlight struct {
	done  chan struct{}
	token string
	err   *APIError
	// waiters counts the calls that joined the flight (tests).
	waiters int
}

// String describes the Client without its secrets.
func (c *Client) String() string {
	return "cinetpayv1.Client{Endpoint: " + strconv.Quote(c.endpoint()) + "}"
}

// GoString describes the Client without its secrets, for %#v.
func (c *Client) GoString() string { return c.String() }

func (c *Client) endpoint() string {
	if c.Endpoint == "" {
		return DefaultEndpoint(c.APIKey)
	}
	return c.Endpoint
}

func (c *Client) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// secrets returns everything that must never appear in an error: the
// credentials, the cached token, the tokens sent and the secrets carried by
// the answer.
func (c *Client) secrets(a *answer) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	cached := c.token
	s := append([]string{c.APIKey, c.APIPassword, cached}, c.recent...)
	if a != nil {
		s = append(s, a.tokens...)
		s = append(s, a.bodySecrets()...)
	}
	return s
}

// codeError builds the error of a readable answer: code, status word and
// description come from the answer (or from its details, for init), cleaned
// and scrubbed of secrets.
func (c *Client) codeError(op string, a *answer, code int, status, text string, o Outcome, detail string) *APIError {
	sec := c.secrets(a)
	return &APIError{
		Op:          op,
		HTTPStatus:  a.httpStatus,
		Code:        code,
		Status:      scrub(plainWord(status), sec),
		Description: scrub(cleanText(text, maxDescription), sec),
		Outcome:     o,
		RetryAfter:  a.retryAfter,
		detail:      detail,
	}
}

// envelopeError is codeError with the envelope's own code and words.
func (c *Client) envelopeError(op string, a *answer, o Outcome, detail string) *APIError {
	code := 0
	if a.hasCode {
		code = a.code
	}
	return c.codeError(op, a, code, string(a.env.Status), a.env.text(), o, detail)
}

// unreadable builds the error of an answer without a usable code: HTTP 429
// is rate limited, anything else has an unknown outcome.
func (c *Client) unreadable(op string, a *answer) *APIError {
	e := &APIError{Op: op, HTTPStatus: a.httpStatus, Outcome: OutcomeUnknown, RetryAfter: a.retryAfter, Err: a.decodeErr, detail: "unreadable answer"}
	if a.object {
		e.detail = "answer without a code"
	}
	if a.httpStatus == http.StatusTooManyRequests {
		e.Outcome = OutcomeRateLimited
		e.detail = "too many requests"
	}
	return e
}

// send makes one HTTP call and reads the answer in full. token, when not
// empty, is sent as "Authorization: Bearer <token>". A nil *APIError means
// an answer was read (it may still be unreadable or an error code).
func (c *Client) send(ctx context.Context, op, method, path, token string, body []byte) (*answer, *APIError) {
	target, err := c.target(path)
	if err != nil {
		return nil, &APIError{Op: op, Outcome: OutcomeRefused, Err: err, detail: "invalid endpoint"}
	}
	hc, err := c.client()
	if err != nil {
		return nil, &APIError{Op: op, Outcome: OutcomeRefused, Err: err, detail: err.Error()}
	}
	timeout := c.timeout()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(cctx, method, target, rd)
	if err != nil {
		return nil, &APIError{Op: op, Outcome: OutcomeRefused, Err: err, detail: "invalid endpoint"}
	}
	ua := c.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	// CinetPay's SDKs send both on every request, GET included.
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", ua)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}

	resp, err := hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, cctx, op, 0, err, timeout, token)
	}
	defer resp.Body.Close()
	a := &answer{
		httpStatus: resp.StatusCode,
		retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	if token != "" {
		a.tokens = []string{token}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		e := c.transportError(ctx, cctx, op, resp.StatusCode, err, timeout, token)
		e.RetryAfter = a.retryAfter
		return nil, e
	}
	if len(raw) > maxResponseBody {
		a.decodeErr = errors.New("answer larger than " + strconv.Itoa(maxResponseBody) + " bytes")
		return a, nil
	}
	a.decode(raw)
	return a, nil
}

// transportError builds the error of a call that got no complete answer.
// parent is the caller's context, cctx the call's (with the Client's
// timeout).
func (c *Client) transportError(parent, cctx context.Context, op string, status int, err error, timeout time.Duration, token string) *APIError {
	// Keep the cause, not the *url.Error around it, whose text repeats the
	// request URL.
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	e := &APIError{Op: op, HTTPStatus: status, Outcome: OutcomeUnknown, Err: err}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(cctx.Err(), context.DeadlineExceeded) {
		e.timedOut = true
		if parent.Err() == nil {
			e.timeout = timeout
		}
	}
	e.netText = scrub(transportText(err), append(c.secrets(nil), token))
	if e.netText == "" {
		e.netText = "(text withheld)"
	}
	return e
}

// target returns the URL of path (already escaped) under the endpoint.
func (c *Client) target(path string) (string, error) {
	u, err := url.Parse(c.endpoint())
	if err != nil {
		return "", errors.New("cannot parse endpoint")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return "", errors.New("endpoint is not an http(s) base URL")
	}
	return u.Scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/") + path, nil
}

// Shared HTTP clients, so that Clients share connections.
var (
	defaultHTTPClient = &http.Client{Transport: newTransport(false), CheckRedirect: noRedirect}
	ipv4HTTPClient    = &http.Client{Transport: newTransport(true), CheckRedirect: noRedirect}
)

func newTransport(ipv4 bool) *http.Transport {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true, TLSHandshakeTimeout: 10 * time.Second}
	}
	// Go's default of 2 idle connections made every call beyond two at once open a new
	// connection (and a TLS handshake) and close it after
	t.MaxIdleConnsPerHost = maxIdleConns
	if ipv4 {
		forceIPv4(t)
	}
	return t
}

// maxIdleConns is how many idle connections to CinetPay the default clients keep.
const maxIdleConns = 64

// forceIPv4 makes t dial over IPv4 only: "tcp" and "tcp4" become "tcp4",
// any other network is refused. A custom DialContext or DialTLSContext is
// kept and given "tcp4".
func forceIPv4(t *http.Transport) {
	wrap := func(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			if network != "tcp" && network != "tcp4" {
				return nil, errors.New("IPv4Only: refusing network " + strconv.Quote(network))
			}
			return dial(ctx, "tcp4", addr)
		}
	}
	dial := t.DialContext
	if dial == nil {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	t.DialContext = wrap(dial)
	t.Dial = nil //nolint:staticcheck // superseded by DialContext
	if t.DialTLSContext != nil {
		t.DialTLSContext = wrap(t.DialTLSContext)
	}
	t.DialTLS = nil //nolint:staticcheck // superseded by DialTLSContext
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// client returns the HTTP client to send with, built once.
func (c *Client) client() (*http.Client, error) {
	c.hcOnce.Do(func() { c.hc, c.hcErr = buildHTTPClient(c.HTTPClient, c.IPv4Only) })
	return c.hc, c.hcErr
}

func buildHTTPClient(base *http.Client, ipv4 bool) (*http.Client, error) {
	if base == nil {
		if ipv4 {
			return ipv4HTTPClient, nil
		}
		return defaultHTTPClient, nil
	}
	hc := *base
	hc.CheckRedirect = noRedirect
	if ipv4 {
		rt := hc.Transport
		if rt == nil {
			rt = http.DefaultTransport
		}
		t, ok := rt.(*http.Transport)
		if !ok {
			return nil, errors.New("IPv4Only needs an *http.Transport")
		}
		t = t.Clone()
		forceIPv4(t)
		hc.Transport = t
	}
	return &hc, nil
}

// loginBody is the JSON object POSTed to PathLogin.
type loginBody struct {
	APIKey      string `json:"api_key"`
	APIPassword string `json:"api_password"`
}

// tokenAnswer is a login answer. The nested data object is a fallback
// CinetPay's PHP SDK reads too.
type tokenAnswer struct {
	AccessToken stringOnly      `json:"access_token"`
	ExpiresIn   flexString      `json:"expires_in"`
	Data        json.RawMessage `json:"data"`
}

type tokenData struct {
	AccessToken stringOnly `json:"access_token"`
	Token       stringOnly `json:"token"`
	ExpiresIn   flexString `json:"expires_in"`
}

// login POSTs the credentials and returns a token and its lifetime. Its
// errors have Op "login" and Outcome OutcomeRefused (OutcomeRateLimited for
// HTTP 429): the call that needed the token was not sent. Success needs a
// usable access_token and a code that is 200 or absent, whatever the HTTP
// status.
func (c *Client) login(ctx context.Context) (string, time.Duration, *APIError) {
	const op = "login"
	if c.APIKey == "" || c.APIPassword == "" {
		return "", 0, &APIError{Op: op, Outcome: OutcomeRefused, detail: "api_key or api_password not set"}
	}
	body, err := json.Marshal(loginBody{APIKey: c.APIKey, APIPassword: c.APIPassword})
	if err != nil {
		return "", 0, &APIError{Op: op, Outcome: OutcomeRefused, detail: "cannot encode credentials"}
	}
	a, e := c.send(ctx, op, http.MethodPost, PathLogin, "", body)
	if e != nil {
		e.Outcome = OutcomeRefused
		return "", 0, e
	}
	refused := func(e *APIError) (string, time.Duration, *APIError) {
		if e.Outcome != OutcomeRateLimited {
			e.Outcome = OutcomeRefused
		}
		return "", 0, e
	}
	if !a.object {
		return refused(c.unreadable(op, a))
	}
	if !a.okOrNoCode() {
		o, detail := OutcomeRefused, ""
		switch {
		case a.hasCode && a.code == http.StatusTooManyRequests:
			o = OutcomeRateLimited
		case !a.hasCode:
			detail = "answer with an unreadable code"
		}
		return refused(c.envelopeError(op, a, o, detail))
	}
	var w tokenAnswer
	_ = json.Unmarshal(a.body, &w) // the body decoded as an envelope already
	token, expires := string(w.AccessToken), w.ExpiresIn
	if token == "" && isObject(w.Data) {
		var d tokenData
		if json.Unmarshal(w.Data, &d) == nil {
			token, expires = string(d.AccessToken), d.ExpiresIn
			if token == "" {
				token = string(d.Token)
			}
		}
	}
	if !usableToken(token) {
		if !a.hasCode && a.httpStatus == http.StatusTooManyRequests {
			return refused(c.unreadable(op, a))
		}
		// The token may be half-usable: keep it out of the error.
		a.tokens = append(a.tokens, token)
		return refused(c.envelopeError(op, a, OutcomeRefused, "no usable access_token"))
	}
	return token, tokenLifetime(expires), nil
}

// usableToken reports whether t can be sent as a bearer token: 1 to 8192
// visible ASCII characters, no spaces.
func usableToken(t string) bool {
	if t == "" || len(t) > maxTokenLength {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] > '~' {
			return false
		}
	}
	return true
}

// tokenLifetime reads expires_in (seconds, a JSON number or a numeric
// string): DefaultTokenLifetime when absent, not a number or not positive,
// capped at MaxTokenLifetime.
func tokenLifetime(f flexString) time.Duration {
	s := trim(f)
	secs, err := strconv.ParseFloat(s, 64)
	if s == "" || err != nil || secs != secs || secs < 1 {
		return DefaultTokenLifetime
	}
	if secs >= MaxTokenLifetime.Seconds() {
		return MaxTokenLifetime
	}
	return time.Duration(secs * float64(time.Second))
}

// refreshMargin is how long before its expiry a token of lifetime d is given
// up: a tenth of d, at most a minute.
func refreshMargin(d time.Duration) time.Duration {
	return min(maxRefreshMargin, d/10)
}

// bearer returns a valid token: the cached one, or the result of a login,
// started if none is in flight. It waits for the login, or for ctx.
func (c *Client) bearer(ctx context.Context) (string, *APIError) {
	if ctx.Err() != nil {
		return "", waitError(ctx)
	}
	c.mu.Lock()
	if c.token != "" && c.clock().Before(c.expires) {
		t := c.token
		c.mu.Unlock()
		return t, nil
	}
	f := c.flight
	if f == nil {
		f = &loginFlight{done: make(chan struct{})}
		c.flight = f
		// The login belongs to every waiter: it runs on its own and is
		// bounded by the Client's Timeout, not by this caller's context.
		go c.runLogin(context.WithoutCancel(ctx), f)
	}
	f.waiters++
	c.mu.Unlock()

	select {
	case <-f.done:
		if f.err != nil {
			e := *f.err
			return "", &e
		}
		return f.token, nil
	case <-ctx.Done():
		return "", waitError(ctx)
	}
}

// waitError is the error of a call whose context ended before it had a
// token.
func waitError(ctx context.Context) *APIError {
	err := ctx.Err()
	return &APIError{Op: "login", Outcome: OutcomeRefused, Err: err, timedOut: errors.Is(err, context.DeadlineExceeded)}
}

// runLogin performs f's login and publishes its result.
func (c *Client) runLogin(ctx context.Context, f *loginFlight) {
	token, lifetime, e := c.login(ctx)
	c.mu.Lock()
	if e == nil {
		c.token = token
		c.expires = c.clock().Add(lifetime - refreshMargin(lifetime))
		if len(c.recent) >= maxRecentTokens {
			c.recent = c.recent[1:]
		}
		c.recent = append(c.recent, token)
	}
	f.token, f.err = token, e
	c.flight = nil
	c.mu.Unlock()
	close(f.done)
}

// invalidate forgets the cached token if it is still used, so that the
// next call logs in again; a token another call has already replaced stays.
func (c *Client) invalidate(used string) {
	c.mu.Lock()
	if c.token == used {
		c.token = ""
		c.expires = time.Time{}
	}
	c.mu.Unlock()
}

// tokenRefused reports whether an answer means the bearer token was not
// accepted: code 1002 INVALID_TOKEN or 1003 EXPIRED_TOKEN, 1005
// INVALID_CREDENTIALS (CinetPay's PHP SDK logs in again on it too), or HTTP
// 401 with no usable code in the body.
func (a *answer) tokenRefused() bool {
	if a.hasCode {
		switch a.code {
		case CodeInvalidToken, CodeExpiredToken, CodeInvalidCredentials:
			return true
		}
		return false
	}
	return a.httpStatus == http.StatusUnauthorized
}

// authCall makes an authenticated call. When the token is refused, it
// forgets it, logs in once more and repeats the call once; the second
// answer is returned as it is, refused token or not.
func (c *Client) authCall(ctx context.Context, op, method, path string, body []byte) (*answer, *APIError) {
	var used []string
	for attempt := 0; ; attempt++ {
		token, e := c.bearer(ctx)
		if e != nil {
			return nil, e
		}
		used = append(used, token)
		a, e := c.send(ctx, op, method, path, token, body)
		if e != nil {
			return nil, e
		}
		a.tokens = used
		if !a.tokenRefused() {
			return a, nil
		}
		c.invalidate(token)
		if attempt > 0 {
			return a, nil
		}
	}
}

// tokenError is the error of a call whose token was refused again after a
// new login. Nothing was done at CinetPay.
func (c *Client) tokenError(op string, a *answer) *APIError {
	if a.object && a.hasCode {
		return c.envelopeError(op, a, OutcomeRefused, "token refused after a new login")
	}
	e := c.unreadable(op, a)
	e.Outcome = OutcomeRefused
	e.detail = "token refused after a new login"
	return e
}
