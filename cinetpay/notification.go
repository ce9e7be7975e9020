package cinetpay

import (
	"bytes"
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
// accepts, in bytes.
const MaxNotificationBody = 64 << 10

// Errors of ParseNotification. The returned error may wrap one of them with
// the name of the offending field (never its value); test with errors.Is.
var (
	// ErrEmptyBody: the body is empty or only white space.
	ErrEmptyBody = errors.New("cinetpay notification: empty body")
	// ErrRepeatedField: a field appears more than once.
	ErrRepeatedField = errors.New("cinetpay notification: repeated field")
	// ErrMalformedBody: the body cannot be read as a form or a JSON object of
	// strings, is not UTF-8, or is larger than MaxNotificationBody.
	ErrMalformedBody = errors.New("cinetpay notification: malformed body")
)

// ParseNotification parses the body of a notification (never the query
// string) into its fields, names kept as sent (case-sensitive).
//
// The body is read as application/x-www-form-urlencoded, CinetPay's format,
// when contentType says so, or when contentType is missing or unknown and the
// body does not start with '{'. Each field must appear once (else
// ErrRepeatedField); bad percent-encoding or an empty field name is
// ErrMalformedBody. Empty pairs ("a=1&&b=2") are skipped and surrounding
// white space is ignored.
//
// It is read as JSON when contentType is application/json (or +json), or when
// contentType is missing or unknown and the body starts with '{': one object
// whose values are all strings (a number, null, boolean, array or object is
// ErrMalformedBody), each key once (else ErrRepeatedField).
//
// An empty or white-space body is ErrEmptyBody. Invalid UTF-8 in any name or
// value, or a body over MaxNotificationBody, is ErrMalformedBody; callers
// also limit what they read.
func ParseNotification(contentType string, body []byte) (map[string]string, error) {
	if len(body) > MaxNotificationBody {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformedBody, MaxNotificationBody)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, ErrEmptyBody
	}
	switch notificationFormat(contentType, body) {
	case formatJSON:
		return parseJSONNotification(body)
	default:
		return parseFormNotification(body)
	}
}

const (
	formatForm = iota
	formatJSON
)

func notificationFormat(contentType string, body []byte) int {
	// CinetPay's own form content type, without parameters: no need for the MIME parser
	if strings.EqualFold(strings.TrimSpace(contentType), "application/x-www-form-urlencoded") {
		return formatForm
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err == nil {
		switch {
		case mt == "application/x-www-form-urlencoded":
			return formatForm
		case mt == "application/json" || strings.HasSuffix(mt, "+json"):
			return formatJSON
		}
	}
	if body[0] == '{' {
		return formatJSON
	}
	return formatForm
}

func parseFormNotification(body []byte) (map[string]string, error) {
	// sized once: growing the map was most of the parse's cost
	fields := make(map[string]string, bytes.Count(body, []byte("&"))+1)
	for pair := range strings.SplitSeq(string(body), "&") {
		if pair == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return nil, fmt.Errorf("%w: bad percent-encoding in a field name", ErrMalformedBody)
		}
		if !utf8.ValidString(name) {
			return nil, fmt.Errorf("%w: invalid UTF-8 in a field name", ErrMalformedBody)
		}
		if name == "" {
			return nil, fmt.Errorf("%w: empty field name", ErrMalformedBody)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, fmt.Errorf("%w: bad percent-encoding in field %s", ErrMalformedBody, quoteName(name))
		}
		if !utf8.ValidString(value) {
			return nil, fmt.Errorf("%w: invalid UTF-8 in field %s", ErrMalformedBody, quoteName(name))
		}
		if _, dup := fields[name]; dup {
			return nil, fmt.Errorf("%w: %s", ErrRepeatedField, quoteName(name))
		}
		fields[name] = value
	}
	return fields, nil
}

func parseJSONNotification(body []byte) (map[string]string, error) {
	// encoding/json replaces invalid UTF-8 with U+FFFD instead of failing.
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("%w: invalid UTF-8", ErrMalformedBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	malformed := func(what string) error {
		return fmt.Errorf("%w: %s", ErrMalformedBody, what)
	}
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, malformed("not a JSON object")
	}
	fields := make(map[string]string)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed("bad JSON")
		}
		name, ok := tok.(string)
		if !ok {
			return nil, malformed("bad JSON")
		}
		if name == "" {
			return nil, malformed("empty field name")
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, malformed("bad JSON")
		}
		value, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%w: field %s is not a string", ErrMalformedBody, quoteName(name))
		}
		if _, dup := fields[name]; dup {
			return nil, fmt.Errorf("%w: %s", ErrRepeatedField, quoteName(name))
		}
		fields[name] = value
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, malformed("bad JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed("data after the JSON object")
	}
	return fields, nil
}

// quoteName quotes a field name for an error message, cut to 64 bytes.
func quoteName(name string) string {
	const max = 64
	if len(name) > max {
		name = strings.ToValidUTF8(name[:max], "") + "…"
	}
	return strconv.Quote(name)
}
