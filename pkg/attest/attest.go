package attest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/internal/workpool"
	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/signing"
)

// DefaultConcurrency is how many images are read, or attestations written,
// at once.
const DefaultConcurrency = 4

// Options configure Attest and FromBuildKit.
type Options struct {
	Signer signing.Signer
	// Format: signing.FormatBundle (default) writes Sigstore bundle
	// referrers as cosign v3 does; FormatLegacy cosign's `.att` tag;
	// FormatBoth both.
	Format signing.Format

	// PredicateType (a URI or a short name of attestation.PredicateTypes)
	// and Predicate (its JSON) are what Attest signs. FromBuildKit takes
	// its statements from the index and refuses these.
	PredicateType string
	Predicate     []byte

	// Platforms (OS/ARCH[/VARIANT]) select platform manifests: Attest then
	// attests those platform manifests of an index instead of the image
	// itself; FromBuildKit signs only their statements. Every platform must
	// exist in every image.
	Platforms []string

	// SLSAVersion "1" makes FromBuildKit convert SLSA v0.2 provenance to v1
	// before signing it; "" signs every statement's predicate as it is.
	SLSAVersion string

	Concurrency int              // DefaultConcurrency when < 1
	Now         func() time.Time // the referrer's created annotation; time.Now when nil
}

// Result is one attestation written (or, with Error set, not written).
type Result struct {
	// Image is the reference as given; Reference the repository@digest the
	// attestation is about, Digest that digest.
	Image     string `json:"image"`
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	// Index is the digest of the index listing this platform manifest;
	// empty when the attestation is about IMAGE itself.
	Index         string         `json:"index,omitempty"`
	Platform      string         `json:"platform,omitempty"`
	PredicateType string         `json:"predicateType"`
	Format        signing.Format `json:"format"`
	// Source is the BuildKit attestation manifest the statement came from
	// (FromBuildKit); ConvertedFrom the predicate type it had before
	// --slsa-version converted it.
	Source        string `json:"source,omitempty"`
	ConvertedFrom string `json:"convertedFrom,omitempty"`
	// Attestation locates what was written: the referrer manifest's digest
	// (bundle) or the tag (legacy).
	Attestation string `json:"attestation"`
	Error       string `json:"error,omitempty"`
}

// planned is one statement ready to sign.
type planned struct {
	subj          subject
	predicateType string
	statement     []byte
	source        string
	convertedFrom string
}

