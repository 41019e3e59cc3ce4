package index

import (
	"context"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/pkg/fault"
)

// Tree is what `seal inspect` shows of one manifest: an index with its
// platform manifests, each with its attestation manifests, each node with the
// referrers attached to it.
type Tree struct {
	Digest       v1.Hash           `json:"digest"`
	MediaType    string            `json:"mediaType"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Kind         Kind              `json:"kind"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	// Platform of an image, or of the image an attestation attests.
	Platform string `json:"platform,omitempty"`
	// Subject is the platform manifest an attestation attests.
	Subject *v1.Hash `json:"subject,omitempty"`
	// PredicateTypes of an attestation's in-toto layers, in layer order.
	PredicateTypes []string `json:"predicateTypes,omitempty"`
	// Manifests of an index: platform manifests and nested indexes, plus any
	// attestation or artifact whose subject is not among them.
	Manifests []*Tree `json:"manifests,omitempty"`
	// Attestations of a platform manifest, from the index that lists both.
	Attestations []*Tree `json:"attestations,omitempty"`
	// Referrers attached to this manifest; Describe leaves it empty for the
	// piece that discovers signatures and attestations to fill.
	Referrers []Referrer `json:"referrers,omitempty"`
}

// Referrer is an artifact attached to a manifest: an OCI 1.1 referrer (a
// Sigstore bundle) or a cosign legacy tag (.sig, .att).
type Referrer struct {
	Digest        v1.Hash `json:"digest"`
	MediaType     string  `json:"mediaType"`
	ArtifactType  string  `json:"artifactType,omitempty"`
	PredicateType string  `json:"predicateType,omitempty"`
	// Format: "bundle", "legacy-sig" or "legacy-att".
	Format string `json:"format"`
	// Tag is the legacy tag the artifact was found under, if any.
	Tag string `json:"tag,omitempty"`
	// PredicateTypes of a legacy-att image's layers, as annotated.
	PredicateTypes []string `json:"predicateTypes,omitempty"`
}

// Describe builds the tree under desc, reading through f scoped to its
// repository. It fetches indexes, attestation manifests (for their predicate
// types), and the manifest and config of an image only when nothing above it
// names its platform. Predicate types come from each layer's
// in-toto.io/predicate-type annotation or, when a layer has none, from the
// in-toto statement in the layer.
func Describe(ctx context.Context, f Fetcher, desc v1.Descriptor) (*Tree, error) {
	return describe(ctx, withBudget(f), desc, 1)
}

func describe(ctx context.Context, f Fetcher, desc v1.Descriptor, depth int) (*Tree, error) {
	m, err := fetchManifest(ctx, f, desc)
	if err != nil {
		return nil, err
	}
	t := node(m.desc)
	switch {
	case m.mediaType.IsIndex():
		t.Kind = KindIndex
		if err := describeIndex(ctx, f, m, t, depth); err != nil {
			return nil, err
		}
	case isImageManifest(m.mediaType):
		if err := describeManifest(ctx, f, m, t); err != nil {
			return nil, err
		}
	default:
		return nil, fault.Inputf("%s is neither an image manifest nor an index (media type %q)", desc.Digest, m.mediaType)
	}
	return t, nil
}

func node(d v1.Descriptor) *Tree {
	t := &Tree{
		Digest:       d.Digest,
		MediaType:    string(d.MediaType),
		Size:         d.Size,
		ArtifactType: d.ArtifactType,
		Annotations:  d.Annotations,
	}
	if hasPlatform(d.Platform) {
		t.Platform = FormatPlatform(d.Platform)
	}
	return t
}

// describeManifest fills in what an image manifest is when its descriptor did
// not say: an attestation, a platform image, or some other artifact.
func describeManifest(ctx context.Context, f Fetcher, m *manifest, t *Tree) error {
	var im v1.Manifest
	if err := json.Unmarshal(m.raw, &im); err != nil {
		return fault.Inputf("%s: malformed image manifest: %v", m.desc.Digest, err)
	}
	if t.ArtifactType == "" {
		t.ArtifactType = im.ArtifactType
	}
	if im.ArtifactType == ArtifactTypeAttestation {
		t.Kind = KindAttestation
		if im.Subject != nil {
			s := im.Subject.Digest
			t.Subject = &s
		}
		return predicateTypes(ctx, f, &im, t)
	}
	if t.Platform != "" {
		t.Kind = KindImage
		return nil
	}
	t.Kind = KindArtifact
	if im.ArtifactType != "" || !im.Config.MediaType.IsConfig() {
		return nil
	}
	p, err := configPlatform(ctx, f, m.desc.Digest, &im)
	if err != nil {
		return err
	}
	switch {
	case hasPlatform(&p):
		t.Kind = KindImage
		t.Platform = FormatPlatform(&p)
	case allInToto(im.Layers):
		// BuildKit's older layout: a dummy unknown/unknown image config over
		// in-toto layers, and no subject (only the index says what it attests).
		t.Kind = KindAttestation
		return predicateTypes(ctx, f, &im, t)
	}
	return nil
}

