package shop

import (
	"bytes"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
)

// The pages are self-contained: inline CSS, no scripts, no external assets. They fit a phone
// (390 px wide and less) without scrolling sideways.
const pageCSS = `
*{box-sizing:border-box}
:root{--ink:#1f2430;--muted:#5d6677;--line:#e4e1da;--bg:#f6f1e9;--card:#fff;--brand:#c2410c;--brand2:#0f766e;
--ok:#15803d;--okbg:#e8f6ec;--bad:#b91c1c;--badbg:#fdecec;--warn:#a16207;--warnbg:#fef6de;--wait:#1d4ed8;--waitbg:#e9efff}
body{margin:0;font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,Ubuntu,sans-serif;color:var(--ink);background:var(--bg)}
a{color:var(--brand2)}
header{background:var(--ink);color:#fff}
header .in{max-width:60rem;margin:0 auto;padding:.9rem 1.25rem;display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem}
.logo{font-weight:800;font-size:1.2rem;letter-spacing:.02em;color:#fff;text-decoration:none}
.logo span{color:#fdba74}
nav{margin-left:auto;display:flex;flex-wrap:wrap;gap:.4rem 1.1rem}
nav a{color:#e5e7eb;text-decoration:none;font-size:.95rem}
nav a:hover{color:#fff;text-decoration:underline}
.langs{margin:0;font-size:.9rem;color:#9ca3af;white-space:nowrap}
.langs a{color:#e5e7eb;text-decoration:none;padding:.2rem .3rem;border-radius:6px}
.langs a[aria-current]{color:#fff;font-weight:800;background:rgba(255,255,255,.14)}
a:focus-visible,button:focus-visible{outline:3px solid #2dd4bf;outline-offset:2px}
.demo{background:#fff4d6;color:#7a5300;font-size:.85rem;text-align:center;padding:.35rem 1rem;border-bottom:1px solid #f0e0b0}
main{max-width:60rem;margin:2rem auto;padding:0 1.25rem}
h1{font-size:1.7rem;margin:0 0 .4rem}
.sub{color:var(--muted);margin:0 0 1.5rem}
.card{background:var(--card);border-radius:14px;box-shadow:0 6px 28px rgba(31,36,48,.09);overflow:hidden}
.product{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr)}
@media (max-width:640px){.product{grid-template-columns:1fr}}
.fabric{min-height:18rem;background-color:#f59e0b;
background-image:radial-gradient(circle at 25% 25%,#0f766e 0 14%,transparent 15%),
radial-gradient(circle at 75% 75%,#0f766e 0 14%,transparent 15%),
radial-gradient(circle at 25% 25%,#fde68a 0 22%,transparent 23%),
radial-gradient(circle at 75% 75%,#fde68a 0 22%,transparent 23%),
radial-gradient(circle at 75% 25%,#b91c1c 0 10%,transparent 11%),
radial-gradient(circle at 25% 75%,#b91c1c 0 10%,transparent 11%),
repeating-linear-gradient(45deg,#ea580c 0 6px,#f59e0b 6px 14px);
background-size:72px 72px,72px 72px,72px 72px,72px 72px,72px 72px,72px 72px,auto}
.info{padding:1.75rem 2rem;display:flex;flex-direction:column;gap:.6rem}
.info h2{margin:0;font-size:1.45rem}
.price{font-size:1.9rem;font-weight:800;color:var(--brand)}
.info ul{margin:.2rem 0 .6rem;padding-left:1.1rem;color:var(--muted)}
button,.btn{display:inline-block;border:0;border-radius:10px;padding:.85rem 1.4rem;font:inherit;font-weight:700;
cursor:pointer;text-decoration:none;text-align:center}
.pay{background:var(--brand);color:#fff;width:100%;font-size:1.05rem}
.pay:hover{background:#9a3412}
.btn.secondary{background:#ece8e1;color:var(--ink)}
.btn.primary{background:var(--brand2);color:#fff}
.fine{font-size:.85rem;color:var(--muted);margin:0}
.result{max-width:34rem;margin:0 auto;padding:2rem 2rem 1.75rem;text-align:center}
.icon{width:4.5rem;height:4.5rem;border-radius:50%;margin:0 auto 1rem;display:flex;align-items:center;
justify-content:center;font-size:2.3rem;font-weight:800}
.tone-ok .icon{background:var(--okbg);color:var(--ok)}
.tone-bad .icon{background:var(--badbg);color:var(--bad)}
.tone-warn .icon{background:var(--warnbg);color:var(--warn)}
.tone-wait .icon{background:var(--waitbg);color:var(--wait)}
.big{font-size:clamp(1.45rem,6vw,2.1rem);line-height:1.2;font-weight:800;margin:0}
.tone-ok .big{color:var(--ok)}.tone-bad .big{color:var(--bad)}.tone-warn .big{color:var(--warn)}.tone-wait .big{color:var(--wait)}
.chip{display:inline-block;font:600 .8rem/1.2 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;letter-spacing:.05em;
padding:.3rem .65rem;border-radius:999px;margin:.5rem 0 1rem;background:#ece8e1;color:var(--ink)}
.tone-ok .chip{background:var(--okbg);color:var(--ok)}.tone-bad .chip{background:var(--badbg);color:var(--bad)}
.tone-warn .chip{background:var(--warnbg);color:var(--warn)}.tone-wait .chip{background:var(--waitbg);color:var(--wait)}
dl{display:grid;grid-template-columns:auto 1fr;gap:.35rem 1rem;text-align:left;margin:1.25rem 0;padding:1rem 1.25rem;
background:#faf8f4;border-radius:10px}
dt{color:var(--muted)}dd{margin:0;font-weight:600;word-break:break-all}
.actions{display:flex;gap:.75rem;justify-content:center;flex-wrap:wrap;margin-top:1.25rem}
.actions form{margin:0}
.orders{list-style:none;margin:0;padding:0;display:grid;gap:1rem}
.order{padding:1rem 1.25rem;overflow-wrap:anywhere}
.order-head{display:flex;justify-content:space-between;align-items:center;gap:.5rem;flex-wrap:wrap}
.order-price{font-weight:800;font-size:1.1rem}
.order dl{margin:.75rem 0;padding:.6rem .8rem}
.dl-title{font-size:.78rem;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);margin:.75rem 0 .35rem}
.resume{margin:.25rem 0 .5rem}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85em}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:999px;font-weight:700;font-size:.8rem}
.s-paid{background:var(--okbg);color:var(--ok)}.s-refused,.s-expired{background:var(--badbg);color:var(--bad)}
.s-pending{background:var(--waitbg);color:var(--wait)}.s-flagged{background:var(--warnbg);color:var(--warn)}
.dl{margin:0;padding:0;list-style:none;display:grid;gap:.3rem}
.dl li{font-size:.85rem;color:var(--muted)}
.dl b{color:var(--ink)}
.empty{padding:2rem;text-align:center;color:var(--muted)}
h2.section{font-size:1.15rem;margin:2rem 0 .75rem}
.reason{color:var(--warn);font-size:.85rem}
footer{max-width:60rem;margin:2rem auto 3rem;padding:0 1.25rem;color:var(--muted);font-size:.85rem}
@media (max-width:480px){main{margin:1.25rem auto;padding:0 .9rem}.info{padding:1.25rem}.result{padding:1.5rem 1.1rem}dl{grid-template-columns:1fr;gap:.1rem}dd{margin-bottom:.45rem}.order{padding:1rem}}
`

