package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/internal/workpool"
	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/signing"
)

// Kind is what `seal download` is asked for.
type Kind string

const (
	// Provenance is SLSA provenance, any version.
	Provenance Kind = "provenance"
	// SBOM is an SPDX or CycloneDX document.
	SBOM Kind = "sbom"
	// AnyAttestation is every in-toto attestation (not cosign's signature
	// statements, which carry no predicate).
	AnyAttestation Kind = "attestation"
)

// ParseKind checks a kind argument.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case Provenance, SBOM, AnyAttestation:
		return k, nil
	}
	return "", fault.Inputf("download %q: want provenance, sbom or attestation", s)
}

// accepts reports whether predicate type pt is of kind k.
func (k Kind) accepts(pt string) bool {
	switch k {
	case Provenance:
		return strings.HasPrefix(pt, "https://slsa.dev/provenance/")
	case SBOM:
		return pt == attestation.PredicateSPDX || strings.HasPrefix(pt, attestation.PredicateSPDX+"/") ||
			pt == attestation.PredicateCycloneDX || strings.HasPrefix(pt, attestation.PredicateCycloneDX+"/")
	case AnyAttestation:
		return pt != "" && pt != signing.CosignSignPredicate
	}
	return false
}

// Formats of a downloaded attestation's source.
const (
	SourceBundle   = "bundle"   // a Sigstore bundle referrer (cosign v3, seal)
	SourceLegacy   = "legacy"   // a layer of cosign's `.att` tag
	SourceBuildKit = "buildkit" // an unsigned statement in BuildKit's attestation manifest
)

// DownloadOptions configure Download.
type DownloadOptions struct {
	Kind Kind
	// PredicateType (a URI or a short name) narrows Kind to one type.
	PredicateType string
	// Platforms (OS/ARCH[/VARIANT]) keep only those platform manifests'
	// attestations; each must exist. Without, the image's own attestations
	// come first, then each platform manifest's.
	Platforms   []string
	Concurrency int // DefaultConcurrency when < 1

	// Gate, when set, verifies the image first (see Gate); its error, for
	// an image that does not pass, is Download's and nothing is read.
	// Download then returns only the attestations the verdict rests on (each
	// required attestation's signed artifact that counted) of the kind asked
	// for, read back by digest: never BuildKit's unsigned statements, nor a
	// signed attestation that did not verify or that the verdict did not
	// need. A kind the rule does not require, or a platform asked for with
	// nothing of the kind verified on it, is a verification error (exit 1).
	Gate Gate
}

// Gate verifies ref, resolving it once, and returns the verdict of an image
// that passed, or the error of one that did not. pkg/verify is the engine
// (the CLI adapts verify.Verifier.Verify); this package depends only on
// what the verdict says.
type Gate func(ctx context.Context, ref name.Reference) (*Verdict, error)

// Verdict is what a passing verification rests on, as Download needs it.
type Verdict struct {
	// Digest is the manifest digest ref resolved to: what was verified.
	Digest string
	// Rule is the policy rule the image passed under; empty when none
	// matched (and the policy let it pass).
	Rule string
	// Attestations are the rule's required attestations, one per manifest
	// that needed it (verify.Result.Attestations).
	Attestations []VerifiedAttestation
}

// VerifiedAttestation is one required attestation of a verdict; Manifest,
// Digest and Tag locate the signed artifact that counted
// (verify.AttestationSource), empty when none did.
type VerifiedAttestation struct {
	PredicateType string
	Platform      string
	Verified      bool
	Identity      string
	Issuer        string
	Format        string // SourceBundle or SourceLegacy
	Manifest      string // the manifest digest it is attached to and about
	Digest        string // the referrer manifest's (bundle) or the `.att` layer's (legacy)
	Tag           string // the `.att` tag (legacy)
}

// Downloaded is what Download found for one image.
type Downloaded struct {
	Image     string `json:"image"`
	Reference string `json:"reference"` // repository@digest the image resolved to
	Digest    string `json:"digest"`
	// Rule is the policy rule the image passed under (with a Gate).
	Rule         string  `json:"rule,omitempty"`
	Attestations []Found `json:"attestations"`
}

