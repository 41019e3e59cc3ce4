package signing

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/internal/workpool"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/oci"
)

// Format says where signatures are stored.
type Format string

const (
	// FormatBundle is cosign v3's: a Sigstore bundle as an OCI 1.1 referrer
	// (the referrers tag fallback on registries without the API).
	FormatBundle Format = "bundle"
	// FormatLegacy is cosign's `sha256-<hex>.sig` tag image.
	FormatLegacy Format = "legacy"
	// FormatBoth writes both, for consumers of either.
	FormatBoth Format = "both"
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatBundle, FormatLegacy, FormatBoth:
		return f, nil
	case "":
		return FormatBundle, nil
	}
	return "", fault.Inputf("--format %q: want bundle, legacy or both", s)
}

func (f Format) formats() []Format {
	if f == FormatBoth {
		return []Format{FormatBundle, FormatLegacy}
	}
	return []Format{f}
}

// DefaultConcurrency is how many manifests are signed at once.
const DefaultConcurrency = 4

// Options configure Sign.
type Options struct {
	Signer Signer
	Format Format // FormatBundle when empty
	// Recursive also signs every platform manifest of an index (not
	// BuildKit's attestation manifests, which are signed by attest).
	Recursive bool
	// Annotations are signed with the image: subject annotations of the
	// bundle's statement, "optional" of the simple-signing payload.
	Annotations map[string]string
	Concurrency int              // DefaultConcurrency when < 1
	Now         func() time.Time // the referrer's created annotation; time.Now when nil
}

// Result is one signature written.
type Result struct {
	// Image is the reference as given; Reference the repository@digest
	// that was signed (for a tag, the digest it pointed to when resolved).
	Image     string `json:"image"`
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	Format    Format `json:"format"`
	// Index is the digest of the index whose platform manifest this is
	// (--recursive); empty for the image itself.
	Index    string `json:"index,omitempty"`
	Platform string `json:"platform,omitempty"`
	// Signature locates what was written: the referrer manifest's digest
	// (bundle) or the tag (legacy).
	Signature string `json:"signature"`
	Error     string `json:"error,omitempty"`
}

// target is one manifest to sign.
type target struct {
	image    string
	digest   name.Digest
	desc     v1.Descriptor
	index    string
	platform string
}

