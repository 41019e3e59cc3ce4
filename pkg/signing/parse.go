package signing

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/fault"
)

// Size caps for what is read back from a registry. Real bundles with a
// certificate, a timestamp and a log entry are ~10 KiB; a statement with a
// large SBOM predicate can be a few MiB.
const (
	MaxManifestSize      = 4 << 20
	MaxBundleSize        = 16 << 20
	MaxLegacyPayloadSize = 16 << 20
)

// BundleRef is a bundle referrer manifest, checked: what it says it is and
// where its bundle is.
type BundleRef struct {
	Subject       v1.Descriptor
	PredicateType string
	// Created is the org.opencontainers.image.created annotation (zero
	// when absent or unparsable: it is informational, never trusted).
	Created time.Time
	// Layer is the bundle blob; fetch it (at most MaxBundleSize) and pass
	// it to ParseBundle.
	Layer v1.Descriptor
}

// isBundleMediaType accepts the bundle media types cosign accepts:
// v0.3's and the older `+json;version=0.x` spelling.
func isBundleMediaType(mt string) bool {
	return mt == BundleMediaType || strings.HasPrefix(mt, "application/vnd.dev.sigstore.bundle+json;version=")
}

// ParseBundleReferrer checks that raw is a Sigstore bundle referrer of subject
// as cosign v3 writes them: an OCI image manifest whose artifactType is a
// bundle media type, exactly one bundle layer within the size cap, and a
// subject equal to subject. The predicate type comes from the annotation
// and is a claim until the bundle's own statement is checked.
func ParseBundleReferrer(raw []byte, subject v1.Hash) (*BundleRef, error) {
	m, err := decodeManifest(raw)
	if err != nil {
		return nil, fault.Wrap(fault.Verification, fmt.Errorf("bundle referrer: %w", err))
	}
	if m.MediaType != types.OCIManifestSchema1 {
		return nil, fault.Verificationf("bundle referrer: media type %q is not an OCI image manifest", m.MediaType)
	}
	at := m.ArtifactType
	if at == "" {
		at = string(m.Config.MediaType) // OCI 1.1: artifactType falls back to the config media type
	}
	if !isBundleMediaType(at) {
		return nil, fault.Verificationf("bundle referrer: artifact type %q is not a Sigstore bundle", at)
	}
	if m.Subject == nil || m.Subject.Digest != subject {
		return nil, fault.Verificationf("bundle referrer: subject is not %s", subject)
	}
	if len(m.Layers) != 1 {
		return nil, fault.Verificationf("bundle referrer: %d layers, want 1", len(m.Layers))
	}
	l := m.Layers[0]
	if !isBundleMediaType(string(l.MediaType)) {
		return nil, fault.Verificationf("bundle referrer: layer media type %q is not a Sigstore bundle", l.MediaType)
	}
	if l.Size <= 0 || l.Size > MaxBundleSize {
		return nil, fault.Verificationf("bundle referrer: bundle size %d outside (0, %d]", l.Size, MaxBundleSize)
	}
	ref := &BundleRef{
		Subject:       *m.Subject,
		PredicateType: m.Annotations[AnnotationPredicateType],
		Layer:         v1.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size},
	}
	if t, err := time.Parse(time.RFC3339, m.Annotations[AnnotationCreated]); err == nil {
		ref.Created = t
	}
	return ref, nil
}

// ParseBundle checks that data is the blob layer describes (size, digest)
// and decodes it as a Sigstore bundle; sigstore-go validates its structure.
func ParseBundle(data []byte, layer v1.Descriptor) (*bundle.Bundle, error) {
	if err := checkBlob(data, layer, MaxBundleSize); err != nil {
		return nil, fault.Wrap(fault.Verification, fmt.Errorf("bundle: %w", err))
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, fault.Verificationf("bundle %s: %v", layer.Digest, err)
	}
	return &b, nil
}

// BundleStatement returns the in-toto statement of a DSSE bundle, checked
// to be one (payload type, statement type, a predicate type). Whether it
// was signed by anyone is the verifier's business.
func BundleStatement(b *bundle.Bundle) (*attestation.Statement, error) {
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, fault.Verificationf("bundle: content is not a DSSE envelope")
	}
	st, err := decodeStatement(env.GetPayloadType(), env.GetPayload())
	if err != nil {
		return nil, fault.Wrap(fault.Verification, err)
	}
	return st, nil
}

// ParseLegacyManifest checks a `.sig`/`.att` tag image manifest and returns
// its layer descriptors: OCI or Docker image manifest, at most cosign's 1000
// layers, each of the kind's media type and within the payload cap.
func ParseLegacyManifest(raw []byte, kind LegacyKind) ([]v1.Descriptor, error) {
	m, err := decodeManifest(raw)
	if err != nil {
		return nil, fault.Wrap(fault.Verification, fmt.Errorf("%s image: %w", kind, err))
	}
	if m.MediaType != types.OCIManifestSchema1 && m.MediaType != types.DockerManifestSchema2 {
		return nil, fault.Verificationf("%s image: media type %q is not an image manifest", kind, m.MediaType)
	}
	if len(m.Layers) > maxLegacyLayers {
		return nil, fault.Verificationf("%s image: %d layers, more than %d", kind, len(m.Layers), maxLegacyLayers)
	}
	for i, l := range m.Layers {
		if l.MediaType != kind.layerMediaType() {
			return nil, fault.Verificationf("%s image: layer %d has media type %q, want %q", kind, i, l.MediaType, kind.layerMediaType())
		}
		if l.Size <= 0 || l.Size > MaxLegacyPayloadSize {
			return nil, fault.Verificationf("%s image: layer %d size %d outside (0, %d]", kind, i, l.Size, MaxLegacyPayloadSize)
		}
	}
	return m.Layers, nil
}

