package oci

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The suffixes of cosign's legacy tags: sha256-<hex>.sig holds simple-signing
// signatures, .att DSSE attestations, .sbom an attached SBOM.
var LegacySuffixes = []string{".sig", ".att", ".sbom"}

// LegacyTag is cosign's tag for what is attached to subject with suffix
// (".sig", ".att", ".sbom"): <repo>:sha256-<hex><suffix>.
func LegacyTag(subject name.Digest, suffix string) (name.Tag, error) {
	h, err := v1.NewHash(subject.DigestStr())
	if err != nil {
		return name.Tag{}, fmt.Errorf("legacy tag of %s: %w", subject, err)
	}
	return subject.Context().Tag(FallbackTag(h) + suffix), nil
}

// Legacy is a cosign legacy tag found for a subject.
type Legacy struct {
	Suffix     string        // ".sig", ".att" or ".sbom"
	Tag        name.Tag      // where it was found
	Descriptor v1.Descriptor // what the tag points at
}

// Attachments is everything attached to one manifest.
type Attachments struct {
	// Referrers are OCI 1.1 referrers: from the API, or the fallback tag index.
	Referrers []v1.Descriptor
	// Legacy are cosign's .sig/.att/.sbom tags that exist for the subject.
	Legacy []Legacy
}

// Attached discovers what is attached to subject, both ways tools attach
// things: OCI referrers and cosign's legacy tags. Missing tags are not errors.
func (c *Client) Attached(ctx context.Context, subject name.Digest) (*Attachments, error) {
	refs, err := c.Referrers(ctx, subject)
	if err != nil {
		return nil, err
	}
	out := &Attachments{Referrers: refs}
	for _, suffix := range LegacySuffixes {
		tag, err := LegacyTag(subject, suffix)
		if err != nil {
			return nil, err
		}
		d, err := c.resolve(ctx, tag)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("legacy %s of %s: %w", suffix, subject, err)
		}
		out.Legacy = append(out.Legacy, Legacy{Suffix: suffix, Tag: tag, Descriptor: d})
	}
	return out, nil
}
