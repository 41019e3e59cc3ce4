// Package promote copies a released image from one registry to another with
// everything attached to it, behind an optional verification gate: the
// index, every platform and attestation manifest, every OCI 1.1 referrer
// (and what refers to those referrers), and cosign's legacy
// `.sig`/`.att`/`.sbom` tags.
//
// The order makes every state in between safe: blobs, then manifests
// bottom-up by digest, then referrers (the referrers API or fallback tag of
// the destination, whichever it supports), then legacy tags, then — after
// the destination passed the gate — the destination tag. A run that stops
// part-way leaves the destination tag as it was; running again finishes the
// job, skipping what is there, and a run with nothing left to do writes
// nothing.
//
// Decisions the design leaves open, as implemented:
//
//   - Referrers are re-discovered at the destination, not copied as an
//     index: the source referrer manifests of a subject are pushed with
//     oci.PushReferrers, so a registry with the referrers API indexes them
//     itself and one without gets the `sha256-<hex>` fallback tag merged,
//     once per subject. The source's fallback tag is never copied as such.
//   - Legacy tags: absent at the destination, the source's tag image is
//     copied byte for byte. Present with other content, `.sig` and `.att`
//     are merged — the destination keeps its signatures and gains the
//     source's, deduplicated as `cosign sign` does when it appends to an
//     existing tag — because a prime registry may carry signatures of its
//     own and overwriting would silently drop them. `.sbom` holds one
//     document (`cosign attach sbom` replaces it), so the source's replaces
//     the destination's.
//   - With a gate, the destination is verified by digest after everything
//     but its tag is copied, and the tag is written only when it passes:
//     a promoted tag never names an image that failed at its new location.
//   - "Skipped" counts what was found present at the destination; the
//     content below a manifest found present is not walked (a registry
//     holds a manifest only once everything it references is there).
package promote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/verify"
)

// DefaultConcurrency is how many images CopyAll copies at once.
const DefaultConcurrency = 4

// Gate decides whether an image may be promoted. image is
// "host/repo:tag@sha256:…" (or "host/repo@sha256:…"): the digest is what is
// verified, the tag is there for the policy's templates. A nil error with a
// result that did not pass is a verification failure; an error means no
// verdict could be reached (the registry could not be asked).
type Gate func(ctx context.Context, image string) (*verify.Result, error)

// VerifierGate is the gate of `seal copy --policy`: v verifies each image
// through c (one verifier, trusted material loaded once, for the whole run).
func VerifierGate(v *verify.Verifier, c *oci.Client) Gate {
	return func(ctx context.Context, image string) (*verify.Result, error) {
		ref, err := c.ParseReference(image)
		if err != nil {
			return nil, err
		}
		res := v.Verify(ctx, c, ref)
		return &res, nil
	}
}

// Options configure Copy and CopyAll.
type Options struct {
	// Gate, when set, verifies the source before anything is copied and the
	// destination before its tag is written.
	Gate Gate
	// Concurrency bounds the images CopyAll copies at once
	// (DefaultConcurrency when < 1).
	Concurrency int
}

// Count is how many things were written, and how many were found present.
type Count struct {
	Copied  int64 `json:"copied"`
	Skipped int64 `json:"skipped"`
}

// LegacyCount counts cosign legacy tags.
type LegacyCount struct {
	Copied int64 `json:"copied"`
	// Merged tags existed at the destination with other signatures, which
	// were kept.
	Merged  int64 `json:"merged"`
	Skipped int64 `json:"skipped"`
}

// Verification holds the gate's verdicts.
type Verification struct {
	Source *verify.Result `json:"source"`
	// Destination is nil when the source did not pass (nothing was copied).
	Destination *verify.Result `json:"destination"`
}

// Result is the outcome of promoting one image.
type Result struct {
	// Source is the reference as given; Destination the tag written.
	Source      string `json:"source"`
	Destination string `json:"destination"`
	// Digest is what Source resolved to, once; the destination tag names
	// the same digest.
	Digest    string `json:"digest,omitempty"`
	MediaType string `json:"mediaType,omitempty"`

	// Manifests and Blobs count every manifest and blob of the image tree,
	// its referrers and legacy tag images; Bytes are the blobs' sizes.
	Manifests Count `json:"manifests"`
	Blobs     Count `json:"blobs"`
	Bytes     Count `json:"bytes"`
	// Referrers counts the referrers made discoverable at the destination
	// (skipped: already listed there).
	Referrers  Count       `json:"referrers"`
	LegacyTags LegacyCount `json:"legacyTags"`
	// Tagged is true when the destination tag was written, false when it
	// already named Digest (or the copy did not get that far).
	Tagged bool `json:"tagged"`

	Verification *Verification `json:"verification,omitempty"`
	// Warnings are things attached at the source that could not be copied
	// and were left out: a referrers listing naming a manifest that does not
	// exist, or one whose subject is another manifest.
	Warnings []string `json:"warnings,omitempty"`
	// Error says why the image was not (completely) promoted.
	Error string `json:"error,omitempty"`
}

