package caddycinetpay

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadAtMost(t *testing.T) {
	for _, c := range []struct {
		name     string
		body     string
		declared int64
		want     string
		err      error
	}{
		{"exact", "a=1&b=2", 7, "a=1&b=2", nil},
		{"unknown length", "a=1&b=2", -1, "a=1&b=2", nil},
		{"over the limit", strings.Repeat("x", 20), -1, strings.Repeat("x", 11), nil},
		{"declared over the limit", strings.Repeat("x", 20), 20, strings.Repeat("x", 11), nil},
		{"shorter than declared", "a=1", 7, "a=1", io.ErrUnexpectedEOF},
		{"longer than declared", "a=1&b=2", 3, "a=1&b=2", nil},
		{"empty", "", 0, "", nil},
	} {
		got, err := readAtMost(strings.NewReader(c.body), c.declared, 10)
		if string(got) != c.want || !errors.Is(err, c.err) && !(err == nil && c.err == nil) {
			t.Errorf("%s: %q %v, want %q %v", c.name, got, err, c.want, c.err)
		}
	}
}
