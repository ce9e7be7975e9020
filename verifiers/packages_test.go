package verifiers_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddy-cinetpay/caddy-cinetpay/internal/tooltest"
)

// requireTool returns the path of a program a test needs (an interpreter), or skips — fails
// under CINETPAY_REQUIRE_TOOLS=1 — with the command that installs it.
var requireTool = tooltest.Require

// TestPackages runs each verifier package's own tests with its real interpreter; they read
// testdata/vectors.json. verifiers/go is a module of its own, which the main module's ./... does
// not reach: this is how `go test ./...` (and CI) runs its tests.
func TestPackages(t *testing.T) {
	for _, c := range []struct {
		name, tool, install, dir string
		args                     []string
	}{
		{"php", "php", "apt-get install -y php-cli", "php", []string{"tests/run.php"}},
		{"node", "node", "apt-get install -y nodejs", "node", []string{"--test"}},
		{"python", "python3", "apt-get install -y python3", "python", []string{"-m", "unittest", "-v"}},
		{"go", "go", "https://go.dev/doc/install", "go", []string{"test", "-count=1", "./..."}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(requireTool(t, c.tool, c.install), c.args...)
			cmd.Dir = c.dir
			cmd.Env = append(os.Environ(), "GOWORK=off", "PYTHONDONTWRITEBYTECODE=1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s %s in verifiers/%s: %v\n%s", c.tool, strings.Join(c.args, " "), c.dir, err, out)
			}
			if testing.Verbose() {
				t.Logf("%s", out)
			}
		})
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func submatch(t *testing.T, re, s, what string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("%s: no match for %s", what, re)
	}
	return m[1]
}

// currentVersion is the version CHANGELOG.md describes as the current one: its newest release
// heading ("## v1.2.3" or "## [1.2.3]"), or before the first tag, the one its introduction
// announces ("the first tag will be v0.1.0").
func currentVersion(t *testing.T) string {
	t.Helper()
	changelog := read(t, "../CHANGELOG.md")
	if m := regexp.MustCompile(`(?m)^## \[?v?(\d+\.\d+\.\d+)\]?`).FindStringSubmatch(changelog); m != nil {
		return m[1]
	}
	return submatch(t, `first tag will be v(\d+\.\d+\.\d+)`, changelog, "CHANGELOG.md")
}

// TestVersions: the packages carry the project's current version, everywhere it is written, and
// every install instruction names that version.
func TestVersions(t *testing.T) {
	want := currentVersion(t)
	var composer, pkg struct{ Version string }
	if err := json.Unmarshal([]byte(read(t, "php/composer.json")), &composer); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(read(t, "node/package.json")), &pkg); err != nil {
		t.Fatal(err)
	}
	versions := map[string]string{
		"php/composer.json":           composer.Version,
		"php/src/verifier.php":        submatch(t, `const VERSION = '([^']*)'`, read(t, "php/src/verifier.php"), "verifier.php"),
		"node/package.json":           pkg.Version,
		"node/index.js":               submatch(t, `const VERSION = '([^']*)'`, read(t, "node/index.js"), "index.js"),
		"python/pyproject.toml":       submatch(t, `(?m)^version = "([^"]*)"`, read(t, "python/pyproject.toml"), "pyproject.toml"),
		"python/cinetpay_verifier.py": submatch(t, `__version__ = "([^"]*)"`, read(t, "python/cinetpay_verifier.py"), "cinetpay_verifier.py"),
		"go/cinetpayverify.go":        submatch(t, `const Version = "([^"]*)"`, read(t, "go/cinetpayverify.go"), "cinetpayverify.go"),
	}
	for file, v := range versions {
		if v != want {
			t.Errorf("%s: version %q, CHANGELOG.md's current version is %q", file, v, want)
		}
	}
	// every versioned reference of the install instructions: @v0.1.0, verifiers/go/v0.1.0
	docs := []string{"../README.md", "../CHANGELOG.md", "php/README.md", "node/README.md", "python/README.md", "go/README.md"}
	examples, _ := filepath.Glob("../examples/*/README.md")
	refs := regexp.MustCompile(`(?:caddy-cinetpay(?:/verifiers/go)?@v|verifiers/go/v)(\d+\.\d+\.\d+)`)
	found := 0
	for _, doc := range append(docs, examples...) {
		for _, m := range refs.FindAllStringSubmatch(read(t, doc), -1) {
			found++
			if m[1] != want {
				t.Errorf("%s: %s, the current version is %s", doc, m[0], want)
			}
		}
	}
	if found == 0 {
		t.Error("no versioned install instruction found in the READMEs")
	}
}
