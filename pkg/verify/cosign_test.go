package verify

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/signing"
)

// cosignPolicy requires a signature and a provenance attestation on the
// image, by a key or by the release workflow's certificate.
const cosignPolicy = `apiVersion: seal.dev/v1alpha1
kind: Policy
trust:
  keys:
    release: {path: <<.Pub>>}
rules:
  - name: by-key
    images: ["<<.Host>>/key/**"]
    signatures:
      authorities: [{key: release}]
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        condition: predicate.buildDefinition.buildType == "https://actions.github.io/buildtypes/workflow/v1"
  - name: keyless
    images: ["<<.Host>>/keyless/**"]
    signatures:
      authorities:
        - keyless: {issuer: <<.Issuer>>, subject: <<.Identity>>}
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        condition: certificate.sourceRepositoryURI == "https://github.com/example/fleet"
`

// Signatures and attestations made by the real cosign v3.1.3 — with a key
// and keyless through the test Fulcio + TSA, as Sigstore bundles and as
// legacy .sig/.att tags — verify, on a registry with the referrers API and
// on one without (cosign writes the referrers tag itself there).
func TestCosignMadeSignaturesVerify(t *testing.T) {
	ss := testenv.SharedSigstore(t)
	bin := testenv.Tool(t, "cosign")
	claims := testenv.GitHubRelease("example/fleet", "v0.1.0")

	dir := t.TempDir()
	const password = "cosign-interop"
	priv, pub, err := signing.GenerateKeyPair([]byte(password))
	must(t, err)
	key, pubPath := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	must(t, os.WriteFile(key, priv, 0o600))
	must(t, os.WriteFile(pubPath, pub, 0o644))
	token := filepath.Join(dir, "token")
	must(t, os.WriteFile(token, []byte(ss.Issuer.Token(claims)), 0o600))
	pred := filepath.Join(dir, "provenance.json")
	must(t, os.WriteFile(pred, provenance(t, claims), 0o644))

	cosign := func(t *testing.T, args ...string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		home := t.TempDir()
		// A dead proxy: cosign must not reach the public Sigstore.
		cmd.Env = []string{"HOME=" + home, "TUF_ROOT=" + home + "/.sigstore", "PATH=" + os.Getenv("PATH"),
			"COSIGN_PASSWORD=" + password, "HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY="}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cosign %s: %v\n%s", strings.Join(args[:1], " "), err, out)
		}
	}
	signers := map[string][]string{
		"key": {"--key", key},
		"keyless": {"--identity-token", token, "--fulcio-url", ss.FulcioURL, "--timestamp-server-url", ss.TSAURL,
			"--trusted-root", ss.TrustedRootPath},
	}
	formats := map[string][]string{
		"bundle": {"--new-bundle-format=true"},
		"legacy": {"--new-bundle-format=false"},
	}

	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) {
			t.Parallel()
			c := client(reg)
			p := parsePolicy(t, policyText(t, cosignPolicy, map[string]string{
				"Host": reg.Host, "Pub": pubPath, "Issuer": ss.Issuer.URL, "Identity": claims.CertificateIdentity()}))
			v := newVerifier(t, p, ss.TrustedRoot())
			for _, who := range []string{"key", "keyless"} {
				for _, format := range []string{"bundle", "legacy"} {
					t.Run(who+"/"+format, func(t *testing.T) {
						d := pushRandom(t, reg, who+"/app-"+format+":v1")
						common := append(append([]string{"--yes", "--use-signing-config=false", "--tlog-upload=false"},
							signers[who]...), formats[format]...)
						cosign(t, append(append([]string{"sign"}, common...), d.String())...)
						cosign(t, append(append([]string{"attest", "--type", "slsaprovenance1", "--predicate", pred}, common...), d.String())...)

						ref, err := c.ParseReference(reg.Ref(who + "/app-" + format + ":v1"))
						must(t, err)
						r := v.Verify(context.Background(), c, ref)
						if !r.Passed {
							t.Fatalf("cosign's %s %s signature did not pass: %v", who, format, r.Errors)
						}
						if r.Digest != d.DigestStr() {
							t.Errorf("digest %s, want %s", r.Digest, d.DigestStr())
						}
						wantID := "key release"
						if who == "keyless" {
							wantID = claims.CertificateIdentity()
						}
						if len(r.Signatures) != 1 || r.Signatures[0].Format != format || r.Signatures[0].Identity != wantID {
							t.Errorf("signatures %+v", r.Signatures)
						}
						if len(r.Attestations) != 1 || !r.Attestations[0].Verified || r.Attestations[0].Format != format {
							t.Errorf("attestations %+v", r.Attestations)
						}
					})
				}
			}
		})
	}
}
