package examples_test

import (
	"os"
	"os/exec"
	"testing"
)

// requireTool returns the path of a program a test needs (an interpreter). When it is not on
// PATH the test is skipped with the command that installs it — or fails, when
// CINETPAY_REQUIRE_TOOLS=1 (CI sets it, so a missing interpreter cannot pass silently).
func requireTool(t testing.TB, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CINETPAY_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s is not on PATH and CINETPAY_REQUIRE_TOOLS=1: install it (%s)", name, install)
	}
	t.Skipf("%s is not on PATH: install it (%s) to run this test", name, install)
	return ""
}
