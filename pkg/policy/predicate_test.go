package policy

import "testing"

func TestPredicateType(t *testing.T) {
	tests := map[string]string{
		"slsaprovenance1":  "https://slsa.dev/provenance/v1",
		"slsaprovenance02": "https://slsa.dev/provenance/v0.2",
		"slsaprovenance":   "https://slsa.dev/provenance/v0.2",
		"spdxjson":         "https://spdx.dev/Document",
		"spdx":             "https://spdx.dev/Document",
		"cyclonedx":        "https://cyclonedx.org/bom",
		"vuln":             "https://cosign.sigstore.dev/attestation/vuln/v1",
		"custom":           "https://cosign.sigstore.dev/attestation/v1",
		"link":             "https://in-toto.io/Link/v1",
		"openvex":          "https://openvex.dev/ns",
	}
	for short, want := range tests {
		if got, ok := PredicateType(short); !ok || got != want {
			t.Errorf("PredicateType(%q) = %q, %v; want %q", short, got, ok, want)
		}
	}
	if len(PredicateTypeNames()) != len(tests) {
		t.Errorf("PredicateTypeNames() = %v", PredicateTypeNames())
	}
	if _, ok := PredicateType("https://slsa.dev/provenance/v1"); ok {
		t.Error("a URI is not a short name")
	}
}

func TestResolvePredicateType(t *testing.T) {
	for in, want := range map[string]string{
		"slsaprovenance1":                 "https://slsa.dev/provenance/v1",
		"https://example.com/predicate/1": "https://example.com/predicate/1",
		"urn:example:predicate":           "urn:example:predicate",
	} {
		if got, err := ResolvePredicateType(in); err != nil || got != want {
			t.Errorf("ResolvePredicateType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "slsa", "/relative/path", "provenance v1"} {
		if got, err := ResolvePredicateType(bad); err == nil {
			t.Errorf("ResolvePredicateType(%q) = %q, want an error", bad, got)
		}
	}
}
