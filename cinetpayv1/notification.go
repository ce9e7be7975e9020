package cinetpayv1

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxNotificationBody is the largest notification body ParseNotification
// accepts, in bytes. Callers also limit what they read.
const MaxNotificationBody = 64 << 10

// maxNotificationField bounds notify_token, merchant_transaction_id and
// transaction_id, in bytes.
const maxNotificationField = 255

// Errors of ParseNotification. The returned error wraps one of them, with
// the name of the offending field (never its value); test with errors.Is.
var (
	// ErrEmptyBody: the body is empty or only white space.
	ErrEmptyBody = errors.New("cinetpay v1 notification: empty body")
	// ErrBodyTooLarge: the body is larger than MaxNotificationBody.
	ErrBodyTooLarge = errors.New("cinetpay v1 notification: body too large")
	// ErrMalformedBody: the body is not a JSON object or a form, is not
	// UTF-8, or a field has the wrong type, a control character or more
	// than 255 bytes.
	ErrMalformedBody = errors.New("cinetpay v1 notification: malformed body")
	// ErrRepeatedField: a field appears more than once.
	ErrRepeatedField = errors.New("cinetpay v1 notification: repeated field")
	// ErrMissingField: notify_token, merchant_transaction_id or
	// transaction_id is missing or empty.
	ErrMissingField = errors.New("cinetpay v1 notification: missing field")
)

// Notification is what CinetPay POSTs to notify_url when a payment reaches
// a final status. It carries no status, no amount and no signature: it only
// identifies the payment, whose status must then be asked with
// Client.PaymentStatus, after NotifyToken has been checked with
// ValidNotifyToken.
type Notification struct {
	// NotifyToken is the payment's secret, as returned by InitPayment.
	// Never log it.
	NotifyToken string
	// MerchantTransactionID is our id of the payment.
	MerchantTransactionID string
	// TransactionID is CinetPay's id of the payment.
	TransactionID string
	// User is the payer as reported, nil when absent: untrusted. Its values
	// are cleaned for logs, and one longer than 255 bytes is dropped.
	User *User
}

// String describes the Notification without its notify token.
func (n Notification) String() string {
	return "cinetpayv1.Notification{MerchantTransactionID: " + strconv.Quote(n.MerchantTransactionID) +
		", TransactionID: " + strconv.Quote(n.TransactionID) + ", NotifyToken: [redacted]}"
}

// GoString describes the Notification without its notify token, for %#v.
func (n Notification) GoString() string { return n.String() }

// ParseNotification parses a notification body (never the query string).
//
// CinetPay's SDKs read notifications as JSON: the body is read as JSON when
// contentType is application/json (or +json), or is missing or unknown and
// the body starts with '{'. It must be one object; notify_token,
// merchant_transaction_id and transaction_id must be strings, user an object
// of strings (or null); other keys are ignored whatever their value; no key
// may appear twice at the top level or in user.
//
// Defensively, since CinetPay's older API posted forms, the body is read as
// application/x-www-form-urlencoded when contentType says so, or is missing
// or unknown and the body does not start with '{': the same three fields,
// and user[name], user[email], user[phone_number]; no field may appear twice.
//
// All three ids are required and non-empty, as CinetPay's PHP SDK requires
// them: the status is looked up by merchant_transaction_id, and
// transaction_id is compared with the one InitPayment returned. Each is at
// most 255 bytes without control characters, kept exactly as sent.
func ParseNotification(contentType string, body []byte) (Notification, error) {
	f, err := readNotification(contentType, body)
	if err != nil {
		return Notification{}, err
	}
	return f.notification()
}

// MerchantTransactionIDOf reads, by ParseNotification's rules, only the merchant_transaction_id
// of a notification that may lack its other fields: one without a notify_token still names the
// payment it claims to be about, so that it can be refused as not authentic rather than as
// malformed. "" when the body names none (or is no notification at all).
func MerchantTransactionIDOf(contentType string, body []byte) string {
	f, err := readNotification(contentType, body)
	if err != nil {
		return ""
	}
	v := f.ids["merchant_transaction_id"]
	if len(v) > maxNotificationField || hasControl(v) {
		return ""
	}
	return v
}

// readNotification reads the fields of a notification body, before any field is required.
func readNotification(contentType string, body []byte) (notificationFields, error) {
	if len(body) > MaxNotificationBody {
		return notificationFields{}, fmt.Errorf("%w: larger than %d bytes", ErrBodyTooLarge, MaxNotificationBody)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return notificationFields{}, ErrEmptyBody
	}
	if !utf8.Valid(body) {
		// encoding/json would replace invalid UTF-8 instead of failing.
		return notificationFields{}, fmt.Errorf("%w: invalid UTF-8", ErrMalformedBody)
	}
	if isJSONNotification(contentType, body) {
		return parseJSONNotification(body)
	}
	return parseFormNotification(body)
}

// notificationFields are the fields read from a body, before checks.
type notificationFields struct {
	ids     map[string]string
	user    *User
	hasUser bool
}

var notificationIDs = []string{"notify_token", "merchant_transaction_id", "transaction_id"}

func isNotificationID(name string) bool {
	for _, n := range notificationIDs {
		if n == name {
			return true
		}
	}
	return false
}

