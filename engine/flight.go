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

// pump runs a queue of the store: every second (and when woken), it lists what is due and
// hands each item not already in flight to handle, at most workers at a time, as background
// work of the engine.
func pump[T any](ctx context.Context, e *Engine, wake <-chan struct{}, workers int, what string,
	due func() ([]T, error), key func(T) string, handle func(T)) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	sem := make(chan struct{}, workers)
	inflight := newKeySet()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-wake:
		}
		items, err := due()
		if err != nil {
			e.logger.Error("listing due "+what, zap.Error(err))
			continue
		}
		for _, it := range items {
			id := key(it)
			if !inflight.add(id) {
				continue
			}
			select {
			case sem <- struct{}{}:
			default:
				inflight.remove(id) // all workers busy: next round
				continue
			}
			if !e.spawn(func() {
				defer func() { <-sem; inflight.remove(id) }()
				handle(it)
			}) {
				return
			}
		}
	}
}

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
