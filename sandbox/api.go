package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpay"
)

// Transaction states, as data.status of /v2/payment/check says them.
const (
	StatusWaiting  = cinetpay.StatusWaitingForCustomer
	StatusAccepted = cinetpay.StatusAccepted
	StatusRefused  = cinetpay.StatusRefused
)

// dateLayout is CinetPay's date format (cpm_trans_date, payment_date).
const dateLayout = "2006-01-02 15:04:05"

// maxBody caps API request bodies.
const maxBody = 1 << 20

// Request is one API call received (/v2/payment, /v2/payment/check, or
// one of the v1 API: /v1/oauth/login, /v1/payment, /v1/payment/{id}).
type Request struct {
	// Time is when the call arrived.
	Time time.Time `json:"time"`
	// Method is the HTTP method: POST, or GET for /v1/payment/{id}.
	Method string `json:"method,omitempty"`
	// Path is the API path: "/v2/payment", "/v2/payment/check",
	// "/v1/oauth/login", "/v1/payment", or "/v1/payment/" and the id as
	// the client escaped it.
	Path string `json:"path"`
	// TransactionID is the body's transaction_id or, for a check by token,
	// the transaction the token designates; on v1, the merchant_transaction_id
	// of the body or of the transaction that /v1/payment/{id} designates (the
	// id itself when it designates none); "" if none.
	TransactionID string `json:"transaction_id,omitempty"`
	// Status is the HTTP status answered (0 while the call is in progress).
	Status int `json:"status"`
	// Answered is when the answer was decided, just before it is written (zero while the
	// call is in progress): calls of one client one after the other never overlap
	// [Time, Answered].
	Answered time.Time `json:"answered,omitzero"`
	// Code is the body's code answered, "" for an answer without one
	// (HTML, garbage, empty). v1 codes are numbers, written here as text
	// ("200", "2001", "1004").
	Code string `json:"code,omitempty"`
	// Fault names the fault knob that shaped the answer, if any
	// ("payment", "check", "rate_limit", "v1_login", "v1_payment",
	// "v1_status", "v1_expired_token", "v1_not_allowed",
	// "v1_transaction_exist", "v1_unknown_id").
	Fault string `json:"fault,omitempty"`
	// UserAgent and ContentType are the request's headers.
	UserAgent   string `json:"user_agent,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	// Authorization is the Authorization header of a v1 call, masked: its
	// scheme and the last 4 characters of the token ("Bearer …3f9a").
	Authorization string `json:"authorization,omitempty"`
	// Body is the body received: the exact JSON when it is JSON, else a JSON
	// string holding the text; null when empty. In v1 bodies, api_password
	// values and the configured passwords are replaced with "****".
	Body json.RawMessage `json:"body"`
}

// apiAnswer is what an API call answers.
type apiAnswer struct {
	status      int
	code        string
	header      http.Header
	contentType string
	body        []byte
	fault       string
}

func (a *apiAnswer) write(w http.ResponseWriter) {
	for k, v := range a.header {
		w.Header()[k] = v
	}
	if a.contentType != "" {
		w.Header().Set("Content-Type", a.contentType)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// messageOverrides are the sandbox's messages where the documentation gives only a meaning
// (cinetpay.CodeMessage has the documented table) or where the sandbox has a code of its own.
var messageOverrides = map[string]string{
	"403":  "FORBIDDEN",
	"605":  "TRANSACTION_NOT_FOUND",
	"624":  "An error occurred while processing the request",
	"1010": "ACCESS_DENIED",
}

// codeStatus is the HTTP status the sandbox answers with an error code.
func codeStatus(code string) int {
	switch code {
	case "624", cinetpay.CodeSuccess, cinetpay.CodeCreated, "627", "662":
		return http.StatusOK
	case "403", "1010":
		return http.StatusForbidden
	case cinetpay.CodeTooManyRequests:
		return http.StatusTooManyRequests
	}
	return http.StatusBadRequest
}

func codeMessage(code string) string {
	if m, ok := messageOverrides[code]; ok {
		return m
	}
	if m := cinetpay.CodeMessage(code); m != "" {
		return m
	}
	return "ERROR"
}

// errorBody is CinetPay's error shape.
type errorBody struct {
	Code          string `json:"code"`
	Message       string `json:"message"`
	Description   string `json:"description"`
	APIResponseID string `json:"api_response_id"`
}

// errAnswer is a CinetPay error answer.
func (s *Server) errAnswer(code, description string) apiAnswer {
	b, _ := json.Marshal(errorBody{
		Code:          code,
		Message:       codeMessage(code),
		Description:   description,
		APIResponseID: s.responseID(),
	})
	a := apiAnswer{status: codeStatus(code), code: code, contentType: "application/json", body: b}
	if code == cinetpay.CodeTooManyRequests {
		a.header = http.Header{"Retry-After": {"1"}}
	}
	return a
}

// okAnswer is a JSON answer with a code.
func okAnswer(code string, v any) apiAnswer {
	b, _ := json.Marshal(v)
	return apiAnswer{status: codeStatus(code), code: code, contentType: "application/json", body: b}
}

// serveAPI records an API call, applies the rate limit and the endpoint's
// fault, and answers with handle's answer otherwise.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, path string,
	handle func(*http.Request, []byte, error, *Request) apiAnswer) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{
			Code: "405", Message: "METHOD_NOT_ALLOWED",
			Description: "use POST", APIResponseID: s.responseID(),
		})
		return
	}
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	rec := s.addRequest(r, path, body)
	a := s.apiCall(r, path, body, readErr, rec, handle)
	s.mu.Lock()
	rec.Status, rec.Code, rec.Fault = a.status, a.code, a.fault
	rec.Answered = time.Now()
	s.mu.Unlock()
	a.write(w)
}

// apiCall decides the answer of an API call.
func (s *Server) apiCall(r *http.Request, path string, body []byte, readErr error, rec *Request,
	handle func(*http.Request, []byte, error, *Request) apiAnswer) apiAnswer {
	if s.rateLimited() {
		a := s.errAnswer(cinetpay.CodeTooManyRequests, "Too many requests, retry later")
		a.fault = "rate_limit"
		return a
	}
	f, name := s.takeAPIFault(path)
	return s.withFault(r, f, name, s.errAnswer, func() apiAnswer { return handle(r, body, readErr, rec) })
}

// withFault returns handle's answer, shaped by the API fault f (nil: none)
// named name; codeAnswer makes the error answer of the fault's Code.
func (s *Server) withFault(r *http.Request, f *APIFault, name string,
	codeAnswer func(code, description string) apiAnswer, handle func() apiAnswer) apiAnswer {
	if f == nil {
		return handle()
	}
	if f.Hang > 0 {
		t := time.NewTimer(time.Duration(f.Hang))
		select {
		case <-t.C:
		case <-r.Context().Done(): // the client gave up; the call still takes effect
		case <-s.ctx.Done():
		}
		t.Stop()
	}
	var a apiAnswer
	switch {
	case f.replaces():
		if f.Processed {
			handle()
		}
		a = f.answer(codeAnswer)
	case f.Body == BodyTruncated:
		a = handle()
		a.body = a.body[:len(a.body)/2]
		if f.Status != 0 {
			a.status = f.Status
		}
		a.code = ""
	default: // hang only
		a = handle()
	}
	if f.RetryAfter > 0 {
		if a.header == nil {
			a.header = http.Header{}
		}
		a.header.Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	a.fault = name
	return a
}

// addRequest records an API call as it arrives.
func (s *Server) addRequest(r *http.Request, path string, body []byte) *Request {
	rec := &Request{
		Time:        time.Now(),
		Method:      r.Method,
		Path:        path,
		UserAgent:   r.Header.Get("User-Agent"),
		ContentType: r.Header.Get("Content-Type"),
		Body:        recordedBody(body),
	}
	var probe struct {
		TransactionID any `json:"transaction_id"`
	}
	if json.Unmarshal(body, &probe) == nil {
		if id, ok := probe.TransactionID.(string); ok {
			rec.TransactionID = id
		}
	}
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.mu.Unlock()
	return rec
}

// recordedBody is body as Request.Body holds it.
func recordedBody(body []byte) json.RawMessage {
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		return nil
	case json.Valid(body):
		return json.RawMessage(bytes.Clone(body))
	default:
		b, _ := json.Marshal(string(body))
		return b
	}
}

func isJSONContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// fieldSet is a decoded JSON object.
type fieldSet map[string]json.RawMessage

// present reports whether name is there and not null.
func (f fieldSet) present(name string) bool {
	raw, ok := f[name]
	return ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// str returns an optional string field; ok is false when it is present with
// another JSON type.
func (f fieldSet) str(name string) (v string, ok bool) {
	if !f.present(name) {
		return "", true
	}
	err := json.Unmarshal(f[name], &v)
	return v, err == nil
}

// requiredStr returns a required string field, or a 608 description.
func (f fieldSet) requiredStr(name string) (string, string) {
	if !f.present(name) {
		return "", name + " is required"
	}
	v, ok := f.str(name)
	if !ok {
		return "", name + " must be a string"
	}
	if strings.TrimSpace(v) == "" {
		return "", name + " is required"
	}
	return v, ""
}

var integerRE = regexp.MustCompile(`^-?[0-9]+$`)

// siteID returns site_id, a JSON string or integer, or a 608 description.
func (f fieldSet) siteID() (string, string) {
	if !f.present("site_id") {
		return "", "site_id is required"
	}
	raw := string(bytes.TrimSpace(f["site_id"]))
	if integerRE.MatchString(raw) {
		return raw, ""
	}
	return f.requiredStr("site_id")
}

// decodeFields decodes a JSON object body.
func decodeFields(body []byte) (fieldSet, bool) {
	var f fieldSet
	if err := json.Unmarshal(body, &f); err != nil || f == nil {
		return nil, false
	}
	return f, true
}

// authenticate checks apikey and site_id: "" when they match a merchant,
// else the error code.
func (s *Server) authenticate(apikey, siteID string) (Merchant, string) {
	m, siteKnown := s.merchants[siteID]
	if siteKnown && m.APIKey == apikey {
		return m, ""
	}
	keyKnown := false
	for _, o := range s.merchants {
		if o.APIKey == apikey {
			keyKnown = true
			break
		}
	}
	if !keyKnown || siteKnown {
		return Merchant{}, "609"
	}
	return Merchant{}, "613"
}

var (
	alnumRE = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	phoneRE = regexp.MustCompile(`^\+?[0-9]{8,15}$`)
)

// paymentRequired are /v2/payment's required fields, in documentation
// order (site_id and amount are checked separately).
var paymentRequired = []string{"apikey", "site_id", "transaction_id", "amount", "currency",
	"description", "notify_url", "return_url", "channels"}

var customerFields = []string{"customer_id", "customer_name", "customer_surname", "customer_email",
	"customer_phone_number", "customer_address", "customer_city", "customer_country",
	"customer_state", "customer_zip_code"}

// readFields makes the checks both API calls start with, in CinetPay's order: a User-Agent
// (1010), a JSON content type (403), a readable JSON object (608).
func (s *Server) readFields(r *http.Request, body []byte, readErr error) (fieldSet, *apiAnswer) {
	fail := func(code, description string) (fieldSet, *apiAnswer) {
		a := s.errAnswer(code, description)
		return nil, &a
	}
	if r.Header.Get("User-Agent") == "" {
		return fail("1010", "The owner of this website has banned your access based on your browser's signature")
	}
	if !isJSONContentType(r.Header.Get("Content-Type")) {
		return fail("403", "Content-Type must be application/json")
	}
	if readErr != nil {
		return fail("608", "the body could not be read")
	}
	f, ok := decodeFields(body)
	if !ok {
		return fail("608", "the body must be a JSON object")
	}
	return f, nil
}

// createPayment handles POST /v2/payment.
func (s *Server) createPayment(r *http.Request, body []byte, readErr error, rec *Request) apiAnswer {
	f, fail := s.readFields(r, body, readErr)
	if fail != nil {
		return *fail
	}

	// Presence and types of the required fields.
	vals := map[string]string{}
	for _, name := range paymentRequired {
		var v, bad string
		switch name {
		case "site_id":
			v, bad = f.siteID()
		case "amount":
			if !f.present("amount") {
				bad = "amount is required"
			}
		default:
			v, bad = f.requiredStr(name)
		}
		if bad != "" {
			return s.errAnswer("608", bad)
		}
		vals[name] = v
	}

	merchant, code := s.authenticate(vals["apikey"], vals["site_id"])
	switch code {
	case "609":
		return s.errAnswer("609", "the apikey is not valid for this site")
	case "613":
		return s.errAnswer("613", "the site_id is not valid")
	}

	// Values.
	txID := vals["transaction_id"]
	if !alnumRE.MatchString(txID) {
		return s.errAnswer("608", "transaction_id must contain only letters and digits")
	}
	rawAmount := string(bytes.TrimSpace(f["amount"]))
	if !integerRE.MatchString(rawAmount) {
		return s.errAnswer("608", "amount must be an integer")
	}
	amount, err := strconv.ParseInt(rawAmount, 10, 64)
	if err != nil || amount <= 0 {
		return s.errAnswer("608", "amount must be a positive integer")
	}
	currency := vals["currency"]
	if !cinetpay.ValidCurrency(currency) {
		return s.errAnswer("608", "currency is not valid")
	}
	if cinetpay.RequiresMultipleOf5(currency) && amount%5 != 0 {
		return s.errAnswer("608", "amount must be a multiple of 5")
	}
	if !cinetpay.ValidChannels(vals["channels"]) {
		return s.errAnswer("608", "channels is not valid")
	}
	description := vals["description"]
	if strings.ContainsAny(description, "#/$_&") {
		return s.errAnswer("608", "description must not contain # / $ _ &")
	}
	for _, name := range []string{"notify_url", "return_url"} {
		u, err := url.Parse(vals[name])
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return s.errAnswer("608", name+" must be an absolute http or https URL")
		}
	}
	lang, ok := f.str("lang")
	if !ok || (lang != "" && !cinetpay.ValidLang(lang)) {
		return s.errAnswer("608", "lang must be fr or en")
	}
	if f.present("invoice_data") {
		var inv map[string]json.RawMessage
		if json.Unmarshal(f["invoice_data"], &inv) != nil || inv == nil {
			return s.errAnswer("608", "invoice_data must be an object")
		}
		if len(inv) > 3 {
			return s.errAnswer("608", "invoice_data must have at most 3 keys")
		}
	}
	lock := false
	if f.present("lock_phone_number") {
		if json.Unmarshal(f["lock_phone_number"], &lock) != nil {
			return s.errAnswer("608", "lock_phone_number must be a boolean")
		}
	}
	customer := map[string]string{}
	for _, name := range customerFields {
		v, ok := f.str(name)
		if !ok {
			return s.errAnswer("608", name+" must be a string")
		}
		customer[name] = v
	}

	metadata := ""
	if f.present("metadata") {
		raw := bytes.TrimSpace(f["metadata"])
		switch raw[0] {
		case '{', '[':
			return s.errAnswer("403", "request blocked")
		case '"':
			_ = json.Unmarshal(raw, &metadata)
			if t := strings.TrimSpace(metadata); (strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")) && json.Valid([]byte(t)) {
				return s.errAnswer("403", "request blocked")
			}
		default:
			return s.errAnswer("608", "metadata must be a string")
		}
	}

	if lock && !phoneRE.MatchString(customer["customer_phone_number"]) {
		return s.errAnswer("624", "customer_phone_number is not valid")
	}

	base := s.baseURL(r)
	tx := &transaction{
		Transaction: Transaction{
			SiteID:        merchant.SiteID,
			TransactionID: txID,
			Token:         randomHex(32),
			Status:        StatusWaiting,
			Amount:        amount,
			Currency:      currency,
			PaidAmount:    amount,
			PaidCurrency:  currency,
			Description:   description,
			Channels:      vals["channels"],
			Lang:          lang,
			Metadata:      metadata,
			NotifyURL:     vals["notify_url"],
			ReturnURL:     vals["return_url"],
			Created:       time.Now().UTC().Truncate(time.Second),
			Notifications: []Notification{},
		},
		secret: merchant.SecretKey,
		phone:  "07" + randomDigits(8),
	}
	tx.PaymentURL = base + "/pay/" + tx.Token

	s.mu.Lock()
	key := txKey{merchant.SiteID, txID}
	if _, dup := s.txs[key]; dup {
		s.mu.Unlock()
		return s.errAnswer("608", "transaction_id already used")
	}
	s.txs[key] = tx
	s.tokens[tx.Token] = tx
	s.order = append(s.order, tx)
	s.mu.Unlock()
	s.logger.Info("sandbox payment created", zapTxOf(tx), zapAmount(amount, currency))

	type startData struct {
		PaymentToken string `json:"payment_token"`
		PaymentURL   string `json:"payment_url"`
	}
	return okAnswer(cinetpay.CodeCreated, struct {
		Code          string    `json:"code"`
		Message       string    `json:"message"`
		Description   string    `json:"description"`
		Data          startData `json:"data"`
		APIResponseID string    `json:"api_response_id"`
	}{cinetpay.CodeCreated, codeMessage(cinetpay.CodeCreated), "Transaction created with success",
		startData{tx.Token, tx.PaymentURL}, s.responseID()})
}

// checkData is data of a /v2/payment/check answer.
type checkData struct {
	Amount               string  `json:"amount"`
	Currency             string  `json:"currency"`
	Status               string  `json:"status"`
	PaymentMethod        string  `json:"payment_method"`
	Description          string  `json:"description"`
	Metadata             *string `json:"metadata"`
	OperatorID           *string `json:"operator_id"`
	PaymentDate          string  `json:"payment_date"`
	FundAvailabilityDate string  `json:"fund_availability_date"`
}

// checkPayment handles POST /v2/payment/check.
func (s *Server) checkPayment(r *http.Request, body []byte, readErr error, rec *Request) apiAnswer {
	f, fail := s.readFields(r, body, readErr)
	if fail != nil {
		return *fail
	}
	apikey, bad := f.requiredStr("apikey")
	if bad != "" {
		return s.errAnswer("608", bad)
	}
	siteID, bad := f.siteID()
	if bad != "" {
		return s.errAnswer("608", bad)
	}
	txID, okID := f.str("transaction_id")
	token, okTok := f.str("token")
	if token == "" && okTok {
		token, okTok = f.str("payment_token")
	}
	if !okID || !okTok {
		return s.errAnswer("608", "transaction_id and token must be strings")
	}
	if txID == "" && token == "" {
		return s.errAnswer("608", "transaction_id or token is required")
	}
	if _, code := s.authenticate(apikey, siteID); code != "" {
		return s.errAnswer(code, "the apikey or site_id is not valid")
	}

	s.mu.Lock()
	var tx *transaction
	if txID != "" {
		tx = s.txs[txKey{siteID, txID}]
	} else if t := s.tokens[token]; t != nil && t.SiteID == siteID {
		tx = t
	}
	if tx == nil {
		s.mu.Unlock()
		return s.errAnswer("605", "transaction not found")
	}
	rec.TransactionID = tx.TransactionID
	var late []*pendingNotice
	if tx.Status == StatusRefused && tx.late != nil && tx.late.OnCheck {
		late = s.lateAcceptLocked(tx)
	}
	d := tx.checkData()
	if f := s.faults.AmountFormat; f != "" {
		d.Amount = fmt.Sprintf(f, tx.PaidAmount)
	}
	s.mu.Unlock()
	if len(late) > 0 {
		s.goAsync(func() {
			for _, n := range late {
				s.deliver(n)
			}
		})
	}

	var code string
	switch d.Status {
	case StatusAccepted:
		code = cinetpay.CodeSuccess
	case StatusRefused:
		code = "627"
	default:
		code = "662"
	}
	return okAnswer(code, struct {
		Code          string    `json:"code"`
		Message       string    `json:"message"`
		APIResponseID string    `json:"api_response_id"`
		Data          checkData `json:"data"`
	}{code, codeMessage(code), s.responseID(), d})
}

// checkData returns the data of a check answer; s.mu held.
func (tx *transaction) checkData() checkData {
	d := checkData{
		Amount:               strconv.FormatInt(tx.PaidAmount, 10),
		Currency:             tx.PaidCurrency,
		Status:               tx.Status,
		PaymentMethod:        tx.PaymentMethod,
		Description:          tx.Description,
		PaymentDate:          " ",
		FundAvailabilityDate: " ",
	}
	if tx.Metadata != "" {
		m := tx.Metadata
		d.Metadata = &m
	}
	if tx.Status == StatusAccepted {
		op := tx.OperatorID
		d.OperatorID = &op
		d.PaymentDate = tx.PaymentDate
		if t, err := time.Parse(dateLayout, tx.PaymentDate); err == nil {
			y, m, day := t.AddDate(0, 0, 2).Date()
			d.FundAvailabilityDate = time.Date(y, m, day, 0, 0, 0, 0, time.UTC).Format(dateLayout)
		}
	}
	return d
}
