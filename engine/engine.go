// Package engine is the payment engine of caddy-cinetpay: it starts payments, decides what
// CinetPay's status answers mean, re-checks open payments, and delivers every result to the
// shop at least once through a durable outbox. It speaks to CinetPay through a Provider (one per
// API) and keeps everything in a storage.Store. It is plain Go: the Caddy module adapts HTTP and
// configuration to it, as caddytls adapts certmagic.
//
// One Engine serves one store and every site in it, always with the newest registered
// configuration of each site (config reloads register new ones before the old ones leave).
package engine

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Site is one CinetPay merchant site as the engine serves it.
type Site struct {
	// ID is the site's namespace in the store (the CinetPay site_id).
	ID string
	// Provider speaks to CinetPay for this site.
	Provider Provider
	// Environment is "live" or "sandbox", recorded with every payment.
	Environment string
	// Timeout bounds each CinetPay call.
	Timeout time.Duration
	// RateLimit is the site's budget of CinetPay calls per second, all kinds together.
	RateLimit int
	// Deliver makes one attempt of a delivery to the shop and reports the shop's HTTP status
	// and Retry-After. It must not follow redirects.
	Deliver func(ctx context.Context, d *storage.Delivery) (status int, retryAfter time.Duration, err error)
	// DeliveryTimeout bounds one attempt of Deliver (the attempt's lease adds LeaseMargin).
	DeliveryTimeout time.Duration
	// Logger receives the site's logs.
	Logger *zap.Logger
}

// StartGrace is how long an INIT payment of the site counts as a start in progress.
func (s *Site) StartGrace() time.Duration { return s.Timeout + LimiterWait + 30*time.Second }

// LimiterWait is how long a call may wait for the rate limit, on top of its timeout.
const LimiterWait = 5 * time.Second

// Registration is one configuration's claim on a site of an Engine.
type Registration struct {
	engine *Engine
	site   *Site
}

// Engine is one open store and the work on it: starts, checks, re-checks, deliveries,
// retention.
type Engine struct {
	store  storage.Store
	logger *zap.Logger
	// holder names this engine's leases in a shared store
	holder string

	mu       sync.Mutex
	regs     []*Registration // oldest first; the last one of a site is its current config
	limiters map[string]*limiter
	closed   bool

	checks flightGroup[storage.UpdateResult]
	starts flightGroup[StartResult]

	wakeDeliveries chan struct{}
	wakeChecks     chan struct{}
	cancel         context.CancelFunc
	wg             sync.WaitGroup
	// use is held (read) by every request using the store and taken (write) by Close, so the
	// store is never closed under a request; background tasks are counted by wg.
	use sync.RWMutex
}

// New starts an engine on an open store; Close stops it and closes the store.
func New(store storage.Store, logger *zap.Logger) *Engine {
	if logger == nil {
		logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		store:          store,
		logger:         logger,
		holder:         randomToken(),
		limiters:       map[string]*limiter{},
		wakeDeliveries: make(chan struct{}, 1),
		wakeChecks:     make(chan struct{}, 1),
		cancel:         cancel,
	}
	e.wg.Add(3)
	go e.deliveryLoop(ctx)
	go e.recheckLoop(ctx)
	go e.maintenanceLoop(ctx)
	return e
}

// Store is the engine's store.
func (e *Engine) Store() storage.Store { return e.store }

// Close stops the background work, waits for the requests using the store, and closes it.
func (e *Engine) Close() error {
	e.cancel()
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.use.Lock() // wait for the requests in flight
	e.use.Unlock()
	e.wg.Wait()
	return e.store.Close()
}

func (e *Engine) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// Acquire marks one more request using the engine until release; false once it is closing.
func (e *Engine) Acquire() (release func(), ok bool) {
	e.use.RLock()
	if e.isClosed() {
		e.use.RUnlock()
		return nil, false
	}
	return e.use.RUnlock, true
}

// spawn runs fn in the background as a user of the store; false once it is closing.
func (e *Engine) spawn(fn func()) bool {
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

// Register adds a configuration of a site; it becomes the site's current one.
func (e *Engine) Register(s *Site) *Registration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.Logger == nil {
		s.Logger = e.logger.With(zap.String("site_id", s.ID))
	}
	r := &Registration{engine: e, site: s}
	e.regs = append(e.regs, r)
	if l, ok := e.limiters[s.ID]; ok {
		l.setRate(s.RateLimit)
	} else {
		e.limiters[s.ID] = newLimiter(s.RateLimit)
	}
	return r
}

// Unregister removes a configuration; the site's previous one, if any, is current again.
func (r *Registration) Unregister() {
	e := r.engine
	e.mu.Lock()
	defer e.mu.Unlock()
	e.regs = slices.DeleteFunc(e.regs, func(x *Registration) bool { return x == r })
	if cur := e.currentLocked(r.site.ID); cur != nil {
		e.limiters[cur.ID].setRate(cur.RateLimit)
	}
}

// Sites are the ids of the sites registered, each once, in the order of their first
// registration.
func (e *Engine) Sites() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, r := range e.regs {
		if !slices.Contains(out, r.site.ID) {
			out = append(out, r.site.ID)
		}
	}
	return out
}

// Current is the newest registered configuration of a site, or nil.
func (e *Engine) Current(siteID string) *Site {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.currentLocked(siteID)
}

func (e *Engine) currentLocked(siteID string) *Site {
	for i := len(e.regs) - 1; i >= 0; i-- {
		if e.regs[i].site.ID == siteID {
			return e.regs[i].site
		}
	}
	return nil
}

// DefaultRateLimit is the rate budget of a site whose configuration does not give one.
const DefaultRateLimit = 10

func (e *Engine) limiter(siteID string) *limiter {
	e.mu.Lock()
	defer e.mu.Unlock()
	l, ok := e.limiters[siteID]
	if !ok {
		l = newLimiter(DefaultRateLimit)
		e.limiters[siteID] = l
	}
	return l
}

// Retention is how long a settled payment, its history and deliveries are kept.
const Retention = 90 * 24 * time.Hour

// maintenanceLoop purges old records every 6 h and reclaims disk space every 10 min.
func (e *Engine) maintenanceLoop(ctx context.Context) {
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
				e.logger.Warn("store space reclaim", zap.Error(err))
			}
		case <-purge.C:
			n, err := e.purge()
			if err != nil {
				e.logger.Error("purging old payments", zap.Error(err))
			} else if n > 0 {
				e.logger.Info("purged old payments", zap.Int("count", n))
			}
		}
	}
}

// clock is the engine's clock; tests swap it to drive re-checks and expiry.
var clock atomic.Pointer[func() time.Time]

// Now is the engine's time: the wall clock, or the one a test set.
func Now() time.Time {
	if f := clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// SetClock replaces the engine's clock (nil: the wall clock again). For tests.
func SetClock(f func() time.Time) {
	if f == nil {
		clock.Store(nil)
		return
	}
	clock.Store(&f)
}