// Found is one predicate attached to a manifest. The same statement
// found several times (BuildKit's, then signed by `seal attest
// --from-buildkit` as a bundle and in `.att`) is one Found with several
// sources.
type Found struct {
	// Subject is the manifest digest the statement is about; Platform its
	// platform, empty for an index.
	Subject       string `json:"subject"`
	Platform      string `json:"platform,omitempty"`
	PredicateType string `json:"predicateType"`
	// Signed is true when a source carries a signature. Without a Gate
	// nobody checked whose: Download itself does not verify.
	Signed bool `json:"signed"`
	// Verified is set with a Gate: the statement is one the verdict rests
	// on, signed by Identity (Issuer for a certificate), and Sources lists
	// only the artifacts that counted.
	Verified  bool            `json:"verified,omitempty"`
	Identity  string          `json:"identity,omitempty"`
	Issuer    string          `json:"issuer,omitempty"`
	Sources   []Source        `json:"sources"`
	Predicate json.RawMessage `json:"predicate"`
}

// Source is where a Found was read.
type Source struct {
	Format string `json:"format"` // SourceBundle, SourceLegacy or SourceBuildKit
	Signed bool   `json:"signed"`
	// Digest of the referrer manifest (bundle), the `.att` layer (legacy)
	// or the attestation manifest (buildkit).
	Digest string `json:"digest"`
	Tag    string `json:"tag,omitempty"` // the `.att` tag (legacy)
}

// Download resolves image once and returns the predicates of kind attached
// to it and to its platform manifests: Sigstore bundle referrers and
// cosign `.att` layers (signed, not verified), and the statements of
// BuildKit's attestation manifests in the index (unsigned). Every statement
// returned names its manifest's digest as subject.
//
// Anything of the kind asked for that cannot be read intact — a referrer,
// bundle or layer that does not match its digest, a statement about
// another manifest, an annotation that lies about the predicate type — is
// an error, as is finding nothing. With opts.Gate, only what the
// verification counted is read and returned (see DownloadOptions.Gate).
func Download(ctx context.Context, c *oci.Client, img string, opts DownloadOptions) (*Downloaded, error) {
	kind, err := ParseKind(string(opts.Kind))
	if err != nil {
		return nil, err
	}
	accept, what := kind.accepts, string(kind)
	if opts.PredicateType != "" {
		pt, err := attestation.PredicateTypeFor(opts.PredicateType)
		if err != nil {
			return nil, err
		}
		if !kind.accepts(pt) {
			return nil, fault.Inputf("--predicate-type %s is not a %s type", pt, kind)
		}
		accept, what = func(s string) bool { return s == pt }, pt
	}
	wants, err := parsePlatforms(opts.Platforms)
	if err != nil {
		return nil, err
	}
	refs, err := parseRefs(c, []string{img})
	if err != nil {
		return nil, err
	}
	ref := refs[0]
	var only *counted
	if opts.Gate != nil {
		verdict, err := opts.Gate(ctx, ref)
		if err != nil {
			return nil, err
		}
		h, err := v1.NewHash(verdict.Digest)
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", ref, err)
		}
		// The gate resolved the reference; everything after reads the
		// digest it verified, never the tag again.
		ref = ref.Context().Digest(h.String())
		only = countedOf(verdict, accept)
	}
	im, err := describe(ctx, c, img, ref)
	if err != nil {
		return nil, err
	}
	var subjects []subject
	if len(wants) > 0 {
		if subjects, err = im.selectPlatforms(wants); err != nil {
			return nil, fmt.Errorf("download %s: %w", im.digest(), err)
		}
	} else {
		subjects = append(subjects, im.subject(im.top, ""))
		for _, s := range im.platforms() {
			if s.desc.Digest != im.top.Digest {
				subjects = append(subjects, s)
			}
		}
	}

	if only != nil {
		if err := only.covers(subjects, len(wants) > 0, what); err != nil {
			return nil, fmt.Errorf("download %s: %w", im.digest(), err)
		}
	}

	found := make([][]Found, len(subjects))
	errs := make([]error, len(subjects))
	if opts.Concurrency < 1 {
		opts.Concurrency = DefaultConcurrency
	}
	workpool.Each(ctx, concurrency(opts.Concurrency), len(subjects), func(ctx context.Context, i int) {
		if only != nil && len(only.on[subjects[i].desc.Digest.String()]) == 0 {
			return // nothing verified on it: nothing of it is read
		}
		found[i], errs[i] = attached(ctx, c, subjects[i], accept, only)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("download %s: %w", im.digest(), err)
	}
	if only != nil {
		for i, s := range subjects {
			if err := only.readBack(s, found[i]); err != nil {
				return nil, fmt.Errorf("download %s: %w", im.digest(), err)
			}
		}
	}
	out := &Downloaded{Image: img, Reference: im.digest().String(), Digest: im.top.Digest.String(), Attestations: []Found{}}
	if only != nil {
		out.Rule = only.rule
	}
	for _, fs := range found {
		out.Attestations = append(out.Attestations, fs...)
	}
	if len(out.Attestations) == 0 {
		where := "the image"
		if len(wants) > 0 {
			where = platformList(subjects)
		} else if ps := im.platforms(); len(ps) > 0 && im.top.Kind != index.KindImage {
			where = "the index or its platforms (" + platformList(ps) + ")"
		}
		return nil, fault.Inputf("download %s: no %s attestation on %s", im.digest(), what, where)
	}
	return out, nil
}