// ParsedLegacy is one legacy signature with its material decoded. Nothing
// here is verified: a verifier checks Signature over Payload with the key or
// Certificate, and the timestamp and Rekor entry if it requires them.
type ParsedLegacy struct {
	Descriptor  v1.Descriptor
	Payload     []byte
	Signature   []byte // empty for `.att` (inside the envelope)
	Certificate *x509.Certificate
	Chain       []*x509.Certificate
	// RFC3161Timestamp is the DER timestamp response, if any.
	RFC3161Timestamp []byte
	// RekorBundle is the raw dev.sigstore.cosign/bundle annotation, if any.
	RekorBundle []byte
	// SimpleSigning is the decoded `.sig` payload; nil for `.att`.
	SimpleSigning *payload.SimpleContainerImage
	// PredicateType is the `.att` layer's annotation.
	PredicateType string
}

// ParseLegacyLayer checks that data is the layer d describes and decodes
// the layer's signature material. For `.sig` it also requires the payload's
// docker-manifest-digest to be subject: a signature copied from another
// image's tag must not count for this one.
func ParseLegacyLayer(kind LegacyKind, d v1.Descriptor, data []byte, subject v1.Hash) (*ParsedLegacy, error) {
	if err := checkBlob(data, d, MaxLegacyPayloadSize); err != nil {
		return nil, fault.Wrap(fault.Verification, fmt.Errorf("%s layer: %w", kind, err))
	}
	p := &ParsedLegacy{Descriptor: d, Payload: data}
	if s := d.Annotations[AnnotationSignature]; s != "" {
		sig, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fault.Verificationf("%s layer %s: signature annotation is not base64", kind, d.Digest)
		}
		p.Signature = sig
	}
	if c := d.Annotations[AnnotationCertificate]; c != "" {
		certs, err := certificatesPEM(c)
		if err != nil || len(certs) != 1 {
			return nil, fault.Verificationf("%s layer %s: certificate annotation does not hold one certificate", kind, d.Digest)
		}
		p.Certificate = certs[0]
		chain, err := certificatesPEM(d.Annotations[AnnotationChain])
		if err != nil {
			return nil, fault.Verificationf("%s layer %s: chain annotation: %v", kind, d.Digest, err)
		}
		p.Chain = chain
	}
	if t := d.Annotations[AnnotationTimestamp]; t != "" {
		var ts rfc3161Annotation
		if err := json.Unmarshal([]byte(t), &ts); err != nil || len(ts.SignedRFC3161Timestamp) == 0 {
			return nil, fault.Verificationf("%s layer %s: timestamp annotation is malformed", kind, d.Digest)
		}
		p.RFC3161Timestamp = ts.SignedRFC3161Timestamp
	}
	if b := d.Annotations[AnnotationRekorBundle]; b != "" {
		p.RekorBundle = []byte(b)
	}
	switch kind {
	case LegacySignature:
		if len(p.Signature) == 0 {
			return nil, fault.Verificationf("sig layer %s: no signature annotation", d.Digest)
		}
		var ss payload.SimpleContainerImage
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&ss); err != nil {
			return nil, fault.Verificationf("sig layer %s: payload: %v", d.Digest, err)
		}
		if ss.Critical.Type != payload.CosignSignatureType {
			return nil, fault.Verificationf("sig layer %s: payload type %q", d.Digest, ss.Critical.Type)
		}
		if ss.Critical.Image.DockerManifestDigest != subject.String() {
			return nil, fault.Verificationf("sig layer %s: signs %s, not %s", d.Digest, ss.Critical.Image.DockerManifestDigest, subject)
		}
		p.SimpleSigning = &ss
	case LegacyAttestation:
		p.PredicateType = d.Annotations[AnnotationAttPredicateType]
		var env dsseEnvelope
		if err := json.Unmarshal(data, &env); err != nil || len(env.Signatures) == 0 {
			return nil, fault.Verificationf("att layer %s: payload is not a signed DSSE envelope", d.Digest)
		}
		st, err := decodeStatement(env.PayloadType, env.Payload)
		if err != nil {
			return nil, fault.Verificationf("att layer %s: %v", d.Digest, err)
		}
		if !hasSubject(st, subject) {
			return nil, fault.Verificationf("att layer %s: statement has no subject %s", d.Digest, subject)
		}
		if p.PredicateType != st.PredicateType {
			return nil, fault.Verificationf("att layer %s: annotation says predicate %q, statement says %q", d.Digest, p.PredicateType, st.PredicateType)
		}
	}
	return p, nil
}

func decodeManifest(raw []byte) (*v1.Manifest, error) {
	if len(raw) > MaxManifestSize {
		return nil, fmt.Errorf("manifest larger than %d bytes", MaxManifestSize)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("manifest: %v", err)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("manifest schemaVersion %d, want 2", m.SchemaVersion)
	}
	return &m, nil
}

func checkBlob(data []byte, d v1.Descriptor, max int64) error {
	if int64(len(data)) > max {
		return fmt.Errorf("%s: larger than %d bytes", d.Digest, max)
	}
	if int64(len(data)) != d.Size {
		return fmt.Errorf("%s: %d bytes, descriptor says %d", d.Digest, len(data), d.Size)
	}
	h, _, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		return err
	}
	if h != d.Digest {
		return fmt.Errorf("content hashes to %s, descriptor says %s", h, d.Digest)
	}
	return nil
}
