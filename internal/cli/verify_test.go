package cli

import (
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
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/signing"
	"github.com/seal-dev/seal/pkg/verify"
)

func verifyMust(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// verifyRelease pushes a component's per-platform builds and merges them
// into repo:v0.1.0 with `seal index create`, returning the tag.
func verifyRelease(t *testing.T, r *testenv.Registry, component, repo string) string {
	t.Helper()
	r.PushRelease(t, repo, component+"__v0.1.0-linux-amd64", component+"__v0.1.0-linux-arm64")
	target := r.Ref(repo + ":v0.1.0")
	if code, _, stderr := sealRun(t, "", "index", "create", target,
		r.Ref(repo+":v0.1.0-linux-amd64"), r.Ref(repo+":v0.1.0-linux-arm64")); code != 0 {
		t.Fatal(stderr)
	}
	return target
}

func verifySign(t *testing.T, s signing.Signer, image string) {
	t.Helper()
	_, err := signing.Sign(context.Background(), oci.NewClient(), []string{image}, signing.Options{Signer: s})
	verifyMust(t, err)
}

// A policy file with an exception, keyless signatures through the test
// Fulcio + TSA: exit 0, the json names each image's rule and the agent's
// exception, the text table shows them, and --vsa-out writes one SLSA
// verification summary per image, named after its digest.
func TestVerifyCommandPolicy(t *testing.T) {
	ss := testenv.StartSigstore(t)
	r := testenv.GGCR(t)
	claims := testenv.GitHubRelease("example/fleet", "v0.1.0")
	s, err := signing.NewKeylessSigner(signing.KeylessOptions{
		Services: signing.Services{FulcioURL: ss.FulcioURL, TimestampURLs: []string{ss.TSAURL}},
		Token:    signing.StaticToken(ss.Issuer.Token(claims)),
	})
	verifyMust(t, err)
	fleet := verifyRelease(t, r, "fleet", "example/fleet")
	agent := verifyRelease(t, r, "fleet-agent", "example/fleet-agent")
	verifySign(t, s, fleet)
	verifySign(t, s, agent)
	unsigned := verifyPushRandom(t, r, "example/unsigned:v0.1.0")

	dir := t.TempDir()
	// The trusted root comes from the policy, relative to its file.
	root, err := os.ReadFile(ss.TrustedRootPath)
	verifyMust(t, err)
	verifyMust(t, os.WriteFile(filepath.Join(dir, "trusted_root.json"), root, 0o644))
	pol := filepath.Join(dir, "policy.yaml")
	verifyMust(t, os.WriteFile(pol, []byte(`apiVersion: seal.dev/v1alpha1
kind: Policy
trust:
  trustedRoot: trusted_root.json
rules:
  - name: github-release
    images: ["`+r.Host+`/example/**"]
    signatures:
      authorities:
        - keyless:
            issuer: `+ss.Issuer.URL+`
            subjectRegExp: '^https://github\.com/example/{{ .Name }}/\.github/workflows/release\.ya?ml@refs/tags/{{ .Tag }}$'
  - name: agent-built-by-fleet
    images: ["`+r.Host+`/example/fleet-agent"]
    extends: github-release
    vars: {Name: fleet}
    exception:
      reason: "fleet-agent is built by the example/fleet release workflow"
      expires: 2099-12-31
`), 0o644))

	vsaDir := filepath.Join(dir, "vsa")
	code, stdout, stderr := sealRun(t, "", "verify", "--policy", pol, "-o", "json", "--vsa-out", vsaDir, fleet, agent)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	var out struct {
		Passed  bool            `json:"passed"`
		Results []verify.Result `json:"results"`
	}
	verifyMust(t, json.Unmarshal([]byte(stdout), &out))
	if !out.Passed || len(out.Results) != 2 {
		t.Fatalf("output %s", stdout)
	}
	if out.Results[0].Rule != "github-release" || out.Results[0].Exception != nil ||
		out.Results[1].Rule != "agent-built-by-fleet" || out.Results[1].Exception == nil ||
		out.Results[1].Exception.Reason != "fleet-agent is built by the example/fleet release workflow" ||
		out.Results[1].Exception.Expires != "2099-12-31" {
		t.Errorf("results %s", stdout)
	}
	for _, res := range out.Results {
		data, err := os.ReadFile(filepath.Join(vsaDir, verify.VSAFileName(res.Digest)))
		verifyMust(t, err)
		st, err := attestation.ParseStatement(data)
		verifyMust(t, err)
		if st.PredicateType != verify.VSAPredicateType || !strings.Contains(string(st.Predicate), `"verificationResult":"PASSED"`) {
			t.Errorf("vsa %s", data)
		}
	}

	code, stdout, stderr = sealRun(t, "", "verify", "--policy", pol, fleet, agent)
	t.Logf("text output:\n%s", stdout)
	if code != 0 || !strings.Contains(stdout, "agent-built-by-fleet") ||
		!strings.Contains(stdout, "exception (until 2099-12-31): fleet-agent is built by the example/fleet release workflow") ||
		!strings.Contains(stdout, "2 of 2 images passed") {
		t.Errorf("exit %d, text:\n%s%s", code, stdout, stderr)
	}

	// --images-from -, and one image that fails: every image is checked,
	// exit 1, and stderr names the image, the digest and the reason.
	unsignedTag := r.Ref("example/unsigned:v0.1.0")
	list := "# release\n" + fleet + "\n\n" + unsignedTag + "\n" + agent + "\n"
	code, stdout, stderr = sealRun(t, list, "verify", "--policy", pol, "--images-from", "-", "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, stderr)
	}
	verifyMust(t, json.Unmarshal([]byte(stdout), &out))
	if out.Passed || len(out.Results) != 3 || !out.Results[0].Passed || out.Results[1].Passed || !out.Results[2].Passed {
		t.Errorf("output %s", stdout)
	}
	if !strings.HasPrefix(stderr, "seal: verify "+unsignedTag+"@"+unsigned.DigestStr()+": no signature by an allowed identity (no signatures found)") {
		t.Errorf("stderr %q", stderr)
	}

	// The identity flags make a one-rule policy; --trusted-root is needed
	// for it here (no policy file names one).
	code, _, stderr = sealRun(t, "", "verify", "--trusted-root", ss.TrustedRootPath,
		"--certificate-identity", claims.CertificateIdentity(), "--certificate-oidc-issuer", ss.Issuer.URL, fleet)
	if code != 0 {
		t.Errorf("identity flags: exit %d: %s", code, stderr)
	}
	code, _, stderr = sealRun(t, "", "verify", "--trusted-root", ss.TrustedRootPath,
		"--certificate-identity-regexp", `^https://github\.com/example/other/`, "--certificate-oidc-issuer", ss.Issuer.URL, fleet)
	if code != 1 || !strings.Contains(stderr, "does not match") {
		t.Errorf("another identity: exit %d: %s", code, stderr)
	}
}

func verifyPushRandom(t *testing.T, r *testenv.Registry, repoTag string) name.Digest {
	t.Helper()
	img, err := random.Image(64, 1)
	verifyMust(t, err)
	ref, err := name.ParseReference(r.Ref(repoTag))
	verifyMust(t, err)
	verifyMust(t, remote.Write(ref, img, r.RemoteOptions(context.Background())...))
	h, err := img.Digest()
	verifyMust(t, err)
	return ref.Context().Digest(h.String())
}

// keySigner is a fresh key: its public key file and its signer.
func verifyKeySigner(t *testing.T, dir, name string) (string, signing.Signer) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	verifyMust(t, err)
	s, err := signing.NewKeySigner(k, signing.Services{})
	verifyMust(t, err)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	verifyMust(t, err)
	path := filepath.Join(dir, name)
	verifyMust(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644))
	return path, s
}

