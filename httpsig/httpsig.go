// Package httpsig signs and verifies the headers caddy-cinetpay sends to a shop (README,
// "2. Deliveries"): RFC 9421 HTTP Message Signatures with hmac-sha256, under the label
// "cinetpay".
//
// A Go shop imports this package alone (it has no Caddy dependency) and calls Verifier.Verify on
// every delivery and return page:
//
//	v := &httpsig.Verifier{Keys: map[string][]byte{"shop1": key}, Tag: httpsig.TagNotify}
//	res, err := v.Verify(r)
//	if err != nil { http.Error(w, "bad signature", http.StatusUnauthorized); return }
//	// compare res.OrderID, res.Amount, res.Currency with the shop's own order; apply res.EventID once
package httpsig

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"time"
)

// Constants of the signature scheme.
const (
	// Label is the signature label in Signature-Input and Signature.
	Label = "cinetpay"
	// Algorithm is the only algorithm: HMAC-SHA256 with the shared signing key.
	Algorithm = "hmac-sha256"
	// TagNotify marks deliveries (results POSTed to the shop's forward URL).
	TagNotify = "cinetpay-notify"
	// TagReturn marks return pages (the customer's browser coming back).
	TagReturn = "cinetpay-return"
	// Validity is the time between created and expires.
	Validity = 300 * time.Second
	// DefaultSkew is the clock skew a Verifier allows by default.
	DefaultSkew = 60 * time.Second
)

// The headers the module sends to the shop, all covered by the signature when present.
const (
	HeaderTransactionID = "Cinetpay-Transaction-Id"
	HeaderOrderID       = "Cinetpay-Order-Id"
	HeaderStatus        = "Cinetpay-Status"
	HeaderAmount        = "Cinetpay-Amount"
	HeaderCurrency      = "Cinetpay-Currency"
	HeaderPaymentMethod = "Cinetpay-Payment-Method"
	HeaderOperatorID    = "Cinetpay-Operator-Id"
	HeaderPaymentDate   = "Cinetpay-Payment-Date"
	HeaderEnvironment   = "Cinetpay-Environment"
	HeaderEventID       = "Cinetpay-Event-Id"
)

// HeaderOrder is the order in which the signer lists the headers it covers, after "@method".
var HeaderOrder = []string{HeaderTransactionID, HeaderOrderID, HeaderStatus, HeaderAmount,
	HeaderCurrency, HeaderPaymentMethod, HeaderOperatorID, HeaderPaymentDate, HeaderEnvironment,
	HeaderEventID}

// requiredCovered are the components every verifier requires; deliveries add the event id.
var requiredCovered = []string{"@method", "cinetpay-transaction-id", "cinetpay-order-id",
	"cinetpay-status", "cinetpay-amount", "cinetpay-currency", "cinetpay-environment"}

// Signer signs messages to the shop.
type Signer struct {
	KeyID string
	Key   []byte
}

// Sign adds Signature-Input and Signature to h for a request with the given method, covering
// "@method" and every Cinetpay-* header in h (in HeaderOrder, then any others sorted). Any
// Signature, Signature-Input and Content-Digest already in h, in either spelling ('-' or '_'),
// are removed first. Header values must be printable ASCII.
func (s Signer) Sign(method string, h http.Header, tag, nonce string, created time.Time) error {
	DeleteSignatureHeaders(h)
	components := []string{"@method"}
	var extra []string
	for name := range h {
		lower := strings.ToLower(name)
		if !strings.HasPrefix(lower, "cinetpay-") {
			continue
		}
		if !slices.ContainsFunc(HeaderOrder, func(k string) bool { return strings.EqualFold(k, name) }) {
			extra = append(extra, lower)
		}
	}
	for _, name := range HeaderOrder {
		if _, ok := h[name]; ok {
			components = append(components, strings.ToLower(name))
		}
	}
	slices.Sort(extra)
	components = append(components, extra...)

	params := []sfParam{
		{"created", sfItem{kind: 'i', num: created.Unix()}},
		{"expires", sfItem{kind: 'i', num: created.Add(Validity).Unix()}},
		{"keyid", sfItem{kind: 's', str: s.KeyID}},
		{"alg", sfItem{kind: 's', str: Algorithm}},
		{"nonce", sfItem{kind: 's', str: nonce}},
		{"tag", sfItem{kind: 's', str: tag}},
	}
	list := make([]sfListItem, len(components))
	for i, c := range components {
		list[i] = sfListItem{item: sfItem{kind: 's', str: c}}
	}
	var sp strings.Builder
	serializeInnerList(&sp, list, params)
	sigParams := sp.String()

	base, err := signatureBase(&http.Request{Method: method, Header: h}, list, sigParams)
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, s.Key)
	mac.Write([]byte(base))
	var sig strings.Builder
	sig.WriteString(Label + "=")
	serializeItem(&sig, sfItem{kind: 'b', bytes: mac.Sum(nil)})
	h.Set("Signature-Input", Label+"="+sigParams)
	h.Set("Signature", sig.String())
	return nil
}