// Sign signs every image by digest: each reference is resolved once (a tag
// moved meanwhile does not matter: the digest resolved is what is signed and
// reported), with Recursive each platform manifest of an index too, and the
// signatures are written through c by a bounded pool of workers, in a safe
// order (blobs, then the manifest, then the referrers index or tag).
//
// All images are attempted even when some fail; the results list what was
// signed (and, with Error set, what was not) and the error joins the failures.
func Sign(ctx context.Context, c *oci.Client, images []string, opts Options) ([]Result, error) {
	if opts.Signer == nil {
		return nil, fault.Inputf("sign: no signer")
	}
	format, err := ParseFormat(string(opts.Format))
	if err != nil {
		return nil, err
	}
	if opts.Concurrency < 1 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	refs := make([]name.Reference, len(images))
	for i, img := range images {
		if refs[i], err = c.ParseReference(img); err != nil {
			return nil, err
		}
	}

	// Resolve (and expand) every image, then sign every target: two passes
	// over one pool, so that a failure to resolve is reported before any
	// signature is written for anyone.
	expanded := make([][]target, len(refs))
	errs := make([]error, len(refs))
	workpool.Each(ctx, opts.Concurrency, len(refs), func(ctx context.Context, i int) {
		expanded[i], errs[i] = resolveTargets(ctx, c, images[i], refs[i], opts.Recursive)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	type job struct {
		t target
		f Format
	}
	var jobs []job
	seen := map[string]bool{}
	for _, ts := range expanded {
		for _, t := range ts {
			// A manifest named twice (or an index and its child) is
			// signed once.
			if seen[t.digest.String()] {
				continue
			}
			seen[t.digest.String()] = true
			for _, f := range format.formats() {
				jobs = append(jobs, job{t, f})
			}
		}
	}
	w := writer{c: c, opts: opts}
	results := make([]Result, len(jobs))
	jobErrs := make([]error, len(jobs))
	workpool.Each(ctx, opts.Concurrency, len(jobs), func(ctx context.Context, i int) {
		j := jobs[i]
		r := Result{
			Image: j.t.image, Reference: j.t.digest.String(), Digest: j.t.desc.Digest.String(),
			Format: j.f, Index: j.t.index, Platform: j.t.platform,
		}
		var err error
		switch j.f {
		case FormatBundle:
			r.Signature, err = w.bundle(ctx, j.t)
		case FormatLegacy:
			r.Signature, err = w.legacy(ctx, j.t)
		}
		if err != nil {
			err = fmt.Errorf("sign %s: %w", j.t.digest, err)
			r.Error = err.Error()
		}
		results[i], jobErrs[i] = r, err
	})
	return results, errors.Join(jobErrs...)
}

// resolveTargets resolves ref once and, for an index with recursive, lists
// its platform manifests from the index fetched by that digest.
func resolveTargets(ctx context.Context, c *oci.Client, image string, ref name.Reference, recursive bool) ([]target, error) {
	desc, err := c.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	top := target{image: image, digest: ref.Context().Digest(desc.Digest.String()), desc: desc}
	if !recursive || !desc.MediaType.IsIndex() {
		return []target{top}, nil
	}
	out := []target{top}
	seen := map[v1.Hash]bool{desc.Digest: true}
	var walk func(d name.Digest, depth int) error
	walk = func(d name.Digest, depth int) error {
		m, err := c.Manifest(ctx, d)
		if err != nil {
			return err
		}
		idx, err := m.Index()
		if err != nil {
			return fault.Inputf("index %s: %v", d, err)
		}
		for _, child := range idx.Manifests {
			if index.IsAttestation(child) || seen[child.Digest] || isUnknownPlatform(child.Platform) {
				continue
			}
			seen[child.Digest] = true
			cd := ref.Context().Digest(child.Digest.String())
			switch {
			case child.MediaType.IsImage():
				out = append(out, target{
					image: image, digest: cd, desc: child,
					index: d.DigestStr(), platform: index.FormatPlatform(child.Platform),
				})
			case child.MediaType.IsIndex():
				if depth >= 4 {
					return fault.Inputf("index %s: nested more than 4 levels", d)
				}
				out = append(out, target{image: image, digest: cd, desc: child, index: d.DigestStr()})
				if err := walk(cd, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(top.digest, 1); err != nil {
		return nil, err
	}
	return out, nil
}

// isUnknownPlatform is BuildKit's placeholder platform of attestation
// manifests, also seen without the annotation in hand-made indexes.
func isUnknownPlatform(p *v1.Platform) bool {
	return p != nil && p.OS == "unknown" && p.Architecture == "unknown"
}

// writer writes signatures through one client.
type writer struct {
	c    *oci.Client
	opts Options
}

func (w *writer) bundle(ctx context.Context, t target) (string, error) {
	st, err := SignStatement(t.desc.Digest, w.opts.Annotations)
	if err != nil {
		return "", err
	}
	b, err := SignDSSE(ctx, w.opts.Signer, st)
	if err != nil {
		return "", err
	}
	art, err := BundleReferrer(t.desc, b, CosignSignPredicate, w.opts.Now())
	if err != nil {
		return "", err
	}
	d, err := AttachReferrer(ctx, w.c, t.digest, art)
	if err != nil {
		return "", err
	}
	return d.Digest.String(), nil
}

func (w *writer) legacy(ctx context.Context, t target) (string, error) {
	payload, err := SimpleSigningPayload(t.digest, w.opts.Annotations)
	if err != nil {
		return "", err
	}
	layer, err := SignLegacy(ctx, w.opts.Signer, payload)
	if err != nil {
		return "", err
	}
	tag, err := AttachLegacy(ctx, w.c, t.digest, LegacySignature, []LegacyLayer{layer}, w.opts.Signer.PublicKey())
	if err != nil {
		return "", err
	}
	return tag.String(), nil
}

// AttachReferrer pushes a referrer artifact of subject in the safe order:
// its blobs, then the manifest, then (on registries without the referrers
// API) the fallback index entry, so nothing ever lists a missing manifest.
func AttachReferrer(ctx context.Context, c *oci.Client, subject name.Digest, art *Artifact) (v1.Descriptor, error) {
	if err := pushBlobs(ctx, c, subject.Context(), art.Blobs); err != nil {
		return v1.Descriptor{}, err
	}
	return c.PushReferrer(ctx, subject, art.Manifest, string(art.Descriptor.MediaType))
}

// legacyAttempts bounds how often a lost race for a legacy tag is retried.
const legacyAttempts = 8

// legacyLocks serialises the writers of one legacy tag within the process.
var legacyLocks sync.Map // tag string -> *sync.Mutex

// AttachLegacy adds layers to the `.sig`/`.att` image of subject, keeping the
// signatures already there (and skipping layers already there, see
// AppendLegacy): read, merge, write (blobs, the manifest by digest, then the
// tag), re-read to confirm, and again on a lost race with a writer
// elsewhere. Writers in this process take turns. pub is the signer's key,
// for cosign's duplicate rule; it may be nil. It returns the tag.
func AttachLegacy(ctx context.Context, c *oci.Client, subject name.Digest, kind LegacyKind, layers []LegacyLayer, pub crypto.PublicKey) (name.Tag, error) {
	h, err := v1.NewHash(subject.DigestStr())
	if err != nil {
		return name.Tag{}, fault.Inputf("%s: %v", subject, err)
	}
	tag := subject.Context().Tag(LegacyTag(h, kind))
	mu, _ := legacyLocks.LoadOrStore(tag.String(), &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	for attempt := 1; attempt <= legacyAttempts; attempt++ {
		start := time.Now()
		existing, err := currentManifest(ctx, c, tag)
		if err != nil {
			return tag, err
		}
		art, added, err := AppendLegacy(existing, kind, layers, pub)
		if err != nil {
			return tag, err
		}
		if added > 0 {
			if err := pushBlobs(ctx, c, tag.Context(), art.Blobs); err != nil {
				return tag, err
			}
			if _, err := c.PushManifest(ctx, tag.Context(), art.Manifest, string(art.Descriptor.MediaType)); err != nil {
				return tag, err
			}
			if err := c.Tag(ctx, tag, art.Manifest, string(art.Descriptor.MediaType)); err != nil {
				return tag, err
			}
		}
		took := time.Since(start)
		ok, err := legacyHolds(ctx, c, tag, kind, layers, pub)
		if err != nil {
			return tag, err
		}
		if ok {
			// A writer elsewhere that read the tag before our write may
			// still overwrite it: look again after longer than such a
			// writer needs between its read and its write.
			if err := sleepCtx(ctx, max(2*took, 10*time.Millisecond)+rand.N(10*time.Millisecond)); err != nil {
				return tag, fault.Wrap(fault.Operational, err)
			}
			if ok, err = legacyHolds(ctx, c, tag, kind, layers, pub); err != nil || ok {
				return tag, err
			}
		}
		if err := sleepCtx(ctx, rand.N(time.Duration(attempt)*20*time.Millisecond)); err != nil {
			return tag, fault.Wrap(fault.Operational, err)
		}
	}
	return tag, fault.Operationalf("%s: lost the race with other writers %d times", tag, legacyAttempts)
}

// currentManifest returns the manifest under tag, nil when there is none.
func currentManifest(ctx context.Context, c *oci.Client, tag name.Tag) ([]byte, error) {
	m, err := c.Manifest(ctx, tag)
	if oci.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return m.Raw, nil
}

// legacyHolds reports whether the image under tag has each of layers (or
// an equivalent signature, as AppendLegacy dedupes).
func legacyHolds(ctx context.Context, c *oci.Client, tag name.Tag, kind LegacyKind, layers []LegacyLayer, pub crypto.PublicKey) (bool, error) {
	raw, err := currentManifest(ctx, c, tag)
	if err != nil || raw == nil {
		return false, err
	}
	_, added, err := AppendLegacy(raw, kind, layers, pub)
	if err != nil {
		return false, err
	}
	return added == 0, nil
}

func pushBlobs(ctx context.Context, c *oci.Client, repo name.Repository, blobs []Blob) error {
	for _, b := range blobs {
		if err := c.PushBlob(ctx, repo, b.Descriptor, b.Data); err != nil {
			return err
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
