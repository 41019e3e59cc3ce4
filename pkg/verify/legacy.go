package verify

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/seal-dev/seal/pkg/signing"
)

// legacyBundleMediaType is the bundle version whose rules fit cosign's
// legacy material: a certificate chain is allowed (only the leaf is used;
// intermediates come from the trusted root, never from the registry) and a
// transparency log entry needs only its inclusion promise, which is what
// cosign's Rekor bundle annotation holds.
const legacyBundleMediaType = "application/vnd.dev.sigstore.bundle+json;version=0.1"

// legacyEntity wraps the parts of a cosign legacy signature (`.sig` layer
// and annotations, or `.att` DSSE envelope) as a Sigstore bundle, so that
// sigstore-go verifies them exactly as it verifies bundles: the certificate
// chain to a trusted Fulcio CA at the time of the RFC 3161 timestamp
// (verified against the trusted TSAs) or of the Rekor entry, then the
// signature.
func legacyEntity(p *signing.ParsedLegacy, kind signing.LegacyKind) (*bundle.Bundle, error) {
	vm := &protobundle.VerificationMaterial{}
	if p.Certificate != nil {
		vm.Content = &protobundle.VerificationMaterial_X509CertificateChain{
			X509CertificateChain: &protocommon.X509CertificateChain{
				Certificates: []*protocommon.X509Certificate{{RawBytes: p.Certificate.Raw}},
			},
		}
	} else {
		vm.Content = &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}}
	}
	if len(p.RFC3161Timestamp) > 0 {
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{
			Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: p.RFC3161Timestamp}},
		}
	}
	if len(p.RekorBundle) > 0 {
		e, err := rekorEntry(p.RekorBundle)
		if err != nil {
			return nil, fmt.Errorf("rekor bundle annotation: %w", err)
		}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{e}
	}
	pb := &protobundle.Bundle{MediaType: legacyBundleMediaType, VerificationMaterial: vm}
	switch kind {
	case signing.LegacySignature:
		sum := sha256.Sum256(p.Payload)
		pb.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
			Signature:     p.Signature,
		}}
	case signing.LegacyAttestation:
		env, err := decodeEnvelope(p.Payload)
		if err != nil {
			return nil, err
		}
		pb.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: env}
	default:
		return nil, fmt.Errorf("unknown legacy kind %q", kind)
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return nil, fmt.Errorf("legacy signature material: %w", err)
	}
	return b, nil
}

// envelopeJSON is a DSSE envelope as cosign stores it in a `.att` layer.
type envelopeJSON struct {
	PayloadType string `json:"payloadType"`
	Payload     []byte `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   []byte `json:"sig"`
	} `json:"signatures"`
}

func decodeEnvelope(data []byte) (*protodsse.Envelope, error) {
	var e envelopeJSON
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("DSSE envelope: %w", err)
	}
	if len(e.Signatures) == 0 {
		return nil, errors.New("DSSE envelope has no signature")
	}
	env := &protodsse.Envelope{Payload: e.Payload, PayloadType: e.PayloadType}
	for _, s := range e.Signatures {
		env.Signatures = append(env.Signatures, &protodsse.Signature{Sig: s.Sig, Keyid: s.KeyID})
	}
	return env, nil
}

// rekorAnnotation is cosign's dev.sigstore.cosign/bundle annotation.
type rekorAnnotation struct {
	SignedEntryTimestamp []byte
	Payload              struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	}
}

// rekorEntry turns cosign's Rekor bundle annotation into a transparency log
// entry with its inclusion promise (the SET), which sigstore-go verifies
// against the trusted logs and against the signature it records.
func rekorEntry(raw []byte) (*protorekor.TransparencyLogEntry, error) {
	var a rekorAnnotation
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	body, err := base64.StdEncoding.DecodeString(a.Payload.Body)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	logID, err := hex.DecodeString(a.Payload.LogID)
	if err != nil {
		return nil, fmt.Errorf("log id: %w", err)
	}
	var kv struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(body, &kv); err != nil || kv.Kind == "" || kv.APIVersion == "" {
		return nil, errors.New("body is not a Rekor entry")
	}
	if len(a.SignedEntryTimestamp) == 0 {
		return nil, errors.New("no signed entry timestamp")
	}
	return &protorekor.TransparencyLogEntry{
		LogIndex:          a.Payload.LogIndex,
		LogId:             &protocommon.LogId{KeyId: logID},
		KindVersion:       &protorekor.KindVersion{Kind: kv.Kind, Version: kv.APIVersion},
		IntegratedTime:    a.Payload.IntegratedTime,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: a.SignedEntryTimestamp},
		CanonicalizedBody: body,
	}, nil
}

// envelopeTimestamped is a `.att` entity whose RFC 3161 timestamp covers
// the whole envelope JSON, as cosign v2 timestamped attestations (v3 and
// seal timestamp the DSSE signature, as bundles do). Either proves the
// signature existed at that time.
type envelopeTimestamped struct {
	*bundle.Bundle
	envelope []byte
}

func (e *envelopeTimestamped) SignatureContent() (sgverify.SignatureContent, error) {
	sc, err := e.Bundle.SignatureContent()
	if err != nil {
		return nil, err
	}
	return envelopeSignature{SignatureContent: sc, raw: e.envelope}, nil
}

type envelopeSignature struct {
	sgverify.SignatureContent
	raw []byte
}

// Signature is what the timestamp was taken over; the envelope itself is
// still verified through EnvelopeContent.
func (s envelopeSignature) Signature() []byte { return s.raw }
