package sandbox

import (
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("cinetpay_sandbox", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("cinetpay_sandbox", httpcaddyfile.Before, "file_server")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	if err := m.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return m, nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	cinetpay_sandbox [<matcher>] {
//		merchant <site_id> <api_key> <secret_key>   # Checkout v2; repeatable; {env.*} allowed
//		account <api_key> <api_password> <country>  # API v1; repeatable; {env.*} allowed
//		allow_remote
//		public_url <url>
//		v1_page_path <path>                         # default /payment
//	}
//
// At least one merchant or account is needed (checked at provisioning).
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		name := d.Val()
		if name != "merchant" && name != "account" && seen[name] {
			return d.Errf("%s: repeated", name)
		}
		seen[name] = true
		switch name {
		case "merchant":
			args := d.RemainingArgs()
			if len(args) != 3 {
				return d.Errf("merchant: want <site_id> <api_key> <secret_key>, got %d values", len(args))
			}
			h.Merchants = append(h.Merchants, Merchant{SiteID: args[0], APIKey: args[1], SecretKey: args[2]})
		case "account":
			args := d.RemainingArgs()
			if len(args) != 3 {
				return d.Errf("account: want <api_key> <api_password> <country>, got %d values", len(args))
			}
			if !strings.Contains(args[0], "{") && !validKeyPrefix(args[0]) {
				return d.Errf("account: the api_key must start with %s or %s", KeyPrefixTest, KeyPrefixLive)
			}
			if _, ok := v1Countries[args[2]]; !ok && !strings.Contains(args[2], "{") {
				return d.Errf("account: unknown country %q (want one of %s)", args[2], v1CountryList)
			}
			h.Accounts = append(h.Accounts, Account{APIKey: args[0], APIPassword: args[1], Country: args[2]})
		case "allow_remote":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.AllowRemote = true
		case "public_url":
			if !d.NextArg() {
				return d.ArgErr()
			}
			h.PublicURL = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		case "v1_page_path":
			if !d.NextArg() {
				return d.ArgErr()
			}
			h.V1PagePath = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("unknown subdirective %q", name)
		}
	}
	if d.Next() {
		return d.Errf("cinetpay_sandbox: only one block is allowed")
	}
	return nil
}
