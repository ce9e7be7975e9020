package caddycinetpay

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// serveNotify handles CinetPay's notifications (README, "How it works"). Nothing in the body is
// trusted but the transaction id, and only once the notification is verified (Checkout v2: its
// x-token; the current API: the payment's notify_token): the outcome comes from CinetPay's
// status call. A state change and its delivery are on disk before the 200.
func (h *Handler) serveNotify(w http.ResponseWriter, r *http.Request) error {
	arrived := time.Now()
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Set("http.cinetpay.route", "notify")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		// CinetPay pings the URL before using it
		return answer(w, http.StatusOK, "OK")
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		return answer(w, http.StatusMethodNotAllowed, "method not allowed")
	}

	body, err := readBody(w, r, engine.MaxNoticeBody)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		metricNotifications.WithLabelValues("slow_body").Inc()
		h.logger.Warn("notification body not received in time; connection closed",
			zap.String("remote_ip", remoteIP(r)), zap.Duration("deadline", bodyReadTimeout))
		return answer(w, http.StatusRequestTimeout, "body not received in time")
	} else if err != nil {
		metricNotifications.WithLabelValues("bad_request").Inc()
		return answer(w, http.StatusBadRequest, "unreadable body")
	}
	if len(body) > engine.MaxNoticeBody {
		metricNotifications.WithLabelValues("too_large").Inc()
		return answer(w, http.StatusRequestEntityTooLarge, "body too large")
	}
	if s, ok := h.site.settled.Lookup(r.Header, body); ok {
		// the very notification verified before for a final payment, which nothing can change
		metricNotifications.WithLabelValues("repeat").Inc()
		repl.Set("http.cinetpay.transaction_id", s.TransactionID)
		repl.Set("http.cinetpay.order_id", s.OrderID)
		repl.Set("http.cinetpay.status", string(s.State))
		return answer(w, http.StatusOK, "OK")
	}
	prov := h.site.eng.Provider
	n, err := prov.ReadNotice(r.Header, body)
	if err != nil {
		metricNotifications.WithLabelValues("bad_request").Inc()
		h.logger.Warn("malformed notification", zap.String("remote_ip", remoteIP(r)), zap.Error(err))
		return answer(w, http.StatusBadRequest, "malformed notification")
	}
	txid := n.TransactionID
	repl.Set("http.cinetpay.transaction_id", txid)

	e, release, err := h.entry()
	if err != nil {
		h.logger.Error("cinetpay store unavailable", zap.Error(err))
		return answer(w, http.StatusServiceUnavailable, "unavailable")
	}
	defer release()
	ours := e.Store().OwnsTransaction(txid)

	switch err := prov.Verify(n); {
	case errors.Is(err, engine.ErrWrongSite):
		metricNotifications.WithLabelValues("wrong_site").Inc()
		h.logger.Warn("notification for another site_id", zap.String("remote_ip", remoteIP(r)))
		return answer(w, http.StatusForbidden, "wrong site")
	case err != nil:
		metricNotifications.WithLabelValues("bad_token").Inc()
		h.badToken(e, r, txid, ours, err)
		return answer(w, http.StatusUnauthorized, "notification not authentic")
	}
	if !ours {
		metricNotifications.WithLabelValues("foreign").Inc()
		h.logger.Info("notification for a transaction not started by this store; ignored",
			zap.String("transaction_id", txid))
		return answer(w, http.StatusOK, "OK")
	}
	p, err := e.Store().Get(h.site.siteID, txid)
	if errors.Is(err, storage.ErrNotFound) {
		metricNotifications.WithLabelValues("unknown").Inc()
		h.logger.Error("notification for a transaction with this store's prefix that the store does not know "+
			"(lost data, or another instance on the same prefix); CinetPay will retry",
			zap.String("transaction_id", txid))
		return answer(w, http.StatusServiceUnavailable, "unknown transaction")
	} else if err != nil {
		h.logger.Error("reading the payment", zap.String("transaction_id", txid), zap.Error(err))
		return answer(w, http.StatusServiceUnavailable, "unavailable")
	}
	if err := prov.VerifyFor(n, &p); err != nil {
		metricNotifications.WithLabelValues("bad_token").Inc()
		h.badToken(e, r, txid, ours, err)
		return answer(w, http.StatusUnauthorized, "notification not authentic")
	}
	repl.Set("http.cinetpay.order_id", p.OrderID)

	switch p.State {
	case storage.StateAccepted, storage.StateMismatch, storage.StateDuplicate:
		// final: nothing can change it, and its repeats are answered from memory
		h.site.settled.Remember(r.Header, body, settledOf(&p))
		metricNotifications.WithLabelValues("settled").Inc()
		repl.Set("http.cinetpay.status", string(p.State))
		return answer(w, http.StatusOK, "OK")
	case storage.StateFailed:
		// CinetPay refused this start, yet sends an authenticated notification for it: that
		// contradicts the refusal, and only an operator can tell what happened
		metricNotifications.WithLabelValues("settled").Inc()
		repl.Set("http.cinetpay.status", string(p.State))
		h.logger.Error("authenticated notification for a payment whose start CinetPay refused (FAILED); "+
			"look the transaction up in CinetPay's back office", zap.String("transaction_id", txid),
			zap.String("order_id", p.OrderID))
		return answer(w, http.StatusOK, "OK")
	case storage.StateInit:
		metricNotifications.WithLabelValues("in_progress").Inc()
		return answer(w, http.StatusServiceUnavailable, "payment start in progress")
	case storage.StateRefused, storage.StateExpired:
		// Only a late success could change it. Inside the quiet period after a usable answer,
		// the check is not made now but stored as due at the period's end, on disk before the
		// 200: the notification is never acknowledged on an answer older than itself alone.
		if end, quiet := engine.QuietUntil(&p, engine.Now()); quiet {
			res, err := e.CheckBy(h.site.eng, &p, end)
			if err != nil {
				metricNotifications.WithLabelValues("no_answer").Inc()
				h.logger.Error("storing the check a notification asks for", zap.String("transaction_id", txid), zap.Error(err))
				return answer(w, http.StatusServiceUnavailable, "try again later")
			}
			metricNotifications.WithLabelValues("scheduled").Inc()
			repl.Set("http.cinetpay.status", string(res.Payment.State))
			return answer(w, http.StatusOK, "OK")
		}
	}
	// only a check asked after this notification arrived may acknowledge it
	res, err := e.CheckSince(h.site.eng, txid, engine.PrioNotify, arrived)
	if err == nil {
		// verified, and its outcome stored: a repeat of it for a final payment needs no more
		h.site.settled.Remember(r.Header, body, settledOf(&res.Payment))
	}
	return h.notified(w, repl, txid, res, err)
}