// --key verifies seal's (and cosign's) key signatures on both registry
// kinds, with no trusted root at all; and the exit codes: 1 for an image
// that does not pass (it wins over the others), 2 for bad usage or a
// reference that does not exist, 3 for a registry that cannot be reached.
func TestVerifyCommandKeyAndExitCodes(t *testing.T) {
	dir := t.TempDir()
	pub, s := verifyKeySigner(t, dir, "cosign.pub")
	otherPub, _ := verifyKeySigner(t, dir, "other.pub")
	for _, r := range testenv.Registries(t) {
		t.Run(r.Name, func(t *testing.T) {
			d := verifyPushRandom(t, r, "app/signed:v1")
			verifySign(t, s, d.String())
			if code, stdout, stderr := sealRun(t, "", "verify", "--key", pub, r.Ref("app/signed:v1")); code != 0 ||
				!strings.Contains(stdout, "1 of 1 images passed") {
				t.Errorf("exit %d:\n%s%s", code, stdout, stderr)
			}
			// Digest-only references work.
			if code, _, stderr := sealRun(t, "", "verify", "--key", pub, d.String()); code != 0 {
				t.Errorf("by digest: exit %d: %s", code, stderr)
			}
			if code, _, stderr := sealRun(t, "", "verify", "--key", otherPub, d.String()); code != 1 ||
				!strings.Contains(stderr, "does not verify with key other.pub") {
				t.Errorf("another key: exit %d: %s", code, stderr)
			}
		})
	}

	r := testenv.GGCR(t)
	signed := verifyPushRandom(t, r, "app/signed:v1")
	verifySign(t, s, signed.String())
	unsigned := verifyPushRandom(t, r, "app/unsigned:v1")
	pol := filepath.Join(dir, "policy.yaml")
	verifyMust(t, os.WriteFile(pol, []byte("apiVersion: seal.dev/v1alpha1\nkind: Policy\n"), 0o644))
	imagesFile := filepath.Join(dir, "images.txt")
	verifyMust(t, os.WriteFile(imagesFile, []byte(signed.String()+"\n"), 0o644))
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"images from a file", []string{"--key", pub, "--images-from", imagesFile}, 0, ""},
		{"unsigned among others", []string{"--key", pub, signed.String(), unsigned.String(), "127.0.0.1:1/app:v1", r.Ref("app/missing:v1")}, 1,
			"3 of 4 images did not pass; verify " + unsigned.String()},
		{"a reference that does not exist", []string{"--key", pub, r.Ref("app/missing:v1")}, 2, "not found"},
		{"unreachable registry", []string{"--key", pub, "127.0.0.1:1/app:v1"}, 3, "127.0.0.1:1"},
		{"no images", []string{"--key", pub}, 2, "no images"},
		{"no policy and no identity", []string{signed.String()}, 2, "give --policy FILE, --key FILE"},
		{"policy and key", []string{"--policy", pol, "--key", pub, signed.String()}, 2, "conflict"},
		{"identity without issuer", []string{"--certificate-identity", "x", signed.String()}, 2, "issuer"},
		{"key and identity", []string{"--key", pub, "--certificate-identity", "x", "--certificate-oidc-issuer", "y", signed.String()}, 2, "exclusive"},
		{"malformed reference", []string{"--key", pub, "UPPER/Case::x"}, 2, "parse reference"},
		{"bad output", []string{"--key", pub, "-o", "yaml", signed.String()}, 2, "--output"},
		{"missing images file", []string{"--key", pub, "--images-from", filepath.Join(dir, "nope")}, 2, "--images-from"},
		{"missing key file", []string{"--key", filepath.Join(dir, "nope.pub"), signed.String()}, 2, "nope.pub"},
		{"bad concurrency", []string{"--key", pub, "--concurrency", "0", signed.String()}, 2, "--concurrency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // the unreachable registry costs retries
			code, _, stderr := sealRun(t, "", append([]string{"verify"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.want)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("stderr is not one line: %q", stderr)
			}
		})
	}
}

