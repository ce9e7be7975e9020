package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpay"
)

// Errors of Act and of the control API.
var (
	// ErrNotFound: no transaction has this transaction_id or token.
	ErrNotFound = errors.New("no such transaction")
	// ErrAmbiguous: several sites have a transaction with this
	// transaction_id (the control API takes ?site_id= to choose).
	ErrAmbiguous = errors.New("several sites have this transaction_id: add ?site_id=")
	// ErrFinal: the transaction is already ACCEPTED or REFUSED (on v1:
	// SUCCESS, FAILED or EXPIRED), so the customer can no longer decide.
	ErrFinal = errors.New("the transaction is final")
	// ErrNotRefused: pay_late needs a REFUSED transaction (on v1: FAILED or
	// EXPIRED).
	ErrNotRefused = errors.New("the transaction is not refused")
	// ErrBadAction: the action is not one of the Action* constants (or is
	// expire on a Checkout v2 transaction).
	ErrBadAction = errors.New("action must be accept, refuse, wait, expire (v1 only), notify or pay_late")
)

// Requests returns every API call received, in order of arrival.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = *r
		out[i].Body = bytes.Clone(r.Body)
	}
	return out
}

// ClearRequests forgets the API calls received (and so resets CheckCount
// and PaymentCount).
func (s *Server) ClearRequests() {
	s.mu.Lock()
	s.requests = nil
	s.mu.Unlock()
}

// CheckCount returns how many /v2/payment/check calls named transaction
// txID (by transaction_id or by its token), whatever they were answered.
func (s *Server) CheckCount(txID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.Path == cinetpay.PathCheck && r.TransactionID == txID {
			n++
		}
	}
	return n
}

// PaymentCount returns how many /v2/payment calls were received, whatever
// they were answered.
func (s *Server) PaymentCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.Path == cinetpay.PathPayment {
			n++
		}
	}
	return n
}

// Transaction returns the transaction with this transaction_id (or payment
// token), on any site; for v1 transactions, with this merchant_transaction_id,
// CinetPay transaction_id or payment_token.
func (s *Server) Transaction(id string) (Transaction, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.lookupLocked(id, "")
	if err != nil {
		return Transaction{}, false
	}
	return tx.view(), true
}

// Transactions returns all transactions, in creation order.
func (s *Server) Transactions() []Transaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Transaction, len(s.order))
	for i, tx := range s.order {
		out[i] = tx.view()
	}
	return out
}

// Act does what the payment page's buttons do to the transaction with this
// id (as Transaction finds it) — action "accept", "refuse", "wait" or, on
// v1, "expire" — or, with "notify", re-sends the notification of its
// current state, or, with "pay_late", turns a REFUSED transaction ACCEPTED
// (on v1, a FAILED or EXPIRED one SUCCESS: a late success). The
// notifications are sent before Act returns unless the notify_async fault
// is set.
func (s *Server) Act(id, action string) (Transaction, error) {
	s.mu.Lock()
	tx, err := s.lookupLocked(id, "")
	s.mu.Unlock()
	if err != nil {
		return Transaction{}, err
	}
	err = s.act(tx, action)
	s.mu.Lock()
	defer s.mu.Unlock()
	return tx.view(), err
}

// Reset forgets all transactions, requests and faults. v1 bearer tokens
// stay valid, so clients need not log in again.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txs = make(map[txKey]*transaction)
	s.tokens = make(map[string]*transaction)
	s.v1txs = make(map[txKey]*transaction)
	s.v1ids = make(map[string]*transaction)
	s.order = nil
	s.requests = nil
	s.faults = Faults{}
	s.rateHits = nil
}

// lookupLocked finds a transaction by transaction_id (on site, if given)
// or by token, or a v1 one (with no site given) by CinetPay's
// transaction_id; s.mu held.
func (s *Server) lookupLocked(id, site string) (*transaction, error) {
	if site != "" {
		if tx := s.txs[txKey{site, id}]; tx != nil {
			return tx, nil
		}
	} else {
		var found *transaction
		for _, tx := range s.order {
			if tx.TransactionID == id {
				if found != nil {
					return nil, ErrAmbiguous
				}
				found = tx
			}
		}
		if found != nil {
			return found, nil
		}
	}
	if tx := s.tokens[id]; tx != nil && (site == "" || tx.SiteID == site) {
		return tx, nil
	}
	if tx := s.v1ids[id]; tx != nil && site == "" {
		return tx, nil
	}
	return nil, ErrNotFound
}

type controlError struct {
	Error string `json:"error"`
}

// serveControl serves /_sandbox/...; rest starts with "/" or is empty.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "requests":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, s.Requests())
		case http.MethodDelete:
			s.ClearRequests()
			w.WriteHeader(http.StatusNoContent)
		default:
			methodNotAllowed(w, "GET, DELETE")
		}
	case len(parts) == 1 && parts[0] == "faults":
		s.serveFaults(w, r)
	case len(parts) == 1 && parts[0] == "reset":
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 1 && parts[0] == "transactions":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET")
			return
		}
		writeJSON(w, http.StatusOK, s.Transactions())
	case (len(parts) == 2 || len(parts) == 3) && parts[0] == "transactions":
		s.serveTransaction(w, r, parts[1:])
	default:
		writeJSON(w, http.StatusNotFound, controlError{"no such control route"})
	}
}

// serveTransaction serves /_sandbox/transactions/<id>[/<action>].
func (s *Server) serveTransaction(w http.ResponseWriter, r *http.Request, parts []string) {
	s.mu.Lock()
	tx, err := s.lookupLocked(parts[0], r.URL.Query().Get("site_id"))
	s.mu.Unlock()
	switch {
	case errors.Is(err, ErrNotFound):
		writeJSON(w, http.StatusNotFound, controlError{err.Error()})
		return
	case err != nil:
		writeJSON(w, http.StatusConflict, controlError{err.Error()})
		return
	}
	if len(parts) == 1 {
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET")
			return
		}
		s.mu.Lock()
		v := tx.view()
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, v)
		return
	}
	if r.Method != http.MethodPost {
		methodNotAllowed(w, "POST")
		return
	}
	err = s.act(tx, parts[1])
	s.mu.Lock()
	v := tx.view()
	s.mu.Unlock()
	switch {
	case errors.Is(err, ErrBadAction):
		writeJSON(w, http.StatusNotFound, controlError{err.Error()})
	case errors.Is(err, ErrFinal):
		writeJSON(w, http.StatusConflict, controlError{"the transaction is already " + v.Status})
	case errors.Is(err, ErrNotRefused):
		writeJSON(w, http.StatusConflict, controlError{"pay_late needs a REFUSED transaction (v1: FAILED or EXPIRED); it is " + v.Status})
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

// serveFaults serves /_sandbox/faults.
func (s *Server) serveFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.Faults())
	case http.MethodDelete:
		s.SetFaults(Faults{})
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPut:
		var f Faults
		dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			writeJSON(w, http.StatusBadRequest, controlError{"faults: " + err.Error()})
			return
		}
		if err := f.Validate(); err != nil {
			writeJSON(w, http.StatusBadRequest, controlError{"faults: " + err.Error()})
			return
		}
		s.SetFaults(f)
		writeJSON(w, http.StatusOK, s.Faults())
	default:
		methodNotAllowed(w, "GET, PUT, DELETE")
	}
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeJSON(w, http.StatusMethodNotAllowed, controlError{"method not allowed"})
}
