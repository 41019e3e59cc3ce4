package signing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/seal-dev/seal/pkg/oci"
)

// cosign's legacy tag-based signatures (cosign pkg/oci/static, pkg/oci/mutate).
const (
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	DSSEMediaType          = "application/vnd.dsse.envelope.v1+json"

	AnnotationSignature   = "dev.cosignproject.cosign/signature"
	AnnotationCertificate = "dev.sigstore.cosign/certificate"
	AnnotationChain       = "dev.sigstore.cosign/chain"
	AnnotationRekorBundle = "dev.sigstore.cosign/bundle"
	AnnotationTimestamp   = "dev.sigstore.cosign/rfc3161timestamp"
	// AnnotationAttPredicateType names the predicate of an `.att` layer.
	AnnotationAttPredicateType = "predicateType"

	// maxLegacyLayers is cosign's cap on signatures in one tag image.
	maxLegacyLayers = 1000
)

// LegacyKind is the tag suffix of a legacy signature image.
type LegacyKind string

const (
	LegacySignature   LegacyKind = "sig"
	LegacyAttestation LegacyKind = "att"
)

func (k LegacyKind) layerMediaType() types.MediaType {
	if k == LegacyAttestation {
		return DSSEMediaType
	}
	return SimpleSigningMediaType
}

// LegacyTag is the tag cosign stores signatures (`sha256-<hex>.sig`) or
// attestations (`.att`) of a manifest under: the referrers fallback tag
// with the kind as suffix.
func LegacyTag(digest v1.Hash, kind LegacyKind) string {
	return oci.FallbackTag(digest) + "." + string(kind)
}

// LegacyLayer is one signature in a legacy tag image: the signed payload
// (a simple-signing document, or a DSSE envelope for `.att`) and the
// annotations that carry the signature and its verification material.
type LegacyLayer struct {
	MediaType   types.MediaType
	Payload     []byte
	Annotations map[string]string
}

// Descriptor is the layer's descriptor in the tag image's manifest.
func (l LegacyLayer) Descriptor() v1.Descriptor {
	h, n, _ := v1.SHA256(bytes.NewReader(l.Payload))
	return v1.Descriptor{MediaType: l.MediaType, Digest: h, Size: n, Annotations: maps.Clone(l.Annotations)}
}

// SimpleSigningPayload is the payload `cosign sign --new-bundle-format=false`
// signs: docker-reference = the repository, docker-manifest-digest = digest,
// the annotations under "optional" (null when there are none, as cosign writes).
func SimpleSigningPayload(image name.Digest, annotations map[string]string) ([]byte, error) {
	var opt map[string]any
	for k, v := range annotations {
		if opt == nil {
			opt = map[string]any{}
		}
		opt[k] = v
	}
	return payload.Cosign{Image: image, Annotations: opt}.MarshalJSON()
}

// SignLegacy signs a simple-signing payload and returns the `.sig` layer,
// its annotations built from the bundle as cosign v3 builds them: the
// signature, and for keyless the certificate, the chain (empty when Fulcio
// returned only the leaf), the first RFC 3161 timestamp and the first Rekor
// entry.
func SignLegacy(ctx context.Context, s Signer, simpleSigning []byte) (LegacyLayer, error) {
	b, err := s.Sign(ctx, &sign.PlainData{Data: simpleSigning})
	if err != nil {
		return LegacyLayer{}, err
	}
	ms := b.GetMessageSignature()
	if ms == nil {
		return LegacyLayer{}, errors.New("legacy signature: bundle has no message signature")
	}
	ann, err := legacyAnnotations(b)
	if err != nil {
		return LegacyLayer{}, err
	}
	ann[AnnotationSignature] = base64.StdEncoding.EncodeToString(ms.GetSignature())
	return LegacyLayer{MediaType: SimpleSigningMediaType, Payload: simpleSigning, Annotations: ann}, nil
}

