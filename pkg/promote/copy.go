package promote

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/internal/workpool"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/signing"
)

const (
	// maxDepth bounds index nesting, against a registry serving a cycle.
	maxDepth = 8
	// maxReferrerDepth bounds referrers of referrers of … a manifest
	// (a signature on an attestation is depth 2).
	maxReferrerDepth = 4
	// fanOut bounds the children, blobs or subjects one step handles at once.
	fanOut = 4
	// transfers bounds the blob copies of a whole run (one image or a
	// batch), the part that moves data.
	transfers = 8
)

// run is the state shared by the images of one Copy or CopyAll: the client,
// the blobs and image manifests already handled (so that images sharing
// content copy it once), and the bound on concurrent transfers.
type run struct {
	c         *oci.Client
	transfers chan struct{}

	mu      sync.Mutex
	flights map[string]*flight
}

type flight struct {
	done chan struct{}
	err  error
}

func newRun(c *oci.Client) *run {
	return &run{c: c, transfers: make(chan struct{}, transfers), flights: map[string]*flight{}}
}

// once runs fn for key unless it already succeeded in this run; callers of
// a key in flight wait for it (only the caller that ran fn counts what it
// did). After a failure the entry is dropped and the next caller tries afresh
// (the failure may be another image's cancellation).
func (r *run) once(ctx context.Context, key string, fn func() error) error {
	for {
		r.mu.Lock()
		f, ok := r.flights[key]
		if !ok {
			f = &flight{done: make(chan struct{})}
			r.flights[key] = f
			r.mu.Unlock()
			f.err = fn()
			if f.err != nil {
				r.mu.Lock()
				delete(r.flights, key)
				r.mu.Unlock()
			}
			close(f.done)
			return f.err
		}
		r.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return fault.Wrap(fault.Operational, context.Cause(ctx))
		}
		if f.err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fault.Wrap(fault.Operational, context.Cause(ctx))
		}
	}
}

// stats are a Result's counters, updated by concurrent workers.
type stats struct {
	manifestsCopied, manifestsSkipped atomic.Int64
	blobsCopied, blobsSkipped         atomic.Int64
	bytesCopied, bytesSkipped         atomic.Int64
	refsCopied, refsSkipped           atomic.Int64
	legacyCopied, legacyMerged        atomic.Int64
	legacySkipped                     atomic.Int64
}

// copier copies one image from src to dst.
type copier struct {
	*run
	src, dst name.Repository
	st       stats

	// jobs runs the copy of each tree manifest's attachments, started as
	// soon as that manifest is at dst.
	jobs *group

	mu       sync.Mutex
	inTree   map[v1.Hash]bool // the manifests of the image tree
	visited  map[v1.Hash]bool // subjects whose referrers are being copied
	warnings []string
}

func (r *run) copier(src, dst name.Repository) *copier {
	return &copier{run: r, src: src, dst: dst, inTree: map[v1.Hash]bool{}, visited: map[v1.Hash]bool{}}
}

// copyAll copies the tree under top (fetched already), then — each as soon
// as its manifest is at dst — what is attached to every manifest of it.
func (k *copier) copyAll(ctx context.Context, top *oci.Manifest) error {
	k.jobs = newGroup(ctx, fanOut)
	k.jobs.Go(func(ctx context.Context) error {
		return k.tree(ctx, top.Descriptor, top, false, true, 1)
	})
	return k.jobs.Wait()
}

func (k *copier) fill(res *Result) {
	s := &k.st
	res.Manifests = Count{Copied: s.manifestsCopied.Load(), Skipped: s.manifestsSkipped.Load()}
	res.Blobs = Count{Copied: s.blobsCopied.Load(), Skipped: s.blobsSkipped.Load()}
	res.Bytes = Count{Copied: s.bytesCopied.Load(), Skipped: s.bytesSkipped.Load()}
	res.Referrers = Count{Copied: s.refsCopied.Load(), Skipped: s.refsSkipped.Load()}
	res.LegacyTags = LegacyCount{Copied: s.legacyCopied.Load(), Merged: s.legacyMerged.Load(), Skipped: s.legacySkipped.Load()}
	k.mu.Lock()
	res.Warnings = append([]string(nil), k.warnings...)
	k.mu.Unlock()
}

func (k *copier) warn(format string, args ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.warnings = append(k.warnings, fmt.Sprintf(format, args...))
}

// placed is called when the tree manifest h is at dst: with collect, what
// is attached to it is copied next (once per manifest).
func (k *copier) placed(h v1.Hash, collect bool) {
	if !collect {
		return
	}
	k.mu.Lock()
	seen := k.inTree[h]
	k.inTree[h] = true
	k.mu.Unlock()
	if !seen {
		k.jobs.Go(func(ctx context.Context) error { return k.attachments(ctx, h) })
	}
}

