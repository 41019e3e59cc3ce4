package oci_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
)

const ociManifest = string(types.OCIManifestSchema1)

// referrerSetup pushes the fixture to reg (behind a counting proxy) and
// returns the client, the proxy and the platform manifest as a subject.
func referrerSetup(t *testing.T, reg *testenv.Registry) (*oci.Client, *testenv.FaultProxy, name.Digest, v1.Descriptor) {
	t.Helper()
	pushed := reg.PushFixture(t, "fleet", fixture)
	p := testenv.NewFaultProxy(t, "http://"+reg.Host)
	c := plainClient(t)
	repo := repoOf(t, c, p.Host()+"/fleet")
	sub := platformManifest(t, testCtx(t), c, digestRef(t, c, repo, mustHash(t, pushed.DigestStr())))
	return c, p, digestRef(t, c, repo, sub.Digest), sub
}

func TestReferrers(t *testing.T) {
	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) {
			ctx := testCtx(t)
			c, p, subject, sub := referrerSetup(t, reg)
			repo := subject.Context()

			// BuildKit's attestation manifest has the image as subject; ggcr's
			// push of the fixture put it in the fallback tag on Distribution.
			base, err := c.Referrers(ctx, subject)
			if err != nil || len(base) != 1 || base[0].Digest.Hex != "fa07c6edb08027c025a457c3d55f14c3703247542d0a41921d7d6f7585fcead2" {
				t.Fatalf("Referrers before any push: %v %v; want the attestation manifest", base, err)
			}
			empty, err := c.Referrers(ctx, digestRef(t, c, repo, sha([]byte("no such subject"))))
			if err != nil || len(empty) != 0 {
				t.Fatalf("Referrers of a subject without any: %v %v", empty, err)
			}
			api, err := c.ReferrersAPI(ctx, repo)
			if err != nil || api != reg.ReferrersAPI {
				t.Fatalf("ReferrersAPI = %v, %v; want %v", api, err, reg.ReferrersAPI)
			}

			want := map[v1.Hash]string{base[0].Digest: base[0].ArtifactType}
			var order []v1.Hash
			for _, kind := range []string{"application/vnd.dev.sigstore.bundle.v0.3+json", "application/vnd.seal.test"} {
				raw := pushArtifact(t, ctx, c, repo, sub, kind, "content of "+kind)
				d, err := c.PushReferrer(ctx, subject, raw, ociManifest)
				if err != nil {
					t.Fatal(err)
				}
				if d.Digest != sha(raw) || d.ArtifactType != kind || d.Annotations["dev.seal.test"] != "content of "+kind {
					t.Fatalf("PushReferrer descriptor %+v", d)
				}
				want[d.Digest] = kind
				order = append(order, d.Digest)
			}
			// Pushing the same referrer again adds nothing.
			raw := pushArtifact(t, ctx, c, repo, sub, "application/vnd.seal.test", "content of application/vnd.seal.test")
			if _, err := c.PushReferrer(ctx, subject, raw, ociManifest); err != nil {
				t.Fatal(err)
			}

			got, err := c.Referrers(ctx, subject)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("Referrers = %d entries %+v, want %d", len(got), got, len(want))
			}
			for _, d := range got {
				if d.Digest == base[0].Digest {
					continue
				}
				artifactType := d.ArtifactType
				if reg.Name == "ggcr" && artifactType == emptyJSON {
					// ggcr's registry reports the config media type, not
					// the manifest's artifactType.
					artifactType = want[d.Digest]
				}
				if want[d.Digest] == "" || artifactType != want[d.Digest] || d.MediaType != types.OCIManifestSchema1 ||
					d.Annotations["dev.seal.test"] != "content of "+want[d.Digest] {
					t.Fatalf("referrer %+v: not what was pushed", d)
				}
				// Every listed referrer exists (pushed before the index).
				if _, err := c.Manifest(ctx, digestRef(t, c, repo, d.Digest)); err != nil {
					t.Fatal(err)
				}
			}

			fallback, _ := name.NewTag(repo.String() + ":" + oci.FallbackTag(sub.Digest))
			_, err = c.Resolve(ctx, fallback)
			if reg.ReferrersAPI {
				// The API registry is never given a fallback tag.
				mustKind(t, err, fault.Input)
			} else {
				if err != nil {
					t.Fatalf("fallback tag: %v", err)
				}
				// Each referrer manifest is pushed before the index that lists it.
				var manifestPuts, tagPuts []int
				for i, l := range p.Log() {
					if l == "PUT /v2/fleet/manifests/"+oci.FallbackTag(sub.Digest) {
						tagPuts = append(tagPuts, i)
					}
					for _, h := range order {
						if l == "PUT /v2/fleet/manifests/"+h.String() && len(manifestPuts) < len(order) {
							manifestPuts = append(manifestPuts, i)
						}
					}
				}
				if len(tagPuts) != len(order) || len(manifestPuts) != len(order) {
					t.Fatalf("%d index writes and %d manifest writes for %d referrers", len(tagPuts), len(manifestPuts), len(order))
				}
				for k := range order {
					if manifestPuts[k] > tagPuts[k] || (k > 0 && manifestPuts[k] < tagPuts[k-1]) {
						t.Fatalf("push order: manifests at %v, fallback index at %v", manifestPuts, tagPuts)
					}
				}
			}
			// The answer about the API is asked once per registry, then cached.
			before := p.Count("GET", "referrers")
			if _, err := c.ReferrersAPI(ctx, repo); err != nil {
				t.Fatal(err)
			}
			raw = pushArtifact(t, ctx, c, repo, sub, "application/vnd.seal.other", "third")
			if _, err := c.PushReferrer(ctx, subject, raw, ociManifest); err != nil {
				t.Fatal(err)
			}
			if after := p.Count("GET", "referrers"); after != before {
				t.Fatalf("%d more referrers requests after the answer was known", after-before)
			}
		})
	}
}

