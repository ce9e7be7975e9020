package caddycinetpay

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/sandbox"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Benchmarks run only with -bench (go test -run '^$' -bench . -benchtime 2s .). Each measures one
// path through a real Caddy, next to plain Caddy in the same run: the same server, a site
// block without the module (127.0.0.1:9080) in front of the same shop.

const benchCaddyfile = `{
	admin localhost:2999
	http_port 9080
	grace_period 1ns
	log {
		output file %[5]s/caddy.log
		level ERROR
	}
}
http://localhost:9080 {
	cinetpay {
		api_key %[6]s
		site_id %[7]s
		secret_key %[8]s
		signing_key %[9]s %[10]s
		endpoint %[1]s
		checkout /checkout/*
		forward http://%[2]s/cinetpay/webhook
		storage %[3]s
		rate_limit 1000
	}
	reverse_proxy %[2]s
}
http://127.0.0.1:9080 {
	reverse_proxy %[2]s
}
`

func benchRequest(b *testing.B, client *http.Client, method, url, body string, hdr http.Header, want int) {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		b.Fatalf("%s %s: %d, want %d", method, url, resp.StatusCode, want)
	}
}

func BenchmarkPaths(b *testing.B) {
	e := newEnv(b, envOptions{caddyfile: benchCaddyfile})
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	auto := intentHeaders("AUTO", 1000)
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}

	b.Run("plain_caddy_get", func(b *testing.B) {
		for b.Loop() {
			benchRequest(b, c, "GET", "http://127.0.0.1:9080/page", "", nil, 200)
		}
	})
	b.Run("module_pass_through_get", func(b *testing.B) {
		for b.Loop() {
			benchRequest(b, c, "GET", caddyBase+"/page", "", nil, 200)
		}
	})
	b.Run("plain_caddy_checkout_post", func(b *testing.B) {
		e.shop.setIntent(auto)
		for b.Loop() {
			benchRequest(b, c, "POST", "http://127.0.0.1:9080/checkout/cart", "x=1", form, 200)
		}
	})
	b.Run("start_payment", func(b *testing.B) {
		e.shop.setIntent(auto)
		for b.Loop() {
			benchRequest(b, c, "POST", caddyBase+"/checkout/cart", "x=1", form, 303)
		}
	})

	// one accepted payment, notified again and again: the duplicate fast path
	e.shop.setIntent(intentHeaders("bench-final", 1000))
	final, _ := e.checkout("bench-final", 1000)
	e.act(final, "accept")
	e.waitState(final, storage.StateAccepted, 5*time.Second)
	fform, ftoken := notification(testSiteID, final, testSecret)
	fbody := fform.Encode()
	nh := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Token": {ftoken}}
	b.Run("notify_duplicate", func(b *testing.B) {
		for b.Loop() {
			benchRequest(b, c, "POST", caddyBase+"/cinetpay/notify", fbody, nh, 200)
		}
	})
	b.Run("plain_caddy_post_small", func(b *testing.B) {
		for b.Loop() {
			benchRequest(b, c, "POST", "http://127.0.0.1:9080/notify-like", fbody, nh, 200)
		}
	})

	// first notifications: each payment accepted at the sandbox, its notification lost, then
	// notified once: x-token, /check at the sandbox, state change and delivery stored (synced)
	b.Run("notify_first", func(b *testing.B) {
		e.sb.SetFaults(sandbox.Faults{Notify: &sandbox.NotifyFault{Lost: true}})
		defer e.sb.SetFaults(sandbox.Faults{})
		var bodies []string
		var tokens []string
		for i := 0; i < b.N; i++ {
			tx, _ := e.checkout(fmt.Sprintf("bench-first-%d-%d", b.N, i), 1000)
			e.act(tx, "accept")
			f, tok := notification(testSiteID, tx, testSecret)
			bodies, tokens = append(bodies, f.Encode()), append(tokens, tok)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Token": {tokens[i]}}
			benchRequest(b, c, "POST", caddyBase+"/cinetpay/notify", bodies[i], h, 200)
		}
	})
}
