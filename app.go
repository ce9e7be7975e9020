package caddycinetpay

import (
	"context"
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
	regs    []*registration
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
			e, ok := entries[sc.storageDir]
			if !ok {
				var err error
				if e, err = acquireEntry(sc.storageDir, a.logger); err != nil {
					a.err = err
					_ = a.releaseLocked()
					return
				}
				entries[sc.storageDir] = e
				a.entries = append(a.entries, sc.storageDir)
			}
			if sc.shared == nil {
				a.regs = append(a.regs, e.register(sc))
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
		r.entry.unregister(r)
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
// return paths use, and what the background work of the store uses for this site.
type siteConfig struct {
	siteID        string
	storageDir    string
	api           cinetpay.API
	secretKey     string
	signer        httpsig.Signer
	forward       string
	forwardClient *http.Client
	publicURL     string
	notifyURL     string
	returnBase    string // public_url + return path
	endpointHost  string
	environment   string
	timeout       time.Duration
	rateLimit     int
	logger        *zap.Logger

	// agree lists what handlers sharing a site id must agree on (secrets compared, never shown)
	agree map[string]string
	// shared is the first handler's config of the same site, when this one repeats it
	shared *siteConfig
	entry  atomic.Pointer[storeEntry]
}

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
	dir, err := filepath.Abs(h.Storage)
	if err != nil {
		return nil, fmt.Errorf("storage: %v", err)
	}
	dir = filepath.Clean(dir)
	env := envSandbox
	if cinetpay.IsCinetPayHost(endpoint.Hostname()) {
		env = envLive
	}
	public := strings.TrimRight(h.PublicURL, "/")
	sc := &siteConfig{
		siteID:     h.SiteID,
		storageDir: dir,
		api: &cinetpay.Client{
			Endpoint:  h.Endpoint,
			APIKey:    h.APIKey,
			SiteID:    h.SiteID,
			UserAgent: userAgent,
			Timeout:   time.Duration(h.Timeout),
		},
		secretKey:     h.SecretKey,
		signer:        httpsig.Signer{KeyID: h.SigningKey.ID, Key: []byte(h.SigningKey.Key)},
		forward:       h.Forward,
		forwardClient: newForwardClient(time.Duration(h.ForwardTimeout)),
		publicURL:     public,
		notifyURL:     public + h.Notify,
		returnBase:    public + h.Return,
		endpointHost:  endpoint.Host,
		environment:   env,
		timeout:       time.Duration(h.Timeout),
		rateLimit:     h.RateLimit,
		logger:        h.logger,
		agree:         h.agreement(),
	}
	sc.agree["storage"] = dir
	return sc, nil
}

// agreement lists what handlers sharing a site id must agree on: what the background work of
// the site uses. Values are compared, never shown.
func (h *Handler) agreement() map[string]string {
	return map[string]string{
		"api_key":         h.APIKey,
		"secret_key":      h.SecretKey,
		"signing_key":     h.SigningKey.ID + "\x00" + h.SigningKey.Key,
		"endpoint":        h.Endpoint,
		"forward":         h.Forward,
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
	tr.MaxIdleConnsPerHost = 8
	return &http.Client{
		Timeout:   timeout,
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// storePool holds one storeEntry per store directory, shared by every handler and config that
// names it; the entry is destroyed (workers stopped, Badger closed) when its last user lets go.
var storePool = caddy.NewUsagePool()

// acquireEntry loads or opens the entry of a directory, counting one more user.
func acquireEntry(dir string, logger *zap.Logger) (*storeEntry, error) {
	v, _, err := storePool.LoadOrNew(dir, func() (caddy.Destructor, error) {
		return openEntry(dir, logger)
	})
	if err != nil {
		// the pool dropped the failed entry itself
		return nil, fmt.Errorf("cinetpay storage %s: %v", dir, err)
	}
	return v.(*storeEntry), nil
}

// registration is one config's claim on a site of a store entry.
type registration struct {
	entry *storeEntry
	site  *siteConfig
}

// storeEntry is one open store and the background work on it: re-checks, deliveries,
// retention. It serves every site in the store with the newest registered configuration.
type storeEntry struct {
	dir    string
	store  storage.Store
	logger *zap.Logger

	mu       sync.Mutex
	regs     []*registration // oldest first; the last one of a site is its current config
	limiters map[string]*limiter

	checks flightGroup[storage.UpdateResult]
	starts flightGroup[startOutcome]

	wakeDeliveries chan struct{}
	cancel         context.CancelFunc
	wg             sync.WaitGroup
	// use is held (read) by every request using the store and taken (write) by Destruct, so
	// the store is never closed under a request; background tasks are counted by wg.
	use    sync.RWMutex
	closed bool // under mu
}

func openEntry(dir string, logger *zap.Logger) (*storeEntry, error) {
	logger = logger.With(zap.String("storage", dir))
	st, err := storage.Open(dir, storage.Options{Logger: logger.Named("badger")})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &storeEntry{
		dir:            dir,
		store:          st,
		logger:         logger,
		limiters:       map[string]*limiter{},
		wakeDeliveries: make(chan struct{}, 1),
		cancel:         cancel,
	}
	logger.Info("cinetpay store opened", zap.String("transaction_prefix", st.Prefix()))
	e.wg.Add(3)
	go e.deliveryLoop(ctx)
	go e.recheckLoop(ctx)
	go e.maintenanceLoop(ctx)
	return e, nil
}

// Destruct stops the background work, waits for the requests using the store, and closes it.
func (e *storeEntry) Destruct() error {
	e.cancel()
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.use.Lock() // wait for the requests in flight
	e.use.Unlock()
	e.wg.Wait()
	e.logger.Info("cinetpay store closed")
	return e.store.Close()
}

func (e *storeEntry) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// acquire marks one more request using the store until release; false once it is closing.
func (e *storeEntry) acquire() (release func(), ok bool) {
	e.use.RLock()
	if e.isClosed() {
		e.use.RUnlock()
		return nil, false
	}
	return e.use.RUnlock, true
}

// spawn runs fn in the background as a user of the store; false once it is closing.
func (e *storeEntry) spawn(fn func()) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		fn()
	}()
	return true
}

func (e *storeEntry) register(sc *siteConfig) *registration {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := &registration{entry: e, site: sc}
	e.regs = append(e.regs, r)
	if l, ok := e.limiters[sc.siteID]; ok {
		l.setRate(sc.rateLimit)
	} else {
		e.limiters[sc.siteID] = newLimiter(sc.rateLimit)
	}
	return r
}

func (e *storeEntry) unregister(r *registration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.regs = slices.DeleteFunc(e.regs, func(x *registration) bool { return x == r })
	if cur := e.currentLocked(r.site.siteID); cur != nil {
		e.limiters[cur.siteID].setRate(cur.rateLimit)
	}
}

// current is the newest registered configuration of a site, or nil.
func (e *storeEntry) current(siteID string) *siteConfig {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.currentLocked(siteID)
}

func (e *storeEntry) currentLocked(siteID string) *siteConfig {
	for i := len(e.regs) - 1; i >= 0; i-- {
		if e.regs[i].site.siteID == siteID {
			return e.regs[i].site
		}
	}
	return nil
}

func (e *storeEntry) limiter(siteID string) *limiter {
	e.mu.Lock()
	defer e.mu.Unlock()
	l, ok := e.limiters[siteID]
	if !ok {
		l = newLimiter(defaultRateLimit)
		e.limiters[siteID] = l
	}
	return l
}

// maintenanceLoop purges old records every 6 h and reclaims disk space every 10 min.
func (e *storeEntry) maintenanceLoop(ctx context.Context) {
	defer e.wg.Done()
	gc := time.NewTicker(10 * time.Minute)
	defer gc.Stop()
	purge := time.NewTicker(6 * time.Hour)
	defer purge.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-gc.C:
			if err := e.store.GC(); err != nil {
				e.logger.Warn("badger value log GC", zap.Error(err))
			}
		case <-purge.C:
			n, err := e.store.Purge(now(), retention)
			if err != nil {
				e.logger.Error("purging old payments", zap.Error(err))
			} else if n > 0 {
				e.logger.Info("purged old payments", zap.Int("count", n))
			}
		}
	}
}

