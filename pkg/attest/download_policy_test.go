package attest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/policy"
	"github.com/seal-dev/seal/pkg/signing"
	"github.com/seal-dev/seal/pkg/verify"
)

// verifierGate is the CLI's adapter (internal/cli/download.go) of the real
// verification engine to a Gate.
func verifierGate(v *verify.Verifier, c *oci.Client) Gate {
	return func(ctx context.Context, ref name.Reference) (*Verdict, error) {
		res := v.Verify(ctx, c, ref)
		if err := res.Err(); err != nil {
			return nil, err
		}
		out := &Verdict{Digest: res.Digest, Rule: res.Rule}
		for _, a := range res.Attestations {
			va := VerifiedAttestation{PredicateType: a.PredicateType, Platform: a.Platform, Verified: a.Verified,
				Identity: a.Identity, Issuer: a.Issuer, Format: a.Format}
			if s := a.Source; s != nil {
				va.Manifest, va.Digest, va.Tag = s.Manifest, s.Digest, s.Tag
			}
			out.Attestations = append(out.Attestations, va)
		}
		return out, nil
	}
}

// handProvenance is a minimal SLSA v1 predicate naming who.
func handProvenance(who string) []byte {
	return []byte(`{"buildDefinition":{"buildType":"https://example.com/hand/v1","externalParameters":{"who":"` + who +
		`"}},"runDetails":{"builder":{"id":"https://example.com/builder"}}}`)
}

// gatePolicy trusts the test key: every platform of example/** needs its
// provenance, except example/partial, which needs it on linux/amd64 only.
const gatePolicy = `apiVersion: seal.dev/v1alpha1
kind: Policy
trust:
  keys:
    release: {path: PUB}
rules:
  - name: release
    images: ["HOST/example/**"]
    signatures:
      authorities:
        - key: release
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        platforms: all
  - name: amd64-only
    images: ["HOST/example/partial"]
    extends: release
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        platforms: [linux/amd64]
`

