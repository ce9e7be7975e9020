package examples_test

import "github.com/caddy-cinetpay/caddy-cinetpay/internal/tooltest"

// requireTool returns the path of a program a test needs (an interpreter), or skips — fails
// under CINETPAY_REQUIRE_TOOLS=1 — with the command that installs it.
var requireTool = tooltest.Require
