package cinetpay

import (
	"errors"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseNotification(f *testing.F) {
	f.Add(ctForm, []byte("cpm_site_id=123456&cpm_trans_id=tx1&cpm_amount=1000&cpm_custom=%7B%22a%22%3A1%7D"))
	f.Add("", []byte("a=1&&b=+x+&c"))
	f.Add(ctForm, []byte("a=1&a=2"))
	f.Add(ctForm, []byte("a=%zz&%C3%28=1"))
	f.Add(ctJSON, []byte(`{"cpm_trans_id":"tx1","cpm_amount":"1000","x":"\u00e9\ud800"}`))
	f.Add("", []byte(`{"a":"1","a":"2"}`))
	f.Add(ctJSON, []byte(`{"a":{"b":[1,2,{"c":null}]}}`))
	f.Add("text/plain; charset=latin1", []byte("\xff=\xfe"))
	f.Add("application/problem+json", []byte(" \r\n"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		fields, err := ParseNotification(contentType, body)
		if err != nil {
			if fields != nil {
				t.Fatalf("fields %v with error %v", fields, err)
			}
			if !errors.Is(err, ErrEmptyBody) && !errors.Is(err, ErrRepeatedField) && !errors.Is(err, ErrMalformedBody) {
				t.Fatalf("error %v is none of the sentinels", err)
			}
			if len(err.Error()) > 300 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		if len(body) > MaxNotificationBody {
			t.Fatalf("accepted a body of %d bytes", len(body))
		}
		for k, v := range fields {
			if k == "" || !utf8.ValidString(k) || !utf8.ValidString(v) {
				t.Fatalf("bad field %q=%q", k, v)
			}
		}
		if len(fields) == 0 {
			return
		}
		// Re-encoded as a form, the fields parse back to the same map, with
		// and without a content type.
		form := url.Values{}
		for k, v := range fields {
			form.Set(k, v)
		}
		enc := form.Encode()
		if len(enc) > MaxNotificationBody {
			return
		}
		for _, ct := range []string{ctForm, ""} {
			again, err := ParseNotification(ct, []byte(enc))
			if err != nil {
				t.Fatalf("re-encoded form %q (content type %q): %v", enc, ct, err)
			}
			if !reflect.DeepEqual(again, fields) {
				t.Fatalf("round trip changed the fields:\n%q\n%q", fields, again)
			}
		}
	})
}

func FuzzXToken(f *testing.F) {
	f.Add("test-secret-key-not-real", "123456", "tx1", "1000", "", "SUCCES", "d60a0d616c9f819fea52d9601f678b2da8fa294e8f3e78da0da3f70aecd24634")
	f.Add("k", "", "", "", "None", "undefined", "")
	f.Add("", "a", "b", "c", "d", "e", "zz")
	f.Fuzz(func(t *testing.T, secret, site, trans, amount, custom, errMsg, token string) {
		fields := map[string]string{
			"cpm_site_id":       site,
			"cpm_trans_id":      trans,
			"cpm_amount":        amount,
			"cpm_custom":        custom,
			"cpm_error_message": errMsg,
		}
		tok := XToken(secret, fields)
		if len(tok) != 64 || strings.ToLower(tok) != tok || strings.Trim(tok, "0123456789abcdef") != "" {
			t.Fatalf("XToken = %q", tok)
		}
		// Missing fields are the empty string.
		explicit := map[string]string{}
		for _, name := range XTokenFields {
			explicit[name] = fields[name]
		}
		if XToken(secret, explicit) != tok {
			t.Fatal("missing and empty fields differ")
		}
		if secret != "" {
			if !ValidXToken(secret, fields, tok) || !ValidXToken(secret, fields, strings.ToUpper(tok)) {
				t.Fatal("own token refused")
			}
			changed := map[string]string{}
			for k, v := range fields {
				changed[k] = v
			}
			changed["cpm_amount"] += "0"
			if ValidXToken(secret, changed, tok) {
				t.Fatal("token valid for a changed amount")
			}
			if ValidXToken(secret, fields, tok[:63]) || ValidXToken(secret, fields, tok+"0") {
				t.Fatal("token of the wrong length accepted")
			}
		}
		// An arbitrary token is valid only if it is the token, in any case.
		if ValidXToken(secret, fields, token) && (secret == "" || !strings.EqualFold(token, tok)) {
			t.Fatalf("token %q accepted, want %q", token, tok)
		}
	})
}

func FuzzIntAmount(f *testing.F) {
	for _, s := range []string{"100", "100.00", "100.5", "", "abc", "-1", "9223372036854775808", " 7 ", "00.000", "1e3", "+5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := (&PaymentData{Amount: s}).IntAmount()
		canon, number := (&PaymentData{Amount: s}).CanonicalAmount()
		if ok && (!number || canon != strconv.FormatInt(n, 10)) {
			t.Fatalf("CanonicalAmount(%q) = %q, %v; IntAmount %d", s, canon, number, n)
		}
		if number {
			// canonical text is a fixed point, and means the same integer
			again, _ := (&PaymentData{Amount: canon}).CanonicalAmount()
			if again != canon || strings.HasPrefix(canon, "00") || strings.HasSuffix(canon, "0") && strings.Contains(canon, ".") {
				t.Fatalf("CanonicalAmount(%q) = %q, then %q", s, canon, again)
			}
			if m, isInt := (&PaymentData{Amount: canon}).IntAmount(); isInt != ok || m != n {
				t.Fatalf("CanonicalAmount(%q) = %q changes the integer: %d/%v vs %d/%v", s, canon, m, isInt, n, ok)
			}
		}
		trimmed := strings.TrimSpace(s)
		whole, frac, hasDot := strings.Cut(trimmed, ".")
		if !ok {
			if n != 0 {
				t.Fatalf("IntAmount(%q) = %d, false", s, n)
			}
			// A short run of digits must be accepted.
			if !hasDot && whole != "" && len(whole) <= 18 && strings.Trim(whole, "0123456789") == "" {
				t.Fatalf("IntAmount(%q) refused", s)
			}
			return
		}
		if n < 0 {
			t.Fatalf("IntAmount(%q) = %d", s, n)
		}
		if hasDot && (frac == "" || strings.Trim(frac, "0") != "") {
			t.Fatalf("IntAmount(%q) accepted a fraction", s)
		}
		canonical := strings.TrimLeft(whole, "0")
		if canonical == "" {
			canonical = "0"
		}
		if strconv.FormatInt(n, 10) != canonical {
			t.Fatalf("IntAmount(%q) = %d", s, n)
		}
	})
}

// FuzzCheckAnswer feeds arbitrary answers to the decoders CheckPayment and
// InitPayment use: no panic, and a usable result always has a status.
func FuzzCheckAnswer(f *testing.F) {
	f.Add([]byte(acceptedAnswer))
	f.Add([]byte(refusedAnswer))
	f.Add([]byte(createdBody))
	f.Add([]byte(`{"code":0,"data":[]}`))
	f.Add([]byte("\xef\xbb\xbf{\"code\":\"00\",\"data\":{\"status\":{\"a\":1},\"amount\":1e400}}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		w, ok, err := decodeAnswer(body)
		if ok != (err == nil) {
			t.Fatalf("ok = %v, err = %v", ok, err)
		}
		if !ok {
			return
		}
		if w.Code == "" || strings.TrimSpace(string(w.Code)) != string(w.Code) {
			t.Fatalf("readable answer with code %q", w.Code)
		}
		if d := decodePaymentData(w.Data); d != nil {
			r := &CheckResult{Code: string(w.Code), Data: d}
			if r.Verdict() == VerdictAccepted && (r.Code != "00" || d.Status != "ACCEPTED") {
				t.Fatalf("accepted %q / %q", r.Code, d.Status)
			}
			d.IntAmount()
		}
	})
}
