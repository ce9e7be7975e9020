package httpsig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRFC9421HMACVector checks the signature base and MAC against RFC 9421 Appendix B.2.5.
func TestRFC9421HMACVector(t *testing.T) {
	key, _ := base64.StdEncoding.DecodeString("uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==")
	r, _ := http.NewRequest("POST", "http://example.com/foo?param=Value&Pet=dog", nil)
	r.Header.Set("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
	r.Header.Set("Content-Type", "application/json")
	in, err := parseDictionary(`sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`)
	if err != nil {
		t.Fatal(err)
	}
	m := in["sig-b25"]
	var sp strings.Builder
	serializeInnerList(&sp, m.list, m.params)
	base, err := signatureBase(r, m.list, sp.String())
	if err != nil {
		t.Fatal(err)
	}
	want := "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\"@authority\": example.com\n\"content-type\": application/json\n" +
		`"@signature-params": ("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`
	if base != want {
		t.Fatalf("base:\n%s\nwant:\n%s", base, want)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(base))
	sig, _ := parseDictionary(`sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:`)
	if !hmac.Equal(mac.Sum(nil), sig["sig-b25"].item.bytes) {
		t.Fatal("MAC differs from the RFC's")
	}
}

var (
	key1 = []byte("0123456789abcdef0123456789abcdef")
	key2 = []byte("fedcba9876543210fedcba9876543210")
	now  = time.Unix(1764072000, 0)
)

func delivery(env string) http.Header {
	h := http.Header{}
	h.Set(HeaderTransactionID, "ABCDEF123")
	h.Set(HeaderOrderID, "order-42")
	h.Set(HeaderStatus, "ACCEPTED")
	h.Set(HeaderAmount, "1000")
	h.Set(HeaderCurrency, "XOF")
	h.Set(HeaderPaymentMethod, "OM")
	h.Set(HeaderEnvironment, env)
	h.Set(HeaderEventID, "evt1")
	return h
}

func signed(t *testing.T, h http.Header, tag string, at time.Time) *http.Request {
	t.Helper()
	if err := (Signer{KeyID: "shop1", Key: key1}).Sign("POST", h, tag, "evt1", at); err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest("POST", "http://127.0.0.1:9000/cinetpay/webhook", nil)
	r.Header = h
	return r
}

func verifier(tag string) *Verifier {
	return &Verifier{Keys: map[string][]byte{"shop1": key1}, Tag: tag, Now: func() time.Time { return now }}
}

func TestSignThenVerify(t *testing.T) {
	r := signed(t, delivery("live"), TagNotify, now)
	in := r.Header.Get("Signature-Input")
	wantIn := `cinetpay=("@method" "cinetpay-transaction-id" "cinetpay-order-id" "cinetpay-status" "cinetpay-amount" ` +
		`"cinetpay-currency" "cinetpay-payment-method" "cinetpay-environment" "cinetpay-event-id");created=1764072000;` +
		`expires=1764072300;keyid="shop1";alg="hmac-sha256";nonce="evt1";tag="cinetpay-notify"`
	if in != wantIn {
		t.Fatalf("Signature-Input:\n%s\nwant\n%s", in, wantIn)
	}
	res, err := verifier(TagNotify).Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	if res.TransactionID != "ABCDEF123" || res.OrderID != "order-42" || res.Status != "ACCEPTED" || res.Amount != "1000" ||
		res.Currency != "XOF" || res.PaymentMethod != "OM" || res.Environment != "live" || res.EventID != "evt1" ||
		res.KeyID != "shop1" || res.Nonce != "evt1" || res.OperatorID != "" {
		t.Fatalf("%+v", res)
	}
	// within the skew on both ends
	for _, at := range []time.Time{now.Add(59 * time.Second), now.Add(-Validity - 59*time.Second)} {
		if _, err := verifier(TagNotify).Verify(signed(t, delivery("live"), TagNotify, at)); err != nil {
			t.Errorf("created %v: %v", at, err)
		}
	}
	// rotation: the verifier knows both keys
	v := verifier(TagNotify)
	v.Keys["shop2"] = key2
	h := delivery("live")
	_ = Signer{KeyID: "shop2", Key: key2}.Sign("POST", h, TagNotify, "n", now)
	r2, _ := http.NewRequest("POST", "/", nil)
	r2.Header = h
	if _, err := v.Verify(r2); err != nil {
		t.Fatal(err)
	}
	// sandbox results are accepted when asked
	v = verifier(TagNotify)
	v.AcceptSandbox = true
	if _, err := v.Verify(signed(t, delivery("sandbox"), TagNotify, now)); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRejects(t *testing.T) {
	type tc struct {
		name   string
		mutate func(r *http.Request, v *Verifier)
		want   error
	}
	replaceParam := func(old, new string) func(r *http.Request, v *Verifier) {
		return func(r *http.Request, _ *Verifier) {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), old, new, 1))
		}
	}
	for _, c := range []tc{
		{"no headers", func(r *http.Request, _ *Verifier) { r.Header.Del("Signature"); r.Header.Del("Signature-Input") }, ErrMissing},
		{"other label", func(r *http.Request, _ *Verifier) {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), "cinetpay=", "sig1=", 1))
			r.Header.Set("Signature", strings.Replace(r.Header.Get("Signature"), "cinetpay=", "sig1=", 1))
		}, ErrMissing},
		{"tampered status", func(r *http.Request, _ *Verifier) { r.Header.Set(HeaderStatus, "REFUSED") }, ErrInvalid},
		{"tampered amount", func(r *http.Request, _ *Verifier) { r.Header.Set(HeaderAmount, "100") }, ErrInvalid},
		{"other method", func(r *http.Request, _ *Verifier) { r.Method = "GET" }, ErrInvalid},
		{"wrong key", func(_ *http.Request, v *Verifier) { v.Keys["shop1"] = key2 }, ErrInvalid},
		{"unknown keyid", func(_ *http.Request, v *Verifier) { v.Keys = map[string][]byte{"shop2": key1} }, ErrInvalid},
		{"no keys", func(_ *http.Request, v *Verifier) { v.Keys = nil }, ErrInvalid},
		{"alg from message", replaceParam(`alg="hmac-sha256"`, `alg="rsa-pss-sha512"`), ErrInvalid},
		{"return tag replayed as delivery", replaceParam(`tag="cinetpay-notify"`, `tag="cinetpay-return"`), ErrInvalid},
		{"verifier without tag", func(_ *http.Request, v *Verifier) { v.Tag = "" }, ErrInvalid},
		{"no created", replaceParam(`created=1764072000;`, ``), ErrInvalid},
		{"no expires", replaceParam(`expires=1764072300;`, ``), ErrInvalid},
		{"expired", func(_ *http.Request, v *Verifier) {
			v.Now = func() time.Time { return now.Add(Validity + 61*time.Second) }
		}, ErrInvalid},
		{"created in the future", func(_ *http.Request, v *Verifier) {
			v.Now = func() time.Time { return now.Add(-61 * time.Second) }
		}, ErrInvalid},
		{"sandbox refused by default", func(r *http.Request, _ *Verifier) {
			*r = *signed(t, delivery("sandbox"), TagNotify, now)
		}, ErrInvalid},
		{"status not covered", func(r *http.Request, _ *Verifier) {
			h := delivery("live")
			h.Del(HeaderStatus)
			*r = *signed(t, h, TagNotify, now)
			r.Header.Set(HeaderStatus, "ACCEPTED")
		}, ErrInvalid},
		{"event id not covered on a delivery", func(r *http.Request, _ *Verifier) {
			h := delivery("live")
			h.Del(HeaderEventID)
			*r = *signed(t, h, TagNotify, now)
		}, ErrInvalid},
		{"uncovered cinetpay header added", func(r *http.Request, _ *Verifier) { r.Header.Set(HeaderOperatorID, "X") }, ErrInvalid},
		{"uncovered underscore header added", func(r *http.Request, _ *Verifier) { r.Header["Cinetpay_status"] = []string{"ACCEPTED"} }, ErrInvalid},
		{"covered header repeated", func(r *http.Request, _ *Verifier) { r.Header.Add(HeaderOrderID, "order-43") }, ErrInvalid},
		{"signature not bytes", func(r *http.Request, _ *Verifier) { r.Header.Set("Signature", `cinetpay="abc"`) }, ErrMalformed},
		{"garbage input", func(r *http.Request, _ *Verifier) { r.Header.Set("Signature-Input", `cinetpay=("@method"`) }, ErrMalformed},
		{"component with parameters", replaceParam(`"cinetpay-status"`, `"cinetpay-status";sf`), ErrMalformed},
		{"repeated component", replaceParam(`"cinetpay-status"`, `"cinetpay-status" "cinetpay-status"`), ErrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := signed(t, delivery("live"), TagNotify, now)
			v := verifier(TagNotify)
			c.mutate(r, v)
			res, err := v.Verify(r)
			if !errors.Is(err, c.want) || res != nil {
				t.Fatalf("got %v (%v), want %v", err, res, c.want)
			}
			if strings.Contains(err.Error(), string(key1)) || strings.Contains(err.Error(), string(key2)) {
				t.Fatal("key in error")
			}
		})
	}
}

