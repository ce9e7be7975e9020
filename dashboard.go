package caddycinetpay

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

func init() {
	caddy.RegisterModule(Dashboard{})
	httpcaddyfile.RegisterHandlerDirective("cinetpay_dashboard", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		d := new(Dashboard)
		return d, d.UnmarshalCaddyfile(h.Dispenser)
	})
	httpcaddyfile.RegisterDirectiveOrder("cinetpay_dashboard", httpcaddyfile.Before, "file_server")
}

// Dashboard is the operator's dashboard: server-rendered pages for people (the JSON routes of
// the admin API are for scripts), showing what the admin API shows and nothing more: no key,
// no token, no payment URL, no customer data (the store holds none). Its pages, relative to
// where it is mounted:
//
//	GET  ./                          recent payments (filters, pages), open payments,
//	                                 deliveries pending and given up
//	GET  ./ui/payment?site=&tx=      one payment: history, deliveries, last check
//	POST ./ui/recheck                site, tx: check it at CinetPay now
//	POST ./ui/replay                 site, event: deliver it again
//
// Mount it on a route of your own, behind authentication (it can replay and re-check):
//
//	handle_path /cinetpay-dashboard/* {
//		basic_auth {
//			ops $2a$14$…
//		}
//		cinetpay_dashboard
//	}
//
// It is also at /cinetpay/ on Caddy's admin endpoint, for clients that send an Origin the
// endpoint allows; a browser opening that address itself sends none, and Caddy's admin endpoint
// refuses it (its cross-site mitigation), hence the handler. The buttons are form POSTs that
// must come from the dashboard's own origin: a page of another site open in the operator's
// browser cannot press them.
type Dashboard struct{}

// CaddyModule returns the Caddy module information.
func (Dashboard) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.cinetpay_dashboard",
		New: func() caddy.Module { return new(Dashboard) },
	}
}

// UnmarshalCaddyfile parses `cinetpay_dashboard` (no arguments).
func (d *Dashboard) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	disp.Next()
	if disp.NextArg() || disp.NextBlock(0) {
		return disp.Err("cinetpay_dashboard takes no arguments")
	}
	return nil
}

// ServeHTTP serves the dashboard's pages; the last path segments say which.
func (Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	err := serveDashboardPage(w, r, dashboardPage(r.URL.Path))
	var ae caddy.APIError
	if errors.As(err, &ae) {
		// a person reads it: plain text
		http.Error(w, ae.Err.Error(), ae.HTTPStatus)
		return nil
	}
	return err
}

// dashboardPage is the page a path asks for: "", "payment", "recheck" or "replay" ("?" for none).
func dashboardPage(path string) string {
	switch {
	case strings.HasSuffix(path, "/ui/payment"):
		return "payment"
	case strings.HasSuffix(path, "/ui/recheck"):
		return "recheck"
	case strings.HasSuffix(path, "/ui/replay"):
		return "replay"
	case strings.HasSuffix(path, "/"):
		return ""
	}
	return "?"
}

// serveDashboard serves the admin endpoint's /cinetpay/ pages; parts is the path after it.
func serveDashboard(w http.ResponseWriter, r *http.Request, parts []string) error {
	page := "?"
	switch {
	case len(parts) == 1 && parts[0] == "":
		page = ""
	case len(parts) == 2 && parts[0] == "ui":
		page = parts[1]
	}
	return serveDashboardPage(w, r, page)
}

func serveDashboardPage(w http.ResponseWriter, r *http.Request, page string) error {
	switch page {
	case "":
		if err := method(r, http.MethodGet); err != nil {
			return err
		}
		return dashboardHome(w, r)
	case "payment":
		if err := method(r, http.MethodGet); err != nil {
			return err
		}
		return dashboardPayment(w, r)
	case "recheck", "replay":
		if err := method(r, http.MethodPost); err != nil {
			return err
		}
		if err := fromDashboard(r); err != nil {
			return err
		}
		return dashboardAction(w, r, page)
	}
	return apiError(http.StatusNotFound, "unknown dashboard page")
}

