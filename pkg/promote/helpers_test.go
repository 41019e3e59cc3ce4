package promote_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/policy"
	"github.com/seal-dev/seal/pkg/promote"
	"github.com/seal-dev/seal/pkg/signing"
	"github.com/seal-dev/seal/pkg/verify"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// client reaches the in-process registries (plain HTTP over loopback,
// anonymous); opts add a transport or retry bounds.
func client(opts ...oci.Option) *oci.Client {
	return oci.NewClient(append([]oci.Option{oci.WithRetry(oci.Retry{Attempts: 2, BaseDelay: time.Millisecond})}, opts...)...)
}

func parseTag(t testing.TB, c *oci.Client, s string) name.Tag {
	t.Helper()
	ref, err := c.ParseReference(s)
	must(t, err)
	tag, ok := ref.(name.Tag)
	if !ok {
		t.Fatalf("%s is not a tag", s)
	}
	return tag
}

// key is a release signing key: the signer and its public key on disk (for
// cosign and the policy).
type key struct {
	signer *signing.KeySigner
	pub    string
	pem    []byte
}

func newKey(t testing.TB) key {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	s, err := signing.NewKeySigner(k, signing.Services{})
	must(t, err)
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(s.PublicKey())
	must(t, err)
	pub := filepath.Join(t.TempDir(), "release.pub")
	must(t, os.WriteFile(pub, pemBytes, 0o644))
	return key{signer: s, pub: pub, pem: pemBytes}
}

// release is a two-platform release in a registry.
type release struct {
	tag       name.Tag
	index     name.Digest
	platforms []v1.Hash
}

const slsaV1 = "https://slsa.dev/provenance/v1"

// pushRelease is what a release pipeline leaves in staging: BuildKit's
// per-platform pushes of component merged by `seal index create` into
// repo:v1 (platform and attestation manifests), signed by k in both formats
// (bundle referrers and legacy .sig on the index and each platform) and
// attested with SLSA provenance v1 (bundle referrers on the index and each
// platform, legacy .att on the index).
func pushRelease(t testing.TB, c *oci.Client, reg *testenv.Registry, component, repo string, k key) release {
	t.Helper()
	ctx := context.Background()
	var sources []name.Reference
	for _, arch := range []string{"amd64", "arm64"} {
		sources = append(sources, reg.PushFixture(t, repo+"-build", component+"__v0.1.0-linux-"+arch))
	}
	tag := parseTag(t, c, reg.Ref(repo+":v1"))
	created, err := index.Create(ctx, c, tag, sources, index.CreateOptions{})
	must(t, err)
	rel := release{tag: tag, index: tag.Context().Digest(created.Digest.String())}
	for _, e := range created.Manifests {
		if e.Kind == index.KindImage {
			rel.platforms = append(rel.platforms, e.Digest)
		}
	}
	if len(rel.platforms) != 2 {
		t.Fatalf("release %s: %d platforms", repo, len(rel.platforms))
	}
	_, err = signing.Sign(ctx, c, []string{rel.index.String()}, signing.Options{
		Signer: k.signer, Format: signing.FormatBoth, Recursive: true,
	})
	must(t, err)
	for i, h := range append([]v1.Hash{created.Digest}, rel.platforms...) {
		attest(t, c, tag.Context().Digest(h.String()), k, i == 0)
	}
	return rel
}

// attest attaches a signed SLSA v1 provenance to subject as a bundle
// referrer and, with legacy, as cosign's .att too.
func attest(t testing.TB, c *oci.Client, subject name.Digest, k key, legacy bool) {
	t.Helper()
	ctx := context.Background()
	desc, err := c.Resolve(ctx, subject)
	must(t, err)
	pred := `{"buildDefinition":{"buildType":"https://example.com/build/v1","externalParameters":{"workflow":{"repository":"https://github.com/example/fleet"}}},` +
		`"runDetails":{"builder":{"id":"https://example.com/builder"}}}`
	st, err := attestation.NewStatement(slsaV1, []byte(pred), attestation.Subject{
		Name: subject.Context().Name(), Digest: map[string]string{"sha256": desc.Digest.Hex},
	})
	must(t, err)
	b, err := signing.SignDSSE(ctx, k.signer, st)
	must(t, err)
	art, err := signing.BundleReferrer(desc, b, slsaV1, time.Now())
	must(t, err)
	_, err = signing.AttachReferrer(ctx, c, subject, art)
	must(t, err)
	if legacy {
		l, err := signing.AttestLegacy(ctx, k.signer, st)
		must(t, err)
		_, err = signing.AttachLegacy(ctx, c, subject, signing.LegacyAttestation, []signing.LegacyLayer{l}, k.signer.PublicKey())
		must(t, err)
	}
}

