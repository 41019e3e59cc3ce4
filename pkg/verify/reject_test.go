package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/signing"
)

// rejectPolicy is the table's policy: every image is an example/<name>
// component released by its repository's release workflow at the image's
// tag, with per-platform provenance from that repository.
const rejectPolicy = `apiVersion: seal.dev/v1alpha1
kind: Policy
<<- if .Key >>
trust:
  keys:
    release:
      pem: |
<<.Key>>
<<- end >>
unmatched: deny
rules:
  - name: release
    images: ["<<.Images>>"]
    signatures:
      threshold: <<.Threshold>>
      authorities:
        - keyless:
            issuer: <<.Issuer>>
            subjectRegExp: '^https://github\.com/example/{{ .Name }}/\.github/workflows/release\.ya?ml@refs/tags/{{ .Tag }}$'
            extensions:
              sourceRepositoryURI: https://github.com/example/{{ .Name }}
              sourceRepositoryRef: refs/tags/{{ .Tag }}
              runnerEnvironment: github-hosted
<<- if .Key >>
        - key: release
<<- end >>
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        platforms: all
        condition: >-
          predicate.buildDefinition.externalParameters.workflow.repository ==
          "https://github.com/example/" + image.name
<<- if .Expires >>
    exception:
      reason: "a temporary exception"
      expires: <<.Expires>>
<<- end >>
`

// kit is what a case sets its image up with.
type kit struct {
	reg    *testenv.Registry
	c      *oci.Client
	ss     *testenv.Sigstore
	good   *signing.KeylessSigner // example/fleet's release workflow at v0.1.0
	claims testenv.GitHubClaims
	repo   string
}

// signGood signs the release and its platforms as example/fleet's release
// workflow at v0.1.0 does.
func (k *kit) signGood(t *testing.T, rel release) {
	signRelease(t, k.c, k.good, rel, k.claims, signing.FormatBundle)
}

func (k *kit) attestGood(t *testing.T, rel release, platform string) {
	h := rel.platforms[platform]
	d := rel.index.Context().Digest(h.String())
	attest(t, k.c, k.good, d, statement(t, d.Context(), h, attestation.PredicateSLSAProvenanceV1, provenance(t, k.claims)), signing.FormatBundle)
}

func (k *kit) attestAllGood(t *testing.T, rel release) {
	for p := range rel.platforms {
		k.attestGood(t, rel, p)
	}
}

type rejectCase struct {
	name string
	tag  string // of the release; v0.1.0 when empty
	// policy overrides the template's variables.
	policy map[string]string
	// trusted replaces the trusted material (the test Sigstore's root).
	trusted func(t *testing.T, k *kit) root.TrustedMaterial
	// setup signs (or forges) what the case is about and returns the
	// reference to verify and the client to verify it with (nil: k.c).
	setup func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client)
	// want are substrings of one error of the result; none means it passes.
	want []string
	// check makes further assertions.
	check func(t *testing.T, k *kit, rel release, r Result)
}

