package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/signing"
)

// evidence is one signed artifact found attached to a manifest: a Sigstore
// bundle referrer, or one layer of a cosign legacy tag. Nothing in it is
// trusted until signer() says who signed it.
type evidence struct {
	format string  // "bundle" or "legacy"
	source string  // where it was found: repo@digest of the referrer, or the legacy tag
	digest v1.Hash // of the referrer manifest or the legacy layer
	// announced is the predicate type the referrer's annotation claims
	// (empty when it claims none): a claim, used to tell an attestation
	// that did not say what it is from one posing as something else.
	announced string
	// err is why it cannot count at all: it could not be fetched intact,
	// or it is not what it claims to be.
	err error

	entity sgverify.SignedEntity
	// alt is a second reading of a legacy `.att` whose timestamp covers the
	// envelope (cosign v2), tried when the first does not verify.
	alt      sgverify.SignedEntity
	artifact artifactFunc

	statement *attestation.Statement        // DSSE (bundle or `.att`)
	payload   []byte                        // the DSSE payload: the statement's JSON
	simple    *payload.SimpleContainerImage // legacy `.sig`

	checked bool
	who     signer
	verr    error
}

// signer verifies the evidence (once) and says who signed it.
func (e *evidence) signer(v *Verifier) (signer, error) {
	if !e.checked {
		e.checked = true
		e.who, e.verr = v.check(e.entity, e.artifact)
		if e.verr != nil && e.alt != nil {
			if who, err := v.check(e.alt, e.artifact); err == nil {
				e.who, e.verr = who, nil
			}
		}
	}
	return e.who, e.verr
}

// claimed is the identity the evidence's certificate claims, unverified:
// shown next to the reason it did not verify, never trusted.
func (e *evidence) claimed() (identity, issuer string) {
	if e.entity == nil {
		return "", ""
	}
	vc, err := e.entity.VerificationContent()
	if err != nil || vc.Certificate() == nil {
		return "", ""
	}
	if len(vc.Certificate().URIs) > 0 {
		identity = vc.Certificate().URIs[0].String()
	} else if len(vc.Certificate().EmailAddresses) > 0 {
		identity = vc.Certificate().EmailAddresses[0]
	}
	if identity == "" {
		return "", ""
	}
	return identity + " (unverified)", ""
}

// subject is a manifest whose attachments are examined, with what was
// already read about it.
type subject struct {
	digest    v1.Hash
	listed    bool
	referrers []v1.Descriptor
	manifests map[v1.Hash]*referrer // referrer manifests read
	bundles   map[v1.Hash]*evidence // bundles read, by referrer digest
	legacy    map[signing.LegacyKind]*legacyTag
}

// referrer is a referrer manifest as read: a bundle referrer, something
// else, or unreadable.
type referrer struct {
	bundle *signing.BundleRef
	other  bool
	err    error
}

// legacyTag is a cosign `.sig`/`.att` tag as read.
type legacyTag struct {
	source string
	layers []v1.Descriptor
	err    error
	read   map[v1.Hash]*evidence
}

func (r *run) subject(d v1.Hash) *subject {
	s, ok := r.subjects[d]
	if !ok {
		s = &subject{digest: d, manifests: map[v1.Hash]*referrer{}, bundles: map[v1.Hash]*evidence{},
			legacy: map[signing.LegacyKind]*legacyTag{}}
		r.subjects[d] = s
	}
	return s
}

// operational tells registry failures that stop the image (unreachable,
// refused, timeout) from content that cannot be fetched intact, which only
// makes one piece of evidence not count.
func operational(err error) bool {
	k := fault.KindOf(err)
	return k == fault.Operational || k == fault.Unknown
}

