package verify

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"

	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/policy"
	"github.com/seal-dev/seal/pkg/signing"
)

// maxConfigSize caps an image config read for its platform.
const maxConfigSize = 4 << 20

// run is the verification of one image.
type run struct {
	v    *Verifier
	c    *oci.Client
	ref  name.Reference
	repo name.Repository
	res  *Result

	top       *oci.Manifest
	subjects  map[v1.Hash]*subject
	platforms []target // of an index, once read
	single    *policy.Platform
}

// target is a manifest an attestation must be attached to.
type target struct {
	digest   v1.Hash
	platform *policy.Platform // nil for the image itself (the index)
}

func (t target) name() string {
	if t.platform == nil {
		return "the image"
	}
	return t.platform.String()
}

// Verify checks one image against the policy. It resolves ref once and
// checks only that digest afterwards. It returns no error: every failure,
// whatever its kind, is in the Result (see Result.Kind).
func (v *Verifier) Verify(ctx context.Context, c *oci.Client, ref name.Reference) Result {
	r := &run{v: v, c: c, ref: ref, repo: ref.Context(), res: &Result{Image: ref.String()}, subjects: map[v1.Hash]*subject{}}
	if err := r.verify(ctx); err != nil {
		r.abort(err)
	}
	res := r.res
	if res.Signatures == nil {
		res.Signatures = []Signature{}
	}
	if res.Attestations == nil {
		res.Attestations = []Attestation{}
	}
	if res.Errors == nil {
		res.Errors = []string{}
	}
	res.Passed = len(res.Errors) == 0
	if res.Passed {
		res.Kind = fault.Unknown
	}
	return *res
}

// failf records a verification failure; checking goes on, so that a result
// lists every reason.
func (r *run) failf(format string, args ...any) {
	r.res.Errors = append(r.res.Errors, fmt.Sprintf(format, args...))
	r.res.Kind = fault.Verification
}

// abort records a failure that stops the image: bad input, or a registry
// that cannot be asked. A verification failure found before stays the
// image's kind: it is a verdict, the abort only an incomplete check.
func (r *run) abort(err error) {
	r.res.Errors = append(r.res.Errors, err.Error())
	if r.res.Kind == fault.Verification {
		return
	}
	switch k := fault.KindOf(err); k {
	case fault.Unknown:
		r.res.Kind = fault.Operational
	default:
		r.res.Kind = k
	}
}

func (r *run) verify(ctx context.Context) error {
	// One GET resolves the reference and gives the manifest: the digest is
	// computed from what was served, and every later request names it.
	m, err := r.c.Manifest(ctx, r.ref)
	if err != nil {
		return err
	}
	r.top = m
	digest := m.Descriptor.Digest
	r.res.Digest = digest.String()

	img, err := policy.ParseImage(r.ref.String())
	if err != nil {
		return err
	}
	img.Digest = digest.String()
	match := r.v.policy.MatchImage(img)
	if match.Rule == nil {
		switch match.Unmatched {
		case policy.Allow:
		case policy.Warn:
			r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("no policy rule matches %s/%s (unmatched: warn)", img.Registry, img.Repository))
		default:
			r.failf("no policy rule matches %s/%s (unmatched: %s)", img.Registry, img.Repository, policy.Deny)
		}
		return nil
	}
	r.res.Rule = match.Rule.Name
	req, err := match.Render(r.v.now())
	if err != nil {
		if fault.KindOf(err) == fault.Verification {
			r.failf("%v", err)
			return nil
		}
		return err
	}
	if e := req.Exception; e != nil {
		r.res.Exception = &Exception{Reason: e.Reason, Expires: e.Expires, Expired: e.Expired}
		if err := e.Err(); err != nil {
			r.failf("%v", err)
		}
	}
	if err := r.signatures(ctx, req); err != nil {
		return err
	}
	for _, att := range req.Attestations {
		if err := r.attestation(ctx, att); err != nil {
			return err
		}
	}
	return nil
}