// Each way to get a bad image past a verifier is rejected, each with its
// own reason, on a registry with the referrers API and on one without.
func TestRejections(t *testing.T) {
	ss := testenv.SharedSigstore(t)
	claims := testenv.GitHubRelease("example/fleet", "v0.1.0")
	good := keyless(t, ss, claims)
	// Another Sigstore, whose Fulcio and TSA the verifier does not trust.
	otherSigstore := sync.OnceValue(func() *testenv.Sigstore { return testenv.StartSigstore(t) })

	cases := []rejectCase{
		{
			name: "control: the release as signed passes",
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				k.signGood(t, rel)
				return rel.tag, nil
			},
		},
		{
			name: "signature by another repository's workflow",
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				sign(t, k.c, keyless(t, k.ss, testenv.GitHubRelease("example/other", "v0.1.0")), rel.index, signing.FormatBundle)
				k.attestAllGood(t, rel)
				return rel.tag, nil
			},
			want: []string{"no signature by an allowed identity (found 1 signature: by https://github.com/example/other/.github/workflows/release.yml@refs/tags/v0.1.0:", "does not match"},
		},
		{
			name: "signature by the right repository at another ref",
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				sign(t, k.c, keyless(t, k.ss, testenv.GitHubRelease("example/fleet", "v0.2.0")), rel.index, signing.FormatBundle)
				k.attestAllGood(t, rel)
				return rel.tag, nil
			},
			want: []string{"no signature by an allowed identity", "by https://github.com/example/fleet/.github/workflows/release.yml@refs/tags/v0.2.0:", "does not match"},
		},
		{
			name: "signature by a branch instead of a tag",
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				sign(t, k.c, keyless(t, k.ss, branch("example/fleet", "main")), rel.index, signing.FormatBundle)
				k.attestAllGood(t, rel)
				return rel.tag, nil
			},
			want: []string{"no signature by an allowed identity", "@refs/heads/main", "does not match"},
		},
		{
			name:   "signature from another OIDC issuer",
			policy: map[string]string{"Issuer": "https://token.actions.githubusercontent.com"},
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				k.signGood(t, rel)
				return rel.tag, nil
			},
			want: []string{"no signature by an allowed identity", `issuer "` + ss.Issuer.URL + `" is not "https://token.actions.githubusercontent.com"`},
		},
		{
			name: "certificate from an untrusted CA",
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				// Another Fulcio; the timestamp from the trusted TSA.
				other := otherSigstore()
				s, err := signing.NewKeylessSigner(signing.KeylessOptions{
					Services: signing.Services{FulcioURL: other.FulcioURL, TimestampURLs: []string{k.ss.TSAURL}},
					Token:    signing.StaticToken(other.Issuer.Token(k.claims)),
				})
				must(t, err)
				sign(t, k.c, s, rel.index, signing.FormatBundle)
				k.attestAllGood(t, rel)
				return rel.tag, nil
			},
			want: []string{"no signature by an allowed identity", "certificate does not chain to a trusted Fulcio CA"},
		},
		{
			name:    "signature made after the certificate expired (the trusted timestamp shows it)",
			trusted: expiredCATrust,
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				forgeReferrer(t, k.c, rel.index, expiredCertBundle(t, k, rel.index, true), signing.CosignSignPredicate)
				k.attestAllGood(t, rel)
				return rel.tag, nil
			},
			want: []string{"certificate was not valid when the signature was timestamped at"},
		},
		{
			name:    "signature made after the certificate expired, without a timestamp",
			trusted: expiredCATrust,
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				forgeReferrer(t, k.c, rel.index, expiredCertBundle(t, k, rel.index, false), signing.CosignSignPredicate)
				k.attestAllGood(t, rel)
				return rel.tag, nil
			},
			want: []string{"no trusted timestamp"},
		},
		{
			name: "signature timestamped by an untrusted timestamp authority",
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				s, err := signing.NewKeylessSigner(signing.KeylessOptions{
					Services: signing.Services{FulcioURL: k.ss.FulcioURL, TimestampURLs: []string{otherSigstore().TSAURL}},
					Token:    signing.StaticToken(k.ss.Issuer.Token(k.claims)),
				})
				must(t, err)
				sign(t, k.c, s, rel.index, signing.FormatBundle)
				k.attestAllGood(t, rel)
				return rel.tag, nil
			},
			want: []string{"timestamp does not verify against a trusted timestamp authority"},
		},
		{
			name: "signature copied from another image's digest",
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				other := pushRandom(t, k.reg, k.repo+":other")
				sign(t, k.c, k.good, other, signing.FormatBundle)
				forgeReferrer(t, k.c, rel.index, bundleOf(t, k.c, other), signing.CosignSignPredicate)
				k.attestAllGood(t, rel)
				return rel.tag, nil
			},
			want: []string{"signature subject sha256:", "is not the image digest"},
			check: func(t *testing.T, k *kit, rel release, r Result) {
				if !errorsContain(r, "is not the image digest "+rel.index.DigestStr()) {
					t.Errorf("errors %v do not name the image digest", r.Errors)
				}
			},
		},
		{
			name: "legacy payload whose docker-manifest-digest names another image",
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				other := pushRandom(t, k.reg, k.repo+":other")
				sign(t, k.c, k.good, other, signing.FormatLegacy)
				copyTag(t, k.c, legacyTagOf(t, other, ".sig"), legacyTagOf(t, rel.index, ".sig"))
				k.attestAllGood(t, rel)
				return rel.tag, nil
			},
			want: []string{"legacy signature payload signs sha256:", "(docker-manifest-digest), not the image digest"},
		},
		{
			name: "provenance attestation presented as the signature",
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				st := statement(t, rel.index.Context(), mustHash(t, rel.index), attestation.PredicateSLSAProvenanceV1, provenance(t, k.claims))
				b, err := signing.SignDSSE(context.Background(), k.good, st)
				must(t, err)
				forgeReferrer(t, k.c, rel.index, b, signing.CosignSignPredicate)
				k.attestAllGood(t, rel)
				return rel.tag, nil
			},
			want: []string{"a https://slsa.dev/provenance/v1 statement, not a signature"},
		},
		{
			name: "attestation whose subject is another platform",
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				sign(t, k.c, k.good, rel.index, signing.FormatBundle)
				k.attestGood(t, rel, "linux/amd64")
				amd, arm := rel.platforms["linux/amd64"], rel.platforms["linux/arm64"]
				st := statement(t, rel.index.Context(), amd, attestation.PredicateSLSAProvenanceV1, provenance(t, k.claims))
				b, err := signing.SignDSSE(context.Background(), k.good, st)
				must(t, err)
				forgeReferrer(t, k.c, rel.index.Context().Digest(arm.String()), b, attestation.PredicateSLSAProvenanceV1)
				return rel.tag, nil
			},
			want: []string{"no valid https://slsa.dev/provenance/v1 attestation for linux/arm64", "is not the manifest"},
			check: func(t *testing.T, k *kit, rel release, r Result) {
				want := "attestation subject " + rel.platforms["linux/amd64"].String() + " is not the manifest " +
					rel.platforms["linux/arm64"].String() + " it is attached to"
				if !errorsContain(r, want) {
					t.Errorf("errors %v lack %q", r.Errors, want)
				}
			},
		},
		{
			name: "tampered DSSE payload",
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				st, err := signing.SignStatement(mustHash(t, rel.index), nil)
				must(t, err)
				b, err := signing.SignDSSE(context.Background(), k.good, st)
				must(t, err)
				forgeReferrer(t, k.c, rel.index, tamper(t, b), signing.CosignSignPredicate)
				k.attestAllGood(t, rel)
				return rel.tag, nil
			},
			want: []string{"signature does not verify over the signed content"},
		},
		{
			name: "tag moved after resolution",
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				// The tag names an unsigned image when it is resolved; right
				// after, it is moved to a signed one. What is verified is what
				// was resolved, and nothing is asked by tag again.
				moved := pushRelease(t, k.reg, k.c, "fleet-agent", k.repo, "signed")
				k.signGood(t, moved)
				m, err := k.c.Manifest(context.Background(), moved.index)
				must(t, err)
				mt := &moveTag{inner: k.reg.Transport(), path: "/v2/" + k.repo + "/manifests/" + rel.tag.TagStr(),
					move: func() { must(t, k.c.Tag(context.Background(), rel.tag, m.Raw, string(m.Descriptor.MediaType))) }}
				t.Cleanup(func() {
					if n := mt.requests.Load(); n != 1 {
						t.Errorf("%d requests named the tag; want only the resolution", n)
					}
					now, err := k.c.Resolve(context.Background(), rel.tag)
					must(t, err)
					if now.Digest.String() != moved.index.DigestStr() {
						t.Errorf("the tag was not moved")
					}
				})
				return rel.tag, client(k.reg, oci.WithTransport(mt))
			},
			want: []string{"no signature by an allowed identity (no signatures found)"},
			check: func(t *testing.T, k *kit, rel release, r Result) {
				if r.Digest != rel.index.DigestStr() {
					t.Errorf("verified %s, want the digest resolved, %s", r.Digest, rel.index.DigestStr())
				}
			},
		},
		{
			name:   "expired exception",
			policy: map[string]string{"Expires": "2025-01-01"},
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				k.signGood(t, rel)
				return rel.tag, nil
			},
			want: []string{"exception expired on 2025-01-01"},
			check: func(t *testing.T, k *kit, rel release, r Result) {
				if r.Exception == nil || !r.Exception.Expired || len(r.Errors) != 1 {
					t.Errorf("exception %+v, errors %v", r.Exception, r.Errors)
				}
			},
		},
		{
			name: "a regexp that would match only without quoting ('.' in a tag)",
			tag:  "v1.2.3",
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				lookalike := testenv.GitHubRelease("example/fleet", "v1x2x3")
				if !regexp.MustCompile(`@refs/tags/v1.2.3$`).MatchString(lookalike.CertificateIdentity()) {
					t.Fatal("the unquoted regexp should match the lookalike tag")
				}
				signRelease(t, k.c, keyless(t, k.ss, lookalike), rel, lookalike, signing.FormatBundle)
				return rel.tag, nil
			},
			want: []string{"@refs/tags/v1x2x3", `does not match ^https://github\.com/example/fleet/\.github/workflows/release\.ya?ml@refs/tags/v1\.2\.3$`},
		},
		{
			name:   "an image no rule matches under unmatched: deny",
			policy: map[string]string{"Images": "<<host>>/elsewhere/**"},
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				k.signGood(t, rel)
				return rel.tag, nil
			},
			want: []string{"no policy rule matches", "(unmatched: deny)"},
			check: func(t *testing.T, k *kit, rel release, r Result) {
				if r.Rule != "" {
					t.Errorf("rule %q", r.Rule)
				}
			},
		},
		{
			name: "a missing required attestation",
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				sign(t, k.c, k.good, rel.index, signing.FormatBundle)
				k.attestGood(t, rel, "linux/amd64")
				return rel.tag, nil
			},
			want: []string{"no https://slsa.dev/provenance/v1 attestation for linux/arm64"},
			check: func(t *testing.T, k *kit, rel release, r Result) {
				if len(r.Errors) != 1 {
					t.Errorf("errors %v: want only arm64's", r.Errors)
				}
			},
		},
		{
			name: "a CEL condition that is false",
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				sign(t, k.c, k.good, rel.index, signing.FormatBundle)
				elsewhere := provenance(t, testenv.GitHubRelease("example/other", "v0.1.0"))
				for _, h := range rel.platforms {
					d := rel.index.Context().Digest(h.String())
					attest(t, k.c, k.good, d, statement(t, d.Context(), h, attestation.PredicateSLSAProvenanceV1, elsewhere), signing.FormatBundle)
				}
				return rel.tag, nil
			},
			want: []string{"no valid https://slsa.dev/provenance/v1 attestation for linux/amd64", "condition is false"},
		},
		{
			name:   "a threshold of 2 with one valid signer",
			policy: map[string]string{"Threshold": "2", "Key": "<<key>>"},
			setup: func(t *testing.T, k *kit, rel release) (name.Reference, *oci.Client) {
				// The same signer twice, in both formats, is still one signer.
				signRelease(t, k.c, k.good, rel, k.claims, signing.FormatBoth)
				return rel.tag, nil
			},
			want: []string{"threshold not met: 1 of 2 required signers"},
			check: func(t *testing.T, k *kit, rel release, r Result) {
				if n := len(r.Signatures); n != 2 || !r.Signatures[0].Verified || !r.Signatures[1].Verified {
					t.Errorf("signatures %+v: want two verified signatures by one signer", r.Signatures)
				}
			},
		},
	}

	pubPEM := testPublicKeyPEM(t)
	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) {
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					k := &kit{reg: reg, c: client(reg), ss: ss, good: good, claims: claims, repo: "case" + itoa(i) + "/fleet"}
					tag := tc.tag
					if tag == "" {
						tag = "v0.1.0"
					}
					rel := pushRelease(t, reg, k.c, "fleet", k.repo, tag)
					vars := map[string]string{"Images": reg.Host + "/**", "Issuer": ss.Issuer.URL, "Threshold": "1"}
					for kk, vv := range tc.policy {
						vv = strings.ReplaceAll(vv, "<<host>>", reg.Host)
						vv = strings.ReplaceAll(vv, "<<key>>", indent(pubPEM, "        "))
						vars[kk] = vv
					}
					p := parsePolicy(t, policyText(t, rejectPolicy, vars))
					var tm root.TrustedMaterial = ss.TrustedRoot()
					if tc.trusted != nil {
						tm = tc.trusted(t, k)
					}
					ref, c := tc.setup(t, k, rel)
					if c == nil {
						c = k.c
					}
					r := newVerifier(t, p, tm).Verify(context.Background(), c, ref)
					t.Logf("errors: %q", r.Errors)
					if len(tc.want) == 0 {
						if !r.Passed {
							t.Fatalf("did not pass: %v", r.Errors)
						}
						return
					}
					if r.Passed || r.Kind != fault.Verification {
						t.Fatalf("passed %v, kind %v; errors %v", r.Passed, r.Kind, r.Errors)
					}
					found := false
					for _, e := range r.Errors {
						all := true
						for _, w := range tc.want {
							all = all && strings.Contains(e, w)
						}
						found = found || all
					}
					if !found {
						t.Errorf("no error has all of %q:\n%s", tc.want, strings.Join(r.Errors, "\n"))
					}
					if tc.check != nil {
						tc.check(t, k, rel, r)
					}
				})
			}
		})
	}
}

