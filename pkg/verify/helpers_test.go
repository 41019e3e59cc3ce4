package verify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/policy"
	"github.com/seal-dev/seal/pkg/signing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopSharedSigstore()
	os.Exit(code)
}

// keyPair is a fresh ECDSA key: its public key in a file (for policies)
// and its signer.
type keyPair struct {
	pub    string
	signer *signing.KeySigner
}

func quickKey(t testing.TB) keyPair {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	s, err := signing.NewKeySigner(k, signing.Services{})
	must(t, err)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	must(t, err)
	path := filepath.Join(t.TempDir(), "release.pub")
	must(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644))
	return keyPair{pub: path, signer: s}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func client(r *testenv.Registry, opts ...oci.Option) *oci.Client {
	return oci.NewClient(append([]oci.Option{oci.WithTransport(r.Transport()), oci.WithKeychain(r.Keychain())}, opts...)...)
}

// Keyless signers are shared by the whole test binary, one per identity:
// each costs a Fulcio certificate, which serves every signature after.
var testSigners struct {
	sync.Mutex
	m map[string]*signing.KeylessSigner
}

func keyless(t testing.TB, ss *testenv.Sigstore, claims testenv.GitHubClaims) *signing.KeylessSigner {
	t.Helper()
	testSigners.Lock()
	defer testSigners.Unlock()
	key := ss.FulcioURL + " " + claims.JobWorkflowRef
	if s, ok := testSigners.m[key]; ok {
		return s
	}
	s, err := signing.NewKeylessSigner(signing.KeylessOptions{
		Services: signing.Services{FulcioURL: ss.FulcioURL, TimestampURLs: []string{ss.TSAURL}},
		Token:    signing.StaticToken(ss.Issuer.Token(claims)),
	})
	must(t, err)
	if testSigners.m == nil {
		testSigners.m = map[string]*signing.KeylessSigner{}
	}
	testSigners.m[key] = s
	return s
}

// branch is the claims of the release workflow run for a push to a branch.
func branch(repo, br string) testenv.GitHubClaims {
	c := testenv.GitHubRelease(repo, "unused")
	ref := "refs/heads/" + br
	c.Subject = "repo:" + repo + ":ref:" + ref
	c.Ref, c.RefType = ref, "branch"
	c.WorkflowRef = repo + "/.github/workflows/release.yml@" + ref
	c.JobWorkflowRef = c.WorkflowRef
	return c
}

// release is one component of a release: a two-platform index made by
// `seal index create` from BuildKit's per-platform pushes.
type release struct {
	index     name.Digest
	platforms map[string]v1.Hash // "linux/amd64" -> platform manifest
	tag       name.Tag
}

// pushRelease pushes the fixtures of component (fleet or fleet-agent) into
// repo and merges them into repo:tag.
func pushRelease(t testing.TB, reg *testenv.Registry, c *oci.Client, component, repo, tag string) release {
	t.Helper()
	ctx := context.Background()
	var sources []name.Reference
	for _, arch := range []string{"amd64", "arm64"} {
		d := reg.PushFixture(t, repo, component+"__v0.1.0-linux-"+arch)
		sources = append(sources, d)
	}
	target, err := name.NewTag(reg.Ref(repo+":"+tag), name.Insecure)
	must(t, err)
	created, err := index.Create(ctx, c, target, sources, index.CreateOptions{})
	must(t, err)
	rel := release{index: target.Context().Digest(created.Digest.String()), platforms: map[string]v1.Hash{}, tag: target}
	for _, e := range created.Manifests {
		if e.Kind == index.KindImage {
			rel.platforms[e.Platform] = e.Digest
		}
	}
	if len(rel.platforms) != 2 {
		t.Fatalf("release %s: platforms %v", repo, rel.platforms)
	}
	return rel
}

// pushRandom pushes a small single-manifest image to repo:tag.
func pushRandom(t testing.TB, reg *testenv.Registry, repoTag string) name.Digest {
	t.Helper()
	img, err := random.Image(64, 1)
	must(t, err)
	ref, err := name.ParseReference(reg.Ref(repoTag))
	must(t, err)
	must(t, remote.Write(ref, img, reg.RemoteOptions(context.Background())...))
	h, err := img.Digest()
	must(t, err)
	return ref.Context().Digest(h.String())
}

// sign signs d in format with s.
func sign(t testing.TB, c *oci.Client, s signing.Signer, d name.Digest, format signing.Format) {
	t.Helper()
	_, err := signing.Sign(context.Background(), c, []string{d.String()}, signing.Options{Signer: s, Format: format})
	must(t, err)
}

// statement is an in-toto statement of predicateType about the manifest h
// of repo.
func statement(t testing.TB, repo name.Repository, h v1.Hash, predicateType string, predicate []byte) []byte {
	t.Helper()
	st, err := attestation.NewStatement(predicateType, predicate, attestation.Subject{
		Name: repo.Name(), Digest: map[string]string{h.Algorithm: h.Hex},
	})
	must(t, err)
	return st
}

