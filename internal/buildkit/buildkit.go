// Package buildkit generates, in memory, what BuildKit pushes for one
// per-platform build with attestations: an OCI index holding the platform
// image manifest and its attestation manifest (SLSA v1 provenance, optionally
// an SPDX SBOM), byte for byte in BuildKit's layout and JSON style.
//
// It exists so the demo, tests and benchmarks can make any number of
// per-platform pushes without a BuildKit daemon, while staying the shape real
// CI produces (testdata/buildkit holds the real BuildKit v0.34.2 output this
// package is checked against). The image is what this Dockerfile builds:
//
//	FROM scratch
//	ARG TARGETARCH
//	ARG TARGETVARIANT
//	ARG COMPONENT
//	COPY hello-${TARGETARCH}${TARGETVARIANT}.txt /hello.txt
//	LABEL org.opencontainers.image.source=<Source> org.opencontainers.image.title=${COMPONENT}
//
// The same Options give the same bytes, hence the same digests.
package buildkit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/pkg/fault"
)

// Layout is how the attestation manifest is shaped.
type Layout int

const (
	// LayoutArtifact is BuildKit's default: the attestation manifest is an OCI
	// artifact (artifactType application/vnd.docker.attestation.manifest.v1+json,
	// the empty config, and a subject naming the image manifest).
	LayoutArtifact Layout = iota
	// LayoutDummyConfig is the older layout (exporter option
	// oci-artifact=false): an image-shaped manifest whose config is a dummy
	// unknown/unknown image config listing the statements as diff_ids, and no
	// subject.
	LayoutDummyConfig
)

