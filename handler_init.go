package caddycinetpay

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpay"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Timing rules of a start (SPEC §3).
const (
	// reuseWindow: resubmitting an order whose payment is PENDING and younger than this, with the
	// same amount and currency, sends the customer back to the same payment_url.
	reuseWindow = 15 * time.Minute
	// firstCheck: a started payment is first re-checked this soon.
	firstCheck = 30 * time.Second
)

// Errors shown to the customer (through handle_errors as {http.error.message}). They never carry
// a secret, a CinetPay answer or customer data.
var (
	errBadIntent   = errors.New("cinetpay: the shop's payment request is invalid")
	errRefused     = errors.New("cinetpay: CinetPay refused to start the payment")
	errUnknown     = errors.New("cinetpay: CinetPay did not answer; the payment was not started")
	errRateLimited = errors.New("cinetpay: too many payment requests, please retry shortly")
	errBusy        = errors.New("cinetpay: this order's payment is being started, please retry shortly")
	errStore       = errors.New("cinetpay: payment storage unavailable")
	errPaymentURL  = errors.New("cinetpay: CinetPay answered with an unexpected payment page")
)

// serveCheckout lets the shop answer, and if its response carries a payment intent replaces it
// with the payment start.
func (h *Handler) serveCheckout(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	hdr := w.Header()
	before := hdr.Clone()
	rw := newRespWriter(w, true)
	if err := next.ServeHTTP(rw, r); err != nil {
		return err
	}
	if !rw.intercepted {
		return nil
	}
	// The shop's headers are dropped, except its cookies; headers set before us stay.
	shopHeaders := hdr.Clone()
	for k := range hdr {
		delete(hdr, k)
	}
	for k, v := range before {
		hdr[k] = v
	}
	if cookies := newValues(shopHeaders["Set-Cookie"], before["Set-Cookie"]); len(cookies) > 0 {
		hdr["Set-Cookie"] = append(hdr["Set-Cookie"], cookies...)
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Set("http.cinetpay.route", "checkout")

	in, err := parseIntent(shopHeaders, h)
	if err != nil {
		metricStarts.WithLabelValues("invalid").Inc()
		h.logger.Error("the shop's payment intent is invalid; nothing was stored",
			zap.String("path", r.URL.Path), zap.Error(err))
		return caddyhttp.Error(http.StatusBadGateway, errBadIntent)
	}
	repl.Set("http.cinetpay.order_id", in.orderID)
	e, release, err := h.entry()
	if err != nil {
		h.logger.Error("cinetpay store unavailable", zap.Error(err))
		return caddyhttp.Error(http.StatusServiceUnavailable, errStore)
	}
	defer release()
	out, _ := e.starts.do(h.SiteID+"/"+in.orderID, func() (startOutcome, error) {
		return h.start(e, in), nil
	})
	if out.txid != "" {
		repl.Set("http.cinetpay.transaction_id", out.txid)
		repl.Set("http.cinetpay.status", string(out.state))
	}
	if out.err != nil {
		if out.retryAfter > 0 {
			hdr.Set("Retry-After", strconv.Itoa(int(out.retryAfter.Round(time.Second)/time.Second)))
		}
		return caddyhttp.Error(out.status, out.err)
	}
	hdr.Set("Location", out.location)
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusSeeOther)
	return nil
}

// newValues returns the values of after that before did not have.
func newValues(after, before []string) []string {
	var out []string
	seen := map[string]int{}
	for _, v := range before {
		seen[v]++
	}
	for _, v := range after {
		if seen[v] > 0 {
			seen[v]--
			continue
		}
		out = append(out, v)
	}
	return out
}

// startOutcome is what a start answers the customer; concurrent submits of one order share it.
type startOutcome struct {
	location   string // 303 target when err is nil
	status     int
	err        error
	retryAfter time.Duration
	txid       string
	state      storage.State
}

func failure(status int, err error) startOutcome { return startOutcome{status: status, err: err} }

