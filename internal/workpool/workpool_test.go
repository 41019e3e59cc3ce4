package workpool

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seal-dev/seal/pkg/fault"
)

func TestEachRunsEveryItemBounded(t *testing.T) {
	for _, size := range []int{0, 1, 3, 50} {
		var running, peak, done atomic.Int64
		Each(context.Background(), size, 20, func(_ context.Context, i int) {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			running.Add(-1)
			done.Add(1)
		})
		if done.Load() != 20 {
			t.Errorf("size %d: %d items ran, want 20", size, done.Load())
		}
		if want := int64(min(max(size, 1), 20)); peak.Load() > want {
			t.Errorf("size %d: %d at once, want at most %d", size, peak.Load(), want)
		}
	}
}

func TestFirstErrorStopsTheRest(t *testing.T) {
	boom := errors.New("boom")
	var started atomic.Int64
	err := FirstError(context.Background(), 2, 100, func(ctx context.Context, i int) error {
		started.Add(1)
		if i == 3 {
			return boom
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if started.Load() == 100 {
		t.Error("every item started after the first error")
	}
}

func TestFirstErrorCancelledFromOutside(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := FirstError(ctx, 2, 10, func(context.Context, int) error { return nil })
	if fault.KindOf(err) != fault.Operational || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v (kind %v), want an operational cancellation", err, fault.KindOf(err))
	}
}
