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

// The pages are self-contained: inline CSS, no scripts, no external assets.
const pageCSS = `
*{box-sizing:border-box}
:root{--ink:#1f2430;--muted:#5d6677;--line:#e4e1da;--bg:#f6f1e9;--card:#fff;--brand:#c2410c;--brand2:#0f766e;
--ok:#15803d;--okbg:#e8f6ec;--bad:#b91c1c;--badbg:#fdecec;--warn:#a16207;--warnbg:#fef6de;--wait:#1d4ed8;--waitbg:#e9efff}
body{margin:0;font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,Ubuntu,sans-serif;color:var(--ink);background:var(--bg)}
a{color:var(--brand2)}
header{background:var(--ink);color:#fff}
header .in{max-width:60rem;margin:0 auto;padding:.9rem 1.25rem;display:flex;align-items:center;gap:1rem}
.logo{font-weight:800;font-size:1.2rem;letter-spacing:.02em;color:#fff;text-decoration:none}
.logo span{color:#fdba74}
nav{margin-left:auto;display:flex;gap:1.1rem}
nav a{color:#e5e7eb;text-decoration:none;font-size:.95rem}
nav a:hover{color:#fff;text-decoration:underline}
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
.big{font-size:2.2rem;font-weight:800;margin:0}
.tone-ok .big{color:var(--ok)}.tone-bad .big{color:var(--bad)}.tone-warn .big{color:var(--warn)}.tone-wait .big{color:var(--wait)}
.chip{display:inline-block;font:600 .8rem/1.2 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;letter-spacing:.05em;
padding:.3rem .65rem;border-radius:999px;margin:.5rem 0 1rem;background:#ece8e1;color:var(--ink)}
.tone-ok .chip{background:var(--okbg);color:var(--ok)}.tone-bad .chip{background:var(--badbg);color:var(--bad)}
.tone-warn .chip{background:var(--warnbg);color:var(--warn)}.tone-wait .chip{background:var(--waitbg);color:var(--wait)}
dl{display:grid;grid-template-columns:auto 1fr;gap:.35rem 1rem;text-align:left;margin:1.25rem 0;padding:1rem 1.25rem;
background:#faf8f4;border-radius:10px}
dt{color:var(--muted)}dd{margin:0;font-weight:600;word-break:break-all}
.actions{display:flex;gap:.75rem;justify-content:center;flex-wrap:wrap;margin-top:1.25rem}
table{width:100%;border-collapse:collapse;font-size:.93rem}
th,td{padding:.7rem .9rem;text-align:left;vertical-align:top;border-bottom:1px solid var(--line)}
th{font-size:.78rem;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);background:#faf8f4}
tr:last-child td{border-bottom:0}
td.nowrap{white-space:nowrap}
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
`

const layoutTmpl = `{{define "layout"}}<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{block "head" .}}{{end}}
<title>{{block "title" .}}Wax & Co{{end}} — Wax & Co</title>
<style>` + pageCSS + `</style>
</head>
<body>
<header><div class="in">
<a class="logo" href="/" id="shop-link">Wax <span>&amp;</span> Co</a>
<nav><a href="/" id="nav-shop">Boutique · Shop</a><a href="/orders" id="nav-orders">Commandes · Orders</a></nav>
</div></header>
<div class="demo">Démo hors ligne — paiements via le bac à sable CinetPay local, aucun argent réel · Offline demo: local CinetPay sandbox, no real money</div>
<main>{{block "main" .}}{{end}}</main>
<footer>Demo shop of <a href="https://github.com/caddy-cinetpay/caddy-cinetpay">caddy-cinetpay</a>: Caddy starts the payment from this shop's answer, verifies CinetPay's notifications and delivers signed results here.</footer>
</body>
</html>
{{end}}`

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
	"price": formatAmount,
	// amount formats a signed amount ("5000", "XOF") like the shop's prices
	"amount": func(amount, currency string) string {
		n, err := strconv.ParseInt(amount, 10, 64)
		if err != nil {
			return amount + " " + currency
		}
		return formatAmount(n, currency)
	},
	"lower": strings.ToLower,
}

func page(body string) *template.Template {
	t := template.Must(template.New("layout").Funcs(funcs).Parse(layoutTmpl))
	return template.Must(t.Parse(body))
}

type homeData struct {
	Product, Price string
}

var homeTmpl = page(`{{define "title"}}Boutique{{end}}
{{define "main"}}
<h1>Tissus wax d'Abidjan</h1>
<p class="sub">Fabrics printed in Côte d'Ivoire · one product, one button: try a payment.</p>
<div class="card product">
<div class="fabric" role="img" aria-label="Tissu wax: motifs de cercles orange, vert et rouge"></div>
<div class="info">
<h2 id="product">{{.Product}}</h2>
<div class="price" id="price">{{.Price}}</div>
<ul>
<li>100 % coton, 6 yards (5,5 m)</li>
<li>Motifs imprimés des deux côtés · printed on both sides</li>
<li>Livraison à Abidjan sous 48 h · delivery in Abidjan within 48 h</li>
</ul>
<form method="post" action="/checkout">
<button id="pay" class="pay" type="submit">Payer {{.Price}} · Pay</button>
</form>
<p class="fine">Mobile money, carte ou wallet via CinetPay. After paying you come back here; <a href="/orders" id="orders-link">your orders</a> show what the shop received.</p>
</div>
</div>
{{end}}`)

