package sandbox

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cinetpay/caddy-cinetpay/cinetpay"
)

// These tests run the product's real CinetPay client against the sandbox.
// They use only the client's stable surface (Client, InitPayment,
// CheckPayment and their result types); what the sandbox answered is read
// from its request log.

// lastCode returns the code the sandbox answered to its last API call.
func lastCode(s *Server) string {
	reqs := s.Requests()
	if len(reqs) == 0 {
		return ""
	}
	return reqs[len(reqs)-1].Code
}

func newClient(endpoint, apiKey, siteID string) *cinetpay.Client {
	return &cinetpay.Client{Endpoint: endpoint, APIKey: apiKey, SiteID: siteID, Timeout: 5 * time.Second}
}

func clientRequest(txID, notifyBase string) *cinetpay.PaymentRequest {
	return &cinetpay.PaymentRequest{
		TransactionID: txID,
		Amount:        1500,
		Currency:      "XOF",
		Description:   "Commande 7",
		NotifyURL:     notifyBase + "/notify",
		ReturnURL:     notifyBase + "/return?transaction_id=" + txID,
		Channels:      "ALL",
		Lang:          "fr",
		Metadata:      "b3JkZXI9Nw==",
		CustomerName:  "Kouassi",
	}
}

func TestClientInitPayment(t *testing.T) {
	s, ts := newSandbox(t)
	ctx := context.Background()
	c := newClient(ts.URL, keyA, siteA)

	start, err := c.InitPayment(ctx, clientRequest("CLI1", "http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	if start.PaymentURL != ts.URL+"/pay/"+start.PaymentToken || start.APIResponseID == "" {
		t.Fatalf("start %+v", start)
	}
	v, ok := s.Transaction("CLI1")
	if !ok || v.Amount != 1500 || v.Metadata != "b3JkZXI9Nw==" || v.Lang != "fr" {
		t.Fatalf("stored %+v", v)
	}
	if reqs := s.Requests(); reqs[0].UserAgent == "" || !strings.HasPrefix(reqs[0].ContentType, "application/json") {
		t.Fatalf("client request %+v", reqs[0])
	}

	for _, tc := range []struct {
		name   string
		client *cinetpay.Client
		txID   string
		code   string
	}{
		{"unknown apikey", newClient(ts.URL, "nope", siteA), "CLI2", "609"},
		{"unknown site", newClient(ts.URL, keyA, "999999"), "CLI3", "613"},
		{"reused transaction_id", c, "CLI1", "608"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, err := tc.client.InitPayment(ctx, clientRequest(tc.txID, "http://127.0.0.1:1"))
			if err == nil || start != nil || lastCode(s) != tc.code {
				t.Fatalf("err %v, sandbox answered %s, want an error for code %s", err, lastCode(s), tc.code)
			}
			if !strings.Contains(err.Error(), tc.code) {
				t.Errorf("error %q does not name code %s", err, tc.code)
			}
			if strings.Contains(err.Error(), keyA) {
				t.Fatal("error shows the apikey")
			}
		})
	}

	t.Run("429 fault", func(t *testing.T) {
		s.SetFaults(Faults{Payment: &APIFault{Times: 1, Code: "429", RetryAfter: 4}})
		_, err := c.InitPayment(ctx, clientRequest("CLI4", "http://127.0.0.1:1"))
		if err == nil || lastCode(s) != "429" {
			t.Fatalf("err %v", err)
		}
		if _, ok := s.Transaction("CLI4"); ok {
			t.Fatal("a 429 created the transaction")
		}
	})
	t.Run("truncated answer", func(t *testing.T) {
		s.SetFaults(Faults{Payment: &APIFault{Times: 1, Body: BodyTruncated}})
		if _, err := c.InitPayment(ctx, clientRequest("CLI5", "http://127.0.0.1:1")); err == nil {
			t.Fatal("a truncated answer was accepted")
		}
		if _, ok := s.Transaction("CLI5"); !ok {
			t.Fatal("truncated call did not create the transaction")
		}
	})
	t.Run("timeout", func(t *testing.T) {
		s.SetFaults(Faults{Payment: &APIFault{Times: 1, Hang: Duration(5 * time.Second)}})
		short := newClient(ts.URL, keyA, siteA)
		short.Timeout = 100 * time.Millisecond
		_, err := short.InitPayment(ctx, clientRequest("CLI6", "http://127.0.0.1:1"))
		if err == nil || !strings.Contains(err.Error(), "timeout") {
			t.Fatalf("err %v, want a timeout", err)
		}
		waitFor(t, "the timed-out payment to exist", func() bool { _, ok := s.Transaction("CLI6"); return ok })
	})
}

func TestClientCheckPayment(t *testing.T) {
	s, ts := newSandbox(t)
	n := newNotifyServer(t)
	ctx := context.Background()
	c := newClient(ts.URL, keyA, siteA)
	for _, id := range []string{"CLIACC", "CLIREF", "CLIWAIT"} {
		if _, err := c.InitPayment(ctx, clientRequest(id, n.URL)); err != nil {
			t.Fatal(err)
		}
	}
	for id, action := range map[string]string{"CLIACC": ActionAccept, "CLIREF": ActionRefuse, "CLIWAIT": ActionWait} {
		if _, err := s.Act(id, action); err != nil {
			t.Fatal(err)
		}
	}

	res, err := c.CheckPayment(ctx, "CLIACC")
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != "00" || res.Data.Status != "ACCEPTED" || res.Data.Amount != "1500" ||
		res.Data.Currency != "XOF" || res.Data.PaymentMethod != "OM" || res.Data.OperatorID == "" ||
		res.Data.PaymentDate == "" || res.Data.Metadata != "b3JkZXI9Nw==" {
		t.Fatalf("accepted: %+v %+v", res, res.Data)
	}

	res, err = c.CheckPayment(ctx, "CLIREF")
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != "627" || res.Data.Status != "REFUSED" || res.Data.OperatorID != "" || res.Data.PaymentDate != "" {
		t.Fatalf("refused: %+v %+v", res, res.Data)
	}

	res, err = c.CheckPayment(ctx, "CLIWAIT")
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != "662" || res.Data.Status != "WAITING_FOR_CUSTOMER" {
		t.Fatalf("waiting: %+v %+v", res, res.Data)
	}

	if res, err := c.CheckPayment(ctx, "CLINONE"); err == nil || lastCode(s) != "605" {
		t.Fatalf("unknown: %v %+v", err, res)
	}

	s.SetFaults(Faults{Check: &APIFault{Times: 1, Status: 502}})
	if res, err := c.CheckPayment(ctx, "CLIACC"); err == nil {
		t.Fatalf("502 gave a result: %+v", res)
	}
	s.SetFaults(Faults{Paid: &PaidFault{Amount: 1000}})
	if _, err := s.Act("CLIWAIT", ActionAccept); err != nil {
		t.Fatal(err)
	}
	if res, err := c.CheckPayment(ctx, "CLIWAIT"); err != nil || res.Data.Amount != "1000" {
		t.Fatalf("paid fault: %v %+v", err, res)
	}
	if s.CheckCount("CLIACC") != 2 || s.PaymentCount() != 3 {
		t.Fatalf("counts %d %d", s.CheckCount("CLIACC"), s.PaymentCount())
	}
}
