package signing

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/seal-dev/seal/internal/testenv"
)

// Every output the signing tests produce — cosign's stdout and stderr,
// errors returned by this package, encoded artifacts — is recorded here,
// and TestMain scans all of it for the secrets the tests used once every
// test has run. A leak fails the run without echoing the secret.
var (
	capMu    sync.Mutex
	captured []capture
	secrets  = map[string]string{} // secret -> what it is
)

type capture struct {
	what string
	data []byte
}

func record(what string, data []byte) {
	capMu.Lock()
	defer capMu.Unlock()
	captured = append(captured, capture{what, bytes.Clone(data)})
}

func recordErr(what string, err error) {
	if err != nil {
		record(what, []byte(err.Error()))
	}
}

// secret registers s as something no output may contain. For a PEM private
// key the base64 body lines are registered too, so that a partial dump is
// caught as well.
func secret(what, s string) {
	capMu.Lock()
	defer capMu.Unlock()
	addSecret(secrets, what, s)
}

func addSecret(m map[string]string, what, s string) {
	m[s] = what
	if strings.Contains(s, "PRIVATE KEY-----") {
		for _, line := range strings.Split(s, "\n") {
			if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
				m[line] = what + " (a line of it)"
			}
		}
	}
}

// findLeaks names (never shows) each secret found in each capture.
func findLeaks(caps []capture, secrets map[string]string) []string {
	var out []string
	for _, c := range caps {
		for s, what := range secrets {
			if s != "" && bytes.Contains(c.data, []byte(s)) {
				out = append(out, what+" appears in "+c.what)
			}
		}
	}
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	capMu.Lock()
	leaks := findLeaks(captured, secrets)
	n := len(captured)
	capMu.Unlock()
	for _, l := range leaks {
		fmt.Fprintln(os.Stderr, "LEAK:", l)
	}
	if code == 0 && len(leaks) > 0 {
		code = 1
	}
	if code == 0 && testing.Verbose() {
		fmt.Fprintf(os.Stderr, "secret scan: %d outputs, %d secrets, no leak\n", n, len(secrets))
	}
	testenv.StopSharedSigstore()
	os.Exit(code)
}

// cosign runs the pinned cosign with a private HOME (its TUF cache and
// config stay in the test's temp dir), records its output, and returns
// stdout+stderr and the error.
func cosign(t *testing.T, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	bin := testenv.Tool(t, "cosign")
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append([]string{"HOME=" + home, "TUF_ROOT=" + home + "/.sigstore", "PATH=" + os.Getenv("PATH")}, env...)
	out, err := cmd.CombinedOutput()
	record("cosign "+strings.Join(args, " "), out)
	return string(out), err
}