func (l Layout) String() string {
	switch l {
	case LayoutArtifact:
		return "artifact"
	case LayoutDummyConfig:
		return "dummy-config"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

// Provenance selects the provenance attestation.
type Provenance int

const (
	// ProvenanceMax is attest:provenance=mode=max with SLSA v1, as in the
	// fixtures: build arguments, the LLB definition, the Dockerfile source
	// map and the layer map.
	ProvenanceMax Provenance = iota
	// ProvenanceNone leaves provenance out (then SBOM must be set: without any
	// attestation BuildKit pushes a bare image manifest, not an index).
	ProvenanceNone
)

// Predicate and media types this package writes.
const (
	PredicateSLSAProvenance1 = "https://slsa.dev/provenance/v1"
	PredicateSPDX            = "https://spdx.dev/Document"
	BuildTypeBuildKit        = "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md"
	StatementTypeV1          = "https://in-toto.io/Statement/v1"

	MediaTypeInToto         = "application/vnd.in-toto+json"
	ArtifactTypeAttestation = "application/vnd.docker.attestation.manifest.v1+json"
	MediaTypeEmpty          = "application/vnd.oci.empty.v1+json"

	AnnotationPredicateType   = "in-toto.io/predicate-type"
	AnnotationReferenceDigest = "vnd.docker.reference.digest"
	AnnotationReferenceType   = "vnd.docker.reference.type"
	ReferenceTypeAttestation  = "attestation-manifest"
)

// DefaultCreated is the build time used when Options.Created is zero.
var DefaultCreated = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Options describe one per-platform build.
type Options struct {
	// Component is the image's name, e.g. "example/server": the COMPONENT
	// build argument and the org.opencontainers.image.title label. Required.
	Component string
	// Source is the repository URL, the org.opencontainers.image.source
	// label (and the Dockerfile line that sets it). Default
	// "https://github.com/" + Component.
	Source string
	// Revision, when set, is the commit the build came from: it goes into the
	// provenance as buildkit_metadata.vcs {revision, source}, where BuildKit
	// puts the vcs:revision and vcs:source options buildx sends from a Git
	// checkout. Empty (the fixtures' case): no vcs metadata.
	Revision string
	// Ref is the tag the build is pushed to, which BuildKit writes into the
	// statements' subject name (pkg:docker/<ref>?platform=…). Default
	// Component + ":latest". A digest reference is refused.
	Ref string
	// Platform of the image; OS and Architecture are required.
	Platform v1.Platform
	// Content of /hello.txt. Default "hello from <Component> <platform>\n".
	Content []byte
	// Layout of the attestation manifest.
	Layout Layout
	// Created is the build time: the config's created and history times, the
	// file's mtime (truncated to the second, as in the fixtures), and the
	// provenance's startedOn. Default DefaultCreated.
	Created time.Time
	// Provenance selects the provenance attestation (default ProvenanceMax).
	Provenance Provenance
	// SBOM adds an SPDX 2.3 SBOM statement, like BuildKit's --sbom.
	SBOM bool
	// BuilderID is runDetails.builder.id (BuildKit's builder-id attestation
	// parameter; empty in the fixtures).
	BuilderID string
}

// Image is one generated per-platform build. Its Index is what BuildKit
// pushes to the tag. It is immutable, so safe for concurrent use.
type Image struct {
	opts      Options
	index     *rawIndex
	image     *rawImage
	att       *rawImage
	statement []byte // provenance, nil with ProvenanceNone
	sbom      []byte // nil without SBOM
}

// Build generates the build opts describe. Errors are input errors.
func Build(opts Options) (*Image, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	p := o.Platform

	layerRaw, tarRaw, err := helloLayer(o.Content, o.Created)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", o.Component, platformString(p), err)
	}
	layer := newLayer(types.OCILayer, layerRaw, digestOf(tarRaw))
	cfgRaw, err := imageConfigJSON(o, layer.diffID)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", o.Component, platformString(p), err)
	}
	img, err := newImage(types.OCIConfigJSON, cfgRaw, []*rawLayer{layer}, nil, "")
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", o.Component, platformString(p), err)
	}

	im := &Image{opts: o, image: img}
	purl, err := subjectName(o.Ref, p)
	if err != nil {
		return nil, err
	}
	subj := []subject{{Name: purl, Digest: map[string]string{"sha256": img.digest.Hex}}}

	// BuildKit appends provenance after the attestations the frontend made
	// (the SBOM), so the SBOM layer comes first.
	var atts []*rawLayer
	if o.SBOM {
		im.sbom, err = sbomStatement(o, subj)
		if err != nil {
			return nil, fmt.Errorf("build %s %s: sbom: %w", o.Component, platformString(p), err)
		}
		atts = append(atts, newInTotoLayer(im.sbom, PredicateSPDX))
	}
	if o.Provenance == ProvenanceMax {
		im.statement, err = provenanceStatement(o, subj, layer)
		if err != nil {
			return nil, fmt.Errorf("build %s %s: provenance: %w", o.Component, platformString(p), err)
		}
		atts = append(atts, newInTotoLayer(im.statement, PredicateSLSAProvenance1))
	}

	im.att, err = attestationManifest(o.Layout, atts, img)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: attestation manifest: %w", o.Component, platformString(p), err)
	}
	im.index, err = newIndex(img, im.att, p)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: index: %w", o.Component, platformString(p), err)
	}
	return im, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.Component == "" {
		return o, fault.Inputf("buildkit: no component name")
	}
	if o.Platform.OS == "" || o.Platform.Architecture == "" {
		return o, fault.Inputf("buildkit: %s: platform %q needs an OS and an architecture", o.Component, platformString(o.Platform))
	}
	switch o.Layout {
	case LayoutArtifact, LayoutDummyConfig:
	default:
		return o, fault.Inputf("buildkit: %s: unknown layout %v", o.Component, o.Layout)
	}
	switch o.Provenance {
	case ProvenanceMax:
	case ProvenanceNone:
		if !o.SBOM {
			return o, fault.Inputf("buildkit: %s: no provenance and no SBOM: BuildKit would push a bare image manifest, not an attestation index", o.Component)
		}
	default:
		return o, fault.Inputf("buildkit: %s: unknown provenance mode %d", o.Component, int(o.Provenance))
	}
	if o.Source == "" {
		o.Source = "https://github.com/" + o.Component
	}
	if strings.ContainsAny(o.Source, " \t\r\n") {
		// It is written into a Dockerfile LABEL line.
		return o, fault.Inputf("buildkit: %s: source URL %q contains white space", o.Component, o.Source)
	}
	if o.Ref == "" {
		o.Ref = o.Component + ":latest"
	}
	if o.Content == nil {
		o.Content = []byte(fmt.Sprintf("hello from %s %s\n", o.Component, platformString(o.Platform)))
	}
	if o.Created.IsZero() {
		o.Created = DefaultCreated
	}
	o.Created = o.Created.UTC()
	// Copy what the caller could change after Build.
	o.Content = append([]byte(nil), o.Content...)
	o.Platform.OSFeatures = append([]string(nil), o.Platform.OSFeatures...)
	o.Platform.Features = nil
	if len(o.Platform.OSFeatures) == 0 {
		o.Platform.OSFeatures = nil
	}
	return o, nil
}

