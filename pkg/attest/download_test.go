package attest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/seal-dev/seal/internal/buildkit"
	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/signing"
)

// Attestations made by the real cosign (`cosign attest --key … --type
// slsaprovenance1 --predicate …`, bundle and legacy `.att`) are read back:
// the same statement in both formats is one result with both sources,
// next to the platform's unsigned BuildKit provenance; an SPDX document
// attested by cosign is the platform's SBOM.
func TestDownloadCosignAttestations(t *testing.T) {
	k := testKeys(t)
	pred := githubProvenance(t)
	predFile := filepath.Join(t.TempDir(), "provenance.json")
	must(t, os.WriteFile(predFile, pred, 0o644))
	sbomFile := filepath.Join(t.TempDir(), "sbom.spdx.json")
	must(t, os.WriteFile(sbomFile, []byte(spdxPredicate), 0o644))
	env := []string{"COSIGN_PASSWORD=" + testPassword}
	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) {
			ctx := context.Background()
			c := client(reg)
			top, platforms := release(t, reg, "example/fleet", "v0.1.0", "fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64")
			arm := top.Context().Digest(platforms["linux/arm64"].String()).String()
			for _, extra := range [][]string{nil, {"--new-bundle-format=false"}} {
				args := append([]string{"attest", "--key", k.key, "--type", "slsaprovenance1", "--predicate", predFile,
					"--tlog-upload=false", "--use-signing-config=false", "--yes", "--allow-insecure-registry"}, extra...)
				if out, err := cosign(t, env, append(args, arm)...); err != nil {
					t.Fatalf("cosign attest %v: %v\n%s", extra, err, out)
				}
			}
			if out, err := cosign(t, env, "attest", "--key", k.key, "--type", "spdxjson", "--predicate", sbomFile,
				"--tlog-upload=false", "--use-signing-config=false", "--yes", "--allow-insecure-registry", arm); err != nil {
				t.Fatalf("cosign attest spdxjson: %v\n%s", err, out)
			}

			got, err := Download(ctx, c, top.String(), DownloadOptions{Kind: Provenance, Platforms: []string{"linux/arm64"}})
			recordErr(err)
			must(t, err)
			if len(got.Attestations) != 2 {
				t.Fatalf("download: %+v", got.Attestations)
			}
			cos, bk := got.Attestations[0], got.Attestations[1]
			if cos.Subject != platforms["linux/arm64"].String() || !cos.Signed || len(cos.Sources) != 2 ||
				cos.Sources[0].Format != SourceBundle || cos.Sources[1].Format != SourceLegacy ||
				!strings.HasSuffix(cos.Sources[1].Tag, ".att") || !sameJSON(t, cos.Predicate, pred) {
				t.Errorf("cosign's provenance: %+v", cos)
			}
			if bk.Signed || len(bk.Sources) != 1 || bk.Sources[0].Format != SourceBuildKit ||
				!sameJSON(t, bk.Predicate, fixtureStatement(t, "fleet__v0.1.0-linux-arm64").Predicate) {
				t.Errorf("BuildKit's provenance: %+v", bk)
			}

			got, err = Download(ctx, c, top.String(), DownloadOptions{Kind: SBOM})
			must(t, err)
			if len(got.Attestations) != 1 || got.Attestations[0].Platform != "linux/arm64" ||
				got.Attestations[0].PredicateType != attestation.PredicateSPDX || !sameJSON(t, got.Attestations[0].Predicate, []byte(spdxPredicate)) {
				t.Errorf("sbom: %+v", got.Attestations)
			}
			got, err = Download(ctx, c, top.String(), DownloadOptions{Kind: AnyAttestation, Platforms: []string{"linux/arm64"}})
			must(t, err)
			if len(got.Attestations) != 3 {
				t.Errorf("all attestations of arm64: %+v", got.Attestations)
			}
		})
	}
}

// BuildKit's SBOM (generated builds with --sbom, both layouts): signed by
// FromBuildKit next to the provenance, each against its platform manifest,
// and downloaded per platform.
func TestFromBuildKitSBOM(t *testing.T) {
	k := testKeys(t)
	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) { testFromBuildKitSBOM(t, reg, k) })
	}
}

