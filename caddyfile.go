package caddycinetpay

import (
	"errors"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterDirective("cinetpay", parseCaddyfile)
	// before redir: a bare block at site level sees requests before rewrite, try_files,
	// basic_auth and handle blocks, and in front of reverse_proxy, php_fastcgi and file_server.
	httpcaddyfile.RegisterDirectiveOrder("cinetpay", httpcaddyfile.Before, "redir")
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	cinetpay {
//		api              <v1|v2>                  # default: v1 with api_password, v2 with site_id
//		api_key          <api key>                # required: sk_live_…/sk_test_… (v1), apikey (v2)
//		api_password     <password>               # v1, required
//		country          <CI|SN|CM|…>             # v1, required: the account's country
//		account          <name>                   # v1: payments are stored under it; default <country>-<live|test>
//		ipv4_only                                 # v1: reach CinetPay over IPv4 only (its IP whitelist)
//		site_id          <site id>                # v2, required
//		secret_key       <secret key>             # v2, required: checks the x-token of notifications
//		signing_key      <key id> <key>           # required, key >= 32 bytes: signs headers to the shop
//		endpoint         <url>                    # default: v1 api.cinetpay.co (api.cinetpay.net for sk_test_), v2 api-checkout.cinetpay.com
//		checkout         <path patterns...>       # paths whose shop responses may start a payment
//		checkout_methods <methods...>             # default POST
//		notify           <path>                   # default /cinetpay/notify
//		return           <path>                   # default /cinetpay/return
//		forward          <url>                    # required: where results are delivered
//		deliver_format   <rfc9421|standard-webhooks>  # default rfc9421 (signed headers, no body)
//		public_url       <url>                    # default: the site address, if it is one host name
//		storage          [badger] <directory>     # default: Caddy's data directory + /cinetpay
//		storage          postgres <dsn>           # several instances sharing one PostgreSQL database
//		currency         <XOF|XAF|CDF|GNF|USD>    # default XOF
//		channels         <ALL|MOBILE_MONEY|CREDIT_CARD|WALLET>  # v2, default ALL
//		lang             <fr|en>                  # default fr
//		timeout          <duration>               # per CinetPay API call, default 15s
//		forward_timeout  <duration>               # per delivery attempt, default 10s
//		rate_limit       <calls per second>       # CinetPay calls per second, default 10
//	}
//
// The directive takes no matcher: the handler must see every request of its site (it removes
// spoofed Cinetpay-* headers everywhere). Values may use {env.*} and {file.*}; any other
// placeholder is an error. Each sub-directive may appear once.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	h.tokens = &blockTokens{block: d.Token(), at: map[string]caddyfile.Token{}}
	if d.NextArg() {
		return d.Err("cinetpay takes no arguments and no matcher: it must see every request of its site")
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		name := d.Val()
		if seen[name] {
			return d.Errf("cinetpay: sub-directive %s is repeated", name)
		}
		seen[name] = true
		h.tokens.set(name, d.Token())
		args := d.RemainingArgs()
		one := func(dst *string) error {
			if len(args) != 1 {
				return d.Errf("cinetpay: %s takes exactly one value", name)
			}
			*dst = args[0]
			return nil
		}
		var err error
		switch name {
		case "api":
			err = one(&h.API)
		case "api_key":
			err = one(&h.APIKey)
		case "api_password":
			err = one(&h.APIPassword)
		case "country":
			err = one(&h.Country)
		case "account":
			err = one(&h.Account)
		case "ipv4_only":
			if len(args) != 0 {
				return d.Err("cinetpay: ipv4_only takes no value")
			}
			h.IPv4Only = true
		case "site_id":
			err = one(&h.SiteID)
		case "secret_key":
			err = one(&h.SecretKey)
		case "signing_key":
			if len(args) != 2 {
				return d.Err("cinetpay: signing_key takes a key id and a key")
			}
			h.SigningKey = &SigningKey{ID: args[0], Key: args[1]}
		case "endpoint":
			err = one(&h.Endpoint)
		case "checkout":
			if len(args) == 0 {
				return d.Err("cinetpay: checkout takes one or more path patterns")
			}
			h.Checkout = args
		case "checkout_methods":
			if len(args) == 0 {
				return d.Err("cinetpay: checkout_methods takes one or more HTTP methods")
			}
			h.CheckoutMethods = args
		case "notify":
			err = one(&h.Notify)
		case "return":
			err = one(&h.Return)
		case "forward":
			err = one(&h.Forward)
		case "deliver_format":
			err = one(&h.DeliverFormat)
		case "public_url":
			err = one(&h.PublicURL)
		case "storage":
			// storage <dir> | storage badger <dir> | storage postgres <dsn>
			switch {
			case len(args) == 2 && (args[0] == storageBadger || args[0] == storagePostgres):
				h.StorageBackend, h.Storage = args[0], args[1]
			case len(args) == 1 && args[0] != storageBadger && args[0] != storagePostgres:
				h.Storage = args[0]
			default:
				err = d.Errf("cinetpay: storage takes a directory, badger <directory> or postgres <dsn>")
			}
		case "currency":
			err = one(&h.Currency)
		case "channels":
			err = one(&h.Channels)
		case "lang":
			err = one(&h.Lang)
		case "timeout", "forward_timeout":
			var v string
			if err = one(&v); err != nil {
				break
			}
			dur, perr := caddy.ParseDuration(v)
			if perr != nil || dur <= 0 {
				return d.Errf("cinetpay: %s: bad duration %q", name, v)
			}
			if name == "timeout" {
				h.Timeout = caddy.Duration(dur)
			} else {
				h.ForwardTimeout = caddy.Duration(dur)
			}
		case "rate_limit":
			var v string
			if err = one(&v); err != nil {
				break
			}
			n, perr := strconv.Atoi(v)
			if perr != nil || n <= 0 {
				return d.Errf("cinetpay: rate_limit: %q is not a positive number of calls per second", v)
			}
			h.RateLimit = n
		default:
			return d.Errf("cinetpay: unknown sub-directive %s", name)
		}
		if err != nil {
			return err
		}
		if d.NextBlock(1) {
			return h.tokens.errorAt(fieldErrorf(name, "%s takes no block", name))
		}
	}
	for _, f := range h.stringFields() {
		if err := checkPlaceholders(f.name, *f.val); err != nil {
			return h.tokens.errorAt(err)
		}
	}
	return nil
}

// parseCaddyfile builds the handler, fills public_url from the site address when it is a
// single host name, and checks what can be checked before placeholders are resolved.
func parseCaddyfile(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	var c Handler
	if err := c.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	keys := serverBlockKeys(h)
	if c.PublicURL == "" && len(keys) == 1 {
		c.PublicURL = publicURLFromAddress(keys[0])
	}
	if err := c.check(false); err != nil {
		return nil, c.tokens.errorAt(err)
	}
	if !hasPlaceholder(c.Forward) {
		for _, k := range keys {
			if forwardHitsAddress(c.Forward, k) {
				return nil, c.tokens.errorAt(fieldErrorf("forward", "forward points at this site itself (%s): its deliveries would be stripped; deliver to the shop's own address", k))
			}
		}
	}
	if err := agreeAcrossBlocks(h, &c); err != nil {
		return nil, c.tokens.errorAt(err)
	}
	return h.NewRoute(nil, &c), nil
}

// serverBlockKeys returns the addresses of the site block being parsed. Caddy's Helper does
// not export them, so they are read by reflection; if Caddy changes the field, this returns
// nil and public_url is simply required.
func serverBlockKeys(h httpcaddyfile.Helper) (keys []string) {
	defer func() {
		if recover() != nil {
			keys = nil
		}
	}()
	block := reflect.ValueOf(h).FieldByName("parentBlock")
	if !block.IsValid() {
		return nil
	}
	ks := block.FieldByName("Keys")
	if !ks.IsValid() || ks.Kind() != reflect.Slice {
		return nil
	}
	for i := range ks.Len() {
		if t := ks.Index(i).FieldByName("Text"); t.IsValid() && t.Kind() == reflect.String {
			keys = append(keys, t.String())
		}
	}
	return keys
}

// publicURLFromAddress turns a site address with a host name into a base URL; "" if the
// address has no host name (":8080", "*.example.com", a placeholder).
func publicURLFromAddress(key string) string {
	addr, err := httpcaddyfile.ParseAddress(key)
	if err != nil || addr.Host == "" || strings.ContainsAny(addr.Host, "*{}") || addr.Path != "" {
		return ""
	}
	scheme := addr.Scheme
	if scheme == "" {
		scheme = "https"
		if addr.Port == strconv.Itoa(caddyhttp.DefaultHTTPPort) {
			scheme = "http"
		}
	}
	host := addr.Host
	if addr.Port != "" && !(scheme == "https" && addr.Port == "443") && !(scheme == "http" && addr.Port == "80") {
		host = net.JoinHostPort(addr.Host, addr.Port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host
}

// forwardHitsAddress reports whether the forward URL reaches a site address: same host and
// port, or, for an address without a host, a loopback host on its port.
func forwardHitsAddress(forward, key string) bool {
	u, err := url.Parse(forward)
	if err != nil {
		return false
	}
	addr, err := httpcaddyfile.ParseAddress(key)
	if err != nil || strings.ContainsAny(addr.Host, "*{}") {
		return false
	}
	port := addr.Port
	if port == "" {
		port = "443"
		if addr.Scheme == "http" {
			port = "80"
		}
	}
	if port != effectivePort(u) {
		return false
	}
	if addr.Host == "" {
		return engine.IsLoopbackHost(u.Hostname())
	}
	return strings.EqualFold(addr.Host, u.Hostname())
}

// agreeAcrossBlocks refuses two blocks with one site_id that disagree on its configuration,
// comparing the values as written (Provision compares the resolved ones too). The error is
// about the field of the later block.
func agreeAcrossBlocks(h httpcaddyfile.Helper, c *Handler) error {
	const stateKey = "cinetpay_sites"
	sites, _ := h.State[stateKey].(map[string]map[string]string)
	if sites == nil {
		sites = map[string]map[string]string{}
		h.State[stateKey] = sites
	}
	fields := c.agreement()
	ns := c.namespace()
	prev, ok := sites[ns]
	if !ok {
		sites[ns] = fields
		return nil
	}
	if name := firstDifference(prev, fields); name != "" {
		what := "site_id"
		if c.apiOrInferred() == apiV1 {
			what = "account"
		}
		return fieldErrorf(name, "two cinetpay blocks with %s %s disagree on %s; one %s must have one configuration", what, ns, name, what)
	}
	return nil
}

// blockTokens remembers where a cinetpay block is and where it sets each sub-directive, so
// that an error found once the block is parsed points at the line it concerns.
type blockTokens struct {
	block caddyfile.Token            // the directive's name
	at    map[string]caddyfile.Token // sub-directive -> its name, on the line of its values
	order []string                   // sub-directives in the order the block sets them
}

func (b *blockTokens) set(name string, tok caddyfile.Token) {
	b.at[name] = tok
	b.order = append(b.order, name)
}

// errorAt reports err as Dispenser.Errf does ("cinetpay: …, at Caddyfile:7", with the import
// chain of a snippet or file): where the block sets the last side of a *configError, each side
// at the first of its fields the block sets; at the cinetpay directive itself when the block
// sets none of them, as for a missing sub-directive.
func (b *blockTokens) errorAt(err error) error {
	tok := b.block
	var ce *configError
	if errors.As(err, &ce) {
		last := -1
		for _, side := range ce.sides {
			if i := slices.IndexFunc(b.order, func(name string) bool { return slices.Contains(side, name) }); i > last {
				last = i
			}
		}
		if last >= 0 {
			tok = b.at[b.order[last]]
		}
	}
	d := caddyfile.NewDispenser([]caddyfile.Token{tok})
	d.Next()
	return d.Errf("cinetpay: %v", err)
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
