package cinetpay

import "testing"

func TestValidators(t *testing.T) {
	for _, c := range []string{"XOF", "XAF", "CDF", "GNF", "USD"} {
		if !ValidCurrency(c) {
			t.Errorf("ValidCurrency(%q) = false", c)
		}
	}
	for _, c := range []string{"", "xof", "Xof", "GBF", "EUR", " XOF", "XOF ", "XOFX"} {
		if ValidCurrency(c) {
			t.Errorf("ValidCurrency(%q) = true", c)
		}
	}
	for c, want := range map[string]bool{"XOF": true, "XAF": true, "CDF": true, "GNF": true, "USD": false, "": false, "xof": false, "EUR": false} {
		if RequiresMultipleOf5(c) != want {
			t.Errorf("RequiresMultipleOf5(%q) = %v", c, !want)
		}
	}
	for s, want := range map[string]bool{
		"ALL": true, "MOBILE_MONEY": true, "CREDIT_CARD": true, "WALLET": true,
		"": false, "all": false, "MOBILE_MONEY,CREDIT_CARD": false, "ALL ": false, "MOBILE MONEY": false,
	} {
		if ValidChannels(s) != want {
			t.Errorf("ValidChannels(%q) = %v", s, !want)
		}
	}
	for s, want := range map[string]bool{"fr": true, "en": true, "": false, "FR": false, "de": false, "fr-FR": false} {
		if ValidLang(s) != want {
			t.Errorf("ValidLang(%q) = %v", s, !want)
		}
	}
}

func TestIsCinetPayHost(t *testing.T) {
	tests := map[string]bool{
		"cinetpay.com":                true,
		"checkout.cinetpay.com":       true,
		"api-checkout.cinetpay.com":   true,
		"a.b.cinetpay.com":            true,
		"CHECKOUT.CinetPay.COM":       true,
		"cinetpay.com.":               true,
		"checkout.cinetpay.com.":      true,
		"":                            false,
		"cinetpay.co":                 false,
		"evilcinetpay.com":            false,
		"cinetpay.com.evil.com":       false,
		"checkout.cinetpay.com:443":   false,
		".cinetpay.com":               false,
		"a..cinetpay.com":             false,
		"-a.cinetpay.com":             false,
		"a-.cinetpay.com":             false,
		"cinetpay.com..":              false,
		"checkout.cinetpay.com/x":     false,
		"user@checkout.cinetpay.com":  false,
		"checkout.cinetpay.com%2e":    false,
		"\u212apay.cinetpay.com":      false, // Kelvin sign lower-cases to "k"
		"cinetpay\u3002com":           false,
		"xn--80ak6aa92e.cinetpay.com": true,
		"[::1]":                       false,
	}
	for host, want := range tests {
		if got := IsCinetPayHost(host); got != want {
			t.Errorf("IsCinetPayHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestCodeMessage(t *testing.T) {
	tests := map[string]string{
		"201": "CREATED", "608": "MINIMUM_REQUIRED_FIELDS", "609": "AUTH_NOT_FOUND",
		"613": "ERROR_SITE_ID_NOTVALID", "429": "TOO_MANY_REQUEST",
		"00": "SUCCES", "600": "PAYMENT_FAILED", "602": "INSUFFISENT_BALANCE",
		"603": "SERVICE_UNAVAILABLE", "604": "OTP_CODE_ERROR", "606": "INCORRECT_SETTINGS",
		"623": "WAITING_CUSTOMER_TO_VALIDATE", "627": "TRANSACTION_CANCEL",
		"641": "ERROR_AMOUNT_TOO_LOW", "642": "ERROR_AMOUNT_TOO_HIGH",
		"662": "WAITING_CUSTOMER_PAYMENT", "663": "WAITING_CUSTOMER_OTP_CODE",
		"664": "WAITING_CUSTOMER_PAYMENT_AT_OPERATOR_SIDE", "804": "OPERATOR_UNAVAILABLE",
		"": "", "0": "", "999": "", "SUCCES": "",
	}
	for code, want := range tests {
		if got := CodeMessage(code); got != want {
			t.Errorf("CodeMessage(%q) = %q, want %q", code, got, want)
		}
	}
	// Documented without an official message: described, never empty.
	for _, code := range []string{"624", "403", "1010", "635", "636", "807", "808", "809", "810", "811", "812"} {
		if CodeMessage(code) == "" {
			t.Errorf("CodeMessage(%q) is empty", code)
		}
	}
}

func TestIsRefusalCode(t *testing.T) {
	for _, c := range []string{"608", "609", "613", "624", "403", "1010"} {
		if !IsRefusalCode(c) {
			t.Errorf("IsRefusalCode(%q) = false", c)
		}
	}
	for _, c := range []string{"201", "429", "00", "", "600", "606", "500", "999"} {
		if IsRefusalCode(c) {
			t.Errorf("IsRefusalCode(%q) = true", c)
		}
	}
}
