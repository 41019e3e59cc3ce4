package index

import (
	"context"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/pkg/fault"
)

// Kind says what a manifest is to seal.
type Kind string

const (
	KindIndex       Kind = "index"       // an image index or Docker manifest list
	KindImage       Kind = "image"       // a platform image manifest
	KindAttestation Kind = "attestation" // a BuildKit attestation manifest
	KindArtifact    Kind = "artifact"    // any other manifest (seen only by Describe)
)

// Source is what one SOURCE reference of `seal index create` resolved to,
// reduced to the leaf manifests that go into the merged index.
type Source struct {
	// Ref is the reference as the user wrote it; errors and Entry.Source name it.
	Ref string
	// Descriptor is what Ref resolved to, with the media type read from the manifest.
	Descriptor v1.Descriptor
	// Children are the platform image manifests and attestation manifests
	// found under Descriptor, in the order they appear (nested indexes
	// flattened depth-first). An image manifest source is its own only child.
	Children []Child
}

// Child is one leaf manifest of a source.
type Child struct {
	// Descriptor is the descriptor as it goes into the merged index: the
	// source index's descriptor unchanged (annotations, artifactType), with the
	// platform filled in from the image config when the source did not give one.
	Descriptor v1.Descriptor
	Kind       Kind // KindImage or KindAttestation
	// Subject is, for an attestation, the digest of the platform manifest it
	// attests (its vnd.docker.reference.digest annotation).
	Subject v1.Hash
}

// Gather reads what ref (resolved to desc) holds, through f scoped to ref's
// repository, and classifies it. It fetches the manifest desc names, nested
// indexes, and, only for image manifests without a platform in their
// descriptor, the manifest and config that name it. Attestation manifests are
// not fetched: their descriptor says all Merge needs.
//
// Input errors (fault.Input) name ref: a manifest that is neither an image nor
// an index (an artifact, a schema 1 manifest, a blob), an image without a
// platform, an attestation descriptor without a valid subject digest, and a
// source that holds no platform image manifest.
func Gather(ctx context.Context, f Fetcher, ref string, desc v1.Descriptor) (Source, error) {
	f = withBudget(f)
	m, err := fetchManifest(ctx, f, desc)
	if err != nil {
		return Source{}, fmt.Errorf("source %s: %w", ref, err)
	}
	src := Source{Ref: ref, Descriptor: m.desc}
	switch {
	case m.mediaType.IsIndex():
		if err := gatherIndex(ctx, f, m, &src, 1); err != nil {
			return Source{}, fmt.Errorf("source %s: %w", ref, err)
		}
	case isImageManifest(m.mediaType):
		c, err := gatherImage(ctx, f, m)
		if err != nil {
			return Source{}, fmt.Errorf("source %s: %w", ref, err)
		}
		src.Children = []Child{c}
	default:
		return Source{}, fault.Inputf("source %s: %s is neither an image manifest nor an index (media type %q)", ref, desc.Digest, m.mediaType)
	}
	if err := src.check(); err != nil {
		return Source{}, err
	}
	return src, nil
}

// gatherImage classifies an image manifest given as a source (or listed
// without a platform): its platform comes from its descriptor or its config.
func gatherImage(ctx context.Context, f Fetcher, m *manifest) (Child, error) {
	d := m.desc
	if !hasPlatform(d.Platform) {
		p, err := imagePlatform(ctx, f, m)
		if err != nil {
			return Child{}, err
		}
		d.Platform = &p
	}
	return Child{Descriptor: d, Kind: KindImage}, nil
}

func gatherIndex(ctx context.Context, f Fetcher, m *manifest, src *Source, depth int) error {
	var idx v1.IndexManifest
	if err := json.Unmarshal(m.raw, &idx); err != nil {
		return fault.Inputf("%s: malformed index: %v", m.desc.Digest, err)
	}
	if err := list(f, len(idx.Manifests)); err != nil {
		return fmt.Errorf("%s: %w", m.desc.Digest, err)
	}
	for i, d := range idx.Manifests {
		if err := checkEntry(m.desc.Digest, i, d); err != nil {
			return err
		}
		switch {
		case IsAttestation(d):
			if !isImageManifest(d.MediaType) {
				return fault.Inputf("%s: attestation manifest %s has media type %q, not an image manifest", m.desc.Digest, d.Digest, d.MediaType)
			}
			subject, ok := AttestationSubject(d)
			if !ok {
				return fault.Inputf("%s: attestation manifest %s has no valid %s annotation (%q)",
					m.desc.Digest, d.Digest, AnnotationReferenceDigest, d.Annotations[AnnotationReferenceDigest])
			}
			src.Children = append(src.Children, Child{Descriptor: d, Kind: KindAttestation, Subject: subject})
		case d.MediaType.IsIndex():
			if depth >= maxDepth {
				return fault.Inputf("%s: indexes nested more than %d deep", m.desc.Digest, maxDepth)
			}
			nested, err := fetchManifest(ctx, f, d)
			if err != nil {
				return err
			}
			if !nested.mediaType.IsIndex() {
				return fault.Inputf("%s: %s is listed as %s but is %s", m.desc.Digest, d.Digest, d.MediaType, nested.mediaType)
			}
			if err := gatherIndex(ctx, f, nested, src, depth+1); err != nil {
				return err
			}
		case isImageManifest(d.MediaType) && hasPlatform(d.Platform):
			src.Children = append(src.Children, Child{Descriptor: d, Kind: KindImage})
		case isImageManifest(d.MediaType):
			child, err := fetchManifest(ctx, f, d)
			if err != nil {
				return err
			}
			c, err := gatherImage(ctx, f, child)
			if err != nil {
				return err
			}
			c.Descriptor.MediaType = d.MediaType // as listed, which Push uses
			src.Children = append(src.Children, c)
		default:
			return fault.Inputf("%s: child %s is neither an image manifest nor an index (media type %q)", m.desc.Digest, d.Digest, d.MediaType)
		}
	}
	return nil
}

// check holds the rules every source obeys, whether gathered or built by hand.
func (s Source) check() error {
	for _, c := range s.Children {
		if c.Kind == KindImage {
			return nil
		}
	}
	return fault.Inputf("source %s: %s holds no platform image manifest", s.Ref, s.Descriptor.Digest)
}