// visit reports whether h's referrers are still to be handled, marking them
// handled. Within one image every piece of work is awaited by the same
// call, so the first visitor doing it is enough.
func (k *copier) visit(h v1.Hash) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.visited[h] {
		return false
	}
	k.visited[h] = true
	return true
}

func (k *copier) srcDigest(h v1.Hash) name.Digest { return k.src.Digest(h.String()) }
func (k *copier) dstDigest(h v1.Hash) name.Digest { return k.dst.Digest(h.String()) }

// hasManifest reports whether dst holds the manifest h.
func (k *copier) hasManifest(ctx context.Context, h v1.Hash) (bool, error) {
	_, err := k.c.Resolve(ctx, k.dstDigest(h))
	switch {
	case err == nil:
		return true, nil
	case oci.IsNotFound(err):
		return false, nil
	}
	return false, err
}

// tree makes dst hold the manifest d (m, when already fetched) and
// everything below it: blobs, then child manifests, then d. With collect,
// the attachments of every manifest of the tree are copied once it is at
// dst. present says that a parent was found at dst, which vouches for d: d
// is then only walked for the digests it lists.
func (k *copier) tree(ctx context.Context, d v1.Descriptor, m *oci.Manifest, present, collect bool, depth int) error {
	if depth > maxDepth {
		return fault.Inputf("manifest %s: indexes nested deeper than %d", d.Digest, maxDepth)
	}
	if !d.MediaType.IsIndex() {
		if !d.MediaType.IsImage() {
			return fault.Inputf("manifest %s has media type %q, neither an image manifest nor an index", d.Digest, d.MediaType)
		}
		if !present {
			if err := k.image(ctx, d.Digest, m); err != nil {
				return err
			}
		}
		k.placed(d.Digest, collect)
		return nil
	}
	// An index is fetched even when dst has it: its children are subjects.
	if m == nil {
		var err error
		if m, err = k.c.Manifest(ctx, k.srcDigest(d.Digest)); err != nil {
			return err
		}
	}
	idx, err := m.Index()
	if err != nil {
		return err
	}
	if !present {
		if present, err = k.hasManifest(ctx, d.Digest); err != nil {
			return err
		}
		if present {
			k.st.manifestsSkipped.Add(1)
		}
	}
	err = workpool.FirstError(ctx, fanOut, len(idx.Manifests), func(ctx context.Context, i int) error {
		return k.tree(ctx, idx.Manifests[i], nil, present, collect, depth+1)
	})
	if err != nil {
		return err
	}
	if !present {
		if err := k.push(ctx, m); err != nil {
			return err
		}
	}
	k.placed(d.Digest, collect)
	return nil
}

// image makes dst hold the image (or artifact) manifest h with its blobs.
// Images shared by several images of a run are copied once.
func (k *copier) image(ctx context.Context, h v1.Hash, m *oci.Manifest) error {
	return k.once(ctx, "manifest "+k.dst.Name()+"@"+h.String(), func() error {
		ok, err := k.hasManifest(ctx, h)
		if err != nil {
			return err
		}
		if ok {
			k.st.manifestsSkipped.Add(1)
			return nil
		}
		if m == nil {
			if m, err = k.c.Manifest(ctx, k.srcDigest(h)); err != nil {
				return err
			}
		}
		if err := k.contents(ctx, m, false); err != nil {
			return err
		}
		return k.push(ctx, m)
	})
}

// contents copies what m references: the blobs of an image manifest, the
// trees of an index's children (not collected as subjects).
func (k *copier) contents(ctx context.Context, m *oci.Manifest, collect bool) error {
	if m.IsIndex() {
		idx, err := m.Index()
		if err != nil {
			return err
		}
		return workpool.FirstError(ctx, fanOut, len(idx.Manifests), func(ctx context.Context, i int) error {
			return k.tree(ctx, idx.Manifests[i], nil, false, collect, 1)
		})
	}
	im, err := m.Image()
	if err != nil {
		return err
	}
	blobs := append([]v1.Descriptor{im.Config}, im.Layers...)
	return workpool.FirstError(ctx, fanOut, len(blobs), func(ctx context.Context, i int) error {
		return k.blob(ctx, blobs[i])
	})
}

func (k *copier) push(ctx context.Context, m *oci.Manifest) error {
	if _, err := k.c.PushManifest(ctx, k.dst, m.Raw, string(m.Descriptor.MediaType)); err != nil {
		return err
	}
	k.st.manifestsCopied.Add(1)
	return nil
}

