package index

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/seal-dev/seal/pkg/oci"
)

// Media types and annotations by which Sigstore bundles announce themselves
// as OCI referrers (the shape cosign v3 writes).
const (
	ArtifactTypeBundle        = "application/vnd.dev.sigstore.bundle.v0.3+json"
	AnnotationBundlePredicate = "dev.sigstore.bundle.predicateType"
	inspectConcurrency        = 4
)

// Inspected is the result of Inspect: the reference as given, and the tree.
type Inspected struct {
	Reference string `json:"reference"`
	*Tree
}

// Inspect resolves ref once and describes what it holds: the index, its
// platform manifests, their attestation manifests, and everything attached
// to each of them (Sigstore bundle referrers, cosign legacy tags).
func Inspect(ctx context.Context, c *oci.Client, ref name.Reference) (*Inspected, error) {
	desc, err := c.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	tree, err := Describe(ctx, RegistryFetcher(c, ref.Context()), desc)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", ref, err)
	}
	var nodes []*Tree
	tree.walk(func(t *Tree) { nodes = append(nodes, t) })
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(inspectConcurrency)
	for _, n := range nodes {
		g.Go(func() error {
			att, err := c.Attached(gctx, ref.Context().Digest(n.Digest.String()))
			if err != nil {
				return fmt.Errorf("inspect %s: %w", ref, err)
			}
			n.Referrers, err = describeReferrers(gctx, c, ref.Context(), n, att)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return &Inspected{Reference: ref.String(), Tree: tree}, nil
}

// walk visits t and every node below it.
func (t *Tree) walk(fn func(*Tree)) {
	fn(t)
	for _, m := range t.Manifests {
		m.walk(fn)
	}
	for _, a := range t.Attestations {
		a.walk(fn)
	}
}

// describeReferrers turns what is attached to n into Referrers. Each
// referrer manifest is read, since registries differ in what their referrers
// API reports (go-containerregistry's, for one, reports the config media type
// as artifactType and drops annotations). BuildKit attestation manifests that
// name n as subject already appear as n's attestations and are not repeated.
func describeReferrers(ctx context.Context, c *oci.Client, repo name.Repository, n *Tree, att *oci.Attachments) ([]Referrer, error) {
	shown := map[v1.Hash]bool{}
	for _, a := range n.Attestations {
		shown[a.Digest] = true
	}
	var out []Referrer
	for _, d := range att.Referrers {
		if shown[d.Digest] {
			continue
		}
		m, err := c.Manifest(ctx, repo.Digest(d.Digest.String()))
		if err != nil {
			return nil, fmt.Errorf("referrer %s of %s: %w", d.Digest, n.Digest, err)
		}
		r := Referrer{Digest: d.Digest, MediaType: string(m.Descriptor.MediaType), Format: "referrer"}
		if im, err := m.Image(); err == nil {
			r.ArtifactType = im.ArtifactType
			if r.ArtifactType == "" {
				r.ArtifactType = string(im.Config.MediaType)
			}
			if r.ArtifactType == ArtifactTypeBundle {
				r.Format = "bundle"
				r.PredicateType = im.Annotations[AnnotationBundlePredicate]
			}
		}
		out = append(out, r)
	}
	for _, l := range att.Legacy {
		r := Referrer{
			Digest:    l.Descriptor.Digest,
			MediaType: string(l.Descriptor.MediaType),
			Format:    "legacy-" + l.Suffix[1:],
			Tag:       l.Tag.TagStr(),
		}
		if l.Suffix == ".att" {
			m, err := c.Manifest(ctx, repo.Digest(l.Descriptor.Digest.String()))
			if err != nil {
				return nil, fmt.Errorf("%s of %s: %w", l.Tag.TagStr(), n.Digest, err)
			}
			r.PredicateTypes = legacyPredicateTypes(m)
		}
		out = append(out, r)
	}
	return out, nil
}

// legacyPredicateTypes lists the predicateType annotations of the layers of
// a cosign `.att` image (one layer per attestation), without repeats. They
// are claims, shown as such; `seal download` and `seal verify` check them
// against the signed statements.
func legacyPredicateTypes(m *oci.Manifest) []string {
	im, err := m.Image()
	if err != nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, l := range im.Layers {
		if pt := l.Annotations["predicateType"]; pt != "" && !seen[pt] {
			seen[pt] = true
			out = append(out, pt)
		}
	}
	return out
}
