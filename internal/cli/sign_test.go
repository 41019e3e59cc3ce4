package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/signing"
)

func pushTestImage(t *testing.T, reg *testenv.Registry, repoTag string) name.Digest {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg.Ref(repoTag))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, reg.RemoteOptions(context.Background())...); err != nil {
		t.Fatal(err)
	}
	h, _ := img.Digest()
	return ref.Context().Digest(h.String())
}

func cosignVerify(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, "cosign"), append([]string{"verify", "--allow-insecure-registry"}, args...)...)
	home := t.TempDir()
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// `seal sign --key` end to end: one line per signature naming the tag and
// the digest signed, json results, cosign verifies both formats; nothing
// printed holds the password or the key.
func TestSignKeyCLI(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SEAL_PASSWORD", keyTestPassword)
	prefix := filepath.Join(dir, "release")
	if code, _, stderr := sealRun(t, "", "key", "generate", "--output-prefix", prefix); code != 0 {
		t.Fatal(stderr)
	}
	priv, _ := os.ReadFile(prefix + ".key")
	var outputs []string
	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) {
			a := pushTestImage(t, reg, "cli/app:v1")
			b := pushTestImage(t, reg, "cli/tool:v2")
			code, stdout, stderr := sealRun(t, "", "sign", "--key", prefix+".key", "--format", "both",
				"--annotation", "release=v1", reg.Ref("cli/app:v1"), b.String())
			outputs = append(outputs, stdout, stderr)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			want := []string{
				reg.Ref("cli/app:v1") + "@" + a.DigestStr() + " signed (bundle)",
				reg.Ref("cli/app:v1") + "@" + a.DigestStr() + " signed (legacy)",
				b.String() + " signed (bundle)",
				b.String() + " signed (legacy)",
			}
			if got := strings.Split(strings.TrimSpace(stdout), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("stdout:\n%s\nwant:\n%s", stdout, strings.Join(want, "\n"))
			}
			for _, extra := range [][]string{nil, {"--new-bundle-format=false"}} {
				out, err := cosignVerify(t, append([]string{"--key", prefix + ".pub", "--insecure-ignore-tlog=true",
					"-a", "release=v1"}, append(extra, a.String())...)...)
				outputs = append(outputs, out)
				if err != nil {
					t.Fatalf("cosign verify %v: %v\n%s", extra, err, out)
				}
			}

			code, stdout, stderr = sealRun(t, "", "sign", "--key", prefix+".key", "--output", "json", a.String())
			outputs = append(outputs, stdout, stderr)
			if code != 0 {
				t.Fatalf("json: exit %d: %s", code, stderr)
			}
			var out signOutput
			if err := json.Unmarshal([]byte(stdout), &out); err != nil || len(out.Results) != 1 ||
				out.Results[0].Digest != a.DigestStr() || out.Results[0].Format != signing.FormatBundle ||
				!strings.HasPrefix(out.Results[0].Signature, "sha256:") {
				t.Fatalf("json %s: %v", stdout, err)
			}
		})
	}
	assertNoSecrets(t, outputs, keyTestPassword, string(priv))
}

func TestSignCLIErrors(t *testing.T) {
	dir := t.TempDir()
	reg := testenv.Distribution(t)
	d := pushTestImage(t, reg, "cli/err:v1")
	priv, _, err := signing.GenerateKeyPair([]byte(keyTestPassword))
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "k.key")
	if err := os.WriteFile(key, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SEAL_PASSWORD", keyTestPassword)
	var outputs []string
	for _, tc := range []struct {
		name string
		env  string
		args []string
		code int
		want string
	}{
		{"no signer", "", []string{"sign", d.String()}, 2, "--key FILE or --keyless"},
		{"both signers", "", []string{"sign", "--key", key, "--keyless", d.String()}, 2, "--key FILE or --keyless"},
		{"no image", "", []string{"sign", "--key", key}, 2, "arg"},
		{"bad format", "", []string{"sign", "--key", key, "--format", "zip", d.String()}, 2, "--format"},
		{"bad annotation", "", []string{"sign", "--key", key, "-a", "novalue", d.String()}, 2, "KEY=VALUE"},
		{"wrong password", "not-the-password", []string{"sign", "--key", key, d.String()}, 2, "wrong password"},
		{"missing image", "", []string{"sign", "--key", key, reg.Ref("cli/err:nope")}, 2, "not found"},
		{"keyless without token", "", []string{"sign", "--keyless", "--fulcio-url", "http://127.0.0.1:1", "--timestamp-url", "http://127.0.0.1:1", d.String()}, 2, "identity token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("SEAL_PASSWORD", tc.env)
			}
			t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "")
			code, stdout, stderr := sealRun(t, "", tc.args...)
			outputs = append(outputs, stdout, stderr)
			if code != tc.code || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("exit %d stderr %q, want %d and %q on one line", code, stderr, tc.code, tc.want)
			}
		})
	}
	assertNoSecrets(t, outputs, keyTestPassword, "not-the-password", string(priv))
}

// `seal sign --keyless` through a real Fulcio and TSA with the services
// from a signing config and the result checked against the trusted root;
// cosign verifies it by identity; the token is printed nowhere.
func TestSignKeylessCLI(t *testing.T) {
	ss := testenv.StartSigstore(t)
	reg := testenv.GGCR(t)
	d := pushTestImage(t, reg, "cli/keyless:v1")
	claims := testenv.GitHubRelease("example/fleet", "v1.0.0")
	tok := ss.Issuer.Token(claims)
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	var outputs []string
	for _, tokenArg := range []string{tok, tokFile} {
		code, stdout, stderr := sealRun(t, "", "sign", "--keyless", "--identity-token", tokenArg,
			"--signing-config", ss.SigningConfigPath, "--trusted-root", ss.TrustedRootPath, "--format", "both", d.String())
		outputs = append(outputs, stdout, stderr)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	}
	for _, extra := range [][]string{nil, {"--new-bundle-format=false"}} {
		out, err := cosignVerify(t, append([]string{"--trusted-root", ss.TrustedRootPath,
			"--certificate-identity", claims.CertificateIdentity(), "--certificate-oidc-issuer", ss.Issuer.URL,
			"--insecure-ignore-tlog=true", "--insecure-ignore-sct=true"}, append(extra, d.String())...)...)
		outputs = append(outputs, out)
		if err != nil {
			t.Fatalf("cosign verify %v: %v\n%s", extra, err, out)
		}
	}
	// An expired token: Fulcio refuses, exit 3, the token is not echoed.
	expired := ss.Issuer.TokenWith(claims, testenv.TokenOptions{Lifetime: -1})
	code, stdout, stderr := sealRun(t, "", "sign", "--keyless", "--identity-token", expired,
		"--signing-config", ss.SigningConfigPath, d.String())
	outputs = append(outputs, stdout, stderr)
	if code != 3 || !strings.Contains(stderr, "fulcio") {
		t.Fatalf("expired token: exit %d: %s", code, stderr)
	}
	assertNoSecrets(t, outputs, tok, expired)
}
