package cinetpay

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

const (
	ctForm = "application/x-www-form-urlencoded"
	ctJSON = "application/json"
)

func TestParseNotification(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		want        map[string]string
		err         error
		errHas      string // the error text names this field
	}{
		{"form", ctForm, "cpm_site_id=123456&cpm_trans_id=tx1&cpm_amount=1000",
			map[string]string{"cpm_site_id": "123456", "cpm_trans_id": "tx1", "cpm_amount": "1000"}, nil, ""},
		{"form with charset", ctForm + "; charset=UTF-8", "a=1", map[string]string{"a": "1"}, nil, ""},
		{"form content type in capitals", "Application/X-WWW-Form-Urlencoded", "a=1", map[string]string{"a": "1"}, nil, ""},
		{"form without content type", "", "a=1&b=2", map[string]string{"a": "1", "b": "2"}, nil, ""},
		{"form with unknown content type", "text/plain", "a=1", map[string]string{"a": "1"}, nil, ""},
		{"form with unparsable content type", ";;;", "a=1", map[string]string{"a": "1"}, nil, ""},
		{"form decoding", ctForm, "cpm_designation=Commande+42&cpm_custom=%7B%22order%22%3A%2242%22%7D&cpm_trans_date=2024-05-01%2012%3A34%3A56&e=caf%C3%A9",
			map[string]string{"cpm_designation": "Commande 42", "cpm_custom": `{"order":"42"}`, "cpm_trans_date": "2024-05-01 12:34:56", "e": "café"}, nil, ""},
		{"form empty values and bare names", ctForm, "cpm_custom=&cpm_error_message", map[string]string{"cpm_custom": "", "cpm_error_message": ""}, nil, ""},
		{"form empty pairs skipped", ctForm, "&a=1&&b=2&", map[string]string{"a": "1", "b": "2"}, nil, ""},
		{"form surrounding white space", ctForm, "\r\n a=1&b=2\r\n", map[string]string{"a": "1", "b": "2"}, nil, ""},
		{"form names are case-sensitive", ctForm, "cpm_amount=1&CPM_AMOUNT=2", map[string]string{"cpm_amount": "1", "CPM_AMOUNT": "2"}, nil, ""},
		{"form value with = and ;", ctForm, "a=b=c;d", map[string]string{"a": "b=c;d"}, nil, ""},
		{"form type wins over a leading {", ctForm, `{"a":"b"}`, map[string]string{`{"a":"b"}`: ""}, nil, ""},

		{"form repeated field", ctForm, "cpm_amount=1000&cpm_trans_id=tx1&cpm_amount=5", nil, ErrRepeatedField, "cpm_amount"},
		{"form repeated field same value", ctForm, "a=1&a=1", nil, ErrRepeatedField, `"a"`},
		{"form repeated through encoding", ctForm, "cpm_amount=1&cpm%5Famount=2", nil, ErrRepeatedField, "cpm_amount"},
		{"form PHP array", ctForm, "a[]=1&a[]=2", nil, ErrRepeatedField, "a[]"},
		{"form bad percent in value", ctForm, "a=%zz", nil, ErrMalformedBody, `"a"`},
		{"form truncated percent", ctForm, "a=1%4", nil, ErrMalformedBody, ""},
		{"form bad percent in name", ctForm, "%g1=1", nil, ErrMalformedBody, ""},
		{"form empty name", ctForm, "=1", nil, ErrMalformedBody, ""},
		{"form raw invalid UTF-8 value", ctForm, "a=\xff\xfe", nil, ErrMalformedBody, ""},
		{"form encoded invalid UTF-8 value", ctForm, "a=%FF", nil, ErrMalformedBody, ""},
		{"form encoded invalid UTF-8 name", ctForm, "%C3%28=1", nil, ErrMalformedBody, ""},
		{"form overlong UTF-8", ctForm, "a=%C0%AF", nil, ErrMalformedBody, ""},
		{"form surrogate in UTF-8", ctForm, "a=%ED%A0%80", nil, ErrMalformedBody, ""},

		{"json", ctJSON, `{"cpm_trans_id":"tx1","cpm_amount":"1000"}`, map[string]string{"cpm_trans_id": "tx1", "cpm_amount": "1000"}, nil, ""},
		{"json with charset", ctJSON + "; charset=utf-8", `{"a":"1"}`, map[string]string{"a": "1"}, nil, ""},
		{"json problem type", "application/problem+json", `{"a":"1"}`, map[string]string{"a": "1"}, nil, ""},
		{"json sniffed", "", ` {"a":"1","b":"caf\u00e9 \"q\""}`, map[string]string{"a": "1", "b": `café "q"`}, nil, ""},
		{"json sniffed under text/plain", "text/plain", `{"a":"1"}`, map[string]string{"a": "1"}, nil, ""},
		{"json empty object", ctJSON, `{}`, map[string]string{}, nil, ""},
		{"json names are case-sensitive", ctJSON, `{"a":"1","A":"2"}`, map[string]string{"a": "1", "A": "2"}, nil, ""},
		{"json repeated key", ctJSON, `{"cpm_amount":"1000","cpm_amount":"5"}`, nil, ErrRepeatedField, "cpm_amount"},
		{"json repeated key through escapes", ctJSON, `{"ab":"1","\u0061b":"2"}`, nil, ErrRepeatedField, `"ab"`},
		{"json number", ctJSON, `{"cpm_amount":1000}`, nil, ErrMalformedBody, "cpm_amount"},
		{"json null", ctJSON, `{"cpm_custom":null}`, nil, ErrMalformedBody, "cpm_custom"},
		{"json bool", ctJSON, `{"a":true}`, nil, ErrMalformedBody, ""},
		{"json object value", ctJSON, `{"a":{"b":"c"}}`, nil, ErrMalformedBody, ""},
		{"json array value", ctJSON, `{"a":["b"]}`, nil, ErrMalformedBody, ""},
		{"json top-level array", ctJSON, `["a","b"]`, nil, ErrMalformedBody, ""},
		{"json top-level string", ctJSON, `"a=1"`, nil, ErrMalformedBody, ""},
		{"json trailing data", ctJSON, `{"a":"1"} {"b":"2"}`, nil, ErrMalformedBody, ""},
		{"json trailing garbage", ctJSON, `{"a":"1"}x`, nil, ErrMalformedBody, ""},
		{"json truncated", ctJSON, `{"a":"1"`, nil, ErrMalformedBody, ""},
		{"json trailing comma", ctJSON, `{"a":"1",}`, nil, ErrMalformedBody, ""},
		{"json empty key", ctJSON, `{"":"1"}`, nil, ErrMalformedBody, ""},
		{"json invalid UTF-8", ctJSON, "{\"a\":\"\xff\"}", nil, ErrMalformedBody, ""},
		{"json invalid UTF-8 key", "", "{\"\xc3\x28\":\"1\"}", nil, ErrMalformedBody, ""},
		{"json under form-looking body", ctJSON, "a=1", nil, ErrMalformedBody, ""},

		{"empty", ctForm, "", nil, ErrEmptyBody, ""},
		{"empty json", ctJSON, "", nil, ErrEmptyBody, ""},
		{"white space", "", " \t\r\n ", nil, ErrEmptyBody, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNotification(tt.contentType, []byte(tt.body))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if got != nil {
					t.Errorf("fields %v returned with an error", got)
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
				t.Errorf("fields = %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

// Errors name the field, never its value.
func TestParseNotificationErrorsOmitValues(t *testing.T) {
	bodies := map[string]string{
		ctForm: "cpm_amount=SECRETVALUE1&cpm_amount=SECRETVALUE2",
		ctJSON: `{"cpm_amount":"SECRETVALUE1","cpm_amount":"SECRETVALUE2"}`,
	}
	for ct, body := range bodies {
		_, err := ParseNotification(ct, []byte(body))
		if !errors.Is(err, ErrRepeatedField) {
			t.Fatalf("%s: err = %v", ct, err)
		}
		if strings.Contains(err.Error(), "SECRETVALUE") {
			t.Errorf("%s: error contains a value: %q", ct, err)
		}
		if !strings.Contains(err.Error(), "cpm_amount") {
			t.Errorf("%s: error does not name the field: %q", ct, err)
		}
	}
	_, err := ParseNotification(ctForm, []byte("a=SECRET%zz"))
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("bad encoding: %v", err)
	}
	long := strings.Repeat("n", 5000)
	_, err = ParseNotification(ctForm, []byte(long+"=1&"+long+"=2"))
	if !errors.Is(err, ErrRepeatedField) || len(err.Error()) > 200 {
		t.Errorf("long name: error %d bytes: %v", len(err.Error()), err)
	}
}

func TestParseNotificationSizeLimit(t *testing.T) {
	exact := "a=" + strings.Repeat("x", MaxNotificationBody-2)
	got, err := ParseNotification(ctForm, []byte(exact))
	if err != nil || len(got["a"]) != MaxNotificationBody-2 {
		t.Errorf("a body of exactly MaxNotificationBody: %v", err)
	}
	_, err = ParseNotification(ctForm, []byte(exact+"x"))
	if !errors.Is(err, ErrMalformedBody) {
		t.Errorf("one byte over: err = %v", err)
	}
	huge := strings.Repeat(" ", 10*MaxNotificationBody)
	if _, err := ParseNotification("", []byte(huge)); !errors.Is(err, ErrMalformedBody) {
		t.Errorf("huge white-space body: err = %v", err)
	}
	if _, err := ParseNotification(ctJSON, []byte(`{"a":"`+strings.Repeat("x", MaxNotificationBody)+`"}`)); !errors.Is(err, ErrMalformedBody) {
		t.Errorf("huge JSON: err = %v", err)
	}
}

// A real-shaped notification goes through the body parser and the x-token
// check; fields in the query string take no part.
func TestParseNotificationEndToEnd(t *testing.T) {
	v := loadXTokenVectors(t)
	for i, vec := range v.Vectors {
		form := url.Values{}
		for k, val := range vec.Fields {
			form.Set(k, val)
		}
		target := "/cinetpay/notify?cpm_amount=1&cpm_trans_id=evil&extra=1"
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", ctForm)
		req.Header.Set("X-Token", vec.XToken)

		body, err := io.ReadAll(http.MaxBytesReader(nil, req.Body, MaxNotificationBody))
		if err != nil {
			t.Fatal(err)
		}
		fields, err := ParseNotification(req.Header.Get("Content-Type"), body)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if !reflect.DeepEqual(fields, vec.Fields) {
			t.Errorf("vector %d: fields = %v\nwant %v", i, fields, vec.Fields)
		}
		if _, ok := fields["extra"]; ok || fields["cpm_trans_id"] == "evil" {
			t.Errorf("vector %d: query string leaked into the fields", i)
		}
		if !ValidXToken(vec.Secret, fields, req.Header.Get(XTokenHeader)) {
			t.Errorf("vector %d: x-token refused after parsing", i)
		}
	}
}