// fromDashboard refuses a request sent from a page of another origin than the admin endpoint's.
func fromDashboard(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return apiError(http.StatusForbidden, "the dashboard's buttons work from the dashboard only")
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return apiError(http.StatusForbidden, "the dashboard's buttons work from the dashboard only")
		}
	}
	return nil
}

type dashRow struct {
	listedPayment
	Link string
}

type dashDelivery struct {
	listedDelivery
	Link string
}

type dashOpen struct {
	Site                   string
	Init, Pending, Unknown int
	Deliveries, Due        int
	Oldest                 string
}

type dashHomeData struct {
	Filter          map[string]string
	States          []string
	Error           string
	Payments        []dashRow
	Next            string
	Open            []dashOpen
	Pending, Failed []dashDelivery
	Generated       string
}

// paymentLink is the link to a payment's page from the home page (relative: the dashboard
// works wherever it is mounted).
func paymentLink(site, tx string) string {
	return "ui/payment?" + url.Values{"site": {site}, "tx": {tx}}.Encode()
}

func dashboardHome(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d := dashHomeData{Filter: map[string]string{}, Generated: time.Now().UTC().Format("2006-01-02 15:04:05 UTC")}
	for _, s := range storage.States {
		d.States = append(d.States, strings.ToLower(string(s)))
	}
	// the filters are the admin API's; an empty field is no filter
	api := url.Values{}
	for _, k := range []string{"state", "site_id", "since", "until", "cursor"} {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			api.Set(k, v)
			d.Filter[k] = v
		}
	}
	api.Set("limit", "50")
	f, err := paymentFilter(api)
	if err != nil {
		d.Error = err.Error()
		f = storage.PaymentFilter{Limit: 50}
	}
	page, next, err := listPayments("", f)
	if err != nil {
		return apiError(http.StatusInternalServerError, "%v", err)
	}
	for _, p := range page {
		d.Payments = append(d.Payments, dashRow{p, paymentLink(p.SiteID, p.TransactionID)})
	}
	if next != "" {
		nq := url.Values{}
		for k, v := range d.Filter {
			nq.Set(k, v)
		}
		nq.Set("cursor", next)
		d.Next = "?" + nq.Encode()
	}
	now := engine.Now()
	err = eachEntry("", func(e *storeEntry) error {
		stats, err := e.Store().Stats(now)
		if err != nil {
			return err
		}
		for _, site := range e.Sites() {
			st := stats[site]
			if st == nil {
				st = &storage.SiteStats{}
			}
			o := dashOpen{Site: site, Init: st.PaymentsOpen[storage.StateInit], Pending: st.PaymentsOpen[storage.StatePending],
				Unknown: st.PaymentsOpen[storage.StateUnknown], Deliveries: st.DeliveriesPending, Due: st.RechecksDue, Oldest: "-"}
			if !st.OldestPending.IsZero() {
				o.Oldest = now.Sub(st.OldestPending).Round(time.Second).String()
			}
			d.Open = append(d.Open, o)
		}
		for _, state := range []storage.DeliveryState{storage.DeliveryPending, storage.DeliveryFailed} {
			ds, err := e.Store().ListDeliveries(storage.DeliveryFilter{State: state, Limit: 20})
			if err != nil {
				return err
			}
			for _, x := range ds {
				row := dashDelivery{listedDelivery{e.dir, x}, paymentLink(x.SiteID, x.TransactionID)}
				if state == storage.DeliveryPending {
					d.Pending = append(d.Pending, row)
				} else {
					d.Failed = append(d.Failed, row)
				}
			}
		}
		return nil
	})
	if err != nil {
		return apiError(http.StatusInternalServerError, "%v", err)
	}
	return render(w, "home", d)
}

type dashPaymentData struct {
	P          listedPayment
	Deliveries []storage.Delivery
	Flash      string
	CanRecheck bool
	Back       string
}

