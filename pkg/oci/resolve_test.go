package oci_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
)

func TestResolveAndManifest(t *testing.T) {
	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) {
			ctx := testCtx(t)
			c := clientFor(reg)
			pushed := reg.PushFixture(t, "fleet", fixture)
			want := testenv.LayoutDigest(t, testenv.Fixture(t, fixture))
			host := reg.Host

			for _, tc := range []struct{ name, ref string }{
				{"tag", host + "/fleet:v0.1.0-linux-amd64"},
				{"digest", host + "/fleet@" + want.String()},
				{"tag@digest", host + "/fleet:v0.1.0-linux-amd64@" + want.String()},
				// The tag is not consulted when a digest is given.
				{"unknown-tag@digest", host + "/fleet:no-such-tag@" + want.String()},
			} {
				t.Run(tc.name, func(t *testing.T) {
					ref, err := c.ParseReference(tc.ref)
					if err != nil {
						t.Fatal(err)
					}
					d, err := c.Resolve(ctx, ref)
					if err != nil {
						t.Fatal(err)
					}
					if d.Digest != want || d.MediaType != types.OCIImageIndex || d.Size <= 0 {
						t.Fatalf("Resolve(%s) = %+v, want %s (OCI index)", tc.ref, d, want)
					}
					m, err := c.Manifest(ctx, ref)
					if err != nil {
						t.Fatal(err)
					}
					if m.Descriptor.Digest != want || m.Descriptor.Size != int64(len(m.Raw)) || !m.IsIndex() {
						t.Fatalf("Manifest(%s) = %+v", tc.ref, m.Descriptor)
					}
					if _, err := m.Image(); err == nil {
						t.Fatal("Image() of an index: no error")
					}
					idx, err := m.Index()
					if err != nil || len(idx.Manifests) != 2 {
						t.Fatalf("Index(): %v, %v", idx, err)
					}
				})
			}
			if pushed.DigestStr() != want.String() {
				t.Fatalf("pushed %s, want %s", pushed, want)
			}

			for _, tc := range []struct{ name, ref string }{
				{"missing tag", host + "/fleet:nope"},
				{"missing repo", host + "/nothing-here:v1"},
				{"missing digest", host + "/fleet@sha256:" + strings.Repeat("0", 64)},
			} {
				t.Run(tc.name, func(t *testing.T) {
					ref, err := c.ParseReference(tc.ref)
					if err != nil {
						t.Fatal(err)
					}
					_, err = c.Resolve(ctx, ref)
					mustKind(t, err, fault.Input)
					if !strings.Contains(err.Error(), tc.ref) || !isNotFoundMsg(err) {
						t.Fatalf("error %q does not name %s as not found", err, tc.ref)
					}
					_, err = c.Manifest(ctx, ref)
					mustKind(t, err, fault.Input)
				})
			}
		})
	}
}

func TestParseReference(t *testing.T) {
	c := oci.NewClient(oci.WithInsecure("registry.internal:5000", "plain.example"))
	for _, tc := range []struct {
		ref, scheme string
	}{
		{"127.0.0.1:5000/a:b", "http"},
		{"127.0.0.7:5000/a:b", "http"},
		{"localhost:5000/a:b", "http"},
		{"[::1]:5000/a:b", "http"},
		{"registry.internal:5000/a:b", "http"},
		{"plain.example/a@sha256:" + strings.Repeat("a", 64), "http"},
		{"registry.internal:5001/a:b", "https"},
		{"ghcr.io/seal-dev/seal:v1", "https"},
		{"busybox", "https"},
	} {
		ref, err := c.ParseReference(tc.ref)
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		if got := ref.Context().Scheme(); got != tc.scheme {
			t.Errorf("%s: scheme %s, want %s", tc.ref, got, tc.scheme)
		}
	}
	for _, bad := range []string{"", "UPPER/case:x", "a/b@sha256:short", "host/repo:tag:tag"} {
		_, err := c.ParseReference(bad)
		mustKind(t, err, fault.Input)
	}
}

