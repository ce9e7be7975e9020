// Package cinetpayverify verifies the signed headers caddy-cinetpay sends to a shop (the
// project's README, "2. Deliveries" and "3. The return page"): RFC 9421 HTTP Message Signatures
// with hmac-sha256, under the label "cinetpay".
//
// It is a module of its own with the standard library only, for shops that do not want the
// caddy-cinetpay module's dependency graph in their go.sum. Its rules are those of the module's
// httpsig.Verifier; the shared test vectors (verifiers/testdata/vectors.json) keep them equal.
//
//	res, err := cinetpayverify.VerifyRequest(r, keys, cinetpayverify.TagNotify, cinetpayverify.Options{})
//	if err != nil { http.Error(w, "bad signature", http.StatusUnauthorized); return }
//	// compare res.OrderID, res.Amount, res.Currency with the shop's own order; apply res.EventID once
package cinetpayverify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Version is this package's version, the project's.
const Version = "0.1.0"

// Constants of the signature scheme (README, "2. Deliveries").
const (
	// Label is the signature label in Signature-Input and Signature.
	Label = "cinetpay"
	// Algorithm is the only algorithm: HMAC-SHA256 with the shared signing key.
	Algorithm = "hmac-sha256"
	// TagNotify marks deliveries (results POSTed to the shop's forward URL).
	TagNotify = "cinetpay-notify"
	// TagReturn marks return pages (the customer's browser coming back).
	TagReturn = "cinetpay-return"
	// Skew is the clock skew allowed on created and expires.
	Skew = 60 * time.Second
)

// Errors of Verify. Every error wraps one of them; the message says which rule failed and never
// holds a key.
var (
	// ErrMissing: no Signature-Input or Signature with the "cinetpay" label.
	ErrMissing = errors.New("signature missing")
	// ErrMalformed: the headers do not parse, or use what the scheme does not allow.
	ErrMalformed = errors.New("signature malformed")
	// ErrInvalid: a rule of the scheme is broken (key id, tag, coverage, time, environment, MAC).
	ErrInvalid = errors.New("signature invalid")
)

// Options are the optional settings of Verify.
type Options struct {
	// AcceptSandbox accepts Cinetpay-Environment "sandbox" (development only). Off by default:
	// only "live" results are accepted, so a sandbox result can never mark a real order paid.
	AcceptSandbox bool
	// Now is the time to check created and expires against; the zero value is time.Now().
	Now time.Time
}

// Result is what a verified message says. Every Cinetpay-* header of a verified message is
// covered by its signature. Values are as sent: the module percent-encodes any byte of a value
// that is not printable ASCII, and '%' (README, "2. Deliveries").
type Result struct {
	TransactionID string
	OrderID       string
	Status        string
	Amount        string
	Currency      string
	PaymentMethod string
	OperatorID    string
	PaymentDate   string
	Environment   string
	// EventID is set on deliveries: apply each event id once.
	EventID string
	KeyID   string
	Nonce   string
	Created time.Time
	Expires time.Time
}

// requiredCovered are the components every message must cover; deliveries add the event id.
var requiredCovered = []string{"@method", "cinetpay-transaction-id", "cinetpay-order-id",
	"cinetpay-status", "cinetpay-amount", "cinetpay-currency", "cinetpay-environment"}

// VerifyRequest is Verify with the method and headers of r.
func VerifyRequest(r *http.Request, keys map[string][]byte, tag string, opts Options) (*Result, error) {
	return Verify(r.Method, r.Header, keys, tag, opts)
}

