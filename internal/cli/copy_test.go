package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/promote"
	"github.com/seal-dev/seal/pkg/signing"
)

func copyMust(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// copyKey is a signing key and a policy file trusting it: every image
// signed by it, with SLSA provenance signed by it.
type copyKey struct {
	signer *signing.KeySigner
	policy string
	// root is a trusted root for the policy's keyless checks (there are
	// none: this spares a TUF fetch).
	root string
}

func newCopyKey(t *testing.T) copyKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	copyMust(t, err)
	s, err := signing.NewKeySigner(k, signing.Services{})
	copyMust(t, err)
	pub, err := cryptoutils.MarshalPublicKeyToPEM(s.PublicKey())
	copyMust(t, err)
	dir := t.TempDir()
	copyMust(t, os.WriteFile(filepath.Join(dir, "release.pub"), pub, 0o644))
	pol := filepath.Join(dir, "policy.yaml")
	copyMust(t, os.WriteFile(pol, []byte(`apiVersion: seal.dev/v1alpha1
kind: Policy
trust:
  keys:
    release: {path: `+filepath.Join(dir, "release.pub")+`}
rules:
  - name: release
    images: ["**"]
    signatures:
      authorities:
        - key: release
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
`), 0o644))
	return copyKey{signer: s, policy: pol, root: testenv.StartSigstore(t).TrustedRootPath}
}

// signedRelease is a two-platform release in repo:v0.1.0, signed in both
// formats (index and platforms) and attested with SLSA provenance on the
// index, by k.
func signedRelease(t *testing.T, r *testenv.Registry, repo string, k copyKey) string {
	t.Helper()
	ctx := context.Background()
	r.PushRelease(t, repo, "fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64")
	tag := r.Ref(repo + ":v0.1.0")
	if code, _, stderr := sealRun(t, "", "index", "create", tag,
		r.Ref(repo+":v0.1.0-linux-amd64"), r.Ref(repo+":v0.1.0-linux-arm64")); code != 0 {
		t.Fatal(stderr)
	}
	c := oci.NewClient()
	ref, err := c.ParseReference(tag)
	copyMust(t, err)
	desc, err := c.Resolve(ctx, ref)
	copyMust(t, err)
	digest := ref.Context().Digest(desc.Digest.String())
	_, err = signing.Sign(ctx, c, []string{digest.String()}, signing.Options{Signer: k.signer, Format: signing.FormatBoth, Recursive: true})
	copyMust(t, err)
	st, err := attestation.NewStatement("https://slsa.dev/provenance/v1",
		[]byte(`{"buildDefinition":{"buildType":"https://example.com/build/v1","externalParameters":{}},"runDetails":{"builder":{"id":"https://example.com/b"}}}`),
		attestation.Subject{Name: ref.Context().Name(), Digest: map[string]string{"sha256": desc.Digest.Hex}})
	copyMust(t, err)
	b, err := signing.SignDSSE(ctx, k.signer, st)
	copyMust(t, err)
	art, err := signing.BundleReferrer(desc, b, "https://slsa.dev/provenance/v1", time.Now())
	copyMust(t, err)
	_, err = signing.AttachReferrer(ctx, c, digest, art)
	copyMust(t, err)
	return tag
}

