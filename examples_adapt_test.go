package caddycinetpay

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestAdaptExampleCaddyfiles adapts the Caddyfiles of the example shops (examples/<lang>), as
// `caddy adapt` does (their import of ../checkout-errors.caddy resolved beside them): formatted as
// `caddy fmt` writes them, with no warning, bound to the loopback address, and delivering in the
// format the environment picks (examples/<lang>/README.md, "Standard Webhooks").
func TestAdaptExampleCaddyfiles(t *testing.T) {
	for _, lang := range []string{"php", "node", "python", "go"} {
		path := filepath.Join("examples", lang, "Caddyfile")
		body, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if w, differs := caddyfile.FormattingDifference(path, body); differs {
			t.Errorf("%s: not as caddy fmt writes it: %s", path, w.Message)
		}
		for _, c := range []struct{ format, webhook, wantFormat, wantPath string }{
			{"", "", "", "/cinetpay/webhook"},
			{"standard-webhooks", "/cinetpay/standard-webhook", "standard-webhooks", "/cinetpay/standard-webhook"},
		} {
			t.Setenv("CINETPAY_DELIVER_FORMAT", c.format)
			t.Setenv("CINETPAY_WEBHOOK_PATH", c.webhook)
			if c.format == "" {
				os.Unsetenv("CINETPAY_DELIVER_FORMAT") // t.Setenv restores them afterwards
				os.Unsetenv("CINETPAY_WEBHOOK_PATH")
			}
			out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": path})
			if err != nil {
				t.Fatalf("%s (format %q): %v", path, c.format, err)
			}
			for _, w := range warnings {
				t.Errorf("%s: warning %s", path, w)
			}
			js := string(out)
			var cfg any
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatal(err)
			}
			h := findHandler(cfg, "cinetpay")
			if h == nil {
				t.Fatalf("%s: no cinetpay handler in %s", path, js)
			}
			// rfc9421, the default, is written out as the Caddyfile names it
			if want := c.wantFormat; h["deliver_format"] != want && !(want == "" && h["deliver_format"] == "rfc9421") {
				t.Errorf("%s (format %q): deliver_format %q", path, c.format, h["deliver_format"])
			}
			if h["forward"] != "http://127.0.0.1:9000"+c.wantPath {
				t.Errorf("%s (format %q): forward %q", path, c.format, h["forward"])
			}
			if !strings.Contains(js, `"listen":["127.0.0.1:8080"]`) {
				t.Errorf("%s: not bound to 127.0.0.1:8080: %s", path, js)
			}
			if !strings.Contains(js, `"errors":{"routes":`) {
				t.Errorf("%s: no error routes (import ../checkout-errors.caddy): %s", path, js)
			}
		}
	}
}

// findHandler returns the first object of an adapted config whose "handler" is name.
func findHandler(v any, name string) map[string]any {
	switch v := v.(type) {
	case map[string]any:
		if v["handler"] == name {
			return v
		}
		for _, x := range v {
			if h := findHandler(x, name); h != nil {
				return h
			}
		}
	case []any:
		for _, x := range v {
			if h := findHandler(x, name); h != nil {
				return h
			}
		}
	}
	return nil
}
