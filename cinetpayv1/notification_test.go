package cinetpayv1

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const (
	ctForm = "application/x-www-form-urlencoded"
	ctJSON = "application/json"
)

// notificationJSON is the fact sheet's notification example.
const notificationJSON = `{"notify_token": "4bbd93ce1824ca005b8df92069a6b56cca005b8",
 "merchant_transaction_id": "63e0fe766f390",
 "transaction_id": "50901a80c84b4edcb4f50ae864bfa7c5",
 "user": {"name": "Jaqn HGHAR", "email": "jaqen@gmail.com", "phone_number": "+2250700356615"}}`

func TestParseNotification(t *testing.T) {
	ids := Notification{NotifyToken: "nt", MerchantTransactionID: "m1", TransactionID: "t1"}
	withUser := func(u User) Notification { n := ids; n.User = &u; return n }
	tests := []struct {
		name        string
		contentType string
		body        string
		want        Notification
		err         error
		errHas      string // the error names this field
	}{
		{"example", ctJSON, notificationJSON, Notification{
			NotifyToken: "4bbd93ce1824ca005b8df92069a6b56cca005b8", MerchantTransactionID: "63e0fe766f390",
			TransactionID: "50901a80c84b4edcb4f50ae864bfa7c5",
			User:          &User{Name: "Jaqn HGHAR", Email: "jaqen@gmail.com", PhoneNumber: "+2250700356615"}}, nil, ""},
		{"json without user", ctJSON, `{"notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1"}`, ids, nil, ""},
		{"json user null", ctJSON, `{"notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1","user":null}`, ids, nil, ""},
		{"json user empty", ctJSON, `{"notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1","user":{}}`, withUser(User{}), nil, ""},
		{"json user null values and extras", ctJSON, `{"notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1","user":{"name":null,"email":"e@x.ci","id":7,"tags":[1,{"a":2}]}}`, withUser(User{Email: "e@x.ci"}), nil, ""},
		{"json user cleaned", ctJSON, `{"notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1","user":{"name":" A\u0000\n B "}}`, withUser(User{Name: "A B"}), nil, ""},
		{"json user too long", ctJSON, `{"notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1","user":{"name":"` + strings.Repeat("x", 256) + `"}}`, withUser(User{}), nil, ""},
		{"json extra keys ignored", ctJSON, `{"status":"SUCCESS","amount":1000,"notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1","x":{"y":[null]}}`, ids, nil, ""},
		{"json charset", ctJSON + "; charset=utf-8", `{"notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1"}`, ids, nil, ""},
		{"json sniffed", "", ` {"notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1"} `, ids, nil, ""},
		{"json under text/plain", "text/plain", `{"notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1"}`, ids, nil, ""},
		{"json +json type", "application/vnd.cinetpay+json", `{"notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1"}`, ids, nil, ""},
		{"json values kept as sent", ctJSON, `{"notify_token":" nt ","merchant_transaction_id":"m1","transaction_id":"t1"}`, Notification{NotifyToken: " nt ", MerchantTransactionID: "m1", TransactionID: "t1"}, nil, ""},

		{"form", ctForm, "notify_token=nt&merchant_transaction_id=m1&transaction_id=t1", ids, nil, ""},
		{"form sniffed", "", "notify_token=nt&merchant_transaction_id=m1&transaction_id=t1&other=1", ids, nil, ""},
		{"form user", ctForm, "notify_token=nt&merchant_transaction_id=m1&transaction_id=t1&user%5Bname%5D=Doe+John&user[phone_number]=%2B2250707000000", withUser(User{Name: "Doe John", PhoneNumber: "+2250707000000"}), nil, ""},
		{"form type wins over a leading {", ctForm, `{"notify_token":"nt"}`, Notification{}, ErrMissingField, "notify_token"},

		{"json missing notify_token", ctJSON, `{"merchant_transaction_id":"m1","transaction_id":"t1"}`, Notification{}, ErrMissingField, "notify_token"},
		{"json empty notify_token", ctJSON, `{"notify_token":"","merchant_transaction_id":"m1","transaction_id":"t1"}`, Notification{}, ErrMissingField, "notify_token"},
		{"json missing merchant_transaction_id", ctJSON, `{"notify_token":"nt","transaction_id":"t1"}`, Notification{}, ErrMissingField, "merchant_transaction_id"},
		{"json missing transaction_id", ctJSON, `{"notify_token":"nt","merchant_transaction_id":"m1"}`, Notification{}, ErrMissingField, "transaction_id"},
		{"json empty object", ctJSON, `{}`, Notification{}, ErrMissingField, "notify_token"},
		{"form missing transaction_id", ctForm, "notify_token=nt&merchant_transaction_id=m1", Notification{}, ErrMissingField, "transaction_id"},

		{"json repeated key", ctJSON, `{"notify_token":"a","notify_token":"b","merchant_transaction_id":"m1","transaction_id":"t1"}`, Notification{}, ErrRepeatedField, "notify_token"},
		{"json repeated through escapes", ctJSON, `{"transaction_id":"t1","transaction\u005fid":"t2","notify_token":"nt","merchant_transaction_id":"m1"}`, Notification{}, ErrRepeatedField, "transaction_id"},
		{"json repeated unknown key", ctJSON, `{"x":1,"x":2,"notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1"}`, Notification{}, ErrRepeatedField, `"x"`},
		{"json repeated user", ctJSON, `{"user":{},"user":{},"notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1"}`, Notification{}, ErrRepeatedField, "user"},
		{"json repeated in user", ctJSON, `{"user":{"name":"a","name":"b"},"notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1"}`, Notification{}, ErrRepeatedField, "user.\"name\""},
		{"form repeated", ctForm, "notify_token=a&notify_token=b&merchant_transaction_id=m1&transaction_id=t1", Notification{}, ErrRepeatedField, "notify_token"},
		{"form repeated unknown", ctForm, "x=1&x=2&notify_token=nt&merchant_transaction_id=m1&transaction_id=t1", Notification{}, ErrRepeatedField, `"x"`},
		{"form repeated through encoding", ctForm, "notify_token=a&notify%5Ftoken=b", Notification{}, ErrRepeatedField, "notify_token"},

		{"json number id", ctJSON, `{"notify_token":"nt","merchant_transaction_id":123,"transaction_id":"t1"}`, Notification{}, ErrMalformedBody, "merchant_transaction_id"},
		{"json null id", ctJSON, `{"notify_token":null,"merchant_transaction_id":"m1","transaction_id":"t1"}`, Notification{}, ErrMalformedBody, "notify_token"},
		{"json object id", ctJSON, `{"notify_token":{"a":"b"},"merchant_transaction_id":"m1","transaction_id":"t1"}`, Notification{}, ErrMalformedBody, "notify_token"},
		{"json user string", ctJSON, `{"user":"x","notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1"}`, Notification{}, ErrMalformedBody, "user"},
		{"json user number field", ctJSON, `{"user":{"phone_number":2250707},"notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1"}`, Notification{}, ErrMalformedBody, "user.phone_number"},
		{"json id with control", ctJSON, `{"notify_token":"n\u0000t","merchant_transaction_id":"m1","transaction_id":"t1"}`, Notification{}, ErrMalformedBody, "notify_token"},
		{"json id too long", ctJSON, `{"notify_token":"` + strings.Repeat("n", 256) + `","merchant_transaction_id":"m1","transaction_id":"t1"}`, Notification{}, ErrMalformedBody, "notify_token"},
		{"json array", ctJSON, `[{"notify_token":"nt"}]`, Notification{}, ErrMalformedBody, ""},
		{"json trailing data", ctJSON, `{"notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1"} {}`, Notification{}, ErrMalformedBody, ""},
		{"json truncated", ctJSON, `{"notify_token":"nt"`, Notification{}, ErrMalformedBody, ""},
		{"json invalid UTF-8", ctJSON, "{\"notify_token\":\"\xff\",\"merchant_transaction_id\":\"m1\",\"transaction_id\":\"t1\"}", Notification{}, ErrMalformedBody, ""},
		{"json under form-looking body", ctJSON, "notify_token=nt", Notification{}, ErrMalformedBody, ""},
		{"form bad percent", ctForm, "notify_token=%zz&merchant_transaction_id=m1&transaction_id=t1", Notification{}, ErrMalformedBody, "notify_token"},
		{"form encoded invalid UTF-8", ctForm, "notify_token=%FF&merchant_transaction_id=m1&transaction_id=t1", Notification{}, ErrMalformedBody, ""},
		{"form empty name", ctForm, "=1&notify_token=nt", Notification{}, ErrMalformedBody, ""},

		{"empty", ctJSON, "", Notification{}, ErrEmptyBody, ""},
		{"white space", "", " \r\n\t", Notification{}, ErrEmptyBody, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNotification(tt.contentType, []byte(tt.body))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if !reflect.DeepEqual(got, Notification{}) {
					t.Errorf("notification %+v returned with an error", got)
				}
				if tt.errHas != "" && !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("error %q does not name %s", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v %+v\nwant %#v %+v", got, got.User, tt.want, tt.want.User)
			}
		})
	}
}