// retention is how long a settled payment, its history and deliveries are kept.
const retention = 90 * 24 * time.Hour

// clock is the module's clock; tests swap it to drive re-checks and expiry.
var clock atomic.Pointer[func() time.Time]

func now() time.Time {
	if f := clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// flightGroup runs one call per key at a time; callers of a key in flight share its result.
type flightGroup[T any] struct {
	mu sync.Mutex
	m  map[string]*flight[T]
}

type flight[T any] struct {
	started time.Time
	done    chan struct{}
	val     T
	err     error
}

// do runs fn for key unless a call for key is in flight, in which case it waits for that
// call's result.
func (g *flightGroup[T]) do(key string, fn func() (T, error)) (T, error) {
	return g.doSince(key, time.Time{}, fn)
}

// doSince is do, but shares only a call that began at since or later: a caller that must not
// act on an answer older than itself (a notification) waits for an older call to end, then
// runs or joins a new one.
func (g *flightGroup[T]) doSince(key string, since time.Time, fn func() (T, error)) (T, error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = map[string]*flight[T]{}
	}
	for {
		f, ok := g.m[key]
		if !ok {
			break
		}
		g.mu.Unlock()
		<-f.done
		if !f.started.Before(since) {
			return f.val, f.err
		}
		g.mu.Lock()
	}
	f := &flight[T]{started: time.Now(), done: make(chan struct{})}
	g.m[key] = f
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.m, key)
		g.mu.Unlock()
		close(f.done)
	}()
	f.val, f.err = fn()
	return f.val, f.err
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
	_ caddy.Destructor   = (*storeEntry)(nil)
)

// pump runs a queue of the store: every second (and when woken), it lists what is due and
// hands each item not already in flight to handle, at most workers at a time, as background
// work of the store.
func pump[T any](ctx context.Context, e *storeEntry, wake <-chan struct{}, workers int, what string,
	due func() ([]T, error), key func(T) string, handle func(T)) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	sem := make(chan struct{}, workers)
	inflight := newKeySet()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-wake:
		}
		items, err := due()
		if err != nil {
			e.logger.Error("listing due "+what, zap.Error(err))
			continue
		}
		for _, it := range items {
			id := key(it)
			if !inflight.add(id) {
				continue
			}
			select {
			case sem <- struct{}{}:
			default:
				inflight.remove(id) // all workers busy: next round
				continue
			}
			if !e.spawn(func() {
				defer func() { <-sem; inflight.remove(id) }()
				handle(it)
			}) {
				return
			}
		}
	}
}

// keySet is a set of strings safe for concurrent use.
type keySet struct {
	mu sync.Mutex
	m  map[string]bool
}

func newKeySet() *keySet { return &keySet{m: map[string]bool{}} }

// add adds k and reports whether it was absent.
func (s *keySet) add(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[k] {
		return false
	}
	s.m[k] = true
	return true
}

func (s *keySet) remove(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
}
