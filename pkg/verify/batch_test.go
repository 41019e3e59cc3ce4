package verify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/policy"
	"github.com/seal-dev/seal/pkg/signing"
)

// counting counts the requests a client makes, by kind.
type counting struct {
	inner http.RoundTripper
	mu    sync.Mutex
	n     map[string]int
	total atomic.Int64
}

func (c *counting) RoundTrip(req *http.Request) (*http.Response, error) {
	kind := "other"
	for _, k := range []string{"/manifests/", "/referrers/", "/blobs/"} {
		if strings.Contains(req.URL.Path, k) {
			kind = req.Method + " " + strings.Trim(k, "/")
		}
	}
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[kind]++
	c.mu.Unlock()
	if kind != "other" {
		c.total.Add(1)
	}
	return c.inner.RoundTrip(req)
}

// A batch of signed and attested two-platform releases verifies with the
// requests the design counts as the floor — one manifest request, one
// referrers request per manifest checked, two per bundle needed — and the
// time per image is reported. Requests that are not registry API calls
// (the /v2/ ping of the client's per-repository authentication) are
// reported, not counted: pkg/oci makes them once per repository.
func TestBatchAtTheRequestFloor(t *testing.T) {
	ss := testenv.SharedSigstore(t)
	claims := testenv.GitHubRelease("example/fleet", "v0.1.0")
	s := keyless(t, ss, claims)
	const n = 20
	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) {
			c := client(reg)
			var refs []name.Reference
			for i := range n {
				rel := pushRelease(t, reg, c, "fleet", fmt.Sprintf("example%02d/fleet", i), "v0.1.0")
				signRelease(t, c, s, rel, claims, signing.FormatBundle)
				refs = append(refs, rel.tag)
			}
			p := parsePolicy(t, policyText(t, strings.Replace(releasePolicy, "/example/**", "/**", 1),
				map[string]string{"Host": reg.Host, "Issuer": ss.Issuer.URL}))
			v := newVerifier(t, p, ss.TrustedRoot())

			cnt := &counting{inner: reg.Transport()}
			vc := client(reg, oci.WithTransport(cnt))
			// The first request to a registry learns whether it has the
			// referrers API; not part of any image's count.
			if _, err := vc.ReferrersAPI(context.Background(), refs[0].Context()); err != nil {
				t.Fatal(err)
			}
			cnt.total.Store(0)
			cnt.n = nil
			start := time.Now()
			results := v.VerifyAll(context.Background(), vc, refs, 8, nil)
			took := time.Since(start)
			for _, r := range results {
				if !r.Passed {
					t.Fatalf("%s: %v", r.Image, r.Errors)
				}
			}
			// Floor per two-platform image: the index (1), referrers of the
			// index and of 2 platforms (3), the signature bundle and 2
			// provenance bundles, each its manifest and its blob (6).
			floor := 1 + 3 + 2*3
			// go-containerregistry's registry reports the config media type as
			// a referrer's artifactType, so BuildKit's attestation manifest
			// (a referrer of its platform manifest) must be read to be told
			// apart from a bundle: one more request per platform there.
			extra := 0
			if reg.Name == "ggcr" {
				extra = 2
			}
			per := float64(cnt.total.Load()) / n
			t.Logf("%s: %d images in %v (%v per image, concurrency 8); %.1f requests per image (floor %d): %v",
				reg.Name, n, took.Round(time.Millisecond), (took / n).Round(time.Microsecond), per, floor, cnt.n)
			if per != float64(floor+extra) {
				t.Errorf("%.1f requests per image, want %d", per, floor+extra)
			}
		})
	}
}

