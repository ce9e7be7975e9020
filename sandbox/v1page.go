package sandbox

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// v1PageText is the v1 payment page's wording in one language.
type v1PageText struct {
	pageText
	Account, Designation, Expire string
	States                       map[string]string
}

var v1PageTexts = map[string]v1PageText{
	"fr": {
		Account: "Compte (pays)", Designation: "Désignation", Expire: "Laisser expirer",
		States: map[string]string{
			V1StatusInitiated: "En attente du paiement",
			V1StatusPending:   "Paiement en cours",
			V1StatusSuccess:   "Paiement réussi",
			V1StatusFailed:    "Paiement échoué",
			V1StatusExpired:   "Paiement expiré",
		},
	},
	"en": {
		Account: "Account (country)", Designation: "Designation", Expire: "Let it expire",
		States: map[string]string{
			V1StatusInitiated: "Waiting for payment",
			V1StatusPending:   "Payment in progress",
			V1StatusSuccess:   "Payment succeeded",
			V1StatusFailed:    "Payment failed",
			V1StatusExpired:   "Payment expired",
		},
	},
}

func v1TextFor(lang string) v1PageText {
	if lang != "en" {
		lang = "fr"
	}
	t := v1PageTexts[lang]
	t.pageText = textFor(lang)
	return t
}

const v1PageCSS = `
#expire{background:#fff;color:#1d2733;border:1px solid #c9d1da}
a.button{display:block;padding:.75rem;border-radius:8px;background:#1d4ed8;color:#fff;
text-align:center;text-decoration:none;font-weight:600}
`

var v1PageTmpl = template.Must(template.New("v1page").Parse(`<!DOCTYPE html>
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
<dt>{{.T.Account}}</dt><dd id="country">{{.Tx.V1.Country}} ({{.Tx.V1.Environment}})</dd>
<dt>{{.T.Amount}}</dt><dd id="amount" class="amount">{{.Tx.Amount}} {{.Tx.Currency}}</dd>
<dt>{{.T.Designation}}</dt><dd id="description">{{.Tx.Description}}</dd>
<dt>{{.T.Transaction}}</dt><dd id="transaction-id">{{.Tx.TransactionID}}</dd>
</dl>
<p id="status" class="status">{{.StatusText}}</p>
{{- if .Open}}
<div class="actions">
<form method="post"><input type="hidden" name="action" value="accept"><button id="accept" type="submit">{{.T.Accept}}</button></form>
<form method="post"><input type="hidden" name="action" value="refuse"><button id="refuse" type="submit">{{.T.Refuse}}</button></form>
<form method="post"><input type="hidden" name="action" value="wait"><button id="wait" type="submit">{{.T.Wait}}</button></form>
<form method="post"><input type="hidden" name="action" value="expire"><button id="expire" type="submit">{{.T.Expire}}</button></form>
</div>
{{- else if .Return.Post}}
<form method="post" action="{{.Return.URL}}">
{{- range .Return.Fields}}
<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{- end}}
<button id="return" type="submit">{{.T.Return}}</button>
</form>
{{- else}}
<a id="return" class="button" href="{{.Return.URL}}">{{.T.Return}}</a>
{{- end}}
{{- else}}
<h1 id="unknown">{{.T.Unknown}}</h1>
{{- end}}
</main>
</body>
</html>
`))

var v1ReturnTmpl = template.Must(template.New("v1return").Parse(`<!DOCTYPE html>
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
<form id="return-form" method="post" action="{{.Return.URL}}">
{{- range .Return.Fields}}
<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{- end}}
<button id="return" type="submit">{{.T.Return}}</button>
</form>
<script>document.getElementById("return-form").submit();</script>
</main>
</body>
</html>
`))

// v1Return is the way back to the shop from a decided transaction.
type v1Return struct {
	URL    string
	Post   bool
	Fields []hiddenField // POST only
}

type hiddenField struct{ Name, Value string }

// v1PageData feeds the v1 templates.
type v1PageData struct {
	Lang       string
	T          v1PageText
	CSS        template.CSS
	Tx         *Transaction
	Open       bool
	StatusText string
	Return     v1Return
}

func newV1PageData(tx *Transaction, lang string, ret v1Return) v1PageData {
	d := v1PageData{Lang: lang, T: v1TextFor(lang), CSS: template.CSS(pageCSS + v1PageCSS), Tx: tx, Return: ret}
	if d.Lang != "en" {
		d.Lang = "fr"
	}
	if tx != nil {
		d.Open = v1Open(tx.Status)
		d.StatusText = d.T.States[tx.Status]
	}
	return d
}

// v1ReturnOf is how the browser goes back from tx: to success_url after a
// success, to failed_url otherwise, as the v1_redirect fault says.
func (s *Server) v1ReturnOf(tx *Transaction) v1Return {
	s.mu.Lock()
	mode := clonePtr(s.faults.V1Redirect)
	s.mu.Unlock()
	if mode == nil {
		mode = &RedirectMode{}
	}
	ret := v1Return{URL: tx.V1.FailedURL, Post: mode.Method == http.MethodPost}
	if tx.Status == V1StatusSuccess {
		ret.URL = tx.V1.SuccessURL
	}
	if !mode.AppendIDs {
		return ret
	}
	ids := []hiddenField{
		{"transaction_id", tx.V1.CinetPayTransactionID},
		{"merchant_transaction_id", tx.TransactionID},
	}
	if ret.Post {
		ret.Fields = ids
		return ret
	}
	q := url.Values{}
	for _, f := range ids {
		q.Set(f.Name, f.Value)
	}
	sep := "?"
	if strings.Contains(ret.URL, "?") {
		sep = "&"
	}
	ret.URL += sep + q.Encode()
	return ret
}

// serveV1Page serves GET and POST <V1PagePath>/<payment_token>.
func (s *Server) serveV1Page(w http.ResponseWriter, r *http.Request, token string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	tx := s.tokens[token]
	if tx != nil && tx.V1 == nil {
		tx = nil // a Checkout v2 token: its page is /pay/<token>
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
		renderHTML(w, http.StatusNotFound, v1PageTmpl, newV1PageData(nil, lang, v1Return{}))
		return
	}

	if r.Method != http.MethodPost {
		// The customer opening the page starts the payment process.
		if r.Method == http.MethodGet && view.Status == V1StatusInitiated {
			_ = s.act(tx, ActionWait) // someone may have decided meanwhile
			view = s.viewOf(tx)
		}
		renderHTML(w, http.StatusOK, v1PageTmpl, newV1PageData(&view, view.Lang, s.v1ReturnOf(&view)))
		return
	}

	action := r.PostFormValue("action")
	if action != ActionAccept && action != ActionRefuse && action != ActionWait && action != ActionExpire {
		http.Error(w, "action must be accept, refuse, wait or expire", http.StatusBadRequest)
		return
	}
	// A decided transaction (a second click, a reload) just goes back to
	// the shop.
	if err := s.act(tx, action); err != nil && err != ErrFinal {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	view = s.viewOf(tx)
	ret := s.v1ReturnOf(&view)
	switch {
	case v1Open(view.Status): // wait: the customer stays on the page
		renderHTML(w, http.StatusOK, v1PageTmpl, newV1PageData(&view, view.Lang, ret))
	case ret.Post:
		renderHTML(w, http.StatusOK, v1ReturnTmpl, newV1PageData(&view, view.Lang, ret))
	default:
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, ret.URL, http.StatusSeeOther)
	}
}

// viewOf returns a copy of tx's public part.
func (s *Server) viewOf(tx *transaction) Transaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return tx.view()
}
