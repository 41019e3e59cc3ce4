package index

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
)

// Created is the outcome of Create: the merged index and where it went.
type Created struct {
	// Reference is TARGET@sha256:…: the tag written and the digest it was given.
	Reference string  `json:"reference"`
	Digest    v1.Hash `json:"digest"`
	// Manifests are the index's entries: platform and attestation manifests.
	Manifests []Entry `json:"manifests"`
	// Raw is the index JSON exactly as pushed (or, on a dry run, as it would be).
	Raw    []byte `json:"-"`
	DryRun bool   `json:"dryRun,omitempty"`
}

// CreateOptions are Merge's options plus how to push.
type CreateOptions struct {
	Options
	// DryRun merges and reports without pushing anything.
	DryRun bool
	// Concurrency bounds the child manifests copied at once (default 4).
	Concurrency int
}

// Create resolves each source once, merges them into one flat index and
// pushes it to target in safe order: every child manifest (with its blobs,
// mounted within a registry, streamed across registries) into target's
// repository first, then the index by digest, then target's tag last — so
// the tag never points at something incomplete, and a failure part-way
// leaves the tag as it was.
func Create(ctx context.Context, c *oci.Client, target name.Tag, sources []name.Reference, opts CreateOptions) (*Created, error) {
	if len(sources) == 0 {
		return nil, fault.Inputf("index create %s: no sources", target)
	}
	repos := map[string]name.Repository{}
	gathered := make([]Source, len(sources))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency(opts.Concurrency))
	for i, ref := range sources {
		repos[ref.String()] = ref.Context()
		g.Go(func() error {
			desc, err := c.Resolve(gctx, ref)
			if err != nil {
				return fmt.Errorf("source %s: %w", ref, err)
			}
			src, err := Gather(gctx, RegistryFetcher(c, ref.Context()), ref.String(), desc)
			if err != nil {
				return err
			}
			gathered[i] = src
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	res, err := Merge(gathered, opts.Options)
	if err != nil {
		return nil, fmt.Errorf("index create %s: %w", target, err)
	}
	out := &Created{
		Reference: target.String() + "@" + res.Descriptor.Digest.String(),
		Digest:    res.Descriptor.Digest,
		Manifests: res.Entries,
		Raw:       res.Raw,
		DryRun:    opts.DryRun,
	}
	if opts.DryRun {
		return out, nil
	}
	dst := target.Context()
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(concurrency(opts.Concurrency))
	for _, e := range res.Entries {
		src := repos[e.Source].Digest(e.Digest.String())
		g.Go(func() error {
			if _, err := c.CopyTree(gctx, src, dst); err != nil {
				return fmt.Errorf("index create %s: %w", target, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	mt := string(res.Descriptor.MediaType)
	if _, err := c.PushManifest(ctx, dst, res.Raw, mt); err != nil {
		return nil, fmt.Errorf("index create %s: push index %s: %w", target, res.Descriptor.Digest, err)
	}
	if err := c.Tag(ctx, target, res.Raw, mt); err != nil {
		return nil, fmt.Errorf("index create %s: tag %s: %w", target, res.Descriptor.Digest, err)
	}
	return out, nil
}

func concurrency(n int) int {
	if n <= 0 {
		return 4
	}
	return n
}

// RegistryFetcher is a Fetcher over repo through the oci client, which checks
// sizes and digests of what it reads.
func RegistryFetcher(c *oci.Client, repo name.Repository) Fetcher {
	return registryFetcher{c: c, repo: repo}
}

type registryFetcher struct {
	c    *oci.Client
	repo name.Repository
}

func (f registryFetcher) Manifest(ctx context.Context, h v1.Hash) ([]byte, string, error) {
	m, err := f.c.Manifest(ctx, f.repo.Digest(h.String()))
	if err != nil {
		return nil, "", err
	}
	return m.Raw, string(m.Descriptor.MediaType), nil
}

func (f registryFetcher) Blob(ctx context.Context, d v1.Descriptor, max int64) ([]byte, error) {
	return f.c.BlobBytes(ctx, f.repo, d, max)
}
