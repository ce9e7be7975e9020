package cinetpayv1

import (
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"testing"
	"unicode/utf8"
)

func FuzzParseNotification(f *testing.F) {
	f.Add(ctJSON, []byte(notificationJSON))
	f.Add("", []byte(`{"notify_token":"a","merchant_transaction_id":"b","transaction_id":"c","user":{"name":"\u00e9\ud800"}}`))
	f.Add(ctJSON, []byte(`{"notify_token":"a","notify_token":"b"}`))
	f.Add(ctJSON, []byte(`{"a":{"b":[1,2,{"c":null}]},"user":null}`))
	f.Add(ctForm, []byte("notify_token=a&merchant_transaction_id=b&transaction_id=c&user%5Bname%5D=x"))
	f.Add(ctForm, []byte("notify_token=a&notify_token=b&%zz"))
	f.Add("text/plain; charset=latin1", []byte("\xff=\xfe"))
	f.Add("application/problem+json", []byte(" \r\n"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		n, err := ParseNotification(contentType, body)
		if err != nil {
			if !reflect.DeepEqual(n, Notification{}) {
				t.Fatalf("notification %+v with error %v", n, err)
			}
			sentinels := []error{ErrEmptyBody, ErrBodyTooLarge, ErrMalformedBody, ErrRepeatedField, ErrMissingField}
			found := false
			for _, s := range sentinels {
				found = found || errors.Is(err, s)
			}
			if !found {
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
		for _, v := range []string{n.NotifyToken, n.MerchantTransactionID, n.TransactionID} {
			if v == "" || len(v) > 255 || !utf8.ValidString(v) || hasControl(v) {
				t.Fatalf("bad id %q", v)
			}
		}
		// The same notification, sent again as JSON or as a form, parses to
		// the same result.
		obj := map[string]any{"notify_token": n.NotifyToken, "merchant_transaction_id": n.MerchantTransactionID, "transaction_id": n.TransactionID}
		form := url.Values{"notify_token": {n.NotifyToken}, "merchant_transaction_id": {n.MerchantTransactionID}, "transaction_id": {n.TransactionID}}
		if n.User != nil {
			obj["user"] = map[string]string{"name": n.User.Name, "email": n.User.Email, "phone_number": n.User.PhoneNumber}
			form.Set("user[name]", n.User.Name)
			form.Set("user[email]", n.User.Email)
			form.Set("user[phone_number]", n.User.PhoneNumber)
		}
		js, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		for _, again := range []struct {
			ct   string
			body []byte
		}{{ctJSON, js}, {"", js}, {ctForm, []byte(form.Encode())}, {"", []byte(form.Encode())}} {
			if len(again.body) > MaxNotificationBody {
				continue
			}
			m, err := ParseNotification(again.ct, again.body)
			if err != nil {
				t.Fatalf("re-encoded %q (%q): %v", again.body, again.ct, err)
			}
			if !reflect.DeepEqual(m, n) {
				t.Fatalf("round trip changed the notification:\n%#v %+v\n%#v %+v", n, n.User, m, m.User)
			}
		}
	})
}