// copyOf is one statement read from one source.
type copyOf struct {
	statement *attestation.Statement
	source    Source
}

// attached reads what is attached to s (bundle referrers, `.att`) and what
// the index holds for it (BuildKit), signed sources first, and merges
// copies of the same statement. With only, it reads nothing but the
// artifacts only holds for s (so never BuildKit's), each found by digest
// before anything of it is fetched.
func attached(ctx context.Context, c *oci.Client, s subject, accept func(string) bool, only *counted) ([]Found, error) {
	var copies []copyOf
	b, err := bundles(ctx, c, s, accept, only)
	if err != nil {
		return nil, err
	}
	copies = append(copies, b...)
	l, err := legacyAtt(ctx, c, s, accept, only)
	if err != nil {
		return nil, err
	}
	copies = append(copies, l...)
	if only == nil && s.node != nil && len(s.node.Attestations) > 0 {
		stmts, err := buildKitStatements(ctx, c, s)
		if err != nil {
			return nil, err
		}
		for _, st := range stmts {
			if !accept(st.PredicateType) {
				continue
			}
			copies = append(copies, copyOf{st.Statement, Source{Format: SourceBuildKit, Digest: st.source.String()}})
		}
	}

	var out []Found
	byKey := map[[32]byte]int{}
	for _, cp := range copies {
		st := cp.statement
		if !st.HasSubjectDigest(s.desc.Digest.Algorithm, s.desc.Digest.Hex) {
			// Parsers below check this already; a statement about another
			// manifest must never be returned for this one.
			return nil, fault.Inputf("%s statement from %s is about %s, not %s", cp.source.Format, cp.source.Digest, strings.Join(st.SubjectDigests(), ", "), s.desc.Digest)
		}
		key, pred, err := predicateKey(st)
		if err != nil {
			return nil, fmt.Errorf("%s statement from %s: %w", cp.source.Format, cp.source.Digest, err)
		}
		if i, ok := byKey[key]; ok {
			out[i].Sources = append(out[i].Sources, cp.source)
			out[i].Signed = out[i].Signed || cp.source.Signed
			continue
		}
		byKey[key] = len(out)
		f := Found{
			Subject: s.desc.Digest.String(), Platform: s.platform, PredicateType: st.PredicateType,
			Signed: cp.source.Signed, Sources: []Source{cp.source}, Predicate: pred,
		}
		if only != nil {
			// The statement read back must be of the type the verification
			// counted it as: the digest pins the content, this pins the reading.
			row := only.row(s.desc.Digest, cp.source)
			if row == nil || row.PredicateType != st.PredicateType {
				return nil, fault.Verificationf("%s %s read back is not the %s attestation verified", cp.source.Format, cp.source.Digest, s.platformName())
			}
			f.Verified, f.Identity, f.Issuer = true, row.Identity, row.Issuer
		}
		out = append(out, f)
	}
	return out, nil
}

// predicateKey identifies a statement's predicate type and predicate by
// value (keys sorted, numbers as written, no HTML escaping), so copies
// re-encoded by different signers are one; pred is the predicate compacted.
func predicateKey(st *attestation.Statement) ([32]byte, json.RawMessage, error) {
	var pred bytes.Buffer
	raw := st.Predicate
	if raw == nil {
		raw = json.RawMessage("null")
	}
	if err := json.Compact(&pred, raw); err != nil {
		return [32]byte{}, nil, fault.Inputf("predicate: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(pred.Bytes()))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return [32]byte{}, nil, fault.Inputf("predicate: %v", err)
	}
	var canon bytes.Buffer
	enc := json.NewEncoder(&canon)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return [32]byte{}, nil, err
	}
	return sha256.Sum256(append([]byte(st.PredicateType+"\n"), canon.Bytes()...)), pred.Bytes(), nil
}

