package caddycinetpay

import (
	"os/exec"
	"strings"
	"testing"
)

// TestModuleDoesNotPullInTheSandbox checks what `xcaddy build --with <this module>` compiles in:
// the module and its plain-Go packages, never the sandbox, the examples or the test tools; and
// that cinetpay/, storage/, httpsig/ and engine/ stay free of Caddy.
func TestModuleDoesNotPullInTheSandbox(t *testing.T) {
	const self = "github.com/caddy-cinetpay/caddy-cinetpay"
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	for _, d := range deps(self) {
		if strings.HasPrefix(d, self+"/sandbox") || strings.HasPrefix(d, self+"/examples") ||
			strings.HasPrefix(d, self+"/cmd") || strings.Contains(d, "caddytest") {
			t.Errorf("the module imports %s", d)
		}
	}
	for _, pkg := range []string{self + "/cinetpay", self + "/storage", self + "/httpsig", self + "/engine"} {
		for _, d := range deps(pkg) {
			if strings.HasPrefix(d, "github.com/caddyserver/") {
				t.Errorf("%s imports %s", pkg, d)
			}
		}
	}
}
