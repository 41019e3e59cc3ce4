package verify

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/pkg/fault"
)

// Result is the verdict on one image (CLI.md `seal verify` json).
type Result struct {
	// Image is the reference as given.
	Image string `json:"image"`
	// Digest is the manifest digest the reference resolved to, once; every
	// check is about it. Empty when the reference could not be resolved.
	Digest string `json:"digest"`
	Passed bool   `json:"passed"`
	// Rule is the policy rule that governed the image; empty when none
	// matched.
	Rule string `json:"rule"`
	// Exception is set when the rule is an exception, so that exceptions are
	// visible in every report, expired or not.
	Exception    *Exception    `json:"exception"`
	Signatures   []Signature   `json:"signatures"`
	Attestations []Attestation `json:"attestations"`
	// Errors say why the image did not pass, one reason each.
	Errors []string `json:"errors"`
	// Warnings do not fail the image (an image no rule matches under
	// `unmatched: warn`).
	Warnings []string `json:"warnings,omitempty"`

	// Kind is the kind of the image's failure: fault.Verification when a
	// check failed, fault.Input when the reference is bad or does not exist,
	// fault.Operational when the registry could not be asked. Unknown when
	// the image passed.
	Kind fault.Kind `json:"-"`

	// inputs are the signed artifacts that counted, for the VSA.
	inputs []input
}

// Exception is the exception a result was judged under.
type Exception struct {
	Reason  string `json:"reason"`
	Expires string `json:"expires"`
	Expired bool   `json:"expired,omitempty"`
}

// Signature is one signature found on the image.
type Signature struct {
	// Identity is the certificate's subject (SAN) for keyless signatures,
	// "key NAME" for a policy key; what was found, also when it did not count.
	Identity string `json:"identity"`
	// Issuer is the OIDC issuer of a keyless signature's certificate.
	Issuer string `json:"issuer"`
	// Format is "bundle" (Sigstore bundle referrer) or "legacy" (cosign's
	// .sig tag).
	Format string `json:"format"`
	// Verified is true when the signature counts: it verified against the
	// trusted material and matched one of the rule's authorities.
	Verified bool `json:"verified"`
	// Reason says why a signature does not count.
	Reason string `json:"reason,omitempty"`
}

// Attestation is one required attestation of the image's rule, for one
// manifest.
type Attestation struct {
	PredicateType string `json:"predicateType"`
	// Platform is the platform manifest the attestation is about
	// (os/arch[/variant]); empty for the image (or index) itself.
	Platform string `json:"platform"`
	Verified bool   `json:"verified"`
	// Identity and Issuer name the signer of the attestation that counted.
	Identity string `json:"identity,omitempty"`
	Issuer   string `json:"issuer,omitempty"`
	// Format is "bundle" or "legacy" (cosign's .att tag) for the
	// attestation that counted.
	Format string `json:"format,omitempty"`
	// Source is the signed artifact that counted, so that a reader of the
	// result (`seal download --policy`) can return exactly what was
	// verified; nil when none did.
	Source *AttestationSource `json:"source,omitempty"`
	Reason string             `json:"reason,omitempty"`
}

// AttestationSource locates the signed artifact a required attestation was
// met by. Every field is a digest (or a tag derived from one), so what is
// fetched by it later is what was verified.
type AttestationSource struct {
	// Manifest is the digest of the manifest the attestation is attached to
	// and about: the image, or one of its platform manifests.
	Manifest string `json:"manifest"`
	// Digest is the referrer manifest's digest (format bundle) or the `.att`
	// layer's (format legacy).
	Digest string `json:"digest"`
	// Tag is cosign's `.att` tag the layer was found in (format legacy).
	Tag string `json:"tag,omitempty"`
}

// input is a signed artifact a verdict rests on.
type input struct {
	uri    string
	digest v1.Hash
}

// Err is the image's failure as one error of its kind, naming the image and
// digest (nil when it passed).
func (r *Result) Err() error {
	if r.Passed {
		return nil
	}
	kind := r.Kind
	if kind == fault.Unknown {
		kind = fault.Verification
	}
	name := r.Image
	if r.Digest != "" && !strings.Contains(r.Image, "@") {
		name += "@" + r.Digest
	}
	return fault.Wrap(kind, fmt.Errorf("verify %s: %s", name, strings.Join(r.Errors, "; ")))
}
