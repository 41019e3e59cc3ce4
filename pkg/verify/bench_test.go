package verify

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/seal-dev/seal/internal/buildkit"
	"github.com/seal-dev/seal/internal/testenv"
	pkgattest "github.com/seal-dev/seal/pkg/attest"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/signing"
)

// benchPolicy requires, for every image, the key's signature and SLSA v1
// provenance signed by the key on every platform.
const benchPolicy = `apiVersion: seal.dev/v1alpha1
kind: Policy
trust:
  keys:
    release: {path: <<.Key>>}
unmatched: deny
rules:
  - name: release
    images: ["<<.Host>>/bench/**"]
    signatures:
      authorities:
        - key: release
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        platforms: all
`

// BenchmarkVerifyAll100 is one run of the library over a release of 100
// two-platform images (BuildKit's pushes from internal/buildkit merged by
// index.Create, signed with a key, --recursive, bundle format, and their
// BuildKit provenance signed per platform by attest.FromBuildKit), each in
// its own repository: a fresh client and verifier, then VerifyAll with the
// default concurrency, through a request-counting proxy. Per registry kind:
// CNCF Distribution (referrers through the fallback tag) and
// go-containerregistry's (referrers API). Run with
//
//	go test ./pkg/verify -run '^$' -bench VerifyAll100 -benchtime 5x
//
// The floor is 10 requests per image (see bench/verify): the index, the
// referrers of the index and of both platforms, and the manifest and blob
// of three bundles. On top of it pkg/oci pings /v2/ once per repository
// (go-containerregistry's transport does, for the token scope), and learns
// once per registry whether it has the referrers API; on
// go-containerregistry's registry the BuildKit attestation manifests are
// listed as referrers without the annotation that tells them apart, so
// each platform's is read too.
func BenchmarkVerifyAll100(b *testing.B) {
	const n = 100
	for _, reg := range []*testenv.Registry{testenv.Distribution(b), testenv.GGCR(b)} {
		b.Run(reg.Name, func(b *testing.B) {
			proxy := testenv.NewFaultProxy(b, "http://"+reg.Host)
			host := proxy.Host()
			setup := oci.NewClient(oci.WithTransport(reg.Transport()), oci.WithKeychain(reg.Keychain()))
			k := quickKey(b)
			refs := benchRelease(b, setup, host, n, k.signer)
			p := parsePolicy(b, policyText(b, benchPolicy, map[string]string{"Host": host, "Key": k.pub}))

			var requests int
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				proxy.ResetCounts()
				b.StartTimer()
				c := oci.NewClient(oci.WithTransport(reg.Transport()), oci.WithKeychain(reg.Keychain()))
				v, err := New(p, nil)
				must(b, err)
				results := v.VerifyAll(context.Background(), c, refs, DefaultConcurrency, nil)
				b.StopTimer()
				for _, r := range results {
					if !r.Passed || len(r.Attestations) != 2 {
						b.Fatalf("%s: passed %v, %d attestations: %v", r.Image, r.Passed, len(r.Attestations), r.Errors)
					}
				}
				for _, cnt := range proxy.Counts() {
					requests += cnt
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/image")
			b.ReportMetric(float64(requests)/float64(b.N*n), "requests/image")
		})
	}
}

// benchRelease pushes n two-platform images to host/bench/appNNN:v1, signs
// each index and its platform manifests with s and signs the BuildKit
// provenance of each platform, and returns the tags.
func benchRelease(b *testing.B, c *oci.Client, host string, n int, s signing.Signer) []name.Reference {
	b.Helper()
	ctx := context.Background()
	refs := make([]name.Reference, n)
	digests := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			repo := fmt.Sprintf("%s/bench/app%03d", host, i)
			var sources []name.Reference
			for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}} {
				im, err := buildkit.Build(buildkit.Options{Component: fmt.Sprintf("bench/app%03d", i), Platform: p})
				if err != nil {
					errs[i] = err
					return
				}
				tag, err := name.NewTag(repo+":v1-linux-"+p.Architecture, name.Insecure)
				if err != nil {
					errs[i] = err
					return
				}
				if errs[i] = remote.WriteIndex(tag, im.Index(), remote.WithContext(ctx)); errs[i] != nil {
					return
				}
				sources = append(sources, tag.Context().Digest(im.Digest().String()))
			}
			tag, err := name.NewTag(repo+":v1", name.Insecure)
			if err != nil {
				errs[i] = err
				return
			}
			created, err := index.Create(ctx, c, tag, sources, index.CreateOptions{})
			if err != nil {
				errs[i] = err
				return
			}
			refs[i], digests[i] = tag, tag.Context().Digest(created.Digest.String()).String()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		must(b, err)
	}
	_, err := signing.Sign(ctx, c, digests, signing.Options{Signer: s, Format: signing.FormatBundle, Recursive: true})
	must(b, err)
	_, err = pkgattest.FromBuildKit(ctx, c, digests, pkgattest.Options{Signer: s, Format: signing.FormatBundle})
	must(b, err)
	return refs
}
