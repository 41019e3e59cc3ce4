// Package soak holds only tests: the whole release flow run many times
// through registries that fail at random (soak_test.go), and verification of
// many images by a pool of workers (load_test.go). `go test` runs short
// versions; `make soak` and `make load` run the full ones.
package soak

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/seal-dev/seal/internal/buildkit"
	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/attest"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/policy"
	"github.com/seal-dev/seal/pkg/promote"
	"github.com/seal-dev/seal/pkg/signing"
	"github.com/seal-dev/seal/pkg/verify"
)

// envInt reads a positive integer knob of the make targets, def when unset.
func envInt(t testing.TB, key string, def int) int {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", key, v)
	}
	return n
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newReleaseKey is a release key pair: its signer and its public key PEM.
func newReleaseKey(t testing.TB) (*signing.KeySigner, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	s, err := signing.NewKeySigner(k, signing.Services{})
	must(t, err)
	pub, err := cryptoutils.MarshalPublicKeyToPEM(s.PublicKey())
	must(t, err)
	return s, pub
}

// soakFaults are the proxy's AllFaults with a short slow response: the
// point is a response that arrives late, not a run that takes hours. 429
// keeps its Retry-After: 1, which the client's MaxDelay caps.
var soakFaults = []testenv.Fault{
	testenv.Fault500, testenv.Fault502, testenv.Fault503, testenv.Fault429,
	testenv.FaultReset, testenv.FaultTruncate,
	{Delay: 20 * time.Millisecond},
}

// soakRetry is fast but as persistent as the default: five tries per
// request, backoff from 2ms doubling to a 40ms cap.
var soakRetry = oci.Retry{Attempts: 5, BaseDelay: 2 * time.Millisecond, MaxDelay: 40 * time.Millisecond, MaxElapsed: 20 * time.Second}

// The release policy: every image signed by the release key and carrying
// SLSA v1 provenance on every platform. The destination's copy of a release
// must pass it, which is what "a complete release" means here.
const soakPolicy = `apiVersion: seal.dev/v1alpha1
kind: Policy
trust:
  keys:
    release: {path: release.pub}
unmatched: deny
rules:
  - name: release
    images: ["**"]
    signatures:
      authorities:
        - key: release
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        platforms: all
`

// side is one registry with the fault proxy in front of it.
type side struct {
	reg   *testenv.Registry
	proxy *testenv.FaultProxy
}

// steps of one iteration, in order.
var stepNames = []string{"index create", "sign", "attest", "copy", "verify"}

type stepStat struct {
	runs, ok, okAfterFaults, failed int
	faults                          int // injected while the step ran
}

// outcome of one iteration.
type outcome int

const (
	succeeded outcome = iota
	failedCleanly
	failedOtherKind // a transient fault reported as bad input or a failed check
	inconsistent
)

// soakReport is what the test prints.
type soakReport struct {
	iterations      int
	outcomes        map[outcome]int
	steps           map[string]*stepStat
	faultsByKind    map[string]int
	requests        int
	problems        []string // inconsistencies, by iteration
	otherKind       []string
	failures        []string // clean failures: the step and error
	sourceProblems  []string
	faultsInSuccess int
	elapsed         time.Duration
}

