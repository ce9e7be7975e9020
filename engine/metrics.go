package engine

import "github.com/prometheus/client_golang/prometheus"

// Metrics of the engine, created once; the Caddy module registers Collectors in the registry
// of every config. Labels are bounded: no ids.
var (
	metricStarts = CounterVec("payment_starts_total", "result",
		"Payment starts by result: started, reused, paid, invalid, refused, rate_limited, unknown, interrupted.")
	metricChecks = CounterVec("checks_total", "result",
		"Status calls to CinetPay by verdict: accepted, refused, expired, pending, not_found, no_answer.")
	metricStates = CounterVec("state_changes_total", "state",
		"Payment state changes by new state.")
	metricDeliveries = CounterVec("delivery_attempts_total", "result",
		"Delivery attempts to the shop by result: delivered, retry, given_up.")
	metricAPIDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "cinetpay", Name: "api_call_duration_seconds",
		Help:    "Duration of CinetPay API calls by operation: payment, check.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"op"})
)

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
