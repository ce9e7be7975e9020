package caddycinetpay

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

func init() {
	caddy.RegisterModule(Admin{})
}

// Admin is the operator's window into the stores a running Caddy holds (Badger allows one
// process per directory, so this is the way in). It adds these routes to Caddy's admin API:
//
//	GET  /cinetpay/payments[?site_id=&state=&order_id=&limit=]     list payments
//	GET  /cinetpay/payments/<site_id>/<transaction_id>             one payment, with its deliveries
//	POST /cinetpay/payments/<site_id>/<transaction_id>/recheck     check it at CinetPay now
//	GET  /cinetpay/deliveries[?site_id=&state=&transaction_id=&limit=]  list deliveries
//	POST /cinetpay/deliveries/<site_id>/<event_id>/replay          deliver it again
//
// Answers are JSON. Lists cover every open store unless ?storage=<directory> names one.
type Admin struct{}

// CaddyModule returns the Caddy module information.
func (Admin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.cinetpay",
		New: func() caddy.Module { return new(Admin) },
	}
}

// Routes returns the admin routes.
func (a *Admin) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/cinetpay/", Handler: caddy.AdminHandlerFunc(a.serve)},
	}
}

// listedPayment and listedDelivery tell which store a record comes from.
type listedPayment struct {
	Storage string `json:"storage"`
	storage.Payment
}

type listedDelivery struct {
	Storage string `json:"storage"`
	storage.Delivery
}

func (a *Admin) serve(w http.ResponseWriter, r *http.Request) error {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/cinetpay/"), "/"), "/")
	q := r.URL.Query()
	switch {
	case len(parts) == 1 && parts[0] == "payments":
		if err := method(r, http.MethodGet); err != nil {
			return err
		}
		f := storage.PaymentFilter{SiteID: q.Get("site_id"), State: storage.State(strings.ToUpper(q.Get("state"))),
			OrderID: q.Get("order_id"), Limit: limit(q.Get("limit"))}
		if f.State != "" && !f.State.Valid() {
			return apiError(http.StatusBadRequest, "unknown state %q", q.Get("state"))
		}
		if f.OrderID != "" && f.SiteID == "" {
			return apiError(http.StatusBadRequest, "order_id needs site_id")
		}
		out := []listedPayment{}
		err := eachEntry(q.Get("storage"), func(e *storeEntry) error {
			ps, err := e.Store().ListPayments(f)
			for _, p := range ps {
				out = append(out, listedPayment{e.dir, p.Redacted()})
			}
			return err
		})
		if err != nil {
			return apiError(http.StatusInternalServerError, "%v", err)
		}
		return writeJSON(w, map[string]any{"payments": out})

	case len(parts) == 1 && parts[0] == "deliveries":
		if err := method(r, http.MethodGet); err != nil {
			return err
		}
		f := storage.DeliveryFilter{SiteID: q.Get("site_id"), State: storage.DeliveryState(strings.ToLower(q.Get("state"))),
			TransactionID: q.Get("transaction_id"), Limit: limit(q.Get("limit"))}
		out := []listedDelivery{}
		err := eachEntry(q.Get("storage"), func(e *storeEntry) error {
			ds, err := e.Store().ListDeliveries(f)
			for _, d := range ds {
				out = append(out, listedDelivery{e.dir, d})
			}
			return err
		})
		if err != nil {
			return apiError(http.StatusInternalServerError, "%v", err)
		}
		return writeJSON(w, map[string]any{"deliveries": out})

	case len(parts) == 3 && parts[0] == "payments":
		if err := method(r, http.MethodGet); err != nil {
			return err
		}
		return withPayment(parts[1], parts[2], func(e *storeEntry, p storage.Payment) error {
			ds, err := e.Store().ListDeliveries(storage.DeliveryFilter{SiteID: p.SiteID, TransactionID: p.TransactionID})
			if err != nil {
				return apiError(http.StatusInternalServerError, "%v", err)
			}
			return writeJSON(w, map[string]any{"payment": listedPayment{e.dir, p.Redacted()}, "deliveries": ds})
		})

	case len(parts) == 4 && parts[0] == "payments" && parts[3] == "recheck":
		if err := method(r, http.MethodPost); err != nil {
			return err
		}
		return withPayment(parts[1], parts[2], func(e *storeEntry, p storage.Payment) error {
			if p.State.Final() || p.State == storage.StateFailed {
				return writeJSON(w, map[string]any{"payment": listedPayment{e.dir, p.Redacted()}, "checked": false,
					"note": "the payment is settled; nothing to check"})
			}
			if p.State == storage.StateInit {
				return apiError(http.StatusConflict, "the payment's start is in progress")
			}
			sc := e.Current(p.SiteID)
			if sc == nil {
				return apiError(http.StatusConflict, "site %s is not in the running configuration", p.SiteID)
			}
			res, err := e.Check(sc, p.TransactionID, engine.PrioRecheck)
			if err != nil {
				return apiError(http.StatusBadGateway, "%v", err)
			}
			return writeJSON(w, map[string]any{"payment": listedPayment{e.dir, res.Payment.Redacted()}, "checked": true,
				"changed": res.Changed})
		})

	case len(parts) == 4 && parts[0] == "deliveries" && parts[3] == "replay":
		if err := method(r, http.MethodPost); err != nil {
			return err
		}
		found, err := firstEntry(func(e *storeEntry) (bool, error) {
			d, err := e.Store().Replay(parts[1], parts[2], engine.Now())
			if errors.Is(err, storage.ErrNotFound) {
				return false, nil
			} else if err != nil {
				return true, err
			}
			e.Wake()
			return true, writeJSON(w, map[string]any{"delivery": listedDelivery{e.dir, d}})
		})
		if err != nil {
			return apiError(http.StatusInternalServerError, "%v", err)
		}
		if !found {
			return apiError(http.StatusNotFound, "no delivery %s of site %s", parts[2], parts[1])
		}
		return nil
	}
	return apiError(http.StatusNotFound, "unknown cinetpay admin route")
}

