package cinetpayv1

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caddy-cinetpay/caddy-cinetpay/internal/cpjson"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
)

// maxResponseBody bounds how much of an answer is read; a longer answer is
// unreadable.
const maxResponseBody = 1 << 20

// maxRetryAfter caps APIError.RetryAfter.
const maxRetryAfter = 24 * time.Hour

// maxDescription bounds APIError.Description, in runes.
const maxDescription = 120

// answer is an HTTP answer from CinetPay, read in full.
type answer struct {
	httpStatus int
	retryAfter time.Duration
	// body is the answer without BOM and surrounding white space.
	body []byte
	// object is set when body is a JSON object that decoded.
	object bool
	env    envelope
	// code is the body's code when hasCode is set (a JSON number or a
	// numeric string).
	code    int
	hasCode bool
	// decodeErr is why the body could not be decoded, if it could not.
	decodeErr error
	// tokens are the bearer tokens sent by the operation that got this
	// answer, for redaction.
	tokens []string
}

// envelope holds the fields common to CinetPay's answers, and the secrets an
// answer may carry, so that they can be kept out of errors.
type envelope struct {
	Code        flexString `json:"code"`
	Status      flexString `json:"status"`
	Description flexString `json:"description"`
	Message     flexString `json:"message"`

	AccessToken  flexString `json:"access_token"`
	NotifyToken  flexString `json:"notify_token"`
	PaymentToken flexString `json:"payment_token"`
}

// text is the answer's human-readable explanation: description, else
// message, as CinetPay's SDKs read it.
func (e *envelope) text() string {
	if d := strings.TrimSpace(string(e.Description)); d != "" {
		return d
	}
	return strings.TrimSpace(string(e.Message))
}

// decodeAnswer fills a's body, object, env and code from raw.
func (a *answer) decode(raw []byte) {
	raw = bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(raw), []byte("\xef\xbb\xbf")))
	a.body = raw
	if len(raw) == 0 {
		a.decodeErr = errors.New("empty answer")
		return
	}
	if raw[0] != '{' {
		a.decodeErr = errors.New("answer is not a JSON object")
		return
	}
	if err := json.Unmarshal(raw, &a.env); err != nil {
		a.decodeErr = err
		return
	}
	a.object = true
	a.code, a.hasCode = parseCode(a.env.Code)
}

// okOrNoCode reports whether the body's code is 200 or absent (null or
// empty); a code that is present but not a number is neither.
func (a *answer) okOrNoCode() bool {
	if a.hasCode {
		return a.code == CodeOK
	}
	return trim(a.env.Code) == ""
}

// bodySecrets returns the secrets the answer carries.
func (a *answer) bodySecrets() []string {
	if a == nil {
		return nil
	}
	return []string{string(a.env.AccessToken), string(a.env.NotifyToken), string(a.env.PaymentToken)}
}

// flexString decodes any JSON value into a string (see cpjson.FlexString).
type flexString = cpjson.FlexString

// stringOnly decodes a JSON string as is and any other value as "".
type stringOnly string

// UnmarshalJSON implements json.Unmarshaler.
func (s *stringOnly) UnmarshalJSON(b []byte) error {
	var v string
	if json.Unmarshal(b, &v) != nil {
		v = ""
	}
	*s = stringOnly(v)
	return nil
}

// parseCode reads a code sent as a JSON integer or a numeric string ("100",
// " 2010 ", "-1"). A fraction, an exponent, a sign other than a leading '-',
// or more than 9 digits is no code.
func parseCode(f flexString) (int, bool) {
	s := strings.TrimSpace(string(f))
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || len(digits) > 9 {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, false
	}
	return n, true
}

// parseBool reads a JSON boolean, or "true"/"false"/"1"/"0" as text.
func parseBool(f flexString) bool {
	switch strings.ToLower(strings.TrimSpace(string(f))) {
	case "true", "1":
		return true
	}
	return false
}

// isObject reports whether raw is a JSON object.
func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// trim returns f's text without surrounding white space.
func trim(f flexString) string { return strings.TrimSpace(string(f)) }

// parseRetryAfter parses a Retry-After value, delay-seconds or HTTP date,
// into a positive duration capped at maxRetryAfter; 0 when absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	return engine.ParseRetryAfter(v, now, maxRetryAfter)
}

// cleanText makes s safe for a log line: valid UTF-8, no control or format
// characters, runs of white space as one space, trimmed, at most max runes
// (an ellipsis marks a cut).
func cleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "")
	var b strings.Builder
	n := 0
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			space = true
			continue
		}
		if n >= max {
			b.WriteString("…")
			break
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
			n++
		}
		space = false
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// plainWord returns s trimmed when it has the shape of CinetPay's status
// words (1 to 40 upper-case ASCII letters and '_', as in
// "INSUFFICIENT_BALANCE"), else "". Keys and tokens never have that shape.
func plainWord(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 40 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || c == '_') {
			return ""
		}
	}
	return s
}

// scrub returns s, or "" when s contains any of the non-empty secrets or
// anything that looks like a key or token: text that may echo a secret is
// dropped whole rather than edited.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			return ""
		}
	}
	if looksSecret(s) {
		return ""
	}
	return s
}

// looksSecret reports whether s holds a run of 24 or more characters of the
// alphabets of keys, JWTs and hex tokens ([A-Za-z0-9._~+/=-]) with both a
// letter and a digit in it. CinetPay's descriptions are short sentences;
// such a run is more likely a key, a token or an id than words.
func looksSecret(s string) bool {
	run, letter, digit := 0, false, false
	for i := 0; i <= len(s); i++ {
		var c byte
		if i < len(s) {
			c = s[i]
		}
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
			run, letter = run+1, true
		case '0' <= c && c <= '9':
			run, digit = run+1, true
		case c == '.', c == '_', c == '~', c == '+', c == '/', c == '=', c == '-':
			run++
		default:
			if run >= 24 && letter && digit {
				return true
			}
			run, letter, digit = 0, false, false
		}
	}
	return false
}

// escapeSegment percent-encodes s for one URL path segment, leaving only
// ASCII letters, digits and "-_.~" as they are (as CinetPay's SDKs do with
// encodeURIComponent / rawurlencode).
func escapeSegment(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// hasControl reports whether s holds a control or format character.
func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return true
		}
	}
	return false
}
