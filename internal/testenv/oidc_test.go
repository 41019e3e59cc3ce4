package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// go-oidc is the client Fulcio uses: the issuer's discovery document, keys
// and tokens must satisfy it.
func TestOIDCIssuerTokenVerifies(t *testing.T) {
	iss := StartOIDCIssuer(t)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, iss.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: OIDCAudience})

	want := GitHubRelease(testRepo, testTag)
	before := time.Now()
	tok, err := verifier.Verify(ctx, iss.Token(want))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if tok.Issuer != iss.URL || tok.Subject != "repo:example/fleet:ref:refs/tags/v0.1.0" {
		t.Errorf("iss %q sub %q", tok.Issuer, tok.Subject)
	}
	if len(tok.Audience) != 1 || tok.Audience[0] != "sigstore" {
		t.Errorf("aud %v", tok.Audience)
	}
	if life := tok.Expiry.Sub(before); life < 9*time.Minute || life > 11*time.Minute {
		t.Errorf("token valid for %v, want 10m", life)
	}
	var got GitHubClaims
	if err := tok.Claims(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("claims round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestOIDCIssuerTokenOptions(t *testing.T) {
	iss := StartOIDCIssuer(t)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, iss.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: OIDCAudience})
	claims := GitHubRelease(testRepo, testTag)
	for _, c := range []struct {
		name    string
		opts    TokenOptions
		wantErr string
	}{
		{"defaults", TokenOptions{}, ""},
		{"audience", TokenOptions{Audience: "other"}, "expected audience"},
		{"issuer", TokenOptions{Issuer: "https://token.actions.githubusercontent.com"}, "id token issued by a different provider"},
		{"expired", TokenOptions{Lifetime: -time.Minute}, "token is expired"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := verifier.Verify(ctx, iss.TokenWith(claims, c.opts))
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("error %v, want %q", err, c.wantErr)
			}
		})
	}
}

func TestGitHubRelease(t *testing.T) {
	for _, c := range []struct {
		repo, tag           string
		sub, workflowRef    string
		owner, certIdentity string
	}{
		{"example/fleet", "v0.1.0",
			"repo:example/fleet:ref:refs/tags/v0.1.0",
			"example/fleet/.github/workflows/release.yml@refs/tags/v0.1.0",
			"example", "https://github.com/example/fleet/.github/workflows/release.yml@refs/tags/v0.1.0"},
		{"acme/tools", "v2.3.4-rc.1",
			"repo:acme/tools:ref:refs/tags/v2.3.4-rc.1",
			"acme/tools/.github/workflows/release.yml@refs/tags/v2.3.4-rc.1",
			"acme", "https://github.com/acme/tools/.github/workflows/release.yml@refs/tags/v2.3.4-rc.1"},
	} {
		t.Run(c.repo, func(t *testing.T) {
			g := GitHubRelease(c.repo, c.tag)
			for _, f := range []struct{ name, got, want string }{
				{"sub", g.Subject, c.sub},
				{"repository", g.Repository, c.repo},
				{"repository_owner", g.RepositoryOwner, c.owner},
				{"ref", g.Ref, "refs/tags/" + c.tag},
				{"ref_type", g.RefType, "tag"},
				{"event_name", g.EventName, "push"},
				{"runner_environment", g.RunnerEnvironment, "github-hosted"},
				{"job_workflow_ref", g.JobWorkflowRef, c.workflowRef},
				{"workflow_ref", g.WorkflowRef, c.workflowRef},
				{"CertificateIdentity", g.CertificateIdentity(), c.certIdentity},
			} {
				if f.got != f.want {
					t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
				}
			}
			if len(g.SHA) != 40 || strings.Trim(g.SHA, "0123456789abcdef") != "" {
				t.Errorf("sha %q is not a git commit id", g.SHA)
			}
			for name, id := range map[string]string{"repository_id": g.RepositoryID, "repository_owner_id": g.RepositoryOwnerID, "run_id": g.RunID} {
				if id == "" || strings.Trim(id, "0123456789") != "" {
					t.Errorf("%s %q is not numeric", name, id)
				}
			}
			if GitHubRelease(c.repo, c.tag) != g {
				t.Error("not deterministic")
			}
		})
	}
	a, b := GitHubRelease("example/fleet", "v1"), GitHubRelease("example/other", "v1")
	if a.RepositoryID == b.RepositoryID || a.SHA == b.SHA || a.RepositoryOwnerID != b.RepositoryOwnerID {
		t.Errorf("ids: %s/%s %s/%s owners %s/%s", a.RepositoryID, b.RepositoryID, a.SHA, b.SHA, a.RepositoryOwnerID, b.RepositoryOwnerID)
	}
}