const layoutTmpl = `{{define "layout"}}<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{- if .Refresh}}
<meta http-equiv="refresh" content="{{.Refresh}}">
{{- end}}
<title>{{.Title}} — Wax & Co</title>
<style>` + pageCSS + `</style>
</head>
<body>
<header><div class="in">
<a class="logo" href="/" id="shop-link">Wax <span>&amp;</span> Co</a>
<nav aria-label="{{.T.nav_label}}"><a href="/" id="nav-shop">{{.T.nav_shop}}</a><a href="/orders" id="nav-orders">{{.T.nav_orders}}</a></nav>
<div class="langs" id="lang-switch" role="group" aria-label="{{.T.lang_label}}"><a href="{{.FR}}" id="lang-fr" lang="fr" hreflang="fr"{{if eq .Lang "fr"}} aria-current="true"{{end}}>FR</a><span aria-hidden="true"> | </span><a href="{{.EN}}" id="lang-en" lang="en" hreflang="en"{{if eq .Lang "en"}} aria-current="true"{{end}}>EN</a></div>
</div></header>
<div class="demo">{{.T.demo_banner}}</div>
<main>{{template "main" .}}</main>
<footer>{{.T.footer_before}} <a href="https://github.com/caddy-cinetpay/caddy-cinetpay">caddy-cinetpay</a>{{.T.footer_after}}</footer>
</body>
</html>
{{end}}`