// Index is the per-platform OCI index BuildKit pushes to the tag, ready for
// remote.WriteIndex or layout.AppendIndex: every manifest and blob under it
// is served exactly as generated, so pushed digests are the ones here.
func (im *Image) Index() v1.ImageIndex { return im.index }

// Digest is the digest of the per-platform index (what the tag points to).
func (im *Image) Digest() v1.Hash { return im.index.digest }

// Descriptor describes the per-platform index: media type, size, digest.
func (im *Image) Descriptor() v1.Descriptor {
	return v1.Descriptor{MediaType: types.OCIImageIndex, Size: int64(len(im.index.raw)), Digest: im.index.digest}
}

// RawIndex returns the per-platform index's bytes.
func (im *Image) RawIndex() []byte { return append([]byte(nil), im.index.raw...) }

// PlatformDigest is the digest of the platform image manifest.
func (im *Image) PlatformDigest() v1.Hash { return im.image.digest }

// AttestationDigest is the digest of the attestation manifest.
func (im *Image) AttestationDigest() v1.Hash { return im.att.digest }

// Platform is the image's platform.
func (im *Image) Platform() v1.Platform { return im.opts.Platform }

// Ref is the tag the build names in its statements (Options.Ref, defaulted).
func (im *Image) Ref() string { return im.opts.Ref }

// Statement returns the provenance in-toto statement exactly as stored in the
// attestation manifest's layer, or nil with ProvenanceNone.
func (im *Image) Statement() []byte { return clone(im.statement) }

// SBOM returns the SPDX in-toto statement as stored, or nil without SBOM.
func (im *Image) SBOM() []byte { return clone(im.sbom) }

// Blob returns any manifest or blob of the build by digest (the index, both
// manifests, configs, layers, statements), for in-memory fetchers.
func (im *Image) Blob(h v1.Hash) ([]byte, bool) {
	if h == im.index.digest {
		return clone(im.index.raw), true
	}
	for _, m := range []*rawImage{im.image, im.att} {
		if b, ok := m.blob(h); ok {
			return clone(b), true
		}
	}
	return nil, false
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

func digestOf(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// platformString formats p as os/arch[/variant], as BuildKit's purl and
// history do.
func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// parseTag checks that ref is a tag reference (the default tag "latest" when
// it has none).
func parseTag(ref string) (name.Tag, error) {
	if strings.Contains(ref, "@") {
		return name.Tag{}, fault.Inputf("buildkit: reference %q has a digest; BuildKit pushes to a tag", ref)
	}
	t, err := name.NewTag(ref)
	if err != nil {
		return name.Tag{}, fault.Inputf("buildkit: reference %q: %v", ref, err)
	}
	return t, nil
}