// DeleteSignatureHeaders removes Signature, Signature-Input and Content-Digest from h, in any
// case and with '_' for '-' (PHP and CGI map both to one variable).
func DeleteSignatureHeaders(h http.Header) {
	for name := range h {
		switch strings.ReplaceAll(strings.ToLower(name), "_", "-") {
		case "signature", "signature-input", "content-digest":
			delete(h, name)
		}
	}
}

// signatureBase builds the signature base of RFC 9421 §2.5 for the covered components.
func signatureBase(r *http.Request, components []sfListItem, sigParams string) (string, error) {
	var b strings.Builder
	seen := map[string]bool{}
	for _, c := range components {
		if c.item.kind != 's' {
			return "", fmt.Errorf("%w: component identifier is not a string", ErrMalformed)
		}
		if len(c.params) > 0 {
			return "", fmt.Errorf("%w: component parameters are not supported", ErrMalformed)
		}
		name := c.item.str
		if name != strings.ToLower(name) || name == "" || name == "@signature-params" || seen[name] {
			return "", fmt.Errorf("%w: bad or repeated component %q", ErrMalformed, name)
		}
		seen[name] = true
		v, err := componentValue(r, name)
		if err != nil {
			return "", err
		}
		serializeString(&b, name)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteByte('\n')
	}
	b.WriteString(`"@signature-params": `)
	b.WriteString(sigParams)
	return b.String(), nil
}

// componentValue is the value of one component: a derived one, or a header field whose lines
// are trimmed and joined with ", " (RFC 9421 §2.1).
func componentValue(r *http.Request, name string) (string, error) {
	if strings.HasPrefix(name, "@") {
		switch name {
		case "@method":
			return r.Method, nil
		case "@authority":
			host := r.Host
			if host == "" && r.URL != nil {
				host = r.URL.Host
			}
			return strings.ToLower(host), nil
		case "@path":
			if r.URL == nil {
				break
			}
			if p := r.URL.EscapedPath(); p != "" {
				return p, nil
			}
			return "/", nil
		case "@query":
			if r.URL == nil {
				break
			}
			return "?" + r.URL.RawQuery, nil
		}
		return "", fmt.Errorf("%w: derived component %s is not supported", ErrMalformed, name)
	}
	lines, ok := r.Header[textproto.CanonicalMIMEHeaderKey(name)]
	if !ok {
		return "", fmt.Errorf("%w: covered header %s is missing", ErrInvalid, name)
	}
	vals := make([]string, len(lines))
	for i, l := range lines {
		vals[i] = strings.Trim(l, " \t")
		if !isPrintableASCII(vals[i]) {
			return "", fmt.Errorf("%w: header %s is not printable ASCII", ErrMalformed, name)
		}
	}
	return strings.Join(vals, ", "), nil
}

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

