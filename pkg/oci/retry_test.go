package oci_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
)

// exercise runs the registry operations seal relies on against host and
// fails the test if any of them fails.
func exercise(t *testing.T, c *oci.Client, host string, fixtureRepo name.Digest) {
	t.Helper()
	ctx := testCtx(t)
	repo := repoOf(t, c, host+"/work")
	data := bytes.Repeat([]byte("retry me "), 20000)
	d := blobDesc("application/octet-stream", data)
	if err := c.PushBlob(ctx, repo, d, data); err != nil {
		t.Fatal(err)
	}
	got, err := c.BlobBytes(ctx, repo, d, 1<<20)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("BlobBytes: %d bytes, %v", len(got), err)
	}
	src := digestRef(t, c, repoOf(t, c, host+"/"+fixtureRepo.Context().RepositoryStr()), mustHash(t, fixtureRepo.DigestStr()))
	desc, err := c.Resolve(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Manifest(ctx, src); err != nil {
		t.Fatal(err)
	}
	// Mounts and manifest pushes, by digest then tag.
	copied, err := c.CopyTree(ctx, src, repo)
	if err != nil {
		t.Fatal(err)
	}
	if copied.Digest != desc.Digest {
		t.Fatalf("CopyTree gave %s, want %s", copied.Digest, desc.Digest)
	}
	m, err := c.Manifest(ctx, digestRef(t, c, repo, desc.Digest))
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(repo.String() + ":copied")
	if err := c.Tag(ctx, tag, m.Raw, string(m.Descriptor.MediaType)); err != nil {
		t.Fatal(err)
	}
	// A referrer (the fallback tag path on Distribution).
	sub := platformManifest(t, ctx, c, digestRef(t, c, repo, desc.Digest))
	raw := pushArtifact(t, ctx, c, repo, sub, "application/vnd.seal.test", "retry")
	if _, err := c.PushReferrer(ctx, digestRef(t, c, repo, sub.Digest), raw, "application/vnd.oci.image.manifest.v1+json"); err != nil {
		t.Fatal(err)
	}
	refs, err := c.Referrers(ctx, digestRef(t, c, repo, sub.Digest))
	if err != nil || len(refs) != 1 {
		t.Fatalf("Referrers: %v %v", refs, err)
	}
}

func mustHash(t *testing.T, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestRetryTransientFailures(t *testing.T) {
	reg := testenv.Distribution(t)
	pushed := reg.PushFixture(t, "fleet", fixture)
	for _, f := range []testenv.Fault{
		testenv.Fault503,
		{Status: 429, RetryAfter: "1"}, // bounded by MaxDelay
		testenv.FaultReset,
		testenv.FaultTruncate, // forwarded, then the answer is lost
	} {
		t.Run(f.String(), func(t *testing.T) {
			// Every distinct request fails twice before it passes.
			p := testenv.NewFaultProxy(t, "http://"+reg.Host, testenv.FaultRule{First: 2, PerRequest: true, Fault: f})
			c := plainClient(t, oci.WithRetry(oci.Retry{Attempts: 6, BaseDelay: 2 * time.Millisecond, MaxDelay: 20 * time.Millisecond}))
			exercise(t, c, p.Host(), pushed)
			faults := 0
			for _, n := range p.Faults() {
				faults += n
			}
			if faults < 20 {
				t.Fatalf("only %d faults injected (%v): the test did not test", faults, p.Faults())
			}
		})
	}
}

func TestRetryRandomFaults(t *testing.T) {
	reg := testenv.Distribution(t)
	pushed := reg.PushFixture(t, "fleet", fixture)
	// All kinds of faults, at random (seeded): 500/502/503, 429 with
	// Retry-After, resets, truncated bodies, slow answers.
	p := testenv.NewFaultProxy(t, "http://"+reg.Host, testenv.FaultRule{Rate: 0.2, Seed: 7})
	c := plainClient(t, oci.WithRetry(oci.Retry{Attempts: 10, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond, MaxElapsed: 10 * time.Second}))
	exercise(t, c, p.Host(), pushed)
	kinds := p.FaultKinds()
	if len(kinds) < 4 {
		t.Fatalf("faults injected: %v; want at least 4 kinds for the test to test", kinds)
	}
	t.Logf("faults: %v", kinds)
}

func TestRetryPermanentFailure(t *testing.T) {
	reg := testenv.Distribution(t)
	p := testenv.NewFaultProxy(t, "http://"+reg.Host, testenv.FaultRule{Path: "/manifests/", First: 1 << 30, Fault: testenv.Fault502})
	c := plainClient(t, oci.WithRetry(oci.Retry{Attempts: 4, BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond}))
	ref, _ := c.ParseReference(p.Host() + "/app:v1")
	start := time.Now()
	_, err := c.Resolve(testCtx(t), ref)
	mustKind(t, err, fault.Operational)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("gave up after %v", d)
	}
	if n := p.Count("HEAD", "manifest"); n != 4 {
		t.Fatalf("%d tries, want 4", n)
	}
	if !strings.Contains(err.Error(), ref.String()) || !strings.Contains(err.Error(), "502") {
		t.Fatalf("error %q: want the reference and the status", err)
	}

	// Elapsed time bounds the retries too.
	p.ResetCounts()
	c = plainClient(t, oci.WithRetry(oci.Retry{Attempts: 1000, BaseDelay: 20 * time.Millisecond, MaxDelay: 20 * time.Millisecond, MaxElapsed: 300 * time.Millisecond}))
	start = time.Now()
	_, err = c.Resolve(testCtx(t), ref)
	mustKind(t, err, fault.Operational)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("gave up after %v, MaxElapsed 300ms", d)
	}
}