// start claims the order and, for a new payment, stores it as INIT, calls CinetPay and stores
// the outcome before answering.
func (h *Handler) start(e *storeEntry, in *intent) startOutcome {
	sc := h.site
	claim := func() (storage.ClaimResult, error) {
		return e.store.Claim(storage.Claim{
			SiteID: sc.siteID, OrderID: in.orderID, Amount: in.amount, Currency: in.currency,
			Environment: sc.environment, Now: now(), ReuseWindow: reuseWindow, InitGrace: initGrace(sc),
		})
	}
	c, err := claim()
	if err == nil && c.Kind == storage.ClaimBusy {
		// Every start of this store runs in e.starts, so an INIT that no start here is working
		// on was left by a process that died during its call. Nobody has its payment_url (it is
		// stored before the customer is sent there), so it cannot be paid: the re-checker closes
		// it, and this order starts anew.
		if err = e.interruptStart(sc, c.Payment.TransactionID); err == nil {
			metricStarts.WithLabelValues("interrupted").Inc()
			c, err = claim()
		}
	}
	if err != nil {
		h.logger.Error("claiming the order", zap.String("order_id", in.orderID), zap.Error(err))
		return failure(http.StatusServiceUnavailable, errStore)
	}
	p := c.Payment
	switch c.Kind {
	case storage.ClaimPaid:
		metricStarts.WithLabelValues("paid").Inc()
		h.logger.Info("order already paid; sending the customer to the return page",
			zap.String("order_id", in.orderID), zap.String("transaction_id", p.TransactionID))
		return startOutcome{location: h.returnLocation(p.TransactionID), txid: p.TransactionID, state: p.State}
	case storage.ClaimReuse:
		metricStarts.WithLabelValues("reused").Inc()
		return h.redirectToPayment(p)
	case storage.ClaimBusy:
		return startOutcome{status: http.StatusServiceUnavailable, err: errBusy, retryAfter: 5 * time.Second,
			txid: p.TransactionID, state: p.State}
	}

	ctx, cancel := context.WithTimeout(context.Background(), sc.timeout+limiterWait)
	defer cancel()
	txid := p.TransactionID
	if err := e.limiter(sc.siteID).wait(ctx, prioCustomer); err != nil {
		// CinetPay was not called: nothing exists there
		h.finishStart(e, txid, storage.StateFailed, "local rate limit", nil)
		metricStarts.WithLabelValues("rate_limited").Inc()
		return startOutcome{status: http.StatusServiceUnavailable, err: errRateLimited, retryAfter: 5 * time.Second, txid: txid, state: storage.StateFailed}
	}
	started := time.Now()
	res, err := sc.api.InitPayment(ctx, in.request(sc, txid))
	metricAPIDuration.WithLabelValues("payment").Observe(time.Since(started).Seconds())
	if err == nil {
		p, ok := h.finishStart(e, txid, storage.StatePending, "start", func(p *storage.Payment) {
			p.PaymentToken, p.PaymentURL = res.PaymentToken, res.PaymentURL
		})
		if !ok {
			return failure(http.StatusServiceUnavailable, errStore)
		}
		metricStarts.WithLabelValues("started").Inc()
		h.logger.Info("payment started", zap.String("order_id", in.orderID), zap.String("transaction_id", txid),
			zap.Int64("amount", in.amount), zap.String("currency", in.currency))
		return h.redirectToPayment(p)
	}
	fields := []zap.Field{zap.String("order_id", in.orderID), zap.String("transaction_id", txid), zap.Error(err)}
	switch cinetpay.OutcomeOf(err) {
	case cinetpay.OutcomeRefused:
		h.finishStart(e, txid, storage.StateFailed, "refused at start", nil)
		metricStarts.WithLabelValues("refused").Inc()
		h.logger.Error("CinetPay refused the payment start (check api_key, site_id and the intent)", fields...)
		return startOutcome{status: http.StatusBadGateway, err: errRefused, txid: txid, state: storage.StateFailed}
	case cinetpay.OutcomeRateLimited:
		h.finishStart(e, txid, storage.StateFailed, "rate limited at start", nil)
		metricStarts.WithLabelValues("rate_limited").Inc()
		h.logger.Warn("CinetPay rate-limited the payment start", fields...)
		retry := 10 * time.Second
		var ce *cinetpay.Error
		if errors.As(err, &ce) && ce.RetryAfter > 0 {
			retry = min(max(ce.RetryAfter, time.Second), 5*time.Minute)
		}
		return startOutcome{status: http.StatusServiceUnavailable, err: errRateLimited, retryAfter: retry, txid: txid, state: storage.StateFailed}
	default:
		h.finishStart(e, txid, storage.StateUnknown, "start outcome unknown", nil)
		metricStarts.WithLabelValues("unknown").Inc()
		h.logger.Error("CinetPay gave no usable answer to the payment start; the payment will be re-checked", fields...)
		return startOutcome{status: http.StatusBadGateway, err: errUnknown, txid: txid, state: storage.StateUnknown}
	}
}

// limiterWait is how long a call may wait for the rate limiter, on top of its timeout.
const limiterWait = 5 * time.Second

// initGrace is how long an INIT payment counts as a start in progress.
func initGrace(sc *siteConfig) time.Duration { return sc.timeout + limiterWait + 30*time.Second }

