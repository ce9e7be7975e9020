// Command go-shop is a minimal shop behind Caddy and caddy-cinetpay, with the standard library and
// the module's httpsig package (no Caddy dependency).
//
//	POST /checkout           creates an order and answers the Cinetpay-* headers (Caddy starts
//	                         the payment; this shop never talks to CinetPay)
//	POST /cinetpay/webhook   results delivered by Caddy: verified, compared, applied once
//	POST /cinetpay/standard-webhook  the same, delivered in the Standard Webhooks format
//	                         (deliver_format standard-webhooks; standardwebhooks.go)
//	GET  /cinetpay/return    the customer's return page: shows the verified status, changes nothing
//	GET  /orders/{id}        the order as the shop holds it (JSON)
//
// Environment: SHOP_PORT (9000), SHOP_DATA (./data/shop-go), SIGNING_KEYS ("id:key,id2:key2"),
// ACCEPT_SANDBOX ("1" accepts results of the CinetPay sandbox), STANDARD_WEBHOOKS_SECRET ("whsec_…",
// for /cinetpay/standard-webhook).
package main

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
)

type product struct {
	Name   string
	Amount int64
}

var products = map[string]product{
	"wax":     {"Tissu wax — édition spéciale", 5000},
	"attieke": {"Attiéké, 1 kg", 1500},
}

// Order is an order as the shop holds it.
type Order struct {
	ID            string   `json:"id"`
	Product       string   `json:"product"`
	Description   string   `json:"description"`
	Amount        int64    `json:"amount"`
	Currency      string   `json:"currency"`
	Status        string   `json:"status"` // awaiting_payment, paid, payment_failed
	TransactionID *string  `json:"transaction_id"`
	Events        []string `json:"events"` // event ids applied to this order, each once
	Flags         []Flag   `json:"flags"`  // results the merchant must look at (refund, review)
	CreatedAt     string   `json:"created_at"`
}

// Flag is a result that needs the merchant.
type Flag struct {
	EventID       string `json:"event_id"`
	TransactionID string `json:"transaction_id"`
	Status        string `json:"status"`
	Reason        string `json:"reason"`
	At            string `json:"at"`
}

// Event is a delivery the shop has handled.
type Event struct {
	OrderID       string `json:"order_id"`
	TransactionID string `json:"transaction_id"`
	Status        string `json:"status"`
	Note          string `json:"note"`
	At            string `json:"at"`
}

type db struct {
	Orders map[string]*Order `json:"orders"`
	Events map[string]*Event `json:"events"`
}

// store is a JSON file: every change is made under a mutex and written to a temporary file renamed
// over the store, so the file is always either the old or the new version.
type store struct {
	mu   sync.Mutex
	path string
}

func (s *store) load() (*db, error) {
	d := &db{Orders: map[string]*Order{}, Events: map[string]*Event{}}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	} else if err != nil {
		return nil, err
	}
	return d, json.Unmarshal(b, d)
}

func (s *store) update(change func(*db) string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.load()
	if err != nil {
		return "", err
	}
	result := change(d)
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return "", err
	}
	if err := writeAtomic(s.path, b); err != nil {
		return "", err
	}
	return result, nil
}

