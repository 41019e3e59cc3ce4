package index

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Annotations BuildKit puts on an attestation manifest's descriptor in an index.
const (
	AnnotationReferenceType   = "vnd.docker.reference.type"
	AnnotationReferenceDigest = "vnd.docker.reference.digest"
	// ReferenceTypeAttestation is the value of AnnotationReferenceType that marks
	// an attestation manifest.
	ReferenceTypeAttestation = "attestation-manifest"
	// AnnotationPredicateType is set by BuildKit on each in-toto layer of an
	// attestation manifest.
	AnnotationPredicateType = "in-toto.io/predicate-type"
	// MediaTypeInToto is the media type of an in-toto statement layer.
	MediaTypeInToto = "application/vnd.in-toto+json"
	// ArtifactTypeAttestation is the artifactType of an attestation manifest in
	// BuildKit's OCI-artifact layout.
	ArtifactTypeAttestation = "application/vnd.docker.attestation.manifest.v1+json"
)

// IsAttestation reports whether d is a BuildKit attestation manifest
// descriptor, which is known only from its annotation: in the older layout the
// manifest itself looks like an image with an unknown/unknown config.
func IsAttestation(d v1.Descriptor) bool {
	return d.Annotations[AnnotationReferenceType] == ReferenceTypeAttestation
}

// AttestationSubject returns the digest of the platform manifest that the
// attestation descriptor d refers to. ok is false when d is not an attestation
// or its reference digest is missing or malformed.
func AttestationSubject(d v1.Descriptor) (h v1.Hash, ok bool) {
	if !IsAttestation(d) {
		return v1.Hash{}, false
	}
	h, err := v1.NewHash(d.Annotations[AnnotationReferenceDigest])
	if err != nil {
		return v1.Hash{}, false
	}
	return h, true
}
