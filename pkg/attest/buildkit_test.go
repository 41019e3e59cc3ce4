package attest

import (
	"context"
	"strings"
	"testing"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/signing"
)

// The real BuildKit fixtures, both layouts, merged into a release index on
// both registry kinds: FromBuildKit signs one provenance per platform, each
// about its own platform manifest and attached to it (never the index);
// real cosign verify-attestation accepts each in both formats and prints
// exactly that platform's predicate; Download then finds it signed, in all
// three places, for the platform asked.
func TestFromBuildKitFixtures(t *testing.T) {
	k := testKeys(t)
	for _, reg := range testenv.Registries(t) {
		for _, layout := range []struct{ name, component string }{
			{"artifact", "fleet"}, {"dummy-config", "oldlayout"},
		} {
			t.Run(reg.Name+"/"+layout.name, func(t *testing.T) {
				ctx := context.Background()
				c := client(reg)
				tag := "v0.1.0"
				if layout.component == "oldlayout" {
					tag = "v1"
				}
				fixtures := map[string]string{
					"linux/amd64": layout.component + "__" + tag + "-linux-amd64",
					"linux/arm64": layout.component + "__" + tag + "-linux-arm64",
				}
				top, platforms := release(t, reg, "example/"+layout.component, tag,
					fixtures["linux/amd64"], fixtures["linux/arm64"])
				if len(platforms) != 2 {
					t.Fatalf("release has platforms %v", platforms)
				}
				res, err := FromBuildKit(ctx, c, []string{top.Context().Tag(tag).String()}, Options{
					Signer: k.signer, Format: signing.FormatBoth,
				})
				recordErr(err)
				must(t, err)
				if len(res) != 4 {
					t.Fatalf("%d results, want 2 platforms x 2 formats: %+v", len(res), res)
				}
				for _, r := range res {
					want, ok := platforms[r.Platform]
					if !ok || r.Digest != want.String() || r.Reference != top.Context().Digest(want.String()).String() {
						t.Errorf("result about %s (%s), want its platform manifest %v", r.Digest, r.Platform, want)
					}
					if r.Digest == top.DigestStr() || r.Index != top.DigestStr() {
						t.Errorf("result %+v: index digest misused", r)
					}
					if r.PredicateType != attestation.PredicateSLSAProvenanceV1 || r.Source == "" || r.Attestation == "" {
						t.Errorf("result %+v", r)
					}
				}

				for p, d := range platforms {
					fixture := fixtureStatement(t, fixtures[p])
					ref := top.Context().Digest(d.String()).String()
					for _, legacy := range []bool{false, true} {
						sts, err := verifyAttestation(t, k.pub, "slsaprovenance1", ref, legacy)
						if err != nil {
							t.Fatalf("cosign verify-attestation %s (legacy %v): %v", p, legacy, err)
						}
						if len(sts) != 1 {
							t.Fatalf("%s (legacy %v): cosign verified %d attestations, want 1", p, legacy, len(sts))
						}
						st := sts[0]
						if st.Type != attestation.StatementTypeV1 || !st.HasSubjectDigest("sha256", d.Hex) ||
							len(st.Subject) != 1 || st.Subject[0].Name != top.Context().Name() {
							t.Errorf("%s: signed statement subject %+v", p, st.Subject)
						}
						if !sameJSON(t, st.Predicate, fixture.Predicate) {
							t.Errorf("%s (legacy %v): signed predicate is not the fixture's", p, legacy)
						}
					}
				}
				// Nothing is attached to the index itself.
				for _, legacy := range []bool{false, true} {
					if _, err := verifyAttestation(t, k.pub, "slsaprovenance1", top.String(), legacy); err == nil {
						t.Errorf("cosign found an attestation on the index (legacy %v)", legacy)
					}
				}

				// Download the arm64 provenance: exactly the arm64 predicate,
				// found signed (bundle, .att) and unsigned (BuildKit).
				got, err := Download(ctx, c, top.Context().Tag(tag).String(), DownloadOptions{Kind: Provenance, Platforms: []string{"linux/arm64"}})
				recordErr(err)
				must(t, err)
				if len(got.Attestations) != 1 {
					t.Fatalf("download: %d attestations, want 1: %+v", len(got.Attestations), got.Attestations)
				}
				a := got.Attestations[0]
				if a.Subject != platforms["linux/arm64"].String() || a.Platform != "linux/arm64" || !a.Signed ||
					!sameJSON(t, a.Predicate, fixtureStatement(t, fixtures["linux/arm64"]).Predicate) ||
					sameJSON(t, a.Predicate, fixtureStatement(t, fixtures["linux/amd64"]).Predicate) {
					t.Errorf("download arm64: %+v", a)
				}
				var formats []string
				for _, s := range a.Sources {
					formats = append(formats, s.Format)
				}
				if strings.Join(formats, ",") != "bundle,legacy,buildkit" {
					t.Errorf("sources %v, want bundle, legacy, buildkit", formats)
				}
			})
		}
	}
}