// Verifier checks signed messages from the module. The zero value refuses everything: set Keys
// and Tag.
type Verifier struct {
	// Keys maps key ids to keys. Several keys let a shop rotate: add the new key, switch Caddy's
	// signing_key to it, then remove the old one.
	Keys map[string][]byte
	// Tag is the tag required: TagNotify for deliveries, TagReturn for return pages.
	Tag string
	// AcceptSandbox accepts Cinetpay-Environment "sandbox". Off by default: only "live"
	// results are accepted, so a sandbox result can never mark a real order paid.
	AcceptSandbox bool
	// Skew is the clock skew allowed on created and expires; default DefaultSkew.
	Skew time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Result is what a verified message says. Only covered headers are read.
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

// Verify checks the "cinetpay" signature of r and returns the verified values. It reads the
// "cinetpay" label only; picks the key by keyid; uses HMAC-SHA256 whatever the message says (an
// alg other than hmac-sha256 is refused); requires the Verifier's tag, created and expires
// (with Skew), and coverage of @method, the transaction id, order id, status, amount, currency,
// environment and, for deliveries, the event id; refuses any Cinetpay-* header left uncovered;
// refuses the sandbox environment unless AcceptSandbox.
func (v *Verifier) Verify(r *http.Request) (*Result, error) {
	inputs, sigs := r.Header.Values("Signature-Input"), r.Header.Values("Signature")
	if len(inputs) == 0 || len(sigs) == 0 {
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
	tag := ""
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
				tag = p.val.str
			}
		}
	}
	if v.Tag == "" || tag != v.Tag {
		return nil, fmt.Errorf("%w: tag %q, want %q", ErrInvalid, tag, v.Tag)
	}
	key, ok := v.Keys[res.KeyID]
	if res.KeyID == "" || !ok || len(key) == 0 {
		return nil, fmt.Errorf("%w: unknown keyid %q", ErrInvalid, res.KeyID)
	}
	if !hasCreated || !hasExpires {
		return nil, fmt.Errorf("%w: created and expires are required", ErrInvalid)
	}
	now, skew := time.Now(), v.Skew
	if v.Now != nil {
		now = v.Now()
	}
	if skew <= 0 {
		skew = DefaultSkew
	}
	if res.Created.After(now.Add(skew)) {
		return nil, fmt.Errorf("%w: created in the future", ErrInvalid)
	}
	if !now.Before(res.Expires.Add(skew)) {
		return nil, fmt.Errorf("%w: expired", ErrInvalid)
	}

	covered := map[string]bool{}
	for _, c := range in.list {
		if c.item.kind == 's' {
			covered[c.item.str] = true
		}
	}
	required := requiredCovered
	if v.Tag == TagNotify {
		required = append(slices.Clip(required), "cinetpay-event-id")
	}
	for _, c := range required {
		if !covered[c] {
			return nil, fmt.Errorf("%w: %s is not covered", ErrInvalid, c)
		}
	}
	for name := range r.Header {
		lower := strings.ToLower(name)
		if strings.HasPrefix(strings.ReplaceAll(lower, "_", "-"), "cinetpay-") && !covered[lower] {
			return nil, fmt.Errorf("%w: header %s is not covered", ErrInvalid, name)
		}
	}

	var sp strings.Builder
	serializeInnerList(&sp, in.list, in.params)
	base, err := signatureBase(r, in.list, sp.String())
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(base))
	if !hmac.Equal(mac.Sum(nil), sig.item.bytes) {
		return nil, fmt.Errorf("%w: signature does not match", ErrInvalid)
	}

	get := func(name string) string { v, _ := componentValue(r, strings.ToLower(name)); return v }
	res.TransactionID, res.OrderID, res.Status = get(HeaderTransactionID), get(HeaderOrderID), get(HeaderStatus)
	res.Amount, res.Currency, res.Environment = get(HeaderAmount), get(HeaderCurrency), get(HeaderEnvironment)
	res.PaymentMethod, res.OperatorID, res.PaymentDate = get(HeaderPaymentMethod), get(HeaderOperatorID), get(HeaderPaymentDate)
	res.EventID = get(HeaderEventID)
	if err := checkEnvironment(res.Environment, v.AcceptSandbox); err != nil {
		return nil, err
	}
	if v.Tag == TagNotify && res.EventID == "" {
		return nil, fmt.Errorf("%w: empty event id", ErrInvalid)
	}
	return res, nil
}

// checkEnvironment is the rule both verifiers apply to a result's environment: "live", or
// "sandbox" when the shop accepts the sandbox (development only); anything else is refused.
func checkEnvironment(env string, acceptSandbox bool) error {
	switch env {
	case "live":
		return nil
	case "sandbox":
		if acceptSandbox {
			return nil
		}
		return fmt.Errorf("%w: sandbox result refused", ErrInvalid)
	}
	return fmt.Errorf("%w: environment %q", ErrInvalid, env)
}
