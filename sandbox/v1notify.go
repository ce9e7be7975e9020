package sandbox

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"go.uber.org/zap"
)

// v1Notification is the JSON body of a v1 notification: no status, no
// amount, no signature; notify_token is the per-payment secret returned by
// POST /v1/payment.
type v1Notification struct {
	NotifyToken           string `json:"notify_token"`
	MerchantTransactionID string `json:"merchant_transaction_id"`
	TransactionID         string `json:"transaction_id"`
	User                  V1User `json:"user"`
}

func (n *v1Notification) encode() []byte {
	b, _ := json.Marshal(n)
	return b
}

// v1Notice builds the notification of tx in its current state; s.mu held.
func (tx *transaction) v1Notice() *pendingNotice {
	return &pendingNotice{
		tx:        tx,
		status:    tx.Status,
		notifyURL: tx.NotifyURL,
		v1: &v1Notification{
			NotifyToken:           tx.V1.NotifyToken,
			MerchantTransactionID: tx.TransactionID,
			TransactionID:         tx.V1.CinetPayTransactionID,
			User:                  tx.V1.User,
		},
	}
}

// v1Payload is the JSON notification, shaped by the notify fault f;
// faults collects the faults applied.
func (n *pendingNotice) v1Payload(f *NotifyFault, faults *[]string) notifyPayload {
	body := *n.v1
	if f.BadToken {
		wrong := randomHex(len(body.NotifyToken) / 2)
		for wrong == body.NotifyToken {
			wrong = randomHex(len(body.NotifyToken) / 2)
		}
		body.NotifyToken = wrong
		*faults = append(*faults, "bad_token")
	}
	return notifyPayload{
		header: http.Header{"Content-Type": {"application/json"}},
		body:   string(body.encode()),
	}
}

// v1DefaultNotified are the states notified unless v1_notify_statuses says
// otherwise: the final ones.
var v1DefaultNotified = []string{V1StatusSuccess, V1StatusFailed}

// v1NotifiedLocked reports whether reaching status is notified; s.mu held.
func (s *Server) v1NotifiedLocked(status string) bool {
	set := s.faults.V1NotifyStatuses
	if len(set) == 0 {
		set = v1DefaultNotified
	}
	return slices.Contains(set, status)
}

// v1Open reports whether the customer can still decide: INITIATED or
// PENDING.
func v1Open(status string) bool {
	return status == V1StatusInitiated || status == V1StatusPending
}

// v1SetStatusLocked moves tx to status and returns the notification this
// causes, if that state is notified; s.mu held.
func (s *Server) v1SetStatusLocked(tx *transaction, status string) []*pendingNotice {
	tx.Status = status
	if status == V1StatusSuccess {
		if tx.PaymentMethod == "" {
			if m := v1Countries[tx.V1.Country].methods; len(m) > 0 {
				tx.PaymentMethod = m[0]
			}
		}
		tx.PaymentDate = time.Now().UTC().Format(dateLayout)
		tx.late = nil
		tx.LateSuccess = ""
	}
	if !s.v1NotifiedLocked(status) {
		return nil
	}
	return []*pendingNotice{tx.v1Notice()}
}

// decideV1Locked applies an action to a v1 transaction and returns the
// notifications it causes; s.mu held.
func (s *Server) decideV1Locked(tx *transaction, action string) ([]*pendingNotice, error) {
	switch action {
	case ActionNotify:
		return []*pendingNotice{tx.v1Notice()}, nil
	case ActionPayLate:
		if tx.Status != V1StatusFailed && tx.Status != V1StatusExpired {
			return nil, ErrNotRefused
		}
		return s.lateAcceptLocked(tx), nil
	case ActionAccept, ActionRefuse, ActionWait, ActionExpire:
	default:
		return nil, ErrBadAction
	}
	if !v1Open(tx.Status) {
		return nil, ErrFinal
	}
	switch action {
	case ActionAccept:
		return s.v1SetStatusLocked(tx, V1StatusSuccess), nil
	case ActionRefuse:
		out := s.v1SetStatusLocked(tx, V1StatusFailed)
		s.armLateSuccessLocked(tx)
		return out, nil
	case ActionWait:
		if tx.Status == V1StatusPending {
			return nil, nil
		}
		return s.v1SetStatusLocked(tx, V1StatusPending), nil
	default: // ActionExpire
		return s.v1SetStatusLocked(tx, V1StatusExpired), nil
	}
}

// scheduleV1Expiry expires tx after d unless the customer decided by then
// (the v1_expire_after fault); s.mu held.
func (s *Server) scheduleV1Expiry(tx *transaction, d time.Duration) {
	s.goAsync(func() {
		if !s.sleep(d) {
			return
		}
		s.mu.Lock()
		if !v1Open(tx.Status) {
			s.mu.Unlock()
			return
		}
		notices := s.v1SetStatusLocked(tx, V1StatusExpired)
		s.mu.Unlock()
		s.logger.Info("sandbox v1 payment expired", zapTxOf(tx), zap.Duration("after", d))
		for _, n := range notices {
			s.deliver(n)
		}
	})
}
