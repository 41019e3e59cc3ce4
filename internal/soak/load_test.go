package soak

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/seal-dev/seal/internal/buildkit"
	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/attest"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/signing"
)

// loadHeapBound is the most heap VerifyAll may have in use at once, over
// what was in use before it started. 32 workers each hold one image's
// manifests and bundles (tens of KiB) and the results of all images are kept
// (a few KiB each): a few MiB in all. The bound leaves room for the
// in-process registry serving them and for the garbage collector's slack,
// and still catches a verifier that keeps what it fetched per image.
const loadHeapBound = 128 << 20

// TestLoadVerifyAll verifies SEAL_LOAD_IMAGES images (200 by default,
// `make load` 1000) with 32 workers sharing one client against one local
// registry (CNCF Distribution, in process). Each image is a BuildKit
// per-platform index signed with one signing.Sign call (one key) and its
// provenance signed with one attest.FromBuildKit call; the policy requires
// both. Every image must pass, and the heap in use while VerifyAll runs must
// stay under loadHeapBound. It reports the time and the peak heap, and the
// peak RSS of the process during VerifyAll (VmHWM after resetting it), which
// includes the registry.
func TestLoadVerifyAll(t *testing.T) {
	n := envInt(t, "SEAL_LOAD_IMAGES", 200)
	const workers = 32
	ctx := context.Background()
	reg := testenv.Distribution(t)
	c := oci.NewClient()

	// The images, pushed as BuildKit pushes them (8 at a time).
	start := time.Now()
	refs := make([]string, n)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		next = make(chan int)
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				ref := reg.Ref(fmt.Sprintf("load/img%04d:v1", i))
				img, err := buildkit.Build(buildkit.Options{
					Component: fmt.Sprintf("load/img%04d", i), Ref: ref,
					Platform: v1.Platform{OS: "linux", Architecture: "amd64"},
				})
				if err == nil {
					var tag name.Tag
					if tag, err = name.NewTag(ref); err == nil {
						err = remote.WriteIndex(tag, img.Index(), remote.WithContext(ctx))
					}
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("push %s: %w", ref, err))
					mu.Unlock()
				}
				refs[i] = fmt.Sprintf("%s@%s", ref, img.Digest())
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		t.Fatal(err)
	}
	pushed := time.Since(start)

	k, v := releaseKeyAndVerifier(t)
	start = time.Now()
	signed, err := signing.Sign(ctx, c, refs, signing.Options{Signer: k, Concurrency: 8})
	must(t, err)
	if len(signed) != n {
		t.Fatalf("%d signatures for %d images", len(signed), n)
	}
	attested, err := attest.FromBuildKit(ctx, c, refs, attest.Options{Signer: k, Concurrency: 8})
	must(t, err)
	if len(attested) != n {
		t.Fatalf("%d attestations for %d images", len(attested), n)
	}
	signedIn := time.Since(start)

	var targets []name.Reference
	for _, r := range refs {
		ref, err := c.ParseReference(r)
		must(t, err)
		targets = append(targets, ref)
	}

	// A fresh client, so that nothing signing fetched is reused.
	vc := oci.NewClient()
	runtime.GC()
	debug.FreeOSMemory()
	baseLive, _ := readHeap()
	hwmReset := resetPeakRSS()
	sampler := newHeapSampler(2 * time.Millisecond)
	start = time.Now()
	results := v.VerifyAll(ctx, vc, targets, workers, nil)
	elapsed := time.Since(start)
	peakLive, peakInUse := sampler.stop()
	rss, rssErr := peakRSS()

	failed := 0
	for _, r := range results {
		if !r.Passed {
			failed++
			if failed <= 5 {
				t.Errorf("%s: %v", r.Image, r.Err())
			}
		}
		if len(r.Signatures) == 0 || len(r.Attestations) == 0 {
			t.Errorf("%s passed with %d signatures and %d attestations", r.Image, len(r.Signatures), len(r.Attestations))
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d images failed", failed, n)
	}
	grown := int64(peakLive) - int64(baseLive)
	rssNote := "peak RSS (VmHWM) during VerifyAll"
	if !hwmReset {
		rssNote = "peak RSS (VmHWM) of the whole test process (could not reset it)"
	}
	rssText := fmt.Sprintf("%.1f MiB", mib(rss))
	if rssErr != nil {
		rssText = rssErr.Error()
	}
	t.Logf("load: %d images pushed in %s, signed and attested in %s; VerifyAll with %d workers: %s (%.1f images/s); live heap before %.1f MiB, peak %.1f MiB (+%.1f MiB); peak heap in use %.1f MiB; %s: %s",
		n, pushed.Round(time.Millisecond), signedIn.Round(time.Millisecond), workers, elapsed.Round(time.Millisecond),
		float64(n)/elapsed.Seconds(), mib(baseLive), mib(peakLive), float64(grown)/(1<<20), mib(peakInUse), rssNote, rssText)
	if grown > loadHeapBound {
		t.Errorf("live heap grew by %.1f MiB during VerifyAll, over the %d MiB bound", float64(grown)/(1<<20), loadHeapBound>>20)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// heapSampler records, every interval, the largest heap seen: live (what
// the last garbage collection found reachable, the figure a bound is about)
// and in use (live plus garbage not yet collected, which the GC pacer lets
// grow to about twice the live heap). runtime/metrics reads them without
// stopping the world.
type heapSampler struct {
	done chan struct{}
	max  chan [2]uint64
}

const (
	metricLive  = "/gc/heap/live:bytes"
	metricInUse = "/memory/classes/heap/objects:bytes"
)

func newHeapSampler(every time.Duration) *heapSampler {
	s := &heapSampler{done: make(chan struct{}), max: make(chan [2]uint64)}
	go func() {
		var peak [2]uint64
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			live, inUse := readHeap()
			peak[0], peak[1] = max(peak[0], live), max(peak[1], inUse)
			select {
			case <-s.done:
				s.max <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// stop returns the peak live heap and the peak heap in use.
func (s *heapSampler) stop() (live, inUse uint64) {
	close(s.done)
	p := <-s.max
	return p[0], p[1]
}

func readHeap() (live, inUse uint64) {
	samples := []metrics.Sample{{Name: metricLive}, {Name: metricInUse}}
	metrics.Read(samples)
	return samples[0].Value.Uint64(), samples[1].Value.Uint64()
}

// resetPeakRSS resets the kernel's VmHWM of this process (Linux ≥ 4.0), so
// that peakRSS reports the peak from now on.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakRSS is VmHWM from /proc/self/status, in bytes.
func peakRSS() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("peak RSS unknown: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("peak RSS: VmHWM %q: %v", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("peak RSS unknown: no VmHWM in /proc/self/status")
}
