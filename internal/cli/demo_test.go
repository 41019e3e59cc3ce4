package cli

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

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
