package cinetpay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
)

// XTokenFields are the 16 notification fields whose values, concatenated in
// this order with no separator, form the message of the x-token HMAC.
// Modifying this variable has no effect on XToken and ValidXToken, which use
// a private copy.
var XTokenFields = [16]string{
	"cpm_site_id",
	"cpm_trans_id",
	"cpm_trans_date",
	"cpm_amount",
	"cpm_currency",
	"signature",
	"payment_method",
	"cel_phone_num",
	"cpm_phone_prefixe",
	"cpm_language",
	"cpm_version",
	"cpm_payment_config",
	"cpm_page_action",
	"cpm_custom",
	"cpm_designation",
	"cpm_error_message",
}

// xTokenFields is the copy XToken uses, taken before any code can change
// XTokenFields.
var xTokenFields = XTokenFields

// XTokenHeader is the notification header carrying the token.
const XTokenHeader = "X-Token"

// XToken returns the x-token CinetPay sends with a notification carrying
// fields: the lowercase hex HMAC-SHA256, keyed with secret (the merchant's
// Secret Key, not the API key), of the values of XTokenFields concatenated
// in order. A missing field counts as the empty string (never "None" or
// "undefined"); fields outside XTokenFields are ignored.
func XToken(secret string, fields map[string]string) string {
	return hex.EncodeToString(xTokenMAC(secret, fields))
}

// ValidXToken reports whether token is the x-token of fields under secret.
// The comparison is in constant time and accepts upper- or lower-case hex;
// an empty token, a token of the wrong length or a non-hex token is invalid.
// An empty secret never validates anything.
func ValidXToken(secret string, fields map[string]string, token string) bool {
	if secret == "" || len(token) != 2*sha256.Size {
		return false
	}
	got, err := hex.DecodeString(token)
	if err != nil {
		return false
	}
	return hmac.Equal(got, xTokenMAC(secret, fields))
}

func xTokenMAC(secret string, fields map[string]string) []byte {
	pool := macPool(secret)
	m := pool.Get().(*macState)
	defer pool.Put(m)
	m.buf = m.buf[:0]
	for _, name := range xTokenFields {
		m.buf = append(m.buf, fields[name]...)
	}
	m.h.Reset()
	m.h.Write(m.buf)
	return m.h.Sum(nil)
}

// macState is an HMAC keyed with one secret and a buffer for its message.
type macState struct {
	h   hash.Hash
	buf []byte
}

// macPools keeps, per secret, HMAC states ready to use: hmac.New hashes the key twice and
// allocates two SHA-256 states, which was most of the cost of checking an x-token.
var macPools sync.Map // secret → *sync.Pool of *macState

func macPool(secret string) *sync.Pool {
	if p, ok := macPools.Load(secret); ok {
		return p.(*sync.Pool)
	}
	p, _ := macPools.LoadOrStore(secret, &sync.Pool{New: func() any {
		return &macState{h: hmac.New(sha256.New, []byte(secret)), buf: make([]byte, 0, 256)}
	}})
	return p.(*sync.Pool)
}