// judged is one signature weighed against the rule.
type judged struct {
	row   Signature
	who   signer
	auths []int // the rule's authorities the signer is
	e     *evidence
}

func (r *run) signatures(ctx context.Context, req *policy.Requirements) error {
	d := r.top.Descriptor.Digest
	isSig := func(pt string) bool { return pt == signing.CosignSignPredicate }
	found, err := r.bundles(ctx, d, isSig)
	if err != nil {
		return err
	}
	var all []judged
	for _, e := range found {
		if j, ok := r.judgeSignature(e, d, req); ok {
			all = append(all, j)
		}
	}
	count := signers(all)
	if count < req.Threshold {
		// Legacy tags only when the bundles do not suffice: one request
		// less per image in the common case.
		legacy, err := r.legacy(ctx, d, signing.LegacySignature, isSig)
		if err != nil {
			return err
		}
		for _, e := range legacy {
			if j, ok := r.judgeSignature(e, d, req); ok {
				all = append(all, j)
			}
		}
		count = signers(all)
	}
	for _, j := range all {
		r.res.Signatures = append(r.res.Signatures, j.row)
		if j.row.Verified {
			r.res.inputs = append(r.res.inputs, input{uri: j.e.source, digest: j.e.digest})
		}
	}
	if count < req.Threshold {
		r.failf("%s", signatureFailure(req, all, count))
	}
	return nil
}

// judgeSignature applies POLICY.md's signature checks to one piece of
// evidence, cheapest first: what it is and what it is about (from the
// payload, before any cryptography), then the signature against the
// trusted material, then the signer against the rule's authorities. ok is
// false for an attestation that did not claim to be anything else (a
// referrer listed without its predicate type): not a signature, nor an
// attempt at one.
func (r *run) judgeSignature(e *evidence, d v1.Hash, req *policy.Requirements) (_ judged, ok bool) {
	j := judged{row: Signature{Format: e.format}, e: e}
	fail := func(reason string) (judged, bool) {
		if j.row.Identity == "" {
			j.row.Identity, j.row.Issuer = e.claimed()
		}
		j.row.Reason = reason
		return j, true
	}
	if e.err != nil {
		return fail(e.err.Error())
	}
	switch {
	case e.statement != nil:
		if pt := e.statement.PredicateType; pt != signing.CosignSignPredicate {
			if e.format == "bundle" && e.announced == "" {
				return j, false
			}
			return fail(fmt.Sprintf("a %s statement, not a signature (a signature's predicate type is %s)", pt, signing.CosignSignPredicate))
		}
		if !e.statement.HasSubjectDigest(d.Algorithm, d.Hex) {
			return fail(fmt.Sprintf("signature subject %s is not the image digest %s", strings.Join(e.statement.SubjectDigests(), ", "), d))
		}
	case e.simple != nil:
		if got := e.simple.Critical.Image.DockerManifestDigest; got != d.String() {
			return fail(fmt.Sprintf("legacy signature payload signs %s, not the image digest %s", got, d))
		}
	default:
		return fail("neither a signed statement nor a simple-signing payload")
	}
	who, err := e.signer(r.v)
	if err != nil {
		return fail(err.Error())
	}
	j.who = who
	j.row.Identity, j.row.Issuer = who.identity()
	idx, why := who.matchAll(req.Authorities)
	if len(idx) == 0 {
		return fail(why)
	}
	j.auths = idx
	j.row.Verified = true
	return j, true
}

// signers is how many distinct signers can be matched one-to-one to
// distinct authorities (a maximum bipartite matching: sizes are tiny).
func signers(all []judged) int {
	edges := map[string][]int{}
	var order []string
	for _, j := range all {
		if !j.row.Verified {
			continue
		}
		id := j.who.id()
		if _, ok := edges[id]; !ok {
			order = append(order, id)
		}
		edges[id] = append(edges[id], j.auths...)
	}
	owner := map[int]string{} // authority -> signer
	var try func(id string, seen map[int]bool) bool
	try = func(id string, seen map[int]bool) bool {
		for _, a := range edges[id] {
			if seen[a] {
				continue
			}
			seen[a] = true
			if o, taken := owner[a]; !taken || try(o, seen) {
				owner[a] = id
				return true
			}
		}
		return false
	}
	n := 0
	for _, id := range order {
		if try(id, map[int]bool{}) {
			n++
		}
	}
	return n
}

