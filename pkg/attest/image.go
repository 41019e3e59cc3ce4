package attest

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/oci"
)

// image is one IMAGE argument resolved once and described: its index,
// platform manifests and BuildKit attestation manifests.
type image struct {
	arg  string // as given
	repo name.Repository
	top  *index.Tree
}

// digest is repo@digest of the image itself, for messages.
func (im *image) digest() name.Digest { return im.repo.Digest(im.top.Digest.String()) }

// subject is one manifest an attestation is about.
type subject struct {
	image    string // IMAGE as given
	digest   name.Digest
	desc     v1.Descriptor // media type, digest and size: the referrer's subject
	index    string        // digest of the index listing this platform manifest; "" for IMAGE itself
	platform string        // os/arch[/variant]; "" for an index or an artifact
	node     *index.Tree
}

func (im *image) subject(n *index.Tree, parent string) subject {
	return subject{
		image:    im.arg,
		digest:   im.repo.Digest(n.Digest.String()),
		desc:     v1.Descriptor{MediaType: types.MediaType(n.MediaType), Digest: n.Digest, Size: n.Size},
		index:    parent,
		platform: n.Platform,
		node:     n,
	}
}

// statementSubject is the in-toto subject for s: the repository, as cosign
// names it, and the manifest digest.
func (s subject) statementSubject() attestation.Subject {
	return attestation.Subject{
		Name:   s.digest.Context().Name(),
		Digest: map[string]string{s.desc.Digest.Algorithm: s.desc.Digest.Hex},
	}
}

// describe resolves ref once and describes what the digest holds.
func describe(ctx context.Context, c *oci.Client, arg string, ref name.Reference) (*image, error) {
	desc, err := c.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	top, err := index.Describe(ctx, index.RegistryFetcher(c, ref.Context()), desc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref.Context().Digest(desc.Digest.String()), err)
	}
	return &image{arg: arg, repo: ref.Context(), top: top}, nil
}

// platforms lists the platform manifests of the image: those of an index
// (nested indexes included), or a single image manifest itself.
func (im *image) platforms() []subject {
	if im.top.Kind == index.KindImage {
		return []subject{im.subject(im.top, "")}
	}
	var out []subject
	var walk func(t *index.Tree)
	walk = func(t *index.Tree) {
		for _, m := range t.Manifests {
			switch m.Kind {
			case index.KindImage:
				out = append(out, im.subject(m, t.Digest.String()))
			case index.KindIndex:
				walk(m)
			}
		}
	}
	if im.top.Kind == index.KindIndex {
		walk(im.top)
	}
	return out
}

// selectPlatforms returns the platform manifests each of wants selects (in
// the image's order, each once). A want that selects nothing is an input
// error listing the platforms the image has: another platform's manifest is
// never a stand-in.
func (im *image) selectPlatforms(wants []v1.Platform) ([]subject, error) {
	all := im.platforms()
	keep := make([]bool, len(all))
	for _, w := range wants {
		found := false
		for i, s := range all {
			have, err := index.ParsePlatform(s.platform)
			if err == nil && index.MatchPlatform(w, have) {
				keep[i], found = true, true
			}
		}
		if !found {
			return nil, fault.Inputf("no platform %s (it has %s)", index.FormatPlatform(&w), platformList(all))
		}
	}
	var out []subject
	for i, s := range all {
		if keep[i] {
			out = append(out, s)
		}
	}
	return out, nil
}

func platformList(subjects []subject) string {
	if len(subjects) == 0 {
		return "no platform manifests"
	}
	names := make([]string, len(subjects))
	for i, s := range subjects {
		names[i] = s.platform
	}
	return strings.Join(names, ", ")
}

// ParsePlatforms checks --platform values (OS/ARCH[/VARIANT]).
func ParsePlatforms(values []string) ([]v1.Platform, error) {
	out := make([]v1.Platform, 0, len(values))
	for _, v := range values {
		p, err := index.ParsePlatform(v)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// parseRefs parses every IMAGE before any of them is fetched, so a typo in
// the last one costs nothing.
func parseRefs(c *oci.Client, images []string) ([]name.Reference, error) {
	if len(images) == 0 {
		return nil, fault.Inputf("no image")
	}
	refs := make([]name.Reference, len(images))
	for i, img := range images {
		r, err := c.ParseReference(img)
		if err != nil {
			return nil, err
		}
		refs[i] = r
	}
	return refs, nil
}

// concurrency is n, or DefaultConcurrency when n < 1.
func concurrency(n int) int {
	if n < 1 {
		return DefaultConcurrency
	}
	return n
}