// Verify checks the "cinetpay" signature of a request with the given method and headers and
// returns the verified values. keys maps key ids to keys (several keys let a shop rotate); tag is
// TagNotify for deliveries, TagReturn for return pages.
//
// It reads the "cinetpay" label only; picks the key by keyid; uses HMAC-SHA256 whatever the
// message says (an alg other than hmac-sha256 is refused); requires the tag, created and expires
// (60 s of skew), and coverage of @method, the transaction id, order id, status, amount,
// currency, environment and, for deliveries, the event id; refuses any Cinetpay-* header (or
// Cinetpay_*) left uncovered; refuses the sandbox environment unless opts.AcceptSandbox. The only
// derived component is @method: the others need the request's URL, which the module never signs.
func Verify(method string, header http.Header, keys map[string][]byte, tag string, opts Options) (*Result, error) {
	h := lowerHeader(header)
	inputs, okIn := h["signature-input"]
	sigs, okSig := h["signature"]
	if !okIn || !okSig {
		return nil, fmt.Errorf("%w: no Signature-Input or Signature header", ErrMissing)
	}
	inDict, err := parseDictionary(strings.Join(inputs, ", "))
	if err != nil {
		return nil, fmt.Errorf("%w: Signature-Input: %v", ErrMalformed, err)
	}
	sigDict, err := parseDictionary(strings.Join(sigs, ", "))
	if err != nil {
		return nil, fmt.Errorf("%w: Signature: %v", ErrMalformed, err)
	}
	in, okIn := inDict[Label]
	sig, okSig := sigDict[Label]
	if !okIn || !okSig {
		return nil, fmt.Errorf("%w: no %q label", ErrMissing, Label)
	}
	if !in.isList {
		return nil, fmt.Errorf("%w: Signature-Input %s is not an inner list", ErrMalformed, Label)
	}
	if sig.isList || sig.item.kind != 'b' {
		return nil, fmt.Errorf("%w: Signature %s is not a byte sequence", ErrMalformed, Label)
	}

	res := &Result{}
	var hasCreated, hasExpires bool
	gotTag := ""
	for _, p := range in.params {
		switch p.key {
		case "created", "expires":
			if p.val.kind != 'i' {
				return nil, fmt.Errorf("%w: %s is not an integer", ErrMalformed, p.key)
			}
			t := time.Unix(p.val.num, 0)
			if p.key == "created" {
				res.Created, hasCreated = t, true
			} else {
				res.Expires, hasExpires = t, true
			}
		case "keyid", "alg", "nonce", "tag":
			if p.val.kind != 's' {
				return nil, fmt.Errorf("%w: %s is not a string", ErrMalformed, p.key)
			}
			switch p.key {
			case "keyid":
				res.KeyID = p.val.str
			case "alg":
				if p.val.str != Algorithm {
					return nil, fmt.Errorf("%w: alg %q is not %s", ErrInvalid, p.val.str, Algorithm)
				}
			case "nonce":
				res.Nonce = p.val.str
			case "tag":
				gotTag = p.val.str
			}
		}
	}
	if tag == "" || gotTag != tag {
		return nil, fmt.Errorf("%w: tag %q, want %q", ErrInvalid, gotTag, tag)
	}
	key, ok := keys[res.KeyID]
	if res.KeyID == "" || !ok || len(key) == 0 {
		return nil, fmt.Errorf("%w: unknown keyid %q", ErrInvalid, res.KeyID)
	}
	if !hasCreated || !hasExpires {
		return nil, fmt.Errorf("%w: created and expires are required", ErrInvalid)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	if res.Created.After(now.Add(Skew)) {
		return nil, fmt.Errorf("%w: created in the future", ErrInvalid)
	}
	if !now.Before(res.Expires.Add(Skew)) {
		return nil, fmt.Errorf("%w: expired", ErrInvalid)
	}

	covered := map[string]bool{}
	for _, c := range in.list {
		if c.item.kind == 's' {
			covered[c.item.str] = true
		}
	}
	required := requiredCovered
	if tag == TagNotify {
		required = append(slices.Clip(required), "cinetpay-event-id")
	}
	for _, c := range required {
		if !covered[c] {
			return nil, fmt.Errorf("%w: %s is not covered", ErrInvalid, c)
		}
	}
	for _, name := range sortedKeys(h) {
		if strings.HasPrefix(strings.ReplaceAll(name, "_", "-"), "cinetpay-") && !covered[name] {
			return nil, fmt.Errorf("%w: header %s is not covered", ErrInvalid, name)
		}
	}

	// the signature base of RFC 9421 §2.5, over the covered components as listed
	var b strings.Builder
	seen := map[string]bool{}
	for _, c := range in.list {
		if c.item.kind != 's' {
			return nil, fmt.Errorf("%w: component identifier is not a string", ErrMalformed)
		}
		if len(c.params) > 0 {
			return nil, fmt.Errorf("%w: component parameters are not supported", ErrMalformed)
		}
		name := c.item.str
		if name != strings.ToLower(name) || name == "" || name == "@signature-params" || seen[name] {
			return nil, fmt.Errorf("%w: bad or repeated component %q", ErrMalformed, name)
		}
		seen[name] = true
		var v string
		switch {
		case name == "@method":
			v = method
		case strings.HasPrefix(name, "@"):
			return nil, fmt.Errorf("%w: derived component %s is not supported", ErrMalformed, name)
		default:
			if v, err = headerValue(h, name); err != nil {
				return nil, err
			}
		}
		serializeString(&b, name)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteByte('\n')
	}
	b.WriteString(`"@signature-params": `)
	serializeInnerList(&b, in.list, in.params)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(b.String()))
	if !hmac.Equal(mac.Sum(nil), sig.item.bytes) {
		return nil, fmt.Errorf("%w: signature does not match", ErrInvalid)
	}

	get := func(name string) string { v, _ := headerValue(h, name); return v }
	res.TransactionID, res.OrderID, res.Status = get("cinetpay-transaction-id"), get("cinetpay-order-id"), get("cinetpay-status")
	res.Amount, res.Currency, res.Environment = get("cinetpay-amount"), get("cinetpay-currency"), get("cinetpay-environment")
	res.PaymentMethod, res.OperatorID, res.PaymentDate = get("cinetpay-payment-method"), get("cinetpay-operator-id"), get("cinetpay-payment-date")
	res.EventID = get("cinetpay-event-id")
	switch res.Environment {
	case "live":
	case "sandbox":
		if !opts.AcceptSandbox {
			return nil, fmt.Errorf("%w: sandbox result refused", ErrInvalid)
		}
	default:
		return nil, fmt.Errorf("%w: environment %q", ErrInvalid, res.Environment)
	}
	if tag == TagNotify && res.EventID == "" {
		return nil, fmt.Errorf("%w: empty event id", ErrInvalid)
	}
	return res, nil
}

