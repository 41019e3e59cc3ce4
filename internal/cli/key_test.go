package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/signing"
)

const keyTestPassword = "seal-cli-test-password-41d2"

// sealRun runs the CLI in-process and returns exit code, stdout, stderr.
func sealRun(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// assertNoSecrets fails when any of outputs contains one of secrets (or a
// base64 line of a PEM private key), naming neither.
func assertNoSecrets(t *testing.T, outputs []string, secrets ...string) {
	t.Helper()
	var needles []string
	for _, s := range secrets {
		needles = append(needles, s)
		for _, line := range strings.Split(s, "\n") {
			if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
				needles = append(needles, line)
			}
		}
	}
	for i, o := range outputs {
		for j, n := range needles {
			if n != "" && strings.Contains(o, n) {
				t.Errorf("output %d contains secret %d", i, j)
			}
		}
	}
}

func TestKeyGenerate(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "release")
	t.Setenv("SEAL_PASSWORD", keyTestPassword)
	var outputs []string

	code, stdout, stderr := sealRun(t, "", "key", "generate", "--output-prefix", prefix)
	outputs = append(outputs, stdout, stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, prefix+".key") || !strings.Contains(stdout, prefix+".pub") {
		t.Fatalf("stdout: %q", stdout)
	}
	st, err := os.Stat(prefix + ".key")
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v, want 0600", st.Mode().Perm())
	}
	priv, _ := os.ReadFile(prefix + ".key")
	pub, _ := os.ReadFile(prefix + ".pub")
	if _, err := signing.LoadPrivateKey(priv, []byte(keyTestPassword)); err != nil {
		t.Fatalf("generated key does not load: %v", err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".seal-*")); len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}

	// No overwrite without --force: exit 2, files untouched.
	code, stdout, stderr = sealRun(t, "", "key", "generate", "--output-prefix", prefix)
	outputs = append(outputs, stdout, stderr)
	if code != 2 || !strings.Contains(stderr, "already exists") {
		t.Fatalf("overwrite without --force: exit %d, stderr %q", code, stderr)
	}
	if again, _ := os.ReadFile(prefix + ".key"); !bytes.Equal(again, priv) {
		t.Fatal("key file changed without --force")
	}

	// --force replaces both files, json output names them.
	code, stdout, stderr = sealRun(t, "", "key", "generate", "--output-prefix", prefix, "--force", "--output", "json")
	outputs = append(outputs, stdout, stderr)
	if code != 0 {
		t.Fatalf("--force: exit %d: %s", code, stderr)
	}
	var files keyFiles
	if err := json.Unmarshal([]byte(stdout), &files); err != nil || files.PrivateKey != prefix+".key" || files.PublicKey != prefix+".pub" {
		t.Fatalf("json output %q: %v", stdout, err)
	}
	priv2, _ := os.ReadFile(prefix + ".key")
	pub2, _ := os.ReadFile(prefix + ".pub")
	if bytes.Equal(priv2, priv) || bytes.Equal(pub2, pub) {
		t.Fatal("--force did not replace the key pair")
	}
	if st, _ := os.Stat(prefix + ".key"); st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode after --force %v, want 0600", st.Mode().Perm())
	}

	// cosign reads it with the password from COSIGN_PASSWORD.
	cmd := exec.Command(testenv.Tool(t, "cosign"), "public-key", "--key", prefix+".key")
	home := t.TempDir()
	cmd.Env = []string{"HOME=" + home, "COSIGN_PASSWORD=" + keyTestPassword, "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	outputs = append(outputs, string(out))
	if err != nil || !strings.Contains(string(out), string(pub2)) {
		t.Fatalf("cosign public-key: %v\n%s", err, out)
	}
	assertNoSecrets(t, outputs, keyTestPassword, string(priv), string(priv2))
}