// blob makes dst hold the blob d: skipped when there, else mounted (same
// registry) or streamed (across registries) by oci.CopyBlob.
func (k *copier) blob(ctx context.Context, d v1.Descriptor) error {
	if len(d.URLs) > 0 && !d.MediaType.IsDistributable() {
		return nil // a foreign layer is fetched from its URLs, not from registries
	}
	return k.once(ctx, "blob "+k.dst.Name()+"@"+d.Digest.String(), func() error {
		select {
		case k.transfers <- struct{}{}:
		case <-ctx.Done():
			return fault.Wrap(fault.Operational, context.Cause(ctx))
		}
		defer func() { <-k.transfers }()
		ok, err := k.c.HasBlob(ctx, k.dst, d.Digest)
		if err != nil {
			return err
		}
		if ok {
			k.st.blobsSkipped.Add(1)
			k.st.bytesSkipped.Add(d.Size)
			return nil
		}
		if err := k.c.CopyBlob(ctx, k.src, k.dst, d); err != nil {
			return err
		}
		k.st.blobsCopied.Add(1)
		k.st.bytesCopied.Add(d.Size)
		return nil
	})
}

// attachments copies what is attached to the tree manifest s: its
// referrers (and theirs, recursively) and its legacy tags, side by side.
func (k *copier) attachments(ctx context.Context, s v1.Hash) error {
	att, err := k.c.Attached(ctx, k.srcDigest(s))
	if err != nil {
		return err
	}
	return workpool.FirstError(ctx, fanOut, 1+len(att.Legacy), func(ctx context.Context, i int) error {
		if i == 0 {
			return k.referrers(ctx, s, att.Referrers, 1)
		}
		return k.legacy(ctx, s, att.Legacy[i-1])
	})
}

// referrers makes each of refs (the source's referrers of subject)
// discoverable at dst the way dst supports, then does the same for what
// refers to each of them.
func (k *copier) referrers(ctx context.Context, subject v1.Hash, refs []v1.Descriptor, depth int) error {
	if len(refs) == 0 || !k.visit(subject) {
		return nil
	}
	if depth > maxReferrerDepth {
		return fault.Inputf("manifest %s: referrers of referrers nested deeper than %d", subject, maxReferrerDepth)
	}
	have, err := k.c.Referrers(ctx, k.dstDigest(subject))
	if err != nil {
		return err
	}
	listed := make(map[v1.Hash]bool, len(have))
	for _, d := range have {
		listed[d.Digest] = true
	}
	// The content of each referrer first, concurrently; then the referrer
	// manifests in one batch, so that a destination without the referrers
	// API gets one fallback-tag merge per subject, not one per referrer;
	// then what refers to each of them.
	ready := make([]*oci.Manifest, len(refs))
	descend := make([]bool, len(refs))
	err = workpool.FirstError(ctx, fanOut, len(refs), func(ctx context.Context, i int) error {
		if listed[refs[i].Digest] {
			k.st.refsSkipped.Add(1)
			descend[i] = true
			return nil
		}
		m, err := k.referrer(ctx, subject, refs[i])
		ready[i], descend[i] = m, m != nil
		return err
	})
	if err != nil {
		return err
	}
	var batch []oci.RawManifest
	for _, m := range ready {
		if m != nil {
			batch = append(batch, oci.RawManifest{Raw: m.Raw, MediaType: string(m.Descriptor.MediaType)})
		}
	}
	if len(batch) > 0 {
		if _, err := k.c.PushReferrers(ctx, k.dstDigest(subject), batch); err != nil {
			return err
		}
		k.st.manifestsCopied.Add(int64(len(batch)))
		k.st.refsCopied.Add(int64(len(batch)))
	}
	return workpool.FirstError(ctx, fanOut, len(refs), func(ctx context.Context, i int) error {
		if !descend[i] {
			return nil
		}
		sub, err := k.c.Referrers(ctx, k.srcDigest(refs[i].Digest))
		if err != nil {
			return err
		}
		return k.referrers(ctx, refs[i].Digest, sub, depth+1)
	})
}

