// Package caddycinetpay is a Caddy v2 HTTP handler, http.handlers.cinetpay, that puts a correct,
// hardened CinetPay Checkout v2 integration in front of any shop: it starts payments from a
// shop's Cinetpay-* response headers, verifies CinetPay's notifications with the x-token HMAC and
// /v2/payment/check, stores every payment in Badger, and delivers each result once to the shop
// as RFC 9421-signed headers. See README.md.
package caddycinetpay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpay"
	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpayv1"
	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the CinetPay handler. It serves three kinds of routes on its site: the checkout
// paths, where a shop's response carrying Cinetpay-* headers starts a payment; the notify path,
// where CinetPay posts notifications; and the return path, where the customer's browser comes
// back. On every request it removes client-sent Cinetpay-* headers, and on every response the
// Cinetpay-* headers the shop set.
//
// Only global placeholders ({env.*}, {file.*}) are allowed in its fields; they are resolved
// once, at load. A request placeholder is a load error.
type Handler struct {
	// Which CinetPay API the site speaks: "v1", CinetPay's current API (OAuth login, per-payment
	// notify_token; every new merchant account), or "v2", the legacy Checkout v2 (site_id and
	// x-token). Default: v1 when api_password is set, v2 when site_id is. One block speaks one
	// API; one Caddy may serve blocks of both, on one store.
	API string `json:"api,omitempty"`

	// The merchant's CinetPay API key: on v1 the sk_live_… or sk_test_… key of the account, on
	// v2 the "apikey". Required. Never logged.
	APIKey string `json:"api_key,omitempty"`

	// v1: the account's API password, paired with api_key. Required on v1. Never logged.
	APIPassword string `json:"api_password,omitempty"`

	// v1: the account's country (ISO code: CI, SN, CM, …). One account serves one country, whose
	// currency its payments use. Required on v1.
	Country string `json:"country,omitempty"`

	// v1: the name payments are stored under (letters, digits, '.', '_' or '-'). Default:
	// <country>-<live|test>, from the key's prefix (ci-live). Two handlers with one account must
	// agree on its configuration.
	Account string `json:"account,omitempty"`

	// v1: reach CinetPay over IPv4 only. CinetPay admits API calls from whitelisted IP
	// addresses; a dual-stack server would otherwise call from an IPv6 address that is not on
	// the list (answer 2011 NOT_ALLOWED).
	IPv4Only bool `json:"ipv4_only,omitempty"`

	// v2: the merchant's CinetPay site id ("site_id"). Required on v2. Payments are stored under
	// it, and two handlers with one site_id must agree on its configuration.
	SiteID string `json:"site_id,omitempty"`

	// v2: the merchant's Secret Key (CinetPay back office, "Intégrations"), which checks the
	// x-token of notifications. Not the API key. Required on v2. Never logged.
	SecretKey string `json:"secret_key,omitempty"`

	// The key that signs the headers sent to the shop (RFC 9421, hmac-sha256). Required.
	SigningKey *SigningKey `json:"signing_key,omitempty"`

	// Base URL of the CinetPay API. Default on v1: https://api.cinetpay.net for a sk_test_ key,
	// https://api.cinetpay.co otherwise; on v2: https://api-checkout.cinetpay.com. It must be
	// https unless its host is a loopback address (a local sandbox). Results carry
	// Cinetpay-Environment "live" only with CinetPay's live host (api.cinetpay.co,
	// api-checkout.cinetpay.com), else "sandbox".
	Endpoint string `json:"endpoint,omitempty"`

	// Path patterns (Caddy path matcher syntax) whose shop responses may start a payment.
	// Default: none (the handler then only serves notify and return).
	Checkout []string `json:"checkout,omitempty"`

	// HTTP methods that may start a payment on checkout paths. Default: POST. Other methods
	// pass through untouched.
	CheckoutMethods []string `json:"checkout_methods,omitempty"`

	// Path where CinetPay posts notifications. Default: /cinetpay/notify. Must not fall under
	// a checkout pattern.
	Notify string `json:"notify,omitempty"`

	// Path where the customer's browser returns. Default: /cinetpay/return. Must not fall
	// under a checkout pattern.
	Return string `json:"return,omitempty"`

	// URL where results are delivered to the shop (a POST with signed headers, no body).
	// Required; http or https; must not point at this site itself.
	Forward string `json:"forward,omitempty"`

	// How results are delivered to forward: "rfc9421" (default: no body, the result in
	// Cinetpay-* headers signed per RFC 9421) or "standard-webhooks" (a JSON body signed per
	// the Standard Webhooks specification with the signing_key's key as the secret, so the
	// shop verifies with the official library of its language). Return pages carry the
	// RFC 9421 headers either way. A change applies to every attempt made after it, pending
	// deliveries included.
	DeliverFormat string `json:"deliver_format,omitempty"`

	// Public base URL of the site, for notify_url and return_url. Required in JSON; the
	// Caddyfile fills it in from the site address when the block has exactly one address with
	// a host name.
	PublicURL string `json:"public_url,omitempty"`

	// Where payments are stored: with the badger backend, a directory (default: Caddy's data
	// directory + /cinetpay); with postgres, the database's DSN (URL or key=value, as pgx
	// reads it; use {env.*} to keep its password out of the config). Handlers naming one store
	// share it.
	Storage string `json:"storage,omitempty"`

	// StorageBackend is "badger" (default: an embedded store for one Caddy instance) or
	// "postgres" (a database any number of instances share; see the README, "Several
	// instances").
	StorageBackend string `json:"storage_backend,omitempty"`

	// Currency when the shop sends no Cinetpay-Currency: XOF, XAF, CDF, GNF or USD. Default: on
	// v1 the country's (and no other is allowed), on v2 XOF.
	Currency string `json:"currency,omitempty"`

	// v2: channels when the shop sends no Cinetpay-Channels: ALL, MOBILE_MONEY, CREDIT_CARD or
	// WALLET. Default ALL.
	Channels string `json:"channels,omitempty"`

	// Language of CinetPay's payment page when the shop sends no Cinetpay-Lang: fr or en.
	// Default fr.
	Lang string `json:"lang,omitempty"`

	// Timeout of one CinetPay API call. Default 15s, at most 2m.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Most CinetPay API calls per second for this site, shared by starts, notifications,
	// returns and re-checks (notifications first). Default 10.
	RateLimit int `json:"rate_limit,omitempty"`

	// Timeout of one delivery attempt to forward. Default 10s, at most 2m.
	ForwardTimeout caddy.Duration `json:"forward_timeout,omitempty"`

	site     *siteConfig
	app      *App
	tokens   *blockTokens // where a Caddyfile block set each sub-directive; nil from JSON
	checkout caddyhttp.MatchPath
	notify   caddyhttp.MatchPath
	ret      caddyhttp.MatchPath
	logger   *zap.Logger
}