// `seal copy --policy` end to end: json with both verdicts, the tag at the
// destination, `seal verify --policy` passing at both ends, a second run
// that copies nothing (text), and a batch from --images-from.
func TestCopyCommand(t *testing.T) {
	staging, prime := testenv.GGCR(t), testenv.Distribution(t)
	k := newCopyKey(t)
	src := signedRelease(t, staging, "staging/fleet", k)

	code, stdout, stderr := sealRun(t, "", "copy", "--policy", k.policy, "--trusted-root", k.root, "--output", "json", src, prime.Ref("prime/fleet"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var out struct {
		Passed  bool              `json:"passed"`
		Results []*promote.Result `json:"results"`
	}
	copyMust(t, json.Unmarshal([]byte(stdout), &out))
	if !out.Passed || len(out.Results) != 1 {
		t.Fatalf("json: %s", stdout)
	}
	r := out.Results[0]
	if r.Destination != prime.Ref("prime/fleet:v0.1.0") || !r.Tagged || r.Bytes.Copied == 0 || r.Referrers.Copied < 4 || r.LegacyTags.Copied != 3 {
		t.Errorf("result: %s", stdout)
	}
	if v := r.Verification; v == nil || !v.Source.Passed || !v.Destination.Passed || v.Source.Rule != "release" {
		t.Errorf("verification: %s", stdout)
	}
	for _, raw := range []string{"\"manifests\"", "\"legacyTags\"", "\"verification\"", "\"destination\"", "\"passed\""} {
		if !strings.Contains(stdout, raw) {
			t.Errorf("json lacks %s", raw)
		}
	}
	dst := prime.Ref("prime/fleet:v0.1.0")
	if code, stdout, stderr := sealRun(t, "", "verify", "--policy", k.policy, "--trusted-root", k.root, src, dst); code != 0 {
		t.Fatalf("seal verify at both ends: exit %d\n%s%s", code, stdout, stderr)
	}

	code, stdout, stderr = sealRun(t, "", "copy", src, prime.Ref("prime/fleet:v0.1.0"))
	if code != 0 {
		t.Fatalf("second run: exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		src + " -> " + dst + "@" + r.Digest + "  already promoted",
		"copied: 0 manifests, 0 blobs (0 B), 0 referrers, 0 legacy tags; present:",
		"1 of 1 images promoted",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("second run text lacks %q:\n%s", want, stdout)
		}
	}

	batch := filepath.Join(t.TempDir(), "release.txt")
	copyMust(t, os.WriteFile(batch, []byte("# v0.1.0\n"+src+" "+prime.Ref("prime/fleet:stable")+"\n"+
		src+" "+staging.Ref("mirror/fleet:v0.1.0")+"\n"), 0o644))
	code, stdout, stderr = sealRun(t, "", "copy", "--policy", k.policy, "--trusted-root", k.root, "--images-from", batch, "--concurrency", "2")
	if code != 0 || !strings.Contains(stdout, "2 of 2 images promoted") {
		t.Fatalf("batch: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = sealRun(t, src+" "+prime.Ref("prime/fleet:stdin")+"\n", "copy", "--images-from", "-")
	if code != 0 || !strings.Contains(stdout, "1 of 1 images promoted") {
		t.Fatalf("batch from stdin: exit %d\n%s%s", code, stdout, stderr)
	}
}

// An image that fails the gate: exit 1, a one-line reason naming the image,
// nothing at the destination.
func TestCopyCommandGateFails(t *testing.T) {
	staging, prime := testenv.GGCR(t), testenv.Distribution(t)
	signedBy, trusted := newCopyKey(t), newCopyKey(t)
	src := signedRelease(t, staging, "staging/fleet", signedBy)
	dst := prime.Ref("prime/fleet:v0.1.0")
	code, stdout, stderr := sealRun(t, "", "copy", "--policy", trusted.policy, "--trusted-root", trusted.root, src, dst)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	if !strings.HasPrefix(stderr, "seal: copy "+src) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr %q", stderr)
	}
	if !strings.Contains(stdout, "FAILED") || !strings.Contains(stdout, "source FAILED (rule release)") || strings.Contains(stdout, "error:") {
		t.Errorf("stdout:\n%s", stdout)
	}
	ref, err := name.ParseReference(dst)
	copyMust(t, err)
	if _, err := oci.NewClient().Resolve(context.Background(), ref); !oci.IsNotFound(err) {
		t.Fatalf("destination tag exists after a refused copy (err %v)", err)
	}
}

func TestCopyCommandUsage(t *testing.T) {
	reg := testenv.Distribution(t)
	batch := filepath.Join(t.TempDir(), "bad.txt")
	copyMust(t, os.WriteFile(batch, []byte("only-one-field:v1\n"), 0o644))
	src, dst := reg.Ref("app:v1"), reg.Ref("prime/app:v1")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no arguments", []string{"copy"}, 2, "want SRC and DST"},
		{"one argument", []string{"copy", src}, 2, "want SRC and DST"},
		{"three arguments", []string{"copy", src, dst, dst}, 2, "arg(s)"},
		{"arguments and a batch", []string{"copy", "--images-from", batch, src, dst}, 2, "conflict"},
		{"bad batch line", []string{"copy", "--images-from", batch}, 2, "line 1"},
		{"missing batch", []string{"copy", "--images-from", batch + ".none"}, 2, "--images-from"},
		{"bad concurrency", []string{"copy", "--concurrency", "0", src, dst}, 2, "--concurrency"},
		{"bad output", []string{"copy", "--output", "yaml", src, dst}, 2, "--output"},
		{"missing policy", []string{"copy", "--policy", batch + ".none", src, dst}, 2, "policy"},
		{"trusted root without policy", []string{"copy", "--trusted-root", batch, src, dst}, 2, "--trusted-root"},
		{"destination digest", []string{"copy", src, dst + "@sha256:" + strings.Repeat("ab", 32)}, 2, "name a tag"},
		{"source not found", []string{"copy", src, dst}, 2, "not found"},
		{"registry unreachable", []string{"copy", "127.0.0.1:1/app:v1", dst}, 3, "127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := sealRun(t, "", tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d with %q", code, stderr, tc.code, tc.want)
			}
		})
	}
}