// With a Gate (the real verifier, a key policy), Download returns exactly
// the attestations the verdict rests on: per platform the provenance that
// counted, read back from its bundle referrer or `.att` layer, never the
// platform's unsigned BuildKit provenance nor one signed by an untrusted
// key (both of which Download without a gate returns). A platform whose
// provenance is signed by an untrusted key is refused when the rule does
// not require it (the image passes on the other platform), and the image
// fails as a whole when it does; a kind the rule does not require is
// refused; a platform the image lacks stays an input error. On both
// registry kinds.
func TestDownloadWithGate(t *testing.T) {
	k := testKeys(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	untrusted, err := signing.NewKeySigner(ec, signing.Services{})
	must(t, err)
	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) {
			ctx := context.Background()
			c := client(reg)
			pol := strings.NewReplacer("PUB", k.pub, "HOST", reg.Host).Replace(gatePolicy)
			file := filepath.Join(t.TempDir(), "policy.yaml")
			must(t, os.WriteFile(file, []byte(pol), 0o644))
			p, err := policy.Load(file)
			must(t, err)
			v, err := verify.New(p, nil)
			must(t, err)
			gate := verifierGate(v, c)

			attestOn := func(top name.Digest, s signing.Signer, platform, who string, format signing.Format) {
				t.Helper()
				_, err := Attest(ctx, c, []string{top.String()}, Options{Signer: s, Format: format,
					PredicateType: "slsaprovenance1", Predicate: handProvenance(who), Platforms: []string{platform}})
				must(t, err)
			}
			image := func(repo string) (name.Digest, map[string]string) {
				top, platforms := release(t, reg, repo, "v0.1.0", "fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64")
				_, err := signing.Sign(ctx, c, []string{top.String()}, signing.Options{Signer: k.signer, Format: signing.FormatBundle})
				must(t, err)
				ps := map[string]string{}
				for p, h := range platforms {
					ps[p] = h.String()
				}
				return top, ps
			}

			// example/good: amd64's provenance in a bundle, arm64's in `.att`,
			// and a second amd64 provenance by an untrusted key.
			good, gp := image("example/good")
			attestOn(good, untrusted, "linux/amd64", "untrusted", signing.FormatBundle)
			attestOn(good, k.signer, "linux/amd64", "good-amd64", signing.FormatBundle)
			attestOn(good, k.signer, "linux/arm64", "good-arm64", signing.FormatLegacy)
			goodTag := good.Context().Tag("v0.1.0").String()

			got, err := Download(ctx, c, goodTag, DownloadOptions{Kind: Provenance, Platforms: []string{"linux/arm64"}, Gate: gate})
			recordErr(err)
			must(t, err)
			if got.Rule != "release" || got.Digest != good.DigestStr() || got.Reference != good.String() || len(got.Attestations) != 1 {
				t.Fatalf("arm64 under the policy: %+v", got)
			}
			a := got.Attestations[0]
			if a.Subject != gp["linux/arm64"] || a.Platform != "linux/arm64" || !a.Verified || !a.Signed || a.Identity != "key release" ||
				len(a.Sources) != 1 || a.Sources[0].Format != SourceLegacy || !strings.HasSuffix(a.Sources[0].Tag, ".att") ||
				!sameJSON(t, a.Predicate, handProvenance("good-arm64")) {
				t.Errorf("arm64's verified provenance: %+v", a)
			}

			got, err = Download(ctx, c, goodTag, DownloadOptions{Kind: Provenance, Gate: gate})
			must(t, err)
			if len(got.Attestations) != 2 {
				t.Fatalf("all verified provenance: %+v", got.Attestations)
			}
			for i, want := range []struct{ platform, who, format string }{
				{"linux/amd64", "good-amd64", SourceBundle}, {"linux/arm64", "good-arm64", SourceLegacy}} {
				a := got.Attestations[i]
				if a.Platform != want.platform || a.Subject != gp[want.platform] || !a.Verified || len(a.Sources) != 1 ||
					a.Sources[0].Format != want.format || !sameJSON(t, a.Predicate, handProvenance(want.who)) {
					t.Errorf("%s: %+v", want.platform, a)
				}
			}

			// Without the gate, amd64 also has the untrusted provenance and
			// BuildKit's unsigned one.
			got, err = Download(ctx, c, goodTag, DownloadOptions{Kind: Provenance, Platforms: []string{"linux/amd64"}})
			must(t, err)
			var whos []string
			for _, a := range got.Attestations {
				switch {
				case a.Verified:
					t.Errorf("verified without a gate: %+v", a)
				case !a.Signed && a.Sources[0].Format == SourceBuildKit:
					whos = append(whos, "buildkit")
				case sameJSON(t, a.Predicate, handProvenance("untrusted")):
					whos = append(whos, "untrusted")
				case sameJSON(t, a.Predicate, handProvenance("good-amd64")):
					whos = append(whos, "good")
				}
			}
			if strings.Join(whos, ",") != "untrusted,good,buildkit" && strings.Join(whos, ",") != "good,untrusted,buildkit" {
				t.Errorf("without a gate amd64 has %v", whos)
			}

			// example/partial (provenance required on amd64 only) and
			// example/bad (on every platform): arm64's provenance is signed by
			// the untrusted key only.
			for _, repo := range []string{"example/partial", "example/bad"} {
				top, _ := image(repo)
				attestOn(top, k.signer, "linux/amd64", repo+"-amd64", signing.FormatBundle)
				attestOn(top, untrusted, "linux/arm64", repo+"-arm64", signing.FormatBoth)
			}
			partial := reg.Ref("example/partial:v0.1.0")
			got, err = Download(ctx, c, partial, DownloadOptions{Kind: Provenance, Platforms: []string{"linux/amd64"}, Gate: gate})
			must(t, err)
			if got.Rule != "amd64-only" || len(got.Attestations) != 1 || !got.Attestations[0].Verified ||
				!sameJSON(t, got.Attestations[0].Predicate, handProvenance("example/partial-amd64")) {
				t.Errorf("partial amd64: %+v", got)
			}
			got, err = Download(ctx, c, partial, DownloadOptions{Kind: Provenance, Gate: gate})
			must(t, err)
			if len(got.Attestations) != 1 || got.Attestations[0].Platform != "linux/amd64" {
				t.Errorf("partial, every platform: %+v", got.Attestations)
			}

			for _, tc := range []struct {
				name  string
				image string
				opts  DownloadOptions
				kind  fault.Kind
				wants []string
			}{
				{"platform signed by an untrusted key", partial, DownloadOptions{Kind: Provenance, Platforms: []string{"linux/arm64"}}, fault.Verification,
					[]string{"no verified provenance attestation for linux/arm64", `policy rule "amd64-only": verified for linux/amd64 only`}},
				{"image that does not pass", reg.Ref("example/bad:v0.1.0"), DownloadOptions{Kind: Provenance, Platforms: []string{"linux/amd64"}}, fault.Verification,
					[]string{"verify " + reg.Ref("example/bad:v0.1.0"), "for linux/arm64", "does not verify with key release"}},
				{"kind the rule does not require", goodTag, DownloadOptions{Kind: SBOM}, fault.Verification,
					[]string{`policy rule "release" requires no sbom attestation, so none was verified (it requires https://slsa.dev/provenance/v1)`}},
				{"predicate type the rule does not require", goodTag, DownloadOptions{Kind: AnyAttestation, PredicateType: "slsaprovenance02"}, fault.Verification,
					[]string{"requires no https://slsa.dev/provenance/v0.2 attestation"}},
				{"platform the image lacks", goodTag, DownloadOptions{Kind: Provenance, Platforms: []string{"linux/s390x"}}, fault.Input,
					[]string{"no platform linux/s390x (it has linux/amd64, linux/arm64)"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					tc.opts.Gate = gate
					got, err := Download(ctx, c, tc.image, tc.opts)
					recordErr(err)
					if err == nil || got != nil || fault.KindOf(err) != tc.kind {
						t.Fatalf("got %+v, err %v (kind %v), want a %v error", got, err, fault.KindOf(err), tc.kind)
					}
					for _, w := range tc.wants {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("%v lacks %q", err, w)
						}
					}
				})
			}
		})
	}
}

