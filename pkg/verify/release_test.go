package verify

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/signing"
)

// releasePolicy is the policy of a release like the seed's: one default
// keyless rule for the organisation's GitHub release workflows at a tag,
// and an exception for the agent, which the server's repository builds.
const releasePolicy = `apiVersion: seal.dev/v1alpha1
kind: Policy
unmatched: deny
rules:
  - name: github-release
    images: ["<<.Host>>/example/**"]
    signatures:
      authorities:
        - keyless:
            issuer: <<.Issuer>>
            subjectRegExp: '^https://github\.com/example/{{ .Name }}/\.github/workflows/release\.ya?ml@refs/tags/{{ .Tag }}$'
            extensions:
              sourceRepositoryURI: https://github.com/example/{{ .Name }}
              sourceRepositoryRef: refs/tags/{{ .Tag }}
              runnerEnvironment: github-hosted
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        platforms: all
        condition: >-
          predicate.buildDefinition.externalParameters.workflow.repository ==
          "https://github.com/example/" + image.name
  - name: agent-built-by-fleet
    images: ["<<.Host>>/example/fleet-agent"]
    extends: github-release
    vars: {Name: fleet}
    exception:
      reason: "fleet-agent is built and signed by the example/fleet release workflow"
      expires: 2099-12-31
`

// The release passes: both images signed and provenance-attested through
// the test Fulcio + TSA by example/fleet's release workflow at v0.1.0, the
// agent under its exception, and the json names the rule and the exception.
// On a registry with the referrers API and on one with the tag fallback,
// with bundles and with cosign's legacy tags.
func TestReleasePolicy(t *testing.T) {
	ss := testenv.SharedSigstore(t)
	claims := testenv.GitHubRelease("example/fleet", "v0.1.0")
	s := keyless(t, ss, claims)
	for _, format := range []signing.Format{signing.FormatBundle, signing.FormatLegacy} {
		// Fresh registries per format: the fixtures' digests are the same.
		for _, reg := range testenv.Registries(t) {
			t.Run(reg.Name+"/"+string(format), func(t *testing.T) {
				c := client(reg)
				fleet := pushRelease(t, reg, c, "fleet", "example/fleet", "v0.1.0")
				agent := pushRelease(t, reg, c, "fleet-agent", "example/fleet-agent", "v0.1.0")
				signRelease(t, c, s, fleet, claims, format)
				signRelease(t, c, s, agent, claims, format)

				p := parsePolicy(t, policyText(t, releasePolicy, map[string]string{"Host": reg.Host, "Issuer": ss.Issuer.URL}))
				v := newVerifier(t, p, ss.TrustedRoot())
				refs := []name.Reference{fleet.tag, agent.tag}
				var calls []int
				results := v.VerifyAll(context.Background(), c, refs, 2, func(done, total int) {
					calls = append(calls, done)
					if total != 2 {
						t.Errorf("progress total %d", total)
					}
				})
				if len(calls) != 2 || calls[1] != 2 {
					t.Errorf("progress calls %v", calls)
				}
				for i, want := range []struct {
					rule      string
					exception bool
					digest    string
				}{
					{"github-release", false, fleet.index.DigestStr()},
					{"agent-built-by-fleet", true, agent.index.DigestStr()},
				} {
					r := results[i]
					if !r.Passed || len(r.Errors) != 0 {
						t.Fatalf("%s did not pass: %v", r.Image, r.Errors)
					}
					if r.Image != refs[i].String() || r.Digest != want.digest || r.Rule != want.rule {
						t.Errorf("result %s %s rule %q, want %s rule %q", r.Image, r.Digest, r.Rule, want.digest, want.rule)
					}
					if (r.Exception != nil) != want.exception {
						t.Errorf("%s: exception %+v", r.Image, r.Exception)
					}
					if len(r.Signatures) != 1 || !r.Signatures[0].Verified || r.Signatures[0].Format != string(format) ||
						r.Signatures[0].Identity != claims.CertificateIdentity() || r.Signatures[0].Issuer != ss.Issuer.URL {
						t.Errorf("%s: signatures %+v", r.Image, r.Signatures)
					}
					// One provenance per platform, not the BuildKit attestation
					// manifests' unsigned ones.
					platforms := map[string]bool{}
					for _, a := range r.Attestations {
						if !a.Verified || a.PredicateType != attestation.PredicateSLSAProvenanceV1 || a.Format != string(format) {
							t.Errorf("%s: attestation %+v", r.Image, a)
						}
						platforms[a.Platform] = true
					}
					if len(platforms) != 2 || !platforms["linux/amd64"] || !platforms["linux/arm64"] {
						t.Errorf("%s: attestations %+v", r.Image, r.Attestations)
					}
				}
				// The json result names the rule and the exception.
				out, err := json.Marshal(results[1])
				must(t, err)
				for _, want := range []string{`"rule":"agent-built-by-fleet"`,
					`"exception":{"reason":"fleet-agent is built and signed by the example/fleet release workflow","expires":"2099-12-31"}`,
					`"passed":true`, `"errors":[]`} {
					if !strings.Contains(string(out), want) {
						t.Errorf("json %s lacks %s", out, want)
					}
				}
				out, err = json.Marshal(results[0])
				must(t, err)
				if !strings.Contains(string(out), `"exception":null`) {
					t.Errorf("json %s: want exception null", out)
				}
			})
		}
	}
}
