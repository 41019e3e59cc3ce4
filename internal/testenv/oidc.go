package testenv

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// OIDCAudience is the audience Fulcio's issuers are configured with and the
// one GitHub Actions' tokens for Sigstore carry.
const OIDCAudience = "sigstore"

// OIDCIssuer is an OpenID Connect provider on 127.0.0.1 that issues ID tokens
// shaped like GitHub Actions' (RS256, the same claims), so that a real Fulcio
// configured with a github-workflow issuer for it writes the same certificate
// extensions it writes for a release workflow on GitHub.
type OIDCIssuer struct {
	// URL is the issuer identifier: the tokens' iss and the base of the
	// discovery document, e.g. http://127.0.0.1:41234.
	URL string

	key *rsa.PrivateKey
	kid string
	srv *http.Server
}

// StartOIDCIssuer serves a new issuer until t ends.
func StartOIDCIssuer(t testing.TB) *OIDCIssuer {
	t.Helper()
	o, err := newOIDCIssuer()
	if err != nil {
		t.Fatalf("oidc issuer: %v", err)
	}
	t.Cleanup(o.Close)
	return o
}

func newOIDCIssuer() (*OIDCIssuer, error) {
	// RSA rather than ECDSA because GitHub signs with RS256, the one
	// algorithm every verifier accepts without configuration.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	kidBytes := make([]byte, 8)
	if _, err := rand.Read(kidBytes); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	o := &OIDCIssuer{
		URL: "http://" + ln.Addr().String(),
		key: key,
		kid: hex.EncodeToString(kidBytes),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", o.serveDiscovery)
	mux.HandleFunc("GET /.well-known/jwks", o.serveJWKS)
	o.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go o.srv.Serve(ln) //nolint:errcheck // returns on Close
	return o, nil
}

// Close stops serving; Fulcio can then no longer fetch the issuer's keys.
func (o *OIDCIssuer) Close() { o.srv.Close() }

func (o *OIDCIssuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	// The fields GitHub's discovery document has, which go-oidc (Fulcio's
	// client) reads.
	writeJSON(w, map[string]any{
		"issuer":                                o.URL,
		"jwks_uri":                              o.URL + "/.well-known/jwks",
		"subject_types_supported":               []string{"public", "pairwise"},
		"response_types_supported":              []string{"id_token"},
		"claims_supported":                      []string{"sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "sha", "repository", "repository_id", "repository_owner", "repository_owner_id", "run_id", "run_number", "run_attempt", "actor", "actor_id", "workflow", "workflow_ref", "workflow_sha", "head_ref", "base_ref", "event_name", "ref_type", "ref_protected", "environment", "job_workflow_ref", "job_workflow_sha", "repository_visibility", "runner_environment"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid"},
	})
}

func (o *OIDCIssuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &o.key.PublicKey, KeyID: o.kid, Algorithm: string(jose.RS256), Use: "sig",
	}}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// GitHubClaims are the claims of a GitHub Actions OIDC token besides the
// registered ones (iss, aud, exp, …), named as GitHub names them.
// Fulcio's github-workflow issuer requires all of the non-omitempty ones.
type GitHubClaims struct {
	Subject              string `json:"sub"`
	Repository           string `json:"repository"`
	RepositoryID         string `json:"repository_id"`
	RepositoryOwner      string `json:"repository_owner"`
	RepositoryOwnerID    string `json:"repository_owner_id"`
	RepositoryVisibility string `json:"repository_visibility"`
	Actor                string `json:"actor"`
	ActorID              string `json:"actor_id"`
	Ref                  string `json:"ref"`
	RefType              string `json:"ref_type"`
	RefProtected         string `json:"ref_protected"`
	SHA                  string `json:"sha"`
	EventName            string `json:"event_name"`
	Workflow             string `json:"workflow"`
	WorkflowRef          string `json:"workflow_ref"`
	WorkflowSHA          string `json:"workflow_sha"`
	JobWorkflowRef       string `json:"job_workflow_ref"`
	JobWorkflowSHA       string `json:"job_workflow_sha"`
	RunnerEnvironment    string `json:"runner_environment"`
	RunID                string `json:"run_id"`
	RunNumber            string `json:"run_number"`
	RunAttempt           string `json:"run_attempt"`
	Environment          string `json:"environment,omitempty"`
	HeadRef              string `json:"head_ref"`
	BaseRef              string `json:"base_ref"`
}

