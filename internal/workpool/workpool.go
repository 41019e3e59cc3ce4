// Package workpool runs a batch's items on a bounded number of goroutines:
// the one shape every batch in seal has (sign, attest, copy, download), so
// each package does not grow its own.
package workpool

import (
	"context"
	"sync"

	"github.com/seal-dev/seal/pkg/fault"
)

// Each runs fn(ctx, i) for every i in 0..n-1, at most size at a time (1 when
// size < 1). Every item runs, even after others failed: fn records its own
// results and errors (after a cancellation, each remaining fn fails fast on
// ctx).
func Each(ctx context.Context, size, n int, fn func(ctx context.Context, i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(max(size, 1), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(ctx, i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// FirstError runs fn(ctx, i) for i in 0..n-1, at most size at a time, until
// the first error, which cancels the rest and is returned. A cancellation
// from outside is an operational failure.
func FirstError(ctx context.Context, size, n int, fn func(ctx context.Context, i int) error) error {
	if n == 1 {
		return fn(ctx, 0)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, max(size, 1))
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel(err) })
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return fault.Wrap(fault.Operational, context.Cause(ctx))
	}
	return first
}