// Every image of a batch is checked whatever happens to the others, the
// results come back in input order, and each failure has its kind: a
// verification failure, a reference that does not exist, a registry that
// cannot be reached.
func TestVerifyAllKinds(t *testing.T) {
	reg := testenv.GGCR(t)
	c := client(reg, oci.WithRetry(oci.Retry{Attempts: 1}))
	k := quickKey(t)
	signed := pushRandom(t, reg, "app/signed:v1")
	sign(t, c, k.signer, signed, signing.FormatBundle)
	unsigned := pushRandom(t, reg, "app/unsigned:v1")
	p, err := policy.FromFlags(policy.Flags{Key: k.pub})
	must(t, err)
	v := newVerifier(t, p, nil)

	parse := func(s string) name.Reference {
		r, err := c.ParseReference(s)
		must(t, err)
		return r
	}
	refs := []name.Reference{
		parse(reg.Ref("app/unsigned:v1")),
		parse(reg.Ref("app/missing:v1")),
		parse("127.0.0.1:1/app/unreachable:v1"),
		parse(signed.String()), // digest only
		parse(reg.Ref("app/signed:v1")),
	}
	results := v.VerifyAll(context.Background(), c, refs, 2, nil)
	want := []struct {
		passed bool
		kind   fault.Kind
		digest string
	}{
		{false, fault.Verification, unsigned.DigestStr()},
		{false, fault.Input, ""},
		{false, fault.Operational, ""},
		{true, fault.Unknown, signed.DigestStr()},
		{true, fault.Unknown, signed.DigestStr()},
	}
	for i, w := range want {
		r := results[i]
		if r.Image != refs[i].String() || r.Passed != w.passed || r.Kind != w.kind || r.Digest != w.digest {
			t.Errorf("%s: passed %v kind %v digest %q; want %v %v %q (errors %v)", refs[i], r.Passed, r.Kind, r.Digest, w.passed, w.kind, w.digest, r.Errors)
		}
		if err := r.Err(); (err == nil) != w.passed || (err != nil && fault.KindOf(err) != w.kind) {
			t.Errorf("%s: Err() = %v", refs[i], err)
		}
	}
	if e := results[0].Err(); e == nil || !strings.Contains(e.Error(), "verify "+refs[0].String()+"@"+unsigned.DigestStr()+": no signature") {
		t.Errorf("error %v does not name image, digest and reason", e)
	}
}

// A signature whose bundle the registry does not serve intact does not
// count (a verification failure, not an operational one).
func TestBundleNotIntact(t *testing.T) {
	reg := testenv.GGCR(t)
	c := client(reg)
	k := quickKey(t)
	d := pushRandom(t, reg, "app/corrupt:v1")
	sign(t, c, k.signer, d, signing.FormatBundle)
	p, err := policy.FromFlags(policy.Flags{Key: k.pub})
	must(t, err)
	v := newVerifier(t, p, nil)

	corrupt := &corrupting{inner: reg.Transport(), mediaType: signing.BundleMediaType}
	r := v.Verify(context.Background(), client(reg, oci.WithTransport(corrupt)), d)
	if r.Passed || r.Kind != fault.Verification || !errorsContain(r, "cannot be fetched intact") {
		t.Fatalf("passed %v kind %v errors %v", r.Passed, r.Kind, r.Errors)
	}
	if corrupt.hits.Load() == 0 {
		t.Fatal("no bundle blob was corrupted")
	}
	if r := v.Verify(context.Background(), c, d); !r.Passed {
		t.Fatalf("intact: %v", r.Errors)
	}
}

// corrupting flips a byte of every blob that looks like a Sigstore bundle.
type corrupting struct {
	inner     http.RoundTripper
	mediaType string
	hits      atomic.Int32
}

func (c *corrupting) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.inner.RoundTrip(req)
	if err != nil || !strings.Contains(req.URL.Path, "/blobs/") || req.Method != http.MethodGet {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if bytes.Contains(body, []byte(`"mediaType":"`+c.mediaType+`"`)) {
		c.hits.Add(1)
		body = bytes.Replace(body, []byte(`"mediaType"`), []byte(`"mediaTypE"`), 1)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}
