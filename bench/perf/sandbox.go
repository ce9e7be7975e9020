package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"
)

// sandboxClient speaks to the CinetPay sandbox (the cinetpay_sandbox site): its merchant API, as
// the module does, and its control API /_sandbox/... (sandbox/control.go).
type sandboxClient struct {
	base   string
	client *http.Client
}

// create makes a transaction at the sandbox through its merchant API (POST /v2/payment), as a
// payment start of the module would: 1000 XOF, waiting for the customer.
func (c *sandboxClient) create(txid string) error {
	body, _ := json.Marshal(map[string]any{
		"apikey": apiKey, "site_id": siteID, "transaction_id": txid, "amount": 1000, "currency": "XOF",
		"description": "Perf order", "channels": "ALL", "lang": "fr",
		"notify_url": moduleURL + "/cinetpay/notify", "return_url": moduleURL + "/cinetpay/return",
	})
	b, err := do(c.client, http.MethodPost, c.base+"/v2/payment", "application/json", body,
		http.Header{"User-Agent": {"cinetpay-perf"}}, http.StatusOK)
	if err != nil {
		return fmt.Errorf("creating sandbox transaction %s: %w", txid, err)
	}
	var ans struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(b, &ans) != nil || ans.Code != "201" {
		return fmt.Errorf("creating sandbox transaction %s: answer %s", txid, truncate(b, 200))
	}
	return nil
}

// checkBody is a /v2/payment/check call for txid, as the module makes it.
func checkBody(txid string) []byte {
	b, _ := json.Marshal(map[string]any{"apikey": apiKey, "site_id": siteID, "transaction_id": txid})
	return b
}

// act applies a payment-page action ("accept", "refuse", ...) to a transaction.
func (c *sandboxClient) act(txid, action string) error {
	_, err := do(c.client, http.MethodPost, c.base+"/_sandbox/transactions/"+txid+"/"+action+"?site_id="+siteID,
		"application/json", nil, nil, http.StatusOK)
	return err
}

// setFaults replaces the sandbox's fault knobs (sandbox/faults.go) with the JSON faults.
func (c *sandboxClient) setFaults(faults string) error {
	_, err := do(c.client, http.MethodPut, c.base+"/_sandbox/faults", "application/json", []byte(faults), nil, http.StatusOK)
	return err
}

// clearRequests empties the sandbox's log of API calls.
func (c *sandboxClient) clearRequests() error {
	_, err := do(c.client, http.MethodDelete, c.base+"/_sandbox/requests", "", nil, nil, http.StatusNoContent)
	return err
}

// apiCall is one entry of the sandbox's log of API calls (sandbox.Request).
type apiCall struct {
	Time          time.Time `json:"time"`
	Path          string    `json:"path"`
	TransactionID string    `json:"transaction_id"`
	Status        int       `json:"status"`
}

// requests returns the sandbox's log of API calls.
func (c *sandboxClient) requests() ([]apiCall, error) {
	var calls []apiCall
	err := getJSON(c.client, c.base+"/_sandbox/requests", &calls)
	return calls, err
}

// checkStats sums up the /v2/payment/check calls of a log.
type checkStats struct {
	calls, unique, failed int
	first, last           time.Time // first call; first call of the latest transaction checked
}

// rate is the distinct transactions checked per second between the first and the latest.
func (s checkStats) rate() float64 {
	span := s.last.Sub(s.first).Seconds()
	if s.unique < 2 || span <= 0 {
		return 0
	}
	return float64(s.unique-1) / span
}

// beyondBurst is the rate of the checks beyond the rate limiter's burst. The module's limiter
// is a token bucket of burst tokens (one second of budget), full when Caddy starts, so within
// t seconds of the first check at most burst + budget·t checks can be made: (checked − burst)
// / t is at most the budget, about the budget when the budget limits the drain, and well below
// when something else does. NaN when the drain was too short to tell.
func (s checkStats) beyondBurst(burst int) float64 {
	span := s.last.Sub(s.first).Seconds()
	if s.unique <= burst+burst/10 || span <= 0 {
		return math.NaN()
	}
	return float64(s.unique-burst) / span
}

func countChecks(calls []apiCall) checkStats {
	var s checkStats
	seen := map[string]bool{}
	for _, c := range calls {
		if c.Path != "/v2/payment/check" {
			continue
		}
		s.calls++
		if c.Status != http.StatusOK {
			s.failed++
		}
		if s.first.IsZero() || c.Time.Before(s.first) {
			s.first = c.Time
		}
		if !seen[c.TransactionID] {
			seen[c.TransactionID] = true
			s.unique++
			if c.Time.After(s.last) {
				s.last = c.Time
			}
		}
	}
	return s
}