// eachEntry calls fn for each open store (or only the one in dir), holding it open meanwhile.
func eachEntry(dir string, fn func(e *storeEntry) error) error {
	var entries []*storeEntry
	storePool.Range(func(k, v any) bool {
		if e, ok := v.(*storeEntry); ok && (dir == "" || k == dir) {
			entries = append(entries, e)
		}
		return true
	})
	for _, e := range entries {
		release, ok := e.Acquire()
		if !ok {
			continue
		}
		err := fn(e)
		release()
		if err != nil {
			return err
		}
	}
	return nil
}

// firstEntry calls fn for each open store, holding it open meanwhile, until fn reports that it
// found what it looked for.
func firstEntry(fn func(e *storeEntry) (found bool, err error)) (bool, error) {
	found := false
	err := eachEntry("", func(e *storeEntry) error {
		if found {
			return nil
		}
		var err error
		found, err = fn(e)
		return err
	})
	return found, err
}

// withPayment finds a payment in the open stores.
func withPayment(site, txid string, fn func(e *storeEntry, p storage.Payment) error) error {
	var ferr error
	found, err := firstEntry(func(e *storeEntry) (bool, error) {
		p, err := e.Store().Get(site, txid)
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil
		} else if err != nil {
			return true, err
		}
		ferr = fn(e, p)
		return true, nil
	})
	if err != nil {
		return apiError(http.StatusInternalServerError, "%v", err)
	}
	if !found {
		return apiError(http.StatusNotFound, "no payment %s of site %s", txid, site)
	}
	return ferr
}

func method(r *http.Request, want string) error {
	if r.Method != want {
		return apiError(http.StatusMethodNotAllowed, "method %s not allowed; use %s", r.Method, want)
	}
	return nil
}

func limit(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 100
	}
	return min(n, 10000)
}

func apiError(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Interface guards
var _ caddy.AdminRouter = (*Admin)(nil)
