package caddycinetpay

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestREADMECaddyfilesFormatted checks that every ```caddyfile block of the README and of docs/
// is written as `caddy fmt` writes it (tabs, one space between tokens), so that a reader who
// copies one gets a Caddyfile that `caddy fmt --diff` leaves alone.
func TestREADMECaddyfilesFormatted(t *testing.T) {
	docs, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```caddyfile\n(.*?)```")
	n := 0
	for _, name := range append([]string{"README.md"}, docs...) {
		text, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range block.FindAllSubmatchIndex(text, -1) {
			n++
			in := text[m[2]:m[3]]
			if out := caddyfile.Format(in); !bytes.Equal(out, in) {
				line := bytes.Count(text[:m[2]], []byte("\n")) + 1
				t.Errorf("%s:%d: the caddyfile block is not as caddy fmt writes it; caddy fmt gives:\n%s", name, line, out)
			}
		}
	}
	if n == 0 {
		t.Fatal("no caddyfile block found in README.md")
	}
}
