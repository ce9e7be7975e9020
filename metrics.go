package caddycinetpay

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics, created once and registered in the registry of every config (Caddy gives each
// config load a fresh registry). Labels are bounded: no ids.
var (
	metricStarts = counterVec("payment_starts_total", "result",
		"Payment starts by result: started, reused, paid, invalid, refused, rate_limited, unknown, interrupted.")
	metricNotifications = counterVec("notifications_total", "result",
		"Notifications by outcome: checked, settled, foreign, unknown, bad_token, wrong_site, bad_request, too_large, in_progress, no_answer.")
	metricChecks = counterVec("checks_total", "result",
		"Calls to /v2/payment/check by verdict: accepted, refused, pending, no_answer.")
	metricStates = counterVec("state_changes_total", "state",
		"Payment state changes by new state.")
	metricDeliveries = counterVec("delivery_attempts_total", "result",
		"Delivery attempts to the shop by result: delivered, retry, given_up.")
	metricAPIDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "cinetpay", Name: "api_call_duration_seconds",
		Help:    "Duration of CinetPay API calls by operation: payment, check.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"op"})
)

// counterVec is a caddy_cinetpay_* counter with one label.
func counterVec(name, label, help string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "cinetpay", Name: name, Help: help}, []string{label})
}

// registerMetrics registers the collectors in a config's registry, once.
func registerMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{metricStarts, metricNotifications, metricChecks,
		metricStates, metricDeliveries, metricAPIDuration} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}