// lowerHeader returns the header lines by lower-case name; names that differ in case only are
// one field.
func lowerHeader(header http.Header) map[string][]string {
	h := make(map[string][]string, len(header))
	for _, name := range sortedKeys(header) {
		lower := strings.ToLower(name)
		h[lower] = append(h[lower], header[name]...)
	}
	return h
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// headerValue is a header field's value: its lines trimmed and joined with ", " (RFC 9421 §2.1).
func headerValue(h map[string][]string, name string) (string, error) {
	lines, ok := h[name]
	if !ok {
		return "", fmt.Errorf("%w: covered header %s is missing", ErrInvalid, name)
	}
	vals := make([]string, len(lines))
	for i, l := range lines {
		vals[i] = strings.Trim(l, " \t")
		for j := 0; j < len(vals[i]); j++ {
			if c := vals[i][j]; c < 0x20 || c > 0x7e {
				return "", fmt.Errorf("%w: header %s is not printable ASCII", ErrMalformed, name)
			}
		}
	}
	return strings.Join(vals, ", "), nil
}

// ---- RFC 8941 (Structured Field Values): the dictionaries, inner lists, items and parameters
// that Signature-Input and Signature use.

// sfItem is a bare item: a string, token, integer, decimal, byte sequence or boolean.
type sfItem struct {
	kind  byte // 's' string, 't' token, 'i' integer, 'd' decimal, 'b' bytes, '?' boolean
	str   string
	num   int64
	bytes []byte
	flag  bool
}

type sfParam struct {
	key string
	val sfItem
}

// sfMember is a dictionary member: an item or an inner list, with parameters.
type sfMember struct {
	isList bool
	item   sfItem
	list   []sfListItem
	params []sfParam
}

type sfListItem struct {
	item   sfItem
	params []sfParam
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) fail(what string) error {
	return fmt.Errorf("malformed structured field: %s at offset %d", what, p.i)
}

func (p *sfParser) eof() bool { return p.i >= len(p.s) }

func (p *sfParser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}

func (p *sfParser) skip(chars string) {
	for !p.eof() && strings.IndexByte(chars, p.s[p.i]) >= 0 {
		p.i++
	}
}

// parseDictionary parses an sf-dictionary. Later duplicates of a key replace earlier ones.
func parseDictionary(s string) (map[string]sfMember, error) {
	p := &sfParser{s: s}
	p.skip(" ")
	out := map[string]sfMember{}
	for !p.eof() {
		key, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		var m sfMember
		if p.peek() == '=' {
			p.i++
			if p.peek() == '(' {
				m.isList = true
				if m.list, err = p.parseInnerList(); err != nil {
					return nil, err
				}
			} else if m.item, err = p.parseBareItem(); err != nil {
				return nil, err
			}
		} else {
			m.item = sfItem{kind: '?', flag: true}
		}
		if m.params, err = p.parseParams(); err != nil {
			return nil, err
		}
		out[key] = m
		p.skip(" \t")
		if p.eof() {
			break
		}
		if p.peek() != ',' {
			return nil, p.fail("expected ','")
		}
		p.i++
		p.skip(" \t")
		if p.eof() {
			return nil, p.fail("trailing ','")
		}
	}
	return out, nil
}

func (p *sfParser) parseKey() (string, error) {
	start := p.i
	if c := p.peek(); !(c >= 'a' && c <= 'z' || c == '*') {
		return "", p.fail("bad key")
	}
	for !p.eof() {
		c := p.s[p.i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) parseInnerList() ([]sfListItem, error) {
	p.i++ // (
	var out []sfListItem
	for {
		p.skip(" ")
		if p.peek() == ')' {
			p.i++
			return out, nil
		}
		if p.eof() {
			return nil, p.fail("unterminated inner list")
		}
		it, err := p.parseBareItem()
		if err != nil {
			return nil, err
		}
		params, err := p.parseParams()
		if err != nil {
			return nil, err
		}
		out = append(out, sfListItem{item: it, params: params})
		if c := p.peek(); c != ' ' && c != ')' {
			return nil, p.fail("expected ' ' or ')'")
		}
	}
}

// parseParams parses parameters; a repeated key keeps its first position and its last value.
func (p *sfParser) parseParams() ([]sfParam, error) {
	var out []sfParam
	for p.peek() == ';' {
		p.i++
		p.skip(" ")
		key, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		val := sfItem{kind: '?', flag: true}
		if p.peek() == '=' {
			p.i++
			if val, err = p.parseBareItem(); err != nil {
				return nil, err
			}
		}
		if i := slices.IndexFunc(out, func(q sfParam) bool { return q.key == key }); i >= 0 {
			out[i].val = val
		} else {
			out = append(out, sfParam{key, val})
		}
	}
	return out, nil
}

func (p *sfParser) parseBareItem() (sfItem, error) {
	c := p.peek()
	switch {
	case c == '-' || c >= '0' && c <= '9':
		return p.parseNumber()
	case c == '"':
		return p.parseString()
	case c == ':':
		return p.parseBytes()
	case c == '?':
		p.i++
		switch p.peek() {
		case '0', '1':
			b := p.peek() == '1'
			p.i++
			return sfItem{kind: '?', flag: b}, nil
		}
		return sfItem{}, p.fail("bad boolean")
	case c == '*' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		start := p.i
		for p.i++; !p.eof() && (isTChar(p.s[p.i]) || p.s[p.i] == ':' || p.s[p.i] == '/'); p.i++ {
		}
		return sfItem{kind: 't', str: p.s[start:p.i]}, nil
	}
	return sfItem{}, p.fail("bad item")
}

func (p *sfParser) parseNumber() (sfItem, error) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	if c := p.peek(); c < '0' || c > '9' {
		return sfItem{}, p.fail("bad number")
	}
	digits, dot := 0, -1
	for !p.eof() {
		c := p.s[p.i]
		if c >= '0' && c <= '9' {
			digits++
		} else if c == '.' && dot < 0 {
			dot = digits
		} else {
			break
		}
		p.i++
	}
	lit := p.s[start:p.i]
	if (dot < 0 && digits > 15) || (dot >= 0 && (dot > 12 || digits-dot > 3 || digits == dot)) {
		return sfItem{}, p.fail("bad number")
	}
	if dot >= 0 {
		return sfItem{kind: 'd', str: lit}, nil
	}
	n, err := strconv.ParseInt(lit, 10, 64)
	if err != nil {
		return sfItem{}, p.fail("bad integer")
	}
	return sfItem{kind: 'i', num: n}, nil
}

func (p *sfParser) parseString() (sfItem, error) {
	p.i++ // "
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if n := p.peek(); n != '"' && n != '\\' {
				return sfItem{}, p.fail("bad escape")
			}
			b.WriteByte(p.s[p.i])
			p.i++
		case c == '"':
			return sfItem{kind: 's', str: b.String()}, nil
		case c < 0x20 || c > 0x7e:
			return sfItem{}, p.fail("bad string character")
		default:
			b.WriteByte(c)
		}
	}
	return sfItem{}, p.fail("unterminated string")
}