// inventory lists, by digest only (so that two repositories compare equal),
// every manifest of the image tree under d, what refers to each
// (recursively) and each legacy tag with the manifest it names.
func inventory(t testing.TB, c *oci.Client, d name.Digest) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	var referrers func(subject v1.Hash, depth int)
	referrers = func(subject v1.Hash, depth int) {
		refs, err := c.Referrers(ctx, d.Context().Digest(subject.String()))
		must(t, err)
		for _, r := range refs {
			out = append(out, fmt.Sprintf("referrer %s -> %s", r.Digest, subject))
			if depth < 4 {
				referrers(r.Digest, depth+1)
			}
		}
	}
	var walk func(h v1.Hash)
	walk = func(h v1.Hash) {
		m, err := c.Manifest(ctx, d.Context().Digest(h.String()))
		must(t, err)
		out = append(out, fmt.Sprintf("manifest %s %s", h, m.Descriptor.MediaType))
		if m.IsIndex() {
			idx, err := m.Index()
			must(t, err)
			for _, child := range idx.Manifests {
				walk(child.Digest)
			}
		}
		referrers(h, 1)
		att, err := c.Attached(ctx, d.Context().Digest(h.String()))
		must(t, err)
		for _, l := range att.Legacy {
			out = append(out, fmt.Sprintf("legacy %s -> %s", l.Tag.TagStr(), l.Descriptor.Digest))
		}
	}
	h, err := v1.NewHash(d.DigestStr())
	must(t, err)
	walk(h)
	slices.Sort(out)
	return slices.Compact(out)
}

func sameInventory(t testing.TB, what string, want, got []string) {
	t.Helper()
	if !slices.Equal(want, got) {
		t.Fatalf("%s differs:\nwant:\n  %s\ngot:\n  %s", what, strings.Join(want, "\n  "), strings.Join(got, "\n  "))
	}
}

// keyGate is the gate of `seal copy --policy` with a policy that asks every
// image for a signature by k and SLSA provenance signed by k.
func keyGate(t testing.TB, c *oci.Client, k key) promote.Gate {
	t.Helper()
	text := "apiVersion: seal.dev/v1alpha1\nkind: Policy\ntrust:\n  keys:\n    release:\n      pem: |\n" +
		indent(string(k.pem), "        ") +
		`rules:
  - name: release
    images: ["**"]
    signatures:
      authorities:
        - key: release
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
`
	p, err := policy.Parse(filepath.Join(t.TempDir(), "policy.yaml"), []byte(text))
	must(t, err)
	v, err := verify.New(p, nil)
	must(t, err)
	return promote.VerifierGate(v, c)
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, prefix) + "\n"
}

// cosign runs the pinned cosign binary with a private HOME.
func cosign(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, "cosign"), args...)
	home := t.TempDir()
	cmd.Env = []string{"HOME=" + home, "TUF_ROOT=" + home + "/.sigstore", "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// cosignVerifies checks, with the real cosign, the signature and the SLSA
// provenance attestation of image by k in both formats: the bundle
// referrers and the legacy .sig tag, and the legacy .att tag when legacyAtt.
func cosignVerifies(t testing.TB, image string, k key, legacyAtt bool) {
	t.Helper()
	for _, format := range []struct {
		name string
		flag string
	}{{"bundle", "--new-bundle-format=true"}, {"legacy", "--new-bundle-format=false"}} {
		common := []string{"--key", k.pub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", format.flag}
		if out, err := cosign(t, append(append([]string{"verify"}, common...), image)...); err != nil {
			t.Errorf("cosign verify (%s) %s: %v\n%s", format.name, image, err, out)
		}
		if format.name == "legacy" && !legacyAtt {
			continue
		}
		args := append(append([]string{"verify-attestation", "--type", "slsaprovenance1"}, common...), image)
		if out, err := cosign(t, args...); err != nil {
			t.Errorf("cosign verify-attestation (%s) %s: %v\n%s", format.name, image, err, out)
		}
	}
}

// tripwire counts the requests a client sends that match, and calls trip
// when the after-th one starts, before it is sent.
type tripwire struct {
	inner http.RoundTripper
	match func(*http.Request) bool
	after int64
	trip  func()
	seen  atomic.Int64
}

func (w *tripwire) RoundTrip(req *http.Request) (*http.Response, error) {
	if w.match(req) && w.seen.Add(1) == w.after && w.trip != nil {
		w.trip()
	}
	return w.inner.RoundTrip(req)
}

// writes is how many requests that change a registry the proxy saw.
func writes(p *testenv.FaultProxy) int {
	n := 0
	for k, v := range p.Counts() {
		if strings.HasPrefix(k, "PUT ") || strings.HasPrefix(k, "POST ") || strings.HasPrefix(k, "PATCH ") || strings.HasPrefix(k, "DELETE ") {
			n += v
		}
	}
	return n
}
