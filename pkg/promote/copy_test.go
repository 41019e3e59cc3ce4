package promote_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/promote"
)

// A signed, attested two-platform release goes from a registry with the
// referrers API (staging) to one without (prime) and back to the first in
// another repository, behind the policy gate. At each end: the same
// manifests, referrers and legacy tags (by digest) as the source; the
// referrers discoverable the way that registry supports (fallback tag
// without the API, none with it); the real cosign verifies the signatures
// and the provenance in both formats; the gate passed at both ends.
func TestCopyRoundTripAcrossReferrersModes(t *testing.T) {
	ctx := context.Background()
	api, fallback := testenv.GGCR(t), testenv.Distribution(t)
	c := client()
	k := newKey(t)
	rel := pushRelease(t, c, api, "fleet", "staging/fleet", k)
	want := inventory(t, c, rel.index)
	gate := keyGate(t, c, k)

	hops := []struct {
		name       string
		src, dst   string
		dstAPI     bool
		wantLegacy int64
	}{
		{"api to fallback", rel.tag.String(), fallback.Ref("prime/fleet:v1"), false, 4},
		{"fallback to api", fallback.Ref("prime/fleet:v1"), api.Ref("back/fleet:v1.0"), true, 4},
	}
	for _, hop := range hops {
		t.Run(hop.name, func(t *testing.T) {
			src, dst, err := promote.ParsePair(c, hop.src, hop.dst)
			must(t, err)
			res, err := promote.Copy(ctx, c, src, dst, promote.Options{Gate: gate})
			if err != nil {
				t.Fatalf("copy: %v (result %+v)", err, res)
			}
			if res.Digest != rel.index.DigestStr() || !res.Tagged {
				t.Fatalf("result digest %s tagged %v, want %s tagged", res.Digest, res.Tagged, rel.index.DigestStr())
			}
			// The tree: index, 2 platforms, 2 BuildKit attestation manifests.
			// Referrers: 3 signatures + 3 provenance bundles, and on the
			// way out of the API registry also the 2 attestation manifests
			// (their subject is their platform manifest); the way back they
			// are already listed by the API once the tree is there.
			// ggcr's registry stores blobs once for all repositories: on
			// the way back they are all there already.
			if res.Manifests.Copied < 5+6 || res.Blobs.Copied+res.Blobs.Skipped < 10 || res.Bytes.Copied+res.Bytes.Skipped == 0 {
				t.Errorf("counts %+v %+v %+v", res.Manifests, res.Blobs, res.Bytes)
			}
			if got, want := res.Referrers.Copied, int64(6); got < want {
				t.Errorf("referrers copied %d, want at least %d", got, want)
			}
			if res.LegacyTags.Copied != hop.wantLegacy {
				t.Errorf("legacy tags copied %d, want %d (.sig on index and platforms, .att on index)", res.LegacyTags.Copied, hop.wantLegacy)
			}
			if v := res.Verification; v == nil || v.Source == nil || !v.Source.Passed || v.Destination == nil || !v.Destination.Passed {
				t.Fatalf("verification %+v", v)
			}
			if !strings.HasPrefix(res.Verification.Destination.Image, dst.Context().Name()+":"+dst.TagStr()+"@") {
				t.Errorf("destination verified as %s", res.Verification.Destination.Image)
			}

			dd := dst.Context().Digest(res.Digest)
			sameInventory(t, "inventory at "+dst.String(), want, inventory(t, c, dd))
			// Referrers discoverable the destination's way.
			h, _ := v1.NewHash(res.Digest)
			_, err = c.Resolve(ctx, dst.Context().Tag(oci.FallbackTag(h)))
			switch {
			case hop.dstAPI && !oci.IsNotFound(err):
				t.Errorf("registry with the referrers API got a fallback tag (err %v)", err)
			case !hop.dstAPI && err != nil:
				t.Errorf("registry without the referrers API has no fallback tag: %v", err)
			}
			if got, err := c.Resolve(ctx, dst); err != nil || got.Digest.String() != res.Digest {
				t.Fatalf("%s resolves to %v (%v)", dst, got.Digest, err)
			}
			cosignVerifies(t, dd.String(), k, true)
			cosignVerifies(t, dst.Context().Digest(rel.platforms[0].String()).String(), k, false)
		})
	}
}