func (f *notificationFields) notification() (Notification, error) {
	for _, name := range notificationIDs {
		v := f.ids[name]
		if v == "" {
			return Notification{}, fmt.Errorf("%w: %s", ErrMissingField, name)
		}
		if len(v) > maxNotificationField || hasControl(v) {
			return Notification{}, fmt.Errorf("%w: field %s is too long or has control characters", ErrMalformedBody, name)
		}
	}
	n := Notification{
		NotifyToken:           f.ids["notify_token"],
		MerchantTransactionID: f.ids["merchant_transaction_id"],
		TransactionID:         f.ids["transaction_id"],
	}
	if f.hasUser && f.user != nil {
		n.User = &User{
			Name:        cleanUserField(f.user.Name),
			Email:       cleanUserField(f.user.Email),
			PhoneNumber: cleanUserField(f.user.PhoneNumber),
		}
	}
	return n, nil
}

// cleanUserField cleans an untrusted user value for logs; a value longer
// than 255 bytes is dropped.
func cleanUserField(s string) string {
	if len(s) > 255 {
		return ""
	}
	return cleanText(s, 255)
}

func isJSONNotification(contentType string, body []byte) bool {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		switch {
		case mt == "application/x-www-form-urlencoded":
			return false
		case mt == "application/json" || strings.HasSuffix(mt, "+json"):
			return true
		}
	}
	return body[0] == '{'
}

func parseJSONNotification(body []byte) (notificationFields, error) {
	f := notificationFields{ids: map[string]string{}}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	malformed := func(what string) error { return fmt.Errorf("%w: %s", ErrMalformedBody, what) }
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return f, malformed("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return f, malformed("bad JSON")
		}
		name, ok := tok.(string)
		if !ok {
			return f, malformed("bad JSON")
		}
		if seen[name] {
			return f, fmt.Errorf("%w: %s", ErrRepeatedField, quoteName(name))
		}
		seen[name] = true
		switch {
		case isNotificationID(name):
			tok, err := dec.Token()
			if err != nil {
				return f, malformed("bad JSON")
			}
			v, ok := tok.(string)
			if !ok {
				return f, fmt.Errorf("%w: field %s is not a string", ErrMalformedBody, name)
			}
			f.ids[name] = v
		case name == "user":
			u, err := parseJSONUser(dec)
			if err != nil {
				return f, err
			}
			f.user, f.hasUser = u, true
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return f, malformed("bad JSON")
			}
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return f, malformed("bad JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return f, malformed("data after the JSON object")
	}
	return f, nil
}

// parseJSONUser reads the value of "user": null, or an object whose name,
// email and phone_number are strings (or null), each once.
func parseJSONUser(dec *json.Decoder) (*User, error) {
	malformed := func(what string) error { return fmt.Errorf("%w: %s", ErrMalformedBody, what) }
	tok, err := dec.Token()
	if err != nil {
		return nil, malformed("bad JSON")
	}
	if tok == nil {
		return nil, nil
	}
	if tok != json.Delim('{') {
		return nil, malformed("field user is not an object")
	}
	u := &User{}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed("bad JSON")
		}
		name, ok := tok.(string)
		if !ok {
			return nil, malformed("bad JSON")
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: user.%s", ErrRepeatedField, quoteName(name))
		}
		seen[name] = true
		var dst *string
		switch name {
		case "name":
			dst = &u.Name
		case "email":
			dst = &u.Email
		case "phone_number":
			dst = &u.PhoneNumber
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, malformed("bad JSON")
			}
			continue
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, malformed("bad JSON")
		}
		switch v := tok.(type) {
		case nil:
		case string:
			*dst = v
		default:
			return nil, fmt.Errorf("%w: field user.%s is not a string", ErrMalformedBody, name)
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, malformed("bad JSON")
	}
	return u, nil
}

func parseFormNotification(body []byte) (notificationFields, error) {
	f := notificationFields{ids: map[string]string{}}
	seen := map[string]bool{}
	for pair := range strings.SplitSeq(string(body), "&") {
		if pair == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil || !utf8.ValidString(name) {
			return f, fmt.Errorf("%w: bad encoding in a field name", ErrMalformedBody)
		}
		if name == "" {
			return f, fmt.Errorf("%w: empty field name", ErrMalformedBody)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil || !utf8.ValidString(value) {
			return f, fmt.Errorf("%w: bad encoding in field %s", ErrMalformedBody, quoteName(name))
		}
		if seen[name] {
			return f, fmt.Errorf("%w: %s", ErrRepeatedField, quoteName(name))
		}
		seen[name] = true
		switch name {
		case "notify_token", "merchant_transaction_id", "transaction_id":
			f.ids[name] = value
		case "user[name]", "user[email]", "user[phone_number]":
			if f.user == nil {
				f.user, f.hasUser = &User{}, true
			}
			switch name {
			case "user[name]":
				f.user.Name = value
			case "user[email]":
				f.user.Email = value
			default:
				f.user.PhoneNumber = value
			}
		}
	}
	return f, nil
}

// quoteName quotes a field name for an error message, cut to 64 bytes.
func quoteName(name string) string {
	const max = 64
	if len(name) > max {
		name = strings.ToValidUTF8(name[:max], "") + "…"
	}
	return strconv.Quote(name)
}

// ValidNotifyToken reports, in constant time, whether received equals
// stored, the notify_token InitPayment returned for the payment. Both are
// hashed first, so that not even their lengths leak. It is false when either
// is empty.
func ValidNotifyToken(stored, received string) bool {
	if stored == "" || received == "" {
		return false
	}
	a := sha256.Sum256([]byte(stored))
	b := sha256.Sum256([]byte(received))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
