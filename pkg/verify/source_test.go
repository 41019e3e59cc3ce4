package verify

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/signing"
)

// sourcePolicy requires the key's signature and its SLSA v1 provenance on
// every platform.
const sourcePolicy = `apiVersion: seal.dev/v1alpha1
kind: Policy
trust:
  keys:
    release: {path: <<.Key>>}
rules:
  - name: release
    images: ["<<.Host>>/example/**"]
    signatures:
      authorities:
        - key: release
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        platforms: all
`

// attestReferrer attaches st signed by s to subject as a bundle referrer
// and returns the referrer manifest's digest.
func attestReferrer(t *testing.T, c *oci.Client, s signing.Signer, subject name.Digest, st []byte) v1.Hash {
	t.Helper()
	ctx := context.Background()
	b, err := signing.SignDSSE(ctx, s, st)
	must(t, err)
	desc, err := c.Resolve(ctx, subject)
	must(t, err)
	art, err := signing.BundleReferrer(desc, b, attestation.PredicateSLSAProvenanceV1, time.Now())
	must(t, err)
	d, err := signing.AttachReferrer(ctx, c, subject, art)
	must(t, err)
	return d.Digest
}

// Each verified attestation row names the artifact that counted: the
// referrer manifest of a bundle, the `.att` tag and layer of a legacy one,
// and the manifest both are about; a referrer signed by another key next
// to it is not the one named. A row that did not verify names none. On
// both registry kinds (referrers API and tag fallback).
func TestAttestationSource(t *testing.T) {
	trusted, other := quickKey(t), quickKey(t)
	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) {
			ctx := context.Background()
			c := client(reg)
			rel := pushRelease(t, reg, c, "fleet", "example/fleet", "v0.1.0")
			sign(t, c, trusted.signer, rel.index, signing.FormatBundle)
			amd := rel.index.Context().Digest(rel.platforms["linux/amd64"].String())
			arm := rel.index.Context().Digest(rel.platforms["linux/arm64"].String())
			stAmd := statement(t, amd.Context(), rel.platforms["linux/amd64"], attestation.PredicateSLSAProvenanceV1, []byte(`{"builder":"amd64"}`))
			attestReferrer(t, c, other.signer, amd, stAmd)
			counted := attestReferrer(t, c, trusted.signer, amd, stAmd)
			attest(t, c, trusted.signer, arm, statement(t, arm.Context(), rel.platforms["linux/arm64"], attestation.PredicateSLSAProvenanceV1, []byte(`{"builder":"arm64"}`)), signing.FormatLegacy)
			tag, err := oci.LegacyTag(arm, ".att")
			must(t, err)
			m, err := c.Manifest(ctx, tag)
			must(t, err)
			layers, err := signing.ParseLegacyManifest(m.Raw, signing.LegacyAttestation)
			must(t, err)
			if len(layers) != 1 {
				t.Fatalf("%s: %d layers", tag, len(layers))
			}

			p := parsePolicy(t, policyText(t, sourcePolicy, map[string]string{"Host": reg.Host, "Key": trusted.pub}))
			v := newVerifier(t, p, nil)
			r := v.Verify(ctx, c, rel.tag)
			if !r.Passed || len(r.Attestations) != 2 {
				t.Fatalf("passed %v, attestations %+v, errors %v", r.Passed, r.Attestations, r.Errors)
			}
			want := map[string]AttestationSource{
				"linux/amd64": {Manifest: amd.DigestStr(), Digest: counted.String()},
				"linux/arm64": {Manifest: arm.DigestStr(), Digest: layers[0].Digest.String(), Tag: tag.String()},
			}
			for _, a := range r.Attestations {
				if a.Source == nil || *a.Source != want[a.Platform] {
					t.Errorf("%s: source %+v, want %+v", a.Platform, a.Source, want[a.Platform])
				}
			}
			doc, err := json.Marshal(r)
			must(t, err)
			if !strings.Contains(string(doc), `"source":{"manifest":"`+arm.DigestStr()+`","digest":"`+layers[0].Digest.String()+`","tag":"`+tag.String()+`"}`) {
				t.Errorf("json lacks the legacy source: %s", doc)
			}

			// The same image under a policy trusting the other key only: the
			// arm64 row did not verify and names nothing.
			p = parsePolicy(t, policyText(t, sourcePolicy, map[string]string{"Host": reg.Host, "Key": other.pub}))
			r = newVerifier(t, p, nil).Verify(ctx, c, rel.tag)
			if r.Passed {
				t.Fatal("passed under the other key")
			}
			for _, a := range r.Attestations {
				switch {
				case a.Platform == "linux/arm64" && (a.Verified || a.Source != nil):
					t.Errorf("arm64 signed by another key: %+v", a)
				case a.Platform == "linux/amd64" && (a.Source == nil || a.Source.Digest == counted.String()):
					t.Errorf("amd64 under the other key names %+v", a.Source)
				}
			}
			doc, err = json.Marshal(r)
			must(t, err)
			if strings.Count(string(doc), `"source":`) != 1 {
				t.Errorf("json: %s", doc)
			}
		})
	}
}