func allInToto(layers []v1.Descriptor) bool {
	for _, l := range layers {
		if l.MediaType != MediaTypeInToto {
			return false
		}
	}
	return len(layers) > 0
}

func describeIndex(ctx context.Context, f Fetcher, m *manifest, t *Tree, depth int) error {
	var idx v1.IndexManifest
	if err := json.Unmarshal(m.raw, &idx); err != nil {
		return fault.Inputf("%s: malformed index: %v", m.desc.Digest, err)
	}
	if err := list(f, len(idx.Manifests)); err != nil {
		return fmt.Errorf("%s: %w", m.desc.Digest, err)
	}
	images := map[v1.Hash]*Tree{}
	var atts []*Tree
	for i, d := range idx.Manifests {
		if err := checkEntry(m.desc.Digest, i, d); err != nil {
			return err
		}
		switch {
		case IsAttestation(d):
			a, err := describeAttestation(ctx, f, d)
			if err != nil {
				return err
			}
			atts = append(atts, a)
		case d.MediaType.IsIndex():
			if depth >= maxDepth {
				return fault.Inputf("%s: indexes nested more than %d deep", m.desc.Digest, maxDepth)
			}
			sub, err := describe(ctx, f, d, depth+1)
			if err != nil {
				return err
			}
			t.Manifests = append(t.Manifests, sub)
		case isImageManifest(d.MediaType) && hasPlatform(d.Platform):
			c := node(d)
			c.Kind = KindImage
			images[d.Digest] = c
			t.Manifests = append(t.Manifests, c)
		default:
			// An image manifest listed without a platform, or something else:
			// look at it to say what it is.
			sub, err := describe(ctx, f, d, depth+1)
			if err != nil {
				return err
			}
			if sub.Kind == KindImage {
				images[d.Digest] = sub
			}
			t.Manifests = append(t.Manifests, sub)
		}
	}
	for _, a := range atts {
		im := images[*a.Subject]
		if im == nil {
			t.Manifests = append(t.Manifests, a) // attests nothing in this index
			continue
		}
		a.Platform = im.Platform
		im.Attestations = append(im.Attestations, a)
	}
	return nil
}

func describeAttestation(ctx context.Context, f Fetcher, d v1.Descriptor) (*Tree, error) {
	subject, ok := AttestationSubject(d)
	if !ok {
		return nil, fault.Inputf("attestation manifest %s has no valid %s annotation", d.Digest, AnnotationReferenceDigest)
	}
	m, err := fetchManifest(ctx, f, d)
	if err != nil {
		return nil, err
	}
	if !isImageManifest(m.mediaType) {
		return nil, fault.Inputf("attestation manifest %s has media type %q, not an image manifest", d.Digest, m.mediaType)
	}
	var im v1.Manifest
	if err := json.Unmarshal(m.raw, &im); err != nil {
		return nil, fault.Inputf("attestation manifest %s: malformed: %v", d.Digest, err)
	}
	t := node(m.desc)
	t.Platform = "" // unknown/unknown: the attested platform is filled in from the subject
	t.Kind = KindAttestation
	if t.ArtifactType == "" {
		t.ArtifactType = im.ArtifactType
	}
	t.Subject = &subject
	if err := predicateTypes(ctx, f, &im, t); err != nil {
		return nil, err
	}
	return t, nil
}

// predicateTypes lists the predicate types of an attestation manifest's
// in-toto layers, without repeats.
func predicateTypes(ctx context.Context, f Fetcher, im *v1.Manifest, t *Tree) error {
	seen := map[string]bool{}
	for _, l := range im.Layers {
		pt := l.Annotations[AnnotationPredicateType]
		if pt == "" {
			if l.MediaType != MediaTypeInToto {
				continue
			}
			raw, err := fetchBlob(ctx, f, l, maxStatement)
			if err != nil {
				return fmt.Errorf("attestation manifest %s: %w", t.Digest, err)
			}
			var st struct {
				PredicateType string `json:"predicateType"`
			}
			if err := json.Unmarshal(raw, &st); err != nil || st.PredicateType == "" {
				return fault.Inputf("attestation manifest %s: layer %s is not an in-toto statement", t.Digest, l.Digest)
			}
			pt = st.PredicateType
		}
		if !seen[pt] {
			seen[pt] = true
			t.PredicateTypes = append(t.PredicateTypes, pt)
		}
	}
	return nil
}
