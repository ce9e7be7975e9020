// Package shop is the demo shop of caddy-cinetpay's offline demo: a Caddy module,
// http.handlers.cinetpay_demo_shop (directive cinetpay_demo_shop), that plays the part of a
// merchant's web shop behind Caddy's cinetpay module. It shows what a real shop does:
//
//   - GET  /                 the shop page: one product and a Pay button (a form POST /checkout)
//   - POST /checkout         creates an order on disk and answers 200 with the Cinetpay-*
//     headers of the README's "1. Checkout"; the cinetpay module in front turns the answer into the 303 to the
//     payment page
//   - POST /cinetpay/webhook deliveries: verified with httpsig.Verifier (tag cinetpay-notify),
//     compared with the order, applied once per event id, in one atomic write
//   - GET  /cinetpay/return  the return page: shows the verified status, changes nothing
//   - GET  /orders           the orders and the deliveries received; /orders.json for tests
//
// Orders are kept in <data>/shop.json, written atomically; a restart keeps them.
//
// It is an example, not a library: a real shop has a database, sessions, a cart and CSRF
// protection.
package shop

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
)

func init() {
	caddy.RegisterModule(Shop{})
	httpcaddyfile.RegisterHandlerDirective("cinetpay_demo_shop", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("cinetpay_demo_shop", httpcaddyfile.Before, "file_server")
}

// The product the demo sells.
const (
	productName     = "Tissu wax — pagne 6 yards"
	productAmount   = 5000
	productCurrency = "XOF"
)

// minKeyLen is the signing key length the cinetpay module requires.
const minKeyLen = 32

// Shop is the module http.handlers.cinetpay_demo_shop. It answers every request it gets (it
// never calls the next handler).
type Shop struct {
	// Data is the directory where orders and deliveries are kept (shop.json). Required.
	// Global placeholders ({env.*}) are resolved at load.
	Data string `json:"data,omitempty"`
	// SigningKeys are the keys of the verifier: the cinetpay module's signing_key (id and key).
	// Several let a shop rotate keys. At least one is required.
	SigningKeys []SigningKey `json:"signing_keys,omitempty"`
	// AcceptSandbox accepts results with Cinetpay-Environment "sandbox" (the demo's). Never set
	// it in a real shop.
	AcceptSandbox bool `json:"accept_sandbox,omitempty"`

	dir    string
	store  *store
	notify *httpsig.Verifier
	ret    *httpsig.Verifier
	logger *zap.Logger
}

// SigningKey is one verifier key.
type SigningKey struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

// CaddyModule returns the Caddy module information.
func (Shop) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.cinetpay_demo_shop",
		New: func() caddy.Module { return new(Shop) },
	}
}

// Provision resolves placeholders, checks the configuration and opens the data directory.
func (s *Shop) Provision(ctx caddy.Context) error {
	s.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	resolve := func(field, v string) (string, error) {
		out, err := repl.ReplaceOrErr(v, true, true)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		return strings.TrimSpace(out), nil
	}
	data, err := resolve("data", s.Data)
	if err != nil {
		return err
	}
	if data == "" {
		return errors.New("data: the directory where orders are kept is required")
	}
	if s.dir, err = filepath.Abs(data); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if len(s.SigningKeys) == 0 {
		return errors.New("signing_key: at least one key (the cinetpay module's signing_key) is required")
	}
	keys := map[string][]byte{}
	for i, k := range s.SigningKeys {
		id, err := resolve(fmt.Sprintf("signing_keys[%d].id", i), k.ID)
		if err != nil {
			return err
		}
		key, err := resolve(fmt.Sprintf("signing_keys[%d].key", i), k.Key)
		if err != nil {
			return err
		}
		switch {
		case id == "":
			return fmt.Errorf("signing_keys[%d]: empty key id", i)
		case len(key) < minKeyLen:
			return fmt.Errorf("signing_keys[%d] (%s): the key must be at least %d bytes", i, id, minKeyLen)
		case keys[id] != nil:
			return fmt.Errorf("signing_keys[%d]: key id %s is listed twice", i, id)
		}
		keys[id] = []byte(key)
	}
	s.notify = &httpsig.Verifier{Keys: keys, Tag: httpsig.TagNotify, AcceptSandbox: s.AcceptSandbox}
	s.ret = &httpsig.Verifier{Keys: keys, Tag: httpsig.TagReturn, AcceptSandbox: s.AcceptSandbox}
	if s.store, err = acquireStore(s.dir); err != nil {
		return err
	}
	s.logger.Info("demo shop ready", zap.String("data", s.dir), zap.Bool("accept_sandbox", s.AcceptSandbox))
	return nil
}

// Cleanup releases the data directory.
func (s *Shop) Cleanup() error {
	if s.store != nil {
		releaseStore(s.dir)
		s.store = nil
	}
	return nil
}

// ServeHTTP routes the request; it never calls next.
func (s *Shop) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	switch r.URL.Path {
	case "/", "/index.html":
		return s.serveHome(w, r)
	case "/checkout":
		return s.serveCheckout(w, r)
	case "/cinetpay/webhook":
		return s.serveWebhook(w, r)
	case "/cinetpay/return":
		return s.serveReturn(w, r)
	case "/orders":
		return s.serveOrders(w, r)
	case "/orders.json":
		return s.serveOrdersJSON(w, r)
	}
	render(w, r, http.StatusNotFound, notFoundTmpl, "notfound_title", nil)
	return nil
}

// allow answers 405 unless r's method is one of methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

func randomID(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	cinetpay_demo_shop {
//		data <dir>                  # required: where orders are kept
//		signing_key <id> <key>      # required, repeatable: the cinetpay module's signing_key
//		accept_sandbox              # accept results from the sandbox (demo only)
//	}
func (s *Shop) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		name := d.Val()
		if name != "signing_key" && seen[name] {
			return d.Errf("%s: repeated", name)
		}
		seen[name] = true
		args := d.RemainingArgs()
		switch name {
		case "data":
			if len(args) != 1 {
				return d.Errf("data: want one directory")
			}
			s.Data = args[0]
		case "signing_key":
			if len(args) != 2 {
				return d.Errf("signing_key: want <id> <key>")
			}
			s.SigningKeys = append(s.SigningKeys, SigningKey{ID: args[0], Key: args[1]})
		case "accept_sandbox":
			if len(args) != 0 {
				return d.Errf("accept_sandbox takes no value")
			}
			s.AcceptSandbox = true
		default:
			return d.Errf("unknown subdirective %q", name)
		}
	}
	if d.Next() {
		return d.Errf("cinetpay_demo_shop: only one block is allowed")
	}
	return nil
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	s := new(Shop)
	if err := s.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return s, nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Shop)(nil)
	_ caddy.CleanerUpper          = (*Shop)(nil)
	_ caddyhttp.MiddlewareHandler = (*Shop)(nil)
	_ caddyfile.Unmarshaler       = (*Shop)(nil)
)
