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
	"go.uber.org/zap/zapcore"

	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpay"
)

// Transaction is a payment as the sandbox holds it. A transaction of
// CinetPay's current API (v1) has V1 set; its TransactionID is the
// merchant_transaction_id, its Token the payment_token, its Description the
// designation and its Channels the channel (empty if not sent); it has no
// SiteID nor ReturnURL.
type Transaction struct {
	SiteID        string `json:"site_id"`
	TransactionID string `json:"transaction_id"`
	Token         string `json:"token"`
	PaymentURL    string `json:"payment_url"`
	// Status is WAITING_FOR_CUSTOMER, ACCEPTED or REFUSED; on v1,
	// INITIATED, PENDING, SUCCESS, FAILED or EXPIRED.
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
	// V1 holds what only v1 transactions have; nil on Checkout v2 ones.
	V1 *V1Details `json:"v1,omitempty"`
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
	// Fields is the form sent (v2).
	Fields map[string]string `json:"fields,omitempty"`
	// Body is the JSON sent (v1).
	Body string `json:"body,omitempty"`
	// XToken is the x-token header sent.
	XToken string `json:"x_token,omitempty"`
	// HTTPStatus is notify_url's answer, 0 if none.
	HTTPStatus int `json:"http_status"`
	// Error is the transport error, if any.
	Error string `json:"error,omitempty"`
	// Fault lists the notify faults applied ("lost", "delay", "duplicate",
	// "concurrent", "bad_token", "site_id", "omit_fields"). On v1,
	// "bad_token" means a wrong notify_token.
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
	v1key       string // the v1 account's api_key; "" on v2
}

// view returns a copy of the public part; s.mu held.
func (tx *transaction) view() Transaction {
	v := tx.Transaction
	v.Notifications = slices.Clone(tx.Notifications)
	v.V1 = clonePtr(tx.V1)
	return v
}

// refused reports whether tx is refused: REFUSED, or FAILED on v1; s.mu
// held.
func (tx *transaction) refused() bool {
	if tx.V1 != nil {
		return tx.Status == V1StatusFailed
	}
	return tx.Status == StatusRefused
}

// zapTxOf names tx in logs: by site_id and transaction_id on v2, by
// country and merchant_transaction_id on v1.
func zapTxOf(tx *transaction) zap.Field {
	return zap.Inline(zapcore.ObjectMarshalerFunc(func(e zapcore.ObjectEncoder) error {
		if tx.V1 != nil {
			e.AddString("country", tx.V1.Country)
			e.AddString("merchant_transaction_id", tx.TransactionID)
			return nil
		}
		e.AddString("site_id", tx.SiteID)
		e.AddString("transaction_id", tx.TransactionID)
		return nil
	}))
}

// pendingNotice is a notification to send.
type pendingNotice struct {
	tx        *transaction
	status    string
	fields    map[string]string // v2
	notifyURL string
	secret    string          // v2
	v1        *v1Notification // v1
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
	// late_success fault makes one on a timer). On v1, it turns a FAILED or
	// EXPIRED transaction SUCCESS.
	ActionPayLate = "pay_late"
	// ActionExpire turns a v1 transaction that is INITIATED or PENDING
	// EXPIRED: the customer never confirmed. Checkout v2 has no such state.
	ActionExpire = "expire"
)

// decideLocked applies an action to tx and returns the notifications it
// causes; s.mu held.
func (s *Server) decideLocked(tx *transaction, action string) ([]*pendingNotice, error) {
	if tx.V1 != nil {
		return s.decideV1Locked(tx, action)
	}
	if action == ActionNotify {
		return []*pendingNotice{tx.notice(tx.Status)}, nil
	}
	if action == ActionPayLate {
		if tx.Status != StatusRefused {
			return nil, ErrNotRefused
		}
		return s.lateAcceptLocked(tx), nil
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
		s.armLateSuccessLocked(tx)
		out = append(out, tx.notice(StatusRefused))
	}
	return out, nil
}