// With the gate, an image that fails at the source is not copied: the
// destination registry sees no request at all, the error is a
// verification failure (exit 1), and the result carries the verdict.
func TestCopyGateRejects(t *testing.T) {
	ctx := context.Background()
	src, dstReg := testenv.GGCR(t), testenv.Distribution(t)
	proxy := testenv.NewFaultProxy(t, "http://"+dstReg.Host)
	c := client()
	signedBy, trusted := newKey(t), newKey(t)
	pushRelease(t, c, src, "fleet", "staging/fleet", signedBy)

	s, d, err := promote.ParsePair(c, src.Ref("staging/fleet:v1"), proxy.Host()+"/prime/fleet:v1")
	must(t, err)
	res, err := promote.Copy(ctx, c, s, d, promote.Options{Gate: keyGate(t, c, trusted)})
	if err == nil {
		t.Fatal("an image signed by an untrusted key was promoted")
	}
	if k := fault.KindOf(err); k != fault.Verification {
		t.Errorf("error kind %v, want verification: %v", k, err)
	}
	if res.Verification == nil || res.Verification.Source == nil || res.Verification.Source.Passed || res.Verification.Destination != nil {
		t.Fatalf("verification %+v", res.Verification)
	}
	if len(res.Verification.Source.Errors) == 0 || res.Error == "" {
		t.Errorf("no reason given: %+v", res)
	}
	if n := len(proxy.Log()); n != 0 {
		t.Fatalf("destination saw %d requests: %v", n, proxy.Log())
	}
	if _, err := c.Resolve(ctx, d); !oci.IsNotFound(err) {
		t.Fatalf("destination tag exists (err %v)", err)
	}
}

// A second run copies nothing: no byte, blob, manifest, referrer or tag is
// written — counted both in the Result and by a proxy in front of the
// destination, which sees no write request at all. Both directions.
func TestCopySecondRunCopiesNothing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst func(testing.TB) *testenv.Registry
	}{
		{"api to fallback", func(t testing.TB) *testenv.Registry { return testenv.GGCR(t) }, func(t testing.TB) *testenv.Registry { return testenv.Distribution(t) }},
		{"fallback to api", func(t testing.TB) *testenv.Registry { return testenv.Distribution(t) }, func(t testing.TB) *testenv.Registry { return testenv.GGCR(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srcReg, dstReg := tc.src(t), tc.dst(t)
			proxy := testenv.NewFaultProxy(t, "http://"+dstReg.Host)
			c := client()
			rel := pushRelease(t, c, srcReg, "fleet", "staging/fleet", newKey(t))
			s, d, err := promote.ParsePair(c, rel.tag.String(), proxy.Host()+"/prime/fleet")
			must(t, err)
			if d.TagStr() != "v1" {
				t.Fatalf("destination without a tag got tag %q, want the source's v1", d.TagStr())
			}
			first, err := promote.Copy(ctx, c, s, d, promote.Options{})
			must(t, err)
			if first.Bytes.Copied == 0 || !first.Tagged {
				t.Fatalf("first run: %+v", first)
			}
			firstWrites := writes(proxy)

			proxy.ResetCounts()
			second, err := promote.Copy(ctx, c, s, d, promote.Options{})
			must(t, err)
			zero := promote.Count{}
			if second.Manifests.Copied != 0 || second.Blobs != zero || second.Bytes != zero || second.Referrers.Copied != 0 ||
				second.LegacyTags.Copied != 0 || second.LegacyTags.Merged != 0 || second.Tagged {
				t.Errorf("second run copied something: %+v", second)
			}
			if second.Manifests.Skipped == 0 || second.Referrers.Skipped < 6 || second.LegacyTags.Skipped != 4 {
				t.Errorf("second run skipped %+v referrers %+v legacy %+v", second.Manifests, second.Referrers, second.LegacyTags)
			}
			if n := writes(proxy); n != 0 {
				t.Errorf("second run sent %d write requests (first: %d): %v", n, firstWrites, proxy.Counts())
			}
			t.Logf("first run: %d writes, %d bytes; second run: %d requests, no writes", firstWrites, first.Bytes.Copied, len(proxy.Log()))
		})
	}
}