// view is what every page's template gets: the page's language and words, the FR | EN switch,
// and the page's own data.
type view struct {
	Lang    string
	T       words
	FR, EN  string // the same page in French, in English
	Title   string
	Refresh int // seconds; 0: none
	Data    any
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"short": func(s string) string {
		if len(s) > 14 {
			return s[:14] + "…"
		}
		return s
	},
	// word: a status in words ("order_", "result_", "outcome_"), never its code
	"word":  word,
	"flag":  flagWords,
	"price": priceIn,
	// amount formats a signed amount ("5000", "XOF") like the shop's prices
	"amount": func(lang, amount, currency string) string {
		n, err := strconv.ParseInt(amount, 10, 64)
		if err != nil {
			return amount + " " + currency
		}
		return priceIn(lang, n, currency)
	},
	"lower": strings.ToLower,
}

func page(body string) *template.Template {
	// missingkey=error: a word missing from a language fails the page (and the tests)
	t := template.Must(template.New("layout").Funcs(funcs).Option("missingkey=error").Parse(layoutTmpl))
	return template.Must(t.Parse(body))
}

var homeTmpl = page(`{{define "main"}}
<h1>{{.T.home_h1}}</h1>
<p class="sub">{{.T.home_sub}}</p>
<div class="card product">
<div class="fabric" role="img" aria-label="{{.T.product_img}}"></div>
<div class="info">
<h2 id="product">{{.T.product_name}}</h2>
<div class="price" id="price">{{.Data}}</div>
<ul>
<li>{{.T.product_li1}}</li>
<li>{{.T.product_li2}}</li>
<li>{{.T.product_li3}}</li>
</ul>
<form method="post" action="/checkout">
<button id="pay" class="pay" type="submit">{{.T.pay}} {{.Data}}</button>
</form>
<p class="fine">{{.T.home_fine}} <a href="/orders" id="orders-link">{{.T.home_fine_lnk}}</a> {{.T.home_fine_end}}</p>
</div>
</div>
{{end}}`)

var checkoutTmpl = page(`{{define "main"}}
<div class="card result tone-wait">
<p class="big">{{.T.checkout_big}}</p>
<p>{{.T.f_order}} <code>{{.Data.ID}}</code>. {{.T.checkout_text}}</p>
<div class="actions"><a class="btn secondary" href="/">{{.T.back_shop}}</a></div>
</div>
{{end}}`)

// returnData is the return page's content.
type returnData struct {
	Status  string // the verified Cinetpay-Status, or UNVERIFIED / UNKNOWN (data-status)
	Tone    string // ok, bad, warn, wait
	Title   string
	Text    string
	Pending bool // refreshes itself and offers a refresh link
	Resume  bool // offers to resume the payment (the order is still awaiting it)
	Retry   bool // offers a new try
	Result  *httpsig.Result
	Order   *Order
	URL     string // this page, for the refresh link
}

var returnTmpl = page(`{{define "main"}}{{$d := .Data}}
<div class="card result tone-{{$d.Tone}}">
<div class="icon" aria-hidden="true">{{if eq $d.Tone "ok"}}✓{{else if eq $d.Tone "bad"}}✕{{else if eq $d.Tone "wait"}}…{{else}}!{{end}}</div>
<h1 class="big" id="status-label">{{$d.Title}}</h1>
{{- if $d.Result}}
<p class="chip" id="status" data-status="{{$d.Status}}" title="{{.T.ret_verified}}">{{word .T "result_" $d.Status}}</p>
{{- else}}
<p class="chip" id="status" data-status="{{$d.Status}}">{{$d.Title}}</p>
{{- end}}
<p id="status-text" role="status">{{$d.Text}}</p>
{{- if or $d.Resume $d.Pending $d.Retry}}
<div class="actions">
{{- if $d.Resume}}
<form method="post" action="/checkout"><input type="hidden" name="order" value="{{$d.Result.OrderID}}"><button class="btn primary" id="resume" type="submit">{{.T.resume}}</button></form>
{{- end}}
{{- if $d.Retry}}
<a class="btn primary" href="/" id="try-again">{{.T.try_again}}</a>
{{- end}}
{{- if $d.Pending}}
<a class="btn secondary" href="{{$d.URL}}" id="refresh">{{.T.refresh}}</a>
{{- end}}
</div>
{{- end}}
{{- if $d.Result}}
<dl>
<dt>{{.T.f_order}}</dt><dd id="order-id">{{$d.Result.OrderID}}</dd>
<dt>{{.T.f_amount}}</dt><dd id="amount">{{amount .Lang $d.Result.Amount $d.Result.Currency}}</dd>
<dt>{{.T.f_transaction}}</dt><dd class="mono" id="transaction-id">{{$d.Result.TransactionID}}</dd>
{{- if $d.Result.PaymentMethod}}<dt>{{.T.f_method}}</dt><dd>{{$d.Result.PaymentMethod}}</dd>{{end}}
{{- if $d.Order}}<dt>{{.T.f_record}}</dt><dd><span class="badge s-{{$d.Order.Status}}" id="order-status" data-status="{{$d.Order.Status}}">{{word .T "order_" $d.Order.Status}}</span></dd>{{end}}
<dt>{{.T.f_env}}</dt><dd>{{if eq $d.Result.Environment "live"}}{{.T.env_live}}{{else}}{{.T.env_sandbox}}{{end}}</dd>
</dl>
<p class="fine">{{.T.ret_fine}}</p>
{{- end}}
<div class="actions">
<a class="btn secondary" href="/" id="back-shop">{{.T.back_shop}}</a>
<a class="btn secondary" href="/orders" id="back-orders">{{.T.my_orders}}</a>
</div>
</div>
{{end}}`)