// bundles returns the Sigstore bundles attached to d as OCI referrers whose
// predicate type want accepts (or does not announce one). Only operational
// failures are returned as errors.
func (r *run) bundles(ctx context.Context, d v1.Hash, want func(string) bool) ([]*evidence, error) {
	s := r.subject(d)
	if !s.listed {
		refs, err := r.c.Referrers(ctx, r.repo.Digest(d.String()))
		if err != nil {
			if operational(err) {
				return nil, err
			}
			r.failf("referrers of %s cannot be read intact: %v", d, err)
		}
		s.listed, s.referrers = true, refs
	}
	var out []*evidence
	seen := map[v1.Hash]bool{}
	for _, desc := range s.referrers {
		// A fallback tag index can list one referrer twice; it is one
		// signature.
		if seen[desc.Digest] || excluded(desc, want) {
			continue
		}
		seen[desc.Digest] = true
		ref, err := r.referrer(ctx, s, desc)
		if err != nil {
			return nil, err
		}
		switch {
		case ref.other:
			continue
		case ref.err != nil:
			out = append(out, &evidence{format: "bundle", source: r.repo.Digest(desc.Digest.String()).String(), digest: desc.Digest, err: ref.err})
			continue
		case ref.bundle.PredicateType != "" && !want(ref.bundle.PredicateType):
			continue
		}
		e, ok := s.bundles[desc.Digest]
		if !ok {
			if e, err = r.readBundle(ctx, d, desc, ref.bundle); err != nil {
				return nil, err
			}
			s.bundles[desc.Digest] = e
		}
		out = append(out, e)
	}
	return out, nil
}

// excluded reports whether a referrer listing already shows the referrer is
// of no interest: an artifact type that is not a bundle (registries that
// report the config media type instead, as go-containerregistry's does,
// report the empty config here), or an announced predicate type not wanted.
// A listing can only hide evidence this way, never make any count.
func excluded(d v1.Descriptor, want func(string) bool) bool {
	at := d.ArtifactType
	if at != "" && !isBundleType(at) && at != signing.EmptyMediaType {
		return true
	}
	if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
		return true
	}
	if pt, ok := d.Annotations[signing.AnnotationPredicateType]; ok && pt != "" && !want(pt) {
		return true
	}
	return false
}

func isBundleType(mt string) bool {
	return mt == signing.BundleMediaType || strings.HasPrefix(mt, "application/vnd.dev.sigstore.bundle+json;version=")
}

// referrer reads a referrer manifest once.
func (r *run) referrer(ctx context.Context, s *subject, desc v1.Descriptor) (*referrer, error) {
	if ref, ok := s.manifests[desc.Digest]; ok {
		return ref, nil
	}
	ref := &referrer{}
	m, err := r.c.Manifest(ctx, r.repo.Digest(desc.Digest.String()))
	switch {
	case err != nil && operational(err):
		return nil, err
	case err != nil:
		ref.err = fmt.Errorf("referrer %s cannot be fetched intact: %v", desc.Digest, err)
	default:
		var peek struct {
			ArtifactType string `json:"artifactType"`
			Config       struct {
				MediaType string `json:"mediaType"`
			} `json:"config"`
		}
		_ = json.Unmarshal(m.Raw, &peek)
		at := peek.ArtifactType
		if at == "" {
			at = peek.Config.MediaType
		}
		if m.Descriptor.MediaType != types.OCIManifestSchema1 || !isBundleType(at) {
			ref.other = true
			break
		}
		ref.bundle, ref.err = signing.ParseBundleReferrer(m.Raw, s.digest)
	}
	s.manifests[desc.Digest] = ref
	return ref, nil
}

// readBundle fetches and decodes a bundle referrer's bundle.
func (r *run) readBundle(ctx context.Context, d v1.Hash, desc v1.Descriptor, ref *signing.BundleRef) (*evidence, error) {
	e := &evidence{format: "bundle", source: r.repo.Digest(desc.Digest.String()).String(), digest: desc.Digest,
		announced: ref.PredicateType}
	data, err := r.c.BlobBytes(ctx, r.repo, ref.Layer, signing.MaxBundleSize)
	if err != nil {
		if operational(err) {
			return nil, err
		}
		e.err = fmt.Errorf("bundle %s cannot be fetched intact: %v", ref.Layer.Digest, err)
		return e, nil
	}
	b, err := signing.ParseBundle(data, ref.Layer)
	if err != nil {
		e.err = err
		return e, nil
	}
	e.entity = b
	st, err := signing.BundleStatement(b)
	if err != nil {
		e.err = err
		return e, nil
	}
	e.statement, e.payload = st, b.GetDsseEnvelope().GetPayload()
	e.artifact = digestArtifact(d)
	return e, nil
}

