package engine

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Metrics of the engine, created once; the Caddy module registers Collectors in the registry
// of every config. Labels are bounded: no ids.
var (
	metricStarts = CounterVec("payment_starts_total", "result",
		"Payment starts by result: started, reused, paid, invalid, refused, rate_limited, unknown, interrupted.")
	metricChecks = CounterVec("checks_total", "result",
		"Status calls to CinetPay by verdict: accepted, refused, expired, pending, not_found, no_answer.")
	metricStates = CounterVec("state_changes_total", "state",
		"Payment state changes by new state, lowercase: pending, accepted, refused, mismatch, duplicate, expired, failed, unknown.")
	metricDeliveries = CounterVec("delivery_attempts_total", "result",
		"Delivery attempts to the shop by result: delivered, retry, given_up.")
	metricAPIDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "cinetpay", Name: "api_call_duration_seconds",
		Help: "Duration of CinetPay API calls by operation (payment, check) and outcome: ok, unknown " +
			"(no usable answer: a timeout, a 5xx, garbage), refused, rate_limited.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"op", "outcome"})
)

// observeCall records the duration of a CinetPay call that began at started and ended with err.
func observeCall(op string, started time.Time, err error) {
	outcome := "ok"
	if err != nil {
		o, _ := OutcomeOf(err)
		outcome = o.String()
	}
	metricAPIDuration.WithLabelValues(op, outcome).Observe(time.Since(started).Seconds())
}

// stateLabel is a state as metrics label it: lowercase.
func stateLabel(st storage.State) string { return strings.ToLower(string(st)) }

// CounterVec is a caddy_cinetpay_* counter with one label.
func CounterVec(name, label, help string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "cinetpay", Name: name, Help: help}, []string{label})
}

// CountStart counts a start that ended before reaching the engine (result "invalid": the
// shop's intent was refused).
func CountStart(result string) { metricStarts.WithLabelValues(result).Inc() }

// Collectors are the engine's metrics.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{metricStarts, metricChecks, metricStates, metricDeliveries, metricAPIDuration}
}