func itoa(i int) string { return string(rune('a'+i/26)) + string(rune('a'+i%26)) }

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

func mustHash(t testing.TB, d name.Digest) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(d.DigestStr())
	must(t, err)
	return h
}

func testPublicKeyPEM(t testing.TB) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	must(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// bundleOf returns the bundle of subject's first bundle referrer.
func bundleOf(t testing.TB, c *oci.Client, subject name.Digest) []byte {
	t.Helper()
	ctx := context.Background()
	refs, err := c.Referrers(ctx, subject)
	must(t, err)
	for _, d := range refs {
		m, err := c.Manifest(ctx, subject.Context().Digest(d.Digest.String()))
		must(t, err)
		ref, err := signing.ParseBundleReferrer(m.Raw, mustHash(t, subject))
		if err != nil {
			continue
		}
		b, err := c.BlobBytes(ctx, subject.Context(), ref.Layer, signing.MaxBundleSize)
		must(t, err)
		return b
	}
	t.Fatalf("no bundle referrer on %s", subject)
	return nil
}

func legacyTagOf(t testing.TB, d name.Digest, suffix string) name.Tag {
	t.Helper()
	tag, err := oci.LegacyTag(d, suffix)
	must(t, err)
	return tag
}

// copyTag points dst at what src points at (same repository).
func copyTag(t testing.TB, c *oci.Client, src, dst name.Tag) {
	t.Helper()
	m, err := c.Manifest(context.Background(), src)
	must(t, err)
	must(t, c.Tag(context.Background(), dst, m.Raw, string(m.Descriptor.MediaType)))
}

// tamper changes the signed statement inside bundle b (its predicate),
// keeping everything else, the signature included.
func tamper(t testing.TB, b []byte) []byte {
	t.Helper()
	var doc map[string]any
	must(t, json.Unmarshal(b, &doc))
	env := doc["dsseEnvelope"].(map[string]any)
	payload, err := base64.StdEncoding.DecodeString(env["payload"].(string))
	must(t, err)
	var st map[string]any
	must(t, json.Unmarshal(payload, &st))
	st["predicate"] = map[string]any{"tampered": true}
	payload, err = json.Marshal(st)
	must(t, err)
	env["payload"] = base64.StdEncoding.EncodeToString(payload)
	out, err := json.Marshal(doc)
	must(t, err)
	return out
}

// moveTag is a transport that moves a tag right after the first request
// naming it has been answered, and counts the requests naming it.
type moveTag struct {
	inner    http.RoundTripper
	path     string
	move     func()
	once     sync.Once
	requests atomic.Int32
}

func (m *moveTag) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := m.inner.RoundTrip(req)
	if req.URL.Path == m.path {
		m.requests.Add(1)
		if err == nil {
			m.once.Do(m.move)
		}
	}
	return resp, err
}