func testFromBuildKitSBOM(t *testing.T, reg *testenv.Registry, k keys) {
	ctx := context.Background()
	c := client(reg)
	builds := map[string]*buildkit.Image{}
	var sources []name.Reference
	for i, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}} {
		b, err := buildkit.Build(buildkit.Options{Component: "example/server", Platform: p, SBOM: true,
			Layout: []buildkit.Layout{buildkit.LayoutArtifact, buildkit.LayoutDummyConfig}[i]})
		must(t, err)
		ref, err := name.NewTag(reg.Ref("example/server:build-" + p.Architecture))
		must(t, err)
		must(t, remote.WriteIndex(ref, b.Index(), reg.RemoteOptions(ctx)...))
		builds[p.OS+"/"+p.Architecture] = b
		sources = append(sources, ref)
	}
	target, err := name.NewTag(reg.Ref("example/server:v1"))
	must(t, err)
	if _, err := index.Create(ctx, c, target, sources, index.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Two statements per platform manifest, both signed at once: on the
	// registry without the referrers API they share one fallback tag.
	res, err := FromBuildKit(ctx, c, []string{target.String()}, Options{Signer: k.signer, Concurrency: 8})
	must(t, err)
	if len(res) != 4 {
		t.Fatalf("results %+v", res)
	}
	for _, r := range res {
		if r.Digest != builds[r.Platform].PlatformDigest().String() {
			t.Errorf("%s %s attached to %s", r.Platform, r.PredicateType, r.Digest)
		}
	}
	for p, b := range builds {
		st, err := attestation.ParseStatement(b.SBOM())
		must(t, err)
		got, err := Download(ctx, c, target.String(), DownloadOptions{Kind: SBOM, Platforms: []string{p}})
		must(t, err)
		if len(got.Attestations) != 1 || !got.Attestations[0].Signed || len(got.Attestations[0].Sources) != 2 ||
			!sameJSON(t, got.Attestations[0].Predicate, st.Predicate) {
			t.Errorf("%s sbom: %+v", p, got.Attestations)
		}
		for _, typ := range []string{"spdxjson", "slsaprovenance1"} {
			sts, err := verifyAttestation(t, k.pub, typ, target.Context().Digest(b.PlatformDigest().String()).String(), false)
			must(t, err)
			if len(sts) != 1 {
				t.Errorf("%s: cosign verified %d %s attestations", p, len(sts), typ)
			}
			if typ == "spdxjson" && !sameJSON(t, sts[0].Predicate, st.Predicate) {
				t.Errorf("%s: signed SBOM is not BuildKit's", p)
			}
		}
	}
}

// Download's input errors: a platform a single-platform image lacks (named
// with the one it has), nothing of the kind attached, a predicate type of
// another kind, an unknown kind.
func TestDownloadErrors(t *testing.T) {
	ctx := context.Background()
	reg := testenv.Distribution(t)
	c := client(reg)
	p := platformImage(t, reg, "example/bare", v1.Platform{OS: "linux", Architecture: "amd64"})
	img := reg.Ref("example/bare@" + p.Digest.String())
	for _, tc := range []struct {
		opts DownloadOptions
		want string
	}{
		{DownloadOptions{Kind: Provenance, Platforms: []string{"linux/arm64"}}, ": no platform linux/arm64 (it has linux/amd64)"},
		{DownloadOptions{Kind: Provenance}, "no provenance attestation on the image"},
		{DownloadOptions{Kind: Provenance, Platforms: []string{"linux/amd64"}}, "no provenance attestation on linux/amd64"},
		{DownloadOptions{Kind: SBOM, PredicateType: "slsaprovenance1"}, "is not a sbom type"},
		{DownloadOptions{Kind: "everything"}, `"everything": want provenance, sbom or attestation`},
		{DownloadOptions{Kind: Provenance, Platforms: []string{"amd64"}}, "want OS/ARCH"},
	} {
		_, err := Download(ctx, c, img, tc.opts)
		if err == nil || fault.KindOf(err) != fault.Input || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an input error with %q", tc.opts, err, tc.want)
		}
	}
}

// Keyless: FromBuildKit through the test Fulcio and TSA; cosign verifies
// each platform's provenance by identity, in both formats.
func TestFromBuildKitKeyless(t *testing.T) {
	ctx := context.Background()
	ss := testenv.SharedSigstore(t)
	claims := testenv.GitHubRelease("example/fleet", "v0.1.0")
	s, err := signing.NewKeylessSigner(signing.KeylessOptions{
		Services:    signing.Services{FulcioURL: ss.FulcioURL, TimestampURLs: []string{ss.TSAURL}},
		Token:       signing.StaticToken(ss.Issuer.Token(claims)),
		TrustedRoot: ss.TrustedRoot(),
	})
	must(t, err)
	reg := testenv.GGCR(t)
	c := client(reg)
	top, platforms := release(t, reg, "example/fleet", "v0.1.0", "fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64")
	res, err := FromBuildKit(ctx, c, []string{top.String()}, Options{Signer: s, Format: signing.FormatBoth})
	must(t, err)
	if len(res) != 4 {
		t.Fatalf("results %+v", res)
	}
	for p, d := range platforms {
		for _, extra := range [][]string{nil, {"--new-bundle-format=false"}} {
			args := append([]string{"verify-attestation", "--type", "slsaprovenance1", "--trusted-root", ss.TrustedRootPath,
				"--certificate-identity", claims.CertificateIdentity(), "--certificate-oidc-issuer", ss.Issuer.URL,
				"--insecure-ignore-tlog=true", "--insecure-ignore-sct=true", "--allow-insecure-registry"}, extra...)
			if out, err := cosign(t, nil, append(args, top.Context().Digest(d.String()).String())...); err != nil {
				t.Errorf("%s %v: cosign verify-attestation: %v\n%s", p, extra, err, out)
			}
		}
	}
}