// writeAtomic replaces path with b: a temporary file, written in full and synced, renamed over
// path, then the directory synced so that the rename itself survives a power loss. On any error
// the temporary file is removed and path is left as it was.
func writeAtomic(path string, b []byte) (err error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(b); err != nil { // a short write is an error (disk full)
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

func (s *store) order(id string) (*Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.load()
	if err != nil {
		return nil, err
	}
	return d.Orders[id], nil
}

// applyResult applies a verified delivery to its order, together with its event id.
func applyResult(d *db, r *httpsig.Result) string {
	if _, seen := d.Events[r.EventID]; seen {
		return "already applied"
	}
	o := d.Orders[r.OrderID]
	if o == nil {
		// Acknowledged (2xx) but not recorded: once the order is restored, a replay of this
		// event through Caddy's admin API is applied instead of answered "already applied".
		return "unknown order: not applied"
	}
	now := time.Now().UTC().Format(time.RFC3339)
	flag := ""
	var note string
	switch {
	case r.Amount != strconv.FormatInt(o.Amount, 10) || r.Currency != o.Currency:
		note = fmt.Sprintf("%s %s differs from the order's %d %s: recorded for review, not applied",
			r.Amount, r.Currency, o.Amount, o.Currency)
		flag = note
	case r.Status == "ACCEPTED" && o.Status == "paid" && o.TransactionID != nil && *o.TransactionID != r.TransactionID:
		// paid by another transaction: the order keeps its payment, the merchant refunds this one
		note = "paid twice: refund " + r.TransactionID
		flag = note
	case r.Status == "ACCEPTED":
		o.Status, o.TransactionID = "paid", &r.TransactionID
		note = "order paid"
	case r.Status == "REFUSED" || r.Status == "EXPIRED":
		if o.Status != "paid" { // a later ACCEPTED still wins
			o.Status = "payment_failed"
		}
		note = "payment " + strings.ToLower(r.Status)
	case r.Status == "DUPLICATE":
		note, flag = "paid twice: refund this transaction", "paid twice: refund this transaction"
	case r.Status == "MISMATCH":
		note, flag = "paid another amount: review and refund", "paid another amount: review and refund"
	default:
		note = "status " + r.Status + " ignored"
	}
	if flag != "" {
		o.Flags = append(o.Flags, Flag{r.EventID, r.TransactionID, r.Status, flag, now})
	}
	o.Events = append(o.Events, r.EventID)
	d.Events[r.EventID] = &Event{r.OrderID, r.TransactionID, r.Status, note, now}
	return note
}

type shop struct {
	store       *store
	notify, ret *httpsig.Verifier
	// Standard Webhooks deliveries, with the secret of STANDARD_WEBHOOKS_SECRET (nil when unset)
	sw *httpsig.WebhookVerifier
}

// pct percent-encodes text for a Cinetpay-* header (RFC 3986 unreserved characters stay); the
// module decodes it.
func pct(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

func (s *shop) checkout(w http.ResponseWriter, r *http.Request) {
	name := r.PostFormValue("product")
	if name == "" {
		name = "wax"
	}
	p, ok := products[name]
	if !ok {
		http.Error(w, "unknown product", http.StatusBadRequest)
		return
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id := "ord_" + hex.EncodeToString(b)
	if _, err := s.store.update(func(d *db) string {
		d.Orders[id] = &Order{ID: id, Product: name, Description: p.Name, Amount: p.Amount, Currency: "XOF",
			Status: "awaiting_payment", Events: []string{}, Flags: []Flag{},
			CreatedAt: time.Now().UTC().Format(time.RFC3339)}
		return ""
	}); err != nil {
		log.Printf("checkout: %v", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	// Caddy replaces this answer with a 303 to CinetPay's payment page (README, "1. Checkout").
	h := w.Header()
	h.Set("Cinetpay-Amount", strconv.FormatInt(p.Amount, 10))
	h.Set("Cinetpay-Order-Id", id)
	h.Set("Cinetpay-Currency", "XOF")
	h.Set("Cinetpay-Description", pct(p.Name))
	h.Set("Cinetpay-Customer-Name", pct("Aya"))
	h.Set("Cinetpay-Customer-Surname", pct("Kouadio"))
	h.Set("Cinetpay-Customer-Email", "aya.kouadio@example.test")
	h.Set("Cinetpay-Customer-Phone-Number", "+2250700000000")
	h.Set("Cinetpay-Customer-Address", pct("Rue des Jardins"))
	h.Set("Cinetpay-Customer-City", pct("Abidjan"))
	h.Set("Cinetpay-Customer-Country", "CI")
	h.Set("Cinetpay-Customer-Zip-Code", "00225")
	h.Set("Cinetpay-Metadata", pct("order="+id))
	fmt.Fprintf(w, "order %s created\n", id)
}

func (s *shop) webhook(w http.ResponseWriter, r *http.Request) {
	res, err := s.notify.Verify(r)
	if err != nil {
		log.Printf("webhook refused: %v", err)
		http.Error(w, "bad signature: "+err.Error(), http.StatusUnauthorized)
		return
	}
	note, err := s.store.update(func(d *db) string { return applyResult(d, res) })
	if err != nil {
		log.Printf("webhook %s: %v", res.EventID, err)
		http.Error(w, "internal error", http.StatusInternalServerError) // the module retries
		return
	}
	log.Printf("webhook %s %s %s: %s", res.EventID, res.OrderID, res.Status, note)
	fmt.Fprintln(w, note) // 2xx: the module stops retrying this event
}

// The pages customers see, in French, readable on a phone; the codes stay in data-status.
func pageHead(title string) string {
	return `<!doctype html><html lang="fr"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>` + title + `</title>
<style>body{margin:0 auto;max-width:34rem;padding:1rem;font:16px/1.5 system-ui,sans-serif}h1{font-size:1.4rem}h1,p{overflow-wrap:anywhere}select,button{font:inherit;max-width:100%}</style>
`
}

var words = template.FuncMap{
	"payment": func(s string) string {
		w := map[string]string{"ACCEPTED": "accepté", "REFUSED": "refusé", "PENDING": "en attente de confirmation",
			"EXPIRED": "expiré", "MISMATCH": "montant différent de la commande (à vérifier)",
			"DUPLICATE": "en double (il sera remboursé)"}[s]
		return cmp.Or(w, "statut inconnu")
	},
	"order": func(s string) string {
		w := map[string]string{"awaiting_payment": "en attente de paiement", "paid": "payée",
			"payment_failed": "paiement non abouti"}[s]
		return cmp.Or(w, "introuvable")
	},
}

var returnPage = template.Must(template.New("return").Funcs(words).Parse(pageHead("Paiement") + `{{if .Err}}<h1>Paiement</h1><p id="unverified">Le statut du paiement n'a pas pu être vérifié.
La page de votre commande affichera le résultat dès qu'il sera arrivé.</p>
{{else}}<h1>Commande {{.R.OrderID}}</h1>
<p>Paiement&nbsp;: <strong id="payment-status" data-status="{{.R.Status}}">{{payment .R.Status}}</strong> ({{.R.Amount}} {{.R.Currency}})</p>
{{$s := "unknown"}}{{if .Order}}{{$s = .Order.Status}}{{end -}}
<p>Commande&nbsp;: <strong id="order-status" data-status="{{$s}}">{{order $s}}</strong></p>
{{end}}`))

func (s *shop) returnPage(w http.ResponseWriter, r *http.Request) {
	data := struct {
		R     *httpsig.Result
		Order *Order
		Err   error
	}{}
	data.R, data.Err = s.ret.Verify(r)
	if data.Err == nil {
		data.Order, data.Err = s.store.order(data.R.OrderID)
	}
	if data.Err != nil {
		log.Printf("return page not verified: %v", data.Err)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = returnPage.Execute(w, data)
}

var home = template.Must(template.New("home").Parse(pageHead("Boutique") + `<h1>Boutique (Go)</h1>
<form method="post" action="/checkout"><p><select name="product" aria-label="Produit">{{range $k, $p := .}}<option value="{{$k}}">{{$p.Name}} — {{$p.Amount}} XOF</option>{{end}}</select></p>
<p><button>Payer avec CinetPay</button></p></form>
`))

func (s *shop) order(w http.ResponseWriter, r *http.Request) {
	o, err := s.store.order(r.PathValue("id"))
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if o == nil {
		http.Error(w, "no such order", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(o)
}

// parseKeys reads SIGNING_KEYS, "id1:key1,id2:key2": several keys let the shop rotate (add the new
// key, switch Caddy's signing_key to it, then remove the old one).
func parseKeys(s string) (map[string][]byte, error) {
	keys := map[string][]byte{}
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		id, key, ok := strings.Cut(part, ":")
		if !ok || id == "" || key == "" {
			return nil, errors.New("SIGNING_KEYS: expected id:key[,id:key]")
		}
		keys[id] = []byte(key)
	}
	if len(keys) == 0 {
		return nil, errors.New("SIGNING_KEYS is required (id:key[,id:key])")
	}
	return keys, nil
}

func main() {
	port := orDefault(os.Getenv("SHOP_PORT"), "9000")
	dir := orDefault(os.Getenv("SHOP_DATA"), "data/shop-go")
	keys, err := parseKeys(os.Getenv("SIGNING_KEYS"))
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatal(err)
	}
	sandbox := os.Getenv("ACCEPT_SANDBOX") == "1"
	s := &shop{
		store:  &store{path: filepath.Join(dir, "orders.json")},
		notify: &httpsig.Verifier{Keys: keys, Tag: httpsig.TagNotify, AcceptSandbox: sandbox},
		ret:    &httpsig.Verifier{Keys: keys, Tag: httpsig.TagReturn, AcceptSandbox: sandbox},
	}
	if secret := os.Getenv("STANDARD_WEBHOOKS_SECRET"); secret != "" {
		key, err := httpsig.ParseWebhookSecret(secret)
		if err != nil {
			log.Fatalf("STANDARD_WEBHOOKS_SECRET: %v", err)
		}
		s.sw = &httpsig.WebhookVerifier{Secrets: [][]byte{key}, AcceptSandbox: sandbox}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { _ = home.Execute(w, products) })
	mux.HandleFunc("POST /checkout", s.checkout)
	mux.HandleFunc("POST /cinetpay/webhook", s.webhook)
	mux.HandleFunc("POST /cinetpay/standard-webhook", s.standardWebhook)
	mux.HandleFunc("GET /cinetpay/return", s.returnPage)
	mux.HandleFunc("GET /orders/{id}", s.order)
	addr := "127.0.0.1:" + port
	log.Printf("shop (go) on http://%s", addr)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
