package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpay"
)

// Transaction is a payment as the sandbox holds it.
type Transaction struct {
	SiteID        string `json:"site_id"`
	TransactionID string `json:"transaction_id"`
	Token         string `json:"token"`
	PaymentURL    string `json:"payment_url"`
	// Status is WAITING_FOR_CUSTOMER, ACCEPTED or REFUSED.
	Status   string `json:"status"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// PaidAmount and PaidCurrency are what /check and the notifications
	// report; they differ from Amount and Currency only under the Paid
	// fault.
	PaidAmount    int64     `json:"paid_amount"`
	PaidCurrency  string    `json:"paid_currency"`
	Description   string    `json:"description"`
	Channels      string    `json:"channels"`
	Lang          string    `json:"lang,omitempty"`
	Metadata      string    `json:"metadata,omitempty"`
	NotifyURL     string    `json:"notify_url"`
	ReturnURL     string    `json:"return_url"`
	PaymentMethod string    `json:"payment_method,omitempty"`
	OperatorID    string    `json:"operator_id,omitempty"`
	PaymentDate   string    `json:"payment_date,omitempty"`
	Created       time.Time `json:"created"`
	// LateSuccess describes a pending late success ("after 2s",
	// "on_check", "after 2s or on_check").
	LateSuccess string `json:"late_success,omitempty"`
	// Notifications are the pings and notifications sent (or lost), in the
	// order their outcome was known.
	Notifications []Notification `json:"notifications"`
}

// Notification is one HTTP request sent to notify_url (or one lost).
type Notification struct {
	Time time.Time `json:"time"`
	// Method is GET for the ping, POST for a notification.
	Method string `json:"method"`
	// Status is the state notified (not set on pings).
	Status string `json:"status,omitempty"`
	// Copy numbers the copies of one notification sent under the
	// duplicate and concurrent faults, from 1.
	Copy int `json:"copy,omitempty"`
	// Attempt numbers the tries of one copy, from 1 (retries while the
	// answer is not 200).
	Attempt int `json:"attempt,omitempty"`
	// Fields is the form sent.
	Fields map[string]string `json:"fields,omitempty"`
	// XToken is the x-token header sent.
	XToken string `json:"x_token,omitempty"`
	// HTTPStatus is notify_url's answer, 0 if none.
	HTTPStatus int `json:"http_status"`
	// Error is the transport error, if any.
	Error string `json:"error,omitempty"`
	// Fault lists the notify faults applied ("lost", "delay", "duplicate",
	// "concurrent", "bad_token", "site_id", "omit_fields").
	Fault string `json:"fault,omitempty"`
}

// transaction is a Transaction with what the sandbox keeps to itself; all of
// it is guarded by Server.mu.
type transaction struct {
	Transaction
	secret      string
	phone       string // cel_phone_num
	pinged      bool   // the GET ping was sent
	waitingSent bool   // the WAITING_FOR_CUSTOMER notification was sent
	late        *LateSuccessFault
}

// view returns a copy of the public part; s.mu held.
func (tx *transaction) view() Transaction {
	v := tx.Transaction
	v.Notifications = slices.Clone(tx.Notifications)
	return v
}

// pendingNotice is a notification to send.
type pendingNotice struct {
	tx        *transaction
	status    string
	fields    map[string]string
	notifyURL string
	secret    string
}

// errorMessages are the cpm_error_message of each state.
var errorMessages = map[string]string{
	StatusWaiting:  cinetpay.CodeMessage("662"), // WAITING_CUSTOMER_PAYMENT
	StatusAccepted: cinetpay.CodeMessage(cinetpay.CodeSuccess),
	StatusRefused:  cinetpay.CodeMessage("600"), // PAYMENT_FAILED
}

// notice builds the notification of tx in state status; s.mu held.
func (tx *transaction) notice(status string) *pendingNotice {
	lang := tx.Lang
	if lang == "" {
		lang = "fr"
	}
	return &pendingNotice{
		tx:        tx,
		status:    status,
		notifyURL: tx.NotifyURL,
		secret:    tx.secret,
		fields: map[string]string{
			"cpm_site_id":        tx.SiteID,
			"cpm_trans_id":       tx.TransactionID,
			"cpm_trans_date":     tx.Created.Format(dateLayout),
			"cpm_amount":         strconv.FormatInt(tx.PaidAmount, 10),
			"cpm_currency":       tx.PaidCurrency,
			"signature":          tx.Token,
			"payment_method":     tx.PaymentMethod,
			"cel_phone_num":      tx.phone,
			"cpm_phone_prefixe":  "225",
			"cpm_language":       lang,
			"cpm_version":        "V4",
			"cpm_payment_config": "SINGLE",
			"cpm_page_action":    "PAYMENT",
			"cpm_custom":         tx.Metadata,
			"cpm_designation":    tx.Description,
			"cpm_error_message":  errorMessages[status],
		},
	}
}

// Actions of the payment page and the control API.
const (
	ActionAccept = "accept"
	ActionRefuse = "refuse"
	ActionWait   = "wait"
	ActionNotify = "notify"
	// ActionPayLate turns a REFUSED transaction ACCEPTED now, with its
	// notification: the customer paid after all (a late success, as the
	// late_success fault makes one on a timer).
	ActionPayLate = "pay_late"
)

// decideLocked applies an action to tx and returns the notifications it
// causes; s.mu held.
func (s *Server) decideLocked(tx *transaction, action string) ([]*pendingNotice, error) {
	if action == ActionNotify {
		return []*pendingNotice{tx.notice(tx.Status)}, nil
	}
	if action == ActionPayLate {
		if tx.Status != StatusRefused {
			return nil, ErrNotRefused
		}
		return []*pendingNotice{s.lateAcceptLocked(tx)}, nil
	}
	if action != ActionAccept && action != ActionRefuse && action != ActionWait {
		return nil, ErrBadAction
	}
	if tx.Status != StatusWaiting {
		return nil, ErrFinal
	}
	tx.PaymentMethod = "OM"
	var out []*pendingNotice
	if !tx.waitingSent {
		tx.waitingSent = true
		out = append(out, tx.notice(StatusWaiting))
	}
	switch action {
	case ActionAccept:
		s.acceptLocked(tx)
		out = append(out, tx.notice(StatusAccepted))
	case ActionRefuse:
		tx.Status = StatusRefused
		if lf := take(&s.faults.LateSuccess); lf != nil {
			tx.late = lf
			var when []string
			if lf.After > 0 {
				when = append(when, "after "+time.Duration(lf.After).String())
				s.scheduleLateSuccess(tx, lf)
			}
			if lf.OnCheck {
				when = append(when, "on_check")
			}
			tx.LateSuccess = strings.Join(when, " or ")
		}
		out = append(out, tx.notice(StatusRefused))
	}
	return out, nil
}

// acceptLocked marks tx paid; s.mu held.
func (s *Server) acceptLocked(tx *transaction) {
	now := time.Now().UTC()
	tx.Status = StatusAccepted
	tx.PaymentMethod = "OM"
	tx.OperatorID = fmt.Sprintf("MP%s.%s.%c%s", now.Format("060102"), now.Format("1504"),
		'A'+randomDigits(1)[0]-'0', randomDigits(5))
	tx.PaymentDate = now.Format(dateLayout)
	tx.late = nil
	tx.LateSuccess = ""
	if p := take(&s.faults.Paid); p != nil {
		if p.Amount > 0 {
			tx.PaidAmount = p.Amount
		}
		if p.Currency != "" {
			tx.PaidCurrency = p.Currency
		}
	}
}

// lateAcceptLocked turns a refused tx ACCEPTED; s.mu held.
func (s *Server) lateAcceptLocked(tx *transaction) *pendingNotice {
	s.acceptLocked(tx)
	s.logger.Info("sandbox late success", zapSite(tx.SiteID), zapTx(tx.TransactionID))
	return tx.notice(StatusAccepted)
}

// scheduleLateSuccess accepts tx after lf.After unless something else did;
// s.mu held.
func (s *Server) scheduleLateSuccess(tx *transaction, lf *LateSuccessFault) {
	s.goAsync(func() {
		if !s.sleep(time.Duration(lf.After)) {
			return
		}
		s.mu.Lock()
		if tx.Status != StatusRefused || tx.late != lf {
			s.mu.Unlock()
			return
		}
		n := s.lateAcceptLocked(tx)
		s.mu.Unlock()
		s.deliver(n)
	})
}

// act applies an action to tx and sends the notifications it causes,
// before returning unless the notify_async fault is set.
func (s *Server) act(tx *transaction, action string) error {
	s.mu.Lock()
	notices, err := s.decideLocked(tx, action)
	async := s.faults.NotifyAsync
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if len(notices) > 0 {
		s.logger.Info("sandbox decision", zapSite(tx.SiteID), zapTx(tx.TransactionID),
			zap.String("action", action))
	}
	run := func() {
		for _, n := range notices {
			s.deliver(n)
		}
	}
	if async {
		s.goAsync(run)
	} else {
		run()
	}
	return nil
}

// Notification retries.
const (
	notifyAttempts = 3
	notifyBackoff  = 100 * time.Millisecond
)

// deliver sends one notification, honouring the notify fault.
func (s *Server) deliver(n *pendingNotice) {
	s.mu.Lock()
	f := take(&s.faults.Notify)
	if f == nil {
		f = &NotifyFault{}
	}
	var faults []string
	if f.Lost {
		n.tx.Notifications = append(n.tx.Notifications, Notification{
			Time: time.Now(), Method: http.MethodPost, Status: n.status,
			Fields: n.fields, Fault: "lost",
		})
		s.mu.Unlock()
		s.logger.Info("sandbox notification lost (fault)", zapSite(n.tx.SiteID), zapTx(n.tx.TransactionID))
		return
	}
	s.mu.Unlock()

	if f.Delay > 0 {
		faults = append(faults, "delay")
		if !s.sleep(time.Duration(f.Delay)) {
			return
		}
	}

	s.mu.Lock()
	ping := !n.tx.pinged
	n.tx.pinged = true
	s.mu.Unlock()
	if ping {
		s.ping(n)
	}

	fields := make(map[string]string, len(n.fields))
	for k, v := range n.fields {
		fields[k] = v
	}
	if f.SiteID != "" {
		fields["cpm_site_id"] = f.SiteID
		faults = append(faults, "site_id")
	}
	if len(f.OmitFields) > 0 {
		for _, name := range f.OmitFields {
			delete(fields, name)
		}
		faults = append(faults, "omit_fields")
	}
	secret := n.secret
	if f.BadToken {
		secret = "not-the-secret-key-" + secret
		faults = append(faults, "bad_token")
	}
	token := cinetpay.XToken(secret, fields)
	form := url.Values{}
	for k, v := range fields {
		form.Set(k, v)
	}
	body := form.Encode()

	concurrent := max(f.Concurrent, 1)
	if f.Duplicate > 0 {
		faults = append(faults, "duplicate")
	}
	if f.Concurrent > 1 {
		faults = append(faults, "concurrent")
	}
	fault := strings.Join(faults, ",")
	copyN := 0
	for range 1 + f.Duplicate {
		var wg sync.WaitGroup
		for range concurrent {
			copyN++
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				s.post(n, fields, body, token, c, fault)
			}(copyN)
		}
		wg.Wait()
	}
}

// ping sends the GET that precedes the first notification.
func (s *Server) ping(n *pendingNotice) {
	s.send(n, Notification{Method: http.MethodGet}, "", nil)
}

// post sends one copy of a notification, retrying while the answer is not
// 200.
func (s *Server) post(n *pendingNotice, fields map[string]string, body, token string, copyN int, fault string) {
	hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, cinetpay.XTokenHeader: {token}}
	for attempt := 1; attempt <= notifyAttempts; attempt++ {
		if attempt > 1 && !s.sleep(notifyBackoff<<(attempt-2)) {
			return
		}
		rec := s.send(n, Notification{
			Method: http.MethodPost, Status: n.status, Copy: copyN, Attempt: attempt,
			Fields: fields, XToken: token, Fault: fault,
		}, body, hdr)
		s.logger.Debug("sandbox notification sent", zapSite(n.tx.SiteID), zapTx(n.tx.TransactionID),
			zap.String("status", n.status), zap.Int("http_status", rec.HTTPStatus),
			zap.Int("attempt", attempt), zap.String("fault", fault), zap.String("error", rec.Error))
		if rec.HTTPStatus == http.StatusOK || s.ctx.Err() != nil {
			return
		}
	}
	s.logger.Warn("sandbox notification not accepted", zapSite(n.tx.SiteID), zapTx(n.tx.TransactionID),
		zap.String("status", n.status))
}

// send makes one request to the transaction's notify_url and records it.
func (s *Server) send(n *pendingNotice, rec Notification, body string, hdr http.Header) Notification {
	req, err := http.NewRequestWithContext(s.ctx, rec.Method, n.notifyURL, strings.NewReader(body))
	if err == nil {
		for k, v := range hdr {
			req.Header[k] = v
		}
		req.Header.Set("User-Agent", "CinetPay-Sandbox")
		rec.HTTPStatus, err = s.do(req)
	}
	if err != nil {
		rec.Error = err.Error()
	}
	rec.Time = time.Now()
	s.mu.Lock()
	n.tx.Notifications = append(n.tx.Notifications, rec)
	s.mu.Unlock()
	return rec
}

// do sends req and returns the answer's status.
func (s *Server) do(req *http.Request) (int, error) {
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return 0, errors.New("sandbox closed")
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func zapSite(site string) zap.Field { return zap.String("site_id", site) }
func zapTx(id string) zap.Field     { return zap.String("transaction_id", id) }
func zapAmount(amount int64, currency string) zap.Field {
	return zap.String("amount", strconv.FormatInt(amount, 10)+" "+currency)
}