// signatureFailure says why the threshold was not met, naming what was
// found, so that "signed by the wrong workflow" reads as such.
func signatureFailure(req *policy.Requirements, all []judged, count int) string {
	head := "no signature by an allowed identity"
	if req.Threshold > 1 {
		head = fmt.Sprintf("threshold not met: %d of %d required signers (distinct signers, each an authority of its own)", count, req.Threshold)
	}
	if len(all) == 0 {
		return head + " (no signatures found)"
	}
	var parts []string
	for _, j := range all {
		var s string
		switch {
		case j.row.Verified:
			s = "by " + j.row.Identity + " (allowed)"
		case j.row.Identity != "":
			s = "by " + j.row.Identity + ": " + j.row.Reason
		default:
			s = j.row.Reason
		}
		parts = append(parts, s)
	}
	noun := "signatures"
	if len(all) == 1 {
		noun = "signature"
	}
	return fmt.Sprintf("%s (found %d %s: %s)", head, len(all), noun, strings.Join(parts, "; "))
}

// attestation checks one required attestation on every manifest the rule
// says needs it.
func (r *run) attestation(ctx context.Context, att *policy.Attestation) error {
	top := target{digest: r.top.Descriptor.Digest}
	switch att.Platforms.Mode {
	case policy.PlatformsIndex:
		if err := r.requireOn(ctx, att, r.topTarget(ctx, top), ""); err != nil {
			return err
		}
	case policy.PlatformsAll:
		ts, err := r.allPlatforms(ctx)
		if err != nil {
			return err
		}
		if len(ts) == 0 {
			r.failf("no %s attestation for any platform: the index has no platform manifests", att.PredicateType)
		}
		for _, t := range ts {
			if err := r.requireOn(ctx, att, t, ""); err != nil {
				return err
			}
		}
	case policy.PlatformsList:
		for _, p := range att.Platforms.List {
			ts, err := r.platform(ctx, p)
			if err != nil {
				return err
			}
			if len(ts) == 0 {
				r.failf("no %s attestation for %s: the image has no %s manifest (it has %s)", att.PredicateType, p, p, r.platformList())
				r.res.Attestations = append(r.res.Attestations, Attestation{PredicateType: att.PredicateType, Platform: p.String(), Reason: "no such platform in the image"})
				continue
			}
			for _, t := range ts {
				if err := r.requireOn(ctx, att, t, ""); err != nil {
					return err
				}
			}
		}
	default: // on the index, or else on every platform manifest
		t := r.topTarget(ctx, top)
		row, ok, err := r.attestationOn(ctx, att, t)
		if err != nil {
			return err
		}
		if ok || !r.top.IsIndex() {
			r.record(att, row, ok, t, "")
			return nil
		}
		ts, err := r.allPlatforms(ctx)
		if err != nil {
			return err
		}
		if len(ts) == 0 {
			r.record(att, row, ok, t, "")
		}
		for _, t := range ts {
			if err := r.requireOn(ctx, att, t, "on the index or "); err != nil {
				return err
			}
		}
	}
	return nil
}

// requireOn checks that t carries a valid att and records the outcome.
func (r *run) requireOn(ctx context.Context, att *policy.Attestation, t target, alt string) error {
	row, ok, err := r.attestationOn(ctx, att, t)
	if err != nil {
		return err
	}
	r.record(att, row, ok, t, alt)
	return nil
}