// --platform selects; a platform the release lacks fails listing those it
// has, and nothing is signed or pushed. --slsa-version 1 converts v0.2;
// BuildKit's SBOM is signed too.
func TestFromBuildKitPlatforms(t *testing.T) {
	ctx := context.Background()
	k := testKeys(t)
	reg := testenv.GGCR(t)
	c := client(reg)
	top, platforms := release(t, reg, "example/fleet", "v0.1.0", "fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64")
	amd, arm := top.Context().Digest(platforms["linux/amd64"].String()), top.Context().Digest(platforms["linux/arm64"].String())
	before := attachedState(t, c, top, amd, arm)

	for _, p := range []string{"linux/s390x", "linux/arm/v7", "windows/amd64"} {
		_, err := FromBuildKit(ctx, c, []string{top.String()}, Options{Signer: k.signer, Platforms: []string{"linux/arm64", p}})
		if err == nil || !strings.Contains(err.Error(), "no platform "+p+" (it has linux/amd64, linux/arm64)") {
			t.Fatalf("platform %s: %v", p, err)
		}
	}
	if _, err := FromBuildKit(ctx, c, []string{top.String()}, Options{Signer: k.signer, Platforms: []string{"linux"}}); err == nil {
		t.Fatal("malformed platform accepted")
	}
	if after := attachedState(t, c, top, amd, arm); after != before {
		t.Fatalf("a failed run pushed something:\n%s\nthen\n%s", before, after)
	}

	res, err := FromBuildKit(ctx, c, []string{top.String()}, Options{Signer: k.signer, Platforms: []string{"linux/arm64/v8"}})
	must(t, err)
	if len(res) != 1 || res[0].Digest != arm.DigestStr() || res[0].Format != signing.FormatBundle {
		t.Fatalf("results %+v", res)
	}
	if attachedState(t, c, amd) != strings.SplitAfter(before, "\n")[1] {
		t.Error("amd64 got an attestation it was not asked for")
	}
}

// BuildKit's SLSA v0.2 provenance: signed as it is, or converted to v1 with
// SLSAVersion "1" (the predicate pkg/attestation's converter makes); cosign
// verifies both; Download tells them apart by predicate type.
func TestFromBuildKitSLSAv02(t *testing.T) {
	ctx := context.Background()
	k := testKeys(t)
	reg := testenv.Distribution(t)
	c := client(reg)
	top, platform, pred := pushV02Release(t, reg, "example/old")

	// As it is: signed as v0.2.
	res, err := FromBuildKit(ctx, c, []string{top.String()}, Options{Signer: k.signer})
	must(t, err)
	if len(res) != 1 || res[0].PredicateType != attestation.PredicateSLSAProvenanceV02 || res[0].ConvertedFrom != "" {
		t.Fatalf("results %+v", res)
	}
	ref := top.Context().Digest(platform.String()).String()
	sts, err := verifyAttestation(t, k.pub, "slsaprovenance02", ref, false)
	must(t, err)
	if !sameJSON(t, sts[0].Predicate, pred) {
		t.Error("v0.2 predicate changed")
	}

	// Converted: signed as v1, the predicate the converter makes.
	res, err = FromBuildKit(ctx, c, []string{top.String()}, Options{Signer: k.signer, SLSAVersion: "1", Format: signing.FormatLegacy})
	must(t, err)
	if len(res) != 1 || res[0].PredicateType != attestation.PredicateSLSAProvenanceV1 ||
		res[0].ConvertedFrom != attestation.PredicateSLSAProvenanceV02 || res[0].Digest != platform.String() {
		t.Fatalf("results %+v", res)
	}
	want, err := attestation.ConvertV02ToV1(pred)
	must(t, err)
	sts, err = verifyAttestation(t, k.pub, "slsaprovenance1", ref, true)
	must(t, err)
	if len(sts) != 1 || !sameJSON(t, sts[0].Predicate, want) {
		t.Errorf("converted predicate: %+v", sts)
	}
	if _, err := FromBuildKit(ctx, c, []string{top.String()}, Options{Signer: k.signer, SLSAVersion: "0.3"}); err == nil {
		t.Error("--slsa-version 0.3 accepted")
	}

	// Download sees v0.2 (BuildKit's and the signed one) and v1.
	got, err := Download(ctx, c, top.String(), DownloadOptions{Kind: Provenance})
	must(t, err)
	types := map[string]bool{}
	for _, a := range got.Attestations {
		types[a.PredicateType+" signed="+boolString(a.Signed)] = true
	}
	if len(got.Attestations) != 2 || !types[attestation.PredicateSLSAProvenanceV02+" signed=true"] || !types[attestation.PredicateSLSAProvenanceV1+" signed=true"] {
		t.Errorf("download: %+v", got.Attestations)
	}
	got, err = Download(ctx, c, top.String(), DownloadOptions{Kind: Provenance, PredicateType: "slsaprovenance1"})
	must(t, err)
	if len(got.Attestations) != 1 || got.Attestations[0].Sources[0].Format != SourceLegacy {
		t.Errorf("download slsaprovenance1: %+v", got.Attestations)
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
