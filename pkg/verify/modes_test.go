package verify

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/policy"
	"github.com/seal-dev/seal/pkg/signing"
)

// seal's key signatures verify in both formats against a `--key` policy
// (policy.FromFlags); another key's do not, with a reason naming the key.
func TestKeySignatures(t *testing.T) {
	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) {
			c := client(reg)
			k, other := quickKey(t), quickKey(t)
			p, err := policy.FromFlags(policy.Flags{Key: k.pub})
			must(t, err)
			v := newVerifier(t, p, nil)
			for _, f := range []signing.Format{signing.FormatBundle, signing.FormatLegacy} {
				d := pushRandom(t, reg, "keys/"+string(f)+":v1")
				sign(t, c, k.signer, d, f)
				r := v.Verify(context.Background(), c, d)
				if !r.Passed || len(r.Signatures) != 1 || r.Signatures[0].Identity != "key release.pub" || r.Signatures[0].Format != string(f) {
					t.Errorf("%s: passed %v %+v %v", f, r.Passed, r.Signatures, r.Errors)
				}
				bad := pushRandom(t, reg, "keys/"+string(f)+"-other:v1")
				sign(t, c, other.signer, bad, f)
				r = v.Verify(context.Background(), c, bad)
				if r.Passed || !errorsContain(r, "does not verify with key release.pub") {
					t.Errorf("%s by another key: passed %v %v", f, r.Passed, r.Errors)
				}
			}
		})
	}
}

// platforms: index, a list, and the default (one on the index, or one on
// every platform manifest).
func TestAttestationPlatforms(t *testing.T) {
	ss := testenv.SharedSigstore(t)
	claims := testenv.GitHubRelease("example/fleet", "v0.1.0")
	s := keyless(t, ss, claims)
	reg := testenv.GGCR(t)
	c := client(reg)
	const tmpl = `apiVersion: seal.dev/v1alpha1
kind: Policy
rules:
  - name: r
    images: ["<<.Host>>/**"]
    signatures:
      authorities: [{keyless: {issuer: <<.Issuer>>, subjectRegExp: '^https://github\.com/example/fleet/'}}]
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
<<.Platforms>>
`
	onIndex := func(t *testing.T, rel release) {
		h := mustHash(t, rel.index)
		attest(t, c, s, rel.index, statement(t, rel.index.Context(), h, attestation.PredicateSLSAProvenanceV1, provenance(t, claims)), signing.FormatBundle)
	}
	onPlatform := func(t *testing.T, rel release, p string) {
		h := rel.platforms[p]
		d := rel.index.Context().Digest(h.String())
		attest(t, c, s, d, statement(t, d.Context(), h, attestation.PredicateSLSAProvenanceV1, provenance(t, claims)), signing.FormatBundle)
	}
	for i, tc := range []struct {
		name      string
		platforms string
		attach    func(t *testing.T, rel release)
		want      string // an error; empty: passes
		rows      []string
	}{
		{"default, on the index", "", onIndex, "", []string{""}},
		{"default, on every platform", "", func(t *testing.T, rel release) {
			onPlatform(t, rel, "linux/amd64")
			onPlatform(t, rel, "linux/arm64")
		}, "", []string{"linux/amd64", "linux/arm64"}},
		{"default, on one platform only", "", func(t *testing.T, rel release) { onPlatform(t, rel, "linux/amd64") },
			"no https://slsa.dev/provenance/v1 attestation on the index or for linux/arm64", nil},
		{"index", "        platforms: index", onIndex, "", []string{""}},
		{"index, but only on platforms", "        platforms: index", func(t *testing.T, rel release) {
			onPlatform(t, rel, "linux/amd64")
			onPlatform(t, rel, "linux/arm64")
		}, "no https://slsa.dev/provenance/v1 attestation on the image", nil},
		{"list", "        platforms: [linux/arm64]", func(t *testing.T, rel release) { onPlatform(t, rel, "linux/arm64") }, "", []string{"linux/arm64"}},
		{"list naming a platform the image lacks", "        platforms: [linux/s390x]", onIndex,
			"the image has no linux/s390x manifest (it has linux/amd64, linux/arm64)", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := "platforms" + itoa(i) + "/fleet"
			rel := pushRelease(t, reg, c, "fleet", repo, "v0.1.0")
			sign(t, c, s, rel.index, signing.FormatBundle)
			tc.attach(t, rel)
			p := parsePolicy(t, policyText(t, tmpl, map[string]string{"Host": reg.Host, "Issuer": ss.Issuer.URL, "Platforms": tc.platforms}))
			r := newVerifier(t, p, ss.TrustedRoot()).Verify(context.Background(), c, rel.tag)
			if tc.want != "" {
				if r.Passed || !errorsContain(r, tc.want) {
					t.Fatalf("passed %v, errors %q; want %q", r.Passed, r.Errors, tc.want)
				}
				return
			}
			if !r.Passed {
				t.Fatalf("errors %v", r.Errors)
			}
			var rows []string
			for _, a := range r.Attestations {
				rows = append(rows, a.Platform)
			}
			if strings.Join(rows, ",") != strings.Join(tc.rows, ",") {
				t.Errorf("attestation rows %q, want %q", rows, tc.rows)
			}
		})
	}
}

