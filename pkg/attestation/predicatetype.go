package attestation

import (
	"net/url"
	"sort"
	"strings"

	"github.com/seal-dev/seal/pkg/fault"
)

// Predicate type URIs seal gives special treatment to.
const (
	PredicateSLSAProvenanceV1  = "https://slsa.dev/provenance/v1"
	PredicateSLSAProvenanceV02 = "https://slsa.dev/provenance/v0.2"
	PredicateSPDX              = "https://spdx.dev/Document"
	PredicateCycloneDX         = "https://cyclonedx.org/bom"
	PredicateLinkV1            = "https://in-toto.io/Link/v1"
	PredicateCosignCustom      = "https://cosign.sigstore.dev/attestation/v1"
	PredicateCosignVuln        = "https://cosign.sigstore.dev/attestation/vuln/v1"
	PredicateOpenVEX           = "https://openvex.dev/ns"
)

// PredicateTypes maps the short names of --type to predicate type URIs. It is
// cosign v3's table (options.PredicateTypeMap), so a name means the same URI
// to both tools and a policy written for one reads the other's attestations.
// Treat it as read-only.
var PredicateTypes = map[string]string{
	"custom":           PredicateCosignCustom,
	"slsaprovenance":   PredicateSLSAProvenanceV02,
	"slsaprovenance02": PredicateSLSAProvenanceV02,
	"slsaprovenance1":  PredicateSLSAProvenanceV1,
	"spdx":             PredicateSPDX,
	"spdxjson":         PredicateSPDX,
	"cyclonedx":        PredicateCycloneDX,
	"link":             PredicateLinkV1,
	"vuln":             PredicateCosignVuln,
	"openvex":          PredicateOpenVEX,
}

// PredicateTypeFor resolves a short name from PredicateTypes, or passes an
// absolute URI through unchanged. Anything else is an input error that lists
// the known names.
func PredicateTypeFor(nameOrURI string) (string, error) {
	if uri, ok := PredicateTypes[nameOrURI]; ok {
		return uri, nil
	}
	if u, err := url.Parse(nameOrURI); err == nil && u.Scheme != "" && (u.Host != "" || u.Opaque != "") &&
		!strings.ContainsAny(nameOrURI, " \t\r\n") {
		return nameOrURI, nil
	}
	return "", fault.Inputf("predicate type %q: not a URI nor a known name (%s)", nameOrURI, strings.Join(PredicateTypeNames(), ", "))
}

// PredicateTypeNames lists the short names, sorted.
func PredicateTypeNames() []string {
	names := make([]string, 0, len(PredicateTypes))
	for n := range PredicateTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