// Passed reports whether the image was promoted.
func (r *Result) Passed() bool { return r.Error == "" }

// Copy promotes src to dst: src is resolved once, gated (when opts.Gate is
// set), copied with everything attached, the destination gated, and dst
// tagged last. The Result is returned also on failure, with what was done.
func Copy(ctx context.Context, c *oci.Client, src name.Reference, dst name.Tag, opts Options) (*Result, error) {
	r := newRun(c)
	return r.copy(ctx, src, dst, opts)
}

// Pair is one line of a batch: a source image and the destination tag.
type Pair struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
}

// maxPairs bounds a batch file, against a file that is not one.
const maxPairs = 100_000

// ReadPairs reads a batch: one "SRC DST" pair per line, blank lines and
// lines starting with # ignored. Errors name the line.
func ReadPairs(rd io.Reader) ([]Pair, error) {
	var out []Pair
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fault.Inputf("line %d: want \"SRC DST\", got %d fields", n, len(f))
		}
		if len(out) == maxPairs {
			return nil, fault.Inputf("more than %d pairs", maxPairs)
		}
		out = append(out, Pair{Source: f[0], Destination: f[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fault.Inputf("read pairs: %w", err)
	}
	return out, nil
}

// ParsePair parses a source IMAGE and a destination. The destination is a
// repository with a tag; without one it takes the source's tag
// (`seal copy staging/app:v1 prime/app` writes prime/app:v1), and a
// digest-only source then needs an explicit one. A destination digest is
// refused: promotion writes a tag.
func ParsePair(c *oci.Client, src, dst string) (name.Reference, name.Tag, error) {
	sref, err := c.ParseReference(src)
	if err != nil {
		return nil, name.Tag{}, err
	}
	if strings.Contains(dst, "@") {
		return nil, name.Tag{}, fault.Inputf("destination %q: a digest cannot be written, name a tag", dst)
	}
	dref, err := c.ParseReference(dst)
	if err != nil {
		return nil, name.Tag{}, err
	}
	dtag, ok := dref.(name.Tag)
	if !ok {
		return nil, name.Tag{}, fault.Inputf("destination %q is not a tag", dst)
	}
	if _, err := name.NewTag(dst, name.StrictValidation); err != nil {
		// No explicit tag: the source's.
		var stag string
		switch s := sref.(type) {
		case name.Tag:
			stag = s.TagStr()
		case name.Digest:
			// host/repo:tag@sha256:… carries a tag too.
			if before, _, ok := strings.Cut(src, "@"); ok {
				if t, err := name.NewTag(before, name.StrictValidation); err == nil {
					stag = t.TagStr()
				}
			}
		}
		if stag == "" {
			return nil, name.Tag{}, fault.Inputf("destination %q has no tag and the source %q names none", dst, src)
		}
		dtag = dtag.Context().Tag(stag)
	}
	return sref, dtag, nil
}

// CopyAll promotes every pair over one client, opts.Concurrency at a time.
// All pairs are parsed before anything is copied (a bad line is an input
// error and nothing is copied); then every pair is attempted even when some
// fail. The results are in the order of pairs. The error joins the
// failures; its kind is that of `seal verify`'s exit code: an image that
// failed the gate (1) over bad input (2) over an operational failure (3).
func CopyAll(ctx context.Context, c *oci.Client, pairs []Pair, opts Options) ([]*Result, error) {
	type job struct {
		src name.Reference
		dst name.Tag
	}
	jobs := make([]job, len(pairs))
	seen := map[string]int{}
	for i, p := range pairs {
		src, dst, err := ParsePair(c, p.Source, p.Destination)
		if err != nil {
			return nil, fmt.Errorf("pair %d (%s %s): %w", i+1, p.Source, p.Destination, err)
		}
		key := dst.Context().Name() + ":" + dst.TagStr()
		if j, dup := seen[key]; dup {
			return nil, fault.Inputf("pairs %d and %d both write %s", j+1, i+1, key)
		}
		seen[key] = i
		jobs[i] = job{src, dst}
	}
	n := opts.Concurrency
	if n < 1 {
		n = DefaultConcurrency
	}
	r := newRun(c)
	results := make([]*Result, len(jobs))
	errs := make([]error, len(jobs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) {
					return
				}
				results[i], errs[i] = r.copy(ctx, jobs[i].src, jobs[i].dst, opts)
				results[i].Source = pairs[i].Source
			}
		}()
	}
	wg.Wait()
	return results, joinBySeverity(errs)
}

