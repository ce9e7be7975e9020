package sandbox

import (
	"fmt"
	"net/http"
	"net/url"
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
// imitation of CinetPay Checkout v2 (API, payment page, notifications, fault
// knobs) for development, demos and tests. It answers every request it
// gets (it never calls the next handler), with paths relative to the site
// root: give it its own site, or a `handle` block for /v2/*, /pay/* and
// /_sandbox/*. Never use it in production.
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

	// AllowRemote answers clients that are not on a loopback address.
	// Default: false, only loopback clients (by the connection's address)
	// are answered; others get 403.
	AllowRemote bool `json:"allow_remote,omitempty"`

	// PublicURL is the base URL of the payment pages sent in payment_url,
	// such as "https://sandbox.localhost" (include any path prefix that a
	// handle_path strips). Default: the scheme and Host of each
	// /v2/payment request. Global placeholders are resolved at load.
	PublicURL string `json:"public_url,omitempty"`

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
	if len(h.Merchants) == 0 {
		return fmt.Errorf("merchants: at least one merchant is required")
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
		AllowRemote: h.AllowRemote,
		PublicURL:   publicURL,
		Logger:      logger,
	})
	sites := make([]string, len(merchants))
	for i, m := range merchants {
		sites[i] = m.SiteID
	}
	logger.Warn("CinetPay sandbox enabled: not for production",
		zap.Strings("site_ids", sites), zap.Bool("allow_remote", h.AllowRemote))
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

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
	_ http.Handler                = (*Server)(nil)
)