// recorder sees what the client would send and sends nothing: these hosts
// are not on loopback, and tests never leave it.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.seen = append(r.seen, req.URL.Scheme+"://"+req.URL.Host)
	r.mu.Unlock()
	return nil, errors.New("offline")
}

func TestPlainHTTPOnlyWhereAllowed(t *testing.T) {
	ctx := testCtx(t)
	for _, tc := range []struct {
		ref      string
		insecure []string
		plain    bool
	}{
		// ggcr's names would try plain HTTP for private addresses; seal does not.
		{"10.0.0.1:5000/a:b", nil, false},
		{"192.168.1.1/a:b", nil, false},
		{"registry.example:5000/a:b", nil, false},
		{"registry.example:5000/a:b", []string{"registry.example:5000"}, true},
		{"10.0.0.1:5000/a:b", []string{"10.0.0.1"}, true},
	} {
		rec := &recorder{}
		c := oci.NewClient(oci.WithTransport(rec), oci.WithInsecure(tc.insecure...), oci.WithRetry(fastRetry))
		ref, err := c.ParseReference(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Resolve(ctx, ref)
		mustKind(t, err, fault.Operational)
		sawPlain := false
		for _, u := range rec.seen {
			sawPlain = sawPlain || strings.HasPrefix(u, "http://")
		}
		if sawPlain != tc.plain {
			t.Errorf("%s (insecure %v): requests %v; plain HTTP used = %v, want %v", tc.ref, tc.insecure, rec.seen, sawPlain, tc.plain)
		}
	}
}

// liar wraps a registry handler and rewrites some answers, as a broken or
// malicious registry would.
func liar(t *testing.T, h http.Handler, rewrite func(w http.ResponseWriter, r *http.Request) bool) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !rewrite(w, r) {
			h.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func quietGGCR() http.Handler {
	return ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)), ggcrregistry.WithReferrersSupport(true))
}

func TestManifestDigestMismatch(t *testing.T) {
	ctx := testCtx(t)
	honest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	other := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[] }`)
	hd := sha(honest)
	host := liar(t, quietGGCR(), func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/manifests/") {
			return false
		}
		// Announce the honest digest, serve other bytes.
		w.Header().Set("Content-Type", string(types.OCIImageIndex))
		w.Header().Set("Docker-Content-Digest", hd.String())
		w.Header().Set("Content-Length", fmt.Sprint(len(other)))
		if r.Method == http.MethodGet {
			w.Write(other)
		}
		return true
	})
	c := plainClient(t)
	for _, s := range []string{host + "/lies@" + hd.String(), host + "/lies:v1"} {
		ref, err := c.ParseReference(s)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Manifest(ctx, ref)
		mustKind(t, err, fault.Input)
		if !strings.Contains(err.Error(), hd.String()) || !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not name the reference and digest", err)
		}
	}
	// A HEAD that answers another digest than asked is refused too.
	wrong := "sha256:" + strings.Repeat("1", 64)
	ref, _ := c.ParseReference(host + "/lies@" + wrong)
	_, err := c.Resolve(ctx, ref)
	mustKind(t, err, fault.Input)
}

func TestResolveFallsBackToGet(t *testing.T) {
	ctx := testCtx(t)
	reg := quietGGCR()
	var gets int
	host := liar(t, reg, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
			gets++
		}
		if r.Method != http.MethodHead || !strings.Contains(r.URL.Path, "/manifests/") {
			return false
		}
		// A registry whose HEAD lacks Docker-Content-Digest.
		rec := httptest.NewRecorder()
		reg.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			if k != "Docker-Content-Digest" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(rec.Code)
		return true
	})
	c := plainClient(t)
	raw := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	tag, _ := name.NewTag(host + "/app:v1")
	if err := c.Tag(ctx, tag, raw, string(types.OCIImageIndex)); err != nil {
		t.Fatal(err)
	}
	d, err := c.Resolve(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if d.Digest != sha(raw) || d.Size != int64(len(raw)) || d.MediaType != types.OCIImageIndex {
		t.Fatalf("Resolve = %+v", d)
	}
	if gets != 1 {
		t.Fatalf("%d GETs, want 1 (the fallback)", gets)
	}
}

func TestManifestSizeCap(t *testing.T) {
	ctx := testCtx(t)
	reg := testenv.GGCR(t)
	pushed := reg.PushFixture(t, "fleet", fixture)
	small := clientFor(reg, oci.WithLimits(oci.Limits{Manifest: 200}))
	ref, _ := small.ParseReference(pushed.String())
	for _, op := range []func() error{
		func() error { _, err := small.Manifest(ctx, ref); return err },
		func() error { _, err := small.Resolve(ctx, ref); return err },
	} {
		err := op()
		mustKind(t, err, fault.Input)
		if !strings.Contains(err.Error(), "limit") || !strings.Contains(err.Error(), pushed.DigestStr()) {
			t.Fatalf("error %q: want the limit and the reference named", err)
		}
	}
	// The default cap is 4 MiB: a 5 MiB manifest, served without
	// Content-Length, is refused, and so is pushing one.
	big := append([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"annotations":{"x":"`),
		bytes.Repeat([]byte("a"), 5<<20)...)
	big = append(big, `"}}`...)
	host := liar(t, quietGGCR(), func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/manifests/") {
			return false
		}
		w.Header().Set("Content-Type", string(types.OCIImageIndex))
		w.Write(big) // large: chunked, no Content-Length
		return true
	})
	c := plainClient(t)
	ref, _ = c.ParseReference(host + "/big:v1")
	_, err := c.Manifest(ctx, ref)
	mustKind(t, err, fault.Input)
	repo := repoOf(t, c, reg.Host+"/big")
	_, err = c.PushManifest(ctx, repo, big, string(types.OCIImageIndex))
	mustKind(t, err, fault.Input)
	if oci.DefaultManifestLimit != 4<<20 {
		t.Fatalf("default manifest limit %d", oci.DefaultManifestLimit)
	}
}

