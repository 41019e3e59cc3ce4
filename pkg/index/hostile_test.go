package index_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/oci"
)

// Gather (index create) and Describe (inspect) read sources nobody has
// verified yet: each lie of the lying registry must be refused with a clear
// input error, in less than 5 s, the heap never more than 64 MiB above where
// it started (the in-process liar included).
func TestGatherAndDescribeLyingRegistry(t *testing.T) {
	const (
		maxTime = 5 * time.Second
		maxHeap = 64 << 20
	)
	liar := testenv.NewLiar(t)
	limit := fmt.Sprintf("above the %d-byte limit", oci.DefaultManifestLimit)
	for _, tc := range []struct {
		name string
		lie  func(*testenv.Liar) testenv.Lie
		want string
	}{
		{"index listing itself through another", (*testenv.Liar).Cycle, "registry served content with digest"},
		{"indexes nested 64 deep", (*testenv.Liar).DeepChain, "nested more than 4 deep"},
		{"index of 100 000 entries", (*testenv.Liar).WideIndex, limit},
		{"manifest of 100 MiB", func(l *testenv.Liar) testenv.Lie { return l.HugeManifest(true) }, limit},
		{"other bytes for a manifest", (*testenv.Liar).OtherManifest, "registry served content with digest"},
		{"other bytes for a config", (*testenv.Liar).OtherBlob, "registry served content with digest"},
	} {
		for _, walk := range []string{"Gather", "Describe"} {
			t.Run(tc.name+"/"+walk, func(t *testing.T) {
				lie := tc.lie(liar)
				c := oci.NewClient(oci.WithTransport(http.DefaultTransport.(*http.Transport).Clone()), fastRetry)
				ref, err := c.ParseReference(lie.Ref)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				var werr error
				cost := testenv.Measure(func() {
					// The walk is given what the tag claims (index create
					// and inspect resolve first, and oci's Resolve refuses
					// the oversized ones by their HEAD already).
					desc := lie.Descriptor
					f := index.RegistryFetcher(c, ref.Context())
					if walk == "Gather" {
						_, werr = index.Gather(ctx, f, lie.Ref, desc)
					} else {
						_, werr = index.Describe(ctx, f, desc)
					}
				})
				t.Logf("%s: %v", cost, werr)
				if werr == nil {
					t.Fatal("accepted")
				}
				if k := fault.KindOf(werr); k != fault.Input {
					t.Errorf("error kind %v, want input", k)
				}
				if !strings.Contains(werr.Error(), tc.want) {
					t.Errorf("error %q does not say %q", werr, tc.want)
				}
				if cost.Elapsed > maxTime || cost.HeapGrowth > maxHeap {
					t.Errorf("cost %s, bounds %v and %d MiB", cost, maxTime, maxHeap>>20)
				}
			})
		}
	}
}

// An honest fan-out (three levels of indexes, each listing the one below
// 200 times, over one image) is 8 million paths to one image: a walk is
// refused once it has read 256 manifests or its indexes have listed 10 000
// entries, whichever comes first.
func TestGatherAndDescribeFanOut(t *testing.T) {
	liar := testenv.NewLiar(t)
	lie := liar.FanOut()
	for _, walk := range []string{"Gather", "Describe"} {
		t.Run(walk, func(t *testing.T) {
			c := oci.NewClient(oci.WithTransport(http.DefaultTransport.(*http.Transport).Clone()), fastRetry)
			ref, err := c.ParseReference(lie.Ref)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			before := liar.Requests("GET manifests")
			var werr error
			var n int
			cost := testenv.Measure(func() {
				f := index.RegistryFetcher(c, ref.Context())
				desc := v1.Descriptor{MediaType: lie.Descriptor.MediaType, Size: lie.Descriptor.Size, Digest: lie.Descriptor.Digest}
				if walk == "Gather" {
					var src index.Source
					src, werr = index.Gather(ctx, f, lie.Ref, desc)
					n = len(src.Children)
				} else {
					_, werr = index.Describe(ctx, f, desc)
				}
			})
			gets := liar.Requests("GET manifests") - before
			t.Logf("%s; %d manifest GETs; %d children; %v", cost, gets, n, werr)
			if cost.Elapsed > 5*time.Second || cost.HeapGrowth > 64<<20 {
				t.Errorf("cost %s, bounds 5s and 64 MiB", cost)
			}
			if werr == nil || fault.KindOf(werr) != fault.Input || !strings.Contains(werr.Error(), "more than") {
				t.Errorf("error %v (kind %v), want an input error saying what it would take more than", werr, fault.KindOf(werr))
			}
		})
	}
}
