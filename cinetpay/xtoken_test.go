package cinetpay

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

type xtokenVector struct {
	Secret string            `json:"secret"`
	Fields map[string]string `json:"fields"`
	XToken string            `json:"x_token"`
	Note   string            `json:"note"`
}

type xtokenVectors struct {
	FieldOrder []string       `json:"field_order"`
	Vectors    []xtokenVector `json:"vectors"`
}

func loadXTokenVectors(t testing.TB) xtokenVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/xtoken-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v xtokenVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Vectors) < 2 {
		t.Fatalf("expected at least 2 vectors, got %d", len(v.Vectors))
	}
	return v
}

func cloneFields(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func TestXTokenFieldsMatchDocumentedOrder(t *testing.T) {
	v := loadXTokenVectors(t)
	if len(v.FieldOrder) != len(XTokenFields) {
		t.Fatalf("field_order has %d fields, XTokenFields %d", len(v.FieldOrder), len(XTokenFields))
	}
	for i, name := range v.FieldOrder {
		if XTokenFields[i] != name {
			t.Errorf("XTokenFields[%d] = %q, want %q", i, XTokenFields[i], name)
		}
	}
}

func TestXTokenVectors(t *testing.T) {
	v := loadXTokenVectors(t)
	for i, vec := range v.Vectors {
		got := XToken(vec.Secret, vec.Fields)
		if got != vec.XToken {
			t.Errorf("vector %d: XToken = %s, want %s", i, got, vec.XToken)
		}
		if !ValidXToken(vec.Secret, vec.Fields, vec.XToken) {
			t.Errorf("vector %d: ValidXToken refused the documented token", i)
		}
		if !ValidXToken(vec.Secret, vec.Fields, strings.ToUpper(vec.XToken)) {
			t.Errorf("vector %d: ValidXToken refused the upper-case token", i)
		}
		mixed := strings.ToUpper(vec.XToken[:32]) + vec.XToken[32:]
		if !ValidXToken(vec.Secret, vec.Fields, mixed) {
			t.Errorf("vector %d: ValidXToken refused a mixed-case token", i)
		}
		// Fields outside the 16 do not take part.
		extra := cloneFields(vec.Fields)
		extra["transaction_id"] = "whatever"
		extra["CPM_AMOUNT"] = "1"
		if !ValidXToken(vec.Secret, extra, vec.XToken) {
			t.Errorf("vector %d: an unrelated field changed the token", i)
		}
	}
}

// The second vector omits cpm_custom and cpm_error_message, as a real 2022
// notification did: a missing field is the empty string.
func TestXTokenMissingFieldVector(t *testing.T) {
	v := loadXTokenVectors(t)
	var vec *xtokenVector
	for i := range v.Vectors {
		_, hasCustom := v.Vectors[i].Fields["cpm_custom"]
		_, hasErr := v.Vectors[i].Fields["cpm_error_message"]
		if !hasCustom && !hasErr {
			vec = &v.Vectors[i]
		}
	}
	if vec == nil {
		t.Fatal("no vector without cpm_custom and cpm_error_message")
	}
	if got := XToken(vec.Secret, vec.Fields); got != vec.XToken {
		t.Fatalf("XToken = %s, want %s", got, vec.XToken)
	}
	explicit := cloneFields(vec.Fields)
	explicit["cpm_custom"] = ""
	explicit["cpm_error_message"] = ""
	if got := XToken(vec.Secret, explicit); got != vec.XToken {
		t.Errorf("missing and empty fields differ: %s vs %s", got, vec.XToken)
	}
	if !ValidXToken(vec.Secret, explicit, vec.XToken) {
		t.Error("token refused with explicit empty fields")
	}
}

// Public integrations wrote "None" or "undefined" for missing fields, or
// dropped cpm_custom from the message: none of that gives the right token.
func TestXTokenKnownBugsDoNotMatch(t *testing.T) {
	v := loadXTokenVectors(t)
	missing := v.Vectors[1]
	for _, placeholder := range []string{"None", "undefined", "null", "nil", " "} {
		f := cloneFields(missing.Fields)
		f["cpm_custom"] = placeholder
		if XToken(missing.Secret, f) == missing.XToken {
			t.Errorf("%q for a missing cpm_custom produced the right token", placeholder)
		}
		if ValidXToken(missing.Secret, f, missing.XToken) {
			t.Errorf("%q for a missing cpm_custom validated", placeholder)
		}
		f = cloneFields(missing.Fields)
		f["cpm_error_message"] = placeholder
		if ValidXToken(missing.Secret, f, missing.XToken) {
			t.Errorf("%q for a missing cpm_error_message validated", placeholder)
		}
	}

	full := v.Vectors[0]
	// Dropping cpm_custom from a notification that has it.
	f := cloneFields(full.Fields)
	delete(f, "cpm_custom")
	if ValidXToken(full.Secret, f, full.XToken) {
		t.Error("token validated with cpm_custom dropped")
	}
	// Keyed with another secret (the API key, say).
	if ValidXToken("12912847765bc0db748fdd44.94560110", full.Fields, full.XToken) {
		t.Error("token validated under another key")
	}
	if ValidXToken("", full.Fields, full.XToken) {
		t.Error("token validated under an empty secret")
	}
}

func TestValidXTokenRefusesBadTokens(t *testing.T) {
	v := loadXTokenVectors(t)
	vec := v.Vectors[0]
	good := vec.XToken
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == '0' {
			b[i] = '1'
		} else {
			b[i] = '0'
		}
		return string(b)
	}
	bad := map[string]string{
		"empty":               "",
		"first digit":         flip(good, 0),
		"last digit":          flip(good, len(good)-1),
		"truncated by one":    good[:len(good)-1],
		"truncated by two":    good[:len(good)-2],
		"half":                good[:32],
		"one extra digit":     good + "0",
		"two extra digits":    good + "00",
		"non-hex":             "zz" + good[2:],
		"all non-hex":         strings.Repeat("g", 64),
		"leading space":       " " + good[1:],
		"0x prefix":           "0x" + good[2:],
		"surrounded by space": " " + good + " ",
		"base64 of the mac":   base64.StdEncoding.EncodeToString(mustHex(t, good)),
		"sha256 of nothing":   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	}
	for name, tok := range bad {
		if ValidXToken(vec.Secret, vec.Fields, tok) {
			t.Errorf("%s: token %q validated", name, tok)
		}
	}
}

