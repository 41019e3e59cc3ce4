package verify

import (
	"context"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/seal-dev/seal/pkg/oci"
)

// DefaultConcurrency is how many images VerifyAll checks at once.
const DefaultConcurrency = 8

// VerifyAll verifies every image with at most concurrency workers sharing
// c, and returns the results in the order of refs. Every image is checked,
// whatever happens to the others. progress, when not nil, is called after
// each image with how many are done; calls never overlap.
func (v *Verifier) VerifyAll(ctx context.Context, c *oci.Client, refs []name.Reference, concurrency int, progress func(done, total int)) []Result {
	if concurrency < 1 {
		concurrency = DefaultConcurrency
	}
	results := make([]Result, len(refs))
	next := make(chan int)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
	)
	for range min(concurrency, len(refs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = v.Verify(ctx, c, refs[i])
				if progress != nil {
					mu.Lock()
					done++
					progress(done, len(refs))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range refs {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}
