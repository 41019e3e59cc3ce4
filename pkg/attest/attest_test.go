package attest

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/internal/registry"
	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/signing"
)

// githubProvenance is the SLSA v1 predicate pkg/attestation generates from
// the recorded GitHub Actions environment of a release job.
func githubProvenance(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "attestation", "testdata", "github-actions.env"))
	must(t, err)
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = v
		}
	}
	must(t, sc.Err())
	pred, err := attestation.GenerateGitHub(func(k string) string { return env[k] })
	must(t, err)
	return pred
}

const spdxPredicate = `{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"hand-made","packages":[]}`

// A predicate given by hand: the GitHub provenance attaches to the index
// itself (subject = the index digest, named by the repository) and cosign
// verifies it in both formats; with Platforms an SBOM attaches to the
// amd64 manifest only, and downloading arm64's SBOM finds none rather than
// amd64's. Download without a platform lists the index's provenance and
// each platform's unsigned BuildKit provenance.
func TestAttestPredicate(t *testing.T) {
	k := testKeys(t)
	pred := githubProvenance(t)
	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) {
			ctx := context.Background()
			c := client(reg)
			top, platforms := release(t, reg, "example/fleet", "v0.1.0", "fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64")
			created := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
			res, err := Attest(ctx, c, []string{top.Context().Tag("v0.1.0").String()}, Options{
				Signer: k.signer, PredicateType: "slsaprovenance1", Predicate: pred, Format: signing.FormatBoth,
				Now: func() time.Time { return created },
			})
			recordErr(err)
			must(t, err)
			if len(res) != 2 || res[0].Digest != top.DigestStr() || res[0].Platform != "" || res[0].Index != "" ||
				res[0].Format != signing.FormatBundle || res[1].Format != signing.FormatLegacy ||
				res[1].Attestation != top.Context().Tag(signing.LegacyTag(hashOf(t, top), signing.LegacyAttestation)).String() {
				t.Fatalf("results %+v", res)
			}
			for _, legacy := range []bool{false, true} {
				sts, err := verifyAttestation(t, k.pub, "slsaprovenance1", top.String(), legacy)
				if err != nil {
					t.Fatalf("cosign verify-attestation (legacy %v): %v", legacy, err)
				}
				st := sts[0]
				if len(sts) != 1 || len(st.Subject) != 1 || st.Subject[0].Name != top.Context().Name() ||
					!st.HasSubjectDigest("sha256", top.DigestStr()[len("sha256:"):]) || !sameJSON(t, st.Predicate, pred) {
					t.Errorf("legacy %v: statement %+v", legacy, st)
				}
			}
			m, err := c.Manifest(ctx, top.Context().Digest(res[0].Attestation))
			must(t, err)
			if !bytes.Contains(m.Raw, []byte(`"dev.sigstore.bundle.predicateType":"https://slsa.dev/provenance/v1"`)) ||
				!bytes.Contains(m.Raw, []byte(`"org.opencontainers.image.created":"2026-03-04T05:06:07Z"`)) {
				t.Errorf("referrer manifest %s", m.Raw)
			}

			// An SBOM for amd64 only.
			res, err = Attest(ctx, c, []string{top.String()}, Options{
				Signer: k.signer, PredicateType: "spdxjson", Predicate: []byte(spdxPredicate), Platforms: []string{"linux/amd64"},
			})
			must(t, err)
			if len(res) != 1 || res[0].Digest != platforms["linux/amd64"].String() || res[0].Index != top.DigestStr() || res[0].Platform != "linux/amd64" {
				t.Fatalf("sbom results %+v", res)
			}
			got, err := Download(ctx, c, top.String(), DownloadOptions{Kind: SBOM, Platforms: []string{"linux/amd64"}})
			must(t, err)
			if len(got.Attestations) != 1 || !sameJSON(t, got.Attestations[0].Predicate, []byte(spdxPredicate)) ||
				got.Attestations[0].PredicateType != attestation.PredicateSPDX {
				t.Errorf("download amd64 sbom %+v", got)
			}
			_, err = Download(ctx, c, top.String(), DownloadOptions{Kind: SBOM, Platforms: []string{"linux/arm64"}})
			if err == nil || fault.KindOf(err) != fault.Input || !strings.Contains(err.Error(), "no sbom attestation on linux/arm64") {
				t.Errorf("download arm64 sbom: %v", err)
			}

			// Everything of kind provenance: the index's (signed), each
			// platform's BuildKit statement (unsigned).
			got, err = Download(ctx, c, top.String(), DownloadOptions{Kind: Provenance})
			must(t, err)
			if len(got.Attestations) != 3 {
				t.Fatalf("download provenance: %+v", got.Attestations)
			}
			if a := got.Attestations[0]; a.Subject != top.DigestStr() || a.Platform != "" || !a.Signed || len(a.Sources) != 2 {
				t.Errorf("index provenance %+v", a)
			}
			for i, p := range []string{"linux/amd64", "linux/arm64"} {
				a := got.Attestations[i+1]
				if a.Subject != platforms[p].String() || a.Platform != p || a.Signed || len(a.Sources) != 1 ||
					a.Sources[0].Format != SourceBuildKit || a.Sources[0].Signed {
					t.Errorf("%s provenance %+v", p, a)
				}
			}
		})
	}
}