// referrer reads the referrer r of subject and copies its content, and
// returns its manifest, for the caller to push. A listing that names a
// manifest that is not there, or one that refers to another subject, is
// left out with a warning (nil).
func (k *copier) referrer(ctx context.Context, subject v1.Hash, r v1.Descriptor) (*oci.Manifest, error) {
	m, err := k.c.Manifest(ctx, k.srcDigest(r.Digest))
	if oci.IsNotFound(err) {
		k.warn("referrer %s of %s is listed at %s but does not exist there: left out", r.Digest, subject, k.src)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var doc struct {
		Subject *v1.Descriptor `json:"subject"`
	}
	if err := json.Unmarshal(m.Raw, &doc); err != nil || doc.Subject == nil || doc.Subject.Digest != subject {
		k.warn("referrer %s is listed for %s at %s but its manifest has another subject: left out", r.Digest, subject, k.src)
		return nil, nil
	}
	if err := k.contents(ctx, m, false); err != nil {
		return nil, err
	}
	return m, nil
}

// legacy copies the cosign legacy tag l of subject to the same tag at dst:
// as is when dst has none; merged with dst's signatures for .sig and .att
// when dst has other ones; replaced for .sbom.
func (k *copier) legacy(ctx context.Context, subject v1.Hash, l oci.Legacy) error {
	tag := k.dst.Tag(l.Tag.TagStr())
	cur, err := k.c.Resolve(ctx, tag)
	switch {
	case err == nil && cur.Digest == l.Descriptor.Digest:
		k.st.legacySkipped.Add(1)
		return nil
	case err != nil && !oci.IsNotFound(err):
		return err
	case err == nil && l.Suffix != ".sbom":
		return k.mergeLegacy(ctx, subject, l, tag)
	}
	m, err := k.c.Manifest(ctx, k.srcDigest(l.Descriptor.Digest))
	if err != nil {
		return err
	}
	if err := k.tree(ctx, m.Descriptor, m, false, false, 1); err != nil {
		return err
	}
	if err := k.c.Tag(ctx, tag, m.Raw, string(m.Descriptor.MediaType)); err != nil {
		return err
	}
	k.st.legacyCopied.Add(1)
	return nil
}

// mergeLegacy adds the source's .sig/.att layers to the destination's tag
// image, keeping the destination's (signing.AttachLegacy: read, merge,
// write, confirm).
func (k *copier) mergeLegacy(ctx context.Context, subject v1.Hash, l oci.Legacy, tag name.Tag) error {
	kind := signing.LegacyKind(strings.TrimPrefix(l.Suffix, "."))
	m, err := k.c.Manifest(ctx, k.srcDigest(l.Descriptor.Digest))
	if err != nil {
		return err
	}
	descs, err := signing.ParseLegacyManifest(m.Raw, kind)
	if err != nil {
		// Not a verdict on the image: a tag image that cannot be merged.
		return fault.Wrap(fault.Input, fmt.Errorf("merge %s: %w", l.Tag, err))
	}
	layers := make([]signing.LegacyLayer, len(descs))
	err = workpool.FirstError(ctx, fanOut, len(descs), func(ctx context.Context, i int) error {
		d := descs[i]
		data, err := k.c.BlobBytes(ctx, k.src, d, signing.MaxLegacyPayloadSize)
		if err != nil {
			return err
		}
		layers[i] = signing.LegacyLayer{MediaType: d.MediaType, Payload: data, Annotations: d.Annotations}
		return nil
	})
	if err != nil {
		return err
	}
	existing, err := k.c.Manifest(ctx, tag)
	if err != nil {
		return err
	}
	if _, added, err := signing.AppendLegacy(existing.Raw, kind, layers, nil); err != nil {
		return fault.Wrap(fault.Input, fmt.Errorf("merge into %s: %w", tag, err))
	} else if added == 0 {
		k.st.legacySkipped.Add(1)
		return nil
	}
	if _, err := signing.AttachLegacy(ctx, k.c, k.dstDigest(subject), kind, layers, nil); err != nil {
		return err
	}
	k.st.manifestsCopied.Add(1)
	k.st.legacyMerged.Add(1)
	return nil
}

// group runs jobs, at most n at a time, until the first error, which
// cancels the others.
type group struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	sem    chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

func newGroup(ctx context.Context, n int) *group {
	ctx, cancel := context.WithCancelCause(ctx)
	return &group{ctx: ctx, cancel: cancel, sem: make(chan struct{}, n)}
}

// Go starts fn; it may be called from inside a job.
func (g *group) Go(fn func(ctx context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		select {
		case g.sem <- struct{}{}:
		case <-g.ctx.Done():
			return
		}
		defer func() { <-g.sem }()
		if err := fn(g.ctx); err != nil {
			g.once.Do(func() { g.err = err; g.cancel(err) })
		}
	}()
}

// Wait waits for every job and returns the first error.
func (g *group) Wait() error {
	g.wg.Wait()
	defer g.cancel(nil)
	if g.err == nil && g.ctx.Err() != nil {
		return fault.Wrap(fault.Operational, context.Cause(g.ctx))
	}
	return g.err
}
