package caddycinetpay

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpay"
	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpayv1"
	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

func init() {
	caddy.RegisterModule(new(App))
}

// App is the companion app of the cinetpay handlers; it has no configuration of its own. The
// handlers of one config register their sites with it while provisioning; when Caddy starts
// the config, it opens each store (shared through a usage pool across handlers and config
// reloads) and hands it the sites' current configuration. Opening stores at start, not at
// provisioning, lets `caddy validate` run while a Caddy holds the store.
type App struct {
	mu      sync.Mutex
	sites   map[string]*siteConfig // the first config of each site id
	order   []*siteConfig          // every handler's config, in provisioning order
	once    sync.Once
	err     error
	stopped bool
	entries []string // storage dirs acquired
	regs    []*engine.Registration
	logger  *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "cinetpay",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision sets the app up.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.sites = map[string]*siteConfig{}
	return nil
}

// register adds a handler's site. Two handlers with one site id must agree on everything the
// background work uses; else a load error naming the field.
func (a *App) register(sc *siteConfig) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if prev, ok := a.sites[sc.siteID]; ok {
		if field := firstDifference(prev.agree, sc.agree); field != "" {
			return fmt.Errorf("site_id %s: two cinetpay handlers disagree on %s; one site_id must have one configuration", sc.siteID, field)
		}
		sc.shared = prev
	} else {
		a.sites[sc.siteID] = sc
	}
	a.order = append(a.order, sc)
	return nil
}

// Start opens the stores.
func (a *App) Start() error { return a.ensureStarted() }

// ensureStarted opens the stores once: from Start, or from the first request if Caddy started
// the http app first.
func (a *App) ensureStarted() error {
	a.once.Do(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.stopped {
			a.err = errors.New("cinetpay app stopped")
			return
		}
		entries := map[string]*storeEntry{}
		for _, sc := range a.order {
			e, ok := entries[sc.store]
			if !ok {
				var err error
				if e, err = acquireEntry(sc.store, a.logger); err != nil {
					a.err = err
					_ = a.releaseLocked()
					return
				}
				entries[sc.store] = e
				a.entries = append(a.entries, sc.store)
			}
			if sc.shared == nil {
				a.regs = append(a.regs, e.Register(sc.eng))
			}
			sc.entry.Store(e)
		}
	})
	return a.err
}

// Stop hands the sites back and releases the stores; the last user of a store closes it.
func (a *App) Stop() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = true
	return a.releaseLocked()
}

// Cleanup releases what Stop did not (a config whose start failed half-way).
func (a *App) Cleanup() error { return a.Stop() }

func (a *App) releaseLocked() error {
	for _, r := range a.regs {
		r.Unregister()
	}
	a.regs = nil
	var errs []error
	for _, dir := range a.entries {
		if _, err := storePool.Delete(dir); err != nil {
			errs = append(errs, err)
		}
	}
	a.entries = nil
	return errors.Join(errs...)
}

// siteConfig is the resolved configuration of one handler's site: what the start, notify and
// return paths use, and (eng) what the engine uses for this site.
type siteConfig struct {
	// siteID is what the site's payments are stored under: the v2 site_id or the v1 account
	siteID string
	// store names the store: badger:<absolute directory> or postgres:<dsn>
	store string
	eng   *engine.Site
	// settled answers exact repeats of notifications already verified for a final payment
	settled       *engine.SettledNotices
	signer        httpsig.Signer
	forward       string
	format        string // deliver_format
	forwardClient *http.Client
	publicURL     string
	notifyURL     string
	returnBase    string // public_url + return path
	logger        *zap.Logger

	// agree lists what handlers sharing a site id must agree on (secrets compared, never shown)
	agree map[string]string
	// shared is the first handler's config of the same site, when this one repeats it
	shared *siteConfig
	entry  atomic.Pointer[storeEntry]
}

// The CinetPay APIs a site may speak.
const (
	apiV1 = "v1"
	apiV2 = "v2"
)

// Environments of a result.
const (
	envLive    = "live"
	envSandbox = "sandbox"
)