func TestValidXTokenRefusesChangedField(t *testing.T) {
	v := loadXTokenVectors(t)
	for vi, vec := range v.Vectors {
		for _, name := range XTokenFields {
			f := cloneFields(vec.Fields)
			f[name] = f[name] + "1"
			if ValidXToken(vec.Secret, f, vec.XToken) {
				t.Errorf("vector %d: token still valid with %s changed", vi, name)
			}
		}
		// Swapping two values changes the concatenation.
		f := cloneFields(vec.Fields)
		f["cpm_amount"], f["cpm_site_id"] = f["cpm_site_id"], f["cpm_amount"]
		if ValidXToken(vec.Secret, f, vec.XToken) {
			t.Errorf("vector %d: token still valid with cpm_amount and cpm_site_id swapped", vi)
		}
		// Field names are case-sensitive.
		f = cloneFields(vec.Fields)
		f["CPM_AMOUNT"] = f["cpm_amount"]
		delete(f, "cpm_amount")
		if ValidXToken(vec.Secret, f, vec.XToken) {
			t.Errorf("vector %d: token valid with CPM_AMOUNT instead of cpm_amount", vi)
		}
	}
}

func TestXTokenIsLowercaseHex(t *testing.T) {
	tok := XToken("k", nil)
	if len(tok) != 64 || strings.ToLower(tok) != tok {
		t.Fatalf("XToken = %q, want 64 lower-case hex digits", tok)
	}
	if !ValidXToken("k", map[string]string{}, tok) {
		t.Error("token of no fields refused")
	}
}

func TestXTokenFieldsCopyIsNotUsed(t *testing.T) {
	v := loadXTokenVectors(t)
	vec := v.Vectors[0]
	saved := XTokenFields
	defer func() { XTokenFields = saved }()
	XTokenFields[3] = "something_else"
	if got := XToken(vec.Secret, vec.Fields); got != vec.XToken {
		t.Errorf("changing XTokenFields changed XToken: %s", got)
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
