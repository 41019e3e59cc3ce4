package index

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

// Options shape the merged index.
type Options struct {
	// Platforms, when not empty, keeps only the platform manifests matching one
	// of them, and their attestation manifests. See matchPlatform for how a
	// filter matches (a filter without a variant keeps every variant).
	Platforms []v1.Platform
	// Annotations are set on the index itself.
	Annotations map[string]string
}

// Result is a merged index and what Push needs to put it in place: copy each
// entry's manifest (and what it references) from its source's repository into
// the target, then push Raw with MediaType, then tag.
type Result struct {
	// Descriptor of the index: MediaType, Size and Digest of Raw.
	Descriptor v1.Descriptor
	// Raw is the index manifest exactly as it must be pushed.
	Raw []byte
	// Entries are the index's manifests, in the index's order.
	Entries []Entry
}

// Entry is one manifest of the merged index.
type Entry struct {
	// Descriptor is the entry exactly as it is in the index.
	Descriptor v1.Descriptor `json:"-"`
	Digest     v1.Hash       `json:"digest"`
	// Platform is the platform the manifest is for: its own for an image, its
	// subject's for an attestation (whose descriptor says unknown/unknown).
	Platform string `json:"platform"`
	Kind     Kind   `json:"kind"`
	// Subject is the platform manifest an attestation attests.
	Subject *v1.Hash `json:"subject,omitempty"`
	// Source is the Ref of the first source that holds the manifest; Push
	// copies it from that source's repository.
	Source string `json:"source"`
}

// Merge builds one flat index from sources:
//
//   - every platform image manifest and every attestation manifest of every
//     source, nested indexes flattened; attestation descriptors unchanged
//     (annotations, platform unknown/unknown);
//   - a manifest found in several sources (the same digest) is listed once,
//     with the descriptor and Source of its first occurrence;
//   - order: platform manifests in the order they first appear, sources taken
//     in argument order, each followed by its attestation manifests in the
//     order they appear. So the same sources give byte-identical JSON (and the
//     same digest), and reordered arguments give a different but equally
//     stable order;
//   - with Options.Platforms, only matching platforms and their attestations
//     are kept; a filter matching nothing is an input error listing the
//     platforms available;
//   - two different manifests for the same platform (see platformKey) among
//     those kept is an input error naming both sources;
//   - an attestation whose subject is not among the kept platform manifests
//     is dropped when its subject was filtered out or when a platform filter
//     is given (it attests nothing that was asked for), else it is an input
//     error;
//   - the media type is a Docker manifest list when every entry is a Docker
//     schema 2 manifest, else an OCI image index. A Docker manifest list has no
//     annotations, so asking for them then is an input error.
func Merge(sources []Source, opts Options) (*Result, error) {
	if len(sources) == 0 {
		return nil, fault.Inputf("no source to merge")
	}
	for k := range opts.Annotations {
		if k == "" {
			return nil, fault.Inputf("index annotation with an empty key")
		}
	}
	images, atts, err := collect(sources)
	if err != nil {
		return nil, err
	}
	kept, err := filter(images, opts.Platforms)
	if err != nil {
		return nil, err
	}
	if err := noConflict(kept); err != nil {
		return nil, err
	}

	isKept, isImage := map[v1.Hash]bool{}, map[v1.Hash]bool{}
	for _, im := range images {
		isImage[im.child.Descriptor.Digest] = true
	}
	for _, im := range kept {
		isKept[im.child.Descriptor.Digest] = true
	}
	bySubject := map[v1.Hash][]held{}
	for _, a := range atts {
		switch {
		case isKept[a.child.Subject]:
			bySubject[a.child.Subject] = append(bySubject[a.child.Subject], a)
		case isImage[a.child.Subject], len(opts.Platforms) > 0:
			// Its platform was filtered out, or a filter is given and it
			// attests none of the platforms asked for.
		default:
			return nil, fault.Inputf("source %s: attestation manifest %s refers to %s, which no source holds as a platform manifest",
				a.source, a.child.Descriptor.Digest, a.child.Subject)
		}
	}

	res := &Result{}
	allDocker := true
	for _, im := range kept {
		res.add(im.child, im.source, im.child.Descriptor.Platform)
		allDocker = allDocker && im.child.Descriptor.MediaType == types.DockerManifestSchema2
		for _, a := range bySubject[im.child.Descriptor.Digest] {
			res.add(a.child, a.source, im.child.Descriptor.Platform)
			allDocker = allDocker && a.child.Descriptor.MediaType == types.DockerManifestSchema2
		}
	}
	mt := types.OCIImageIndex
	if allDocker {
		mt = types.DockerManifestList
		if len(opts.Annotations) > 0 {
			return nil, fault.Inputf("every source manifest uses Docker media types, and a Docker manifest list cannot carry index annotations")
		}
	}
	if err := res.encode(mt, opts.Annotations); err != nil {
		return nil, err
	}
	return res, nil
}

