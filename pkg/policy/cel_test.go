package policy

import (
	"strings"
	"testing"

	"github.com/seal-dev/seal/pkg/fault"
)

// attestationWith renders a one-attestation rule with the given condition
// for ghcr.io/acme/app:v1@digest.
func attestationWith(t *testing.T, condition string) *Attestation {
	t.Helper()
	doc := header + `  - name: r
    images: ["ghcr.io/**"]
    vars: {Owner: acme}
    signatures: {authorities: [{key: release}]}
    attestations:
      - predicateType: slsaprovenance1
`
	if condition != "" {
		doc += "        condition: '" + strings.ReplaceAll(condition, "'", "''") + "'\n"
	}
	p, err := parseDoc(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	return render(t, p, "ghcr.io/acme/app:v1@"+testDigest).Attestations[0]
}

func TestAttestationEval(t *testing.T) {
	statement := map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"predicateType": "https://slsa.dev/provenance/v1",
		"subject": []any{map[string]any{"name": "ghcr.io/acme/app", "digest": map[string]any{
			"sha256": strings.TrimPrefix(testDigest, "sha256:"),
		}}},
	}
	predicate := map[string]any{
		"runDetails": map[string]any{"builder": map[string]any{"id": "https://github.com/actions/runner/github-hosted"}},
		"buildDefinition": map[string]any{
			"externalParameters": map[string]any{"workflow": map[string]any{"repository": "https://github.com/acme/app"}},
		},
		"count": 3,
	}
	full := map[string]any{
		"predicate":   predicate,
		"statement":   statement,
		"platform":    Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}.Var(),
		"certificate": CertificateVar(githubSummary("acme/app", "v1")),
	}
	keyOnly := map[string]any{"predicate": predicate, "statement": statement, "platform": Platform{OS: "linux", Architecture: "amd64"}.Var()}
	tests := []struct {
		name      string
		condition string
		vars      map[string]any
		want      bool
		wantErr   string
	}{
		{"no condition", "", keyOnly, true, ""},
		{"predicate true", `predicate.runDetails.builder.id.startsWith("https://github.com/actions/runner/")`, full, true, ""},
		{"predicate false", `predicate.runDetails.builder.id == "https://evil.example/builder"`, full, false, ""},
		{"number", `predicate.count == 3`, full, true, ""},
		{"statement subject is the image", `statement.subject.exists(s, "sha256:" + s.digest.sha256 == image.digest)`, full, true, ""},
		{"image fields", `image.registry == "ghcr.io" && image.repository == "acme/app" && image.org == "acme" && image.name == "app" && image.tag == "v1"`, full, true, ""},
		{"platform", `platform.os == "linux" && platform.architecture == "arm64" && platform.variant == "v8"`, full, true, ""},
		{"platform false", `platform.architecture == "amd64"`, full, false, ""},
		{"certificate", `certificate.sourceRepositoryURI == "https://github.com/" + image.org + "/" + image.name && certificate.runnerEnvironment == "github-hosted"`, full, true, ""},
		{"certificate extension absent is empty", `certificate.githubWorkflowTrigger == ""`, full, true, ""},
		{"vars", `predicate.buildDefinition.externalParameters.workflow.repository == "https://github.com/" + vars.Owner + "/" + vars.Name`, full, true, ""},
		{"string extension", `"https://github.com/acme/app".split("/")[3] == vars.Owner`, full, true, ""},
		{"optional field", `predicate.?missing.orValue("x") == "x"`, full, true, ""},
		{"missing predicate field", `predicate.buildDefinition.resolvedDependencies.size() > 0`, full, false, "no such key: resolvedDependencies"},
		{"no certificate for a key signature", `certificate.sourceRepositoryURI != ""`, keyOnly, false, "no such attribute"},
		{"caller's image wins", `image.name == "other"`, map[string]any{"image": map[string]any{"name": "other"}}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := attestationWith(t, tt.condition)
			got, err := a.Eval(tt.vars)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || fault.KindOf(err) != fault.Verification {
					t.Fatalf("Eval = %v, %v; want a verification error containing %q", got, err, tt.wantErr)
				}
				if got {
					t.Error("Eval returned true with an error")
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Eval = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestAttestationEvalCostLimit(t *testing.T) {
	a := attestationWith(t, `predicate.items.all(x, predicate.items.all(y, x == y || x != y))`)
	items := make([]any, 2000)
	for i := range items {
		items[i] = i
	}
	ok, err := a.Eval(map[string]any{"predicate": map[string]any{"items": items}})
	if ok || err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Errorf("Eval over 4M comparisons = %v, %v; want the cost limit to stop it", ok, err)
	}
}