// bundles reads the Sigstore bundle referrers of s whose predicate type
// accept takes (and, with only, that only holds).
func bundles(ctx context.Context, c *oci.Client, s subject, accept func(string) bool, only *counted) ([]copyOf, error) {
	refs, err := c.Referrers(ctx, s.digest)
	if err != nil {
		return nil, err
	}
	repo := s.digest.Context()
	var out []copyOf
	for _, d := range refs {
		if only != nil && only.row(s.desc.Digest, Source{Format: SourceBundle, Digest: d.Digest.String()}) == nil {
			continue
		}
		if skipReferrer(d, accept) {
			continue
		}
		ref := repo.Digest(d.Digest.String())
		m, err := c.Manifest(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("referrer %s: %w", ref, err)
		}
		if !isBundleManifest(m) {
			continue
		}
		br, err := signing.ParseBundleReferrer(m.Raw, s.desc.Digest)
		if err != nil {
			return nil, fault.Inputf("referrer %s: %v", ref, err)
		}
		if br.PredicateType == signing.CosignSignPredicate || (br.PredicateType != "" && !accept(br.PredicateType)) {
			continue
		}
		data, err := c.BlobBytes(ctx, repo, br.Layer, signing.MaxBundleSize)
		if err != nil {
			return nil, fmt.Errorf("referrer %s: %w", ref, err)
		}
		b, err := signing.ParseBundle(data, br.Layer)
		if err != nil {
			return nil, fault.Inputf("referrer %s: %v", ref, err)
		}
		st, err := signing.BundleStatement(b)
		if err != nil {
			return nil, fault.Inputf("referrer %s: %v", ref, err)
		}
		if br.PredicateType != "" && br.PredicateType != st.PredicateType {
			return nil, fault.Inputf("referrer %s: annotated as %s, but its statement is %s", ref, br.PredicateType, st.PredicateType)
		}
		if !st.HasSubjectDigest(s.desc.Digest.Algorithm, s.desc.Digest.Hex) {
			return nil, fault.Inputf("referrer %s: its statement is about %s, not %s", ref, strings.Join(st.SubjectDigests(), ", "), s.desc.Digest)
		}
		if !accept(st.PredicateType) {
			continue
		}
		out = append(out, copyOf{st, Source{Format: SourceBundle, Signed: true, Digest: d.Digest.String()}})
	}
	return out, nil
}

// skipReferrer reports whether the referrers listing already shows d is of
// no interest: not a bundle (registries that list the config media type
// instead of the artifact type, as go-containerregistry's does, list the
// empty type for bundles), one of BuildKit's attestation manifests (read
// from the index instead), or announcing a predicate type not asked for.
// The listing can only make Download skip a referrer, never trust one.
func skipReferrer(d v1.Descriptor, accept func(string) bool) bool {
	if at := d.ArtifactType; at != "" && !isBundleType(at) && at != signing.EmptyMediaType {
		return true
	}
	if d.Annotations[attestation.DockerReferenceTypeAnnotation] == attestation.DockerReferenceTypeAttestation {
		return true
	}
	pt := d.Annotations[signing.AnnotationPredicateType]
	return pt == signing.CosignSignPredicate || (pt != "" && !accept(pt))
}

func isBundleManifest(m *oci.Manifest) bool {
	if m.Descriptor.MediaType != types.OCIManifestSchema1 {
		return false
	}
	var peek struct {
		ArtifactType string `json:"artifactType"`
		Config       struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
	}
	if json.Unmarshal(m.Raw, &peek) != nil {
		return false
	}
	at := peek.ArtifactType
	if at == "" {
		at = peek.Config.MediaType
	}
	return isBundleType(at)
}

func isBundleType(mt string) bool {
	return mt == signing.BundleMediaType || strings.HasPrefix(mt, "application/vnd.dev.sigstore.bundle+json;version=")
}

// legacyAtt reads the layers of s's cosign `.att` tag whose predicate type
// accept takes (and, with only, that only holds).
func legacyAtt(ctx context.Context, c *oci.Client, s subject, accept func(string) bool, only *counted) ([]copyOf, error) {
	if only != nil && !only.hasFormat(s.desc.Digest, SourceLegacy) {
		return nil, nil
	}
	tag, err := oci.LegacyTag(s.digest, "."+string(signing.LegacyAttestation))
	if err != nil {
		return nil, err
	}
	m, err := c.Manifest(ctx, tag)
	if oci.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tag, err)
	}
	layers, err := signing.ParseLegacyManifest(m.Raw, signing.LegacyAttestation)
	if err != nil {
		return nil, fault.Inputf("%s: %v", tag, err)
	}
	var out []copyOf
	for _, l := range layers {
		if only != nil && only.row(s.desc.Digest, Source{Format: SourceLegacy, Digest: l.Digest.String(), Tag: tag.String()}) == nil {
			continue
		}
		if !accept(l.Annotations[signing.AnnotationAttPredicateType]) {
			continue
		}
		data, err := c.BlobBytes(ctx, s.digest.Context(), l, signing.MaxLegacyPayloadSize)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tag, err)
		}
		// Checks the layer's digest, the envelope, the statement's subject
		// and that the annotation tells the statement's predicate type.
		if _, err := signing.ParseLegacyLayer(signing.LegacyAttestation, l, data, s.desc.Digest); err != nil {
			return nil, fault.Inputf("%s: %v", tag, err)
		}
		var env struct {
			Payload     []byte `json:"payload"`
			PayloadType string `json:"payloadType"`
		}
		if err := json.Unmarshal(data, &env); err != nil {
			return nil, fault.Inputf("%s layer %s: %v", tag, l.Digest, err)
		}
		st, err := attestation.ParseStatement(env.Payload)
		if err != nil {
			return nil, fmt.Errorf("%s layer %s: %w", tag, l.Digest, err)
		}
		out = append(out, copyOf{st, Source{Format: SourceLegacy, Signed: true, Digest: l.Digest.String(), Tag: tag.String()}})
	}
	return out, nil
}

