package caddycinetpay

import (
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
	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
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
		engine.CountStart("invalid")
		h.logger.Error("the shop's payment intent is invalid; nothing was stored",
			zap.String("path", r.URL.Path), zap.Error(err))
		return caddyhttp.Error(http.StatusBadGateway, errBadIntent)
	}
	repl.Set("http.cinetpay.order_id", in.OrderID)
	e, release, err := h.entry()
	if err != nil {
		h.logger.Error("cinetpay store unavailable", zap.Error(err))
		return caddyhttp.Error(http.StatusServiceUnavailable, errStore)
	}
	defer release()
	out := h.answerStart(e.Start(h.site.eng, in))
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

// startOutcome is what a start answers the customer.
type startOutcome struct {
	location   string // 303 target when err is nil
	status     int
	err        error
	retryAfter time.Duration
	txid       string
	state      storage.State
}

// answerStart turns how the engine's start ended into the customer's answer.
func (h *Handler) answerStart(r engine.StartResult) startOutcome {
	p := r.Payment
	out := startOutcome{txid: p.TransactionID, state: p.State, retryAfter: r.RetryAfter}
	switch r.Kind {
	case engine.StartNew, engine.StartReused:
		return h.redirectToPayment(p)
	case engine.StartPaid:
		out.location = h.returnLocation(p.TransactionID)
	case engine.StartBusy:
		out.status, out.err = http.StatusServiceUnavailable, errBusy
	case engine.StartRefused:
		out.status, out.err = http.StatusBadGateway, errRefused
	case engine.StartRateLimited:
		out.status, out.err = http.StatusServiceUnavailable, errRateLimited
	case engine.StartUnknown:
		out.status, out.err = http.StatusBadGateway, errUnknown
	case engine.StartInvalid:
		engine.CountStart("invalid")
		h.logger.Error("the shop's payment intent breaks a rule of CinetPay's API; nothing was stored", zap.Error(r.Err))
		out.status, out.err = http.StatusBadGateway, errBadIntent
	default:
		out.status, out.err = http.StatusServiceUnavailable, errStore
	}
	return out
}

// redirectToPayment answers with the payment page, if it is where CinetPay's pages are.
func (h *Handler) redirectToPayment(p storage.Payment) startOutcome {
	if !h.site.eng.Provider.PaymentURLAllowed(p.PaymentURL) {
		h.logger.Error("CinetPay's payment_url is not on CinetPay's host (nor the endpoint's); not redirecting",
			zap.String("transaction_id", p.TransactionID))
		return startOutcome{status: http.StatusBadGateway, err: errPaymentURL, txid: p.TransactionID, state: p.State}
	}
	return startOutcome{location: p.PaymentURL, txid: p.TransactionID, state: p.State}
}

// returnLocation is the same-site return page of a payment.
func (h *Handler) returnLocation(txid string) string {
	return h.Return + "?transaction_id=" + url.QueryEscape(txid)
}

// customerHeaders maps the customer headers to CinetPay fields, with their length caps.
var customerHeaders = []struct {
	header, field string
	max           int
}{
	{"Cinetpay-Customer-Id", "customer_id", 64},
	{"Cinetpay-Customer-Name", "customer_name", 100},
	{"Cinetpay-Customer-Surname", "customer_surname", 100},
	{"Cinetpay-Customer-First-Name", "customer_first_name", 100},
	{"Cinetpay-Customer-Last-Name", "customer_last_name", 100},
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
func parseIntent(hdr http.Header, h *Handler) (*engine.Intent, error) {
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
	in := &engine.Intent{Customer: map[string]string{}}
	raw, ok, err := one("Cinetpay-Amount")
	if err != nil {
		return nil, err
	}
	if !ok || raw == "" {
		return nil, &intentError{"Cinetpay-Amount", "missing"}
	}
	if in.Amount, err = parseAmount(raw); err != nil {
		return nil, &intentError{"Cinetpay-Amount", err.Error()}
	}
	if in.OrderID, ok, err = one("Cinetpay-Order-Id"); err != nil {
		return nil, err
	} else if !ok || in.OrderID == "" {
		return nil, &intentError{"Cinetpay-Order-Id", "missing"}
	} else if !orderIDRe.MatchString(in.OrderID) {
		return nil, &intentError{"Cinetpay-Order-Id", "must be 1 to 64 letters, digits, '.', '_' or '-'"}
	}
	if in.Currency, err = text("Cinetpay-Currency", 3); err != nil {
		return nil, err
	}
	if in.Currency == "" {
		in.Currency = h.Currency
	}
	if !cinetpay.ValidCurrency(in.Currency) {
		return nil, &intentError{"Cinetpay-Currency", "unknown currency (XOF, XAF, CDF, GNF or USD)"}
	}
	if cinetpay.RequiresMultipleOf5(in.Currency) && in.Amount%5 != 0 {
		return nil, &intentError{"Cinetpay-Amount", "must be a multiple of 5 for " + in.Currency}
	}
	if in.Description, err = text("Cinetpay-Description", maxDescription); err != nil {
		return nil, err
	}
	if in.Description == "" {
		in.Description = "Order " + in.OrderID
	}
	in.Description = cleanDescription(in.Description)
	if in.Channels, err = text("Cinetpay-Channels", 20); err != nil {
		return nil, err
	}
	if in.Channels == "" {
		in.Channels = h.Channels
	} else if !cinetpay.ValidChannels(in.Channels) {
		return nil, &intentError{"Cinetpay-Channels", "unknown channel (ALL, MOBILE_MONEY, CREDIT_CARD or WALLET)"}
	}
	if in.Lang, err = text("Cinetpay-Lang", 2); err != nil {
		return nil, err
	}
	if in.Lang == "" {
		in.Lang = h.Lang
	} else if !cinetpay.ValidLang(in.Lang) {
		return nil, &intentError{"Cinetpay-Lang", "must be fr or en"}
	}
	if in.Metadata, err = text("Cinetpay-Metadata", maxMetadata); err != nil {
		return nil, err
	}
	if in.PaymentMethod, err = text("Cinetpay-Payment-Method", 32); err != nil {
		return nil, err
	}
	if m := in.PaymentMethod; m != "" && strings.Trim(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
		return nil, &intentError{"Cinetpay-Payment-Method", "an operator code such as OM_CI: capital letters, digits and '_'"}
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
		in.Customer[c.field] = v
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