func dashboardPayment(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	site, tx := q.Get("site"), q.Get("tx")
	if tx == "" {
		return apiError(http.StatusBadRequest, "tx: a transaction id is required")
	}
	return withPayment(site, tx, func(e *storeEntry, p storage.Payment) error {
		ds, err := e.Store().ListDeliveries(storage.DeliveryFilter{SiteID: p.SiteID, TransactionID: p.TransactionID})
		if err != nil {
			return apiError(http.StatusInternalServerError, "%v", err)
		}
		return render(w, "payment", dashPaymentData{
			P: listedPayment{e.dir, p.Redacted()}, Deliveries: ds, Flash: q.Get("done"),
			CanRecheck: !p.State.Final() && p.State != storage.StateFailed && p.State != storage.StateInit,
			Back:       "../",
		})
	})
}

// dashboardAction presses a button, then sends the browser back to the payment with what
// happened (POST, redirect, GET: a reload does not press it again).
func dashboardAction(w http.ResponseWriter, r *http.Request, action string) error {
	if err := r.ParseForm(); err != nil {
		return apiError(http.StatusBadRequest, "unreadable form")
	}
	site, tx := r.PostForm.Get("site"), r.PostForm.Get("tx")
	var done string
	switch action {
	case "recheck":
		err := withPayment(site, tx, func(e *storeEntry, p storage.Payment) error {
			res, checked, err := operatorRecheck(e, p)
			switch {
			case err != nil && errors.As(err, new(caddy.APIError)):
				return err
			case err != nil:
				done = "re-check: no usable answer from CinetPay (" + err.Error() + ")"
			case !checked:
				done = "settled: nothing to check"
			case res.Changed:
				done = "re-checked: now " + string(res.Payment.State)
			default:
				done = "re-checked: still " + string(res.Payment.State)
			}
			return nil
		})
		if err != nil {
			return err
		}
	case "replay":
		event := r.PostForm.Get("event")
		d, err := replayDelivery(site, event)
		if err != nil {
			return err
		}
		tx = d.TransactionID
		done = "delivery " + event + " queued for a new round of attempts"
	}
	// from ui/recheck or ui/replay back to ui/payment
	w.Header().Set("Location", "payment?"+url.Values{"site": {site}, "tx": {tx}, "done": {done}}.Encode())
	w.WriteHeader(http.StatusSeeOther)
	return nil
}

var dashFuncs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"lower": func(v any) string {
		switch s := v.(type) {
		case storage.State:
			return strings.ToLower(string(s))
		case storage.DeliveryState:
			return string(s)
		}
		return ""
	},
	"amount": func(n int64) string { return strconv.FormatInt(n, 10) },
}

var dashTemplates = template.Must(template.New("dash").Funcs(dashFuncs).Parse(dashLayout))