// platformName names s in messages.
func (s subject) platformName() string {
	if s.platform == "" {
		return "the image"
	}
	return s.platform
}

// counted is what a verification's verdict rests on, of the kind asked
// for: the signed artifact that met each required attestation, by the
// manifest it is about.
type counted struct {
	rule string
	rows []VerifiedAttestation            // every required attestation, for messages
	on   map[string][]VerifiedAttestation // manifest digest -> verified rows of the kind
}

func countedOf(v *Verdict, accept func(string) bool) *counted {
	c := &counted{rule: v.Rule, rows: v.Attestations, on: map[string][]VerifiedAttestation{}}
	for _, a := range v.Attestations {
		if a.Verified && a.Manifest != "" && a.Digest != "" && accept(a.PredicateType) {
			c.on[a.Manifest] = append(c.on[a.Manifest], a)
		}
	}
	return c
}

// row is the verified attestation of manifest d that src is the counted
// artifact of, or nil.
func (c *counted) row(d v1.Hash, src Source) *VerifiedAttestation {
	rows := c.on[d.String()]
	for i, a := range rows {
		if a.Format == src.Format && a.Digest == src.Digest && (src.Format != SourceLegacy || a.Tag == src.Tag) {
			return &rows[i]
		}
	}
	return nil
}

func (c *counted) hasFormat(d v1.Hash, format string) bool {
	for _, a := range c.on[d.String()] {
		if a.Format == format {
			return true
		}
	}
	return false
}

// covers checks that something of the kind was verified at all and, when
// platforms were asked for, on each of them: a platform whose attestation
// did not verify (or was not required) is refused, not left out.
func (c *counted) covers(subjects []subject, platformsAsked bool, what string) error {
	if len(c.on) == 0 {
		if c.rule == "" {
			return fault.Verificationf("no policy rule matches the image, so no %s attestation was verified", what)
		}
		var types []string
		for _, a := range c.rows {
			if !slices.Contains(types, a.PredicateType) {
				types = append(types, a.PredicateType)
			}
		}
		if len(types) == 0 {
			return fault.Verificationf("policy rule %q requires no attestations, so no %s attestation was verified", c.rule, what)
		}
		return fault.Verificationf("policy rule %q requires no %s attestation, so none was verified (it requires %s)", c.rule, what, strings.Join(types, ", "))
	}
	if !platformsAsked {
		return nil
	}
	var missing []string
	for _, s := range subjects {
		if len(c.on[s.desc.Digest.String()]) == 0 {
			missing = append(missing, s.platformName())
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var where []string
	for _, rows := range c.on {
		for _, a := range rows {
			w := a.Platform
			if w == "" {
				w = "the image"
			}
			if !slices.Contains(where, w) {
				where = append(where, w)
			}
		}
	}
	slices.Sort(where)
	return fault.Verificationf("no verified %s attestation for %s (policy rule %q: verified for %s only)", what, strings.Join(missing, ", "), c.rule, strings.Join(where, ", "))
}

// readBack checks that every artifact counted on s was read back.
func (c *counted) readBack(s subject, found []Found) error {
	for _, a := range c.on[s.desc.Digest.String()] {
		ok := false
		for _, f := range found {
			for _, src := range f.Sources {
				if src.Format == a.Format && src.Digest == a.Digest {
					ok = true
				}
			}
		}
		if !ok {
			return fault.Verificationf("the %s attestation verified for %s (%s %s) cannot be read back: it changed after verification", a.PredicateType, s.platformName(), a.Format, a.Digest)
		}
	}
	return nil
}