// attest signs st and attaches it to subject: a bundle referrer, or a
// cosign `.att` layer.
func attest(t testing.TB, c *oci.Client, s signing.Signer, subject name.Digest, st []byte, format signing.Format) {
	t.Helper()
	ctx := context.Background()
	parsed, err := attestation.ParseStatement(st)
	must(t, err)
	if format == signing.FormatLegacy {
		l, err := signing.AttestLegacy(ctx, s, st)
		must(t, err)
		_, err = signing.AttachLegacy(ctx, c, subject, signing.LegacyAttestation, []signing.LegacyLayer{l}, s.PublicKey())
		must(t, err)
		return
	}
	b, err := signing.SignDSSE(ctx, s, st)
	must(t, err)
	desc, err := c.Resolve(ctx, subject)
	must(t, err)
	art, err := signing.BundleReferrer(desc, b, parsed.PredicateType, time.Now())
	must(t, err)
	_, err = signing.AttachReferrer(ctx, c, subject, art)
	must(t, err)
}

// forgeReferrer attaches bundle b to subject as cosign would attach a
// bundle, announcing predicateType, without any of the checks
// signing.BundleReferrer makes: what an attacker with push access writes.
func forgeReferrer(t testing.TB, c *oci.Client, subject name.Digest, b []byte, predicateType string) v1.Hash {
	t.Helper()
	ctx := context.Background()
	desc, err := c.Resolve(ctx, subject)
	must(t, err)
	blob := func(mt string, data []byte) v1.Descriptor {
		h, n, err := v1.SHA256(bytes.NewReader(data))
		must(t, err)
		d := v1.Descriptor{MediaType: types.MediaType(mt), Digest: h, Size: n}
		must(t, c.PushBlob(ctx, subject.Context(), d, data))
		return d
	}
	cfg := blob(signing.EmptyMediaType, []byte("{}"))
	layer := blob(signing.BundleMediaType, b)
	raw, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"artifactType":  signing.BundleMediaType,
		"config":        cfg,
		"layers":        []v1.Descriptor{layer},
		"subject":       v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size},
		"annotations": map[string]string{
			signing.AnnotationBundleContent: "dsse-envelope",
			signing.AnnotationPredicateType: predicateType,
			signing.AnnotationCreated:       time.Now().UTC().Format(time.RFC3339),
		},
	})
	must(t, err)
	d, err := c.PushReferrer(ctx, subject, raw, "application/vnd.oci.image.manifest.v1+json")
	must(t, err)
	return d.Digest
}

// githubEnv is the GitHub Actions environment of the run claims describe.
func githubEnv(claims testenv.GitHubClaims) func(string) string {
	env := map[string]string{
		"GITHUB_SERVER_URL":          "https://github.com",
		"GITHUB_REPOSITORY":          claims.Repository,
		"GITHUB_REPOSITORY_ID":       claims.RepositoryID,
		"GITHUB_REPOSITORY_OWNER_ID": claims.RepositoryOwnerID,
		"GITHUB_REF":                 claims.Ref,
		"GITHUB_SHA":                 claims.SHA,
		"GITHUB_WORKFLOW_REF":        claims.WorkflowRef,
		"GITHUB_RUN_ID":              claims.RunID,
		"GITHUB_RUN_ATTEMPT":         claims.RunAttempt,
		"GITHUB_EVENT_NAME":          claims.EventName,
		"RUNNER_ENVIRONMENT":         claims.RunnerEnvironment,
	}
	return func(k string) string { return env[k] }
}

// provenance is the SLSA v1 provenance predicate of the run claims describe.
func provenance(t testing.TB, claims testenv.GitHubClaims) []byte {
	t.Helper()
	p, err := attestation.GenerateGitHub(githubEnv(claims))
	must(t, err)
	return p
}

// signRelease signs a release index and attests provenance on each
// platform manifest, as a release workflow does.
func signRelease(t testing.TB, c *oci.Client, s signing.Signer, rel release, claims testenv.GitHubClaims, format signing.Format) {
	t.Helper()
	sign(t, c, s, rel.index, format)
	for _, h := range rel.platforms {
		d := rel.index.Context().Digest(h.String())
		attest(t, c, s, d, statement(t, d.Context(), h, attestation.PredicateSLSAProvenanceV1, provenance(t, claims)), format)
	}
}

// policyText renders a policy template with the test's registry host and
// OIDC issuer.
func policyText(t testing.TB, tmpl string, vars map[string]string) string {
	t.Helper()
	tp, err := template.New("policy").Delims("<<", ">>").Parse(tmpl)
	must(t, err)
	var b bytes.Buffer
	must(t, tp.Execute(&b, vars))
	return b.String()
}

func parsePolicy(t testing.TB, text string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse(t.TempDir()+"/policy.yaml", []byte(text))
	must(t, err)
	return p
}

func newVerifier(t testing.TB, p *policy.Policy, tm root.TrustedMaterial, opts ...Option) *Verifier {
	t.Helper()
	v, err := New(p, tm, opts...)
	must(t, err)
	return v
}

func errorsContain(r Result, want string) bool {
	for _, e := range r.Errors {
		if strings.Contains(e, want) {
			return true
		}
	}
	return false
}
