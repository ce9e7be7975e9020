package engine

import (
	"context"
	"sync"
	"time"
)

// Priorities of CinetPay calls: notifications first, then customers (starts and returns), then
// the module's own re-checks.
const (
	PrioNotify = iota
	PrioCustomer
	PrioRecheck
	numPrios
)

// limiter is a token bucket shared by every CinetPay call of one site, so that a storm of
// notifications, returns or re-checks never earns the merchant a 429. Waiters are served by
// priority, then in arrival order.
type limiter struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
	queues [numPrios][]chan struct{}
	timer  *time.Timer
}

func newLimiter(perSecond int) *limiter {
	l := &limiter{last: time.Now()}
	l.setRateLocked(perSecond)
	l.tokens = l.burst
	return l
}

func (l *limiter) setRate(perSecond int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(time.Now())
	l.setRateLocked(perSecond)
}

func (l *limiter) setRateLocked(perSecond int) {
	if perSecond <= 0 {
		perSecond = DefaultRateLimit
	}
	l.rate, l.burst = float64(perSecond), float64(perSecond)
	if l.tokens > l.burst {
		l.tokens = l.burst
	}
}

func (l *limiter) refill(t time.Time) {
	if d := t.Sub(l.last).Seconds(); d > 0 {
		l.tokens = min(l.burst, l.tokens+d*l.rate)
	}
	l.last = t
}

func (l *limiter) queued(upTo int) int {
	n := 0
	for p := 0; p <= upTo && p < numPrios; p++ {
		n += len(l.queues[p])
	}
	return n
}

// wait takes one token, waiting behind callers of the same or a higher priority, until ctx
// ends.
func (l *limiter) wait(ctx context.Context, prio int) error {
	l.mu.Lock()
	l.refill(time.Now())
	if l.tokens >= 1 && l.queued(prio) == 0 {
		l.tokens--
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	l.queues[prio] = append(l.queues[prio], ch)
	l.arm()
	l.mu.Unlock()

	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, c := range l.queues[prio] {
			if c == ch {
				l.queues[prio] = append(l.queues[prio][:i], l.queues[prio][i+1:]...)
				return ctx.Err()
			}
		}
		// granted while giving up: hand the token back
		l.tokens++
		return ctx.Err()
	}
}

// arm schedules the next grant when callers wait.
func (l *limiter) arm() {
	if l.timer != nil || l.queued(numPrios-1) == 0 {
		return
	}
	d := time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
	if d < time.Millisecond {
		d = time.Millisecond
	}
	l.timer = time.AfterFunc(d, l.grant)
}

func (l *limiter) grant() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	l.refill(time.Now())
	for l.tokens >= 1 {
		granted := false
		for p := range l.queues {
			if len(l.queues[p]) > 0 {
				close(l.queues[p][0])
				l.queues[p] = l.queues[p][1:]
				l.tokens--
				granted = true
				break
			}
		}
		if !granted {
			break
		}
	}
	l.arm()
}
