package engine

import (
	"encoding/binary"
	"net/http"
	"net/textproto"
	"sync"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// SettledNotices remembers, bounded, the notifications already verified for payments in a
// final state (ACCEPTED, MISMATCH, DUPLICATE), byte for byte: the provider's notice headers
// (Provider.NoticeHeaders) and the body. CinetPay sends the same notification again and again
// until it gets its 200; a repeat is then answered from memory, without parsing, verifying or
// reading the store. Only an exact repeat matches: a changed byte, token or header is a new
// notification, read and verified in full. Remembering is safe because a final state never
// changes; the one thing a hit can miss is the purge of the payment (90 days after it
// settled), and it then gets the 200 its settled state gave.
//
// It keeps at most settledEntries notifications of at most settledMaxKey bytes each (so at
// most about 4.5 MB), the oldest forgotten first. The zero value is not usable; see
// NewSettledNotices. It is safe for concurrent use.
type SettledNotices struct {
	headers []string // canonical names

	mu   sync.RWMutex
	m    map[string]Settled
	ring []string // the keys of m in the order remembered; once full, ring[next] is the oldest
	next int
}

// Settled is what a remembered notification is about.
type Settled struct {
	TransactionID string
	OrderID       string
	State         storage.State
}

const (
	settledEntries = 2048
	// settledMaxKey bounds a remembered notification (headers and body): CinetPay's are a few
	// hundred bytes, and a larger one is simply not remembered
	settledMaxKey = 2 << 10
)

// NewSettledNotices returns an empty memory of notifications whose headers are headers (the
// provider's NoticeHeaders).
func NewSettledNotices(headers []string) *SettledNotices {
	s := &SettledNotices{m: map[string]Settled{}, ring: make([]string, settledEntries)}
	for _, h := range headers {
		s.headers = append(s.headers, textproto.CanonicalMIMEHeaderKey(h))
	}
	return s
}

// key appends the notification's key to buf: for each header, the number of its values and
// each value with its length before it, then the body, which ends the key; so no two
// notifications share a key. ok is false, before anything longer is copied, when the key would
// be longer than settledMaxKey (so buf, of that capacity, never grows).
func (s *SettledNotices) key(buf []byte, h http.Header, body []byte) ([]byte, bool) {
	for _, name := range s.headers {
		vs := h[name]
		if len(buf)+binary.MaxVarintLen64 > settledMaxKey {
			return nil, false
		}
		buf = binary.AppendUvarint(buf, uint64(len(vs)))
		for _, v := range vs {
			if len(buf)+binary.MaxVarintLen64+len(v) > settledMaxKey {
				return nil, false
			}
			buf = binary.AppendUvarint(buf, uint64(len(v)))
			buf = append(buf, v...)
		}
	}
	if len(buf)+len(body) > settledMaxKey {
		return nil, false
	}
	return append(buf, body...), true
}

// Lookup returns what the notification (header, body) is about if the very same notification
// was remembered.
func (s *SettledNotices) Lookup(h http.Header, body []byte) (Settled, bool) {
	var arr [settledMaxKey]byte
	k, ok := s.key(arr[:0], h, body)
	if !ok {
		return Settled{}, false
	}
	s.mu.RLock()
	v, ok := s.m[string(k)]
	s.mu.RUnlock()
	return v, ok
}

// Remember keeps the notification (header, body), verified by the caller for the payment v
// describes. A payment not in a final state is not remembered: its next notification may
// change it.
func (s *SettledNotices) Remember(h http.Header, body []byte, v Settled) {
	if !v.State.Final() {
		return
	}
	var arr [settledMaxKey]byte
	k, ok := s.key(arr[:0], h, body)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[string(k)]; ok {
		return
	}
	key := string(k)
	if len(s.m) == len(s.ring) {
		delete(s.m, s.ring[s.next])
	}
	s.ring[s.next] = key
	s.next = (s.next + 1) % len(s.ring)
	s.m[key] = v
}