// joinBySeverity joins errs under one kind: verification over input over
// operational.
func joinBySeverity(errs []error) error {
	err := errors.Join(errs...)
	if err == nil {
		return nil
	}
	kind := fault.Unknown
	rank := map[fault.Kind]int{fault.Unknown: 0, fault.Operational: 1, fault.Input: 2, fault.Verification: 3}
	for _, e := range errs {
		if e == nil {
			continue
		}
		k := fault.KindOf(e)
		if k == fault.Unknown {
			k = fault.Operational
		}
		if rank[k] > rank[kind] {
			kind = k
		}
	}
	return fault.Wrap(kind, err)
}

// copy promotes one image; the Result is never nil.
func (r *run) copy(ctx context.Context, src name.Reference, dst name.Tag, opts Options) (*Result, error) {
	res := &Result{Source: src.String(), Destination: dst.Context().Name() + ":" + dst.TagStr()}
	fail := func(err error) (*Result, error) {
		res.Error = strings.Join(strings.Fields(err.Error()), " ")
		return res, err
	}
	desc, err := r.c.Resolve(ctx, src)
	if err != nil {
		return fail(err)
	}
	res.Digest, res.MediaType = desc.Digest.String(), string(desc.MediaType)
	srcDigest := src.Context().Digest(desc.Digest.String())
	dstImage := res.Destination + "@" + res.Digest

	if opts.Gate != nil {
		res.Verification = &Verification{}
		v, err := opts.Gate(ctx, gateImage(src, res.Digest))
		res.Verification.Source = v
		if err := verdict(v, err, srcDigest.String()); err != nil {
			return fail(err)
		}
	}

	k := r.copier(src.Context(), dst.Context())
	defer k.fill(res)
	wrap := func(err error) error { return fmt.Errorf("copy %s to %s: %w", srcDigest, dst.Context(), err) }
	top, err := r.c.Manifest(ctx, srcDigest)
	if err != nil {
		return fail(wrap(err))
	}
	if err := k.copyAll(ctx, top); err != nil {
		return fail(wrap(err))
	}

	if opts.Gate != nil {
		// Verified by digest before the tag is written: a promoted tag never
		// names an image that does not verify where it now is.
		v, err := opts.Gate(ctx, dstImage)
		res.Verification.Destination = v
		if err := verdict(v, err, dstImage); err != nil {
			return fail(err)
		}
	}

	cur, err := r.c.Resolve(ctx, dst)
	switch {
	case err == nil && cur.Digest == desc.Digest:
		return res, nil
	case err != nil && !oci.IsNotFound(err):
		return fail(fmt.Errorf("tag %s: %w", dst, err))
	}
	if err := r.c.Tag(ctx, dst, top.Raw, string(top.Descriptor.MediaType)); err != nil {
		return fail(err)
	}
	res.Tagged = true
	return res, nil
}

// gateImage names the source for the gate: the reference as given with the
// digest it resolved to, so that the policy sees the tag and the verifier
// does not resolve it again.
func gateImage(src name.Reference, digest string) string {
	switch s := src.(type) {
	case name.Tag:
		return s.Name() + "@" + digest
	default:
		return src.String()
	}
}

// verdict turns a gate's answer into an error when the image did not pass.
func verdict(v *verify.Result, err error, image string) error {
	switch {
	case err != nil:
		if fault.KindOf(err) == fault.Unknown {
			err = fault.Wrap(fault.Operational, err)
		}
		return fmt.Errorf("verify %s: %w", image, err)
	case v == nil:
		return fault.Operationalf("verify %s: no verdict", image)
	case !v.Passed:
		return v.Err()
	}
	return nil
}
