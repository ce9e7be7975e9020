package caddycinetpay

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

var txidRe = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)

// maxReturnBody bounds the form CinetPay posts on return.
const maxReturnBody = 16 << 10

// serveReturn handles the customer's return (README, "3. The return page"). CinetPay's POST
// becomes a 303 to a same-site GET (so the shop sees its session cookie and no cross-site POST);
// the GET goes to the shop with the payment's verified status in signed headers. Nothing here changes an order:
// return pages are for display, deliveries are for changes.
func (h *Handler) serveReturn(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Set("http.cinetpay.route", "return")
	httpsig.DeleteSignatureHeaders(r.Header)

	switch r.Method {
	case http.MethodPost:
		return h.returnPost(w, r)
	case http.MethodGet, http.MethodHead:
	default:
		return next.ServeHTTP(newRespWriter(w, false), r)
	}

	txid := r.URL.Query().Get("transaction_id")
	if txidRe.MatchString(txid) {
		repl.Set("http.cinetpay.transaction_id", txid)
		if err := h.signReturn(r, repl, txid); err != nil {
			h.logger.Error("preparing the return page", zap.String("transaction_id", txid), zap.Error(err))
		}
	}
	return next.ServeHTTP(newRespWriter(w, false), r)
}

// returnPost answers CinetPay's POST with a 303 to the GET of the return path.
func (h *Handler) returnPost(w http.ResponseWriter, r *http.Request) error {
	txid := r.URL.Query().Get("transaction_id")
	body, err := readBody(w, r, maxReturnBody)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return caddyhttp.Error(http.StatusRequestTimeout, errors.New("return form not received in time"))
	}
	if err != nil || len(body) > maxReturnBody {
		return caddyhttp.Error(http.StatusRequestEntityTooLarge, errors.New("return form too large"))
	}
	if form, err := url.ParseQuery(string(body)); err == nil {
		if v := form.Get("transaction_id"); v != "" {
			txid = v
		}
	}
	loc := h.Return
	if txid != "" {
		if !txidRe.MatchString(txid) {
			return caddyhttp.Error(http.StatusBadRequest, errors.New("bad transaction_id"))
		}
		loc = h.returnLocation(txid)
	}
	w.Header().Set("Location", loc)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusSeeOther)
	return nil
}

// signReturn looks the payment up (checking it at CinetPay if still pending, at most every
// 15 s) and sets the signed result headers on the request.
func (h *Handler) signReturn(r *http.Request, repl *caddy.Replacer, txid string) error {
	e, release, err := h.entry()
	if err != nil {
		return err
	}
	defer release()
	if !e.Store().OwnsTransaction(txid) {
		return nil
	}
	p, err := e.Store().Get(h.site.siteID, txid)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if p.State == storage.StatePending || p.State == storage.StateUnknown {
		res, ran, err := e.CheckIfQuiet(h.site.eng, &p, engine.PrioCustomer)
		if ran && err == nil {
			p = res.Payment
		} else if ran {
			h.logger.Warn("return-page check without a usable answer", zap.String("transaction_id", txid), zap.Error(err))
			if cur, err := e.Store().Get(h.site.siteID, txid); err == nil {
				p = cur
			}
		}
	}
	status := returnStatus(p.State)
	if status == "" {
		return nil
	}
	repl.Set("http.cinetpay.order_id", p.OrderID)
	repl.Set("http.cinetpay.status", status)
	setResultHeaders(r.Header, p.TransactionID, p.OrderID, status, p.Environment, "", p.Result())
	return h.site.signer.Sign(r.Method, r.Header, httpsig.TagReturn, randomNonce(), time.Now())
}

// returnStatus is the status a return page shows; "" for payments that never reached CinetPay.
func returnStatus(s storage.State) string {
	switch s {
	case storage.StateInit, storage.StatePending, storage.StateUnknown:
		return "PENDING"
	case storage.StateFailed:
		return ""
	}
	return string(s)
}

// randomNonce is a fresh nonce for a return page.
func randomNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
