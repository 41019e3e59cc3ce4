package oci_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
)

// The bounds every lie of the lying registry must be refused within, with
// the default limits: a clear error, in less than hostileTime, with the heap
// never more than hostileHeap above where it started (the liar, which runs
// in this process and streams what it sends, included).
const (
	hostileTime = 5 * time.Second
	hostileHeap = 64 << 20
)

type hostileCase struct {
	name string
	lie  func(l *testenv.Liar) testenv.Lie
	opts []oci.Option
	// run does the operation under test; dst is an empty repository of a
	// real registry, for copies.
	run  func(ctx context.Context, t *testing.T, c *oci.Client, lie testenv.Lie, dst name.Repository) error
	kind fault.Kind    // fault.Unknown: not checked
	want []string      // parts of the error; "a|b" wants a or b
	heap uint64        // the heap bound, when not hostileHeap
	time time.Duration // the time bound, when not hostileTime
	// after checks what the refusal left behind.
	after func(ctx context.Context, t *testing.T, c *oci.Client, lie testenv.Lie, dst name.Repository)
}

func TestLyingRegistry(t *testing.T) {
	liar := testenv.NewLiar(t)
	dstReg := testenv.GGCR(t)
	limit := fmt.Sprintf("above the %d-byte limit", oci.DefaultManifestLimit)
	hugeSize := fmt.Sprint(testenv.LiarManifestSize)
	endless := fmt.Sprintf("registry served more than %d bytes|registry served content with digest", testenv.LiarEndlessClaimed)

	manifest := func(byDigest bool) func(ctx context.Context, t *testing.T, c *oci.Client, lie testenv.Lie, _ name.Repository) error {
		return func(ctx context.Context, t *testing.T, c *oci.Client, lie testenv.Lie, _ name.Repository) error {
			s := lie.Ref
			if byDigest {
				s = lie.ByDigest()
			}
			_, err := c.Manifest(ctx, parseRef(t, c, s))
			return err
		}
	}
	copyTree := func(ctx context.Context, t *testing.T, c *oci.Client, lie testenv.Lie, dst name.Repository) error {
		_, err := c.CopyTree(ctx, parseRef(t, c, lie.ByDigest()).(name.Digest), dst)
		return err
	}
	blobBytes := func(max int64) func(ctx context.Context, t *testing.T, c *oci.Client, lie testenv.Lie, _ name.Repository) error {
		return func(ctx context.Context, t *testing.T, c *oci.Client, lie testenv.Lie, _ name.Repository) error {
			_, err := c.BlobBytes(ctx, repoOf(t, c, lie.Repo()), lie.Blob, max)
			return err
		}
	}
	blobStream := func(ctx context.Context, t *testing.T, c *oci.Client, lie testenv.Lie, _ name.Repository) error {
		rc, err := c.Blob(ctx, repoOf(t, c, lie.Repo()), lie.Blob)
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(io.Discard, rc)
		return err
	}
	copyBlob := func(ctx context.Context, t *testing.T, c *oci.Client, lie testenv.Lie, dst name.Repository) error {
		return c.CopyBlob(ctx, repoOf(t, c, lie.Repo()), dst, lie.Blob)
	}
	referrers := func(ctx context.Context, t *testing.T, c *oci.Client, lie testenv.Lie, _ name.Repository) error {
		descs, err := c.Referrers(ctx, parseRef(t, c, lie.ByDigest()).(name.Digest))
		if err == nil {
			t.Errorf("%d referrers listed", len(descs))
		}
		return err
	}
	// Nothing of the lie may land in the destination.
	nothingCopied := func(ctx context.Context, t *testing.T, c *oci.Client, lie testenv.Lie, dst name.Repository) {
		for _, h := range []v1.Hash{lie.Descriptor.Digest, lie.Blob.Digest} {
			if h.Hex == "" {
				continue
			}
			if _, err := c.Resolve(ctx, dst.Digest(h.String())); err == nil {
				t.Errorf("manifest %s landed in %s", h, dst)
			}
			if ok, err := c.HasBlob(ctx, dst, h); err != nil || ok {
				t.Errorf("blob %s in %s: %v, %v", h, dst, ok, err)
			}
		}
	}
	// A descriptor claiming 1 TiB for the endless blob.
	tebibyte := func(l *testenv.Liar) testenv.Lie {
		lie := l.EndlessBlob()
		lie.Blob.Size = 1 << 40
		return lie
	}

	// A stall timeout short enough for a test, and few retries.
	stallOpts := []oci.Option{oci.WithStallTimeout(200 * time.Millisecond),
		oci.WithRetry(oci.Retry{Attempts: 2, BaseDelay: 10 * time.Millisecond})}

	for _, tc := range []hostileCase{
		// Other bytes for a digest.
		{name: "other bytes/manifest by digest", lie: (*testenv.Liar).OtherManifest, run: manifest(true), kind: fault.Input,
			want: []string{"registry served content with digest", "for sha256:"}},
		{name: "other bytes/manifest by tag", lie: (*testenv.Liar).OtherManifest, run: manifest(false), kind: fault.Input,
			want: []string{"registry announced digest sha256:", "but served content with digest"}},
		{name: "other bytes/manifest copied", lie: (*testenv.Liar).OtherManifest, run: copyTree, kind: fault.Input,
			want: []string{"registry served content with digest"}, after: nothingCopied},
		{name: "other bytes/blob read", lie: (*testenv.Liar).OtherBlob, run: blobBytes(1 << 20), kind: fault.Input,
			want: []string{"registry served content with digest"}},
		{name: "other bytes/blob streamed", lie: (*testenv.Liar).OtherBlob, run: blobStream, kind: fault.Input,
			want: []string{"registry served content with digest"}},
		{name: "other bytes/blob copied", lie: (*testenv.Liar).OtherBlob, run: copyBlob, kind: fault.Input,
			want: []string{"registry served content with digest"}, after: nothingCopied},
		{name: "other bytes/image copied", lie: (*testenv.Liar).OtherBlob, run: copyTree, kind: fault.Input,
			want: []string{"registry served content with digest"}, after: nothingCopied},

		// A manifest of 100 MiB.
		{name: "huge manifest/chunked", lie: func(l *testenv.Liar) testenv.Lie { return l.HugeManifest(true) }, run: manifest(true),
			kind: fault.Input, want: []string{"manifest is " + limit}},
		{name: "huge manifest/with length", lie: func(l *testenv.Liar) testenv.Lie { return l.HugeManifest(false) }, run: manifest(false),
			kind: fault.Input, want: []string{"manifest is " + hugeSize + " bytes, " + limit}},
		{name: "huge manifest/resolved", lie: func(l *testenv.Liar) testenv.Lie { return l.HugeManifest(true) },
			run: func(ctx context.Context, t *testing.T, c *oci.Client, lie testenv.Lie, _ name.Repository) error {
				_, err := c.Resolve(ctx, parseRef(t, c, lie.Ref))
				return err
			}, kind: fault.Input, want: []string{"is " + hugeSize + " bytes, " + limit}},
		{name: "huge manifest/copied", lie: func(l *testenv.Liar) testenv.Lie { return l.HugeManifest(true) }, run: copyTree,
			kind: fault.Input, want: []string{limit}, after: nothingCopied},

		// An index of 100 000 entries: over the size cap; under a raised
		// size cap, over the entries cap.
		{name: "wide index/fetched", lie: (*testenv.Liar).WideIndex, run: manifest(false), kind: fault.Input, want: []string{limit}},
		{name: "wide index/copied", lie: (*testenv.Liar).WideIndex, run: copyTree, kind: fault.Input, want: []string{limit}, after: nothingCopied},
		{name: "wide index/under a 32 MiB manifest cap", lie: (*testenv.Liar).WideIndex, run: manifest(false),
			opts: []oci.Option{oci.WithLimits(oci.Limits{Manifest: 32 << 20})},
			kind: fault.Input, want: []string{fmt.Sprintf("lists %d manifests, more than the %d allowed", testenv.LiarIndexEntries, oci.DefaultIndexEntriesLimit)},
			// 22 MB read and parsed twice: bounded by the cap the caller
			// raised, and slow under -race.
			heap: 4 * 32 << 20, time: 15 * time.Second},

		// Indexes listing themselves, or nesting without end.
		{name: "cycle/copied", lie: (*testenv.Liar).Cycle, run: copyTree, kind: fault.Input,
			want: []string{"registry served content with digest"}, after: nothingCopied},
		{name: "deep chain/copied", lie: (*testenv.Liar).DeepChain, run: copyTree, kind: fault.Input,
			want: []string{"indexes nested deeper than 8"}, after: nothingCopied},

		// A referrers list of 10 000 bundles.
		{name: "referrers/API", lie: func(l *testenv.Liar) testenv.Lie { return l.Referrers(testenv.ReferrersAPI) }, run: referrers,
			kind: fault.Input, want: []string{fmt.Sprintf("more than the %d referrers allowed", oci.DefaultReferrersLimit)}},
		{name: "referrers/API, paginated", lie: func(l *testenv.Liar) testenv.Lie { return l.Referrers(testenv.ReferrersPaged) }, run: referrers,
			kind: fault.Input, want: []string{fmt.Sprintf("more than the %d referrers allowed", oci.DefaultReferrersLimit)}},
		{name: "referrers/fallback tag", lie: func(l *testenv.Liar) testenv.Lie { return l.Referrers(testenv.ReferrersTag) }, run: referrers,
			kind: fault.Input, want: []string{fmt.Sprintf("lists %d manifests, more than the %d allowed", testenv.LiarReferrers, oci.DefaultReferrersLimit)}},
		{name: "referrers/attached", lie: func(l *testenv.Liar) testenv.Lie { return l.Referrers(testenv.ReferrersAPI) },
			run: func(ctx context.Context, t *testing.T, c *oci.Client, lie testenv.Lie, _ name.Repository) error {
				_, err := c.Attached(ctx, parseRef(t, c, lie.ByDigest()).(name.Digest))
				return err
			}, kind: fault.Input, want: []string{"referrers allowed"}},

		// A blob that never ends (and is not what it claims): refused
		// when it passes its size, or when its first bytes do not hash
		// to its digest, whichever the reads show first.
		{name: "endless blob/read", lie: (*testenv.Liar).EndlessBlob, run: blobBytes(16 << 20), kind: fault.Input,
			want: []string{endless}},
		{name: "endless blob/streamed", lie: (*testenv.Liar).EndlessBlob, run: blobStream, kind: fault.Input,
			want: []string{endless}},
		{name: "endless blob/copied", lie: (*testenv.Liar).EndlessBlob, run: copyBlob, kind: fault.Input,
			want: []string{endless}, after: nothingCopied},
		{name: "endless blob/image copied", lie: (*testenv.Liar).EndlessBlob, run: copyTree, kind: fault.Input,
			want: []string{endless}, after: nothingCopied},
		{name: "endless blob/claimed 1 TiB, read", lie: tebibyte, run: blobBytes(16 << 20), kind: fault.Input,
			want: []string{"1099511627776 bytes, above the 16777216-byte limit"}},
		{name: "endless blob/claimed 1 TiB, 1 GiB blob cap", lie: tebibyte, run: blobStream,
			opts: []oci.Option{oci.WithLimits(oci.Limits{Blob: 1 << 30})},
			kind: fault.Input, want: []string{"blob is 1099511627776 bytes, above the 1073741824-byte limit"}},
		// A body that stops halfway and holds the connection open: cut
		// after the stall timeout (manifests retried first), an
		// operational failure, and nothing copied.
		{name: "stalled manifest/by tag", lie: (*testenv.Liar).StalledManifest, run: manifest(false), opts: stallOpts,
			kind: fault.Operational, want: []string{"the registry sent nothing for 200ms"}},
		{name: "stalled manifest/by digest", lie: (*testenv.Liar).StalledManifest, run: manifest(true), opts: stallOpts,
			kind: fault.Operational, want: []string{"the registry sent nothing for 200ms"}},
		{name: "stalled blob/read", lie: (*testenv.Liar).StalledBlob, run: blobBytes(1 << 20), opts: stallOpts,
			kind: fault.Operational, want: []string{"the registry sent nothing for 200ms"}},
		{name: "stalled blob/streamed", lie: (*testenv.Liar).StalledBlob, run: blobStream, opts: stallOpts,
			kind: fault.Operational, want: []string{"the registry sent nothing for 200ms"}},
		{name: "stalled blob/image copied", lie: (*testenv.Liar).StalledBlob, run: copyTree, opts: stallOpts,
			kind: fault.Operational, want: []string{"the registry sent nothing for 200ms"}, after: nothingCopied},
		// With no blob cap (the default), a stream the descriptor says is
		// 1 TiB is read until the caller's context ends: in constant memory.
		{name: "endless blob/claimed 1 TiB, no cap, 1s context", lie: tebibyte,
			run: func(ctx context.Context, t *testing.T, c *oci.Client, lie testenv.Lie, dst name.Repository) error {
				ctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				err := blobStream(ctx, t, c, lie, dst)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("error %v, want the context's deadline", err)
				}
				return err
			}, want: []string{"context deadline exceeded"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			lie := tc.lie(liar) // built (and hashed) before measuring
			c := plainClient(t, tc.opts...)
			dst := repoOf(t, c, dstReg.Host+"/"+strings.ToLower(strings.NewReplacer(" ", "-", "/", "-", ",", "").Replace(tc.name)))
			served := liar.Served()
			var err error
			cost := testenv.Measure(func() { err = tc.run(ctx, t, c, lie, dst) })
			t.Logf("%s: %v; the liar sent %.1f MiB", cost, err, float64(liar.Served()-served)/(1<<20))
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.kind != fault.Unknown {
				mustKind(t, err, tc.kind)
			}
			for _, w := range tc.want {
				found := false
				for _, alt := range strings.Split(w, "|") {
					found = found || strings.Contains(err.Error(), alt)
				}
				if !found {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if limit := cmp.Or(tc.time, hostileTime); cost.Elapsed > limit {
				t.Errorf("took %v, more than %v", cost.Elapsed, limit)
			}
			bound := uint64(hostileHeap)
			if tc.heap != 0 {
				bound = tc.heap
			}
			if cost.HeapGrowth > bound {
				t.Errorf("heap grew by %d MiB, more than %d MiB", cost.HeapGrowth>>20, bound>>20)
			}
			if tc.after != nil {
				tc.after(ctx, t, c, lie, dst)
			}
		})
	}
}

// A paginated referrers list is abandoned as soon as it passes the limit,
// not read to its end (nor to the 64-page cap).
func TestLyingRegistryReferrerPagesStop(t *testing.T) {
	liar := testenv.NewLiar(t)
	lie := liar.Referrers(testenv.ReferrersPaged)
	c := plainClient(t)
	_, err := c.Referrers(testCtx(t), parseRef(t, c, lie.ByDigest()).(name.Digest))
	mustKind(t, err, fault.Input)
	pages := liar.Requests("GET referrers")
	if want := oci.DefaultReferrersLimit/testenv.LiarReferrersPage + 1; pages != want {
		t.Fatalf("%d referrers pages read, want %d (the first one over the limit)", pages, want)
	}
}

// A fan-out of honest indexes (200 entries, three levels, all one image)
// is copied by fetching each distinct manifest about once: what is already
// in the destination is not walked again.
func TestLyingRegistryFanOutCopy(t *testing.T) {
	liar := testenv.NewLiar(t)
	lie := liar.FanOut()
	dst := testenv.GGCR(t)
	c := plainClient(t)
	ctx := testCtx(t)
	var err error
	cost := testenv.Measure(func() {
		_, err = c.CopyTree(ctx, parseRef(t, c, lie.ByDigest()).(name.Digest), repoOf(t, c, dst.Host+"/fanout"))
	})
	gets := liar.Requests("GET manifests")
	t.Logf("%s; %d manifest GETs", cost, gets)
	if err != nil {
		t.Fatal(err)
	}
	// About 600 requests (200 × 3 HEADs to the destination): 1 s, 3 s
	// under -race; the bound leaves room for a loaded machine. The count
	// of GETs below is what shows the walk does not explode.
	if cost.Elapsed > 15*time.Second || cost.HeapGrowth > hostileHeap {
		t.Errorf("cost %s, bounds 15s and %d MiB", cost, hostileHeap>>20)
	}
	// Four copies run at once at each level, so a few of each level may be
	// fetched before the first of them lands.
	if max := 4 * 4 * 4 * testenv.LiarFanOutDepth; gets > max {
		t.Errorf("%d manifest GETs for 4 distinct manifests, want at most %d", gets, max)
	}
}

func parseRef(t *testing.T, c *oci.Client, s string) name.Reference {
	t.Helper()
	ref, err := c.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}