// TestSoakReleaseFlow runs the release flow — index create, sign
// --recursive, attest --from-buildkit, copy --policy to the other registry,
// verify there — SEAL_SOAK_ITERATIONS times (20 by default, `make soak`
// 200) through fault proxies in front of both registries failing
// SEAL_SOAK_RATE_PERCENT % of requests (default 10) with every kind of
// fault, seeded with SEAL_SOAK_SEED. Source and destination alternate
// between CNCF Distribution (referrers tag fallback) and go-containerregistry
// (referrers API). Each iteration is a new repository.
//
// After each iteration, whatever its outcome, a fault-free client checks
// the destination: every tag names a manifest whose whole tree exists,
// every referrer listed exists and names an existing subject, the release
// tag is absent or names the source's digest and passes the policy, and —
// when the copy reported success — every referrer and legacy signature of
// the source is at the destination. An iteration that breaks any of this is
// inconsistent, and there must be none. An iteration that fails must fail
// with an operational error (exit 3): a transient fault is never bad input
// nor a failed verification.
func TestSoakReleaseFlow(t *testing.T) {
	iterations := envInt(t, "SEAL_SOAK_ITERATIONS", 20)
	ratePct := envInt(t, "SEAL_SOAK_RATE_PERCENT", 10)
	seed := int64(envInt(t, "SEAL_SOAK_SEED", 8))
	ctx := context.Background()
	k, v := releaseKeyAndVerifier(t)

	rule := func(s int64) testenv.FaultRule {
		return testenv.FaultRule{Rate: float64(ratePct) / 100, Seed: s, Faults: soakFaults}
	}
	sides := [2]side{}
	for i, reg := range []*testenv.Registry{testenv.Distribution(t), testenv.GGCR(t)} {
		sides[i] = side{reg: reg, proxy: testenv.NewFaultProxy(t, "http://"+reg.Host, rule(seed+int64(i)))}
	}
	// faulty goes through the proxies; clean straight to the registries,
	// for setup and for the checks.
	faulty := oci.NewClient(oci.WithRetry(soakRetry))
	clean := oci.NewClient(oci.WithRetry(oci.Retry{Attempts: 1}))

	rep := newSoakReport(iterations)
	start := time.Now()
	for i := range iterations {
		src, dst := sides[i%2], sides[1-i%2]
		format := signing.FormatBundle
		if i%3 == 2 {
			// Every third release (both directions in turn) also carries
			// cosign's legacy .sig/.att tags, which the copy merges.
			format = signing.FormatBoth
		}
		it := &iteration{
			t: t, n: i, src: src, dst: dst, faulty: faulty, clean: clean, v: v,
			signer: k, format: format, repo: fmt.Sprintf("soak/app%04d", i),
		}
		out := it.run(ctx, rep)
		rep.outcomes[out]++
	}
	rep.elapsed = time.Since(start)
	for _, s := range sides {
		for kind, n := range s.proxy.FaultKinds() {
			rep.faultsByKind[kind] += n
		}
		for _, n := range s.proxy.Counts() {
			rep.requests += n
		}
	}
	rep.log(t)

	if n := rep.outcomes[inconsistent]; n != 0 {
		t.Errorf("%d inconsistent destination states (must be 0):\n%s", n, strings.Join(rep.problems, "\n"))
	}
	if len(rep.sourceProblems) != 0 {
		t.Errorf("source registry inconsistent:\n%s", strings.Join(rep.sourceProblems, "\n"))
	}
	if n := rep.outcomes[failedOtherKind]; n != 0 {
		t.Errorf("%d iterations failed with an error of another kind than operational:\n%s", n, strings.Join(rep.otherKind, "\n"))
	}
	// The run must have been a soak, not a stroll: faults were injected and
	// most of the flow still went through.
	total := 0
	for _, n := range rep.faultsByKind {
		total += n
	}
	if total == 0 {
		t.Errorf("no fault was injected")
	}
	if rep.outcomes[succeeded] < iterations/2 {
		t.Errorf("only %d of %d iterations succeeded", rep.outcomes[succeeded], iterations)
	}
}

func newSoakReport(iterations int) *soakReport {
	rep := &soakReport{
		iterations:   iterations,
		outcomes:     map[outcome]int{},
		steps:        map[string]*stepStat{},
		faultsByKind: map[string]int{},
	}
	for _, s := range stepNames {
		rep.steps[s] = &stepStat{}
	}
	return rep
}

// releaseKeyAndVerifier makes a release key and the verifier of soakPolicy
// naming it.
func releaseKeyAndVerifier(t testing.TB) (*signing.KeySigner, *verify.Verifier) {
	t.Helper()
	dir := t.TempDir()
	k, pubPEM := newReleaseKey(t)
	must(t, os.WriteFile(filepath.Join(dir, "release.pub"), pubPEM, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(soakPolicy), 0o644))
	pol, err := policy.Load(filepath.Join(dir, "policy.yaml"))
	must(t, err)
	v, err := verify.New(pol, nil)
	must(t, err)
	return k, v
}

