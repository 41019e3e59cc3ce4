package oci

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/internal/workpool"
	"github.com/seal-dev/seal/pkg/fault"
)

// copyConcurrency bounds the blobs (or child manifests) one manifest copies
// at once.
const copyConcurrency = 4

// maxDepth bounds index nesting, against a registry serving a cycle.
const maxDepth = 8

// CopyTree copies the manifest src and everything below it into dst: blobs,
// then child manifests, then the manifest itself, skipping what dst already
// has. It does not tag.
func (c *Client) CopyTree(ctx context.Context, src name.Digest, dst name.Repository) (v1.Descriptor, error) {
	h, err := v1.NewHash(src.DigestStr())
	if err != nil {
		return v1.Descriptor{}, fault.Inputf("copy %s: %w", src, err)
	}
	d, err := c.copyTree(ctx, src.Context(), h, dst, 0)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return d, nil
}

func (c *Client) copyTree(ctx context.Context, src name.Repository, h v1.Hash, dst name.Repository, depth int) (v1.Descriptor, error) {
	if depth > maxDepth {
		return v1.Descriptor{}, fault.Inputf("manifest %s: indexes nested deeper than %d", h, maxDepth)
	}
	// A manifest in dst has its children there already: registries refuse
	// manifests whose references are missing, and seal pushes bottom-up.
	if d, err := c.resolve(ctx, dst.Digest(h.String())); err == nil {
		return d, nil
	} else if !isNotFound(err) {
		return v1.Descriptor{}, err
	}
	m, err := c.fetchManifest(ctx, src.Digest(h.String()))
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("manifest %s: %w", h, err)
	}
	if m.IsIndex() {
		idx, err := m.Index()
		if err != nil {
			return v1.Descriptor{}, err
		}
		err = workpool.FirstError(ctx, copyConcurrency, len(idx.Manifests), func(ctx context.Context, i int) error {
			child := idx.Manifests[i]
			if !isManifestType(string(child.MediaType)) {
				return fault.Inputf("index %s lists %s with media type %q", h, child.Digest, child.MediaType)
			}
			_, err := c.copyTree(ctx, src, child.Digest, dst, depth+1)
			return err
		})
		if err != nil {
			return v1.Descriptor{}, err
		}
	} else {
		im, err := m.Image()
		if err != nil {
			return v1.Descriptor{}, err
		}
		blobs := append([]v1.Descriptor{im.Config}, im.Layers...)
		err = workpool.FirstError(ctx, copyConcurrency, len(blobs), func(ctx context.Context, i int) error {
			b := blobs[i]
			if len(b.URLs) > 0 && !b.MediaType.IsDistributable() {
				return nil // foreign layer: fetched from its URLs, not from registries
			}
			return c.copyBlob(ctx, src, dst, b)
		})
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("manifest %s: %w", h, err)
		}
	}
	if err := c.putManifest(ctx, dst, h.String(), m.Raw, string(m.Descriptor.MediaType)); err != nil {
		return v1.Descriptor{}, fmt.Errorf("push manifest %s: %w", h, err)
	}
	return m.Descriptor, nil
}

func isNotFound(err error) bool {
	var se *statusError
	return errors.As(err, &se) && se.notFound()
}