func TestPushManifestChecks(t *testing.T) {
	ctx := testCtx(t)
	reg := testenv.Distribution(t)
	c := clientFor(reg)
	repo := repoOf(t, c, reg.Host+"/app")
	for _, tc := range []struct {
		name, raw, mt string
	}{
		{"not json", "nope", string(types.OCIImageIndex)},
		{"media type differs", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`, string(types.OCIManifestSchema1)},
		{"schema 1", `{"schemaVersion":1}`, string(types.OCIImageIndex)},
		{"unknown media type", `{"schemaVersion":2,"manifests":[]}`, "text/plain"},
	} {
		_, err := c.PushManifest(ctx, repo, []byte(tc.raw), tc.mt)
		if fault.KindOf(err) != fault.Input {
			t.Errorf("%s: %v, want an input error", tc.name, err)
		}
	}
	// A manifest whose config blob is missing is refused by the registry:
	// an input error too.
	raw := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}`)
	_, err := c.PushManifest(ctx, repo, raw, string(types.OCIManifestSchema1))
	mustKind(t, err, fault.Input)

	cfg := []byte("{}")
	if err := c.PushBlob(ctx, repo, blobDesc(emptyJSON, cfg), cfg); err != nil {
		t.Fatal(err)
	}
	d, err := c.PushManifest(ctx, repo, raw, string(types.OCIManifestSchema1))
	if err != nil {
		t.Fatal(err)
	}
	if d.Digest != sha(raw) || d.Size != int64(len(raw)) {
		t.Fatalf("descriptor %+v", d)
	}
	tag, _ := name.NewTag(reg.Host + "/app:v1")
	if err := c.Tag(ctx, tag, raw, string(types.OCIManifestSchema1)); err != nil {
		t.Fatal(err)
	}
	got, err := c.Resolve(ctx, tag)
	if err != nil || got.Digest != d.Digest {
		t.Fatalf("Resolve after Tag: %v %v", got, err)
	}
}
