package attest

import (
	"context"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/oci"
)

// FromBuildKit signs the statements BuildKit stored, unsigned, in each
// image's attestation manifests (either BuildKit layout; SLSA provenance v1
// or v0.2, SPDX, anything else BuildKit attested), each one against the
// platform manifest its attestation manifest annotates — never the index —
// and attaches them as opts.Format says. Platforms limits it to those
// platforms; SLSAVersion "1" converts v0.2 provenance to v1.
//
// Each image must be an index, and every platform selected must have an
// attestation manifest. Every attestation manifest is checked before
// anything is signed: its subject (when it has one), each layer's digest
// and size, and each statement's subject digest must be the platform
// manifest's. The predicate is re-wrapped, unchanged unless converted, in
// an in-toto statement v1 about repository@platform-digest (BuildKit names
// its subject after the tag it pushed to, which no longer says where the
// image lives), and validated as Attest validates a predicate given by hand.
func FromBuildKit(ctx context.Context, c *oci.Client, images []string, opts Options) ([]Result, error) {
	format, err := checkOptions(&opts)
	if err != nil {
		return nil, err
	}
	if opts.PredicateType != "" || opts.Predicate != nil {
		return nil, fault.Inputf("attest from BuildKit: the statements come from the index; a predicate type or predicate cannot be given too")
	}
	switch opts.SLSAVersion {
	case "", "1":
	default:
		return nil, fault.Inputf("--slsa-version %q: want 1 (convert SLSA v0.2 provenance to v1), or nothing to sign each predicate as it is", opts.SLSAVersion)
	}
	wants, err := parsePlatforms(opts.Platforms)
	if err != nil {
		return nil, err
	}
	plans, err := plan(ctx, c, images, opts, func(ctx context.Context, im *image) ([]planned, error) {
		if im.top.Kind != index.KindIndex {
			return nil, fault.Inputf("not an index: BuildKit stores its attestation manifests in the index it pushes")
		}
		subjects := im.platforms()
		if len(wants) > 0 {
			var err error
			if subjects, err = im.selectPlatforms(wants); err != nil {
				return nil, err
			}
		}
		if len(subjects) == 0 {
			return nil, fault.Inputf("no platform manifests")
		}
		var (
			out     []planned
			missing []string
		)
		for _, s := range subjects {
			stmts, err := buildKitStatements(ctx, c, s)
			if err != nil {
				return nil, err
			}
			if len(stmts) == 0 {
				missing = append(missing, s.platform+" ("+s.desc.Digest.String()+")")
				continue
			}
			for _, st := range stmts {
				p, err := rewrap(s, st, opts.SLSAVersion)
				if err != nil {
					return nil, fmt.Errorf("%s (attestation manifest %s): %w", s.platform, st.source, err)
				}
				out = append(out, p)
			}
		}
		if len(missing) > 0 {
			return nil, fault.Inputf("no BuildKit attestation manifest for %s", strings.Join(missing, ", "))
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return write(ctx, c, plans, opts, format)
}

// buildKitStatement is one statement of an attestation manifest, checked.
type buildKitStatement struct {
	attestation.Attached
	source v1.Hash // the attestation manifest
}

// buildKitStatements reads the attestation manifests the index lists for
// platform manifest s, in index order, and returns their statements checked
// against s's digest (see attestation.ParseBuildKitAttestation). Every
// manifest and layer is fetched by digest and checked against it.
func buildKitStatements(ctx context.Context, c *oci.Client, s subject) ([]buildKitStatement, error) {
	repo := s.digest.Context()
	var out []buildKitStatement
	for _, a := range s.node.Attestations {
		ref := repo.Digest(a.Digest.String())
		m, err := c.Manifest(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("%s (attestation manifest %s): %w", s.platform, a.Digest, err)
		}
		fetch := func(d v1.Descriptor) ([]byte, error) {
			return c.BlobBytes(ctx, repo, d, attestation.MaxStatementSize)
		}
		atts, err := attestation.ParseBuildKitAttestation(m.Raw, fetch, s.desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s (attestation manifest %s): %w", s.platform, a.Digest, err)
		}
		for _, at := range atts {
			out = append(out, buildKitStatement{Attached: at, source: a.Digest})
		}
	}
	return out, nil
}

// rewrap makes the statement seal signs for a BuildKit statement about s.
func rewrap(s subject, st buildKitStatement, slsaVersion string) (planned, error) {
	pt, pred := st.PredicateType, []byte(st.Statement.Predicate)
	p := planned{subj: s, source: st.source.String()}
	if slsaVersion == "1" && pt == attestation.PredicateSLSAProvenanceV02 {
		conv, err := attestation.ConvertV02ToV1(pred)
		if err != nil {
			return planned{}, err
		}
		p.convertedFrom, pt, pred = pt, attestation.PredicateSLSAProvenanceV1, conv
	}
	if pred == nil {
		return planned{}, fault.Inputf("%s statement has no predicate", pt)
	}
	if err := attestation.ValidatePredicate(pt, pred); err != nil {
		return planned{}, err
	}
	stmt, err := attestation.NewStatement(pt, pred, s.statementSubject())
	if err != nil {
		return planned{}, err
	}
	p.predicateType, p.statement = pt, stmt
	return p, nil
}
