// Package tooltest finds the programs the tests run for real: interpreters (php, node,
// python3), npm, a browser. Without one a test skips with the command that installs it, unless
// CINETPAY_REQUIRE_TOOLS=1 (.ci/run sets it): then it fails, so that a missing interpreter
// cannot pass silently.
package tooltest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Required reports whether a missing tool fails the test instead of skipping it.
func Required() bool { return os.Getenv("CINETPAY_REQUIRE_TOOLS") == "1" }

// Require returns the path of a program on PATH, or skips (fails under Required) with install,
// the command that installs it.
func Require(t testing.TB, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if Required() {
		t.Fatalf("%s is not on PATH and CINETPAY_REQUIRE_TOOLS=1: install it (%s)", name, install)
	}
	t.Skipf("%s is not on PATH: install it (%s) to run this test", name, install)
	return ""
}

var npmCI struct {
	sync.Mutex
	done map[string]error
}

// NpmCI makes sure the npm packages of dir's package-lock.json are installed, running `npm ci`
// there once per test binary when dir/node_modules/<module> is missing (a fresh clone).
func NpmCI(t testing.TB, dir, module string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", module)); err == nil {
		return
	}
	npm := Require(t, "npm", "apt-get install -y npm")
	npmCI.Lock()
	defer npmCI.Unlock()
	if npmCI.done == nil {
		npmCI.done = map[string]error{}
	}
	err, ok := npmCI.done[dir]
	if !ok {
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, cerr := cmd.CombinedOutput(); cerr != nil {
			err = fmt.Errorf("npm ci in %s: %v\n%s", dir, cerr, out)
		}
		npmCI.done[dir] = err
	}
	if err != nil {
		t.Fatal(err)
	}
}