// Bad inputs fail with one input error naming what is wrong, before
// anything is signed: nothing is pushed.
func TestAttestBadInputs(t *testing.T) {
	ctx := context.Background()
	k := testKeys(t)
	reg := testenv.Distribution(t)
	c := client(reg)
	top, platforms := release(t, reg, "example/fleet", "v0.1.0", "fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64")
	amd, arm := top.Context().Digest(platforms["linux/amd64"].String()), top.Context().Digest(platforms["linux/arm64"].String())

	// A BuildKit index whose statement is about another manifest (arm64's
	// statement listed as amd64's).
	armStatement, _ := fixtureStatementBlob(t, "fleet__v0.1.0-linux-arm64")
	p := platformImage(t, reg, "example/mismatch", v1.Platform{OS: "linux", Architecture: "amd64"})
	raw, err := os.ReadFile(filepath.Join(testenv.Fixture(t, "fleet__v0.1.0-linux-arm64"), "blobs", "sha256", blobOf(t, "fleet__v0.1.0-linux-arm64")))
	must(t, err)
	if !armStatement.HasSubjectDigest("sha256", platforms["linux/arm64"].Hex) {
		t.Fatal("fixture statement is not about the arm64 manifest")
	}
	mismatch := pushBuildKitIndex(t, reg, "example/mismatch", "v1", p, raw)
	mismatchPlatform := mismatch.Context().Digest(p.Digest.String())

	watched := []name.Digest{top, amd, arm, mismatch, mismatchPlatform}
	before := attachedState(t, c, watched...)
	pred := githubProvenance(t)
	for _, tc := range []struct {
		name  string
		run   func() ([]Result, error)
		wants []string
	}{
		{"predicate not JSON", func() ([]Result, error) {
			return Attest(ctx, c, []string{top.String()}, Options{Signer: k.signer, PredicateType: "slsaprovenance1", Predicate: []byte("buildType: x\n")})
		}, []string{"not a JSON object"}},
		{"predicate is a statement", func() ([]Result, error) {
			st, err := attestation.NewStatement(attestation.PredicateSLSAProvenanceV1, pred, attestation.Subject{Digest: map[string]string{"sha256": amd.DigestStr()[7:]}})
			must(t, err)
			return Attest(ctx, c, []string{top.String()}, Options{Signer: k.signer, PredicateType: "slsaprovenance1", Predicate: st})
		}, []string{"whole in-toto statement"}},
		{"SLSA v1 without buildDefinition", func() ([]Result, error) {
			return Attest(ctx, c, []string{top.String()}, Options{Signer: k.signer, PredicateType: "slsaprovenance1", Predicate: []byte(`{"runDetails":{"builder":{"id":"x"}}}`)})
		}, []string{"buildDefinition"}},
		{"unknown type", func() ([]Result, error) {
			return Attest(ctx, c, []string{top.String()}, Options{Signer: k.signer, PredicateType: "slsa", Predicate: pred})
		}, []string{`predicate type "slsa"`, "slsaprovenance1"}},
		{"platform the image lacks", func() ([]Result, error) {
			return Attest(ctx, c, []string{top.String()}, Options{Signer: k.signer, PredicateType: "slsaprovenance1", Predicate: pred, Platforms: []string{"linux/riscv64"}})
		}, []string{"no platform linux/riscv64 (it has linux/amd64, linux/arm64)"}},
		{"one image of two does not exist", func() ([]Result, error) {
			return Attest(ctx, c, []string{top.String(), reg.Ref("example/fleet:nope")}, Options{Signer: k.signer, PredicateType: "slsaprovenance1", Predicate: pred})
		}, []string{"nope"}},
		{"buildkit statement about another manifest", func() ([]Result, error) {
			return FromBuildKit(ctx, c, []string{top.String(), mismatch.String()}, Options{Signer: k.signer, Format: signing.FormatBoth})
		}, []string{"statement subject sha256:" + platforms["linux/arm64"].Hex, "is not the platform manifest " + p.Digest.String()}},
		{"buildkit platform the image lacks", func() ([]Result, error) {
			return FromBuildKit(ctx, c, []string{top.String()}, Options{Signer: k.signer, Platforms: []string{"linux/arm64", "linux/ppc64le"}})
		}, []string{"no platform linux/ppc64le (it has linux/amd64, linux/arm64)"}},
		{"buildkit on a platform manifest", func() ([]Result, error) {
			return FromBuildKit(ctx, c, []string{arm.String()}, Options{Signer: k.signer})
		}, []string{"attest " + arm.String() + ": not an index"}},
		{"buildkit with a predicate", func() ([]Result, error) {
			return FromBuildKit(ctx, c, []string{top.String()}, Options{Signer: k.signer, PredicateType: "slsaprovenance1", Predicate: pred})
		}, []string{"cannot be given"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.run()
			recordErr(err)
			t.Logf("%v", err)
			if err == nil || res != nil || fault.KindOf(err) != fault.Input {
				t.Fatalf("results %v, error %v (kind %v), want an input error and no results", res, err, fault.KindOf(err))
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if after := attachedState(t, c, watched...); after != before {
		t.Fatalf("bad inputs pushed something:\n%s\nthen\n%s", before, after)
	}
}

// blobOf is the hex digest of a fixture's statement blob.
func blobOf(t *testing.T, fixture string) string {
	_, h := fixtureStatementBlob(t, fixture)
	return h.Hex
}

// A registry whose storage was tampered with after the push serves a
// statement layer that does not match the digest its attestation manifest
// names: FromBuildKit and Download both refuse it, and nothing is pushed.
func TestTamperedAttestationLayer(t *testing.T) {
	ctx := context.Background()
	k := testKeys(t)
	root := t.TempDir()
	srv, err := registry.Start(ctx, registry.Config{Addr: "127.0.0.1:0", RootDir: root})
	must(t, err)
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	c := oci.NewClient()
	fixture := "fleet__v0.1.0-linux-arm64"
	ref := srv.Addr() + "/example/fleet:v0.1.0-linux-arm64"
	h := testenv.PushLayout(t, testenv.Fixture(t, fixture), ref)
	top, err := name.NewDigest(srv.Addr() + "/example/fleet@" + h.String())
	must(t, err)

	// Flip one byte of the stored statement, keeping its size.
	_, blob := fixtureStatementBlob(t, fixture)
	data := filepath.Join(root, "docker", "registry", "v2", "blobs", "sha256", blob.Hex[:2], blob.Hex, "data")
	b, err := os.ReadFile(data)
	must(t, err)
	i := bytes.Index(b, []byte(`"https://slsa.dev/provenance/v1"`))
	if i < 0 {
		t.Fatal("statement without its predicate type")
	}
	b[i+len(`"https://`)] = 'S'
	must(t, os.WriteFile(data, b, 0o644))

	var platform v1.Hash
	m, err := c.Manifest(ctx, top)
	must(t, err)
	idx, err := m.Index()
	must(t, err)
	for _, d := range idx.Manifests {
		if d.Platform != nil && d.Platform.Architecture == "arm64" {
			platform = d.Digest
		}
	}
	watched := []name.Digest{top, top.Context().Digest(platform.String())}
	before := attachedState(t, c, watched...)

	res, err := FromBuildKit(ctx, c, []string{top.String()}, Options{Signer: k.signer, Format: signing.FormatBoth})
	recordErr(err)
	t.Logf("%v", err)
	if err == nil || res != nil || fault.KindOf(err) != fault.Input || !strings.Contains(err.Error(), blob.String()) ||
		!strings.Contains(err.Error(), "registry served content with digest") {
		t.Fatalf("FromBuildKit on a tampered layer: %v (kind %v)", err, fault.KindOf(err))
	}
	_, err = Download(ctx, c, top.String(), DownloadOptions{Kind: Provenance})
	recordErr(err)
	if err == nil || fault.KindOf(err) != fault.Input || !strings.Contains(err.Error(), "registry served content with digest") {
		t.Fatalf("Download of a tampered layer: %v", err)
	}
	if after := attachedState(t, c, watched...); after != before {
		t.Fatalf("pushed something:\n%s\nthen\n%s", before, after)
	}
}

func hashOf(t testing.TB, d name.Digest) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(d.DigestStr())
	must(t, err)
	return h
}