func TestReturnTag(t *testing.T) {
	h := delivery("live")
	h.Del(HeaderEventID)
	h.Set(HeaderStatus, "PENDING")
	r := signed(t, h, TagReturn, now)
	if _, err := verifier(TagReturn).Verify(r); err != nil {
		t.Fatal(err)
	}
	if _, err := verifier(TagNotify).Verify(r); !errors.Is(err, ErrInvalid) {
		t.Fatalf("return page accepted as a delivery: %v", err)
	}
}

func TestSignReplacesClientSignatures(t *testing.T) {
	h := delivery("live")
	h["Signature_input"] = []string{`cinetpay=("@method");created=1;expires=2;keyid="shop1";tag="cinetpay-notify"`}
	h.Set("Content-Digest", "sha-256=:x:")
	h.Set("signature", "cinetpay=:AAAA:")
	r := signed(t, h, TagNotify, now)
	if len(r.Header.Values("Signature")) != 1 || r.Header.Get("Content-Digest") != "" || r.Header.Get("Signature_input") != "" {
		t.Fatalf("%v", r.Header)
	}
	if _, err := verifier(TagNotify).Verify(r); err != nil {
		t.Fatal(err)
	}
}

func TestParseDictionary(t *testing.T) {
	for _, s := range []string{
		`a=1, b=2;x=?0, c=("x" "y");p=:AAE=:, d, e=tok/en:1, f=-1.5, g="q\"\\"`,
		``,
	} {
		if _, err := parseDictionary(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{`A=1`, `a=`, `a=1,`, `a=(1`, `a="x`, `a=:@@:`, `a=1.2345`, `a=1234567890123456`, `a=?2`, `a="\x"`, "a=\"\x01\"", `a=1 b=2`, `a=-.5`, `a=-`, `a=1.`} {
		if _, err := parseDictionary(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
}

func FuzzVerify(f *testing.F) {
	r := signed(&testing.T{}, delivery("live"), TagNotify, now)
	f.Add(r.Header.Get("Signature-Input"), r.Header.Get("Signature"), "ACCEPTED")
	f.Add(`cinetpay=("@method");created=1`, `cinetpay=:AAAA:`, "")
	f.Add(`cinetpay=(`, `x`, "\x00")
	f.Fuzz(func(t *testing.T, input, sig, status string) {
		h := delivery("live")
		h.Set("Signature-Input", input)
		h.Set("Signature", sig)
		h.Set(HeaderStatus, status)
		req, _ := http.NewRequest("POST", "/", nil)
		req.Header = h
		res, err := verifier(TagNotify).Verify(req)
		if err == nil && (res == nil || res.Status != status) {
			t.Fatalf("verified %+v", res)
		}
		if err == nil && (input != r.Header.Get("Signature-Input") || status != "ACCEPTED") {
			// only the genuine signature can verify
			if !strings.Contains(input, "cinetpay=") {
				t.Fatalf("verified without the label: %q", input)
			}
		}
	})
}

func BenchmarkSign(b *testing.B) {
	s := Signer{KeyID: "shop1", Key: key1}
	h := delivery("live")
	for b.Loop() {
		if err := s.Sign("POST", h, TagNotify, "evt1", now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	r := signed(&testing.T{}, delivery("live"), TagNotify, now)
	v := verifier(TagNotify)
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseDictionary(f *testing.F) {
	f.Add(`cinetpay=("@method" "cinetpay-status");created=1;keyid="k";tag="t"`)
	f.Add(`a=1, b=?0, c=:AAE=:, d=tok/en, e=-1.5, f="x\"y"`)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDictionary(s)
		if err != nil {
			return
		}
		// what parses serializes to something that parses to the same members
		for k, m := range d {
			var b strings.Builder
			b.WriteString(k + "=")
			if m.isList {
				serializeInnerList(&b, m.list, m.params)
			} else {
				serializeItem(&b, m.item)
				serializeParams(&b, m.params)
			}
			again, err := parseDictionary(b.String())
			if err != nil {
				t.Fatalf("%q reserialized as %q: %v", s, b.String(), err)
			}
			if len(again[k].list) != len(m.list) || len(again[k].params) != len(m.params) {
				t.Fatalf("%q: %+v became %+v", s, m, again[k])
			}
		}
	})
}
