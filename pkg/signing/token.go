package signing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/seal-dev/seal/pkg/fault"
)

// TokenSource yields an OIDC identity token for Fulcio. Tokens are secrets:
// implementations never put them in errors.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// maxToken bounds a token read from a file or a response; real ones are a
// few KiB.
const maxToken = 64 << 10

// StaticToken is a token given literally (`--identity-token`).
type StaticToken string

// Token implements TokenSource.
func (t StaticToken) Token(context.Context) (string, error) {
	if strings.TrimSpace(string(t)) == "" {
		return "", fault.Inputf("identity token is empty")
	}
	return strings.TrimSpace(string(t)), nil
}

// String keeps the token out of any accidental %v.
func (t StaticToken) String() string { return "StaticToken([REDACTED])" }

// TokenFile reads the token from a file each time it is asked, so a CI
// system that refreshes the file is followed.
type TokenFile string

// Token implements TokenSource.
func (f TokenFile) Token(context.Context) (string, error) {
	fh, err := os.Open(string(f))
	if err != nil {
		return "", fault.Inputf("identity token file: %v", err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxToken+1))
	if err != nil {
		return "", fault.Inputf("identity token file %s: %v", f, err)
	}
	if len(b) > maxToken {
		return "", fault.Inputf("identity token file %s: larger than %d bytes", f, maxToken)
	}
	return StaticToken(b).Token(context.Background())
}

// IdentityToken interprets `--identity-token VALUE` as cosign does: the path
// of a file holding the token when such a file exists, else the token itself.
func IdentityToken(value string) TokenSource {
	if st, err := os.Stat(value); err == nil && st.Mode().IsRegular() {
		return TokenFile(value)
	}
	return StaticToken(value)
}

// GitHubActionsAudience is the audience Fulcio expects in GitHub Actions tokens.
const GitHubActionsAudience = "sigstore"

// GitHubActionsToken asks GitHub Actions' OIDC provider for a token with
// audience `sigstore`: GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=sigstore
// with the request token as bearer. A fresh token is requested each time, so
// a long batch that renews its certificate gets a valid one.
type GitHubActionsToken struct {
	RequestURL   string
	RequestToken string
	Client       *http.Client // nil: a client with a 30s timeout
}

// String keeps the request token out of any accidental %v.
func (g GitHubActionsToken) String() string { return "GitHubActionsToken(" + g.RequestURL + ")" }

// Token implements TokenSource.
func (g GitHubActionsToken) Token(ctx context.Context) (string, error) {
	u, err := url.Parse(g.RequestURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fault.Inputf("ACTIONS_ID_TOKEN_REQUEST_URL is not an http(s) URL")
	}
	q := u.Query()
	q.Set("audience", GitHubActionsAudience)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fault.Inputf("ACTIONS_ID_TOKEN_REQUEST_URL: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+g.RequestToken)
	req.Header.Set("Accept", "application/json")
	c := g.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", fault.Wrap(fault.Operational, fmt.Errorf("github actions token: %w", redact(err, g.RequestToken)))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxToken+1))
	if err != nil {
		return "", fault.Operationalf("github actions token: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		// The body is not echoed: it is not ours to print.
		return "", fault.Operationalf("github actions token: HTTP %d from %s", resp.StatusCode, u.Host)
	}
	if len(body) > maxToken {
		return "", fault.Operationalf("github actions token: response larger than %d bytes", maxToken)
	}
	var r struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Value == "" {
		return "", fault.Operationalf("github actions token: response has no token value")
	}
	return r.Value, nil
}

// ErrNoToken means no identity token source is configured.
var ErrNoToken = errors.New("no identity token: pass --identity-token, or run in GitHub Actions with `permissions: id-token: write`")

// DefaultTokenSource picks the token source the way CI users expect: an
// explicit --identity-token value first, else GitHub Actions' environment.
// getenv is os.Getenv in production.
func DefaultTokenSource(identityToken string, getenv func(string) string, client *http.Client) (TokenSource, error) {
	if identityToken != "" {
		return IdentityToken(identityToken), nil
	}
	if u, t := getenv("ACTIONS_ID_TOKEN_REQUEST_URL"), getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN"); u != "" && t != "" {
		return GitHubActionsToken{RequestURL: u, RequestToken: t, Client: client}, nil
	}
	return nil, fault.Wrap(fault.Input, ErrNoToken)
}
