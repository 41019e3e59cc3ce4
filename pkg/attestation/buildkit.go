package attestation

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/pkg/fault"
)

// Media types and annotations of BuildKit's attestation manifests.
const (
	InTotoMediaType                 = "application/vnd.in-toto+json"
	BuildKitAttestationArtifact     = "application/vnd.docker.attestation.manifest.v1+json"
	PredicateTypeAnnotation         = "in-toto.io/predicate-type"
	DockerReferenceTypeAnnotation   = "vnd.docker.reference.type"
	DockerReferenceDigestAnnotation = "vnd.docker.reference.digest"
	// DockerReferenceTypeAttestation is the value of DockerReferenceTypeAnnotation
	// on an index entry that is an attestation manifest.
	DockerReferenceTypeAttestation = "attestation-manifest"
)

// Attached is one in-toto statement found in an attestation manifest.
type Attached struct {
	PredicateType string
	// Statement is the parsed statement; Raw is its bytes exactly as stored,
	// which are what gets signed.
	Statement *Statement
	Raw       []byte
	// Layer is the manifest layer that held the statement.
	Layer v1.Descriptor
}

// ParseBuildKitAttestation reads a BuildKit attestation manifest — either
// layout: the OCI artifact with a subject (BuildKit's default), or the older
// image-shaped one with a dummy config and no subject — and returns its
// statements. platformDigest is the platform manifest the index entry's
// vnd.docker.reference.digest annotation names; the caller checks that
// annotation, this function checks the manifest's subject (when present) and
// every statement's subject against it, so a statement about one platform is
// never returned for another.
//
// fetchBlob fetches a layer by its descriptor; the caller's fetcher verifies
// digests, and the bytes are checked again here against the descriptor's
// size and sha256 digest. Layers larger than MaxStatementSize are refused
// before they are fetched.
func ParseBuildKitAttestation(manifestRaw []byte, fetchBlob func(v1.Descriptor) ([]byte, error), platformDigest v1.Hash) ([]Attached, error) {
	if len(manifestRaw) > MaxStatementSize {
		return nil, fault.Inputf("attestation manifest for %s: %d bytes, more than the %d-byte limit", platformDigest, len(manifestRaw), MaxStatementSize)
	}
	if err := checkJSON(manifestRaw); err != nil {
		return nil, fault.Inputf("attestation manifest for %s: %w", platformDigest, err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(manifestRaw, &m); err != nil {
		return nil, fault.Inputf("attestation manifest for %s: %w", platformDigest, err)
	}
	switch m.MediaType {
	case types.OCIManifestSchema1, types.DockerManifestSchema2, "":
	default:
		return nil, fault.Inputf("attestation manifest for %s: media type %s is not an image manifest", platformDigest, m.MediaType)
	}
	if m.SchemaVersion != 2 {
		return nil, fault.Inputf("attestation manifest for %s: schemaVersion %d, want 2", platformDigest, m.SchemaVersion)
	}
	if m.ArtifactType != "" && m.ArtifactType != BuildKitAttestationArtifact {
		return nil, fault.Inputf("attestation manifest for %s: artifactType %s, want %s", platformDigest, m.ArtifactType, BuildKitAttestationArtifact)
	}
	if m.Subject != nil && m.Subject.Digest != platformDigest {
		return nil, fault.Inputf("attestation manifest subject %s is not the platform manifest %s it is attached to", m.Subject.Digest, platformDigest)
	}
	if len(m.Layers) == 0 {
		return nil, fault.Inputf("attestation manifest for %s: no in-toto layers", platformDigest)
	}

	out := make([]Attached, 0, len(m.Layers))
	for i, l := range m.Layers {
		a, err := readInTotoLayer(l, fetchBlob, platformDigest)
		if err != nil {
			return nil, fmt.Errorf("attestation manifest for %s: layer %d (%s): %w", platformDigest, i, l.Digest, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func readInTotoLayer(l v1.Descriptor, fetchBlob func(v1.Descriptor) ([]byte, error), platformDigest v1.Hash) (Attached, error) {
	if l.MediaType != InTotoMediaType {
		return Attached{}, fault.Inputf("media type %s, want %s", l.MediaType, InTotoMediaType)
	}
	if l.Size < 0 || l.Size > MaxStatementSize {
		return Attached{}, fault.Inputf("size %d is outside 0..%d bytes", l.Size, MaxStatementSize)
	}
	if l.Digest.Algorithm != "sha256" {
		return Attached{}, fault.Inputf("digest algorithm %s, want sha256", l.Digest.Algorithm)
	}
	raw, err := fetchBlob(l)
	if err != nil {
		return Attached{}, err
	}
	sum := sha256.Sum256(raw)
	if int64(len(raw)) != l.Size || hex.EncodeToString(sum[:]) != l.Digest.Hex {
		return Attached{}, fault.Inputf("content does not match its descriptor (got %d bytes, sha256:%x)", len(raw), sum)
	}
	st, err := ParseStatement(raw)
	if err != nil {
		return Attached{}, err
	}
	if want, ok := l.Annotations[PredicateTypeAnnotation]; ok && want != st.PredicateType {
		return Attached{}, fault.Inputf("statement predicate type %s differs from the layer's %s annotation %s", st.PredicateType, PredicateTypeAnnotation, want)
	}
	if !st.HasSubjectDigest(platformDigest.Algorithm, platformDigest.Hex) {
		return Attached{}, fault.Inputf("statement subject %s is not the platform manifest %s", strings.Join(st.SubjectDigests(), ", "), platformDigest)
	}
	return Attached{PredicateType: st.PredicateType, Statement: st, Raw: raw, Layer: l}, nil
}
