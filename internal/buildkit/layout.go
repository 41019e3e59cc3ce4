package buildkit

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/seal-dev/seal/pkg/fault"
)

// WriteLayout writes the build as an OCI image layout in dir, like the
// fixtures in testdata/buildkit: index.json lists one entry, the
// per-platform index, and blobs/ holds everything under it. Code that
// pushes a fixture (open with layout.FromPath, push the single child
// unchanged) pushes this build with the same digests.
func (im *Image) WriteLayout(dir string) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fault.Wrap(fault.Operational, fmt.Errorf("write layout %s: %w", dir, err))
	}
	if err := p.AppendIndex(im.index); err != nil {
		return fault.Wrap(fault.Operational, fmt.Errorf("write layout %s: %s: %w", dir, im.index.digest, err))
	}
	return nil
}
