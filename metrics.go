package caddycinetpay

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
)

// Metrics of the HTTP side, created once and registered, with the engine's, in the registry of
// every config (Caddy gives each config load a fresh registry). Labels are bounded: no ids.
var metricNotifications = engine.CounterVec("notifications_total", "result",
	"Notifications by outcome: checked, scheduled, settled, foreign, unknown, bad_token, wrong_site, bad_request, too_large, slow_body, in_progress, no_answer.")

// registerMetrics registers the collectors in a config's registry, once.
func registerMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	for _, c := range append(engine.Collectors(), metricNotifications) {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}