func (r *run) record(att *policy.Attestation, row attRow, ok bool, t target, alt string) {
	r.res.Attestations = append(r.res.Attestations, row.Attestation)
	if ok {
		r.res.inputs = append(r.res.inputs, input{uri: row.e.source, digest: row.e.digest})
		return
	}
	where := "for " + t.name()
	if t.platform == nil {
		where = "on the image"
	}
	if row.found == 0 {
		r.failf("no %s attestation %s%s", att.PredicateType, alt, where)
		return
	}
	r.failf("no valid %s attestation %s%s (%s)", att.PredicateType, alt, where, row.Reason)
}

// attRow is the outcome for one attestation requirement on one manifest.
type attRow struct {
	Attestation
	found int       // candidates of the right predicate type
	e     *evidence // the one that counted
}

// attestationOn looks for one valid att attached to t: bundles first, then
// cosign's `.att` tag if none counts.
func (r *run) attestationOn(ctx context.Context, att *policy.Attestation, t target) (attRow, bool, error) {
	row := attRow{Attestation: Attestation{PredicateType: att.PredicateType}}
	if t.platform != nil {
		row.Platform = t.platform.String()
	}
	want := func(pt string) bool { return pt == att.PredicateType }
	var reasons []string
	for _, source := range []func() ([]*evidence, error){
		func() ([]*evidence, error) { return r.bundles(ctx, t.digest, want) },
		func() ([]*evidence, error) { return r.legacy(ctx, t.digest, signing.LegacyAttestation, want) },
	} {
		found, err := source()
		if err != nil {
			return row, false, err
		}
		for _, e := range found {
			ok, skip, who, reason := r.judgeAttestation(e, att, t)
			if skip {
				continue
			}
			row.found++
			if ok {
				row.Verified = true
				row.Identity, row.Issuer = who.identity()
				row.Format = e.format
				row.Source = &AttestationSource{Manifest: t.digest.String(), Digest: e.digest.String()}
				if e.format == "legacy" {
					row.Source.Tag = e.source
				}
				row.Reason = ""
				row.e = e
				return row, true, nil
			}
			reasons = append(reasons, reason)
		}
	}
	row.Reason = strings.Join(reasons, "; ")
	if row.found == 0 {
		row.Reason = "none found"
	}
	return row, false, nil
}

// judgeAttestation applies POLICY.md's attestation checks. skip is set for
// evidence that turns out to be of another predicate type (a referrer that
// did not announce its type): it is not a candidate.
func (r *run) judgeAttestation(e *evidence, att *policy.Attestation, t target) (ok, skip bool, who signer, reason string) {
	if e.err != nil {
		return false, false, who, e.err.Error()
	}
	if e.statement == nil {
		return false, true, who, ""
	}
	if e.statement.PredicateType != att.PredicateType {
		return false, true, who, ""
	}
	if !e.statement.HasSubjectDigest(t.digest.Algorithm, t.digest.Hex) {
		return false, false, who, fmt.Sprintf("attestation subject %s is not the manifest %s it is attached to",
			strings.Join(e.statement.SubjectDigests(), ", "), t.digest)
	}
	who, err := e.signer(r.v)
	if err != nil {
		return false, false, who, err.Error()
	}
	if idx, why := who.matchAll(att.Authorities); len(idx) == 0 {
		id, _ := who.identity()
		return false, false, who, fmt.Sprintf("signed by %s: %s", id, why)
	}
	if !att.HasCondition() {
		return true, false, who, ""
	}
	vars, err := celVars(e, t, who)
	if err != nil {
		return false, false, who, err.Error()
	}
	pass, err := att.Eval(vars)
	if err != nil {
		return false, false, who, err.Error()
	}
	if !pass {
		return false, false, who, fmt.Sprintf("condition is false: %s", att.Condition)
	}
	return true, false, who, ""
}