func (h *Handler) newSiteConfig() (*siteConfig, error) {
	endpoint, err := parseEndpoint(h.Endpoint)
	if err != nil {
		return nil, err
	}
	store := storagePostgres + ":" + h.Storage
	if h.StorageBackend != storagePostgres {
		dir, err := filepath.Abs(h.Storage)
		if err != nil {
			return nil, fmt.Errorf("storage: %v", err)
		}
		store = storageBadger + ":" + filepath.Clean(dir)
	}
	public := strings.TrimRight(h.PublicURL, "/")
	// every line about the site says which it is
	siteField := zap.String("site_id", h.namespace())
	engineLog := zap.NewNop()
	if h.app != nil {
		engineLog = h.app.logger.Named("engine")
	}
	sc := &siteConfig{
		siteID:        h.namespace(),
		store:         store,
		signer:        httpsig.Signer{KeyID: h.SigningKey.ID, Key: []byte(h.SigningKey.Key)},
		forward:       h.Forward,
		format:        cmp.Or(h.DeliverFormat, formatRFC9421),
		forwardClient: newForwardClient(time.Duration(h.ForwardTimeout)),
		publicURL:     public,
		notifyURL:     public + h.Notify,
		returnBase:    public + h.Return,
		logger:        h.logger.With(siteField),
		agree:         h.agreement(),
	}
	sc.agree["storage"] = store
	timeout := time.Duration(h.Timeout)
	env := envSandbox
	var prov engine.Provider
	switch h.API {
	case apiV1:
		host := strings.ToLower(endpoint.Hostname())
		if cinetpayv1.IsLiveHost(host) {
			env = envLive
		}
		switch {
		case cinetpayv1.IsLiveKey(h.APIKey) && host == "api.cinetpay.net":
			h.logger.Warn("a sk_live_ api_key with CinetPay's test host: live keys belong to https://api.cinetpay.co", zap.String("account", sc.siteID))
		case cinetpayv1.IsTestKey(h.APIKey) && host == "api.cinetpay.co":
			h.logger.Warn("a sk_test_ api_key with CinetPay's live host: test keys belong to https://api.cinetpay.net", zap.String("account", sc.siteID))
		}
		country, _ := cinetpayv1.LookupCountry(h.Country)
		prov = &cinetpayv1.Provider{
			Endpoint: h.Endpoint,
			API: &cinetpayv1.Client{
				Endpoint:    h.Endpoint,
				APIKey:      h.APIKey,
				APIPassword: h.APIPassword,
				UserAgent:   userAgent,
				Timeout:     timeout,
				IPv4Only:    h.IPv4Only,
			},
			Country:    country,
			NotifyURL:  sc.notifyURL,
			ReturnBase: sc.returnBase,
		}
		// a call may need a login first
		timeout *= 2
	default:
		if cinetpay.IsCinetPayHost(endpoint.Hostname()) {
			env = envLive
		}
		prov = &cinetpay.Provider{
			Endpoint: h.Endpoint,
			API: &cinetpay.Client{
				Endpoint:  h.Endpoint,
				APIKey:    h.APIKey,
				SiteID:    h.SiteID,
				UserAgent: userAgent,
				Timeout:   timeout,
			},
			SiteID:     h.SiteID,
			SecretKey:  h.SecretKey,
			NotifyURL:  sc.notifyURL,
			ReturnBase: sc.returnBase,
		}
	}
	sc.eng = &engine.Site{
		ID:              sc.siteID,
		Provider:        prov,
		Environment:     env,
		Timeout:         timeout,
		RateLimit:       h.RateLimit,
		Deliver:         sc.send,
		DeliveryTimeout: sc.forwardClient.Timeout,
		Logger:          engineLog.With(siteField),
	}
	sc.settled = engine.NewSettledNotices(prov.NoticeHeaders())
	return sc, nil
}

// namespace is what the site's payments are stored under: the v1 account (by default
// <country>-<live|test>), or the v2 site_id.
func (h *Handler) namespace() string {
	if h.apiOrInferred() != apiV1 {
		return h.SiteID
	}
	if h.Account != "" {
		return h.Account
	}
	env := "live"
	if cinetpayv1.IsTestKey(h.APIKey) {
		env = "test"
	}
	return strings.ToLower(h.Country) + "-" + env
}

