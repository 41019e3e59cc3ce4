package signing

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/seal-dev/seal/pkg/attestation"
)

// Media types and annotation names of cosign v3's bundle referrers
// (cosign pkg/oci/remote/write.go WriteAttestationNewBundleFormat).
const (
	BundleMediaType         = "application/vnd.dev.sigstore.bundle.v0.3+json"
	EmptyMediaType          = "application/vnd.oci.empty.v1+json"
	InTotoPayloadType       = "application/vnd.in-toto+json"
	InTotoStatementType     = "https://in-toto.io/Statement/v1"
	CosignSignPredicate     = "https://sigstore.dev/cosign/sign/v1"
	AnnotationBundleContent = "dev.sigstore.bundle.content"
	AnnotationPredicateType = "dev.sigstore.bundle.predicateType"
	AnnotationCreated       = "org.opencontainers.image.created"
	bundleContentDSSE       = "dsse-envelope"
)

// emptyJSON is the OCI empty descriptor's content. cosign stores it as the
// referrer's config.
var emptyJSON = []byte("{}")

// Artifact is a manifest ready to push and the blobs it needs, pushed first.
type Artifact struct {
	// Descriptor of the manifest, as a referrers listing shows it
	// (mediaType, digest, size, artifactType, annotations).
	Descriptor v1.Descriptor
	Manifest   []byte
	Blobs      []Blob
}

// Blob is content addressed by its descriptor.
type Blob struct {
	Descriptor v1.Descriptor
	Data       []byte
}

func newBlob(mediaType types.MediaType, data []byte) (Blob, error) {
	h, n, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		return Blob{}, err
	}
	return Blob{Descriptor: v1.Descriptor{MediaType: mediaType, Digest: h, Size: n}, Data: data}, nil
}

// signStatement is the in-toto statement `cosign sign` v3 signs, field for
// field: the subject has no name, only the digest and the annotations
// (always present, `{}` when none), and the predicate is empty.
type signStatement struct {
	Type          string          `json:"_type"`
	Subject       []signSubject   `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

type signSubject struct {
	Digest      map[string]string `json:"digest"`
	Annotations map[string]string `json:"annotations"`
}

// SignStatement returns the statement cosign v3 signs for an image digest,
// with the `--annotation` pairs as subject annotations.
func SignStatement(digest v1.Hash, annotations map[string]string) ([]byte, error) {
	if digest.Algorithm != "sha256" || len(digest.Hex) != 64 {
		return nil, fmt.Errorf("sign statement: digest %s is not sha256", digest)
	}
	ann := map[string]string{}
	maps.Copy(ann, annotations)
	return json.Marshal(signStatement{
		Type:          InTotoStatementType,
		Subject:       []signSubject{{Digest: map[string]string{"sha256": digest.Hex}, Annotations: ann}},
		PredicateType: CosignSignPredicate,
		Predicate:     json.RawMessage(`{}`),
	})
}

// SignDSSE signs an in-toto statement as a DSSE envelope and returns the
// bundle, encoded as cosign encodes it (protojson).
func SignDSSE(ctx context.Context, s Signer, statement []byte) ([]byte, error) {
	b, err := s.Sign(ctx, &sign.DSSEData{Data: statement, PayloadType: InTotoPayloadType})
	if err != nil {
		return nil, err
	}
	return marshalBundle(b)
}

func marshalBundle(b *protobundle.Bundle) ([]byte, error) {
	raw, err := protojson.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode bundle: %w", err)
	}
	// protojson randomises whitespace between builds; compact output is
	// stable and what cosign's own output usually looks like.
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("encode bundle: %w", err)
	}
	return buf.Bytes(), nil
}

// BundleReferrer packs a DSSE bundle as the OCI 1.1 referrer cosign v3
// writes: an image manifest with artifactType = the bundle media type, the
// empty config (carrying the artifactType too, as cosign's does), one layer =
// the bundle, subject = the signed manifest, and the annotations
// dev.sigstore.bundle.content, dev.sigstore.bundle.predicateType and
// org.opencontainers.image.created.
//
// The bundle is checked before it is packed: a DSSE envelope over an in-toto
// statement of predicateType whose subjects include subject's digest. The
// same function serves signatures and attestations.
func BundleReferrer(subject v1.Descriptor, bundleJSON []byte, predicateType string, created time.Time) (*Artifact, error) {
	st, err := bundleStatement(bundleJSON)
	if err != nil {
		return nil, err
	}
	if st.PredicateType != predicateType {
		return nil, fmt.Errorf("bundle referrer: statement predicate type %q, want %q", st.PredicateType, predicateType)
	}
	if !hasSubject(st, subject.Digest) {
		return nil, fmt.Errorf("bundle referrer: statement has no subject with digest %s", subject.Digest)
	}
	config, err := newBlob(EmptyMediaType, emptyJSON)
	if err != nil {
		return nil, err
	}
	layer, err := newBlob(BundleMediaType, bundleJSON)
	if err != nil {
		return nil, err
	}
	ann := map[string]string{
		AnnotationCreated:       created.UTC().Format(time.RFC3339),
		AnnotationBundleContent: bundleContentDSSE,
		AnnotationPredicateType: predicateType,
	}
	cfg := config.Descriptor
	cfg.ArtifactType = BundleMediaType
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        cfg,
		Layers:        []v1.Descriptor{layer.Descriptor},
		Annotations:   ann,
		// Only the three fields cosign keeps: a platform or annotations of
		// the subject's own descriptor do not belong here.
		Subject:      &v1.Descriptor{MediaType: subject.MediaType, Size: subject.Size, Digest: subject.Digest},
		ArtifactType: BundleMediaType,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	h, n, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return &Artifact{
		Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1, Digest: h, Size: n,
			ArtifactType: BundleMediaType, Annotations: maps.Clone(ann),
		},
		Manifest: raw,
		Blobs:    []Blob{config, layer},
	}, nil
}

// hasSubject reports whether st is about the manifest with digest d.
func hasSubject(st *attestation.Statement, d v1.Hash) bool {
	for _, sub := range st.Subject {
		if v, ok := sub.Digest[d.Algorithm]; ok && v == d.Hex {
			return true
		}
	}
	return false
}

// bundleStatement decodes the in-toto statement inside a DSSE bundle.
func bundleStatement(bundleJSON []byte) (*attestation.Statement, error) {
	var pb protobundle.Bundle
	if err := protojson.Unmarshal(bundleJSON, &pb); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	env := pb.GetDsseEnvelope()
	if env == nil {
		return nil, fmt.Errorf("bundle: content is not a DSSE envelope")
	}
	return decodeStatement(env.GetPayloadType(), env.GetPayload())
}

// decodeStatement checks a DSSE payload is an in-toto statement and parses
// it strictly (pkg/attestation).
func decodeStatement(payloadType string, payload []byte) (*attestation.Statement, error) {
	if payloadType != InTotoPayloadType {
		return nil, fmt.Errorf("dsse payload type %q, want %q", payloadType, InTotoPayloadType)
	}
	return attestation.ParseStatement(payload)
}