// A digest-only reference works; a rule that needs the tag says why it
// cannot judge one. host/repo:tag@digest keeps the tag for the policy.
func TestDigestOnlyReferences(t *testing.T) {
	ss := testenv.SharedSigstore(t)
	claims := testenv.GitHubRelease("example/fleet", "v0.1.0")
	s := keyless(t, ss, claims)
	reg := testenv.GGCR(t)
	c := client(reg)
	rel := pushRelease(t, reg, c, "fleet", "example/fleet", "v0.1.0")
	signRelease(t, c, s, rel, claims, signing.FormatBundle)
	p := parsePolicy(t, policyText(t, releasePolicy, map[string]string{"Host": reg.Host, "Issuer": ss.Issuer.URL}))
	v := newVerifier(t, p, ss.TrustedRoot())

	r := v.Verify(context.Background(), c, rel.index)
	if r.Passed || r.Kind != fault.Verification || !errorsContain(r, "the reference has no tag (digest only)") {
		t.Errorf("digest only under a rule using the tag: passed %v %v", r.Passed, r.Errors)
	}
	tagged, err := c.ParseReference(rel.tag.String() + "@" + rel.index.DigestStr())
	must(t, err)
	if r := v.Verify(context.Background(), c, tagged); !r.Passed || r.Digest != rel.index.DigestStr() {
		t.Errorf("tag@digest: passed %v %v", r.Passed, r.Errors)
	}
	// A rule without the tag: the digest alone is enough.
	byIdentity, err := policy.FromFlags(policy.Flags{Issuer: ss.Issuer.URL, Subject: claims.CertificateIdentity()})
	must(t, err)
	if r := newVerifier(t, byIdentity, ss.TrustedRoot()).Verify(context.Background(), c, rel.index); !r.Passed {
		t.Errorf("digest only, identity flags: %v", r.Errors)
	}
}

// unmatched: warn and allow pass an image no rule matches (warn says so);
// the default denies it.
func TestUnmatched(t *testing.T) {
	reg := testenv.GGCR(t)
	c := client(reg)
	d := pushRandom(t, reg, "nobody/app:v1")
	for _, tc := range []struct {
		action  string
		passed  bool
		warning bool
	}{{"warn", true, true}, {"allow", true, false}, {"deny", false, false}} {
		t.Run(tc.action, func(t *testing.T) {
			p := parsePolicy(t, `apiVersion: seal.dev/v1alpha1
kind: Policy
unmatched: `+tc.action+`
trust:
  keys:
    k: {pem: "`+strings.ReplaceAll(testPublicKeyPEM(t), "\n", `\n`)+`"}
rules:
  - name: other
    images: ["`+reg.Host+`/somebody/**"]
    signatures: {authorities: [{key: k}]}
`)
			r := newVerifier(t, p, nil).Verify(context.Background(), c, d)
			if r.Passed != tc.passed || (len(r.Warnings) > 0) != tc.warning || r.Rule != "" {
				t.Errorf("passed %v warnings %v errors %v rule %q", r.Passed, r.Warnings, r.Errors, r.Rule)
			}
		})
	}
}

// The VSA is an in-toto statement about the image digest with SLSA's
// verification summary predicate, naming the policy and the signed
// artifacts the verdict rests on.
func TestVSA(t *testing.T) {
	reg := testenv.GGCR(t)
	c := client(reg)
	k := quickKey(t)
	d := pushRandom(t, reg, "vsa/app:v1")
	sign(t, c, k.signer, d, signing.FormatBundle)
	p, err := policy.FromFlags(policy.Flags{Key: k.pub})
	must(t, err)
	ref, err := name.ParseReference(reg.Ref("vsa/app:v1"))
	must(t, err)
	r := newVerifier(t, p, nil).Verify(context.Background(), c, ref)
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	raw, err := VSA(r, VSAOptions{Version: "v1.2.3", PolicyURI: "file:///policy.yaml", PolicyDigest: map[string]string{"sha256": "ab"}, Time: when})
	must(t, err)
	st, err := attestation.ParseStatement(raw)
	must(t, err)
	if st.PredicateType != VSAPredicateType || !st.HasSubjectDigest("sha256", d.DigestStr()[len("sha256:"):]) {
		t.Fatalf("statement %s", raw)
	}
	var pred struct {
		Verifier struct {
			ID      string            `json:"id"`
			Version map[string]string `json:"version"`
		} `json:"verifier"`
		TimeVerified       string                 `json:"timeVerified"`
		ResourceURI        string                 `json:"resourceUri"`
		Policy             struct{ URI string }   `json:"policy"`
		InputAttestations  []struct{ URI string } `json:"inputAttestations"`
		VerificationResult string                 `json:"verificationResult"`
		VerifiedLevels     []string               `json:"verifiedLevels"`
	}
	must(t, json.Unmarshal(st.Predicate, &pred))
	if pred.VerificationResult != "PASSED" || pred.ResourceURI != ref.Context().Name()+"@"+d.DigestStr() ||
		pred.TimeVerified != "2026-01-02T03:04:05Z" || pred.Policy.URI != "file:///policy.yaml" ||
		len(pred.InputAttestations) != 1 || !strings.HasPrefix(pred.InputAttestations[0].URI, ref.Context().Name()+"@sha256:") ||
		pred.Verifier.Version["seal"] != "v1.2.3" || len(pred.VerifiedLevels) != 1 {
		t.Errorf("predicate %s", st.Predicate)
	}
	if got := VSAFileName(d.DigestStr()); got != "sha256-"+d.DigestStr()[len("sha256:"):]+".vsa.json" {
		t.Errorf("file name %s", got)
	}
}
