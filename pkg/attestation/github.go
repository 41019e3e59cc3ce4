package attestation

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/seal-dev/seal/pkg/fault"
)

// GitHubWorkflowBuildType is the build type of GitHub's own artifact
// attestations (actions/attest-build-provenance).
const GitHubWorkflowBuildType = "https://actions.github.io/buildtypes/workflow/v1"

// GitHubEnv lists the variables GenerateGitHub reads, all required.
var GitHubEnv = []string{
	"GITHUB_SERVER_URL",
	"GITHUB_REPOSITORY",
	"GITHUB_REPOSITORY_ID",
	"GITHUB_REPOSITORY_OWNER_ID",
	"GITHUB_REF",
	"GITHUB_SHA",
	"GITHUB_WORKFLOW_REF",
	"GITHUB_RUN_ID",
	"GITHUB_RUN_ATTEMPT",
	"GITHUB_EVENT_NAME",
	"RUNNER_ENVIRONMENT",
}

// The predicate's layout, field for field and in the same order, is the one
// actions/toolkit's buildSLSAProvenancePredicate writes, so policies and
// `gh attestation verify` read both alike.
type ghProvenance struct {
	BuildDefinition struct {
		BuildType          string `json:"buildType"`
		ExternalParameters struct {
			Workflow struct {
				Ref        string `json:"ref"`
				Repository string `json:"repository"`
				Path       string `json:"path"`
			} `json:"workflow"`
		} `json:"externalParameters"`
		InternalParameters struct {
			GitHub struct {
				EventName         string `json:"event_name"`
				RepositoryID      string `json:"repository_id"`
				RepositoryOwnerID string `json:"repository_owner_id"`
				RunnerEnvironment string `json:"runner_environment"`
			} `json:"github"`
		} `json:"internalParameters"`
		ResolvedDependencies []resourceDescriptor `json:"resolvedDependencies"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID string `json:"id"`
		} `json:"builder"`
		Metadata struct {
			InvocationID string `json:"invocationId"`
		} `json:"metadata"`
	} `json:"runDetails"`
}

type resourceDescriptor struct {
	URI    string            `json:"uri,omitempty"`
	Digest map[string]string `json:"digest,omitempty"`
}

var (
	ghRepoRE   = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	ghSHARE    = regexp.MustCompile(`^[0-9a-f]{40}$`)
	ghNumberRE = regexp.MustCompile(`^[0-9]+$`)
)

// GenerateGitHub builds an SLSA v1 provenance predicate for the running
// GitHub Actions job from its environment (env is os.Getenv or a recorded
// environment), with GitHub's workflow build type. Every missing variable is
// named in one input error.
//
// With subjects, the result is a complete in-toto Statement v1 around the
// predicate instead of the bare predicate.
//
// GitHub's own action reads the same values from the job's OIDC token; the
// one difference is builder.id: GitHub uses the token's job_workflow_ref,
// which for a job running a reusable workflow names the called workflow,
// while the environment only has GITHUB_WORKFLOW_REF, the calling one.
func GenerateGitHub(env func(string) string, subjects ...Subject) ([]byte, error) {
	vals := map[string]string{}
	var missing []string
	for _, k := range GitHubEnv {
		v := strings.TrimSpace(env(k))
		if v == "" {
			missing = append(missing, k)
		}
		vals[k] = v
	}
	if len(missing) > 0 {
		return nil, fault.Inputf("GitHub Actions environment: missing %s", strings.Join(missing, ", "))
	}

	var bad []string
	server, err := url.Parse(strings.TrimSuffix(vals["GITHUB_SERVER_URL"], "/"))
	if err != nil || (server.Scheme != "https" && server.Scheme != "http") || server.Host == "" ||
		server.RawQuery != "" || server.Fragment != "" {
		bad = append(bad, fmt.Sprintf("GITHUB_SERVER_URL %q is not an http(s) URL", vals["GITHUB_SERVER_URL"]))
	}
	repo := vals["GITHUB_REPOSITORY"]
	if !ghRepoRE.MatchString(repo) {
		bad = append(bad, fmt.Sprintf("GITHUB_REPOSITORY %q is not OWNER/REPO", repo))
	}
	if !ghSHARE.MatchString(vals["GITHUB_SHA"]) {
		bad = append(bad, fmt.Sprintf("GITHUB_SHA %q is not a 40-character lowercase hex commit", vals["GITHUB_SHA"]))
	}
	for _, k := range []string{"GITHUB_REPOSITORY_ID", "GITHUB_REPOSITORY_OWNER_ID", "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT"} {
		if !ghNumberRE.MatchString(vals[k]) {
			bad = append(bad, fmt.Sprintf("%s %q is not a number", k, vals[k]))
		}
	}
	// GITHUB_WORKFLOW_REF is OWNER/REPO/PATH@REF. Split at the first '@', as
	// GitHub does: a tag may itself hold '@' (monorepo tags like pkg@1.2.0).
	wfRef := vals["GITHUB_WORKFLOW_REF"]
	rest, prefixed := strings.CutPrefix(wfRef, repo+"/")
	wfPath, wfGitRef, hasAt := strings.Cut(rest, "@")
	if !prefixed || !hasAt || wfPath == "" || wfGitRef == "" {
		bad = append(bad, fmt.Sprintf("GITHUB_WORKFLOW_REF %q is not %s/PATH@REF", wfRef, repo))
	}
	if len(bad) > 0 {
		return nil, fault.Inputf("GitHub Actions environment: %s", strings.Join(bad, "; "))
	}

	base := server.String()
	var p ghProvenance
	bd := &p.BuildDefinition
	bd.BuildType = GitHubWorkflowBuildType
	bd.ExternalParameters.Workflow.Ref = wfGitRef
	bd.ExternalParameters.Workflow.Repository = base + "/" + repo
	bd.ExternalParameters.Workflow.Path = wfPath
	gh := &bd.InternalParameters.GitHub
	gh.EventName = vals["GITHUB_EVENT_NAME"]
	gh.RepositoryID = vals["GITHUB_REPOSITORY_ID"]
	gh.RepositoryOwnerID = vals["GITHUB_REPOSITORY_OWNER_ID"]
	gh.RunnerEnvironment = vals["RUNNER_ENVIRONMENT"]
	bd.ResolvedDependencies = []resourceDescriptor{{
		URI:    "git+" + base + "/" + repo + "@" + vals["GITHUB_REF"],
		Digest: map[string]string{"gitCommit": vals["GITHUB_SHA"]},
	}}
	p.RunDetails.Builder.ID = base + "/" + wfRef
	p.RunDetails.Metadata.InvocationID = fmt.Sprintf("%s/%s/actions/runs/%s/attempts/%s",
		base, repo, vals["GITHUB_RUN_ID"], vals["GITHUB_RUN_ATTEMPT"])

	pred, err := marshal(p)
	if err != nil {
		return nil, err
	}
	return withSubjects(pred, subjects)
}

// withSubjects returns the predicate alone, or a v1 statement around it.
func withSubjects(pred []byte, subjects []Subject) ([]byte, error) {
	if err := ValidatePredicate(PredicateSLSAProvenanceV1, pred); err != nil {
		return nil, err
	}
	if len(subjects) == 0 {
		return pred, nil
	}
	return NewStatement(PredicateSLSAProvenanceV1, pred, subjects...)
}