func TestParseNotificationSizeLimit(t *testing.T) {
	base := `{"notify_token":"nt","merchant_transaction_id":"m1","transaction_id":"t1","pad":"`
	exact := base + strings.Repeat("x", MaxNotificationBody-len(base)-2) + `"}`
	if _, err := ParseNotification(ctJSON, []byte(exact)); err != nil {
		t.Errorf("a body of exactly MaxNotificationBody: %v", err)
	}
	_, err := ParseNotification(ctJSON, []byte(exact+" "))
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("one byte over: %v", err)
	}
	if _, err := ParseNotification("", []byte(strings.Repeat(" ", 2*MaxNotificationBody))); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("huge white space: %v", err)
	}
}

// Errors name the field, never its value; a Notification prints without its
// token.
func TestNotificationErrorsOmitValues(t *testing.T) {
	for ct, body := range map[string]string{
		ctJSON: `{"notify_token":"` + testNotifyToken + `","notify_token":"` + testNotifyToken + `"}`,
		ctForm: "notify_token=" + testNotifyToken + "&notify_token=" + testNotifyToken,
	} {
		_, err := ParseNotification(ct, []byte(body))
		if !errors.Is(err, ErrRepeatedField) {
			t.Fatalf("%s: %v", ct, err)
		}
		assertNoSecret(t, err)
	}
	for _, body := range []string{
		`{"notify_token":"` + testNotifyToken + `"}`,
		`{"notify_token":"` + testNotifyToken + `\u0001","merchant_transaction_id":"m1","transaction_id":"t1"}`,
		`{"notify_token":"` + testNotifyToken + `","merchant_transaction_id":7}`,
	} {
		_, err := ParseNotification(ctJSON, []byte(body))
		if err == nil {
			t.Fatalf("%s: no error", body)
		}
		assertNoSecret(t, err)
	}
	n, err := ParseNotification(ctJSON, []byte(`{"notify_token":"`+testNotifyToken+`","merchant_transaction_id":"m1","transaction_id":"t1"}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(n), fmt.Sprintf("%+v", n), fmt.Sprintf("%#v", n), fmt.Sprintf("%v", &n)} {
		if strings.Contains(s, testNotifyToken) || !strings.Contains(s, "m1") {
			t.Errorf("Notification prints as %s", s)
		}
	}
}

func TestValidNotifyToken(t *testing.T) {
	tests := []struct {
		stored, received string
		want             bool
	}{
		{"4bbd93ce1824ca005b8df92069a6b56cca005b8", "4bbd93ce1824ca005b8df92069a6b56cca005b8", true},
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"abc", "abcd", false},
		{"abc", "ABC", false},
		{"abc", " abc", false},
		{"", "", false},
		{"abc", "", false},
		{"", "abc", false},
	}
	for _, tt := range tests {
		if got := ValidNotifyToken(tt.stored, tt.received); got != tt.want {
			t.Errorf("ValidNotifyToken(%q, %q) = %v", tt.stored, tt.received, got)
		}
	}
}

func TestMerchantTransactionIDOf(t *testing.T) {
	for _, c := range []struct{ ct, body, want string }{
		{ctJSON, `{"merchant_transaction_id":"m1","transaction_id":"t1"}`, "m1"},
		{ctForm, "merchant_transaction_id=m1", "m1"},
		{ctJSON, `{"notify_token":"nt"}`, ""},
		{ctJSON, `{"merchant_transaction_id":"m1","merchant_transaction_id":"m2"}`, ""},
		{ctJSON, `not json`, ""},
		{ctJSON, `{"merchant_transaction_id":"` + strings.Repeat("x", 300) + `"}`, ""},
	} {
		if got := MerchantTransactionIDOf(c.ct, []byte(c.body)); got != c.want {
			t.Errorf("%s: %q, want %q", c.body, got, c.want)
		}
	}
}
