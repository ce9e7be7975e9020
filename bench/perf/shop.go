package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// shop is the shop backend the module delivers results to: a Go server that counts the POSTs
// to /webhook and their distinct Cinetpay-Event-Id, and answers 204.
type shop struct {
	srv *http.Server

	mu     sync.Mutex
	posts  int
	seen   map[string]bool
	first  time.Time   // arrival of the first POST
	unique []time.Time // arrival of each distinct event id, in order
	waitN  int
	reach  chan struct{} // closed when len(unique) reaches waitN
}

// startShop listens on addr.
func startShop(addr string) (*shop, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("shop backend: %w", err)
	}
	s := &shop{seen: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhook", s.webhook)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

func (s *shop) webhook(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("Cinetpay-Event-Id")
	now := time.Now()
	s.mu.Lock()
	s.posts++
	if s.first.IsZero() {
		s.first = now
	}
	if id != "" && !s.seen[id] {
		s.seen[id] = true
		s.unique = append(s.unique, now)
		if s.reach != nil && len(s.unique) >= s.waitN {
			close(s.reach)
			s.reach = nil
		}
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// reset forgets what was received.
func (s *shop) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts, s.seen, s.first, s.unique, s.reach = 0, map[string]bool{}, time.Time{}, nil, nil
}

// shopCount is what the shop has received.
type shopCount struct {
	posts, unique int
	first         time.Time // first POST
	firstUnique   time.Time // first distinct event
	lastUnique    time.Time // latest distinct event
}

// duplicates is how many POSTs repeated an event already received.
func (c shopCount) duplicates() int { return c.posts - c.unique }

// rate is the distinct events per second between the first and the latest one.
func (c shopCount) rate() float64 {
	span := c.lastUnique.Sub(c.firstUnique).Seconds()
	if c.unique < 2 || span <= 0 {
		return 0
	}
	return float64(c.unique-1) / span
}

func (s *shop) count() shopCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := shopCount{posts: s.posts, unique: len(s.unique), first: s.first}
	if len(s.unique) > 0 {
		c.firstUnique, c.lastUnique = s.unique[0], s.unique[len(s.unique)-1]
	}
	return c
}

// errTimeout says that a wait ended before its goal; the figures are then partial.
var errTimeout = errors.New("timed out")

// waitUnique waits until n distinct events have arrived, or timeout (errTimeout), or the
// process p has exited.
func (s *shop) waitUnique(n int, timeout time.Duration, p *caddyProc) (shopCount, error) {
	s.mu.Lock()
	if len(s.unique) >= n {
		s.mu.Unlock()
		return s.count(), nil
	}
	reach := make(chan struct{})
	s.reach, s.waitN = reach, n
	s.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-reach:
		return s.count(), nil
	case <-t.C:
		return s.count(), errTimeout
	case <-p.done:
		return s.count(), fmt.Errorf("%s exited (%v); its log:\n%s", p.name, p.err, p.logTail(30))
	}
}

// close stops the server.
func (s *shop) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}
