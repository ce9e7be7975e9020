package caddycinetpay

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

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
//	GET  /cinetpay/payments[?site_id=&state=&order_id=&since=&until=&limit=&cursor=]
//	                                                               payments, newest first
//	GET  /cinetpay/payments/[<site_id>/]<transaction_id>           one payment, with its deliveries
//	POST /cinetpay/payments/[<site_id>/]<transaction_id>/recheck   check it at CinetPay now
//	GET  /cinetpay/deliveries[?site_id=&state=&transaction_id=&limit=]  list deliveries
//	POST /cinetpay/deliveries/[<site_id>/]<event_id>/replay        deliver it again
//
// Without a site id, the payment or delivery is looked for in every configured site.
//
// A dashboard for people is at /cinetpay/ (see dashboard.go). Answers here are JSON. Lists cover every open store unless ?storage=<directory> names one. A list
// of payments that has more gives next_cursor, to pass as cursor for the next page. since and
// until bound the creation time (RFC 3339, or a date: since 2026-11-01 until 2026-12-01 is
// November, UTC). An unknown parameter or a bad value is a 400 naming it; every error is
// Caddy's {"error": "…"}.
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
	if parts[0] == "" || parts[0] == "ui" {
		return serveDashboard(w, r, parts)
	}
	switch {
	case len(parts) == 1 && parts[0] == "payments":
		if err := method(r, http.MethodGet); err != nil {
			return err
		}
		f, err := paymentFilter(q)
		if err != nil {
			return err
		}
		page, next, err := listPayments(q.Get("storage"), f)
		if err != nil {
			return apiError(http.StatusInternalServerError, "%v", err)
		}
		out := map[string]any{"payments": page}
		if next != "" {
			out["next_cursor"] = next
		}
		return writeJSON(w, out)

	case len(parts) == 1 && parts[0] == "deliveries":
		if err := method(r, http.MethodGet); err != nil {
			return err
		}
		if err := knownParams(q, "site_id", "state", "transaction_id", "limit", "storage"); err != nil {
			return err
		}
		f := storage.DeliveryFilter{SiteID: q.Get("site_id"), State: storage.DeliveryState(strings.ToLower(q.Get("state"))),
			TransactionID: q.Get("transaction_id")}
		switch f.State {
		case "", storage.DeliveryPending, storage.DeliveryDelivered, storage.DeliveryFailed:
		default:
			return apiError(http.StatusBadRequest, "state: %q is not a delivery state (pending, delivered, failed)", q.Get("state"))
		}
		var err error
		if f.Limit, err = limitParam(q); err != nil {
			return err
		}
		out := []listedDelivery{}
		err = eachEntry(q.Get("storage"), func(e *storeEntry) error {
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

	case len(parts) == 2 && parts[0] == "payments":
		// a transaction id alone: the payment of whichever site has it
		parts = []string{"payments", "", parts[1]}
		fallthrough
	case len(parts) == 3 && parts[0] == "payments" && parts[2] != "recheck":
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

	case len(parts) == 3 && parts[0] == "payments" && parts[2] == "recheck":
		parts = []string{"payments", "", parts[1], "recheck"}
		fallthrough
	case len(parts) == 4 && parts[0] == "payments" && parts[3] == "recheck":
		if err := method(r, http.MethodPost); err != nil {
			return err
		}
		return withPayment(parts[1], parts[2], func(e *storeEntry, p storage.Payment) error {
			res, checked, err := operatorRecheck(e, p)
			switch {
			case err != nil && errors.As(err, new(caddy.APIError)):
				return err
			case err != nil:
				return apiError(http.StatusBadGateway, "%v", err)
			case !checked:
				return writeJSON(w, map[string]any{"payment": listedPayment{e.dir, p.Redacted()}, "checked": false,
					"note": "the payment is settled; nothing to check"})
			}
			return writeJSON(w, map[string]any{"payment": listedPayment{e.dir, res.Payment.Redacted()}, "checked": true,
				"changed": res.Changed})
		})

	case len(parts) == 3 && parts[0] == "deliveries" && parts[2] == "replay":
		parts = []string{"deliveries", "", parts[1], "replay"}
		fallthrough
	case len(parts) == 4 && parts[0] == "deliveries" && parts[3] == "replay":
		if err := method(r, http.MethodPost); err != nil {
			return err
		}
		d, err := replayDelivery(parts[1], parts[2])
		if err != nil {
			return err
		}
		return writeJSON(w, map[string]any{"delivery": d})
	}
	return apiError(http.StatusNotFound, "unknown cinetpay admin route")
}

// operatorRecheck makes the status call of a payment an operator asks for (admin API,
// dashboard): checked is false for a settled payment, where there is nothing to ask. An
// APIError says why it cannot be made; another error, that CinetPay gave no usable answer.
func operatorRecheck(e *storeEntry, p storage.Payment) (res storage.UpdateResult, checked bool, err error) {
	if p.State.Final() || p.State == storage.StateFailed {
		return storage.UpdateResult{Payment: p, From: p.State}, false, nil
	}
	if p.State == storage.StateInit {
		return res, false, apiError(http.StatusConflict, "the payment's start is in progress")
	}
	sc := e.Current(p.SiteID)
	if sc == nil {
		return res, false, apiError(http.StatusConflict, "site %s is not in the running configuration", p.SiteID)
	}
	// a person waits: the priority of customers
	res, err = e.Check(sc, p.TransactionID, engine.PrioCustomer)
	return res, true, err
}

// replayDelivery puts a delivery of the open stores back in the queue, due now (of any
// configured site when site is "").
func replayDelivery(site, event string) (listedDelivery, error) {
	var out listedDelivery
	found, err := firstEntry(func(e *storeEntry) (bool, error) {
		for _, s := range sitesOf(e, site) {
			d, err := e.Store().Replay(s, event, engine.Now())
			if errors.Is(err, storage.ErrNotFound) {
				continue
			} else if err != nil {
				return true, err
			}
			e.Wake()
			out = listedDelivery{e.dir, d}
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return out, apiError(http.StatusInternalServerError, "%v", err)
	}
	if !found {
		return out, apiError(http.StatusNotFound, "no delivery %s", event)
	}
	return out, nil
}

// eachEntry calls fn for each open store (or only the one named dir: its directory, or its
// database as the API shows it), holding it open meanwhile.
func eachEntry(dir string, fn func(e *storeEntry) error) error {
	var entries []*storeEntry
	storePool.Range(func(_, v any) bool {
		if e, ok := v.(*storeEntry); ok && (dir == "" || e.dir == dir) {
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

// sitesOf is site, or every site configured on the store when site is "".
func sitesOf(e *storeEntry, site string) []string {
	if site != "" {
		return []string{site}
	}
	return e.Sites()
}

// withPayment finds a payment in the open stores (of any configured site when site is "").
func withPayment(site, txid string, fn func(e *storeEntry, p storage.Payment) error) error {
	var ferr error
	found, err := firstEntry(func(e *storeEntry) (bool, error) {
		for _, s := range sitesOf(e, site) {
			p, err := e.Store().Get(s, txid)
			if errors.Is(err, storage.ErrNotFound) {
				continue
			} else if err != nil {
				return true, err
			}
			ferr = fn(e, p)
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return apiError(http.StatusInternalServerError, "%v", err)
	}
	if !found {
		if site == "" {
			return apiError(http.StatusNotFound, "no payment %s in the configured sites", txid)
		}
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

// maxLimit is the largest page the admin API gives.
const maxLimit = 1000

// limitParam is the limit parameter: 1 to maxLimit, 100 when absent.
func limitParam(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		return 0, apiError(http.StatusBadRequest, "limit: %q is not a number from 1 to %d", v, maxLimit)
	}
	return n, nil
}

// knownParams refuses a query parameter the route does not take, or one given twice.
func knownParams(q url.Values, known ...string) error {
	names := slices.Sorted(maps.Keys(q))
	for _, k := range names {
		if !slices.Contains(known, k) {
			return apiError(http.StatusBadRequest, "unknown parameter %q (this route takes %s)", k, strings.Join(known, ", "))
		}
		if len(q[k]) > 1 {
			return apiError(http.StatusBadRequest, "parameter %q given %d times", k, len(q[k]))
		}
	}
	return nil
}

// timeParam is a since or until parameter: RFC 3339, or a date (midnight UTC).
func timeParam(q url.Values, name string) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, apiError(http.StatusBadRequest, "%s: %q is not a time (RFC 3339, 2026-11-25T12:00:00Z) nor a date (2026-11-25)", name, v)
}

// paymentFilter reads the parameters of a list of payments.
func paymentFilter(q url.Values) (storage.PaymentFilter, error) {
	var f storage.PaymentFilter
	if err := knownParams(q, "site_id", "state", "order_id", "since", "until", "limit", "cursor", "storage"); err != nil {
		return f, err
	}
	f.SiteID, f.OrderID = q.Get("site_id"), q.Get("order_id")
	if v := q.Get("state"); v != "" {
		f.State = storage.State(strings.ToUpper(v))
		if !f.State.Valid() {
			return f, apiError(http.StatusBadRequest, "state: %q is not a payment state (%s)", v, strings.ToLower(stateList()))
		}
	}
	if f.OrderID != "" && f.SiteID == "" {
		return f, apiError(http.StatusBadRequest, "order_id needs site_id")
	}
	var err error
	if f.Since, err = timeParam(q, "since"); err != nil {
		return f, err
	}
	if f.Until, err = timeParam(q, "until"); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, apiError(http.StatusBadRequest, "since must be before until")
	}
	if f.Limit, err = limitParam(q); err != nil {
		return f, err
	}
	if v := q.Get("cursor"); v != "" {
		if f.After, err = decodeCursor(v); err != nil {
			return f, apiError(http.StatusBadRequest, "cursor: not one this API gave (%v)", err)
		}
	}
	return f, nil
}

func stateList() string {
	names := make([]string, len(storage.States))
	for i, s := range storage.States {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// listPayments lists a page of payments of every open store (or of one), newest first, and
// the cursor of the next page ("" when there is none).
func listPayments(dir string, f storage.PaymentFilter) ([]listedPayment, string, error) {
	want := f.Limit
	f.Limit = want + 1 // one more tells whether there is a next page
	var all []listedPayment
	err := eachEntry(dir, func(e *storeEntry) error {
		ps, err := e.Store().ListPayments(f)
		for _, p := range ps {
			all = append(all, listedPayment{e.dir, p.Redacted()})
		}
		return err
	})
	if err != nil {
		return nil, "", err
	}
	slices.SortFunc(all, func(a, b listedPayment) int { return storage.CompareNewest(&a.Payment, &b.Payment) })
	if len(all) <= want {
		return all, "", nil
	}
	all = all[:want]
	return all, encodeCursor(storage.CursorOf(&all[want-1].Payment)), nil
}

// encodeCursor and decodeCursor give a cursor as an opaque token.
func encodeCursor(c *storage.Cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (*storage.Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	var c storage.Cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	if c.SiteID == "" || c.ID == "" || c.CreatedAt.IsZero() {
		return nil, errors.New("incomplete")
	}
	return &c, nil
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