func (r *soakReport) log(t *testing.T) {
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %d iterations in %s, %d registry requests\n", r.iterations, r.elapsed.Round(time.Millisecond), r.requests)
	total := 0
	kinds := slices.Sorted(maps.Keys(r.faultsByKind))
	var parts []string
	for _, k := range kinds {
		total += r.faultsByKind[k]
		parts = append(parts, fmt.Sprintf("%s %d", k, r.faultsByKind[k]))
	}
	fmt.Fprintf(&b, "faults injected: %d (%s)\n", total, strings.Join(parts, ", "))
	fmt.Fprintf(&b, "iterations: succeeded %d (with %d faults injected along the way), failed cleanly %d, failed with another kind %d, inconsistent %d\n",
		r.outcomes[succeeded], r.faultsInSuccess, r.outcomes[failedCleanly], r.outcomes[failedOtherKind], r.outcomes[inconsistent])
	okAfter, ops := 0, 0
	for _, s := range stepNames {
		st := r.steps[s]
		okAfter += st.okAfterFaults
		ops += st.runs
		fmt.Fprintf(&b, "  %-12s runs %4d  ok %4d  ok after faults %4d  failed %3d  faults %5d\n", s, st.runs, st.ok, st.okAfterFaults, st.failed, st.faults)
	}
	fmt.Fprintf(&b, "operations: %d, succeeded after retrying injected faults %d\n", ops, okAfter)
	for _, f := range r.failures {
		fmt.Fprintf(&b, "  clean failure: %s\n", f)
	}
	t.Log(b.String())
}

// iteration is one release through the flow.
type iteration struct {
	t           *testing.T
	n           int
	src, dst    side
	faulty      *oci.Client
	clean       *oci.Client
	v           *verify.Verifier
	signer      signing.Signer
	format      signing.Format
	repo        string
	faultsSoFar int
}

func (it *iteration) faults() int {
	n := 0
	for _, s := range []side{it.src, it.dst} {
		for _, c := range s.proxy.Faults() {
			n += c
		}
	}
	return n
}

// step runs one operation of the flow and accounts for it.
func (it *iteration) step(rep *soakReport, name string, op func() error) error {
	before := it.faults()
	err := op()
	injected := it.faults() - before
	st := rep.steps[name]
	st.runs++
	st.faults += injected
	it.faultsSoFar += injected
	if err != nil {
		st.failed++
		return fmt.Errorf("%s: %w", name, err)
	}
	st.ok++
	if injected > 0 {
		st.okAfterFaults++
	}
	return nil
}

func (it *iteration) run(ctx context.Context, rep *soakReport) outcome {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	created, copied, flowErr := it.flow(ctx, rep, it.push(ctx))

	// The checks go straight to the registries, with no fault.
	var srcDigest *v1.Hash
	if created != nil {
		srcDigest = &created.Digest
	}
	problems := it.checkDestination(ctx, srcDigest, copied)
	for _, p := range checkRepo(ctx, it.clean, it.src.reg.Host, it.repo) {
		rep.sourceProblems = append(rep.sourceProblems, fmt.Sprintf("iteration %d (%s → %s): source %s", it.n, it.src.reg.Name, it.dst.reg.Name, p))
	}
	where := fmt.Sprintf("iteration %d (%s → %s, %s)", it.n, it.src.reg.Name, it.dst.reg.Name, it.format)
	if len(problems) > 0 {
		for _, p := range problems {
			rep.problems = append(rep.problems, where+": "+p)
		}
		if flowErr != nil {
			rep.problems = append(rep.problems, where+": the flow had failed: "+flowErr.Error())
		}
		return inconsistent
	}
	if flowErr == nil {
		rep.faultsInSuccess += it.faultsSoFar
		return succeeded
	}
	if fault.KindOf(flowErr) == fault.Operational {
		rep.failures = append(rep.failures, where+": "+flowErr.Error())
		return failedCleanly
	}
	rep.otherKind = append(rep.otherKind, fmt.Sprintf("%s: %s error: %v", where, fault.KindOf(flowErr), flowErr))
	return failedOtherKind
}

