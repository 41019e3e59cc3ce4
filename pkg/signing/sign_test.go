package signing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
)

// `cosign verify --key` accepts seal's key signatures in both formats, on a
// registry with the referrers API (ggcr) and one without (Distribution, tag
// fallback), and rejects them with another key.
func TestCosignVerifiesSealKeySignatures(t *testing.T) {
	k := newKeyFiles(t)
	other := quickKeyFiles(t)
	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) {
			d := pushRandom(t, reg, "interop/app:v1")
			res, err := Sign(context.Background(), client(reg), []string{reg.Ref("interop/app:v1")},
				Options{Signer: k.signer, Format: FormatBoth, Annotations: map[string]string{"env": "prod"}})
			recordErr("Sign both", err)
			must(t, err)
			if len(res) != 2 || res[0].Digest != d.DigestStr() || res[1].Digest != d.DigestStr() {
				t.Fatalf("results %+v", res)
			}
			for _, tc := range []struct {
				format string
				args   []string
			}{
				{"bundle", nil},
				{"legacy", []string{"--new-bundle-format=false"}},
			} {
				args := append([]string{"verify", "--key", k.pub, "--insecure-ignore-tlog=true", "--allow-insecure-registry"}, tc.args...)
				out, err := cosign(t, k.dir, nil, append(args, d.String())...)
				if err != nil {
					t.Fatalf("cosign verify (%s): %v\n%s", tc.format, err, out)
				}
				args[2] = other.pub
				if out, err := cosign(t, k.dir, nil, append(args, d.String())...); err == nil {
					t.Fatalf("cosign verify (%s) with another key passed:\n%s", tc.format, out)
				}
			}
		})
	}
}

// --recursive on a BuildKit release index signs the index and both platform
// manifests, not the attestation manifests.
func TestSignRecursive(t *testing.T) {
	ctx := context.Background()
	reg := testenv.GGCR(t)
	c := client(reg)
	// A multi-platform index as `seal index create` makes it: two BuildKit
	// per-platform indexes flattened, attestation manifests included.
	amd := reg.PushFixture(t, "fleet", "fleet__v0.1.0-linux-amd64")
	arm := reg.PushFixture(t, "fleet", "fleet__v0.1.0-linux-arm64")
	var children []v1.Descriptor
	for _, src := range []name.Digest{amd, arm} {
		idx, err := fetchManifest(t, c, src.String()).Index()
		must(t, err)
		children = append(children, idx.Manifests...)
	}
	top := v1.IndexManifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json", Manifests: children}
	raw, err := json.Marshal(top)
	must(t, err)
	repo := amd.Context()
	topDesc, err := c.PushManifest(ctx, repo, raw, string(top.MediaType))
	must(t, err)
	must(t, c.Tag(ctx, repo.Tag("v0.1.0"), raw, string(top.MediaType)))

	s := quickSigner(t)
	res, err := Sign(ctx, c, []string{repo.Tag("v0.1.0").String()}, Options{Signer: s, Recursive: true})
	must(t, err)
	if len(res) != 3 {
		t.Fatalf("%d results, want the index and 2 platform manifests: %+v", len(res), res)
	}
	signed := map[string]Result{}
	for _, r := range res {
		signed[r.Digest] = r
	}
	if signed[topDesc.Digest.String()].Index != "" {
		t.Errorf("index result %+v", signed[topDesc.Digest.String()])
	}
	platforms := map[string]bool{}
	for _, ch := range children {
		r, ok := signed[ch.Digest.String()]
		attestation := ch.Annotations["vnd.docker.reference.type"] == "attestation-manifest"
		if ok == attestation {
			t.Errorf("child %s (attestation %v) signed %v", ch.Digest, attestation, ok)
		}
		if ok {
			platforms[r.Platform] = true
			if r.Index != topDesc.Digest.String() {
				t.Errorf("child result index %q", r.Index)
			}
		}
	}
	if !platforms["linux/amd64"] || !platforms["linux/arm64"] {
		t.Errorf("platforms signed: %v", platforms)
	}
	// Each signed manifest has its referrer, about its own digest.
	for dg := range signed {
		d := repo.Digest(dg)
		all, err := c.Referrers(ctx, d)
		must(t, err)
		// BuildKit's attestation manifests are referrers of their platform
		// manifest too; count the bundles. (ggcr's registry lists the
		// config media type as artifactType, so go by the annotation.)
		var refs []v1.Descriptor
		for _, r := range all {
			if r.Annotations[AnnotationPredicateType] != "" {
				refs = append(refs, r)
			}
		}
		if len(refs) != 1 {
			t.Fatalf("%s has %d bundle referrers", dg, len(refs))
		}
		rr, err := ParseBundleReferrer(fetchManifest(t, c, repo.String()+"@"+refs[0].Digest.String()).Raw, hashOf(t, d))
		must(t, err)
		b, err := ParseBundle(fetchBlob(t, c, repo, rr.Layer), rr.Layer)
		must(t, err)
		st, err := BundleStatement(b)
		must(t, err)
		if !hasSubject(st, hashOf(t, d)) {
			t.Errorf("statement of %s is about %+v", dg, st.Subject)
		}
	}
}