// finishStart stores the outcome of the start call: INIT → PENDING, FAILED or UNKNOWN.
func (h *Handler) finishStart(e *storeEntry, txid string, to storage.State, note string, set func(p *storage.Payment)) (storage.Payment, bool) {
	t := now()
	res, err := e.store.Update(h.SiteID, txid, t, func(p *storage.Payment) error {
		if p.State != storage.StateInit {
			return fmt.Errorf("payment is %s, not INIT", p.State)
		}
		p.State, p.Note = to, note
		if set != nil {
			set(p)
		}
		if to.Open() {
			p.NextCheck, p.Checks = t.Add(firstCheck), 0
		}
		return nil
	})
	if err != nil {
		h.logger.Error("storing the start outcome", zap.String("transaction_id", txid), zap.Error(err))
		return res.Payment, false
	}
	metricStates.WithLabelValues(string(to)).Inc()
	return res.Payment, true
}

// redirectToPayment answers with the payment page, if it is where CinetPay's pages are.
func (h *Handler) redirectToPayment(p storage.Payment) startOutcome {
	if !h.site.paymentURLAllowed(p.PaymentURL) {
		h.logger.Error("CinetPay's payment_url is not on CinetPay's host (nor the endpoint's); not redirecting",
			zap.String("transaction_id", p.TransactionID))
		return startOutcome{status: http.StatusBadGateway, err: errPaymentURL, txid: p.TransactionID, state: p.State}
	}
	return startOutcome{location: p.PaymentURL, txid: p.TransactionID, state: p.State}
}

// paymentURLAllowed: https on CinetPay's host or the endpoint's, or (for a local endpoint) on
// the endpoint's host and port.
func (sc *siteConfig) paymentURLAllowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	if isLoopbackHost(hostOnly(sc.endpointHost)) {
		return strings.EqualFold(u.Host, sc.endpointHost) && (u.Scheme == "http" || u.Scheme == "https")
	}
	return u.Scheme == "https" && (cinetpay.IsCinetPayHost(u.Hostname()) || strings.EqualFold(u.Host, sc.endpointHost))
}

func hostOnly(hostport string) string {
	u := url.URL{Host: hostport}
	return u.Hostname()
}

// returnLocation is the same-site return page of a payment.
func (h *Handler) returnLocation(txid string) string {
	return h.Return + "?transaction_id=" + url.QueryEscape(txid)
}

// intent is a payment the shop asked for with Cinetpay-* response headers.
type intent struct {
	amount      int64
	currency    string
	orderID     string
	description string
	channels    string
	lang        string
	metadata    string
	customer    map[string]string // request field → value
}

// customerHeaders maps the customer headers to CinetPay fields, with their length caps.
var customerHeaders = []struct {
	header, field string
	max           int
}{
	{"Cinetpay-Customer-Id", "customer_id", 64},
	{"Cinetpay-Customer-Name", "customer_name", 100},
	{"Cinetpay-Customer-Surname", "customer_surname", 100},
	{"Cinetpay-Customer-Email", "customer_email", 254},
	{"Cinetpay-Customer-Phone-Number", "customer_phone_number", 20},
	{"Cinetpay-Customer-Address", "customer_address", 255},
	{"Cinetpay-Customer-City", "customer_city", 100},
	{"Cinetpay-Customer-Country", "customer_country", 2},
	{"Cinetpay-Customer-State", "customer_state", 50},
	{"Cinetpay-Customer-Zip-Code", "customer_zip_code", 20},
}

const (
	maxDescription = 255
	maxMetadata    = 1000
	maxAmount      = 1_000_000_000_000
)

// intentError names the header and the problem, never the customer's data.
type intentError struct{ header, problem string }

func (e *intentError) Error() string { return e.header + ": " + e.problem }