// settledOf is what SettledNotices keeps of p.
func settledOf(p *storage.Payment) engine.Settled {
	return engine.Settled{TransactionID: p.TransactionID, OrderID: p.OrderID, State: p.State}
}

// notified answers CinetPay after a /check: 200 once the outcome is stored, else 503 so that it
// retries.
func (h *Handler) notified(w http.ResponseWriter, repl *caddy.Replacer, txid string, res storage.UpdateResult, err error) error {
	if err != nil {
		metricNotifications.WithLabelValues("no_answer").Inc()
		if errors.Is(err, engine.ErrNoAnswer) {
			h.logger.Warn("no usable answer from /v2/payment/check; CinetPay will retry and the payment is re-checked",
				zap.String("transaction_id", txid), zap.Error(err))
		} else if !errors.Is(err, engine.ErrStartInProgress) {
			h.logger.Error("storing the check outcome", zap.String("transaction_id", txid), zap.Error(err))
		}
		return answer(w, http.StatusServiceUnavailable, "try again later")
	}
	metricNotifications.WithLabelValues("checked").Inc()
	repl.Set("http.cinetpay.status", string(res.Payment.State))
	return answer(w, http.StatusOK, "OK")
}

// badToken logs a notification that is not authentic (why says how, and what to fix). If it
// names one of our open payments, a re-check is stored as due now (or at the end of the quiet
// period), and the re-checker makes it: a wrong secret_key must not leave payments hanging.
func (h *Handler) badToken(e *storeEntry, r *http.Request, txid string, ours bool, why error) {
	if !ours {
		h.logger.Warn("notification not authentic", zap.String("remote_ip", remoteIP(r)), zap.Error(why))
		return
	}
	p, err := e.Store().Get(h.site.siteID, txid)
	if err != nil || !(p.State.Open() || p.State == storage.StateRefused || p.State == storage.StateExpired) || p.State == storage.StateInit {
		h.logger.Warn("notification not authentic", zap.String("remote_ip", remoteIP(r)),
			zap.String("transaction_id", txid), zap.Error(why))
		return
	}
	log := h.logger.Error
	if errors.Is(why, engine.ErrUnverifiable) {
		log = h.logger.Warn // a start that got no answer, not a forgery
	}
	log("notification not authentic for one of our pending payments: "+why.Error()+"; re-checking the payment",
		zap.String("remote_ip", remoteIP(r)), zap.String("transaction_id", txid))
	// the re-checker makes the check (after the quiet period, if one runs)
	by := engine.Now()
	if end, quiet := engine.QuietUntil(&p, by); quiet {
		by = end
	}
	if _, err := e.CheckBy(h.site.eng, &p, by); err != nil {
		h.logger.Error("scheduling an early re-check", zap.String("transaction_id", txid), zap.Error(err))
	}
}