// collect lists the platform and attestation manifests of sources, each
// digest once (its first occurrence), in order.
func collect(sources []Source) (images, atts []held, err error) {
	seen := map[v1.Hash]held{}
	for _, s := range sources {
		if err := s.check(); err != nil {
			return nil, nil, err
		}
		for _, c := range s.Children {
			if first, dup := seen[c.Descriptor.Digest]; dup {
				if first.child.Kind != c.Kind {
					return nil, nil, fault.Inputf("%s is %s in source %s but %s in source %s",
						c.Descriptor.Digest, article(first.child.Kind), first.source, article(c.Kind), s.Ref)
				}
				continue
			}
			h := held{child: c, source: s.Ref}
			seen[c.Descriptor.Digest] = h
			switch c.Kind {
			case KindImage:
				if !hasPlatform(c.Descriptor.Platform) {
					return nil, nil, fault.Inputf("source %s: image manifest %s has no platform", s.Ref, c.Descriptor.Digest)
				}
				images = append(images, h)
			case KindAttestation:
				atts = append(atts, h)
			default:
				return nil, nil, fault.Inputf("source %s: %s is %s, which an index cannot list", s.Ref, c.Descriptor.Digest, article(c.Kind))
			}
		}
	}
	return images, atts, nil
}

// filter keeps the images matching any of platforms (all when none is given);
// every platform must match at least one image.
func filter(images []held, platforms []v1.Platform) ([]held, error) {
	if len(platforms) == 0 {
		return images, nil
	}
	for _, want := range platforms {
		if !anyMatch(want, images) {
			return nil, fault.Inputf("platform %s matches no source manifest (available: %s)",
				FormatPlatform(&want), available(images))
		}
	}
	var kept []held
	for _, im := range images {
		if matchAny(platforms, *im.child.Descriptor.Platform) {
			kept = append(kept, im)
		}
	}
	return kept, nil
}

// noConflict fails when two different manifests are for the same platform.
func noConflict(images []held) error {
	byKey := map[string]held{}
	for _, im := range images {
		p := im.child.Descriptor.Platform
		k := platformKey(*p)
		if other, clash := byKey[k]; clash {
			return fault.Inputf("platform %s: two different manifests, %s from source %s and %s from source %s",
				FormatPlatform(p), other.child.Descriptor.Digest, other.source, im.child.Descriptor.Digest, im.source)
		}
		byKey[k] = im
	}
	return nil
}

// encode writes the index. encoding/json writes struct fields in declaration
// order and map keys sorted, so the bytes depend only on the entries and
// annotations.
func (r *Result) encode(mt types.MediaType, annotations map[string]string) error {
	descs := make([]v1.Descriptor, len(r.Entries))
	for i, e := range r.Entries {
		descs[i] = e.Descriptor
	}
	raw, err := json.Marshal(indexJSON{SchemaVersion: 2, MediaType: mt, Manifests: descs, Annotations: annotations})
	if err != nil {
		return fmt.Errorf("encode index: %w", err)
	}
	sum := sha256.Sum256(raw)
	r.Raw = raw
	r.Descriptor = v1.Descriptor{
		MediaType: mt,
		Size:      int64(len(raw)),
		Digest:    v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])},
	}
	return nil
}

// indexJSON is an OCI image index / Docker manifest list, without the
// optional fields seal never sets.
type indexJSON struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType"`
	Manifests     []v1.Descriptor   `json:"manifests"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

func (r *Result) add(c Child, source string, platform *v1.Platform) {
	e := Entry{
		Descriptor: c.Descriptor,
		Digest:     c.Descriptor.Digest,
		Platform:   FormatPlatform(platform),
		Kind:       c.Kind,
		Source:     source,
	}
	if c.Kind == KindAttestation {
		s := c.Subject
		e.Subject = &s
	}
	r.Entries = append(r.Entries, e)
}

// held is a child with the source it was first found in.
type held struct {
	child  Child
	source string
}

func matchAny(filters []v1.Platform, p v1.Platform) bool {
	for _, want := range filters {
		if matchPlatform(want, p) {
			return true
		}
	}
	return false
}

func anyMatch(want v1.Platform, images []held) bool {
	for _, im := range images {
		if matchPlatform(want, *im.child.Descriptor.Platform) {
			return true
		}
	}
	return false
}

// available lists the distinct platforms of images, in order.
func available(images []held) string {
	var out []string
	seen := map[string]bool{}
	for _, im := range images {
		p := FormatPlatform(im.child.Descriptor.Platform)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return strings.Join(out, ", ")
}

func article(k Kind) string {
	if k == "" {
		return "of no kind"
	}
	if strings.ContainsAny(string(k)[:1], "aeiou") {
		return "an " + string(k)
	}
	return "a " + string(k)
}