func TestKeyGeneratePassword(t *testing.T) {
	dir := t.TempDir()
	// COSIGN_PASSWORD is honoured when SEAL_PASSWORD is unset.
	t.Setenv("COSIGN_PASSWORD", keyTestPassword)
	t.Setenv("SEAL_PASSWORD", "") // restored after the test
	os.Unsetenv("SEAL_PASSWORD")
	code, _, stderr := sealRun(t, "", "key", "generate", "--output-prefix", filepath.Join(dir, "c"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	priv, _ := os.ReadFile(filepath.Join(dir, "c.key"))
	if _, err := signing.LoadPrivateKey(priv, []byte(keyTestPassword)); err != nil {
		t.Fatalf("COSIGN_PASSWORD not used: %v", err)
	}

	// Neither variable and stdin is not a terminal: a clear input error,
	// nothing written, and the piped text is not taken as a password.
	os.Unsetenv("COSIGN_PASSWORD")
	code, stdout, stderr := sealRun(t, "piped-password\n", "key", "generate", "--output-prefix", filepath.Join(dir, "d"))
	if code != 2 || !strings.Contains(stderr, "no password") {
		t.Fatalf("no password: exit %d stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "d.key")); err == nil {
		t.Fatal("key written without a password")
	}
	assertNoSecrets(t, []string{stdout, stderr}, "piped-password")
}

func TestLoadKeySignerWrongPassword(t *testing.T) {
	dir := t.TempDir()
	priv, _, err := signing.GenerateKeyPair([]byte(keyTestPassword))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "k.key")
	if err := os.WriteFile(path, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SEAL_PASSWORD", "wrong-password-for-test")
	var out, errb bytes.Buffer
	_, err = loadKeySigner(&Globals{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}, path, signing.Services{})
	if err == nil {
		t.Fatal("wrong password accepted")
	}
	if exitCode(err) != 2 || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "wrong password") {
		t.Fatalf("error %q exit %d", err, exitCode(err))
	}
	assertNoSecrets(t, []string{err.Error(), out.String(), errb.String()}, keyTestPassword, "wrong-password-for-test", string(priv))
}

// On a terminal, without SEAL_PASSWORD or COSIGN_PASSWORD, `key generate`
// prompts twice for the password: the key it writes opens with what was
// typed, and two different answers write no key. util-linux's `script`
// gives seal a terminal (a pseudo-terminal) to prompt on.
func TestKeyGeneratePrompt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers []string
		code    int
		want    string
	}{
		{"the same twice", []string{keyTestPassword, keyTestPassword}, 0, ""},
		{"two different answers", []string{keyTestPassword, keyTestPassword + "x"}, 2, "passwords do not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := filepath.Join(t.TempDir(), "release")
			cmd, in, out := startOnTerminal(t, "key", "generate", "--output-prefix", prefix)
			// Answer each prompt once it shows: typed ahead, the answer
			// would be echoed before seal turns echo off (and the test
			// checks that nothing typed is echoed).
			prompts := []string{"Enter password for private key: ", "Enter password for private key again: "}
			for i, answer := range tc.answers {
				deadline := time.Now().Add(time.Minute)
				for !strings.Contains(out.String(), prompts[i]) {
					if time.Now().After(deadline) {
						t.Fatalf("no prompt %q; the terminal shows:\n%s", prompts[i], out.String())
					}
					time.Sleep(10 * time.Millisecond)
				}
				// seal prints the prompt, then turns echo off: give it the time.
				time.Sleep(300 * time.Millisecond)
				if _, err := io.WriteString(in, answer+"\n"); err != nil {
					t.Fatal(err)
				}
			}
			code := waitExit(t, cmd)
			if code != tc.code || !strings.Contains(out.String(), tc.want) {
				t.Fatalf("exit %d, want %d with %q; the terminal shows:\n%s", code, tc.code, tc.want, out.String())
			}
			if strings.Contains(out.String(), keyTestPassword) {
				t.Errorf("the password was echoed:\n%s", out.String())
			}
			priv, err := os.ReadFile(prefix + ".key")
			if tc.code != 0 {
				if err == nil {
					t.Fatal("a key was written although the passwords differ")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := signing.LoadPrivateKey(priv, []byte(keyTestPassword)); err != nil {
				t.Errorf("the key does not open with the password typed: %v", err)
			}
		})
	}
}

// startOnTerminal runs seal (this test binary, as its main) with args on a
// terminal of its own: a pseudo-terminal from util-linux's script. It
// returns what types on the terminal and what the terminal shows.
func startOnTerminal(t *testing.T, args ...string) (*exec.Cmd, io.WriteCloser, *lockedBuffer) {
	t.Helper()
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("util-linux's script, which gives the test a terminal: %v", err)
	}
	line := []string{shellQuote(os.Args[0]), "-test.run=^$", "--"}
	for _, a := range args {
		line = append(line, shellQuote(a))
	}
	cmd := exec.Command(scriptBin, "-qec", strings.Join(line, " "), "/dev/null")
	cmd.Env = []string{sealMainEnv + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TERM=dumb"}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, in, out
}

// waitExit waits for cmd and returns its exit code.
func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// lockedBuffer is a bytes.Buffer written by a command (in-process or a
// process's output copier) while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