func (p *sfParser) parseBytes() (sfItem, error) {
	p.i++ // :
	end := strings.IndexByte(p.s[p.i:], ':')
	if end < 0 {
		return sfItem{}, p.fail("unterminated byte sequence")
	}
	lit := p.s[p.i : p.i+end]
	p.i += end + 1
	b, err := base64.StdEncoding.DecodeString(lit)
	if err != nil {
		return sfItem{}, p.fail("bad base64")
	}
	return sfItem{kind: 'b', bytes: b}, nil
}

func isTChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// serializeString writes an sf-string; s is printable ASCII (the parser allows nothing else).
func serializeString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

func serializeItem(b *strings.Builder, it sfItem) {
	switch it.kind {
	case 's':
		serializeString(b, it.str)
	case 't', 'd':
		b.WriteString(it.str) // as written
	case 'i':
		b.WriteString(strconv.FormatInt(it.num, 10))
	case 'b':
		b.WriteString(":" + base64.StdEncoding.EncodeToString(it.bytes) + ":")
	case '?':
		if it.flag {
			b.WriteString("?1")
		} else {
			b.WriteString("?0")
		}
	}
}

func serializeParams(b *strings.Builder, params []sfParam) {
	for _, p := range params {
		b.WriteString(";" + p.key)
		if p.val.kind != '?' || !p.val.flag {
			b.WriteByte('=')
			serializeItem(b, p.val)
		}
	}
}

// serializeInnerList writes an inner list with its parameters, as @signature-params wants it.
func serializeInnerList(b *strings.Builder, list []sfListItem, params []sfParam) {
	b.WriteByte('(')
	for i, it := range list {
		if i > 0 {
			b.WriteByte(' ')
		}
		serializeItem(b, it.item)
		serializeParams(b, it.params)
	}
	b.WriteByte(')')
	serializeParams(b, params)
}