// parseIntent reads and validates the intent. Nothing is stored before it passes.
func parseIntent(hdr http.Header, h *Handler) (*intent, error) {
	one := func(name string) (string, bool, error) {
		vals := hdr.Values(name)
		switch len(vals) {
		case 0:
			return "", false, nil
		case 1:
			return strings.TrimSpace(vals[0]), true, nil
		}
		return "", true, &intentError{name, "sent more than once"}
	}
	text := func(name string, maxRunes int) (string, error) {
		raw, ok, err := one(name)
		if err != nil || !ok {
			return "", err
		}
		v, err := url.PathUnescape(raw)
		if err != nil {
			return "", &intentError{name, "bad percent-encoding"}
		}
		if !utf8.ValidString(v) {
			return "", &intentError{name, "not UTF-8 text"}
		}
		for _, r := range v {
			if r < 0x20 || r == 0x7f {
				return "", &intentError{name, "control characters"}
			}
		}
		v = strings.TrimSpace(v)
		if utf8.RuneCountInString(v) > maxRunes {
			return "", &intentError{name, fmt.Sprintf("longer than %d characters", maxRunes)}
		}
		return v, nil
	}
	in := &intent{customer: map[string]string{}}
	raw, ok, err := one("Cinetpay-Amount")
	if err != nil {
		return nil, err
	}
	if !ok || raw == "" {
		return nil, &intentError{"Cinetpay-Amount", "missing"}
	}
	if in.amount, err = parseAmount(raw); err != nil {
		return nil, &intentError{"Cinetpay-Amount", err.Error()}
	}
	if in.orderID, ok, err = one("Cinetpay-Order-Id"); err != nil {
		return nil, err
	} else if !ok || in.orderID == "" {
		return nil, &intentError{"Cinetpay-Order-Id", "missing"}
	} else if !orderIDRe.MatchString(in.orderID) {
		return nil, &intentError{"Cinetpay-Order-Id", "must be 1 to 64 letters, digits, '.', '_' or '-'"}
	}
	if in.currency, err = text("Cinetpay-Currency", 3); err != nil {
		return nil, err
	}
	if in.currency == "" {
		in.currency = h.Currency
	}
	if !cinetpay.ValidCurrency(in.currency) {
		return nil, &intentError{"Cinetpay-Currency", "unknown currency (XOF, XAF, CDF, GNF or USD)"}
	}
	if cinetpay.RequiresMultipleOf5(in.currency) && in.amount%5 != 0 {
		return nil, &intentError{"Cinetpay-Amount", "must be a multiple of 5 for " + in.currency}
	}
	if in.description, err = text("Cinetpay-Description", maxDescription); err != nil {
		return nil, err
	}
	if in.description == "" {
		in.description = "Order " + in.orderID
	}
	in.description = cleanDescription(in.description)
	if in.channels, err = text("Cinetpay-Channels", 20); err != nil {
		return nil, err
	}
	if in.channels == "" {
		in.channels = h.Channels
	} else if !cinetpay.ValidChannels(in.channels) {
		return nil, &intentError{"Cinetpay-Channels", "unknown channel (ALL, MOBILE_MONEY, CREDIT_CARD or WALLET)"}
	}
	if in.lang, err = text("Cinetpay-Lang", 2); err != nil {
		return nil, err
	}
	if in.lang == "" {
		in.lang = h.Lang
	} else if !cinetpay.ValidLang(in.lang) {
		return nil, &intentError{"Cinetpay-Lang", "must be fr or en"}
	}
	if in.metadata, err = text("Cinetpay-Metadata", maxMetadata); err != nil {
		return nil, err
	}
	for _, c := range customerHeaders {
		v, err := text(c.header, c.max)
		if err != nil {
			return nil, err
		}
		if v == "" {
			continue
		}
		switch c.field {
		case "customer_email":
			if strings.ContainsAny(v, " \t") || strings.Count(v, "@") != 1 || strings.HasPrefix(v, "@") || strings.HasSuffix(v, "@") {
				return nil, &intentError{c.header, "not an e-mail address"}
			}
		case "customer_phone_number":
			v = strings.ReplaceAll(v, " ", "")
			if strings.TrimLeft(strings.TrimPrefix(v, "+"), "0123456789") != "" || len(v) < 4 {
				return nil, &intentError{c.header, "digits only, with an optional leading +"}
			}
		case "customer_country":
			v = strings.ToUpper(v)
			if len(v) != 2 || v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' || v[1] > 'Z' {
				return nil, &intentError{c.header, "an ISO 3166 alpha-2 code"}
			}
		}
		in.customer[c.field] = v
	}
	return in, nil
}

// parseAmount accepts a positive integer written with digits only.
func parseAmount(s string) (int64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not a positive integer (digits only)")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > maxAmount {
		return 0, errors.New("out of range")
	}
	return n, nil
}

// cleanDescription replaces the characters CinetPay refuses in descriptions (# / $ _ &).
func cleanDescription(s string) string {
	s = strings.Map(func(r rune) rune {
		if strings.ContainsRune("#/$_&", r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// request is the /v2/payment request for the intent.
func (in *intent) request(sc *siteConfig, txid string) *cinetpay.PaymentRequest {
	req := &cinetpay.PaymentRequest{
		TransactionID: txid,
		Amount:        in.amount,
		Currency:      in.currency,
		Description:   in.description,
		NotifyURL:     sc.notifyURL,
		ReturnURL:     sc.returnBase + "?transaction_id=" + txid,
		Channels:      in.channels,
		Lang:          in.lang,
	}
	if in.metadata != "" {
		req.Metadata = base64.StdEncoding.EncodeToString([]byte(in.metadata))
	}
	c := in.customer
	req.CustomerID, req.CustomerName, req.CustomerSurname = c["customer_id"], c["customer_name"], c["customer_surname"]
	req.CustomerEmail, req.CustomerPhoneNumber = c["customer_email"], c["customer_phone_number"]
	req.CustomerAddress, req.CustomerCity, req.CustomerCountry = c["customer_address"], c["customer_city"], c["customer_country"]
	req.CustomerState, req.CustomerZipCode = c["customer_state"], c["customer_zip_code"]
	return req
}
