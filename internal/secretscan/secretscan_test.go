// Package secretscan holds one test: the CLI run end to end, in process,
// against a registry that needs credentials, with every byte it prints or
// logs captured and searched for the secrets it was given.
//
// It is its own package, not a test in internal/cli, because it must own
// its process: the registry's TLS certificate is trusted through
// SSL_CERT_FILE, which Go reads once per process, the first time anything
// asks for the system roots. The packages that sign keep scanning their own
// outputs (pkg/signing's TestMain, internal/cli's assertNoSecrets); this
// test scans what none of them sees: the whole CLI across commands, errors
// provoked on purpose, go-containerregistry's debug log, the standard
// logger, anything written straight to the process's stdout and stderr,
// and the files left behind.
package secretscan

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/logs"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/seal-dev/seal/internal/buildkit"
	"github.com/seal-dev/seal/internal/cli"
	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/signing"
)

const (
	keyPassword   = "secretscan-key-password-7d1f0c"
	wrongPassword = "secretscan-wrong-password-e4a2"
	wrongRegPass  = "secretscan-wrong-registry-pass-93b7"
)

// scanner holds every output and every secret, and finds the one in the
// other.
type scanner struct {
	mu      sync.Mutex
	outputs []output
	secrets map[string]string // needle → what it is
}

type output struct {
	what string
	data []byte
}

func (s *scanner) record(what string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outputs = append(s.outputs, output{what, bytes.Clone(data)})
}

// secret registers v as something no output may contain; for PEM, each
// base64 line of the body as well (a partial dump is a leak too), which is
// the rule pkg/signing and internal/cli scan with.
func (s *scanner) secret(what, v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[v] = what
	if strings.Contains(v, "-----BEGIN") {
		for _, line := range strings.Split(v, "\n") {
			if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
				s.secrets[line] = what + " (a line of it)"
			}
		}
	}
}