func TestRetryAfter(t *testing.T) {
	reg := testenv.Distribution(t)
	pushed := reg.PushFixture(t, "fleet", fixture)
	for _, tc := range []struct {
		name       string
		retryAfter func() string
		maxDelay   time.Duration
		min, max   time.Duration
	}{
		{"honoured", func() string { return "1" }, 5 * time.Second, time.Second, 3 * time.Second},
		{"bounded by MaxDelay", func() string { return "3600" }, 200 * time.Millisecond, 150 * time.Millisecond, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testenv.NewFaultProxy(t, "http://"+reg.Host, testenv.FaultRule{
				Method: "HEAD", Path: "/manifests/", First: 1,
				Fault: testenv.Fault{Status: 429, RetryAfter: tc.retryAfter()},
			})
			c := plainClient(t, oci.WithRetry(oci.Retry{Attempts: 3, BaseDelay: time.Millisecond, MaxDelay: tc.maxDelay}))
			ref, _ := c.ParseReference(p.Host() + "/fleet@" + pushed.DigestStr())
			start := time.Now()
			if _, err := c.Resolve(testCtx(t), ref); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d < tc.min || d > tc.max {
				t.Fatalf("took %v, want between %v and %v", d, tc.min, tc.max)
			}
			if n := p.Count("HEAD", "manifest"); n != 2 {
				t.Fatalf("%d tries, want 2", n)
			}
		})
	}
}

func TestContextCancelStopsRetries(t *testing.T) {
	reg := testenv.Distribution(t)
	p := testenv.NewFaultProxy(t, "http://"+reg.Host, testenv.FaultRule{First: 1 << 30, Fault: testenv.Fault{Status: 503, RetryAfter: "60"}})
	c := plainClient(t, oci.WithRetry(oci.Retry{Attempts: 100, MaxDelay: time.Minute, MaxElapsed: time.Hour}))
	ref, _ := c.ParseReference(p.Host() + "/app:v1")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Resolve(ctx, ref)
	mustKind(t, err, fault.Operational)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancelled context: returned after %v", d)
	}
}

func TestAuth(t *testing.T) {
	ctx := testCtx(t)
	reg := testenv.External(t)
	pushed := reg.PushFixture(t, "fleet", fixture)

	// With the registry's credentials (Docker config), over TLS.
	c := clientFor(reg)
	ref, err := c.ParseReference(pushed.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resolve(ctx, ref); err != nil {
		t.Fatal(err)
	}
	exerciseAuth(t, c, reg, pushed)

	// Wrong or no credentials: auth refused, an operational error that
	// names the host and never the credentials.
	wrong := "not-" + reg.Password
	for _, kc := range []authn.Keychain{
		staticKeychain{authn.FromConfig(authn.AuthConfig{Username: reg.Username, Password: wrong})},
		staticKeychain{authn.Anonymous},
	} {
		c := oci.NewClient(oci.WithTransport(reg.Transport()), oci.WithKeychain(kc), oci.WithRetry(fastRetry))
		ref, _ := c.ParseReference(pushed.String())
		_, err := c.Resolve(ctx, ref)
		mustKind(t, err, fault.Operational)
		msg := err.Error()
		if !strings.Contains(msg, "auth refused for "+reg.Host) {
			t.Fatalf("error %q: want auth refused for %s", msg, reg.Host)
		}
		for _, secret := range []string{wrong, reg.Password, base64.StdEncoding.EncodeToString([]byte(reg.Username + ":" + wrong)), "Authorization", "Basic "} {
			if strings.Contains(msg, secret) {
				t.Fatalf("error %q reveals %q", msg, secret)
			}
		}
	}
}

func TestUntrustedCertificate(t *testing.T) {
	reg := testenv.External(t)
	// The default transport does not trust the test CA.
	c := oci.NewClient(oci.WithKeychain(reg.Keychain()), oci.WithRetry(fastRetry))
	ref, _ := c.ParseReference(reg.Host + "/app:v1")
	_, err := c.Resolve(testCtx(t), ref)
	mustKind(t, err, fault.Operational)
	if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("error %q: want the certificate named", err)
	}
}

// exerciseAuth pushes with credentials: a blob, a referrer.
func exerciseAuth(t *testing.T, c *oci.Client, reg *testenv.Registry, pushed name.Digest) {
	ctx := testCtx(t)
	repo := repoOf(t, c, reg.Host+"/fleet")
	idx := digestRef(t, c, repo, mustHash(t, pushed.DigestStr()))
	sub := platformManifest(t, ctx, c, idx)
	raw := pushArtifact(t, ctx, c, repo, sub, "application/vnd.seal.test", "auth")
	if _, err := c.PushReferrer(ctx, digestRef(t, c, repo, sub.Digest), raw, "application/vnd.oci.image.manifest.v1+json"); err != nil {
		t.Fatal(err)
	}
	other := repoOf(t, c, reg.Host+"/copy")
	if _, err := c.CopyTree(ctx, idx, other); err != nil {
		t.Fatal(err)
	}
}

type staticKeychain struct{ a authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.a, nil }
