package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seal-dev/seal/internal/demo"
)

// The README's first command: the whole flow, a passing verdict, and the
// unsigned image reported as rejected with its reason.
func TestDemoCommand(t *testing.T) {
	code, stdout, stderr := sealRun(t, "", "demo")
	if code != 0 {
		t.Fatalf("seal demo exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, step := range []string{"index create:", "sign --recursive:", "attest --from-buildkit:", "copy --policy:", "refused at the gate", "verify --policy at prime:"} {
		if !strings.Contains(stdout, "==> ") || !strings.Contains(stdout, step) {
			t.Errorf("no step %q in the output:\n%s", step, stdout)
		}
	}
	rows := map[string]string{}
	for _, line := range strings.Split(stdout, "\n") {
		for _, img := range []string{"example/server:", "example/server-agent:", "example/server-debug:"} {
			if strings.Contains(line, img) && !strings.HasPrefix(line, "==>") {
				rows[img] = line
			}
		}
	}
	want := []struct {
		image, rule, verdict string
		exception            bool
	}{
		{"example/server:", "release", "PASS", false},
		{"example/server-agent:", "agent-built-by-server", "PASS", true},
		{"example/server-debug:", "release", "REJECTED: no signature by an allowed identity", false},
	}
	for _, w := range want {
		row, ok := rows[w.image]
		if !ok {
			t.Errorf("verdict table has no row for %s:\n%s", w.image, stdout)
			continue
		}
		if !strings.Contains(row, " "+w.rule+" ") || !strings.Contains(row, w.verdict) {
			t.Errorf("row %q: want rule %s and verdict %q", row, w.rule, w.verdict)
		}
		if got := strings.Contains(row, "built and signed by the example/server release workflow (until 2027-06-30)"); got != w.exception {
			t.Errorf("row %q: exception shown = %v, want %v", row, got, w.exception)
		}
		if w.verdict == "PASS" && !regexp.MustCompile(`linux/amd64,linux/arm64\s+1\s+2\s`).MatchString(row) {
			t.Errorf("row %q: want both platforms, 1 signature on the index and 2 provenance attestations", row)
		}
	}
	if !regexp.MustCompile(`(?m)^PASS: the release verifies at prime, and the unsigned image was stopped \(\d+\.\ds\)$`).MatchString(stdout) {
		t.Errorf("no final verdict line:\n%s", stdout)
	}
	if strings.Contains(stdout+stderr, "PRIVATE KEY") {
		t.Error("the demo printed a private key")
	}
}

func TestDemoCommandJSON(t *testing.T) {
	code, stdout, stderr := sealRun(t, "", "demo", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r demo.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, stdout)
	}
	if !r.Passed || len(r.Rows) != 2 || r.Rejected.Passed || r.Rejected.Reason == "" {
		t.Fatalf("report %+v", r)
	}
	if !strings.Contains(stderr, "==> index create:") {
		t.Errorf("steps should go to stderr with -o json: %q", stderr)
	}
}

// linesOf sends the lines of r, and closes the channel at its end.
func linesOf(r io.Reader) <-chan string {
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return lines
}

// sealMainEnv makes the test binary run seal's Main on the arguments after
// "--" instead of the tests: the way to run seal as a process of its own,
// which `demo --keep` needs (it runs until a signal).
const sealMainEnv = "SEAL_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(sealMainEnv) == "1" {
		args := os.Args[1:]
		if i := slices.Index(args, "--"); i >= 0 {
			args = args[i+1:]
		}
		os.Exit(Main(args, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// `demo --keep` leaves both registries up after the verdict and prints
// commands to explore them; those commands work as printed (the unsigned
// image is rejected), and an interrupt ends the demo with exit 0.
func TestDemoKeep(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "demo", "--keep")
	cmd.Env = append(os.Environ(), sealMainEnv+"=1")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	// Read stderr until the last printed command, with a deadline.
	lines := linesOf(stderr)
	var help []string
	deadline := time.After(2 * time.Minute)
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("seal demo --keep ended before printing its commands:\n%s\n%s", strings.Join(help, "\n"), stdout.String())
			}
			help = append(help, l)
			done = strings.HasPrefix(l, "Files (policy, release.pub) are in ")
		case <-deadline:
			t.Fatalf("no explore commands after 2 minutes:\n%s", strings.Join(help, "\n"))
		}
	}
	go func() {
		for range lines {
		}
	}()
	var ran int
	for _, l := range help {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "seal ") {
			continue
		}
		args := strings.Fields(strings.TrimPrefix(l, "seal "))
		want := 0
		if i := slices.Index(args, "#"); i >= 0 {
			args, want = args[:i], 1 // "# the unsigned image: rejected"
		}
		code, out, errOut := sealRun(t, "", args...)
		if code != want {
			t.Errorf("%s: exit %d, want %d\n%s%s", l, code, want, out, errOut)
		}
		ran++
	}
	if ran != 3 {
		t.Fatalf("ran %d printed seal commands, want 3:\n%s", ran, strings.Join(help, "\n"))
	}

	// Still serving until interrupted; then a clean exit.
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("seal demo --keep after an interrupt: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("seal demo --keep did not stop on an interrupt")
	}
	if !strings.Contains(stdout.String(), "PASS: the release verifies at prime") {
		t.Errorf("no verdict on stdout:\n%s", stdout.String())
	}
	if dir := strings.TrimSuffix(strings.TrimPrefix(help[len(help)-1], "Files (policy, release.pub) are in "), "."); dir != "" {
		os.RemoveAll(dir) // --keep leaves the files for the explorer
	}
}
