package policy

import (
	"fmt"
	"net/url"
	"slices"
)

// predicateTypes is cosign's table of predicate short names
// (cosign v3 cmd/cosign/cli/options.PredicateTypeMap), so that a name means
// the same thing to `cosign attest --type` and to seal.
var predicateTypes = map[string]string{
	"custom":           "https://cosign.sigstore.dev/attestation/v1",
	"slsaprovenance":   "https://slsa.dev/provenance/v0.2",
	"slsaprovenance02": "https://slsa.dev/provenance/v0.2",
	"slsaprovenance1":  "https://slsa.dev/provenance/v1",
	"spdx":             "https://spdx.dev/Document",
	"spdxjson":         "https://spdx.dev/Document",
	"cyclonedx":        "https://cyclonedx.org/bom",
	"link":             "https://in-toto.io/Link/v1",
	"vuln":             "https://cosign.sigstore.dev/attestation/vuln/v1",
	"openvex":          "https://openvex.dev/ns",
}

// PredicateType returns the URI of a predicate short name (slsaprovenance1,
// spdxjson, …), as cosign defines them.
func PredicateType(short string) (string, bool) {
	uri, ok := predicateTypes[short]
	return uri, ok
}

// PredicateTypeNames lists the short names PredicateType knows, sorted.
func PredicateTypeNames() []string {
	names := make([]string, 0, len(predicateTypes))
	for n := range predicateTypes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ResolvePredicateType accepts a short name or an absolute URI and returns
// the URI.
func ResolvePredicateType(s string) (string, error) {
	if uri, ok := predicateTypes[s]; ok {
		return uri, nil
	}
	u, err := url.ParseRequestURI(s)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("predicate type %q is neither a URI nor one of %v", s, PredicateTypeNames())
	}
	return s, nil
}