// A run that stops part-way — writes failing for good from the Nth on
// (the fault proxy), or the context cancelled at the Nth write — fails,
// leaves the destination tag as it was (absent, or the previous release),
// and a re-run finishes the job.
func TestCopyKilledThenRerun(t *testing.T) {
	ctx := context.Background()
	srcReg := testenv.GGCR(t)
	setup := client()
	k := newKey(t)
	rel := pushRelease(t, setup, srcReg, "fleet", "staging/fleet", k)
	old := pushRelease(t, setup, srcReg, "fleet-agent", "staging/old", k)
	want := inventory(t, setup, rel.index)

	// How many writes a whole copy takes, to stop runs at points across it.
	probe := testenv.NewFaultProxy(t, "http://"+testenv.Distribution(t).Host)
	s, d, err := promote.ParsePair(setup, rel.tag.String(), probe.Host()+"/prime/fleet:v1")
	must(t, err)
	_, err = promote.Copy(ctx, setup, s, d, promote.Options{})
	must(t, err)
	total := int64(writes(probe))
	if total < 20 {
		t.Fatalf("a whole copy took only %d writes", total)
	}

	isWrite := func(r *http.Request) bool {
		return r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch
	}
	isTag := func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/prime/fleet/manifests/v1")
	}
	type point struct {
		name  string
		match func(*http.Request) bool
		after int64
	}
	points := []point{
		{"first-write", isWrite, 1},
		{"write-" + strconv.FormatInt(total/3, 10), isWrite, total / 3},
		{"write-" + strconv.FormatInt(2*total/3, 10), isWrite, 2 * total / 3},
		{"tag-write", isTag, 1},
	}
	for _, how := range []string{"fault", "cancel"} {
		for _, at := range points {
			for _, previous := range []bool{false, true} {
				name := how + "/" + at.name + map[bool]string{false: "/no-tag", true: "/old-tag"}[previous]
				t.Run(name, func(t *testing.T) {
					proxy := testenv.NewFaultProxy(t, "http://"+testenv.Distribution(t).Host)
					dst := proxy.Host() + "/prime/fleet:v1"
					var oldDigest string
					if previous {
						os, od, err := promote.ParsePair(setup, old.tag.String(), dst)
						must(t, err)
						r, err := promote.Copy(ctx, setup, os, od, promote.Options{})
						must(t, err)
						oldDigest = r.Digest
					}
					runCtx, cancel := context.WithCancel(ctx)
					defer cancel()
					tw := &tripwire{inner: http.DefaultTransport.(*http.Transport).Clone(), match: at.match, after: at.after}
					switch how {
					case "fault":
						tw.trip = func() {
							must(t, proxy.SetRules(testenv.FaultRule{Method: "^(POST|PUT|PATCH)$", Rate: 1, Faults: []testenv.Fault{testenv.Fault500}}))
						}
					case "cancel":
						tw.trip = cancel
					}
					c := client(oci.WithTransport(tw))
					s, d, err := promote.ParsePair(c, rel.tag.String(), dst)
					must(t, err)
					res, err := promote.Copy(runCtx, c, s, d, promote.Options{})
					if err == nil {
						t.Fatalf("copy stopped at %s (of %d writes) succeeded: %+v", at.name, total, res)
					}
					if k := fault.KindOf(err); k != fault.Operational {
						t.Errorf("error kind %v, want operational: %v", k, err)
					}
					if res.Tagged || res.Error == "" {
						t.Errorf("result of the failed run: %+v", res)
					}
					got, rerr := setup.Resolve(ctx, d)
					switch {
					case previous && (rerr != nil || got.Digest.String() != oldDigest):
						t.Fatalf("after the failed run the tag names %v (%v), want the old %s", got.Digest, rerr, oldDigest)
					case !previous && !oci.IsNotFound(rerr):
						t.Fatalf("after the failed run the tag exists: %v (%v)", got.Digest, rerr)
					}

					must(t, proxy.SetRules())
					again, err := promote.Copy(ctx, setup, s, d, promote.Options{})
					if err != nil {
						t.Fatalf("re-run: %v", err)
					}
					if !again.Tagged || again.Digest != rel.index.DigestStr() {
						t.Fatalf("re-run: %+v", again)
					}
					sameInventory(t, "inventory after the re-run", want, inventory(t, setup, d.Context().Digest(again.Digest)))
				})
			}
		}
	}
}
