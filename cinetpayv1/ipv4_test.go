package cinetpayv1

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// loopbackServer serves the fake API's logins and status answers on addr.
func loopbackServer(t *testing.T, network, addr string) (*httptest.Server, bool) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, false
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == PathLogin {
			io.WriteString(w, loginOK(1, "").body)
			return
		}
		io.WriteString(w, statusOKBody)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, true
}

func TestIPv4Only(t *testing.T) {
	t.Run("IPv4 loopback", func(t *testing.T) {
		srv, ok := loopbackServer(t, "tcp4", "127.0.0.1:0")
		if !ok {
			t.Fatal("cannot listen on 127.0.0.1")
		}
		for _, hc := range []*http.Client{nil, {}, {Transport: &http.Transport{}}} {
			c := &Client{Endpoint: srv.URL, APIKey: testAPIKey, APIPassword: testAPIPassword, IPv4Only: true, HTTPClient: hc}
			if _, err := c.PaymentStatus(bg, testMTID); err != nil {
				t.Errorf("HTTPClient %v: %v", hc, err)
			}
		}
	})
	t.Run("IPv6 loopback", func(t *testing.T) {
		srv, ok := loopbackServer(t, "tcp6", "[::1]:0")
		if !ok {
			t.Skip("IPv6 loopback [::1] is not available on this machine; cannot check that IPv4Only refuses it")
		}
		// Without IPv4Only the server is reachable...
		c := &Client{Endpoint: srv.URL, APIKey: testAPIKey, APIPassword: testAPIPassword}
		if _, err := c.PaymentStatus(bg, testMTID); err != nil {
			t.Fatalf("without IPv4Only: %v", err)
		}
		// ...with it, it is not, whatever the HTTP client.
		for _, hc := range []*http.Client{nil, {}, {Transport: &http.Transport{}}} {
			c := &Client{Endpoint: srv.URL, APIKey: testAPIKey, APIPassword: testAPIPassword, IPv4Only: true, HTTPClient: hc}
			_, err := c.PaymentStatus(bg, testMTID)
			e := asAPIError(t, err, "login")
			if e.HTTPStatus != 0 || !strings.Contains(err.Error(), "network error") {
				t.Errorf("HTTPClient %v: IPv4Only reached [::1]: %v", hc, err)
			}
		}
	})
	t.Run("custom transport", func(t *testing.T) {
		var called bool
		c := &Client{Endpoint: "http://127.0.0.1:1", APIKey: testAPIKey, APIPassword: testAPIPassword, IPv4Only: true,
			HTTPClient: &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { called = true; return nil, nil })}}
		_, err := c.PaymentStatus(bg, testMTID)
		e := asAPIError(t, err, "login")
		if e.Outcome != OutcomeRefused || called || err.Error() != "cinetpay v1 login: IPv4Only needs an *http.Transport" {
			t.Errorf("called = %v, err = %v", called, err)
		}
	})
}

func TestForceIPv4Networks(t *testing.T) {
	tr := &http.Transport{}
	var got []string
	tr.DialContext = nil
	forceIPv4(tr)
	if _, err := tr.DialContext(bg, "tcp6", "[::1]:1"); err == nil || !strings.Contains(err.Error(), "refusing network") {
		t.Errorf("tcp6: %v", err)
	}
	tr = &http.Transport{DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
		got = append(got, network)
		return nil, io.EOF
	}}
	forceIPv4(tr)
	tr.DialContext(bg, "tcp", "x:1")
	tr.DialContext(bg, "tcp4", "x:1")
	if strings.Join(got, ",") != "tcp4,tcp4" {
		t.Errorf("networks dialled: %v", got)
	}
}
