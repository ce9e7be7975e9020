package sandbox

import (
	"bytes"
	"html/template"
	"net/http"
	"strings"
)

// pageText is the payment page's wording in one language.
type pageText struct {
	Title, Sandbox, Merchant, Amount, Description, Transaction string
	Accept, Refuse, Wait, Return, Returning, Unknown           string
	Status                                                     map[string]string
}

var pageTexts = map[string]pageText{
	"fr": {
		Title: "Paiement", Sandbox: "Bac à sable CinetPay — aucun argent réel",
		Merchant: "Marchand (site_id)", Amount: "Montant", Description: "Description",
		Transaction: "Transaction", Accept: "Payer", Refuse: "Refuser", Wait: "Attendre",
		Return: "Retour à la boutique", Returning: "Retour vers la boutique…",
		Unknown: "Lien de paiement inconnu",
		Status: map[string]string{
			StatusWaiting:  "En attente du paiement",
			StatusAccepted: "Paiement accepté",
			StatusRefused:  "Paiement refusé",
		},
	},
	"en": {
		Title: "Payment", Sandbox: "CinetPay sandbox — no real money",
		Merchant: "Merchant (site_id)", Amount: "Amount", Description: "Description",
		Transaction: "Transaction", Accept: "Pay", Refuse: "Refuse", Wait: "Wait",
		Return: "Return to the shop", Returning: "Returning to the shop…",
		Unknown: "Unknown payment link",
		Status: map[string]string{
			StatusWaiting:  "Waiting for payment",
			StatusAccepted: "Payment accepted",
			StatusRefused:  "Payment refused",
		},
	},
}

func textFor(lang string) pageText {
	if t, ok := pageTexts[lang]; ok {
		return t
	}
	return pageTexts["fr"]
}

const pageCSS = `
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#eef2f5;color:#1d2733}
main{background:#fff;width:100%;max-width:26rem;margin:1rem;padding:1.75rem;border-radius:12px;
box-shadow:0 4px 24px rgba(29,39,51,.12)}
.badge{display:inline-block;margin:0 0 .75rem;padding:.15rem .6rem;border-radius:999px;
background:#fff4d6;color:#7a5300;font-size:.8rem}
h1{margin:0 0 1rem;font-size:1.4rem}
dl{margin:0 0 1.5rem;display:grid;grid-template-columns:auto 1fr;gap:.35rem 1rem}
dt{color:#5b6b7b}dd{margin:0;font-weight:600;word-break:break-word}
.amount{font-size:1.3rem}
.actions{display:grid;gap:.6rem}
form{margin:0}
button{width:100%;padding:.75rem;border:0;border-radius:8px;font:inherit;font-weight:600;cursor:pointer}
#accept{background:#17a34a;color:#fff}#refuse{background:#dc2626;color:#fff}
#wait{background:#e5e9ee;color:#1d2733}#return{background:#1d4ed8;color:#fff}
.status{font-weight:600}
`

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.T.Title}} — CinetPay sandbox</title>
<style>{{.CSS}}</style>
</head>
<body>
<main>
<p class="badge">{{.T.Sandbox}}</p>
{{- if .Tx}}
<h1>{{.T.Title}}</h1>
<dl>
<dt>{{.T.Merchant}}</dt><dd id="site-id">{{.Tx.SiteID}}</dd>
<dt>{{.T.Amount}}</dt><dd id="amount" class="amount">{{.Tx.Amount}} {{.Tx.Currency}}</dd>
<dt>{{.T.Description}}</dt><dd id="description">{{.Tx.Description}}</dd>
<dt>{{.T.Transaction}}</dt><dd id="transaction-id">{{.Tx.TransactionID}}</dd>
</dl>
{{- if .Waiting}}
<div class="actions">
<form method="post"><input type="hidden" name="action" value="accept"><button id="accept" type="submit">{{.T.Accept}}</button></form>
<form method="post"><input type="hidden" name="action" value="refuse"><button id="refuse" type="submit">{{.T.Refuse}}</button></form>
<form method="post"><input type="hidden" name="action" value="wait"><button id="wait" type="submit">{{.T.Wait}}</button></form>
</div>
{{- else}}
<p id="status" class="status">{{.StatusText}}</p>
<form method="post" action="{{.Tx.ReturnURL}}">
<input type="hidden" name="transaction_id" value="{{.Tx.TransactionID}}">
<input type="hidden" name="token" value="{{.Tx.Token}}">
<button id="return" type="submit">{{.T.Return}}</button>
</form>
{{- end}}
{{- else}}
<h1 id="unknown">{{.T.Unknown}}</h1>
{{- end}}
</main>
</body>
</html>
`))

var returnTmpl = template.Must(template.New("return").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.T.Returning}}</title>
<style>{{.CSS}}</style>
</head>
<body>
<main>
<p class="badge">{{.T.Sandbox}}</p>
<h1 id="status">{{.StatusText}}</h1>
<form id="return-form" method="post" action="{{.Tx.ReturnURL}}">
<input type="hidden" name="transaction_id" value="{{.Tx.TransactionID}}">
<input type="hidden" name="token" value="{{.Tx.Token}}">
<button id="return" type="submit">{{.T.Return}}</button>
</form>
<script>document.getElementById("return-form").submit();</script>
</main>
</body>
</html>
`))

// pageData feeds the templates.
type pageData struct {
	Lang       string
	T          pageText
	CSS        template.CSS
	Tx         *Transaction
	Waiting    bool
	StatusText string
}

func newPageData(tx *Transaction, lang string) pageData {
	d := pageData{Lang: lang, T: textFor(lang), CSS: template.CSS(pageCSS), Tx: tx}
	if d.Lang != "en" {
		d.Lang = "fr"
	}
	if tx != nil {
		d.Waiting = tx.Status == StatusWaiting
		d.StatusText = d.T.Status[tx.Status]
	}
	return d
}

// servePage serves GET and POST /pay/<token>.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request, token string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	tx := s.tokens[token]
	if tx != nil && tx.V1 != nil {
		tx = nil // a v1 token: its page is under Config.V1PagePath
	}
	var view Transaction
	if tx != nil {
		view = tx.view()
	}
	s.mu.Unlock()
	if tx == nil {
		lang := "fr"
		if strings.HasPrefix(r.Header.Get("Accept-Language"), "en") {
			lang = "en"
		}
		renderHTML(w, http.StatusNotFound, pageTmpl, newPageData(nil, lang))
		return
	}
	if r.Method != http.MethodPost {
		renderHTML(w, http.StatusOK, pageTmpl, newPageData(&view, view.Lang))
		return
	}

	action := r.PostFormValue("action")
	if action != ActionAccept && action != ActionRefuse && action != ActionWait {
		http.Error(w, "action must be accept, refuse or wait", http.StatusBadRequest)
		return
	}
	// A final transaction (a second click, a reload) just goes back to the
	// shop.
	if err := s.act(tx, action); err != nil && err != ErrFinal {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	view = tx.view()
	s.mu.Unlock()
	renderHTML(w, http.StatusOK, returnTmpl, newPageData(&view, view.Lang))
}

func renderHTML(w http.ResponseWriter, status int, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