// GitHubRelease gives the claims of a token that the workflow
// .github/workflows/release.yml of repo ("owner/name") gets when run on
// GitHub-hosted runners for a push of tag (e.g. "v0.1.0"). Ids and commit
// digests are derived from repo and tag, so they are stable and differ
// between repositories.
func GitHubRelease(repo, tag string) GitHubClaims {
	owner, _, _ := strings.Cut(repo, "/")
	ref := "refs/tags/" + tag
	workflowRef := repo + "/.github/workflows/release.yml@" + ref
	sha := sha1.Sum([]byte(repo + "@" + ref))
	commit := hex.EncodeToString(sha[:])
	return GitHubClaims{
		Subject:              "repo:" + repo + ":ref:" + ref,
		Repository:           repo,
		RepositoryID:         numericID("repository", repo),
		RepositoryOwner:      owner,
		RepositoryOwnerID:    numericID("owner", owner),
		RepositoryVisibility: "public",
		Actor:                owner + "-releaser",
		ActorID:              numericID("actor", owner),
		Ref:                  ref,
		RefType:              "tag",
		RefProtected:         "false",
		SHA:                  commit,
		EventName:            "push",
		Workflow:             "release",
		WorkflowRef:          workflowRef,
		WorkflowSHA:          commit,
		JobWorkflowRef:       workflowRef,
		JobWorkflowSHA:       commit,
		RunnerEnvironment:    "github-hosted",
		RunID:                numericID("run", repo+"@"+ref),
		RunNumber:            "1",
		RunAttempt:           "1",
	}
}

// numericID is a stable, GitHub-looking decimal id for name.
func numericID(kind, name string) string {
	h := sha1.Sum([]byte(kind + ":" + name))
	return fmt.Sprint(10_000_000 + binary.BigEndian.Uint32(h[:4])%900_000_000)
}

// CertificateIdentity is the SAN Fulcio writes for these claims (the
// job_workflow_ref as a URL), the identity a verifier pins.
func (c GitHubClaims) CertificateIdentity() string {
	return "https://github.com/" + c.JobWorkflowRef
}

// TokenOptions override what Token sets, for tests of refusals.
type TokenOptions struct {
	Audience string        // default OIDCAudience
	Issuer   string        // default the issuer's URL
	Lifetime time.Duration // default 10m; negative for an expired token
}

// Token issues an ID token for claims: audience "sigstore", iss the issuer's
// URL, valid for 10 minutes.
func (o *OIDCIssuer) Token(claims GitHubClaims) string {
	return o.TokenWith(claims, TokenOptions{})
}

// TokenWith issues an ID token for claims with opts applied. It panics only
// on failures of marshalling or signing in memory, which are programming
// errors.
func (o *OIDCIssuer) TokenWith(claims GitHubClaims, opts TokenOptions) string {
	if opts.Audience == "" {
		opts.Audience = OIDCAudience
	}
	if opts.Issuer == "" {
		opts.Issuer = o.URL
	}
	if opts.Lifetime == 0 {
		opts.Lifetime = 10 * time.Minute
	}
	now := time.Now()
	issued := now
	if opts.Lifetime < 0 {
		issued = now.Add(2 * opts.Lifetime)
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		panic(err)
	}
	payload, err := json.Marshal(struct {
		Issuer    string `json:"iss"`
		Audience  string `json:"aud"`
		IssuedAt  int64  `json:"iat"`
		NotBefore int64  `json:"nbf"`
		Expiry    int64  `json:"exp"`
		ID        string `json:"jti"`
		GitHubClaims
	}{opts.Issuer, opts.Audience, issued.Unix(), issued.Unix(), now.Add(opts.Lifetime).Unix(), hex.EncodeToString(jti), claims})
	if err != nil {
		panic(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: o.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", o.kid))
	if err != nil {
		panic(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		panic(errors.Join(errors.New("serialize token"), err))
	}
	return token
}
