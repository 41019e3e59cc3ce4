package attestation

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidatePredicateAccepts(t *testing.T) {
	gh, err := os.ReadFile("testdata/github-actions.provenance.json")
	if err != nil {
		t.Fatal(err)
	}
	generic, err := os.ReadFile("testdata/generic-v0.2-predicate.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, typ string
		pred      []byte
	}{
		{"GitHub provenance", PredicateSLSAProvenanceV1, gh},
		// BuildKit's real v1 provenance, with its empty builder id.
		{"BuildKit v1 (new layout)", PredicateSLSAProvenanceV1, readStatementPredicate(t, filepath.Join("..", "..", "testdata", "buildkit",
			"fleet__v0.1.0-linux-amd64", "blobs", "sha256", "f286dfc8e2e85aebfcef4bdd2976db39c7bd226411b708537e8dae0ef33ceda2"))},
		{"BuildKit v1 (old layout)", PredicateSLSAProvenanceV1, readStatementPredicate(t, filepath.Join("..", "..", "testdata", "buildkit",
			"oldlayout__v1-linux-amd64", "blobs", "sha256", "3508933f869bcf08f17c51145ab3ea0a7e2abd1665240b124c12001ff1d8e65d"))},
		{"BuildKit v0.2", PredicateSLSAProvenanceV02, readStatementPredicate(t, "testdata/buildkit-v0.2-statement.json")},
		{"generic v0.2", PredicateSLSAProvenanceV02, generic},
		{"SPDX", PredicateSPDX, []byte(`{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT"}`)},
		{"CycloneDX", PredicateCycloneDX, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6"}`)},
		{"custom URI, any object", "https://example.com/p/v1", []byte(`{"anything":[1,2,3]}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidatePredicate(tc.typ, tc.pred); err != nil {
				t.Errorf("rejected: %v", err)
			}
		})
	}
}

func TestValidatePredicateRejects(t *testing.T) {
	v1 := func(bd, rd string) string { return `{"buildDefinition":` + bd + `,"runDetails":` + rd + `}` }
	goodBD := `{"buildType":"t","externalParameters":{}}`
	goodRD := `{"builder":{"id":"b"}}`
	for _, tc := range []struct {
		name, typ, pred string
		want            []string
	}{
		{"not JSON", PredicateSLSAProvenanceV1, `{"a":`, []string{"not a JSON object"}},
		{"YAML", "https://example.com/p", "a: 1\n", []string{"not a JSON object"}},
		{"array", "https://example.com/p", `[1]`, []string{"a JSON array, want an object"}},
		{"string", PredicateSPDX, `"SPDXVersion: SPDX-2.3"`, []string{"a JSON string, want an object"}},
		{"duplicate key", "https://example.com/p", `{"a":1,"a":2}`, []string{`duplicate key "a"`}},
		{"whole statement", PredicateSLSAProvenanceV1, `{"_type":"https://in-toto.io/Statement/v1","predicateType":"x","subject":[],"predicate":{}}`, []string{"whole in-toto statement"}},
		{"v1 empty object", PredicateSLSAProvenanceV1, `{}`, []string{"missing required fields buildDefinition.buildType, buildDefinition.externalParameters, runDetails.builder.id"}},
		{"v1 no externalParameters", PredicateSLSAProvenanceV1, v1(`{"buildType":"t"}`, goodRD), []string{"missing required field buildDefinition.externalParameters"}},
		{"v1 no builder id", PredicateSLSAProvenanceV1, v1(goodBD, `{"builder":{}}`), []string{"missing required field runDetails.builder.id"}},
		{"v1 empty buildType", PredicateSLSAProvenanceV1, v1(`{"buildType":"","externalParameters":{}}`, goodRD), []string{"buildDefinition.buildType is empty"}},
		{"v1 externalParameters a string", PredicateSLSAProvenanceV1, v1(`{"buildType":"t","externalParameters":"x"}`, goodRD), []string{"buildDefinition.externalParameters is a JSON string, want an object"}},
		{"v1 builder id a number", PredicateSLSAProvenanceV1, v1(goodBD, `{"builder":{"id":7}}`), []string{"runDetails.builder.id is a JSON number, want a string"}},
		{"v1 runDetails an array", PredicateSLSAProvenanceV1, v1(goodBD, `[]`), []string{"runDetails is a JSON array"}},
		{"v1 bad timestamp", PredicateSLSAProvenanceV1, v1(goodBD, `{"builder":{"id":"b"},"metadata":{"startedOn":"yesterday"}}`), []string{"runDetails.metadata.startedOn \"yesterday\" is not an RFC 3339 timestamp"}},
		{"v1 bad dependency digest", PredicateSLSAProvenanceV1, v1(`{"buildType":"t","externalParameters":{},"resolvedDependencies":[{"uri":"u","digest":{"gitCommit":"xyz"}}]}`, goodRD), []string{"buildDefinition.resolvedDependencies[0].digest", "not lowercase hex"}},
		{"v1 empty dependency", PredicateSLSAProvenanceV1, v1(`{"buildType":"t","externalParameters":{},"resolvedDependencies":[{}]}`, goodRD), []string{"resolvedDependencies[0] has none of uri, name, digest"}},
		{"v1 several problems at once", PredicateSLSAProvenanceV1, v1(`{"externalParameters":1}`, `{}`), []string{"missing required fields buildDefinition.buildType, runDetails.builder.id", "externalParameters is a JSON number"}},
		{"v0.2 missing builder and buildType", PredicateSLSAProvenanceV02, `{"materials":[]}`, []string{"missing required fields builder.id, buildType"}},
		{"v0.2 bad material", PredicateSLSAProvenanceV02, `{"builder":{"id":""},"buildType":"t","materials":[{"uri":"u","digest":{"sha256":"ab"}}]}`, []string{"materials[0].digest"}},
		{"v0.2 invocation.parameters an array", PredicateSLSAProvenanceV02, `{"builder":{"id":""},"buildType":"t","invocation":{"parameters":[]}}`, []string{"invocation.parameters is a JSON array"}},
		{"SPDX without version", PredicateSPDX, `{"bomFormat":"CycloneDX"}`, []string{"missing required field spdxVersion"}},
		{"CycloneDX given as SPDX", PredicateSPDX, `{"spdxVersion":"2.3"}`, []string{"does not start with SPDX-"}},
		{"SPDX given as CycloneDX", PredicateCycloneDX, `{"spdxVersion":"SPDX-2.3"}`, []string{"missing required field bomFormat"}},
		{"too large", "https://example.com/p", `{"x":"` + strings.Repeat("a", MaxStatementSize) + `"}`, []string{"limit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePredicate(tc.typ, []byte(tc.pred))
			wantInputError(t, err, append([]string{"predicate (" + tc.typ + ")"}, tc.want...)...)
		})
	}
}