// bodyReadTimeout bounds the time a client has to send the body of a notification or of
// CinetPay's return form: a client trickling bytes is cut off, not held open.
const bodyReadTimeout = 10 * time.Second

// readBody reads a body of at most limit bytes (a longer one gives limit+1 bytes) within
// bodyReadTimeout, or sooner if the server's own read timeout ends first. A body not received
// in time gives an error matching os.ErrDeadlineExceeded; the connection is then closed.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	rc := http.NewResponseController(w)
	set := false
	if srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server); !ok || srv.ReadTimeout <= 0 || srv.ReadTimeout > bodyReadTimeout {
		set = rc.SetReadDeadline(time.Now().Add(bodyReadTimeout)) == nil
	}
	body, err := readAtMost(r.Body, r.ContentLength, limit)
	if set && err == nil {
		// the rest of the exchange (a /check, the answer) is not the client's to hurry
		_ = rc.SetReadDeadline(time.Time{})
	}
	return body, err
}

// readAtMost reads up to limit+1 bytes of body into one buffer sized from the declared length
// (when it is within the limit), not grown step by step.
func readAtMost(body io.Reader, declared, limit int64) ([]byte, error) {
	if declared >= 0 && declared <= limit {
		// one byte more than declared, to see the end
		buf := make([]byte, declared+1)
		n, err := io.ReadFull(body, buf)
		switch {
		case err == nil:
			// more than declared (net/http never allows it): read on to the limit
		case int64(n) == declared && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)):
			return buf[:n], nil
		case errors.Is(err, io.EOF):
			return buf[:n], io.ErrUnexpectedEOF // shorter than declared
		default:
			return buf[:n], err
		}
		rest, err := io.ReadAll(io.LimitReader(body, limit+1-int64(n)))
		return append(buf[:n], rest...), err
	}
	buf := bytes.NewBuffer(make([]byte, 0, 512))
	_, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	return buf.Bytes(), err
}

// answer writes a short plain-text answer.
func answer(w http.ResponseWriter, status int, msg string) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := io.WriteString(w, msg+"\n")
	return err
}

// remoteIP is the client IP Caddy determined (trusted proxies considered).
func remoteIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return r.RemoteAddr
}