// armLateSuccessLocked applies the late_success fault to tx, just refused;
// s.mu held.
func (s *Server) armLateSuccessLocked(tx *transaction) {
	lf := take(&s.faults.LateSuccess)
	if lf == nil {
		return
	}
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

// lateAcceptLocked turns a refused tx ACCEPTED (SUCCESS on v1) and
// returns the notifications it causes; s.mu held.
func (s *Server) lateAcceptLocked(tx *transaction) []*pendingNotice {
	s.logger.Info("sandbox late success", zapTxOf(tx))
	if tx.V1 != nil {
		return s.v1SetStatusLocked(tx, V1StatusSuccess)
	}
	s.acceptLocked(tx)
	return []*pendingNotice{tx.notice(StatusAccepted)}
}

// scheduleLateSuccess accepts tx after lf.After unless something else did;
// s.mu held.
func (s *Server) scheduleLateSuccess(tx *transaction, lf *LateSuccessFault) {
	s.goAsync(func() {
		if !s.sleep(time.Duration(lf.After)) {
			return
		}
		s.mu.Lock()
		if !tx.refused() || tx.late != lf {
			s.mu.Unlock()
			return
		}
		notices := s.lateAcceptLocked(tx)
		s.mu.Unlock()
		for _, n := range notices {
			s.deliver(n)
		}
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
	if len(notices) > 0 || tx.V1 != nil {
		s.logger.Info("sandbox decision", zapTxOf(tx), zap.String("action", action))
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
		rec := Notification{Time: time.Now(), Method: http.MethodPost, Status: n.status, Fault: "lost"}
		if n.v1 != nil {
			rec.Body = string(n.v1.encode())
		} else {
			rec.Fields = n.fields
		}
		n.tx.Notifications = append(n.tx.Notifications, rec)
		s.mu.Unlock()
		s.logger.Info("sandbox notification lost (fault)", zapTxOf(n.tx))
		return
	}
	pingDue := n.v1 == nil || s.faults.V1NotifyPing
	s.mu.Unlock()

	if f.Delay > 0 {
		faults = append(faults, "delay")
		if !s.sleep(time.Duration(f.Delay)) {
			return
		}
	}

	s.mu.Lock()
	ping := pingDue && !n.tx.pinged
	n.tx.pinged = n.tx.pinged || ping
	s.mu.Unlock()
	if ping {
		s.ping(n)
	}

	var p notifyPayload
	if n.v1 != nil {
		p = n.v1Payload(f, &faults)
	} else {
		p = n.v2Payload(f, &faults)
	}

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
				s.post(n, p, c, fault)
			}(copyN)
		}
		wg.Wait()
	}
}

// notifyPayload is what one notification sends and records.
type notifyPayload struct {
	header http.Header
	body   string
	fields map[string]string // recorded form (v2)
	xtoken string            // recorded x-token (v2)
}

// v2Payload is the form-encoded notification of Checkout v2, with its
// x-token, shaped by the notify fault f; faults collects the faults applied.
func (n *pendingNotice) v2Payload(f *NotifyFault, faults *[]string) notifyPayload {
	fields := make(map[string]string, len(n.fields))
	for k, v := range n.fields {
		fields[k] = v
	}
	if f.SiteID != "" {
		fields["cpm_site_id"] = f.SiteID
		*faults = append(*faults, "site_id")
	}
	if len(f.OmitFields) > 0 {
		for _, name := range f.OmitFields {
			delete(fields, name)
		}
		*faults = append(*faults, "omit_fields")
	}
	secret := n.secret
	if f.BadToken {
		secret = "not-the-secret-key-" + secret
		*faults = append(*faults, "bad_token")
	}
	token := cinetpay.XToken(secret, fields)
	form := url.Values{}
	for k, v := range fields {
		form.Set(k, v)
	}
	return notifyPayload{
		header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, cinetpay.XTokenHeader: {token}},
		body:   form.Encode(),
		fields: fields,
		xtoken: token,
	}
}

// ping sends the GET that precedes the first notification.
func (s *Server) ping(n *pendingNotice) {
	s.send(n, Notification{Method: http.MethodGet}, "", nil)
}

// post sends one copy of a notification, retrying while the answer is not
// 200.
func (s *Server) post(n *pendingNotice, p notifyPayload, copyN int, fault string) {
	for attempt := 1; attempt <= notifyAttempts; attempt++ {
		if attempt > 1 && !s.sleep(notifyBackoff<<(attempt-2)) {
			return
		}
		rec := Notification{
			Method: http.MethodPost, Status: n.status, Copy: copyN, Attempt: attempt,
			Fields: p.fields, XToken: p.xtoken, Fault: fault,
		}
		if n.v1 != nil {
			rec.Body = p.body
		}
		rec = s.send(n, rec, p.body, p.header)
		s.logger.Debug("sandbox notification sent", zapTxOf(n.tx),
			zap.String("status", n.status), zap.Int("http_status", rec.HTTPStatus),
			zap.Int("attempt", attempt), zap.String("fault", fault), zap.String("error", rec.Error))
		if rec.HTTPStatus == http.StatusOK || s.ctx.Err() != nil {
			return
		}
	}
	s.logger.Warn("sandbox notification not accepted", zapTxOf(n.tx), zap.String("status", n.status))
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

func zapAmount(amount int64, currency string) zap.Field {
	return zap.String("amount", strconv.FormatInt(amount, 10)+" "+currency)
}