// push is what CI pushed, straight to the source registry (the flow starts
// after it): one BuildKit per-platform index per platform. It returns the
// references of the pushes through the source's proxy.
func (it *iteration) push(ctx context.Context) []name.Reference {
	t := it.t
	var sources []name.Reference
	for _, arch := range []string{"amd64", "arm64"} {
		tag := fmt.Sprintf("%s:v1-linux-%s", it.repo, arch)
		img, err := buildkit.Build(buildkit.Options{
			Component: it.repo, Ref: it.src.reg.Ref(tag), Platform: v1.Platform{OS: "linux", Architecture: arch},
			Content: fmt.Appendf(nil, "soak %d %s\n", it.n, arch),
		})
		must(t, err)
		ref, err := name.NewTag(it.src.reg.Ref(tag))
		must(t, err)
		must(t, remote.WriteIndex(ref, img.Index(), remote.WithContext(ctx)))
		s, err := it.faulty.ParseReference(it.src.proxy.Host() + "/" + tag)
		must(t, err)
		sources = append(sources, s)
	}
	return sources
}

// flow is the release flow through the proxies. It returns the index
// created at the source (nil when index create failed) and whether the copy
// reported success.
func (it *iteration) flow(ctx context.Context, rep *soakReport, sources []name.Reference) (created *index.Created, copied bool, err error) {
	srcHost, dstHost := it.src.proxy.Host(), it.dst.proxy.Host()
	target, err := name.NewTag(srcHost+"/"+it.repo+":v1", name.Insecure)
	if err != nil {
		return nil, false, err
	}
	if err := it.step(rep, "index create", func() (err error) {
		created, err = index.Create(ctx, it.faulty, target, sources, index.CreateOptions{})
		return err
	}); err != nil {
		return nil, false, err
	}
	if err := it.step(rep, "sign", func() error {
		_, err := signing.Sign(ctx, it.faulty, []string{created.Reference}, signing.Options{Signer: it.signer, Recursive: true, Format: it.format})
		return err
	}); err != nil {
		return created, false, err
	}
	if err := it.step(rep, "attest", func() error {
		_, err := attest.FromBuildKit(ctx, it.faulty, []string{created.Reference}, attest.Options{Signer: it.signer, Format: it.format})
		return err
	}); err != nil {
		return created, false, err
	}
	if err := it.step(rep, "copy", func() error {
		s, d, err := promote.ParsePair(it.faulty, created.Reference, dstHost+"/"+it.repo+":v1")
		if err != nil {
			return err
		}
		_, err = promote.Copy(ctx, it.faulty, s, d, promote.Options{Gate: promote.VerifierGate(it.v, it.faulty)})
		copied = err == nil
		return err
	}); err != nil {
		return created, copied, err
	}
	return created, copied, it.step(rep, "verify", func() error {
		ref, err := it.faulty.ParseReference(dstHost + "/" + it.repo + ":v1")
		if err != nil {
			return err
		}
		res := it.v.Verify(ctx, it.faulty, ref)
		return res.Err()
	})
}