var checkoutTmpl = page(`{{define "title"}}Paiement{{end}}
{{define "main"}}
<div class="card result tone-wait">
<p class="big">Redirecting to payment…</p>
<p>Order <code>{{.ID}}</code> is created. If you can read this, the shop was opened without Caddy's
<code>cinetpay</code> module in front: it is the module that turns this answer into the redirect to the payment page.</p>
<div class="actions"><a class="btn secondary" href="/">Back to the shop</a></div>
</div>
{{end}}`)

type returnData struct {
	Status  string // the word in #status
	Tone    string // ok, bad, warn, wait
	Title   string
	Text    string
	Pending bool
	Result  *httpsig.Result
	Order   *Order
}

var returnTmpl = page(`{{define "head"}}{{if .Pending}}<meta http-equiv="refresh" content="3">{{end}}{{end}}
{{define "title"}}{{.Title}}{{end}}
{{define "main"}}
<div class="card result tone-{{.Tone}}">
<div class="icon" aria-hidden="true">{{if eq .Tone "ok"}}✓{{else if eq .Tone "bad"}}✕{{else if eq .Tone "wait"}}…{{else}}!{{end}}</div>
<p class="big" id="status-label">{{.Title}}</p>
<p class="chip" id="status" title="verified status (signed by Caddy)">{{.Status}}</p>
<p id="status-text">{{.Text}}</p>
{{- if .Result}}
<dl>
<dt>Commande · Order</dt><dd id="order-id">{{.Result.OrderID}}</dd>
<dt>Montant · Amount</dt><dd id="amount">{{amount .Result.Amount .Result.Currency}}</dd>
<dt>Transaction</dt><dd class="mono" id="transaction-id">{{.Result.TransactionID}}</dd>
{{- if .Result.PaymentMethod}}<dt>Moyen · Method</dt><dd>{{.Result.PaymentMethod}}</dd>{{end}}
{{- if .Order}}<dt>Shop record</dt><dd><span class="badge s-{{.Order.Status}}" id="order-status">{{.Order.Status}}</span></dd>{{end}}
<dt>Environment</dt><dd>{{.Result.Environment}}</dd>
</dl>
<p class="fine">This page only shows the result Caddy signed for it; the order itself changes only when
the shop receives the signed delivery (see the orders page).</p>
{{- end}}
<div class="actions">
<a class="btn primary" href="/" id="back-shop">Retour à la boutique · Back to the shop</a>
<a class="btn secondary" href="/orders" id="back-orders">Mes commandes · Orders</a>
</div>
</div>
{{end}}`)

var ordersTmpl = page(`{{define "title"}}Commandes{{end}}
{{define "main"}}
<h1>Commandes · Orders</h1>
<p class="sub">Each order with the status the shop verified, and every delivery Caddy made to the shop's webhook.
<a href="/orders">Refresh</a> · <a href="/orders.json">JSON</a></p>
<div class="card">
{{- if .Orders}}
<table id="orders">
<thead><tr><th>Order</th><th>Created</th><th>Amount</th><th>Status</th><th>Deliveries received</th></tr></thead>
<tbody>
{{- range .Orders}}
<tr data-order="{{.ID}}">
<td><code class="order-id">{{.ID}}</code></td>
<td class="nowrap">{{when .CreatedAt}}</td>
<td class="nowrap">{{.Price}}</td>
<td><span class="badge status s-{{.Status}}">{{.Status}}</span>{{if .Flags}}{{range .Flags}}<div class="reason">{{.Reason}}</div>{{end}}{{else if .FlagReason}}<div class="reason">{{.FlagReason}}</div>{{end}}</td>
<td>{{if .Deliveries}}<ul class="dl">{{range .Deliveries}}<li><b>{{.Status}}</b> · <span title="signature verified">✓ verified</span> · {{.Outcome}}{{if .Detail}} ({{.Detail}}){{end}} · <span class="mono" title="{{.EventID}}">{{short .EventID}}</span> · {{when .At}}</li>{{end}}</ul>{{else}}<span class="fine">none yet</span>{{end}}</td>
</tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p class="empty">No orders yet. <a href="/">Buy something</a>.</p>
{{- end}}
</div>
{{- if .Rejected}}
<h2 class="section">Rejected deliveries</h2>
<p class="sub">The latest ones since Caddy started: kept in memory only, never written to disk.</p>
<div class="card">
<table id="rejected">
<thead><tr><th>Received</th><th>Claimed order</th><th>Claimed status</th><th>Reason</th></tr></thead>
<tbody>
{{- range .Rejected}}
<tr><td>{{when .At}}</td><td><code>{{.OrderID}}</code></td><td>{{.Status}}</td><td class="reason">{{.Detail}}</td></tr>
{{- end}}
</tbody>
</table>
</div>
{{- end}}
{{end}}`)

var notFoundTmpl = page(`{{define "title"}}Page introuvable{{end}}
{{define "main"}}
<div class="card result tone-warn">
<p class="big">Page introuvable</p>
<p>Not found.</p>
<div class="actions"><a class="btn primary" href="/">Back to the shop</a></div>
</div>
{{end}}`)

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