// AttestLegacy signs an in-toto statement and returns the `.att` layer:
// the DSSE envelope as the payload (JSON-encoded as cosign v3 does), the
// predicate type annotation and an empty signature annotation (the
// signature is inside the envelope).
func AttestLegacy(ctx context.Context, s Signer, statement []byte) (LegacyLayer, error) {
	st, err := decodeStatement(InTotoPayloadType, statement)
	if err != nil {
		return LegacyLayer{}, err
	}
	b, err := s.Sign(ctx, &sign.DSSEData{Data: statement, PayloadType: InTotoPayloadType})
	if err != nil {
		return LegacyLayer{}, err
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return LegacyLayer{}, errors.New("legacy attestation: bundle has no DSSE envelope")
	}
	envJSON, err := json.Marshal(dsseEnvelope{
		Payload: env.GetPayload(), PayloadType: env.GetPayloadType(), Signatures: dsseSigs(env.GetSignatures()),
	})
	if err != nil {
		return LegacyLayer{}, err
	}
	ann, err := legacyAnnotations(b)
	if err != nil {
		return LegacyLayer{}, err
	}
	ann[AnnotationSignature] = ""
	ann[AnnotationAttPredicateType] = st.PredicateType
	return LegacyLayer{MediaType: DSSEMediaType, Payload: envJSON, Annotations: ann}, nil
}

// dsseEnvelope is the JSON shape of a DSSE envelope; field names and order
// are those encoding/json gives the protobuf type cosign marshals.
type dsseEnvelope struct {
	Payload     []byte    `json:"payload,omitempty"`
	PayloadType string    `json:"payloadType,omitempty"`
	Signatures  []dsseSig `json:"signatures,omitempty"`
}

type dsseSig struct {
	Sig   []byte `json:"sig,omitempty"`
	KeyID string `json:"keyid,omitempty"`
}

func dsseSigs[S interface {
	GetSig() []byte
	GetKeyid() string
}](in []S) []dsseSig {
	out := make([]dsseSig, 0, len(in))
	for _, s := range in {
		out = append(out, dsseSig{Sig: s.GetSig(), KeyID: s.GetKeyid()})
	}
	return out
}

// rfc3161Annotation and rekorAnnotation are cosign's annotation JSON
// (pkg/cosign/bundle), field names included.
type rfc3161Annotation struct {
	SignedRFC3161Timestamp []byte
}

type rekorAnnotation struct {
	SignedEntryTimestamp []byte
	Payload              rekorPayload
}

type rekorPayload struct {
	Body           any    `json:"body"`
	IntegratedTime int64  `json:"integratedTime"`
	LogIndex       int64  `json:"logIndex"`
	LogID          string `json:"logID"`
}

func legacyAnnotations(b *protobundle.Bundle) (map[string]string, error) {
	ann := map[string]string{}
	vm := b.GetVerificationMaterial()
	var certs [][]byte
	if ch := vm.GetX509CertificateChain(); ch != nil {
		for _, c := range ch.GetCertificates() {
			certs = append(certs, c.GetRawBytes())
		}
	} else if c := vm.GetCertificate(); c != nil {
		certs = append(certs, c.GetRawBytes())
	}
	if len(certs) > 0 {
		ann[AnnotationCertificate] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[0]}))
		var chain []byte
		for _, c := range certs[1:] {
			chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
		}
		ann[AnnotationChain] = string(chain)
	}
	if ts := vm.GetTimestampVerificationData().GetRfc3161Timestamps(); len(ts) > 0 {
		j, err := json.Marshal(rfc3161Annotation{SignedRFC3161Timestamp: ts[0].GetSignedTimestamp()})
		if err != nil {
			return nil, err
		}
		ann[AnnotationTimestamp] = string(j)
	}
	if tl := vm.GetTlogEntries(); len(tl) > 0 {
		e := tl[0]
		j, err := json.Marshal(rekorAnnotation{
			SignedEntryTimestamp: e.GetInclusionPromise().GetSignedEntryTimestamp(),
			Payload: rekorPayload{
				Body:           e.GetCanonicalizedBody(),
				IntegratedTime: e.GetIntegratedTime(),
				LogIndex:       e.GetLogIndex(),
				LogID:          hex.EncodeToString(e.GetLogId().GetKeyId()),
			},
		})
		if err != nil {
			return nil, err
		}
		ann[AnnotationRekorBundle] = string(j)
	}
	return ann, nil
}

