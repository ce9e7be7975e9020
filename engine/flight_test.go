package engine

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Callers of one key share the call in flight; a caller that must not act on an answer older
// than itself (doSince) waits for an older call and runs or joins a newer one.
func TestFlightGroupSince(t *testing.T) {
	var g flightGroup[int]
	var calls atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{})
	slow := func() (int, error) {
		n := int(calls.Add(1))
		if n == 1 {
			close(started)
			<-release
		}
		return n, nil
	}
	var wg sync.WaitGroup
	var first, joined, fresh int
	wg.Go(func() { first, _ = g.do("k", slow) })
	<-started
	// began before the call: shares it
	wg.Go(func() { joined, _ = g.doSince("k", time.Time{}, slow) })
	// arrived after the call began: waits for it, then gets a call of its own
	arrived := time.Now()
	wg.Go(func() { fresh, _ = g.doSince("k", arrived, slow) })
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if first != 1 || joined != 1 || fresh != 2 || calls.Load() != 2 {
		t.Fatalf("first %d, joined %d, fresh %d, calls %d", first, joined, fresh, calls.Load())
	}

	// many callers arriving while an older call runs: none gets its answer; they share newer calls
	calls.Store(0)
	release = make(chan struct{})
	started = make(chan struct{})
	wg.Go(func() { _, _ = g.do("k", slow) })
	<-started
	arrived = time.Now()
	results := make([]int, 20)
	for i := range results {
		wg.Go(func() { results[i], _ = g.doSince("k", arrived, slow) })
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	for i, r := range results {
		if r < 2 {
			t.Fatalf("caller %d got the older call's answer", i)
		}
	}
	if n := calls.Load(); n < 2 || n > 21 {
		t.Fatalf("%d calls", n)
	}
}