func TestPushReferrerChecks(t *testing.T) {
	ctx := testCtx(t)
	reg := testenv.GGCR(t)
	c, _, subject, sub := referrerSetup(t, reg)
	repo := subject.Context()

	other := sub
	other.Digest = sha([]byte("another subject"))
	raw := pushArtifact(t, ctx, c, repo, other, "application/vnd.seal.test", "x")
	_, err := c.PushReferrer(ctx, subject, raw, ociManifest)
	mustKind(t, err, fault.Input)

	noSubject := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}`)
	_, err = c.PushReferrer(ctx, subject, noSubject, ociManifest)
	mustKind(t, err, fault.Input)
}

// TestConcurrentPushReferrer: 20 writers of one subject's referrers, sharing
// a client as the workers of one seal process do, leave 20 entries.
func TestConcurrentPushReferrer(t *testing.T) {
	const writers = 20
	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) {
			ctx := testCtx(t)
			c, _, subject, sub := referrerSetup(t, reg)
			repo := subject.Context()
			base, err := c.Referrers(ctx, subject)
			if err != nil {
				t.Fatal(err)
			}
			raws := make([][]byte, writers)
			for i := range raws {
				raws[i] = pushArtifact(t, ctx, c, repo, sub, "application/vnd.seal.test", fmt.Sprintf("writer %d", i))
			}
			var wg sync.WaitGroup
			errs := make([]error, writers)
			for i := range writers {
				wg.Go(func() {
					_, errs[i] = c.PushReferrer(ctx, subject, raws[i], ociManifest)
				})
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			got, err := plainClient(t).Referrers(ctx, subject)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[v1.Hash]bool{}
			for _, d := range got {
				seen[d.Digest] = true
			}
			for i, raw := range raws {
				if !seen[sha(raw)] {
					t.Errorf("writer %d's referrer is missing", i)
				}
			}
			if len(got) != writers+len(base) {
				t.Fatalf("%d referrers, want %d + the %d there before", len(got), writers, len(base))
			}
		})
	}
}

// PushReferrers lists a batch of referrers of one subject with one
// fallback-tag write (a registry without the API), or none (with it); every
// manifest is checked before any is pushed.
func TestPushReferrersBatch(t *testing.T) {
	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) {
			ctx := testCtx(t)
			c, p, subject, sub := referrerSetup(t, reg)
			repo := subject.Context()
			base, err := c.Referrers(ctx, subject)
			if err != nil {
				t.Fatal(err)
			}
			var batch []oci.RawManifest
			for i := range 6 {
				raw := pushArtifact(t, ctx, c, repo, sub, "application/vnd.seal.test", fmt.Sprintf("batched %d", i))
				batch = append(batch, oci.RawManifest{Raw: raw, MediaType: ociManifest})
			}

			// One manifest about another subject: nothing is pushed.
			other := pushArtifact(t, ctx, c, repo, v1.Descriptor{MediaType: sub.MediaType, Digest: sha([]byte("another")), Size: 7}, "application/vnd.seal.test", "stray")
			p.ResetCounts()
			bad := append(slices.Clone(batch), oci.RawManifest{Raw: other, MediaType: ociManifest})
			if _, err := c.PushReferrers(ctx, subject, bad); err == nil || !strings.Contains(err.Error(), "subject is") {
				t.Fatalf("a batch with a stray manifest: %v", err)
			}
			if n := p.Count("PUT", "manifest"); n != 0 {
				t.Fatalf("%d manifests written for a batch refused", n)
			}

			ds, err := c.PushReferrers(ctx, subject, batch)
			if err != nil {
				t.Fatal(err)
			}
			for i, d := range ds {
				if d.Digest != sha(batch[i].Raw) || d.ArtifactType != "application/vnd.seal.test" {
					t.Errorf("descriptor %d: %+v", i, d)
				}
			}
			// 6 referrer manifests, plus the fallback tag once.
			want := len(batch)
			if !reg.ReferrersAPI {
				want++
			}
			if n := p.Count("PUT", "manifest"); n != want {
				t.Errorf("%d manifest writes for a batch of %d, want %d (%v)", n, len(batch), want, p.Counts())
			}
			got, err := plainClient(t).Referrers(ctx, subject)
			if err != nil || len(got) != len(base)+len(batch) {
				t.Fatalf("referrers after the batch: %d, %v; want %d", len(got), err, len(base)+len(batch))
			}
		})
	}
}

// TestPushReferrerLostRace: another process, which read the fallback index
// before our write, overwrites it right after: PushReferrer sees its entry
// gone when it reads the index back, and merges again.
func TestPushReferrerLostRace(t *testing.T) {
	ctx := testCtx(t)
	reg := testenv.Distribution(t)
	pushed := reg.PushFixture(t, "fleet", fixture)
	c := plainClient(t)
	upstream := repoOf(t, c, reg.Host+"/fleet")
	sub := platformManifest(t, ctx, c, digestRef(t, c, upstream, mustHash(t, pushed.DigestStr())))
	tagPath := "/v2/fleet/manifests/" + oci.FallbackTag(sub.Digest)

	// The other process's referrer, and the index it is about to write: what
	// it read (the attestation manifest) plus its own entry.
	theirs := pushArtifact(t, ctx, c, upstream, sub, "application/vnd.seal.other", "theirs")
	theirDesc, err := c.PushManifest(ctx, upstream, theirs, ociManifest)
	if err != nil {
		t.Fatal(err)
	}
	before, err := c.Referrers(ctx, digestRef(t, c, upstream, sub.Digest))
	if err != nil {
		t.Fatal(err)
	}
	theirIndex, _ := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: append(before, theirDesc)})

	u, _ := url.Parse("http://" + reg.Host)
	rp := httputil.NewSingleHostReverseProxy(u)
	var mu sync.Mutex
	tagWrites := 0
	front := liar(t, rp, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || r.URL.Path != tagPath {
			return false
		}
		rp.ServeHTTP(w, r)
		mu.Lock()
		defer mu.Unlock()
		tagWrites++
		if tagWrites == 1 {
			req, _ := http.NewRequest(http.MethodPut, "http://"+reg.Host+tagPath, bytes.NewReader(theirIndex))
			req.Header.Set("Content-Type", string(types.OCIImageIndex))
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusCreated {
				t.Errorf("competing write: %v %v", resp, err)
			} else {
				resp.Body.Close()
			}
		}
		return true
	})

	repo := repoOf(t, c, front+"/fleet")
	subject := digestRef(t, c, repo, sub.Digest)
	ours := pushArtifact(t, ctx, c, repo, sub, "application/vnd.seal.test", "ours")
	if _, err := c.PushReferrer(ctx, subject, ours, ociManifest); err != nil {
		t.Fatal(err)
	}
	if tagWrites < 2 {
		t.Fatalf("%d index writes: the lost race was not noticed", tagWrites)
	}
	got, err := plainClient(t).Referrers(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[v1.Hash]bool{}
	for _, d := range got {
		seen[d.Digest] = true
	}
	if !seen[sha(ours)] || !seen[theirDesc.Digest] || len(got) != len(before)+2 {
		t.Fatalf("referrers %v: want ours, theirs and the %d before", got, len(before))
	}
}

func TestFallbackTag(t *testing.T) {
	h := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	if got := oci.FallbackTag(h); got != "sha256-"+h.Hex {
		t.Fatalf("FallbackTag = %s", got)
	}
}