// Attest signs an in-toto statement v1 carrying opts.Predicate about each
// image's manifest digest (or, with Platforms, about each selected platform
// manifest of an index) and attaches it as opts.Format says.
//
// The predicate is validated (JSON, and the fields SLSA provenance, SPDX and
// CycloneDX require) and every image resolved and described before anything
// is signed: any failure there returns an error and no results, and nothing
// is pushed. Writing then goes on for every attestation even when some fail;
// the results say which, and the error joins the failures.
func Attest(ctx context.Context, c *oci.Client, images []string, opts Options) ([]Result, error) {
	format, err := checkOptions(&opts)
	if err != nil {
		return nil, err
	}
	if opts.PredicateType == "" || opts.Predicate == nil {
		return nil, fault.Inputf("attest: a predicate type and a predicate are required")
	}
	pt, err := attestation.PredicateTypeFor(opts.PredicateType)
	if err != nil {
		return nil, err
	}
	if err := attestation.ValidatePredicate(pt, opts.Predicate); err != nil {
		return nil, err
	}
	wants, err := parsePlatforms(opts.Platforms)
	if err != nil {
		return nil, err
	}
	plans, err := plan(ctx, c, images, opts, func(ctx context.Context, im *image) ([]planned, error) {
		subjects := []subject{im.subject(im.top, "")}
		if len(wants) > 0 {
			var err error
			if subjects, err = im.selectPlatforms(wants); err != nil {
				return nil, err
			}
		}
		out := make([]planned, 0, len(subjects))
		for _, s := range subjects {
			st, err := attestation.NewStatement(pt, opts.Predicate, s.statementSubject())
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.desc.Digest, err)
			}
			out = append(out, planned{subj: s, predicateType: pt, statement: st})
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return write(ctx, c, plans, opts, format)
}

func checkOptions(opts *Options) (signing.Format, error) {
	if opts.Signer == nil {
		return "", fault.Inputf("attest: no signer")
	}
	format, err := signing.ParseFormat(string(opts.Format))
	if err != nil {
		return "", err
	}
	if opts.Concurrency < 1 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return format, nil
}

func parsePlatforms(values []string) ([]v1.Platform, error) {
	out, err := ParsePlatforms(values)
	if err != nil {
		return nil, fmt.Errorf("--platform: %w", err)
	}
	return out, nil
}

// plan resolves and describes every image on the pool and asks each for
// its statements. A manifest reached twice (the same image named twice, or
// by tag and by digest) is attested once.
func plan(ctx context.Context, c *oci.Client, images []string, opts Options, each func(context.Context, *image) ([]planned, error)) ([]planned, error) {
	refs, err := parseRefs(c, images)
	if err != nil {
		return nil, err
	}
	per := make([][]planned, len(refs))
	errs := make([]error, len(refs))
	workpool.Each(ctx, concurrency(opts.Concurrency), len(refs), func(ctx context.Context, i int) {
		im, err := describe(ctx, c, images[i], refs[i])
		if err != nil {
			errs[i] = err
			return
		}
		if per[i], err = each(ctx, im); err != nil {
			errs[i] = fmt.Errorf("attest %s: %w", im.digest(), err)
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []planned
	seen := map[v1.Hash]int{} // subject digest -> the image it was first reached from
	for i, ps := range per {
		for _, p := range ps {
			if first, ok := seen[p.subj.desc.Digest]; ok && first != i {
				continue
			}
			seen[p.subj.desc.Digest] = i
			out = append(out, p)
		}
	}
	return out, nil
}

// write signs and attaches every planned statement in every format, on the
// pool: a bundle referrer per statement, and per manifest one update of its
// `.att` tag holding all of that manifest's statements (so that writers of
// one tag do not race each other).
func write(ctx context.Context, c *oci.Client, plans []planned, opts Options, format signing.Format) ([]Result, error) {
	formats := []signing.Format{format}
	if format == signing.FormatBoth {
		formats = []signing.Format{signing.FormatBundle, signing.FormatLegacy}
	}
	results := make([]Result, len(plans)*len(formats))
	errs := make([]error, len(results))
	slot := func(p, f int) int { return p*len(formats) + f }

	type job struct {
		f     int   // index into formats
		plans []int // bundle: one; legacy: every plan of one manifest
	}
	var jobs []job
	for fi, f := range formats {
		if f == signing.FormatBundle {
			for i := range plans {
				jobs = append(jobs, job{fi, []int{i}})
			}
			continue
		}
		byDigest := map[v1.Hash]int{}
		for i, p := range plans {
			j, ok := byDigest[p.subj.desc.Digest]
			if !ok {
				j = len(jobs)
				byDigest[p.subj.desc.Digest] = j
				jobs = append(jobs, job{f: fi})
			}
			jobs[j].plans = append(jobs[j].plans, i)
		}
	}
	for i, p := range plans {
		for fi, f := range formats {
			s := p.subj
			results[slot(i, fi)] = Result{
				Image: s.image, Reference: s.digest.String(), Digest: s.desc.Digest.String(),
				Index: s.index, Platform: s.platform, PredicateType: p.predicateType, Format: f,
				Source: p.source, ConvertedFrom: p.convertedFrom,
			}
		}
	}
	workpool.Each(ctx, concurrency(opts.Concurrency), len(jobs), func(ctx context.Context, j int) {
		jb := jobs[j]
		var (
			where []string
			err   error
		)
		switch formats[jb.f] {
		case signing.FormatBundle:
			var d string
			d, err = writeBundle(ctx, c, plans[jb.plans[0]], opts)
			where = []string{d}
		case signing.FormatLegacy:
			var tag string
			tag, err = writeLegacy(ctx, c, plans, jb.plans, opts)
			for range jb.plans {
				where = append(where, tag)
			}
		}
		for k, pi := range jb.plans {
			r := &results[slot(pi, jb.f)]
			if err != nil {
				e := fmt.Errorf("attest %s: %w", plans[pi].subj.digest, err)
				r.Error, errs[slot(pi, jb.f)] = e.Error(), e
				continue
			}
			r.Attestation = where[k]
		}
	})
	return results, errors.Join(errs...)
}

func writeBundle(ctx context.Context, c *oci.Client, p planned, opts Options) (string, error) {
	b, err := signing.SignDSSE(ctx, opts.Signer, p.statement)
	if err != nil {
		return "", err
	}
	art, err := signing.BundleReferrer(p.subj.desc, b, p.predicateType, opts.Now())
	if err != nil {
		return "", err
	}
	d, err := signing.AttachReferrer(ctx, c, p.subj.digest, art)
	if err != nil {
		return "", err
	}
	return d.Digest.String(), nil
}

func writeLegacy(ctx context.Context, c *oci.Client, plans []planned, which []int, opts Options) (string, error) {
	layers := make([]signing.LegacyLayer, 0, len(which))
	for _, i := range which {
		l, err := signing.AttestLegacy(ctx, opts.Signer, plans[i].statement)
		if err != nil {
			return "", err
		}
		layers = append(layers, l)
	}
	var subject name.Digest = plans[which[0]].subj.digest
	tag, err := signing.AttachLegacy(ctx, c, subject, signing.LegacyAttestation, layers, opts.Signer.PublicKey())
	if err != nil {
		return "", err
	}
	return tag.String(), nil
}