// agreement lists what handlers sharing a site id must agree on: what the background work of
// the site uses. Values are compared, never shown.
func (h *Handler) agreement() map[string]string {
	return map[string]string{
		"api":             h.apiOrInferred(),
		"api_key":         h.APIKey,
		"api_password":    h.APIPassword,
		"country":         strings.ToUpper(h.Country),
		"ipv4_only":       fmt.Sprint(h.IPv4Only),
		"secret_key":      h.SecretKey,
		"signing_key":     h.SigningKey.ID + "\x00" + h.SigningKey.Key,
		"endpoint":        h.Endpoint,
		"forward":         h.Forward,
		"deliver_format":  cmp.Or(h.DeliverFormat, formatRFC9421),
		"storage":         h.Storage,
		"timeout":         time.Duration(h.Timeout).String(),
		"forward_timeout": time.Duration(h.ForwardTimeout).String(),
		"rate_limit":      fmt.Sprint(h.RateLimit),
	}
}

// firstDifference names the first key, in sorted order, whose values differ.
func firstDifference(a, b map[string]string) string {
	keys := slices.Sorted(maps.Keys(a))
	for _, k := range keys {
		if a[k] != b[k] {
			return k
		}
	}
	return ""
}

const userAgent = "caddy-cinetpay/1 (+https://github.com/caddy-cinetpay/caddy-cinetpay)"

// newForwardClient is the HTTP client of deliveries: a timeout per attempt, no redirects.
func newForwardClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = engine.DeliveryWorkers // one per worker: no connection churn
	return &http.Client{
		Timeout:   timeout,
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// storePool holds one storeEntry per store (a Badger directory, a PostgreSQL DSN), shared by
// every handler and config that names it; the entry is destroyed (workers stopped, store
// closed) when its last user lets go.
var storePool = caddy.NewUsagePool()

// acquireEntry loads or opens the entry of a store, counting one more user.
func acquireEntry(store string, logger *zap.Logger) (*storeEntry, error) {
	v, _, err := storePool.LoadOrNew(store, func() (caddy.Destructor, error) {
		return openEntry(store, logger)
	})
	if err != nil {
		// the pool dropped the failed entry itself
		return nil, fmt.Errorf("cinetpay storage %s: %v", storeLabel(store), err)
	}
	return v.(*storeEntry), nil
}

// storeLabel is how a store is named in logs and the admin API: its directory, or its
// database without the password.
func storeLabel(store string) string {
	backend, where, _ := strings.Cut(store, ":")
	if backend == storagePostgres {
		return storage.RedactDSN(where)
	}
	return where
}

// storeEntry is one open store and its payment engine, shared through storePool.
type storeEntry struct {
	*engine.Engine
	// dir names the store for people: its directory, or its database (no password)
	dir    string
	logger *zap.Logger
}

func openEntry(store string, logger *zap.Logger) (*storeEntry, error) {
	label := storeLabel(store)
	storeLog := logger.Named("store").With(zap.String("storage", label))
	backend, where, _ := strings.Cut(store, ":")
	var st storage.Store
	var err error
	if backend == storagePostgres {
		st, err = storage.OpenPostgres(where, storage.PostgresOptions{})
	} else {
		st, err = storage.Open(where, storage.Options{Logger: storeLog.Named("badger")})
	}
	if err != nil {
		return nil, err
	}
	storeLog.Info("cinetpay store opened", zap.String("backend", backend), zap.String("transaction_prefix", st.Prefix()))
	return &storeEntry{Engine: engine.New(st, logger.Named("engine").With(zap.String("storage", label))), dir: label, logger: storeLog}, nil
}

// Destruct stops the engine and closes the store.
func (e *storeEntry) Destruct() error {
	err := e.Close()
	e.logger.Info("cinetpay store closed")
	return err
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
	_ caddy.Destructor   = (*storeEntry)(nil)
)
