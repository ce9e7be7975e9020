// Package cpjson reads CinetPay's loosely typed JSON, for both API clients (cinetpay and
// cinetpayv1). Plain Go.
package cpjson

import (
	"bytes"
	"encoding/json"
)

// FlexString decodes any JSON value into a string: a string as is, a number or a boolean as
// its literal text, null as "", an object or array as its compact JSON text. CinetPay's
// answers are not consistent about types.
type FlexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*f = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = FlexString(s)
	case b[0] == '{' || b[0] == '[':
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err != nil {
			return err
		}
		*f = FlexString(buf.String())
	default:
		*f = FlexString(b)
	}
	return nil
}