// tagMover is a signer that moves a tag to another image the first time it
// signs: the tag changes while signing is under way.
type tagMover struct {
	Signer
	once sync.Once
	move func()
}

func (m *tagMover) Sign(ctx context.Context, c sign.Content) (*protobundle.Bundle, error) {
	m.once.Do(m.move)
	return m.Signer.Sign(ctx, c)
}

// The tag is resolved once: moved during signing, the signature is for the
// digest it had, the result says which, and the new image is unsigned.
func TestSignTagResolvedOnce(t *testing.T) {
	ctx := context.Background()
	reg := testenv.Distribution(t)
	c := client(reg)
	old := pushRandom(t, reg, "moving/app:latest")
	var moved name.Digest
	s := &tagMover{Signer: quickSigner(t), move: func() { moved = pushRandom(t, reg, "moving/app:latest") }}
	res, err := Sign(ctx, c, []string{reg.Ref("moving/app:latest")}, Options{Signer: s, Format: FormatBoth})
	must(t, err)
	now, err := c.Resolve(ctx, old.Context().Tag("latest"))
	must(t, err)
	if now.Digest.String() != moved.DigestStr() || moved.DigestStr() == old.DigestStr() {
		t.Fatal("the tag did not move during signing")
	}
	for _, r := range res {
		if r.Digest != old.DigestStr() || r.Reference != old.String() {
			t.Errorf("result %+v, want the old digest %s", r, old.DigestStr())
		}
	}
	if refs, _ := c.Referrers(ctx, old); len(refs) != 1 {
		t.Errorf("old digest has %d referrers, want 1", len(refs))
	}
	if refs, _ := c.Referrers(ctx, moved); len(refs) != 0 {
		t.Errorf("new digest has %d referrers, want 0", len(refs))
	}
	if _, err := c.Manifest(ctx, moved.Context().Tag(LegacyTag(hashOf(t, moved), LegacySignature))); !oci.IsNotFound(err) {
		t.Errorf("new digest has a .sig: %v", err)
	}
}

// 20 signers of one digest at once through one client (one seal process
// signing for many keys or callers), on the fallback-tag registry: 20
// signatures remain in each format, and every listed referrer exists.
//
// Separate processes racing on one fallback tag are only made unlikely to
// lose entries (pkg/oci re-reads to confirm): registries offer no
// compare-and-swap on tags. See the report of issue 3.
func TestConcurrentSignersOneDigest(t *testing.T) {
	ctx := context.Background()
	reg := testenv.Distribution(t)
	d := pushRandom(t, reg, "race/app:v1")
	c := client(reg)
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Sign(ctx, c, []string{d.String()}, Options{Signer: quickSigner(t), Format: FormatBoth})
		}()
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	refs, err := c.Referrers(ctx, d)
	must(t, err)
	if len(refs) != n {
		t.Errorf("%d referrers after %d concurrent signers", len(refs), n)
	}
	for _, r := range refs {
		if _, err := c.Manifest(ctx, d.Context().Digest(r.Digest.String())); err != nil {
			t.Errorf("referrer %s listed but missing: %v", r.Digest, err)
		}
	}
	m := fetchManifest(t, c, d.Context().Tag(LegacyTag(hashOf(t, d), LegacySignature)).String())
	descs, err := ParseLegacyManifest(m.Raw, LegacySignature)
	must(t, err)
	if len(descs) != n {
		t.Errorf("%d .sig layers after %d concurrent signers", len(descs), n)
	}
}

// faults fails requests that match, as a registry failing mid-signature.
type faults struct {
	base  http.RoundTripper
	match func(*http.Request) bool
	hits  atomic.Int32
}

func (f *faults) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.match(r) {
		f.hits.Add(1)
		return &http.Response{StatusCode: http.StatusInternalServerError, Status: "500 injected",
			Body: http.NoBody, Header: http.Header{}, Request: r}, nil
	}
	return f.base.RoundTrip(r)
}