// leaks names, never shows, each secret found in each output.
func (s *scanner) leaks() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, o := range s.outputs {
		for needle, what := range s.secrets {
			if needle != "" && bytes.Contains(o.data, []byte(needle)) {
				out = append(out, fmt.Sprintf("%s appears in %s", what, o.what))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// syncBuffer is a buffer loggers on several goroutines can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// seal runs the CLI in process and records its stdout and stderr, whatever
// else the process wrote to its own stdout and stderr meanwhile (packages
// must not print), and the message and stack of a panic. It fails unless
// the exit code is want.
func (s *scanner) seal(t *testing.T, want int, args ...string) (stdout, stderr string) {
	t.Helper()
	what := "seal " + strings.Join(args[:min(2, len(args))], " ")
	var out, errb bytes.Buffer
	code := -1
	stray := captureProcessOutput(t, func() {
		defer func() {
			if r := recover(); r != nil {
				// The panic's text is an output like any other.
				s.record(what+" (panic)", fmt.Appendf(nil, "%v", r))
				t.Errorf("%s panicked", what)
			}
		}()
		code = cli.Main(args, strings.NewReader(""), &out, &errb)
	})
	s.record(what+" (stdout)", out.Bytes())
	s.record(what+" (stderr)", errb.Bytes())
	s.record(what+" (process stdout/stderr)", stray)
	if len(stray) > 0 {
		t.Errorf("%s wrote %d bytes to the process's stdout/stderr instead of the CLI's writers", what, len(stray))
	}
	if code != want {
		// stderr is shown only for an unexpected outcome; the scan runs
		// on it all the same.
		t.Errorf("%s: exit %d, want %d; stderr: %s", what, code, want, errb.String())
	}
	return out.String(), errb.String()
}

// captureProcessOutput runs f with os.Stdout and os.Stderr redirected to a
// pipe and returns what was written there.
func captureProcessOutput(t *testing.T, f func()) []byte {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = w, w
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		done <- b
	}()
	func() {
		defer func() { os.Stdout, os.Stderr = oldOut, oldErr }()
		f()
	}()
	w.Close()
	b := <-done
	r.Close()
	return b
}

// TestNoSecretInAnyOutput runs key generate, index create, sign (key, and
// keyless with the test Sigstore's OIDC token), attest --from-buildkit,
// verify, inspect, download and copy against the external registry
// (Distribution with TLS and htpasswd, credentials from a Docker config),
// then provokes errors — a wrong key password, a wrong registry password,
// an expired identity token — and asserts that none of the secrets
// appears anywhere: the key password, the private key (the encrypted file's
// PEM lines, and the decrypted key's PKCS#8 PEM lines and scalar), the
// registry password and its base64 user:password form, the identity token
// and its signature. Key files must be 0600, also after --force over a
// world-readable file, and no file holding a secret may be left in TMPDIR or
// next to the keys.
func TestNoSecretInAnyOutput(t *testing.T) {
	ctx := context.Background()
	s := &scanner{secrets: map[string]string{}}
	dir := t.TempDir()
	ext := testenv.External(t)
	dst := testenv.GGCR(t)
	ss := testenv.SharedSigstore(t)
	t.Cleanup(testenv.StopSharedSigstore)

	// The environment a CI job has: the registry's credentials in a Docker
	// config, its CA trusted by the system, the key password in the
	// environment — and a private HOME and TMPDIR, so that whatever the
	// CLI leaves behind is found.
	home := filepath.Join(dir, "home")
	tmp := filepath.Join(dir, "tmp")
	keys := filepath.Join(dir, "keys")
	for _, d := range []string{home, tmp, keys} {
		must(t, os.MkdirAll(d, 0o700))
	}
	t.Setenv("HOME", home)
	t.Setenv("TMPDIR", tmp)
	t.Setenv("DOCKER_CONFIG", ext.DockerConfigDir)
	t.Setenv("SSL_CERT_FILE", ext.CACertFile)
	t.Setenv("SEAL_PASSWORD", keyPassword)
	t.Setenv("COSIGN_PASSWORD", "")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "")

	claims := testenv.GitHubRelease("example/app", "v1.0.0")
	token := ss.Issuer.Token(claims)
	expired := ss.Issuer.TokenWith(claims, testenv.TokenOptions{Lifetime: -1})
	tokenFile := filepath.Join(dir, "token")
	must(t, os.WriteFile(tokenFile, []byte(token), 0o600))

	s.secret("the key password", keyPassword)
	s.secret("the wrong key password", wrongPassword)
	s.secret("the registry password", ext.Password)
	s.secret("the registry credentials in base64", base64.StdEncoding.EncodeToString([]byte(ext.Username+":"+ext.Password)))
	s.secret("the registry credentials in base64 (URL alphabet)", base64.URLEncoding.EncodeToString([]byte(ext.Username+":"+ext.Password)))
	s.secret("the wrong registry password", wrongRegPass)
	s.secret("the wrong registry credentials in base64", base64.StdEncoding.EncodeToString([]byte(ext.Username+":"+wrongRegPass)))
	for what, tok := range map[string]string{"the identity token": token, "the expired identity token": expired} {
		s.secret(what, tok)
		if parts := strings.Split(tok, "."); len(parts) == 3 {
			s.secret(what+"'s signature", parts[2])
		}
	}

	// What CI pushed: two BuildKit per-platform indexes.
	var sources []string
	for _, arch := range []string{"amd64", "arm64"} {
		ref := ext.Ref("app:v1-linux-" + arch)
		img, err := buildkit.Build(buildkit.Options{Component: "example/app", Ref: ref, Platform: v1.Platform{OS: "linux", Architecture: arch}})
		must(t, err)
		tag, err := name.NewTag(ref)
		must(t, err)
		must(t, remote.WriteIndex(tag, img.Index(), ext.RemoteOptions(ctx)...))
		sources = append(sources, ref)
	}
	image := ext.Ref("app:v1")

	// Every logger the libraries underneath may write to, from here on:
	// seal has no debug log of its own, and its requests do not go through
	// go-containerregistry's remote package, which logs to logs.Debug; what
	// they would log is captured all the same.
	var ggcrLog, stdLog syncBuffer
	oldDebug, oldWarn, oldProgress := logs.Debug, logs.Warn, logs.Progress
	logs.Debug = log.New(&ggcrLog, "ggcr debug ", 0)
	logs.Warn = log.New(&ggcrLog, "ggcr warn ", 0)
	logs.Progress = log.New(&ggcrLog, "ggcr progress ", 0)
	log.SetOutput(&stdLog)
	t.Cleanup(func() {
		logs.Debug, logs.Warn, logs.Progress = oldDebug, oldWarn, oldProgress
		log.SetOutput(os.Stderr)
	})

	// key generate: 0600, nothing else left next to the keys, and 0600 also
	// when --force replaces a world-readable file.
	prefix := filepath.Join(keys, "release")
	s.seal(t, 0, "key", "generate", "--output-prefix", prefix)
	keyFile, pubFile := prefix+".key", prefix+".pub"
	privPEM, err := os.ReadFile(keyFile)
	must(t, err)
	s.secret("the private key file", string(privPEM))
	registerDecryptedKey(t, s, privPEM)
	checkMode(t, keyFile, 0o600)
	other := filepath.Join(keys, "other")
	must(t, os.WriteFile(other+".key", []byte("old"), 0o644))
	must(t, os.WriteFile(other+".pub", []byte("old"), 0o644))
	s.seal(t, 0, "key", "generate", "--force", "--output-prefix", other)
	checkMode(t, other+".key", 0o600)
	otherPEM, err := os.ReadFile(other + ".key")
	must(t, err)
	s.secret("the second private key file", string(otherPEM))
	s.seal(t, 2, "key", "generate", "--output-prefix", prefix) // exists, no --force
	entries, err := os.ReadDir(keys)
	must(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"other.key", "other.pub", "release.key", "release.pub"}; !slices.Equal(names, want) {
		t.Errorf("key directory holds %v, want %v (a temporary file left behind?)", names, want)
	}

	policyFile := filepath.Join(dir, "policy.yaml")
	must(t, os.WriteFile(policyFile, []byte(fmt.Sprintf(`apiVersion: seal.dev/v1alpha1
kind: Policy
trust:
  keys:
    release: {path: %q}
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
`, pubFile)), 0o644))

	// The release flow, with every command that reaches the registry.
	s.seal(t, 0, append([]string{"index", "create", image}, sources...)...)
	s.seal(t, 0, "sign", "--key", keyFile, "--recursive", "--format", "both", image)
	s.seal(t, 0, "attest", "--key", keyFile, "--from-buildkit", image)
	for _, tok := range []string{token, tokenFile} {
		s.seal(t, 0, "sign", "--keyless", "--identity-token", tok,
			"--signing-config", ss.SigningConfigPath, "--trusted-root", ss.TrustedRootPath, image)
	}
	s.seal(t, 0, "verify", "--key", pubFile, image)
	s.seal(t, 0, "verify", "--output", "json", "--certificate-identity", claims.CertificateIdentity(),
		"--certificate-oidc-issuer", ss.Issuer.URL, "--trusted-root", ss.TrustedRootPath, image)
	vsa := filepath.Join(dir, "vsa")
	s.seal(t, 0, "verify", "--policy", policyFile, "--vsa-out", vsa, image)
	s.seal(t, 0, "inspect", image)
	s.seal(t, 0, "inspect", "--output", "json", image)
	s.seal(t, 0, "download", "provenance", "--platform", "linux/amd64", image)
	s.seal(t, 0, "copy", "--policy", policyFile, image, ext.Ref("prime/app:v1"))
	s.seal(t, 0, "copy", image, dst.Ref("app:v1"))

	// Errors, provoked: a wrong key password (input, 2).
	t.Setenv("SEAL_PASSWORD", wrongPassword)
	_, stderr := s.seal(t, 2, "sign", "--key", keyFile, image)
	if !strings.Contains(stderr, "wrong password") {
		t.Errorf("wrong key password: stderr does not say so: %q", stderr)
	}
	t.Setenv("SEAL_PASSWORD", keyPassword)

	// An expired identity token: Fulcio refuses (operational, 3).
	s.seal(t, 3, "sign", "--keyless", "--identity-token", expired, "--signing-config", ss.SigningConfigPath, image)

	// A wrong registry password: auth refused (operational, 3), for every
	// command that reaches the registry.
	wrongConfig := filepath.Join(dir, "wrong-docker")
	testenv.WriteDockerConfig(t, wrongConfig, ext.Host, ext.Username, wrongRegPass)
	t.Setenv("DOCKER_CONFIG", wrongConfig)
	for _, args := range [][]string{
		append([]string{"index", "create", ext.Ref("app:v2")}, sources...),
		{"sign", "--key", keyFile, image},
		{"verify", "--key", pubFile, image},
		{"inspect", image},
		{"download", "provenance", image},
		{"copy", image, dst.Ref("app:v2")},
	} {
		_, stderr := s.seal(t, 3, args...)
		if !strings.Contains(stderr, "auth") && !strings.Contains(stderr, "401") {
			t.Errorf("seal %s with a wrong registry password: stderr does not name the auth failure: %q", args[0], stderr)
		}
	}

	// Everything else that was written: the loggers, the summaries, the
	// files in TMPDIR and HOME.
	s.record("go-containerregistry's debug/warn/progress log", ggcrLog.Bytes())
	s.record("the standard logger", stdLog.Bytes())
	for _, d := range []string{vsa, tmp, home} {
		n := recordFiles(t, s, d)
		t.Logf("%s: %d files scanned", filepath.Base(d), n)
	}

	leaks := s.leaks()
	for _, l := range leaks {
		t.Errorf("LEAK: %s", l)
	}
	s.mu.Lock()
	nOut, nSecrets := len(s.outputs), len(s.secrets)
	s.mu.Unlock()
	t.Logf("secret scan: %d outputs (library logs: %d bytes), %d secrets, %d leaks", nOut, len(ggcrLog.Bytes())+len(stdLog.Bytes()), nSecrets, len(leaks))
}

// registerDecryptedKey adds what the key file decrypts to: the PKCS#8 PEM
// of the private key and its scalar, which nothing may ever print.
func registerDecryptedKey(t *testing.T, s *scanner, privPEM []byte) {
	t.Helper()
	key, err := signing.LoadPrivateKey(privPEM, []byte(keyPassword))
	must(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	s.secret("the decrypted private key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	s.secret("the private key's scalar (hex)", fmt.Sprintf("%x", key.D))
	s.secret("the private key's scalar (decimal)", key.D.String())
}

// recordFiles records every regular file under dir as an output: a file
// left there must not hold a secret either.
func recordFiles(t *testing.T, s *scanner, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == dir {
				return filepath.SkipDir
			}
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s.record("file "+p, b)
			n++
		}
		return nil
	})
	must(t, err)
	return n
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	must(t, err)
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", filepath.Base(path), got, want)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The scan finds a secret, whole or a line of a PEM body, and names it
// without showing it.
func TestScannerFindsSecrets(t *testing.T) {
	s := &scanner{secrets: map[string]string{}}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: bytes.Repeat([]byte("k"), 120)}))
	s.secret("a key", pemKey)
	s.secret("a password", "hunter2-hunter2")
	line := strings.Split(pemKey, "\n")[1]
	s.record("clean", []byte("nothing to see"))
	s.record("partial dump", []byte("error: "+line))
	s.record("password in an error", []byte("login failed for hunter2-hunter2"))
	got := s.leaks()
	want := []string{"a key (a line of it) appears in partial dump", "a password appears in password in an error"}
	if !slices.Equal(got, want) {
		t.Fatalf("leaks %q, want %q", got, want)
	}
	for _, l := range got {
		if strings.Contains(l, line) || strings.Contains(l, "hunter2") {
			t.Fatalf("a leak report shows the secret")
		}
	}
}