// checkDestination lists what is wrong at the destination. srcDigest is the
// release index at the source (nil when index create failed); copied says
// whether the copy reported success.
func (it *iteration) checkDestination(ctx context.Context, srcDigest *v1.Hash, copied bool) []string {
	problems := checkRepo(ctx, it.clean, it.dst.reg.Host, it.repo)
	dstRepo, err := name.NewRepository(it.dst.reg.Host+"/"+it.repo, name.Insecure)
	if err != nil {
		return append(problems, err.Error())
	}
	srcRepo, err := name.NewRepository(it.src.reg.Host+"/"+it.repo, name.Insecure)
	if err != nil {
		return append(problems, err.Error())
	}
	tag := dstRepo.Tag("v1")
	d, err := it.clean.Resolve(ctx, tag)
	switch {
	case oci.IsNotFound(err):
		if copied {
			problems = append(problems, "the copy reported success but "+tag.String()+" does not exist")
		}
	case err != nil:
		problems = append(problems, fmt.Sprintf("resolve %s: %v", tag, err))
	case srcDigest == nil || d.Digest != *srcDigest:
		problems = append(problems, fmt.Sprintf("%s names %s, not the release the source holds", tag, d.Digest))
	default:
		// The tag is there: it must be a complete, verified release.
		if res := it.v.Verify(ctx, it.clean, tag); !res.Passed {
			problems = append(problems, fmt.Sprintf("%s exists but does not pass the policy: %s", tag, strings.Join(res.Errors, "; ")))
		}
	}
	if copied && srcDigest != nil {
		problems = append(problems, lostSignatures(ctx, it.clean, srcRepo, dstRepo, *srcDigest)...)
	}
	return problems
}

// lostSignatures lists the referrers and legacy signature layers attached at
// src to the release index or one of its manifests that are missing at dst.
func lostSignatures(ctx context.Context, c *oci.Client, src, dst name.Repository, h v1.Hash) []string {
	var problems []string
	m, err := c.Manifest(ctx, src.Digest(h.String()))
	if err != nil {
		return []string{fmt.Sprintf("source %s@%s: %v", src, h, err)}
	}
	subjects := []v1.Hash{h}
	if m.IsIndex() {
		ix, err := m.Index()
		if err != nil {
			return []string{err.Error()}
		}
		for _, d := range ix.Manifests {
			subjects = append(subjects, d.Digest)
		}
	}
	for _, s := range subjects {
		have, err := c.Attached(ctx, src.Digest(s.String()))
		if err != nil {
			problems = append(problems, fmt.Sprintf("attached to source %s: %v", s, err))
			continue
		}
		got, err := c.Attached(ctx, dst.Digest(s.String()))
		if err != nil {
			problems = append(problems, fmt.Sprintf("attached to destination %s: %v", s, err))
			continue
		}
		gotRefs := map[v1.Hash]bool{}
		for _, d := range got.Referrers {
			gotRefs[d.Digest] = true
		}
		for _, d := range have.Referrers {
			if !gotRefs[d.Digest] {
				problems = append(problems, fmt.Sprintf("referrer %s (%s) of %s lost in the copy", d.Digest, d.ArtifactType, s))
			}
		}
		for _, l := range have.Legacy {
			srcLayers, err := legacyLayers(ctx, c, src, l.Descriptor.Digest)
			if err != nil {
				problems = append(problems, fmt.Sprintf("source %s: %v", l.Tag, err))
				continue
			}
			var dstLayers map[v1.Hash]bool
			for _, g := range got.Legacy {
				if g.Suffix == l.Suffix {
					dstLayers, err = legacyLayers(ctx, c, dst, g.Descriptor.Digest)
					if err != nil {
						problems = append(problems, fmt.Sprintf("destination %s: %v", g.Tag, err))
					}
				}
			}
			for layer := range srcLayers {
				if !dstLayers[layer] {
					problems = append(problems, fmt.Sprintf("%s layer %s of %s lost in the copy", l.Suffix, layer, s))
				}
			}
		}
	}
	return problems
}

func legacyLayers(ctx context.Context, c *oci.Client, repo name.Repository, h v1.Hash) (map[v1.Hash]bool, error) {
	m, err := c.Manifest(ctx, repo.Digest(h.String()))
	if err != nil {
		return nil, err
	}
	img, err := m.Image()
	if err != nil {
		return nil, err
	}
	out := map[v1.Hash]bool{}
	for _, l := range img.Layers {
		out[l.Digest] = true
	}
	return out, nil
}

