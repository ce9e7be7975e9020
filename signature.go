package caddycinetpay

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Signing and verifying live in package httpsig, which has no Caddy dependency, so that a Go
// shop can verify without compiling Caddy in. These aliases let code that already imports this
// module use them from here.

// Verifier checks the signed headers the module sends to a shop (README, "2. Deliveries"); see
// httpsig.Verifier.
type Verifier = httpsig.Verifier

// VerifiedResult is what a verified delivery or return page says; see httpsig.Result.
type VerifiedResult = httpsig.Result

// Tags of the two kinds of signed messages.
const (
	TagNotify = httpsig.TagNotify // deliveries
	TagReturn = httpsig.TagReturn // return pages
)

// setResultHeaders sets the Cinetpay-* headers (docs/signatures.md) for a payment's result;
// empty values are left out, and values that are not printable ASCII (they come from CinetPay)
// are percent-encoded.
func setResultHeaders(h http.Header, txid, orderID, status, environment, eventID string, r storage.Result) {
	for _, kv := range []struct{ name, val string }{
		{httpsig.HeaderTransactionID, txid},
		{httpsig.HeaderOrderID, orderID},
		{httpsig.HeaderStatus, status},
		{httpsig.HeaderAmount, r.Amount},
		{httpsig.HeaderCurrency, r.Currency},
		{httpsig.HeaderPaymentMethod, r.PaymentMethod},
		{httpsig.HeaderOperatorID, r.OperatorID},
		{httpsig.HeaderPaymentDate, r.PaymentDate},
		{httpsig.HeaderEnvironment, environment},
		{httpsig.HeaderEventID, eventID},
	} {
		if val := headerSafe(kv.val); val != "" {
			h.Set(kv.name, val)
		}
	}
}

// headerSafe trims a value and percent-encodes what is not printable ASCII (and '%').
func headerSafe(s string) string {
	s = strings.TrimSpace(s)
	ok := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '%' {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