// The expired-certificate cases need a certificate that chains to a
// trusted CA but expired before the signature was made, which a real
// Fulcio never hands out (its certificates live ten minutes, and it signs
// with its own key). So they trust, besides the test Sigstore, a CA of
// their own; the timestamp comes from the test Sigstore's real TSA.
var expiredCA = sync.OnceValues(func() (*ecdsa.PrivateKey, *x509.Certificate) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "expired-test-ca", Organization: []string{"seal tests"}},
		NotBefore:             time.Now().Add(-48 * time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return key, cert
})

func expiredCATrust(t *testing.T, k *kit) root.TrustedMaterial {
	_, ca := expiredCA()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: ca, ValidityPeriodStart: ca.NotBefore}}, nil, nil, nil)
	must(t, err)
	return root.TrustedMaterialCollection{k.ss.TrustedRoot(), tr}
}

type staticCert []byte

func (c staticCert) GetCertificate(context.Context, sgsign.Keypair, *sgsign.CertificateProviderOptions) ([]byte, error) {
	return c, nil
}

// expiredCertBundle signs subject now with a certificate for the good
// identity that expired an hour ago, with a real TSA timestamp or none.
func expiredCertBundle(t *testing.T, k *kit, subject name.Digest, timestamp bool) []byte {
	t.Helper()
	caKey, ca := expiredCA()
	kp, err := sgsign.NewEphemeralKeypair(nil)
	must(t, err)
	id, err := url.Parse(k.claims.CertificateIdentity())
	must(t, err)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore:    time.Now().Add(-2 * time.Hour),
		NotAfter:     time.Now().Add(-time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		URIs:         []*url.URL{id},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, kp.GetPublicKey(), caKey)
	must(t, err)
	opts := sgsign.BundleOptions{CertificateProvider: staticCert(der), Context: context.Background()}
	if timestamp {
		opts.TimestampAuthorities = []*sgsign.TimestampAuthority{sgsign.NewTimestampAuthority(&sgsign.TimestampAuthorityOptions{
			URL: k.ss.TSAURL, Timeout: 30 * time.Second})}
	}
	st, err := signing.SignStatement(mustHash(t, subject), nil)
	must(t, err)
	pb, err := sgsign.Bundle(&sgsign.DSSEData{Data: st, PayloadType: signing.InTotoPayloadType}, kp, opts)
	must(t, err)
	out, err := protojson.Marshal(pb)
	must(t, err)
	return out
}
