package sandbox

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the Caddy module http.handlers.cinetpay_sandbox: a local
// imitation of CinetPay Checkout v2 and of CinetPay's current API (v1): API,
// payment pages, notifications, fault knobs, for development, demos and
// tests. It answers every request it gets (it never calls the next
// handler), with paths relative to the site root: give it its own site, or
// a `handle` block for /v2/*, /pay/*, /v1/*, /payment/* (see V1PagePath)
// and /_sandbox/*. Never use it in production.
//
// Its state is in memory and starts empty at every config load.
type Handler struct {
	// Merchants are the CinetPay sites the sandbox accepts: site_id,
	// api_key (the apikey) and secret_key (keys the x-token of
	// notifications). At least one is required; site_ids must be unique.
	// Global placeholders ({env.*}, {file.*}) are resolved at load; use
	// them to keep keys out of the JSON config. Keys never appear in logs
	// or errors.
	Merchants []Merchant `json:"merchants,omitempty"`

	// Accounts are the merchant accounts of the v1 API: api_key (sk_test_…
	// or sk_live_…), api_password, and country (CI, SN, CM, …; one account
	// is one country, whose currency its payments must use). api_keys must
	// be unique. At least one merchant or account is required. Global
	// placeholders are resolved at load. Keys and passwords never appear in
	// logs or errors, passwords not in the request log either (whose bodies
	// show api_keys as received, as they show v2 apikeys).
	Accounts []Account `json:"accounts,omitempty"`

	// AllowRemote answers clients that are not on a loopback address.
	// Default: false, only loopback clients (by the connection's address)
	// are answered; others get 403.
	AllowRemote bool `json:"allow_remote,omitempty"`

	// PublicURL is the base URL of the payment pages sent in payment_url,
	// such as "https://sandbox.localhost" (include any path prefix that a
	// handle_path strips). Default: the scheme and Host of each
	// /v2/payment or /v1/payment request. Global placeholders are resolved
	// at load.
	PublicURL string `json:"public_url,omitempty"`

	// V1PagePath is the path of the v1 payment pages under PublicURL, such
	// as "/checkout". Default: "/payment". It must not start with /v1, /v2,
	// /pay/ or /_sandbox.
	V1PagePath string `json:"v1_page_path,omitempty"`

	server *Server
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.cinetpay_sandbox",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision resolves placeholders, checks the configuration and starts the
// sandbox.
func (h *Handler) Provision(ctx caddy.Context) error {
	repl := caddy.NewReplacer()
	resolve := func(field, v string) (string, error) {
		out, err := repl.ReplaceOrErr(v, true, true)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		return strings.TrimSpace(out), nil
	}
	if len(h.Merchants) == 0 && len(h.Accounts) == 0 {
		return fmt.Errorf("merchants: at least one merchant is required (or an account, for the v1 API)")
	}
	merchants := make([]Merchant, 0, len(h.Merchants))
	seen := map[string]bool{}
	for i, m := range h.Merchants {
		var r Merchant
		var err error
		if r.SiteID, err = resolve(fmt.Sprintf("merchants[%d].site_id", i), m.SiteID); err != nil {
			return err
		}
		if r.APIKey, err = resolve(fmt.Sprintf("merchants[%d].api_key", i), m.APIKey); err != nil {
			return err
		}
		if r.SecretKey, err = resolve(fmt.Sprintf("merchants[%d].secret_key", i), m.SecretKey); err != nil {
			return err
		}
		switch {
		case r.SiteID == "":
			return fmt.Errorf("merchants[%d].site_id: required", i)
		case r.APIKey == "":
			return fmt.Errorf("merchants[%d].api_key: required (site_id %s)", i, r.SiteID)
		case r.SecretKey == "":
			return fmt.Errorf("merchants[%d].secret_key: required (site_id %s)", i, r.SiteID)
		case seen[r.SiteID]:
			return fmt.Errorf("merchants[%d].site_id: %s is listed twice", i, r.SiteID)
		}
		seen[r.SiteID] = true
		merchants = append(merchants, r)
	}
	accounts := make([]Account, 0, len(h.Accounts))
	seenKeys := map[string]bool{}
	for i, a := range h.Accounts {
		var r Account
		var err error
		if r.APIKey, err = resolve(fmt.Sprintf("accounts[%d].api_key", i), a.APIKey); err != nil {
			return err
		}
		if r.APIPassword, err = resolve(fmt.Sprintf("accounts[%d].api_password", i), a.APIPassword); err != nil {
			return err
		}
		if r.Country, err = resolve(fmt.Sprintf("accounts[%d].country", i), a.Country); err != nil {
			return err
		}
		_, knownCountry := v1Countries[r.Country]
		switch {
		case !knownCountry:
			return fmt.Errorf("accounts[%d].country: unknown country %q (want one of %s)", i, r.Country, v1CountryList)
		case r.APIKey == "":
			return fmt.Errorf("accounts[%d].api_key: required (country %s)", i, r.Country)
		case !validKeyPrefix(r.APIKey):
			return fmt.Errorf("accounts[%d].api_key: must start with %s or %s (country %s)",
				i, KeyPrefixTest, KeyPrefixLive, r.Country)
		case r.APIPassword == "":
			return fmt.Errorf("accounts[%d].api_password: required (country %s)", i, r.Country)
		case seenKeys[r.APIKey]:
			return fmt.Errorf("accounts[%d].api_key: the same api_key is listed twice (country %s)", i, r.Country)
		}
		seenKeys[r.APIKey] = true
		accounts = append(accounts, r)
	}
	pagePath, err := resolve("v1_page_path", h.V1PagePath)
	if err != nil {
		return err
	}
	if pagePath != "" {
		first, _, _ := strings.Cut(strings.TrimPrefix(pagePath, "/"), "/")
		if !v1PagePathRE.MatchString(pagePath) || first == "v1" || first == "v2" || first == "pay" || first == "_sandbox" {
			return fmt.Errorf("v1_page_path: must be a path such as /checkout, not under /v1, /v2, /pay or /_sandbox")
		}
	}
	publicURL, err := resolve("public_url", h.PublicURL)
	if err != nil {
		return err
	}
	if publicURL != "" {
		u, err := url.Parse(publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("public_url: must be an absolute http or https URL without query")
		}
	}

	logger := ctx.Logger()
	h.server = New(Config{
		Merchants:   merchants,
		Accounts:    accounts,
		AllowRemote: h.AllowRemote,
		PublicURL:   publicURL,
		V1PagePath:  pagePath,
		Logger:      logger,
	})
	sites := make([]string, len(merchants))
	for i, m := range merchants {
		sites[i] = m.SiteID
	}
	v1 := make([]string, len(accounts))
	for i, a := range accounts {
		v1[i] = a.Country + " (" + a.Environment() + ")"
	}
	logger.Warn("CinetPay sandbox enabled: not for production",
		zap.Strings("site_ids", sites), zap.Strings("v1_accounts", v1), zap.Bool("allow_remote", h.AllowRemote))
	return nil
}

// ServeHTTP answers the request with the sandbox; it never calls next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.server.ServeHTTP(w, r)
	return nil
}

// Cleanup stops the sandbox's background work.
func (h *Handler) Cleanup() error {
	if h.server != nil {
		return h.server.Close()
	}
	return nil
}

// Server returns the running sandbox (nil before Provision), for tests that
// run Caddy in-process.
func (h *Handler) Server() *Server { return h.server }

var v1PagePathRE = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+/?$`)

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
	_ http.Handler                = (*Server)(nil)
)
