package engine

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
)

// flightGroup runs one call per key at a time; callers of a key in flight share its result.
type flightGroup[T any] struct {
	mu sync.Mutex
	m  map[string]*flight[T]
}

type flight[T any] struct {
	started time.Time
	done    chan struct{}
	val     T
	err     error
}

// do runs fn for key unless a call for key is in flight, in which case it waits for that
// call's result.
func (g *flightGroup[T]) do(key string, fn func() (T, error)) (T, error) {
	return g.doSince(key, time.Time{}, fn)
}

// doSince is do, but shares only a call that began at since or later: a caller that must not
// act on an answer older than itself (a notification) waits for an older call to end, then
// runs or joins a new one.
func (g *flightGroup[T]) doSince(key string, since time.Time, fn func() (T, error)) (T, error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = map[string]*flight[T]{}
	}
	for {
		f, ok := g.m[key]
		if !ok {
			break
		}
		g.mu.Unlock()
		<-f.done
		if !f.started.Before(since) {
			return f.val, f.err
		}
		g.mu.Lock()
	}
	f := &flight[T]{started: time.Now(), done: make(chan struct{})}
	g.m[key] = f
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.m, key)
		g.mu.Unlock()
		close(f.done)
	}()
	f.val, f.err = fn()
	return f.val, f.err
}

// pump runs a queue of the store with a fixed set of workers. It lists a page of due items
// (more than there are workers), hands each one not already in flight to the next free worker
// (waiting for one to be free), and lists again as soon as the page is handed out. When a
// listing finds nothing new it waits for a wake-up, or a tick of pollEvery for items whose
// time has come. So a worker that finishes takes the next due item at once, and the number of
// workers (and, for CinetPay calls, the rate budget) is the only limit on the rate.
//
// Each item is taken again by the handler under the store's own guard (a lease, a re-read),
// so an item listed twice is never worked on twice at once. An item listed while in flight is
// skipped; a handler that leaves its item due at once (a delivery replayed during its attempt)
// returns true, and the listing runs again when the item is no longer in flight.
func pump[T any](ctx context.Context, e *Engine, wake <-chan struct{}, workers int, what string,
	due func(n int) ([]T, error), key func(T) string, handle func(T) (dueAgain bool)) {
	work := make(chan T)
	inflight := newKeySet()
	again := make(chan struct{}, 1)
	for range workers {
		if !e.spawn(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case it := <-work:
					dueAgain := handle(it)
					inflight.remove(key(it))
					if dueAgain {
						select {
						case again <- struct{}{}:
						default:
						}
					}
				}
			}
		}) {
			return
		}
	}
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	page := workers + 64
	for {
		items, err := due(page)
		if err != nil {
			e.logger.Error("listing due "+what, zap.Error(err))
		}
		handed := 0
		for _, it := range items {
			id := key(it)
			if !inflight.add(id) {
				continue
			}
			select {
			case work <- it:
				handed++
			case <-ctx.Done():
				return
			}
		}
		if handed > 0 && len(items) == page {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-wake:
		case <-again:
		}
	}
}

// pollEvery is how often a queue looks for items whose time has come (a variable for tests).
var pollEvery = time.Second

// keySet is a set of strings safe for concurrent use.
type keySet struct {
	mu sync.Mutex
	m  map[string]bool
}

func newKeySet() *keySet { return &keySet{m: map[string]bool{}} }

// add adds k and reports whether it was absent.
func (s *keySet) add(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[k] {
		return false
	}
	s.m[k] = true
	return true
}

func (s *keySet) remove(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
}