// checkRepo lists what is inconsistent in one repository: a tag naming a
// manifest that is missing or whose tree (child manifests, config, layers,
// subject) is incomplete; a referrer listed (API or fallback tag) that is
// missing or names another subject; a fallback or legacy tag whose subject
// is missing.
func checkRepo(ctx context.Context, c *oci.Client, host, repoPath string) []string {
	repo, err := name.NewRepository(host+"/"+repoPath, name.Insecure)
	if err != nil {
		return []string{err.Error()}
	}
	tags, err := remote.List(repo, remote.WithContext(ctx))
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return nil // nothing was ever pushed
		}
		return []string{fmt.Sprintf("list tags of %s: %v", repo, err)}
	}
	w := &walker{ctx: ctx, c: c, repo: repo, seen: map[v1.Hash]bool{}}
	for _, tag := range tags {
		d, err := c.Resolve(ctx, repo.Tag(tag))
		if err != nil {
			w.problem("tag %s: %v", tag, err)
			continue
		}
		w.tree(d.Digest, "tag "+tag)
		// sha256-<hex> (referrers fallback) and sha256-<hex>.sig/.att/.sbom
		// (cosign) name their subject.
		if hexPart, ok := strings.CutPrefix(tag, "sha256-"); ok {
			hexPart, _, _ = strings.Cut(hexPart, ".")
			if h, err := v1.NewHash("sha256:" + hexPart); err == nil {
				if _, err := c.Manifest(ctx, repo.Digest(h.String())); err != nil {
					w.problem("tag %s: its subject %s: %v", tag, h, err)
				}
			}
		}
	}
	return w.problems
}

type walker struct {
	ctx      context.Context
	c        *oci.Client
	repo     name.Repository
	seen     map[v1.Hash]bool
	problems []string
}

func (w *walker) problem(format string, args ...any) {
	w.problems = append(w.problems, fmt.Sprintf("%s: ", w.repo)+fmt.Sprintf(format, args...))
}

// tree checks the manifest h and everything below and attached to it.
func (w *walker) tree(h v1.Hash, via string) {
	if w.seen[h] {
		return
	}
	w.seen[h] = true
	m, err := w.c.Manifest(w.ctx, w.repo.Digest(h.String()))
	if err != nil {
		w.problem("%s: manifest %s: %v", via, h, err)
		return
	}
	var subject *v1.Descriptor
	if m.IsIndex() {
		ix, err := m.Index()
		if err != nil {
			w.problem("%s: index %s: %v", via, h, err)
			return
		}
		for _, d := range ix.Manifests {
			w.tree(d.Digest, via+" → "+h.String()[:15])
		}
		subject = ix.Subject
	} else {
		img, err := m.Image()
		if err != nil {
			w.problem("%s: manifest %s: %v", via, h, err)
			return
		}
		for _, d := range append([]v1.Descriptor{img.Config}, img.Layers...) {
			ok, err := w.c.HasBlob(w.ctx, w.repo, d.Digest)
			if err != nil || !ok {
				w.problem("%s: manifest %s: blob %s missing (%v)", via, h, d.Digest, err)
			}
		}
		subject = img.Subject
	}
	if subject != nil {
		if _, err := w.c.Manifest(w.ctx, w.repo.Digest(subject.Digest.String())); err != nil {
			w.problem("%s: manifest %s: subject %s: %v", via, h, subject.Digest, err)
		}
	}
	refs, err := w.c.Referrers(w.ctx, w.repo.Digest(h.String()))
	if err != nil {
		w.problem("%s: referrers of %s: %v", via, h, err)
		return
	}
	for _, r := range refs {
		w.tree(r.Digest, "referrer of "+h.String()[:15])
		rm, err := w.c.Manifest(w.ctx, w.repo.Digest(r.Digest.String()))
		if err != nil {
			continue // reported by tree
		}
		var doc struct {
			Subject *v1.Descriptor `json:"subject"`
		}
		if err := json.Unmarshal(rm.Raw, &doc); err != nil || doc.Subject == nil || doc.Subject.Digest != h {
			w.problem("referrer %s listed for %s names another subject", r.Digest, h)
		}
	}
}
