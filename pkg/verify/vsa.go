package verify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/pkg/attestation"
)

// VSAPredicateType is SLSA's verification summary predicate, v1.
const VSAPredicateType = "https://slsa.dev/verification_summary/v1"

// VSAOptions describe the verification a summary is about.
type VSAOptions struct {
	// VerifierID is the verifier's URI (default "https://seal.dev/verify").
	VerifierID string
	// Version is the verifier's version, recorded as version.seal.
	Version string
	// PolicyURI and PolicyDigest identify the policy (a file:// URI and
	// the digest of its bytes, for a policy file).
	PolicyURI    string
	PolicyDigest map[string]string
	// Time is when the verification happened (default now).
	Time time.Time
}

// vsaPredicate is SLSA VSA v1 (https://slsa.dev/spec/v1.0/verification_summary).
type vsaPredicate struct {
	Verifier struct {
		ID      string            `json:"id"`
		Version map[string]string `json:"version,omitempty"`
	} `json:"verifier"`
	TimeVerified       string         `json:"timeVerified"`
	ResourceURI        string         `json:"resourceUri"`
	Policy             vsaRef         `json:"policy"`
	InputAttestations  []vsaRef       `json:"inputAttestations"`
	VerificationResult string         `json:"verificationResult"`
	VerifiedLevels     []string       `json:"verifiedLevels"`
	DependencyLevels   map[string]int `json:"dependencyLevels,omitempty"`
	SLSAVersion        string         `json:"slsaVersion"`
}

type vsaRef struct {
	URI    string            `json:"uri,omitempty"`
	Digest map[string]string `json:"digest,omitempty"`
}

// VSA returns an unsigned in-toto statement (JSON) summarising res as an
// SLSA verification summary: the image digest as subject, PASSED or FAILED,
// the policy, and the signed artifacts the verdict rests on. verifiedLevels
// is SLSA_BUILD_LEVEL_1 when a verified SLSA provenance attestation counted
// (provenance exists and its signer is one the policy trusts),
// SLSA_BUILD_LEVEL_0 when the image passed without one, FAILED otherwise:
// seal does not judge the build platform, so it claims no higher level.
func VSA(res Result, opts VSAOptions) ([]byte, error) {
	if res.Digest == "" {
		return nil, fmt.Errorf("vsa for %s: the image was not resolved", res.Image)
	}
	h, err := v1.NewHash(res.Digest)
	if err != nil {
		return nil, fmt.Errorf("vsa for %s: %w", res.Image, err)
	}
	ref, err := name.ParseReference(res.Image)
	if err != nil {
		return nil, fmt.Errorf("vsa for %s: %w", res.Image, err)
	}
	repo := ref.Context().Name()
	if opts.VerifierID == "" {
		opts.VerifierID = "https://seal.dev/verify"
	}
	if opts.Time.IsZero() {
		opts.Time = time.Now()
	}
	var p vsaPredicate
	p.Verifier.ID = opts.VerifierID
	if opts.Version != "" {
		p.Verifier.Version = map[string]string{"seal": opts.Version}
	}
	p.TimeVerified = opts.Time.UTC().Format(time.RFC3339)
	p.ResourceURI = repo + "@" + res.Digest
	p.Policy = vsaRef{URI: opts.PolicyURI, Digest: opts.PolicyDigest}
	p.InputAttestations = []vsaRef{}
	for _, in := range res.inputs {
		p.InputAttestations = append(p.InputAttestations, vsaRef{URI: in.uri, Digest: map[string]string{in.digest.Algorithm: in.digest.Hex}})
	}
	p.SLSAVersion = "1.0"
	switch {
	case !res.Passed:
		p.VerificationResult, p.VerifiedLevels = "FAILED", []string{"FAILED"}
	case hasProvenance(res):
		p.VerificationResult, p.VerifiedLevels = "PASSED", []string{"SLSA_BUILD_LEVEL_1"}
	default:
		p.VerificationResult, p.VerifiedLevels = "PASSED", []string{"SLSA_BUILD_LEVEL_0"}
	}
	pred, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	st, err := attestation.NewStatement(VSAPredicateType, pred, attestation.Subject{
		Name: repo, Digest: map[string]string{h.Algorithm: h.Hex},
	})
	if err != nil {
		return nil, fmt.Errorf("vsa for %s: %w", res.Image, err)
	}
	return st, nil
}

func hasProvenance(res Result) bool {
	for _, a := range res.Attestations {
		if a.Verified && strings.HasPrefix(a.PredicateType, "https://slsa.dev/provenance/") {
			return true
		}
	}
	return false
}

// VSAFileName is the file a summary of digest is written to:
// sha256-<hex>.vsa.json (no ':' in file names).
func VSAFileName(digest string) string {
	return strings.Replace(digest, ":", "-", 1) + ".vsa.json"
}
