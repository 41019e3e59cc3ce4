package attestation

import (
	"strings"
	"testing"

	slsa1 "github.com/in-toto/attestation/go/predicates/provenance/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

const ghEnvFile = "testdata/github-actions.env"

func TestGenerateGitHubGolden(t *testing.T) {
	got, err := GenerateGitHub(lookup(readEnvFile(t, ghEnvFile)))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "github-actions.provenance.json", got)
}

// TestGenerateGitHubLayout checks, independently of the golden file, that
// each field sits where GitHub's workflow build type puts it.
func TestGenerateGitHubLayout(t *testing.T) {
	got, err := GenerateGitHub(lookup(readEnvFile(t, ghEnvFile)))
	if err != nil {
		t.Fatal(err)
	}
	p := decode(t, got)
	for _, tc := range []struct {
		path []string
		want string
	}{
		{[]string{"buildDefinition", "buildType"}, "https://actions.github.io/buildtypes/workflow/v1"},
		{[]string{"buildDefinition", "externalParameters", "workflow", "ref"}, "refs/tags/v0.1.0"},
		{[]string{"buildDefinition", "externalParameters", "workflow", "repository"}, "https://github.com/example/fleet"},
		{[]string{"buildDefinition", "externalParameters", "workflow", "path"}, ".github/workflows/release.yml"},
		{[]string{"buildDefinition", "internalParameters", "github", "event_name"}, "push"},
		{[]string{"buildDefinition", "internalParameters", "github", "repository_id"}, "812345678"},
		{[]string{"buildDefinition", "internalParameters", "github", "repository_owner_id"}, "98765432"},
		{[]string{"buildDefinition", "internalParameters", "github", "runner_environment"}, "github-hosted"},
		{[]string{"runDetails", "builder", "id"}, "https://github.com/example/fleet/.github/workflows/release.yml@refs/tags/v0.1.0"},
		{[]string{"runDetails", "metadata", "invocationId"}, "https://github.com/example/fleet/actions/runs/12052453829/attempts/2"},
	} {
		if v := path(t, p, tc.path...); v != tc.want {
			t.Errorf("%s = %v, want %s", strings.Join(tc.path, "."), v, tc.want)
		}
	}
	deps := path(t, p, "buildDefinition", "resolvedDependencies").([]any)
	if len(deps) != 1 {
		t.Fatalf("resolvedDependencies: %v", deps)
	}
	if uri := path(t, deps[0], "uri"); uri != "git+https://github.com/example/fleet@refs/tags/v0.1.0" {
		t.Errorf("resolved dependency uri %v", uri)
	}
	if c := path(t, deps[0], "digest", "gitCommit"); c != "3f786850e387550fdab836ed7e6dc881de23001b" {
		t.Errorf("resolved dependency commit %v", c)
	}
	// The in-toto reference implementation accepts it as SLSA v1 provenance.
	var ref slsa1.Provenance
	if err := protojson.Unmarshal(got, &ref); err != nil {
		t.Fatalf("in-toto library cannot read it: %v", err)
	}
	if err := ref.Validate(); err != nil {
		t.Errorf("in-toto library rejects it: %v", err)
	}
}

func TestGenerateGitHubEnterpriseServerAndAtInRef(t *testing.T) {
	env := readEnvFile(t, ghEnvFile)
	env["GITHUB_SERVER_URL"] = "https://ghe.example.com/"
	env["GITHUB_REF"] = "refs/tags/fleet@0.1.0"
	env["GITHUB_WORKFLOW_REF"] = "example/fleet/.github/workflows/release.yml@refs/tags/fleet@0.1.0"
	got, err := GenerateGitHub(lookup(env))
	if err != nil {
		t.Fatal(err)
	}
	p := decode(t, got)
	if v := path(t, p, "buildDefinition", "externalParameters", "workflow", "ref"); v != "refs/tags/fleet@0.1.0" {
		t.Errorf("workflow ref %v", v)
	}
	if v := path(t, p, "runDetails", "builder", "id"); v != "https://ghe.example.com/example/fleet/.github/workflows/release.yml@refs/tags/fleet@0.1.0" {
		t.Errorf("builder id %v", v)
	}
	if v := path(t, p, "buildDefinition", "externalParameters", "workflow", "repository"); v != "https://ghe.example.com/example/fleet" {
		t.Errorf("repository %v", v)
	}
}

func TestGenerateGitHubMissing(t *testing.T) {
	_, err := GenerateGitHub(func(string) string { return "" })
	wantInputError(t, err, "missing "+strings.Join(GitHubEnv, ", "))

	env := readEnvFile(t, ghEnvFile)
	delete(env, "GITHUB_SHA")
	env["RUNNER_ENVIRONMENT"] = "  "
	_, err = GenerateGitHub(lookup(env))
	wantInputError(t, err, "missing GITHUB_SHA, RUNNER_ENVIRONMENT")
	if strings.Contains(err.Error(), "GITHUB_REPOSITORY") {
		t.Errorf("error names a variable that is set: %v", err)
	}
}

func TestGenerateGitHubBadValues(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"GITHUB_SERVER_URL", "github.com", "GITHUB_SERVER_URL"},
		{"GITHUB_REPOSITORY", "fleet", "not OWNER/REPO"},
		{"GITHUB_SHA", "3F786850E387550FDAB836ED7E6DC881DE23001B", "GITHUB_SHA"},
		{"GITHUB_SHA", "3f78", "GITHUB_SHA"},
		{"GITHUB_RUN_ID", "12a", "GITHUB_RUN_ID"},
		{"GITHUB_RUN_ATTEMPT", "-1", "GITHUB_RUN_ATTEMPT"},
		{"GITHUB_WORKFLOW_REF", "other/repo/.github/workflows/release.yml@refs/heads/main", "GITHUB_WORKFLOW_REF"},
		{"GITHUB_WORKFLOW_REF", "example/fleet/.github/workflows/release.yml", "GITHUB_WORKFLOW_REF"},
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			env := readEnvFile(t, ghEnvFile)
			env[tc.key] = tc.value
			_, err := GenerateGitHub(lookup(env))
			wantInputError(t, err, tc.want)
		})
	}
}

func TestGenerateGitHubWithSubjects(t *testing.T) {
	sub, err := ParseSubject("ghcr.io/example/fleet@sha256:" + hexA)
	if err != nil {
		t.Fatal(err)
	}
	pred, err := GenerateGitHub(lookup(readEnvFile(t, ghEnvFile)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := GenerateGitHub(lookup(readEnvFile(t, ghEnvFile)), sub)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStatement(got)
	if err != nil {
		t.Fatal(err)
	}
	if st.Type != StatementTypeV1 || st.PredicateType != PredicateSLSAProvenanceV1 ||
		len(st.Subject) != 1 || st.Subject[0].Name != "ghcr.io/example/fleet" || !st.HasSubjectDigest("sha256", hexA) {
		t.Errorf("statement: %+v", st)
	}
	if string(st.Predicate) != string(pred) {
		t.Errorf("statement predicate differs from the bare predicate:\n%s\n%s", st.Predicate, pred)
	}
}