// digestArtifact is the artifact policy of a DSSE statement about manifest d:
// sigstore-go checks the statement names d as a subject (so does this
// package, explicitly, before).
func digestArtifact(d v1.Hash) artifactFunc {
	raw, _ := hexBytes(d.Hex)
	return func() sgverify.ArtifactPolicyOption { return sgverify.WithArtifactDigest(d.Algorithm, raw) }
}

// legacy returns the layers of d's cosign legacy tag of kind whose
// predicate type want accepts (`.att`; every layer of `.sig`).
func (r *run) legacy(ctx context.Context, d v1.Hash, kind signing.LegacyKind, want func(string) bool) ([]*evidence, error) {
	s := r.subject(d)
	lt, ok := s.legacy[kind]
	if !ok {
		tag, err := oci.LegacyTag(r.repo.Digest(d.String()), "."+string(kind))
		if err != nil {
			return nil, err
		}
		lt = &legacyTag{source: tag.String(), read: map[v1.Hash]*evidence{}}
		m, err := r.c.Manifest(ctx, tag)
		switch {
		case oci.IsNotFound(err):
		case err != nil && operational(err):
			return nil, err
		case err != nil:
			lt.err = fmt.Errorf("%s cannot be fetched intact: %v", tag, err)
		default:
			lt.layers, lt.err = signing.ParseLegacyManifest(m.Raw, kind)
		}
		s.legacy[kind] = lt
	}
	if lt.err != nil {
		return []*evidence{{format: "legacy", source: lt.source, err: lt.err}}, nil
	}
	var out []*evidence
	for _, l := range lt.layers {
		if kind == signing.LegacyAttestation && !want(l.Annotations[signing.AnnotationAttPredicateType]) {
			continue
		}
		e, ok := lt.read[l.Digest]
		if !ok {
			var err error
			if e, err = r.readLegacy(ctx, d, kind, lt.source, l); err != nil {
				return nil, err
			}
			lt.read[l.Digest] = e
		}
		out = append(out, e)
	}
	return out, nil
}

func (r *run) readLegacy(ctx context.Context, d v1.Hash, kind signing.LegacyKind, source string, l v1.Descriptor) (*evidence, error) {
	e := &evidence{format: "legacy", source: source, digest: l.Digest}
	max := int64(signing.MaxLegacyPayloadSize)
	data, err := r.c.BlobBytes(ctx, r.repo, l, max)
	if err != nil {
		if operational(err) {
			return nil, err
		}
		e.err = fmt.Errorf("%s layer %s cannot be fetched intact: %v", source, l.Digest, err)
		return e, nil
	}
	if kind == signing.LegacySignature {
		// The check that matters most, made here in so many words: a
		// simple-signing payload copied from another image's tag names
		// that image.
		var ss payload.SimpleContainerImage
		if err := json.NewDecoder(bytes.NewReader(data)).Decode(&ss); err != nil {
			e.err = fmt.Errorf("legacy signature payload: %v", err)
			return e, nil
		}
		if got := ss.Critical.Image.DockerManifestDigest; got != d.String() {
			e.err = fmt.Errorf("legacy signature payload signs %s (docker-manifest-digest), not the image digest %s", got, d)
			return e, nil
		}
	}
	p, err := signing.ParseLegacyLayer(kind, l, data, d)
	if err != nil {
		e.err = err
		return e, nil
	}
	b, err := legacyEntity(p, kind)
	if err != nil {
		e.err = err
		return e, nil
	}
	e.entity = b
	switch kind {
	case signing.LegacySignature:
		e.simple = p.SimpleSigning
		signed := p.Payload
		e.artifact = func() sgverify.ArtifactPolicyOption { return sgverify.WithArtifact(bytes.NewReader(signed)) }
	case signing.LegacyAttestation:
		env := b.GetDsseEnvelope()
		st, err := attestation.ParseStatement(env.GetPayload())
		if err != nil {
			e.err = err
			return e, nil
		}
		e.statement, e.payload = st, env.GetPayload()
		e.artifact = digestArtifact(d)
		if len(p.RFC3161Timestamp) > 0 && len(p.RekorBundle) == 0 {
			e.alt = &envelopeTimestamped{Bundle: b, envelope: p.Payload}
		}
	}
	return e, nil
}