// A registry that fails while a signature is written leaves no referrer
// pointing at a missing manifest and no half-written fallback index or
// `.sig` tag; the error is operational and names the image.
func TestSignRegistryFailsMidway(t *testing.T) {
	ctx := context.Background()
	isPut := func(r *http.Request) bool { return r.Method == http.MethodPut }
	cases := []struct {
		name   string
		format Format
		fail   func(r *http.Request) bool
	}{
		{"bundle manifest", FormatBundle, func(r *http.Request) bool {
			return isPut(r) && strings.Contains(r.URL.Path, "/manifests/sha256:")
		}},
		{"fallback index", FormatBundle, func(r *http.Request) bool {
			return isPut(r) && strings.Contains(r.URL.Path, "/manifests/sha256-")
		}},
		{"legacy manifest", FormatLegacy, func(r *http.Request) bool {
			return isPut(r) && strings.Contains(r.URL.Path, "/manifests/sha256:")
		}},
		{"legacy tag", FormatLegacy, func(r *http.Request) bool {
			return isPut(r) && strings.HasSuffix(r.URL.Path, ".sig")
		}},
		{"blob upload", FormatBoth, func(r *http.Request) bool {
			return (isPut(r) || r.Method == http.MethodPost) && strings.Contains(r.URL.Path, "/blobs/uploads")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := testenv.Distribution(t)
			d := pushRandom(t, reg, "faulty/app:v1")
			f := &faults{base: reg.Transport(), match: tc.fail}
			c := client(reg, oci.WithTransport(f), oci.WithRetry(oci.Retry{Attempts: 2, BaseDelay: 1}))
			res, err := Sign(ctx, c, []string{d.String()}, Options{Signer: quickSigner(t), Format: tc.format})
			recordErr("Sign faulty", err)
			if err == nil || f.hits.Load() == 0 {
				t.Fatalf("no failure (hits %d, err %v)", f.hits.Load(), err)
			}
			if fault.KindOf(err) != fault.Operational || !strings.Contains(err.Error(), d.DigestStr()) {
				t.Errorf("error %q kind %v", err, fault.KindOf(err))
			}
			if len(res) == 0 || res[0].Error == "" {
				t.Errorf("results %+v do not carry the error", res)
			}
			// What a reader sees afterwards is consistent.
			good := client(reg)
			refs, err := good.Referrers(ctx, d)
			must(t, err)
			for _, r := range refs {
				if _, err := good.Manifest(ctx, d.Context().Digest(r.Digest.String())); err != nil {
					t.Errorf("referrer %s listed but missing: %v", r.Digest, err)
				}
			}
			if len(refs) != 0 {
				t.Errorf("%d referrers after a failed signature", len(refs))
			}
			sig, err := good.Manifest(ctx, d.Context().Tag(LegacyTag(hashOf(t, d), LegacySignature)))
			if err == nil {
				descs, perr := ParseLegacyManifest(sig.Raw, LegacySignature)
				must(t, perr)
				for _, ld := range descs {
					if _, err := good.BlobBytes(ctx, d.Context(), ld, MaxLegacyPayloadSize); err != nil {
						t.Errorf(".sig layer %s missing: %v", ld.Digest, err)
					}
				}
			} else if !oci.IsNotFound(err) {
				t.Fatal(err)
			}
		})
	}
}

func TestSignInputErrors(t *testing.T) {
	ctx := context.Background()
	reg := testenv.Distribution(t)
	c := client(reg)
	d := pushRandom(t, reg, "input/app:v1")
	s := quickSigner(t)
	for _, tc := range []struct {
		name   string
		images []string
		opts   Options
		want   string
	}{
		{"no signer", []string{d.String()}, Options{}, "no signer"},
		{"bad format", []string{d.String()}, Options{Signer: s, Format: "zip"}, "--format"},
		{"bad reference", []string{"Not A Ref!"}, Options{Signer: s}, ""},
		{"missing tag", []string{reg.Ref("input/app:nope")}, Options{Signer: s}, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Sign(ctx, c, tc.images, tc.opts)
			if err == nil || fault.KindOf(err) != fault.Input || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v (kind %v), want an input error with %q", err, fault.KindOf(err), tc.want)
			}
			if res != nil {
				t.Fatalf("results %+v for a failed input", res)
			}
		})
	}
	// A missing image among good ones: nothing is signed at all.
	_, err := Sign(ctx, c, []string{d.String(), reg.Ref("input/app:nope")}, Options{Signer: s})
	if err == nil {
		t.Fatal("no error")
	}
	if refs, _ := c.Referrers(ctx, d); len(refs) != 0 {
		t.Fatalf("signed %d despite a bad argument", len(refs))
	}
}

// pushImages pushes n random images to reg and returns their references.
func pushImages(t testing.TB, reg *testenv.Registry, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range n {
		img, err := random.Image(32, 1)
		must(t, err)
		ref, err := name.ParseReference(reg.Ref(fmt.Sprintf("bench/app%d:v1", i)))
		must(t, err)
		must(t, remote.Write(ref, img, reg.RemoteOptions(context.Background())...))
		h, _ := img.Digest()
		out[i] = ref.Context().Digest(h.String()).String()
	}
	return out
}

// The same manifest named twice (by tag and by digest) is signed once.
func TestSignDedupesTargets(t *testing.T) {
	reg := testenv.Distribution(t)
	d := pushRandom(t, reg, "dup/app:v1")
	c := client(reg)
	res, err := Sign(context.Background(), c, []string{d.String(), reg.Ref("dup/app:v1")}, Options{Signer: quickSigner(t)})
	must(t, err)
	if len(res) != 1 {
		t.Fatalf("%d results for one manifest", len(res))
	}
	if refs, _ := c.Referrers(context.Background(), d); len(refs) != 1 {
		t.Fatalf("%d referrers", len(refs))
	}
}
