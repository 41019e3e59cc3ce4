package index

import (
	"context"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/pkg/fault"
)

// The bounds of one walk (Gather, Describe). Depth and size caps do not
// bound a walk: three levels of indexes listing the one below 200 times are
// 8 million paths, and a registry can serve them (internal/testenv's liar
// does). Real sources read a few manifests and list tens of entries.
const (
	maxWalkReads   = 256    // manifests and blobs read
	maxWalkEntries = 10_000 // entries of all indexes walked, nested ones included
)

// walkBudget is the Fetcher of one walk, refusing to read or list more than
// the bounds. A walk is sequential, so it needs no lock.
type walkBudget struct {
	Fetcher
	reads, entries int
}

func withBudget(f Fetcher) *walkBudget {
	if b, ok := f.(*walkBudget); ok {
		return b
	}
	return &walkBudget{Fetcher: f}
}

func (b *walkBudget) Manifest(ctx context.Context, h v1.Hash) ([]byte, string, error) {
	if err := b.read(); err != nil {
		return nil, "", err
	}
	return b.Fetcher.Manifest(ctx, h)
}

func (b *walkBudget) Blob(ctx context.Context, d v1.Descriptor, max int64) ([]byte, error) {
	if err := b.read(); err != nil {
		return nil, err
	}
	return b.Fetcher.Blob(ctx, d, max)
}

func (b *walkBudget) read() error {
	if b.reads++; b.reads > maxWalkReads {
		return fault.Inputf("more than %d manifests and blobs to read", maxWalkReads)
	}
	return nil
}

// list counts the n entries of an index against f's budget, if f has one.
func list(f Fetcher, n int) error {
	b, ok := f.(*walkBudget)
	if !ok {
		return nil
	}
	if b.entries += n; b.entries > maxWalkEntries {
		return fault.Inputf("indexes list more than %d manifests in all, nested ones included", maxWalkEntries)
	}
	return nil
}

// checkEntry refuses entry i of the index idx when it has no digest: JSON
// decoding leaves a missing digest zero, which a merged index would list
// as ":".
func checkEntry(idx v1.Hash, i int, d v1.Descriptor) error {
	if d.Digest == (v1.Hash{}) {
		return fault.Inputf("%s: entry %d has no digest", idx, i)
	}
	return nil
}