var ordersTmpl = page(`{{define "main"}}{{$t := .T}}{{$lang := .Lang}}
<h1>{{.T.orders_h1}}</h1>
<p class="sub">{{.T.orders_sub}}
<a href="/orders">{{.T.refresh}}</a> · <a href="/orders.json">JSON</a></p>
{{- if .Data.Orders}}
<ul class="orders" id="orders">
{{- range .Data.Orders}}
<li class="card order" data-order="{{.ID}}">
<div class="order-head">
<span class="badge status s-{{.Status}}" data-status="{{.Status}}">{{word $t "order_" .Status}}</span>
<span class="order-price">{{price $lang .Amount .Currency}}</span>
</div>
<dl class="order-facts">
<dt>{{$t.f_order}}</dt><dd><code class="order-id">{{.ID}}</code></dd>
<dt>{{$t.f_created}}</dt><dd>{{when .CreatedAt}}</dd>
</dl>
{{- if .Flags}}{{range .Flags}}<p class="reason">{{flag $t .}}</p>{{end}}{{else if .FlagReason}}<p class="reason">{{$t.flag_other}}</p>{{end}}
{{- if eq .Status "pending"}}
<form method="post" action="/checkout"><input type="hidden" name="order" value="{{.ID}}"><button class="btn primary resume" type="submit">{{$t.resume}}</button></form>
{{- end}}
<p class="dl-title">{{$t.f_deliveries}}</p>
{{- if .Deliveries}}
<ul class="dl">{{range .Deliveries}}<li><b>{{word $t "result_" .Status}}</b> · ✓ {{$t.verified}} · {{word $t "outcome_" .Outcome}} · {{when .At}} · <span class="mono" title="{{.EventID}}">{{$t.event}} {{short .EventID}}</span></li>{{end}}</ul>
{{- else}}
<p class="fine">{{$t.none_yet}}</p>
{{- end}}
</li>
{{- end}}
</ul>
{{- else}}
<div class="card"><p class="empty">{{.T.orders_empty}} <a href="/">{{.T.orders_buy}}</a>.</p></div>
{{- end}}
{{- if .Data.Rejected}}
<h2 class="section">{{.T.rejected_h2}}</h2>
<p class="sub">{{.T.rejected_sub}}</p>
<ul class="orders" id="rejected">
{{- range .Data.Rejected}}
<li class="card order">
<dl class="order-facts">
<dt>{{$t.f_received}}</dt><dd>{{when .At}}</dd>
<dt>{{$t.f_claimed_order}}</dt><dd><code>{{.OrderID}}</code></dd>
<dt>{{$t.f_claimed}}</dt><dd>{{word $t "result_" .Status}}</dd>
<dt>{{$t.f_reason}}</dt><dd class="reason"><code lang="en">{{.Detail}}</code></dd>
</dl>
</li>
{{- end}}
</ul>
{{- end}}
{{end}}`)

var notFoundTmpl = page(`{{define "main"}}
<div class="card result tone-warn">
<h1 class="big">{{.T.notfound_title}}</h1>
<p>{{.T.notfound_text}}</p>
<div class="actions"><a class="btn primary" href="/">{{.T.back_shop}}</a></div>
</div>
{{end}}`)

// render writes page t in the request's language (README of the demo, "What to click").
func render(w http.ResponseWriter, r *http.Request, status int, t *template.Template, titleKey string, data any) {
	lang := pageLang(w, r)
	v := view{Lang: lang, T: texts[lang], FR: switchURL(r, "fr"), EN: switchURL(r, "en"), Data: data}
	v.Title = v.T[titleKey]
	if rd, ok := data.(returnData); ok {
		v.Title = rd.Title
		if rd.Pending {
			v.Refresh = rd.refresh()
		}
	}
	renderPage(w, status, t, v)
}

// renderPage executes t and writes it with safe headers.
func renderPage(w http.ResponseWriter, status int, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		http.Error(w, "page error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