// AppendLegacy returns the legacy tag image holding the layers of existing
// (the current `.sig`/`.att` manifest, nil when there is none) followed by
// each of adds that is not already there, built as cosign builds it (an OCI
// image over go-containerregistry's empty image, config listing the layers).
// A layer is already there when an existing one has the same payload, media
// type and annotations, or — cosign's rule for `.sig` — the same payload and
// non-signature annotations and a signature that pub verifies (re-signing
// with the same key is not a new signature). pub may be nil.
//
// The blobs of the result are the config and the added payloads; existing
// layers are referenced, not re-pushed. added is how many layers were new;
// when it is 0 nothing needs to be written.
func AppendLegacy(existing []byte, kind LegacyKind, adds []LegacyLayer, pub crypto.PublicKey) (art *Artifact, added int, err error) {
	var base []v1.Descriptor
	if existing != nil {
		base, err = ParseLegacyManifest(existing, kind)
		if err != nil {
			return nil, 0, fmt.Errorf("existing %s image: %w", kind, err)
		}
	}
	layers := make([]mutate.Addendum, 0, len(base)+len(adds))
	for _, d := range base {
		layers = append(layers, mutate.Addendum{Layer: &descLayer{d: d}, Annotations: d.Annotations})
	}
	var blobs []Blob
	all := base
	for _, l := range adds {
		if l.MediaType != kind.layerMediaType() {
			return nil, 0, fmt.Errorf("%s layer has media type %s, want %s", kind, l.MediaType, kind.layerMediaType())
		}
		if isDuplicate(all, l, pub) {
			continue
		}
		d := l.Descriptor()
		all = append(all, d)
		layers = append(layers, mutate.Addendum{Layer: &descLayer{d: d, data: l.Payload}, Annotations: d.Annotations})
		blobs = append(blobs, Blob{Descriptor: v1.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}, Data: l.Payload})
		added++
	}
	if len(layers) > maxLegacyLayers {
		return nil, 0, fmt.Errorf("%s image would hold %d signatures, more than cosign's limit of %d", kind, len(layers), maxLegacyLayers)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, layers...)
	if err != nil {
		return nil, 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return nil, 0, err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return nil, 0, err
	}
	cfgBlob, err := newBlob(types.OCIConfigJSON, cfg)
	if err != nil {
		return nil, 0, err
	}
	h, n, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, 0, err
	}
	return &Artifact{
		Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: h, Size: n},
		Manifest:   raw,
		Blobs:      append([]Blob{cfgBlob}, blobs...),
	}, added, nil
}

func isDuplicate(existing []v1.Descriptor, l LegacyLayer, pub crypto.PublicKey) bool {
	d := l.Descriptor()
	for _, e := range existing {
		if e.Digest != d.Digest || e.MediaType != d.MediaType {
			continue
		}
		if maps.Equal(e.Annotations, d.Annotations) {
			return true
		}
		same := true
		for k, v := range d.Annotations {
			if k == AnnotationSignature {
				continue
			}
			if ev, ok := e.Annotations[k]; !ok || ev != v {
				same = false
				break
			}
		}
		if !same || pub == nil || e.Annotations[AnnotationSignature] == "" {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(e.Annotations[AnnotationSignature])
		if err != nil {
			continue
		}
		v, err := signature.LoadDefaultVerifier(pub)
		if err != nil {
			continue
		}
		if v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(l.Payload)) == nil {
			return true
		}
	}
	return false
}

// descLayer is a layer known by its descriptor: enough for
// go-containerregistry to compute a manifest and config (cosign's payload
// layers are uncompressed, so the diff ID is the digest).
type descLayer struct {
	d    v1.Descriptor
	data []byte
}

func (l *descLayer) Digest() (v1.Hash, error)             { return l.d.Digest, nil }
func (l *descLayer) DiffID() (v1.Hash, error)             { return l.d.Digest, nil }
func (l *descLayer) Size() (int64, error)                 { return l.d.Size, nil }
func (l *descLayer) MediaType() (types.MediaType, error)  { return l.d.MediaType, nil }
func (l *descLayer) Compressed() (io.ReadCloser, error)   { return l.open() }
func (l *descLayer) Uncompressed() (io.ReadCloser, error) { return l.open() }

func (l *descLayer) open() (io.ReadCloser, error) {
	if l.data == nil {
		return nil, fmt.Errorf("layer %s: content not held (it is already in the registry)", l.d.Digest)
	}
	return io.NopCloser(bytes.NewReader(l.data)), nil
}

// certificatePEM parses the PEM annotations of a legacy layer.
func certificatesPEM(s string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q is not a certificate", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("trailing data after PEM certificates")
	}
	return out, nil
}