func render(w http.ResponseWriter, name string, data any) error {
	var buf bytes.Buffer
	if err := dashTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		return apiError(http.StatusInternalServerError, "rendering the dashboard: %v", err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// the page loads nothing from anywhere, and no other site may frame it
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, err := w.Write(buf.Bytes())
	return err
}

const dashLayout = `
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · CinetPay · Caddy</title>
<style>
 body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430;background:#f4f6f9}
 header{background:#12324f;color:#fff;padding:.8rem 1rem}
 header a{color:#fff;text-decoration:none;font-weight:600}
 main{padding:1rem;max-width:72rem;margin:auto}
 h2{font-size:1.05rem;margin:1.4rem 0 .5rem}
 .card{background:#fff;border-radius:8px;box-shadow:0 1px 2px rgba(0,0,0,.08);padding:.8rem;margin-bottom:1rem}
 .scroll{overflow-x:auto}
 table{border-collapse:collapse;width:100%;font-size:.9rem}
 th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e3e7ed;white-space:nowrap}
 th{color:#566273;font-weight:600}
 .mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}
 .st{display:inline-block;border-radius:1rem;padding:0 .5rem;font-size:.8rem;font-weight:600;background:#e3e7ed}
 .accepted,.delivered{background:#d6f5df;color:#14632e}.refused,.expired,.failed{background:#fde2e2;color:#8a1c1c}
 .mismatch,.duplicate{background:#ffe9c7;color:#7a4a00}.pending,.init,.unknown{background:#e2ecfd;color:#1c3f8a}
 form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end}
 label{display:flex;flex-direction:column;font-size:.8rem;color:#566273}
 input,select,button{font:inherit;padding:.35rem .5rem;border:1px solid #c4ccd6;border-radius:6px;background:#fff}
 button{background:#12324f;color:#fff;border-color:#12324f;cursor:pointer}
 .flash{background:#fff8d6;border:1px solid #e8d67a;padding:.6rem .8rem;border-radius:6px}
 .err{background:#fde2e2;border:1px solid #e7a3a3;padding:.6rem .8rem;border-radius:6px}
 dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}
 dt{color:#566273}dd{margin:0;overflow-wrap:anywhere}
 .muted{color:#566273;font-size:.85rem}
</style></head><body>
<header>CinetPay payments</header><main>{{end}}

{{define "foot"}}</main></body></html>{{end}}

{{define "home"}}{{template "head" "Payments"}}
{{if .Error}}<p class="err" id="error">{{.Error}}</p>{{end}}
<h2>Open payments and backlog</h2>
<div class="card scroll"><table id="open">
<tr><th>Site</th><th>Init</th><th>Pending</th><th>Unknown</th><th>Re-checks due</th><th>Deliveries pending</th><th>Oldest pending</th></tr>
{{range .Open}}<tr><td>{{.Site}}</td><td>{{.Init}}</td><td>{{.Pending}}</td><td>{{.Unknown}}</td><td>{{.Due}}</td><td>{{.Deliveries}}</td><td>{{.Oldest}}</td></tr>
{{else}}<tr><td colspan="7" class="muted">no site configured</td></tr>{{end}}
</table></div>

<h2>Payments, newest first</h2>
<div class="card">
<form class="filters" method="get" action="">
<label>State<select name="state"><option value="">any</option>{{$st := .Filter.state}}{{range .States}}<option value="{{.}}"{{if eq . $st}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<label>Site<input name="site_id" value="{{.Filter.site_id}}" size="10"></label>
<label>Since<input name="since" value="{{.Filter.since}}" placeholder="2026-11-01" size="11"></label>
<label>Until<input name="until" value="{{.Filter.until}}" placeholder="2026-12-01" size="11"></label>
<button type="submit">Filter</button>
</form>
<div class="scroll"><table id="payments">
<tr><th>State</th><th>Transaction</th><th>Amount</th><th>Order</th><th>Created (UTC)</th><th>Site</th></tr>
{{range .Payments}}<tr><td><span class="st {{lower .State}}">{{.State}}</span></td><td class="mono"><a href="{{.Link}}">{{.TransactionID}}</a></td><td>{{amount .Amount}} {{.Currency}}</td><td>{{.OrderID}}</td><td>{{when .CreatedAt}}</td><td>{{.SiteID}}</td></tr>
{{else}}<tr><td colspan="6" class="muted">no payment</td></tr>{{end}}
</table></div>
{{if .Next}}<p><a id="next" href="{{.Next}}">Older payments →</a></p>{{end}}
</div>

<h2>Deliveries pending</h2>
<div class="card scroll"><table id="pending">
<tr><th>Transaction</th><th>Status</th><th>Attempts</th><th>Last HTTP</th><th>Next attempt</th><th>Last error</th></tr>
{{range .Pending}}<tr><td class="mono"><a href="{{.Link}}">{{.TransactionID}}</a></td><td>{{.Status}}</td><td>{{.Attempts}}</td><td>{{if .LastHTTPStatus}}{{.LastHTTPStatus}}{{else}}-{{end}}</td><td>{{when .NextAttempt}}</td><td>{{.LastError}}</td></tr>
{{else}}<tr><td colspan="6" class="muted">none: the shop has every result</td></tr>{{end}}
</table></div>

<h2>Deliveries given up</h2>
<div class="card scroll"><table id="failed">
<tr><th>Transaction</th><th>Status</th><th>Attempts</th><th>Last HTTP</th><th>Last attempt</th><th>Last error</th></tr>
{{range .Failed}}<tr><td class="mono"><a href="{{.Link}}">{{.TransactionID}}</a></td><td>{{.Status}}</td><td>{{.Attempts}}</td><td>{{if .LastHTTPStatus}}{{.LastHTTPStatus}}{{else}}-{{end}}</td><td>{{when .LastAttempt}}</td><td>{{.LastError}}</td></tr>
{{else}}<tr><td colspan="6" class="muted">none</td></tr>{{end}}
</table></div>
<p class="muted">{{.Generated}} · the same figures as <span class="mono">caddy cinetpay</span> and the admin API</p>
{{template "foot"}}{{end}}

{{define "payment"}}{{template "head" .P.TransactionID}}
<p><a href="{{.Back}}">← all payments</a></p>
{{if .Flash}}<p class="flash" id="flash">{{.Flash}}</p>{{end}}
<div class="card"><dl id="payment">
<dt>Transaction</dt><dd class="mono">{{.P.TransactionID}}</dd>
<dt>State</dt><dd><span class="st {{lower .P.State}}" id="state">{{.P.State}}</span></dd>
<dt>Order</dt><dd>{{.P.OrderID}}</dd>
<dt>Amount asked</dt><dd>{{amount .P.Amount}} {{.P.Currency}}</dd>
{{with .P.Confirmed}}<dt>Confirmed</dt><dd>{{.Amount}} {{.Currency}} {{.Status}} {{.PaymentMethod}} {{.PaymentDate}}</dd>{{end}}
<dt>Site</dt><dd>{{.P.SiteID}} ({{.P.Environment}})</dd>
{{if .P.ProviderTransactionID}}<dt>CinetPay id</dt><dd class="mono">{{.P.ProviderTransactionID}}</dd>{{end}}
<dt>Created</dt><dd>{{when .P.CreatedAt}}</dd>
<dt>Last check</dt><dd>{{when .P.LastCheck}} {{.P.LastCheckResult}}</dd>
<dt>Next check</dt><dd>{{when .P.NextCheck}}</dd>
<dt>Storage</dt><dd class="mono">{{.P.Storage}}</dd>
</dl>
{{if .CanRecheck}}<form method="post" action="recheck" style="margin-top:.8rem">
<input type="hidden" name="site" value="{{.P.SiteID}}"><input type="hidden" name="tx" value="{{.P.TransactionID}}">
<button id="recheck" type="submit">Re-check at CinetPay now</button></form>{{end}}
</div>
<h2>History</h2>
<div class="card scroll"><table id="history">
<tr><th>At (UTC)</th><th>Change</th><th>Reason</th><th>Event</th></tr>
{{range .P.History}}<tr><td>{{when .At}}</td><td>{{.From}} → {{.To}}</td><td>{{.Reason}}</td><td class="mono">{{.EventID}}</td></tr>{{end}}
</table></div>
<h2>Deliveries</h2>
<div class="card scroll"><table id="deliveries">
<tr><th>Event</th><th>Status</th><th>State</th><th>Attempts</th><th>Last attempt</th><th>Last HTTP</th><th></th></tr>
{{$p := .P}}{{range .Deliveries}}<tr><td class="mono">{{.ID}}</td><td>{{.Status}}</td><td><span class="st {{lower .State}}">{{.State}}</span></td><td>{{.Attempts}}</td><td>{{when .LastAttempt}}</td><td>{{if .LastHTTPStatus}}{{.LastHTTPStatus}}{{else}}-{{end}}</td>
<td><form method="post" action="replay"><input type="hidden" name="site" value="{{.SiteID}}"><input type="hidden" name="event" value="{{.ID}}"><button class="replay" type="submit">Deliver again</button></form></td></tr>
{{else}}<tr><td colspan="7" class="muted">none</td></tr>{{end}}
</table></div>
{{template "foot"}}{{end}}
`

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = (*Dashboard)(nil)
	_ caddyfile.Unmarshaler       = (*Dashboard)(nil)
)
