package cinetpayv1

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	if err := validRequest().Validate(); err != nil {
		t.Fatalf("valid request: %v", err)
	}
	s := strings.Repeat
	tests := []struct {
		name  string
		edit  func(r *PaymentRequest)
		field string // "" when valid
	}{
		{"minimal", func(r *PaymentRequest) { r.PaymentMethod, r.ClientPhoneNumber, r.Channel = "", "", "" }, ""},
		{"all currencies", func(r *PaymentRequest) { r.Currency = "USD" }, ""},
		{"XAF", func(r *PaymentRequest) { r.Currency = "XAF" }, ""},
		{"currency empty", func(r *PaymentRequest) { r.Currency = "" }, "currency"},
		{"currency lower case", func(r *PaymentRequest) { r.Currency = "xof" }, "currency"},
		{"currency EUR", func(r *PaymentRequest) { r.Currency = "EUR" }, "currency"},
		{"payment_method EXPRESSO_SN", func(r *PaymentRequest) { r.PaymentMethod = "EXPRESSO_SN" }, ""},
		{"payment_method unsuffixed", func(r *PaymentRequest) { r.PaymentMethod = "OM" }, "payment_method"},
		{"payment_method lower case", func(r *PaymentRequest) { r.PaymentMethod = "om_ci" }, "payment_method"},
		{"payment_method bad suffix", func(r *PaymentRequest) { r.PaymentMethod = "OM_C1" }, "payment_method"},
		{"payment_method double underscore", func(r *PaymentRequest) { r.PaymentMethod = "OM__CI" }, "payment_method"},
		{"payment_method only suffix", func(r *PaymentRequest) { r.PaymentMethod = "_CI" }, "payment_method"},
		{"id 1 char", func(r *PaymentRequest) { r.MerchantTransactionID = "a" }, ""},
		{"id 30 chars", func(r *PaymentRequest) { r.MerchantTransactionID = s("a", 30) }, ""},
		{"id 31 chars", func(r *PaymentRequest) { r.MerchantTransactionID = s("a", 31) }, "merchant_transaction_id"},
		{"id empty", func(r *PaymentRequest) { r.MerchantTransactionID = "" }, "merchant_transaction_id"},
		{"id blank", func(r *PaymentRequest) { r.MerchantTransactionID = "  " }, "merchant_transaction_id"},
		{"id control", func(r *PaymentRequest) { r.MerchantTransactionID = "a\nb" }, "merchant_transaction_id"},
		{"id bad UTF-8", func(r *PaymentRequest) { r.MerchantTransactionID = "a\xff" }, "merchant_transaction_id"},
		{"amount 100", func(r *PaymentRequest) { r.Amount = 100 }, ""},
		{"amount 2500000", func(r *PaymentRequest) { r.Amount = 2_500_000 }, ""},
		{"amount 99", func(r *PaymentRequest) { r.Amount = 99 }, "amount"},
		{"amount 2500001", func(r *PaymentRequest) { r.Amount = 2_500_001 }, "amount"},
		{"amount negative", func(r *PaymentRequest) { r.Amount = -1000 }, "amount"},
		{"lang en", func(r *PaymentRequest) { r.Lang = "en" }, ""},
		{"lang empty", func(r *PaymentRequest) { r.Lang = "" }, "lang"},
		{"lang FR", func(r *PaymentRequest) { r.Lang = "FR" }, "lang"},
		{"designation 1", func(r *PaymentRequest) { r.Designation = "x" }, ""},
		{"designation 255 runes", func(r *PaymentRequest) { r.Designation = s("é", 255) }, ""},
		{"designation 256", func(r *PaymentRequest) { r.Designation = s("x", 256) }, "designation"},
		{"designation empty", func(r *PaymentRequest) { r.Designation = "" }, "designation"},
		{"designation tab", func(r *PaymentRequest) { r.Designation = "a\tb" }, "designation"},
		{"designation bidi override", func(r *PaymentRequest) { r.Designation = "a\u202eb" }, "designation"},
		{"email plus", func(r *PaymentRequest) { r.ClientEmail = "a.b+c@sub.example.ci" }, ""},
		{"email empty", func(r *PaymentRequest) { r.ClientEmail = "" }, "client_email"},
		{"email no at", func(r *PaymentRequest) { r.ClientEmail = "example.com" }, "client_email"},
		{"email two ats", func(r *PaymentRequest) { r.ClientEmail = "a@b@c.com" }, "client_email"},
		{"email no dot", func(r *PaymentRequest) { r.ClientEmail = "a@localhost" }, "client_email"},
		{"email trailing dot only", func(r *PaymentRequest) { r.ClientEmail = "a@b." }, "client_email"},
		{"email leading dot only", func(r *PaymentRequest) { r.ClientEmail = "a@.b" }, "client_email"},
		{"email space", func(r *PaymentRequest) { r.ClientEmail = "a b@c.com" }, "client_email"},
		{"email no local part", func(r *PaymentRequest) { r.ClientEmail = "@c.com" }, "client_email"},
		{"email too long", func(r *PaymentRequest) { r.ClientEmail = s("a", 250) + "@c.com" }, "client_email"},
		{"first name 2", func(r *PaymentRequest) { r.ClientFirstName = "Jo" }, ""},
		{"first name 1", func(r *PaymentRequest) { r.ClientFirstName = "J" }, "client_first_name"},
		{"first name 256", func(r *PaymentRequest) { r.ClientFirstName = s("a", 256) }, "client_first_name"},
		{"last name 255", func(r *PaymentRequest) { r.ClientLastName = s("a", 255) }, ""},
		{"last name 1", func(r *PaymentRequest) { r.ClientLastName = "D" }, "client_last_name"},
		{"last name 2 runes", func(r *PaymentRequest) { r.ClientLastName = "Ké" }, ""},
		{"phone 8 digits", func(r *PaymentRequest) { r.ClientPhoneNumber = "+22507070" }, ""},
		{"phone 15 digits", func(r *PaymentRequest) { r.ClientPhoneNumber = "+225070700000000" }, ""},
		{"phone 16 digits", func(r *PaymentRequest) { r.ClientPhoneNumber = "+2250707000000000" }, "client_phone_number"},
		{"phone 7 digits", func(r *PaymentRequest) { r.ClientPhoneNumber = "+2250707" }, "client_phone_number"},
		{"phone no plus", func(r *PaymentRequest) { r.ClientPhoneNumber = "2250707000000" }, "client_phone_number"},
		{"phone leading 0", func(r *PaymentRequest) { r.ClientPhoneNumber = "+0250707000000" }, "client_phone_number"},
		{"phone spaces", func(r *PaymentRequest) { r.ClientPhoneNumber = "+225 07 07 00 00" }, "client_phone_number"},
		{"url 120 chars", func(r *PaymentRequest) { r.NotifyURL = "https://a.test/" + s("x", 105) }, ""},
		{"url 121 chars", func(r *PaymentRequest) { r.NotifyURL = "https://a.test/" + s("x", 106) }, "notify_url"},
		{"url http", func(r *PaymentRequest) { r.SuccessURL = "http://127.0.0.1:8080/return" }, ""},
		{"url ftp", func(r *PaymentRequest) { r.SuccessURL = "ftp://a.test/x" }, "success_url"},
		{"url upper-case scheme", func(r *PaymentRequest) { r.FailedURL = "HTTPS://a.test/x" }, "failed_url"},
		{"url no host", func(r *PaymentRequest) { r.FailedURL = "https:///x" }, "failed_url"},
		{"url empty", func(r *PaymentRequest) { r.FailedURL = "" }, "failed_url"},
		{"url space", func(r *PaymentRequest) { r.NotifyURL = "https://a.test/a b" }, "notify_url"},
		{"url relative", func(r *PaymentRequest) { r.NotifyURL = "/notify" }, "notify_url"},
		{"channel OTP", func(r *PaymentRequest) { r.Channel = "OTP" }, ""},
		{"channel QRCODE", func(r *PaymentRequest) { r.Channel = "QRCODE" }, ""},
		{"channel REDIRECT", func(r *PaymentRequest) { r.Channel = "REDIRECT" }, "channel"},
		{"channel lower case", func(r *PaymentRequest) { r.Channel = "push" }, "channel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRequest()
			tt.edit(r)
			err := r.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *ValidationError for %s", err, tt.field)
			}
			if ve.Field != tt.field || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("Field = %q (%v), want %q", ve.Field, err, tt.field)
			}
		})
	}
	var nilReq *PaymentRequest
	if err := nilReq.Validate(); err == nil {
		t.Error("nil request is valid")
	}
}