// The gate resolves the tag once: moved right after verification, Download
// still reads the digest that was verified. An artifact the verdict
// counted that is gone when read back is a verification error, not a
// smaller answer; so is an image that passed only because no rule matched.
func TestDownloadGateDigest(t *testing.T) {
	k := testKeys(t)
	reg := testenv.GGCR(t)
	ctx := context.Background()
	c := client(reg)
	top, platforms := release(t, reg, "example/fleet", "v0.1.0", "fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64")
	_, err := signing.Sign(ctx, c, []string{top.String()}, signing.Options{Signer: k.signer, Format: signing.FormatBundle})
	must(t, err)
	_, err = FromBuildKit(ctx, c, []string{top.String()}, Options{Signer: k.signer})
	must(t, err)
	other := reg.PushFixture(t, "example/fleet", "fleet-agent__v0.1.0-linux-amd64")
	file := filepath.Join(t.TempDir(), "policy.yaml")
	must(t, os.WriteFile(file, []byte(strings.NewReplacer("PUB", k.pub, "HOST", reg.Host).Replace(gatePolicy)), 0o644))
	p, err := policy.Load(file)
	must(t, err)
	v, err := verify.New(p, nil)
	must(t, err)
	gate := verifierGate(v, c)

	moved := func(ctx context.Context, ref name.Reference) (*Verdict, error) {
		verdict, err := gate(ctx, ref)
		if err == nil {
			m, err := c.Manifest(ctx, other)
			must(t, err)
			must(t, c.Tag(ctx, top.Context().Tag("v0.1.0"), m.Raw, string(m.Descriptor.MediaType)))
		}
		return verdict, err
	}
	got, err := Download(ctx, c, reg.Ref("example/fleet:v0.1.0"), DownloadOptions{Kind: Provenance, Platforms: []string{"linux/arm64"}, Gate: moved})
	must(t, err)
	want := fixtureStatement(t, "fleet__v0.1.0-linux-arm64").Predicate
	if got.Digest != top.DigestStr() || len(got.Attestations) != 1 || got.Attestations[0].Subject != platforms["linux/arm64"].String() ||
		!got.Attestations[0].Verified || got.Attestations[0].Sources[0].Format != SourceBundle || !sameJSON(t, got.Attestations[0].Predicate, want) {
		t.Fatalf("after the tag moved: %+v", got)
	}

	gone := func(ctx context.Context, ref name.Reference) (*Verdict, error) {
		verdict, err := gate(ctx, top)
		if err == nil {
			for i := range verdict.Attestations {
				verdict.Attestations[i].Digest = "sha256:" + strings.Repeat("0", 64)
			}
		}
		return verdict, err
	}
	got, err = Download(ctx, c, top.String(), DownloadOptions{Kind: Provenance, Gate: gone})
	recordErr(err)
	if err == nil || got != nil || fault.KindOf(err) != fault.Verification || !strings.Contains(err.Error(), "cannot be read back") {
		t.Fatalf("a counted artifact that is gone: %+v, %v", got, err)
	}

	// A policy that lets an image no rule matches pass verified nothing.
	allow := filepath.Join(t.TempDir(), "allow.yaml")
	must(t, os.WriteFile(allow, []byte(strings.Replace(strings.NewReplacer("PUB", k.pub, "HOST", "registry.example").Replace(gatePolicy),
		"rules:", "unmatched: allow\nrules:", 1)), 0o644))
	p, err = policy.Load(allow)
	must(t, err)
	v, err = verify.New(p, nil)
	must(t, err)
	got, err = Download(ctx, c, top.String(), DownloadOptions{Kind: Provenance, Gate: verifierGate(v, c)})
	recordErr(err)
	if err == nil || got != nil || fault.KindOf(err) != fault.Verification ||
		!strings.Contains(err.Error(), "no policy rule matches the image, so no provenance attestation was verified") {
		t.Fatalf("no rule matches: %+v, %v", got, err)
	}
}
