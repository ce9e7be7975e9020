package sandbox

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpayv1"
)

// The product's client of CinetPay's current API against the sandbox's v1: each side is
// written from the fact sheet, so each checks the other.

func v1Client(endpoint string) *cinetpayv1.Client {
	return &cinetpayv1.Client{Endpoint: endpoint, APIKey: keyCI, APIPassword: passCI, Timeout: 2 * time.Second}
}

func v1Request(id string) *cinetpayv1.PaymentRequest {
	return &cinetpayv1.PaymentRequest{MerchantTransactionID: id, Amount: 1500, Currency: "XOF", Lang: "fr",
		Designation: "Commande 7", ClientEmail: "aya@example.test", ClientFirstName: "Aya", ClientLastName: "Kouadio",
		ClientPhoneNumber: "+2250707000000", SuccessURL: "http://127.0.0.1:1/return?transaction_id=" + id,
		FailedURL: "http://127.0.0.1:1/return?transaction_id=" + id, NotifyURL: "http://127.0.0.1:1/notify"}
}

func TestV1ClientAgainstTheSandbox(t *testing.T) {
	s, ts := newV1Sandbox(t)
	ctx := context.Background()
	c := v1Client(ts.URL)

	// start, then the status through every state the page can give
	init, err := c.InitPayment(ctx, v1Request("CLIV1"))
	if err != nil {
		t.Fatal(err)
	}
	if init.NotifyToken == "" || init.TransactionID == "" || !cinetpayv1.PaymentURLAllowed(ts.URL, init.PaymentURL) ||
		!init.Details.MustBeRedirected {
		t.Fatalf("init %+v", init)
	}
	st, err := c.PaymentStatus(ctx, "CLIV1")
	if err != nil || st.Verdict != cinetpayv1.VerdictPending || st.TransactionID != init.TransactionID {
		t.Fatalf("status %+v %v", st, err)
	}
	if _, err := s.Act("CLIV1", ActionAccept); err != nil {
		t.Fatal(err)
	}
	if st, err := c.PaymentStatus(ctx, "CLIV1"); err != nil || st.Verdict != cinetpayv1.VerdictAccepted {
		t.Fatalf("after accept %+v %v", st, err)
	}
	for id, c2 := range map[string]struct {
		action string
		want   cinetpayv1.Verdict
	}{"CLIV1R": {ActionRefuse, cinetpayv1.VerdictRefused}, "CLIV1E": {ActionExpire, cinetpayv1.VerdictExpired}} {
		if _, err := c.InitPayment(ctx, v1Request(id)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Act(id, c2.action); err != nil {
			t.Fatal(err)
		}
		if st, err := c.PaymentStatus(ctx, id); err != nil || st.Verdict != c2.want {
			t.Fatalf("%s: %+v %v", c2.action, st, err)
		}
	}
	// an unknown id
	if st, err := c.PaymentStatus(ctx, "NOSUCHID"); err != nil || st.Verdict != cinetpayv1.VerdictNotFound {
		t.Fatalf("unknown id: %+v %v", st, err)
	}
	// the same id again: 1200, an unknown outcome (an earlier try reached CinetPay)
	if _, err := c.InitPayment(ctx, v1Request("CLIV1")); cinetpayv1.OutcomeOf(err) != cinetpayv1.OutcomeUnknown ||
		cinetpayv1.CodeOf(err) != cinetpayv1.CodeTransactionExist {
		t.Fatalf("reused id: %v", err)
	}
	// invalid parameters the client cannot check itself (an operator of another country)
	bad := v1Request("CLIV1B")
	bad.PaymentMethod = "OM_SN"
	if _, err := c.InitPayment(ctx, bad); err == nil || cinetpayv1.OutcomeOf(err) != cinetpayv1.OutcomeRefused {
		t.Fatalf("operator of another country: %v", err)
	}
	if n := s.V1LoginCount(); n != 1 {
		t.Fatalf("%d logins for all this", n)
	}

	// a token that expired mid-flight: one new login, the call goes through
	setFaults(t, ts.URL, `{"v1_expired_token":{"times":1}}`)
	if st, err := c.PaymentStatus(ctx, "CLIV1"); err != nil || st.Verdict != cinetpayv1.VerdictAccepted {
		t.Fatalf("after an expired token: %+v %v", st, err)
	}
	if n := s.V1LoginCount(); n != 2 {
		t.Fatalf("%d logins after an expired token", n)
	}

	// answers that are no usable answer
	for _, f := range []string{`{"v1_status":{"times":1,"status":503}}`, `{"v1_status":{"times":1,"body":"garbage"}}`,
		`{"v1_status":{"times":1,"hang":"3s"}}`} {
		setFaults(t, ts.URL, f)
		if st, err := c.PaymentStatus(ctx, "CLIV1"); err == nil {
			t.Fatalf("%s: %+v", f, st)
		}
	}
	setFaults(t, ts.URL, `{}`)
}

func TestV1ClientLoginRefusals(t *testing.T) {
	_, ts := newV1Sandbox(t)
	ctx := context.Background()
	wrong := v1Client(ts.URL)
	wrong.APIPassword = "not-the-password"
	_, err := wrong.InitPayment(ctx, v1Request("CLIV1W"))
	if !cinetpayv1.IsInvalidCredentials(err) || cinetpayv1.OutcomeOf(err) != cinetpayv1.OutcomeRefused {
		t.Fatalf("wrong password: %v", err)
	}
	if strings.Contains(err.Error(), "not-the-password") || strings.Contains(err.Error(), keyCI) {
		t.Fatalf("a secret in %q", err)
	}
	setFaults(t, ts.URL, `{"v1_not_allowed":{"login":true}}`)
	_, err = v1Client(ts.URL).PaymentStatus(ctx, "X")
	if !cinetpayv1.IsNotAllowed(err) || errors.Is(err, cinetpayv1.ErrInvalidCredentials) {
		t.Fatalf("IP not whitelisted: %v", err)
	}
	var ae *cinetpayv1.APIError
	if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusForbidden {
		t.Fatalf("2011: %+v", ae)
	}
}
