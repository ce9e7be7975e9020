package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpay"
)

// Merchant is one CinetPay site known to the sandbox. Several merchants may
// share an APIKey: that is one CinetPay account with several sites.
type Merchant struct {
	// SiteID is the merchant's site_id.
	SiteID string `json:"site_id,omitempty"`
	// APIKey is the apikey that must come with this site_id.
	APIKey string `json:"api_key,omitempty"`
	// SecretKey keys the x-token HMAC of this site's notifications.
	SecretKey string `json:"secret_key,omitempty"`
}

// Config configures a Server.
type Config struct {
	// Merchants are the sites the API accepts. When two share a SiteID, the
	// first one counts.
	Merchants []Merchant
	// Accounts are the merchant accounts of CinetPay's current API (v1)
	// that POST /v1/oauth/login accepts. When two share an APIKey, the
	// first one counts.
	Accounts []Account
	// AllowRemote answers clients that are not on a loopback address.
	// Default: only loopback clients (by the request's RemoteAddr) are
	// answered; others get 403.
	AllowRemote bool
	// PublicURL is the base URL of the payment pages in payment_url (for
	// instance "http://127.0.0.1:8081" or "https://sandbox.test/cinetpay"
	// when the sandbox is served under a stripped prefix). Empty: derived
	// from each /v2/payment or /v1/payment request (scheme and Host).
	PublicURL string
	// V1PagePath is the path, under PublicURL, of the v1 payment pages:
	// payment_url is PublicURL + V1PagePath + "/" + payment_token. Where
	// CinetPay serves them is not settled (/payment/<token> in answers seen,
	// /checkout/<token> in URLs its front-end SDKs build), so clients must
	// use payment_url as given. Default: "/payment".
	V1PagePath string
	// HTTPClient sends notifications. Default: a 10 s timeout, redirects
	// not followed.
	HTTPClient *http.Client
	// Logger receives the sandbox's logs. Default: none.
	Logger *zap.Logger
}

// Server is the sandbox: an http.Handler serving CinetPay's API, the payment
// page and the control API. Its state is in memory. Create it with New and
// stop it with Close.
type Server struct {
	cfg       Config
	merchants map[string]Merchant // by site_id
	accounts  map[string]Account  // v1, by api_key
	client    *http.Client
	logger    *zap.Logger

	ctx    context.Context // done when the server is closed
	cancel context.CancelFunc
	wg     sync.WaitGroup

	seq atomic.Uint64 // api_response_id counter

	closeMu sync.Mutex // guards closed and wg.Add; may be taken with mu held
	closed  bool

	mu       sync.Mutex
	txs      map[txKey]*transaction
	tokens   map[string]*transaction
	order    []*transaction // in creation order
	requests []*Request
	faults   Faults
	rateHits []time.Time // API calls let through during the last second

	v1txs      map[txKey]*transaction  // by api_key and merchant_transaction_id
	v1ids      map[string]*transaction // by CinetPay's transaction_id
	v1sessions map[string]*v1Session   // by bearer token; kept by Reset
}

type txKey struct{ site, id string }

// New returns a running Server for cfg.
func New(cfg Config) *Server {
	s := &Server{
		cfg:       cfg,
		merchants: make(map[string]Merchant),
		client:    cfg.HTTPClient,
		logger:    cfg.Logger,
		txs:       make(map[txKey]*transaction),
		tokens:    make(map[string]*transaction),

		accounts:   make(map[string]Account),
		v1txs:      make(map[txKey]*transaction),
		v1ids:      make(map[string]*transaction),
		v1sessions: make(map[string]*v1Session),
	}
	for _, m := range cfg.Merchants {
		if _, ok := s.merchants[m.SiteID]; !ok {
			s.merchants[m.SiteID] = m
		}
	}
	for _, a := range cfg.Accounts {
		if _, ok := s.accounts[a.APIKey]; !ok {
			s.accounts[a.APIKey] = a
		}
	}
	if s.client == nil {
		s.client = &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if s.logger == nil {
		s.logger = zap.NewNop()
	}
	s.cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	s.cfg.V1PagePath = "/" + strings.Trim(cfg.V1PagePath, "/")
	if s.cfg.V1PagePath == "/" {
		s.cfg.V1PagePath = defaultV1PagePath
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Close stops the background work (asynchronous notifications, delayed late
// successes, hanging answers, notification retries) and waits for it to
// end. Afterwards the Server still answers requests but sends no more
// notifications.
func (s *Server) Close() error {
	s.closeMu.Lock()
	s.closed = true
	s.closeMu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// goAsync runs f in a goroutine that Close waits for, unless the server is
// closed.
func (s *Server) goAsync(f func()) {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// sleep waits for d or until the server is closed; it reports whether the
// whole delay passed.
func (s *Server) sleep(d time.Duration) bool {
	if d <= 0 {
		return s.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// ServeHTTP routes a request; see the package documentation for the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.AllowRemote && !isLocal(r.RemoteAddr) {
		http.Error(w, "cinetpay sandbox: only loopback clients are answered", http.StatusForbidden)
		return
	}
	p := r.URL.Path
	switch {
	case p == cinetpay.PathPayment || p == cinetpay.PathPayment+"/":
		s.serveAPI(w, r, cinetpay.PathPayment, s.createPayment)
	case p == cinetpay.PathCheck || p == cinetpay.PathCheck+"/":
		s.serveAPI(w, r, cinetpay.PathCheck, s.checkPayment)
	case strings.HasPrefix(p, "/pay/"):
		s.servePage(w, r, strings.TrimPrefix(p, "/pay/"))
	case strings.HasPrefix(p, "/v1/"):
		s.serveV1(w, r)
	case strings.HasPrefix(p, s.cfg.V1PagePath+"/"):
		s.serveV1Page(w, r, strings.TrimPrefix(p, s.cfg.V1PagePath+"/"))
	case p == "/_sandbox" || strings.HasPrefix(p, "/_sandbox/"):
		s.serveControl(w, r, strings.TrimPrefix(p, "/_sandbox"))
	default:
		http.NotFound(w, r)
	}
}

// isLocal reports whether addr, a RemoteAddr, is a loopback address or a
// Unix socket peer.
func isLocal(addr string) bool {
	if addr == "@" {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// baseURL is the base of the payment_url answered to r.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// responseID returns a unique api_response_id shaped like CinetPay's
// ("1663323067.7677").
func (s *Server) responseID() string {
	return fmt.Sprintf("%d.%04d", time.Now().Unix(), s.seq.Add(1))
}

// randomHex returns n random bytes, hex-encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// randomDigits returns n random decimal digits.
func randomDigits(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