// SigningKey is a key id and key that sign the headers sent to the shop. The shop's verifier
// picks its key by the id, so keys can be rotated.
type SigningKey struct {
	// Key id, sent as keyid: letters, digits, '.', '_' or '-', at most 64.
	ID string `json:"id,omitempty"`
	// The key: at least 32 bytes, used as its bytes. Never logged.
	Key string `json:"key,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.cinetpay",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Defaults.
const (
	defaultNotify         = "/cinetpay/notify"
	defaultReturn         = "/cinetpay/return"
	defaultCurrency       = "XOF"
	defaultChannels       = "ALL"
	defaultLang           = "fr"
	defaultTimeout        = 15 * time.Second
	defaultForwardTimeout = 10 * time.Second
	defaultRateLimit      = 10
	maxTimeout            = 2 * time.Minute
	minSigningKeyLen      = 32
)

// Delivery formats (deliver_format).
const (
	formatRFC9421          = "rfc9421"
	formatStandardWebhooks = "standard-webhooks"
)

var (
	siteIDRe  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	keyIDRe   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	orderIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	methodRe  = regexp.MustCompile(`^[A-Z]{1,16}$`)
)

// Provision resolves global placeholders, applies defaults, checks the configuration and
// registers the site with the cinetpay app, which opens the store when Caddy starts (not here,
// so `caddy validate` works while a running Caddy holds the store).
func (h *Handler) Provision(ctx caddy.Context) error {
	appIface, err := ctx.App("cinetpay")
	if err != nil {
		return err
	}
	h.app = appIface.(*App)
	// every line of the module is under the app's logger, cinetpay (README, "Logs")
	h.logger = h.app.logger.Named("http")
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	if err := h.resolvePlaceholders(); err != nil {
		return err
	}
	h.setDefaults()
	if err := h.check(true); err != nil {
		return err
	}
	site, err := h.newSiteConfig()
	if err != nil {
		return err
	}
	h.site = site
	h.logger = site.logger
	h.checkout = caddyhttp.MatchPath(slices.Clone(h.Checkout))
	h.notify = caddyhttp.MatchPath{h.Notify}
	h.ret = caddyhttp.MatchPath{h.Return}
	for _, m := range []caddyhttp.MatchPath{h.checkout, h.notify, h.ret} {
		if err := m.Provision(ctx); err != nil {
			return err
		}
	}
	if err := h.app.register(site); err != nil {
		return err
	}
	if site.eng.Environment == envLive && !strings.HasPrefix(site.publicURL, "https://") {
		h.logger.Warn("public_url is not https with the live CinetPay endpoint", zap.String("public_url", site.publicURL))
	}
	return nil
}

// Validate is part of caddy.Validator; Provision already checked everything.
func (h *Handler) Validate() error {
	if h.site == nil {
		return errors.New("cinetpay: not provisioned")
	}
	return nil
}

// resolvePlaceholders replaces {env.*} and {file.*} in every field, once. Any other
// placeholder is an error naming the field; values are never printed.
func (h *Handler) resolvePlaceholders() error {
	repl := caddy.NewReplacer()
	for _, f := range h.stringFields() {
		if *f.val == "" {
			continue
		}
		if err := checkPlaceholders(f.name, *f.val); err != nil {
			return err
		}
		v, err := repl.ReplaceOrErr(*f.val, true, true)
		if err != nil {
			return fmt.Errorf("%s: %v", f.name, err)
		}
		if f.secret {
			v = strings.TrimSpace(v)
		}
		*f.val = v
	}
	return nil
}

type stringField struct {
	name   string
	val    *string
	secret bool
}

// stringFields lists the fields that may hold placeholders.
func (h *Handler) stringFields() []stringField {
	fs := []stringField{
		{"api", &h.API, false}, {"api_key", &h.APIKey, true}, {"api_password", &h.APIPassword, true},
		{"country", &h.Country, false}, {"account", &h.Account, false},
		{"site_id", &h.SiteID, true}, {"secret_key", &h.SecretKey, true},
		{"endpoint", &h.Endpoint, false}, {"notify", &h.Notify, false}, {"return", &h.Return, false},
		{"forward", &h.Forward, false}, {"deliver_format", &h.DeliverFormat, false}, {"public_url", &h.PublicURL, false}, {"storage", &h.Storage, h.StorageBackend == storagePostgres},
		{"currency", &h.Currency, false}, {"channels", &h.Channels, false}, {"lang", &h.Lang, false},
	}
	if h.SigningKey != nil {
		fs = append(fs, stringField{"signing_key id", &h.SigningKey.ID, false},
			stringField{"signing_key key", &h.SigningKey.Key, true})
	}
	for i := range h.Checkout {
		fs = append(fs, stringField{"checkout", &h.Checkout[i], false})
	}
	return fs
}

// checkPlaceholders refuses any placeholder but {env.*} and {file.*}.
func checkPlaceholders(field, v string) error {
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '{':
			end := strings.IndexByte(v[i:], '}')
			if end < 0 {
				continue
			}
			name := v[i+1 : i+end]
			if !strings.HasPrefix(name, "env.") && !strings.HasPrefix(name, "file.") {
				directive, _, _ := strings.Cut(field, " ") // "signing_key key" is signing_key's
				return fieldErrorf(directive, "%s: placeholder {%s} is not allowed: only {env.*} and {file.*}, resolved at load", field, name)
			}
			i += end
		}
	}
	return nil
}

func hasPlaceholder(v string) bool { return strings.Contains(v, "{") }

func (h *Handler) setDefaults() {
	if h.API == "" {
		h.API = h.inferredAPI()
	}
	if h.API == apiV1 {
		h.Country = strings.ToUpper(h.Country)
		if h.Endpoint == "" {
			h.Endpoint = cinetpayv1.DefaultEndpoint(h.APIKey)
		}
		if c, ok := cinetpayv1.LookupCountry(h.Country); ok && h.Currency == "" {
			h.Currency = c.Currency
		}
		if h.Account == "" && h.Country != "" {
			h.Account = h.namespace()
		}
	}
	if h.Endpoint == "" {
		h.Endpoint = cinetpay.DefaultEndpoint
	}
	if len(h.CheckoutMethods) == 0 {
		h.CheckoutMethods = []string{http.MethodPost}
	}
	if h.Notify == "" {
		h.Notify = defaultNotify
	}
	if h.Return == "" {
		h.Return = defaultReturn
	}
	if h.Storage == "" && h.StorageBackend != storagePostgres {
		h.Storage = filepath.Join(caddy.AppDataDir(), "cinetpay")
	}
	if h.Currency == "" {
		h.Currency = defaultCurrency
	}
	if h.Channels == "" && h.API != apiV1 {
		h.Channels = defaultChannels
	}
	if h.Lang == "" {
		h.Lang = defaultLang
	}
	if h.Timeout == 0 {
		h.Timeout = caddy.Duration(defaultTimeout)
	}
	if h.ForwardTimeout == 0 {
		h.ForwardTimeout = caddy.Duration(defaultForwardTimeout)
	}
	if h.RateLimit == 0 {
		h.RateLimit = defaultRateLimit
	}
}

// configError is a configuration error about set fields (sub-directives of the Caddyfile);
// its message is that of the error it wraps. The fields are in sides, sets of fields that
// clash: a Caddyfile reports the error at the side the block sets last, each side at the first
// of its fields the block sets; with one field a side, at the last of the fields. An error
// about a missing field is not one: there is no line to point at.
type configError struct {
	sides [][]string
	err   error
}

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// fieldErr ties err to the fields it concerns, each a side of its own.
func fieldErr(err error, fields ...string) error {
	sides := make([][]string, len(fields))
	for i, f := range fields {
		sides[i] = []string{f}
	}
	return &configError{sides: sides, err: err}
}

// mixErr ties err to sides of fields that must not be mixed, such as those of two APIs.
func mixErr(err error, sides ...[]string) error { return &configError{sides: sides, err: err} }

// Fields that make a block speak one API or the other (inferredAPI).
var (
	v1Fields = []string{"api", "api_password", "country", "account", "ipv4_only"}
	v2Fields = []string{"api", "site_id", "secret_key"}
)

// fieldErrorf is fmt.Errorf about one field.
func fieldErrorf(field, format string, args ...any) error {
	return fieldErr(fmt.Errorf(format, args...), field)
}

// check validates the configuration. With resolved false (adapting a Caddyfile), values that
// still hold a placeholder are not judged, and missing defaults are not an error. Every error
// names its field and none holds a secret; an error about set fields is a *configError.
func (h *Handler) check(resolved bool) error {
	judge := func(v string) bool { return v != "" && (resolved || !hasPlaceholder(v)) }
	if err := h.checkAPI(judge); err != nil {
		return err
	}
	if err := h.checkStorage(judge); err != nil {
		return err
	}
	if h.SigningKey == nil || h.SigningKey.ID == "" || h.SigningKey.Key == "" {
		return errors.New("signing_key is required: a key id and a key of at least 32 bytes")
	}
	if judge(h.SigningKey.ID) && !keyIDRe.MatchString(h.SigningKey.ID) {
		return fieldErrorf("signing_key", "signing_key: the key id must be letters, digits, '.', '_' or '-', at most 64")
	}
	if judge(h.SigningKey.Key) && len(h.SigningKey.Key) < minSigningKeyLen {
		return fieldErrorf("signing_key", "signing_key: the key must be at least %d bytes", minSigningKeyLen)
	}
	if judge(h.Endpoint) {
		if _, err := parseEndpoint(h.Endpoint); err != nil {
			return fieldErr(err, "endpoint")
		}
	}
	if h.Forward == "" {
		return errors.New("forward is required: the URL where results are delivered to the shop")
	}
	if judge(h.Forward) {
		if _, err := parseBaseURL("forward", h.Forward); err != nil {
			return fieldErr(err, "forward")
		}
	}
	if judge(h.DeliverFormat) && h.DeliverFormat != formatRFC9421 && h.DeliverFormat != formatStandardWebhooks {
		return fieldErrorf("deliver_format", "deliver_format: %q is not %s or %s", h.DeliverFormat, formatRFC9421, formatStandardWebhooks)
	}
	if h.PublicURL == "" {
		if resolved {
			return errors.New("public_url is required (the site's public base URL, e.g. https://shop.example.com)")
		}
		return errors.New("public_url is required unless the site block has exactly one address with a host name")
	}
	if judge(h.PublicURL) {
		if _, err := parseBaseURL("public_url", h.PublicURL); err != nil {
			return fieldErr(err, "public_url")
		}
	}
	if judge(h.Forward) && judge(h.PublicURL) {
		if sameOrigin(h.Forward, h.PublicURL) {
			return fieldErr(errors.New("forward points at this site itself (public_url): its deliveries would be stripped; deliver to the shop's own address"),
				"forward", "public_url")
		}
	}
	notify, ret := cmp.Or(h.Notify, defaultNotify), cmp.Or(h.Return, defaultReturn)
	for _, f := range []struct{ name, v string }{{"notify", notify}, {"return", ret}} {
		if judge(f.v) && (!strings.HasPrefix(f.v, "/") || strings.ContainsAny(f.v, "?#*") || len(f.v) > 256) {
			return fieldErrorf(f.name, "%s: must be a path beginning with '/', without '?', '#' or '*'", f.name)
		}
	}
	if notify == ret {
		return fieldErr(errors.New("notify and return must be different paths"), "notify", "return")
	}
	if slices.Contains(h.Checkout, "") {
		return fieldErrorf("checkout", "checkout: empty path pattern")
	}
	for _, f := range []struct{ name, v string }{{"notify", notify}, {"return", ret}} {
		if judge(f.v) {
			if pat, ok := underCheckout(h.Checkout, f.v); ok {
				return fieldErr(fmt.Errorf("%s path %s falls under the checkout pattern %s: choose another path", f.name, f.v, pat),
					f.name, "checkout")
			}
		}
	}
	for _, m := range h.CheckoutMethods {
		if !methodRe.MatchString(m) {
			return fieldErrorf("checkout_methods", "checkout_methods: %q is not an upper-case HTTP method", m)
		}
	}
	if judge(h.Currency) && !cinetpay.ValidCurrency(h.Currency) {
		return fieldErrorf("currency", "currency: unknown currency %q (XOF, XAF, CDF, GNF or USD)", h.Currency)
	}
	if h.apiOrInferred() == apiV1 {
		if err := h.checkV1URLs(judge); err != nil {
			return err
		}
	}
	if judge(h.Channels) && !cinetpay.ValidChannels(h.Channels) {
		return fieldErrorf("channels", "channels: unknown channel %q (ALL, MOBILE_MONEY, CREDIT_CARD or WALLET)", h.Channels)
	}
	if judge(h.Lang) && !cinetpay.ValidLang(h.Lang) {
		return fieldErrorf("lang", "lang: %q is not fr or en", h.Lang)
	}
	for _, d := range []struct {
		name string
		v    caddy.Duration
	}{{"timeout", h.Timeout}, {"forward_timeout", h.ForwardTimeout}} {
		if d.v < 0 || time.Duration(d.v) > maxTimeout {
			return fieldErrorf(d.name, "%s: must be between 0 and %s", d.name, maxTimeout)
		}
	}
	if h.RateLimit < 0 || h.RateLimit > 1000 {
		return fieldErrorf("rate_limit", "rate_limit: calls per second, from 1 to 1000")
	}
	return nil
}

// inferredAPI is the API a block without `api` speaks: v1 with a field of the current API
// (api_password, country, account, ipv4_only), v2 with one of Checkout v2 (site_id,
// secret_key); "" when it has both kinds or neither.
func (h *Handler) inferredAPI() string {
	v1 := h.APIPassword != "" || h.Country != "" || h.Account != "" || h.IPv4Only
	v2 := h.SiteID != "" || h.SecretKey != ""
	switch {
	case v1 && !v2:
		return apiV1
	case v2 && !v1:
		return apiV2
	}
	return ""
}

func (h *Handler) apiOrInferred() string { return cmp.Or(h.API, h.inferredAPI()) }

// checkAPI checks the credentials of the block's API, and that no field of the other API is
// set. Errors name the field, never its value.
func (h *Handler) checkAPI(judge func(string) bool) error {
	api := h.apiOrInferred()
	if h.APIKey == "" {
		return errors.New("api_key is required")
	}
	switch api {
	case "":
		if h.APIPassword != "" || h.Country != "" || h.Account != "" || h.IPv4Only {
			return mixErr(errors.New("fields of CinetPay's current API (api_password, country, account, ipv4_only) and of "+
				"the legacy Checkout v2 (site_id, secret_key) are mixed: keep those of your account's API"),
				v1Fields, v2Fields)
		}
		return errors.New("api_password is required (with api_key and country, for CinetPay's current API); " +
			"a legacy Checkout v2 account sets site_id and secret_key instead")
	case apiV1:
		for _, f := range []struct{ name, v string }{{"site_id", h.SiteID}, {"secret_key", h.SecretKey}, {"channels", h.Channels}} {
			if f.v != "" {
				return mixErr(fmt.Errorf("%s is a field of the legacy Checkout v2 API, not of api v1: remove it", f.name), []string{f.name}, v1Fields)
			}
		}
		if h.APIPassword == "" {
			return errors.New("api_password is required with api v1")
		}
		if h.Country == "" {
			return errors.New("country is required with api v1: the account's country, such as CI or SN")
		}
		country := strings.ToUpper(h.Country)
		c, ok := cinetpayv1.LookupCountry(country)
		if judge(h.Country) && !ok {
			return fieldErrorf("country", "country: %q is not a country of CinetPay's current API (%s)", h.Country,
				strings.Join(cinetpayv1.CountryCodes(), ", "))
		}
		if ok && judge(h.Currency) && h.Currency != c.Currency {
			return fieldErr(fmt.Errorf("currency: an account of %s takes %s only, not %s", country, c.Currency, h.Currency), "currency", "country")
		}
		if judge(h.Account) && !keyIDRe.MatchString(h.Account) {
			return fieldErrorf("account", "account: letters, digits, '.', '_' or '-' only, at most 64")
		}
	case apiV2:
		for _, f := range []struct {
			name string
			set  bool
		}{{"api_password", h.APIPassword != ""}, {"country", h.Country != ""}, {"account", h.Account != ""}, {"ipv4_only", h.IPv4Only}} {
			if f.set {
				return mixErr(fmt.Errorf("%s is a field of CinetPay's current API (api v1), not of the legacy api v2: remove it", f.name), []string{f.name}, v2Fields)
			}
		}
		if h.SiteID == "" {
			return errors.New("site_id is required with api v2")
		}
		if judge(h.SiteID) && !siteIDRe.MatchString(h.SiteID) {
			return fieldErrorf("site_id", "site_id: letters, digits, '_' or '-' only, at most 64")
		}
		if h.SecretKey == "" {
			return errors.New("secret_key is required with api v2")
		}
		if judge(h.SecretKey) && judge(h.APIKey) && h.SecretKey == h.APIKey {
			// a common mix-up: with the API key as secret_key no notification ever verifies
			return fieldErr(errors.New("secret_key is the same as api_key: secret_key is the Secret Key of CinetPay's back office "+
				"(Intégrations), not the API key"), "api_key", "secret_key")
		}
	default:
		return fieldErrorf("api", "api: %q is not v1 or v2", h.API)
	}
	return nil
}

// maxV1URL is the longest URL CinetPay's current API takes for notify_url, success_url and
// failed_url.
const maxV1URL = 120

// checkV1URLs refuses a public_url and paths that would make notify_url or the return URL
// (with a transaction id of the longest kind CinetPay allows) longer than CinetPay takes.
func (h *Handler) checkV1URLs(judge func(string) bool) error {
	if !judge(h.PublicURL) {
		return nil
	}
	base := strings.TrimRight(h.PublicURL, "/")
	notify, ret := cmp.Or(h.Notify, defaultNotify), cmp.Or(h.Return, defaultReturn)
	for _, u := range []struct{ name, url string }{
		{"notify", base + notify},
		{"return", base + ret + "?transaction_id=" + strings.Repeat("X", 30)},
	} {
		if len(u.url) > maxV1URL {
			return fieldErr(fmt.Errorf("public_url and %s make a %s URL of %d characters; CinetPay's current API takes at most %d: "+
				"shorten public_url or the %s path", u.name, u.name, len(u.url), maxV1URL, u.name), "public_url", u.name)
		}
	}
	return nil
}

// underCheckout reports whether a path falls under one of the checkout patterns, with the
// semantics of Caddy's path matcher.
func underCheckout(patterns []string, path string) (string, bool) {
	for _, pat := range patterns {
		if hasPlaceholder(pat) {
			continue
		}
		m := caddyhttp.MatchPath{pat}
		_ = m.Provision(caddy.Context{})
		r, _ := http.NewRequest(http.MethodPost, "http://localhost"+path, nil)
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		if m.Match(r) {
			return pat, true
		}
	}
	return "", false
}

// parseEndpoint checks the CinetPay base URL: https, or http on a loopback host.
func parseEndpoint(raw string) (*url.URL, error) {
	u, err := parseBaseURL("endpoint", raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" && !engine.IsLoopbackHost(u.Hostname()) {
		return nil, errors.New("endpoint: must be https (http is allowed only on a loopback address, for a local sandbox)")
	}
	return u, nil
}

// parseBaseURL parses an absolute http(s) URL without query, fragment or user info.
func parseBaseURL(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%s: must be an absolute http or https URL", field)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%s: user info in the URL is not allowed", field)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("%s: no query or fragment allowed", field)
	}
	return u, nil
}

// sameOrigin reports whether two URLs have the same host and effective port.
func sameOrigin(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(ua.Hostname(), ub.Hostname()) && effectivePort(ua) == effectivePort(ub)
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// Cleanup is part of caddy.CleanerUpper. The store belongs to the cinetpay app.
func (h *Handler) Cleanup() error { return nil }

// ServeHTTP routes a request: notify and return paths are the module's; checkout paths may
// start a payment; everything else passes through. Client-sent Cinetpay-* headers and trailers
// are removed from every request, and the shop's Cinetpay-* headers and trailers from every
// response.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	stripCinetpayHeaders(r.Header)
	stripRequestTrailers(r)
	// trailers a handler sets after its header are sent once ServeHTTP returns: strip them then
	defer stripCinetpayHeaders(w.Header())
	switch {
	case h.notify.Match(r):
		return h.serveNotify(w, r)
	case h.ret.Match(r):
		return h.serveReturn(w, r, next)
	case len(h.checkout) > 0 && slices.Contains(h.CheckoutMethods, r.Method) && h.checkout.Match(r):
		return h.serveCheckout(w, r, next)
	}
	return next.ServeHTTP(newRespWriter(w, false), r)
}

// entry returns the store entry of this handler's site, opening it if Caddy has not started
// the app yet, and marks the caller as one of its users until release.
func (h *Handler) entry() (e *storeEntry, release func(), err error) {
	if e = h.site.entry.Load(); e == nil {
		if err := h.app.ensureStarted(); err != nil {
			return nil, nil, err
		}
		if e = h.site.entry.Load(); e == nil {
			return nil, nil, errors.New("cinetpay store not open")
		}
	}
	release, ok := e.Acquire()
	if !ok {
		return nil, nil, errors.New("cinetpay store closing")
	}
	return e, release, nil
}

// isCinetpayHeader reports whether a header name, ignoring case and treating '_' as '-',
// starts with "cinetpay-".
func isCinetpayHeader(name string) bool {
	if len(name) < len("cinetpay-") {
		return false
	}
	return strings.EqualFold(name[:8], "cinetpay") && (name[8] == '-' || name[8] == '_')
}

// stripCinetpayHeaders removes every Cinetpay-* / Cinetpay_* header, the same names as
// trailers set with http.TrailerPrefix, and those names from a Trailer declaration.
func stripCinetpayHeaders(h http.Header) {
	for name := range h {
		if isCinetpayHeader(strings.TrimPrefix(name, http.TrailerPrefix)) {
			delete(h, name)
		}
	}
	if declared, ok := h["Trailer"]; ok {
		var keep []string
		for _, v := range declared {
			for name := range strings.SplitSeq(v, ",") {
				if name = strings.TrimSpace(name); name != "" && !isCinetpayHeader(name) {
					keep = append(keep, name)
				}
			}
		}
		if len(keep) == 0 {
			delete(h, "Trailer")
		} else {
			h["Trailer"] = []string{strings.Join(keep, ", ")}
		}
	}
}

// stripRequestTrailers removes the Cinetpay-* trailers of a request: those it declares now,
// and those that arrive after its body, as soon as the body's end is read (before the reader,
// such as reverse_proxy, sees the end and forwards the trailers).
func stripRequestTrailers(r *http.Request) {
	stripCinetpayHeaders(r.Trailer)
	if r.Body == nil || r.Body == http.NoBody || (r.Trailer == nil && !slices.Contains(r.TransferEncoding, "chunked")) {
		return
	}
	r.Body = &trailerStripper{ReadCloser: r.Body, r: r}
}

// trailerStripper strips a request's Cinetpay-* trailers when its body ends.
type trailerStripper struct {
	io.ReadCloser
	r *http.Request
}

func (t *trailerStripper) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF {
		stripCinetpayHeaders(t.r.Trailer)
	}
	return n, err
}

// respWriter removes the shop's Cinetpay-* response headers before they are written and, on
// checkout routes, holds back a response that carries a payment intent (Cinetpay-Amount) so
// that the handler can replace it.
type respWriter struct {
	http.ResponseWriter
	mayIntercept bool
	wroteHeader  bool
	intercepted  bool
}

func newRespWriter(w http.ResponseWriter, mayIntercept bool) *respWriter {
	return &respWriter{ResponseWriter: w, mayIntercept: mayIntercept}
}

// WriteHeader decides, at the shop's first status line, whether the response is an intent.
func (rw *respWriter) WriteHeader(status int) {
	if rw.wroteHeader {
		return
	}
	hdr := rw.Header()
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		// informational: more headers follow
		stripCinetpayHeaders(hdr)
		rw.ResponseWriter.WriteHeader(status)
		return
	}
	rw.wroteHeader = true
	if rw.mayIntercept && status >= 200 && status < 400 && len(hdr.Values("Cinetpay-Amount")) > 0 {
		rw.intercepted = true
		return
	}
	stripCinetpayHeaders(hdr)
	rw.ResponseWriter.WriteHeader(status)
}

func (rw *respWriter) Write(b []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.intercepted {
		return len(b), nil
	}
	return rw.ResponseWriter.Write(b)
}

// ReadFrom keeps io.Copy fast while never letting a held-back body through.
func (rw *respWriter) ReadFrom(src io.Reader) (int64, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.intercepted {
		return io.Copy(io.Discard, src)
	}
	if rf, ok := rw.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{rw.ResponseWriter}, src)
}

// FlushError is used by http.ResponseController; a flush writes the header first.
func (rw *respWriter) FlushError() error {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.intercepted {
		return nil
	}
	return http.NewResponseController(rw.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection (deadlines, hijacking).
func (rw *respWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

// The storage backends.
const (
	storageBadger   = "badger"
	storagePostgres = "postgres"
)

// checkStorage validates the backend and, with postgres, that the DSN parses (the error never
// shows it: it may hold a password).
func (h *Handler) checkStorage(judge func(string) bool) error {
	switch h.StorageBackend {
	case "", storageBadger:
	case storagePostgres:
		if h.Storage == "" {
			return fieldErrorf("storage", "storage postgres: a DSN is required, e.g. postgres://user:password@host:5432/db")
		}
		if judge(h.Storage) {
			if _, err := storage.ParsePostgresDSN(h.Storage); err != nil {
				return fieldErrorf("storage", "storage postgres: %v", err)
			}
		}
	default:
		return fieldErrorf("storage", "storage_backend %q: want badger or postgres", h.StorageBackend)
	}
	return nil
}