// On a terminal, a batch draws a progress bar on stderr and clears it when
// done; elsewhere (every other test: stderr is a buffer) it draws nothing.
func TestVerifyProgressOnTerminal(t *testing.T) {
	dir := t.TempDir()
	pub, s := verifyKeySigner(t, dir, "cosign.pub")
	r := testenv.GGCR(t)
	var refs []string
	for _, name := range []string{"a", "b", "c"} {
		d := verifyPushRandom(t, r, "progress/"+name+":v1")
		verifySign(t, s, d.String())
		refs = append(refs, d.String())
	}
	args := append([]string{"verify", "--key", pub}, refs...)
	cmd, _, out := startOnTerminal(t, args...)
	if code := waitExit(t, cmd); code != 0 {
		t.Fatalf("exit %d; the terminal shows:\n%s", code, out.String())
	}
	shown := out.String()
	if !strings.Contains(shown, "verifying [") || !strings.Contains(shown, "] 3/3") || !strings.Contains(shown, "\r\033[K") {
		t.Errorf("no progress bar ending at 3/3 and cleared; the terminal shows %q", shown)
	}
	if !strings.Contains(shown, "3 of 3 images passed") {
		t.Errorf("no verdict; the terminal shows %q", shown)
	}
	if code, _, stderr := sealRun(t, "", args...); code != 0 || strings.Contains(stderr, "verifying [") {
		t.Errorf("without a terminal: exit %d, stderr %q", code, stderr)
	}
}
