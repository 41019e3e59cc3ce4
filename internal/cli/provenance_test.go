package cli

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seal-dev/seal/pkg/attestation"
)

var provenanceTestdata = filepath.Join("..", "..", "pkg", "attestation", "testdata")

// setGitHubEnv sets the recorded GitHub Actions environment for the test.
func setGitHubEnv(t *testing.T) {
	t.Helper()
	f, err := os.Open(filepath.Join(provenanceTestdata, "github-actions.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			t.Setenv(k, v)
		}
	}
}

func runSeal(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestProvenanceGenerateGitHub(t *testing.T) {
	setGitHubEnv(t)
	code, out, stderr := runSeal(t, "provenance", "generate")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// The command prints exactly the predicate of the package's golden file.
	want, err := os.ReadFile(filepath.Join(provenanceTestdata, "github-actions.provenance.json"))
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("stdout differs from github-actions.provenance.json:\n%s", out)
	}
	if err := attestation.ValidatePredicate(attestation.PredicateSLSAProvenanceV1, []byte(out)); err != nil {
		t.Error(err)
	}
	code, out2, _ := runSeal(t, "provenance", "generate", "--from", "github")
	if code != 0 || out2 != out {
		t.Errorf("--from github differs from the default (exit %d)", code)
	}
}

func TestProvenanceGenerateSubjects(t *testing.T) {
	setGitHubEnv(t)
	const (
		amd = "6509be241a5e19fab8c25688858fde2c2212ce247ba22c75213f15dc0d0e20e0"
		arm = "2c7ab7466f2d46c66a32a46a90af30294a47daebfdf60733c18e243fdb56fa58"
	)
	code, out, stderr := runSeal(t, "provenance", "generate",
		"--subject", "127.0.0.1:5000/example/fleet:v0.1.0@sha256:"+amd,
		"--subject", "127.0.0.1:5000/example/fleet@sha256:"+arm)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	st, err := attestation.ParseStatement([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if st.PredicateType != attestation.PredicateSLSAProvenanceV1 || len(st.Subject) != 2 ||
		st.Subject[0].Name != "127.0.0.1:5000/example/fleet" || !st.HasSubjectDigest("sha256", amd) || !st.HasSubjectDigest("sha256", arm) {
		t.Errorf("statement %+v", st)
	}
	// The whole statement is refused where a predicate is expected.
	if err := attestation.ValidatePredicate(attestation.PredicateSLSAProvenanceV1, []byte(out)); err == nil {
		t.Error("a statement passed as a predicate")
	}
}

func TestProvenanceGenerateLocal(t *testing.T) {
	code, out, stderr := runSeal(t, "provenance", "generate", "--from", "local")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if err := attestation.ValidatePredicate(attestation.PredicateSLSAProvenanceV1, []byte(out)); err != nil {
		t.Error(err)
	}
	if !strings.Contains(out, `"buildType": "`+attestation.LocalBuildType+`"`) || !strings.Contains(out, `"id": "local://`) {
		t.Errorf("not local provenance:\n%s", out)
	}
}

func TestProvenanceGenerateInputErrors(t *testing.T) {
	setGitHubEnv(t)
	for _, tc := range []struct {
		name  string
		args  []string
		unset []string
		want  []string
	}{
		{"missing variables", []string{"provenance", "generate"}, []string{"GITHUB_SHA", "GITHUB_RUN_ID", "RUNNER_ENVIRONMENT"},
			[]string{"missing GITHUB_SHA, GITHUB_RUN_ID, RUNNER_ENVIRONMENT"}},
		{"all variables missing", []string{"provenance", "generate"}, append([]string{"GITHUB_ACTIONS"}, attestation.GitHubEnv...),
			[]string{"missing " + strings.Join(attestation.GitHubEnv, ", "), "use --from local"}},
		{"subject without digest", []string{"provenance", "generate", "--subject", "ghcr.io/example/fleet:v0.1.0"}, nil,
			[]string{"ghcr.io/example/fleet:v0.1.0", "IMAGE@sha256:DIGEST"}},
		{"unknown source", []string{"provenance", "generate", "--from", "jenkins"}, nil, []string{`--from "jenkins"`}},
		{"stray argument", []string{"provenance", "generate", "extra"}, nil, []string{"extra"}},
		{"unknown flag", []string{"provenance", "generate", "--form", "local"}, nil, []string{"--form"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range tc.unset {
				t.Setenv(k, "")
			}
			code, out, stderr := runSeal(t, tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, stderr)
			}
			if out != "" {
				t.Errorf("wrote to stdout on error: %q", out)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "seal: ") {
				t.Errorf("stderr is not one seal: line: %q", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not contain %q", stderr, w)
				}
			}
		})
	}
}
