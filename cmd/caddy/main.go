// Command caddy is Caddy with its standard modules, the CinetPay module and the CinetPay
// sandbox, for `go run ./cmd/caddy` from this repository (the offline demo, tests).
//
// A production build does not need this: `xcaddy build --with
// github.com/caddy-cinetpay/caddy-cinetpay` includes the module and not the sandbox.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-cinetpay/caddy-cinetpay"
	_ "github.com/caddy-cinetpay/caddy-cinetpay/examples/demo/shop"
	_ "github.com/caddy-cinetpay/caddy-cinetpay/sandbox"
)

func main() {
	caddycmd.Main()
}