// celVars are a condition's variables besides image and vars, which come
// from the rendered rule.
func celVars(e *evidence, t target, who signer) (map[string]any, error) {
	var stmt map[string]any
	if err := json.Unmarshal(e.payload, &stmt); err != nil {
		return nil, fmt.Errorf("statement: %v", err)
	}
	var pred any
	if len(e.statement.Predicate) > 0 {
		if err := json.Unmarshal(e.statement.Predicate, &pred); err != nil {
			return nil, fmt.Errorf("predicate: %v", err)
		}
	}
	platform := map[string]any{"os": "", "architecture": "", "variant": ""}
	if t.platform != nil {
		platform = t.platform.Var()
	}
	var cert map[string]any
	if who.cert != nil {
		cert = policy.CertificateVar(*who.cert)
	} else {
		cert = policy.CertificateVar(certificate.Summary{})
	}
	return map[string]any{
		policy.VarPredicate:   pred,
		policy.VarStatement:   stmt,
		policy.VarPlatform:    platform,
		policy.VarCertificate: cert,
	}, nil
}

// topTarget is the image itself; a single-manifest image also has a
// platform (from its config), which conditions may read.
func (r *run) topTarget(ctx context.Context, t target) target {
	if !r.top.IsIndex() {
		if p, err := r.singlePlatform(ctx); err == nil {
			t.platform = p
		}
	}
	return t
}

// allPlatforms are the platform manifests of an index, or the image itself.
func (r *run) allPlatforms(ctx context.Context) ([]target, error) {
	if !r.top.IsIndex() {
		return []target{r.topTarget(ctx, target{digest: r.top.Descriptor.Digest})}, nil
	}
	ts, err := r.indexPlatforms()
	if err != nil {
		return nil, err
	}
	return ts, nil
}

// platform lists the manifests of platform p (several when p has no
// variant and the image has several).
func (r *run) platform(ctx context.Context, p policy.Platform) ([]target, error) {
	if !r.top.IsIndex() {
		sp, err := r.singlePlatform(ctx)
		if err != nil {
			return nil, err
		}
		if p.Matches(*sp) {
			return []target{{digest: r.top.Descriptor.Digest, platform: sp}}, nil
		}
		return nil, nil
	}
	ts, err := r.indexPlatforms()
	if err != nil {
		return nil, err
	}
	var out []target
	for _, t := range ts {
		if p.Matches(*t.platform) {
			out = append(out, t)
		}
	}
	return out, nil
}

func (r *run) platformList() string {
	if !r.top.IsIndex() {
		if r.single != nil {
			return r.single.String()
		}
		return "no platform"
	}
	var names []string
	for _, t := range r.platforms {
		names = append(names, t.platform.String())
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// indexPlatforms reads the platform manifests of the top index: image
// manifests with a real platform, not BuildKit's attestation manifests.
func (r *run) indexPlatforms() ([]target, error) {
	if r.platforms != nil {
		return r.platforms, nil
	}
	idx, err := r.top.Index()
	if err != nil {
		return nil, err
	}
	r.platforms = []target{}
	for _, d := range idx.Manifests {
		if index.IsAttestation(d) || !d.MediaType.IsImage() || d.Platform == nil ||
			d.Platform.OS == "" || d.Platform.OS == "unknown" || d.Platform.Architecture == "unknown" {
			continue
		}
		p := policy.Platform{OS: d.Platform.OS, Architecture: d.Platform.Architecture, Variant: d.Platform.Variant}
		r.platforms = append(r.platforms, target{digest: d.Digest, platform: &p})
	}
	return r.platforms, nil
}

// singlePlatform reads a single-manifest image's platform from its config.
func (r *run) singlePlatform(ctx context.Context) (*policy.Platform, error) {
	if r.single != nil {
		return r.single, nil
	}
	im, err := r.top.Image()
	if err != nil {
		return nil, err
	}
	data, err := r.c.BlobBytes(ctx, r.repo, im.Config, maxConfigSize)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fault.Inputf("config of %s: %v", r.top.Descriptor.Digest, err)
	}
	r.single = &policy.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	return r.single, nil
}

func hexBytes(s string) ([]byte, error) { return hex.DecodeString(s) }
