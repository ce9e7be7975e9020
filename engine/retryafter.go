package engine

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ParseRetryAfter reads a Retry-After value (delay-seconds or an HTTP date) as a delay from
// now, at most max; 0 when absent, bad or past. CinetPay's answers and the shop's answers to
// deliveries both carry one.
func ParseRetryAfter(v string, now time.Time, max time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if v[0] >= '0' && v[0] <= '9' {
		for i := 0; i < len(v); i++ {
			if v[i] < '0' || v[i] > '9' {
				return 0
			}
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(max/time.Second) {
			return max
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now)
	switch {
	case d <= 0:
		return 0
	case d > max:
		return max
	}
	return d.Round(time.Second)
}
