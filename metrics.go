package caddycinetpay

import (
	"errors"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-cinetpay/caddy-cinetpay/engine"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// Metrics of the HTTP side, created once and registered, with the engine's, in the registry of
// every config (Caddy gives each config load a fresh registry). Labels are bounded: no ids.
var metricNotifications = engine.CounterVec("notifications_total", "result",
	"Notifications by outcome: checked, scheduled, settled, repeat (of one already authenticated for a settled payment, answered from memory), foreign, unknown, bad_token, wrong_site, bad_request, too_large, slow_body, in_progress, no_answer.")

// The gauges operators alert on, read from every open store at each scrape (see storeGauges).
var (
	descDeliveriesPending = prometheus.NewDesc("caddy_cinetpay_deliveries_pending",
		"Deliveries to the shop not yet accepted by it nor given up, by site.", []string{"site_id"}, nil)
	descOldestPending = prometheus.NewDesc("caddy_cinetpay_delivery_oldest_pending_seconds",
		"Age of the current round of attempts of the oldest pending delivery (0 when none is pending), by site.",
		[]string{"site_id"}, nil)
	descPaymentsOpen = prometheus.NewDesc("caddy_cinetpay_payments_open",
		"Open payments, by site and state: init, pending, unknown.", []string{"site_id", "state"}, nil)
	descRechecksDue = prometheus.NewDesc("caddy_cinetpay_rechecks_due",
		"Payments whose re-check at CinetPay is due, by site.", []string{"site_id"}, nil)
)

// storeGauges is a collector of the gauges: at each scrape it asks every open store for its
// figures (storage.Store.Stats: memory with Badger, three grouped counts with PostgreSQL, where
// every instance reports the whole database's). Every configured site has its series, at 0 when
// it has nothing open or pending.
type storeGauges struct{}

func (storeGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDeliveriesPending, descOldestPending, descPaymentsOpen, descRechecksDue} {
		ch <- d
	}
}

func (storeGauges) Collect(ch chan<- prometheus.Metric) {
	now := engine.Now()
	sites := map[string]*storage.SiteStats{}
	site := func(id string) *storage.SiteStats {
		st := sites[id]
		if st == nil {
			st = &storage.SiteStats{PaymentsOpen: map[storage.State]int{}}
			sites[id] = st
		}
		return st
	}
	storePool.Range(func(_, v any) bool {
		e := v.(*storeEntry)
		release, ok := e.Acquire()
		if !ok {
			return true
		}
		defer release()
		for _, id := range e.Sites() {
			site(id)
		}
		stats, err := e.Store().Stats(now)
		if err != nil {
			e.logger.Warn("reading the store's figures for the metrics", zap.Error(err))
			return true
		}
		// one site in two stores (two directories) adds up
		for id, st := range stats {
			sum := site(id)
			sum.DeliveriesPending += st.DeliveriesPending
			sum.RechecksDue += st.RechecksDue
			if !st.OldestPending.IsZero() && (sum.OldestPending.IsZero() || st.OldestPending.Before(sum.OldestPending)) {
				sum.OldestPending = st.OldestPending
			}
			for state, n := range st.PaymentsOpen {
				sum.PaymentsOpen[state] += n
			}
		}
		return true
	})
	for id, st := range sites {
		ch <- prometheus.MustNewConstMetric(descDeliveriesPending, prometheus.GaugeValue, float64(st.DeliveriesPending), id)
		age := 0.0
		if !st.OldestPending.IsZero() {
			age = max(now.Sub(st.OldestPending).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(descOldestPending, prometheus.GaugeValue, age, id)
		for _, state := range storage.States {
			if state.Open() {
				ch <- prometheus.MustNewConstMetric(descPaymentsOpen, prometheus.GaugeValue, float64(st.PaymentsOpen[state]),
					id, strings.ToLower(string(state)))
			}
		}
		ch <- prometheus.MustNewConstMetric(descRechecksDue, prometheus.GaugeValue, float64(st.RechecksDue), id)
	}
}

// registerMetrics registers the collectors in a config's registry, once.
func registerMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	for _, c := range append(engine.Collectors(), metricNotifications, storeGauges{}) {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}
