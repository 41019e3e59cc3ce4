package testenv

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

const (
	testRepo = "example/fleet"
	testTag  = "v0.1.0"
	// The identity a release of example/fleet is pinned to, spelled out
	// rather than derived, so that a wrong derivation cannot pass.
	testIdentity = "https://github.com/example/fleet/.github/workflows/release.yml@refs/tags/v0.1.0"
)

// signBlob makes a bundle for data through s with sigstore-go's signer:
// a Fulcio certificate for token and one RFC 3161 timestamp.
func signBlob(t *testing.T, s *Sigstore, token string, data []byte) (*bundle.Bundle, error) {
	t.Helper()
	kp, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := sign.Bundle(&sign.PlainData{Data: data}, kp, sign.BundleOptions{
		CertificateProvider:        sign.NewFulcio(&sign.FulcioOptions{BaseURL: s.FulcioURL}),
		CertificateProviderOptions: &sign.CertificateProviderOptions{IDToken: token},
		TimestampAuthorities:       []*sign.TimestampAuthority{sign.NewTimestampAuthority(&sign.TimestampAuthorityOptions{URL: s.TSAURL})},
		Context:                    context.Background(),
	})
	if err != nil {
		return nil, err
	}
	return bundle.NewBundle(pb)
}

// verifyBlob verifies b for data against s's trusted root with one signed
// timestamp required and the certificate pinned to identity and issuer.
func verifyBlob(s *Sigstore, b *bundle.Bundle, data []byte, identity, issuer string) (*verify.VerificationResult, error) {
	v, err := verify.NewVerifier(s.TrustedRoot(), verify.WithSignedTimestamps(1))
	if err != nil {
		return nil, err
	}
	id, err := verify.NewShortCertificateIdentity(issuer, "", identity, "")
	if err != nil {
		return nil, err
	}
	return v.Verify(b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(data)), verify.WithCertificateIdentity(id)))
}

func TestSigstoreSignVerify(t *testing.T) {
	s := StartSigstore(t)
	t.Logf("sigstore started in %v", s.StartupTime)
	claims := GitHubRelease(testRepo, testTag)
	data := []byte("release artefact")

	b, err := signBlob(t, s, s.Issuer.Token(claims), data)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	if b.GetMediaType() != "application/vnd.dev.sigstore.bundle.v0.3+json" {
		t.Errorf("bundle media type %q", b.GetMediaType())
	}
	if n := len(b.GetVerificationMaterial().GetTlogEntries()); n != 0 {
		t.Errorf("%d tlog entries, want none (no Rekor)", n)
	}

	res, err := verifyBlob(s, b, data, testIdentity, s.Issuer.URL)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(res.VerifiedTimestamps) != 1 || res.VerifiedTimestamps[0].URI != s.TSAURL {
		t.Errorf("verified timestamps %+v, want one from %s", res.VerifiedTimestamps, s.TSAURL)
	}

	// The certificate carries what Fulcio derives from GitHub's claims.
	sum := res.Signature.Certificate
	sha := claims.SHA
	for _, c := range []struct{ field, got, want string }{
		{"SubjectAlternativeName", sum.SubjectAlternativeName, testIdentity},
		{"CertificateIssuer", sum.CertificateIssuer, fulcioRoot(t, s).Subject.String()},
		{"Issuer", sum.Issuer, s.Issuer.URL},
		{"BuildSignerURI", sum.BuildSignerURI, testIdentity},
		{"BuildSignerDigest", sum.BuildSignerDigest, sha},
		{"RunnerEnvironment", sum.RunnerEnvironment, "github-hosted"},
		{"SourceRepositoryURI", sum.SourceRepositoryURI, "https://github.com/example/fleet"},
		{"SourceRepositoryDigest", sum.SourceRepositoryDigest, sha},
		{"SourceRepositoryRef", sum.SourceRepositoryRef, "refs/tags/v0.1.0"},
		{"SourceRepositoryIdentifier", sum.SourceRepositoryIdentifier, claims.RepositoryID},
		{"SourceRepositoryOwnerURI", sum.SourceRepositoryOwnerURI, "https://github.com/example"},
		{"SourceRepositoryOwnerIdentifier", sum.SourceRepositoryOwnerIdentifier, claims.RepositoryOwnerID},
		{"BuildConfigURI", sum.BuildConfigURI, testIdentity},
		{"BuildConfigDigest", sum.BuildConfigDigest, sha},
		{"BuildTrigger", sum.BuildTrigger, "push"},
		{"RunInvocationURI", sum.RunInvocationURI, "https://github.com/example/fleet/actions/runs/" + claims.RunID + "/attempts/1"},
		{"SourceRepositoryVisibilityAtSigning", sum.SourceRepositoryVisibilityAtSigning, "public"},
		{"GithubWorkflowRepository", sum.GithubWorkflowRepository, testRepo},
		{"GithubWorkflowRef", sum.GithubWorkflowRef, "refs/tags/v0.1.0"},
	} {
		if c.got != c.want {
			t.Errorf("certificate %s = %q, want %q", c.field, c.got, c.want)
		}
	}

	// And it has every Fulcio extension a GitHub workflow gets: the
	// deprecated .1–.6 and .8–.22 (.7 is an otherName SAN, not used here).
	cert := leafCertificate(t, b)
	have := map[string]bool{}
	for _, e := range cert.Extensions {
		have[e.Id.String()] = true
	}
	for i := 1; i <= 22; i++ {
		oid := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, i}.String()
		if i != 7 && !have[oid] {
			t.Errorf("certificate lacks extension %s", oid)
		}
	}

	// The verifier is not a rubber stamp.
	for _, c := range []struct {
		name, identity, issuer string
		data                   []byte
	}{
		{"other workflow", "https://github.com/example/fleet/.github/workflows/other.yml@refs/tags/v0.1.0", s.Issuer.URL, data},
		{"other issuer", testIdentity, "https://token.actions.githubusercontent.com", data},
		{"other bytes", testIdentity, s.Issuer.URL, []byte("release artefacT")},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := verifyBlob(s, b, c.data, c.identity, c.issuer); err == nil {
				t.Error("verified")
			}
		})
	}
}

func fulcioRoot(t *testing.T, s *Sigstore) *x509.Certificate {
	t.Helper()
	cas := s.TrustedRoot().FulcioCertificateAuthorities()
	if len(cas) != 1 {
		t.Fatalf("%d certificate authorities", len(cas))
	}
	return cas[0].(*root.FulcioCertificateAuthority).Root
}

func leafCertificate(t *testing.T, b *bundle.Bundle) *x509.Certificate {
	t.Helper()
	raw := b.GetVerificationMaterial().GetCertificate().GetRawBytes()
	cert, err := x509.ParseCertificate(raw)
	if err != nil {
		t.Fatalf("bundle certificate: %v", err)
	}
	return cert
}

// Fulcio is the judge of tokens: these are all refused, each for the
// reason named (as Fulcio logs it; clients only get a generic 400), while
// the control, a good token, is accepted.
func TestSigstoreFulcioRefusesTokens(t *testing.T) {
	s := StartSigstore(t)
	other := StartOIDCIssuer(t)
	claims := GitHubRelease(testRepo, testTag)
	noWorkflowRef := claims
	noWorkflowRef.JobWorkflowRef = ""

	for _, c := range []struct {
		name   string
		token  string
		reason string // in Fulcio's log; "" for the accepted control
	}{
		{"good token", s.Issuer.Token(claims), ""},
		{"wrong audience", s.Issuer.TokenWith(claims, TokenOptions{Audience: "other"}), `expected audience \"sigstore\" got [\"other\"]`},
		{"unknown issuer", other.Token(claims), "failed to match issuer URL " + other.URL},
		{"forged with trusted iss", other.TokenWith(claims, TokenOptions{Issuer: s.Issuer.URL}), "failed to verify id token signature"},
		{"expired", s.Issuer.TokenWith(claims, TokenOptions{Lifetime: -5 * time.Minute}), "token is expired"},
		{"missing job_workflow_ref", s.Issuer.Token(noWorkflowRef), "missing job_workflow_ref claim"},
	} {
		t.Run(c.name, func(t *testing.T) {
			logBefore, _ := os.ReadFile(s.fulcioLog)
			b, err := signBlob(t, s, c.token, []byte("x"))
			if c.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got := leafCertificate(t, b).URIs[0].String(); got != testIdentity {
					t.Errorf("certificate for %s", got)
				}
				return
			}
			if err == nil {
				t.Fatal("Fulcio issued a certificate")
			}
			if !strings.Contains(err.Error(), "Fulcio returned 400") {
				t.Errorf("error %q, want Fulcio's 400", err)
			}
			logAfter, _ := os.ReadFile(s.fulcioLog)
			if logged := string(logAfter[len(logBefore):]); !strings.Contains(logged, c.reason) {
				t.Errorf("Fulcio did not log %q; it logged:\n%s", c.reason, logged)
			}
		})
	}
}

// cosign v3.1.3 signs through the test Sigstore and verifies what it and
// sigstore-go signed; sigstore-go verifies what cosign signed.
func TestSigstoreCosignInterop(t *testing.T) {
	s := StartSigstore(t)
	cosign := Tool(t, "cosign")
	dir := t.TempDir()
	tufRoot := t.TempDir()
	blob := filepath.Join(dir, "blob.txt")
	data := []byte("cosign interop\n")
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	token := s.Issuer.Token(GitHubRelease(testRepo, testTag))
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(cosign, args...)
		// cosign reaches for the public Sigstore's TUF repository when
		// not given a trusted root; a dead proxy turns any such request
		// into an immediate failure (Go never proxies loopback).
		cmd.Env = append(os.Environ(), "TUF_ROOT="+tufRoot,
			"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=")
		out, err := cmd.CombinedOutput()
		if strings.Contains(string(out), token) {
			t.Errorf("cosign %s printed the identity token", args[0])
		}
		return string(out), err
	}

	bundles := map[string]string{}
	// The v3 way: service URLs from a signing config.
	bundles["cosign signing-config"] = filepath.Join(dir, "cosign-sc.json")
	if out, err := run("sign-blob", "--yes", "--identity-token", tokenFile,
		"--signing-config", s.SigningConfigPath, "--trusted-root", s.TrustedRootPath,
		"--bundle", bundles["cosign signing-config"], blob); err != nil {
		t.Fatalf("cosign sign-blob --signing-config: %v\n%s", err, out)
	}
	// The deprecated flags, still accepted by v3.1.3.
	bundles["cosign url flags"] = filepath.Join(dir, "cosign-flags.json")
	if out, err := run("sign-blob", "--yes", "--identity-token", tokenFile,
		"--use-signing-config=false", "--fulcio-url", s.FulcioURL,
		"--timestamp-server-url", s.TSAURL, "--tlog-upload=false", "--trusted-root", s.TrustedRootPath,
		"--bundle", bundles["cosign url flags"], blob); err != nil {
		t.Fatalf("cosign sign-blob --fulcio-url: %v\n%s", err, out)
	}
	sb, err := signBlob(t, s, token, data)
	if err != nil {
		t.Fatalf("sigstore-go sign: %v", err)
	}
	sbJSON, err := sb.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	bundles["sigstore-go"] = filepath.Join(dir, "sigstore-go.json")
	if err := os.WriteFile(bundles["sigstore-go"], sbJSON, 0o644); err != nil {
		t.Fatal(err)
	}

	// No Rekor and no CT log: cosign needs to be told to go without.
	verifyArgs := func(path, identity string) []string {
		return []string{"verify-blob", "--bundle", path, "--trusted-root", s.TrustedRootPath,
			"--certificate-identity", identity, "--certificate-oidc-issuer", s.Issuer.URL,
			"--use-signed-timestamps", "--insecure-ignore-tlog", "--insecure-ignore-sct", blob}
	}
	for name, path := range bundles {
		t.Run(name, func(t *testing.T) {
			if out, err := run(verifyArgs(path, testIdentity)...); err != nil || !strings.Contains(out, "Verified OK") {
				t.Errorf("cosign verify-blob: %v\n%s", err, out)
			}
			if out, err := run(verifyArgs(path, strings.Replace(testIdentity, "release.yml", "other.yml", 1))...); err == nil {
				t.Errorf("cosign verify-blob accepted another identity:\n%s", out)
			}
			b, err := bundle.LoadJSONFromPath(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := verifyBlob(s, b, data, testIdentity, s.Issuer.URL); err != nil {
				t.Errorf("sigstore-go verify: %v", err)
			}
		})
	}

	// Nothing was fetched from the public TUF repository.
	if entries, _ := os.ReadDir(tufRoot); len(entries) != 0 {
		t.Errorf("cosign wrote to TUF_ROOT: %v", entries)
	}
}

func TestSigstoreTrustFiles(t *testing.T) {
	s := StartSigstore(t)

	tr, err := root.NewTrustedRootFromPath(s.TrustedRootPath)
	if err != nil {
		t.Fatalf("trusted root: %v", err)
	}
	if len(tr.RekorLogs()) != 0 || len(tr.CTLogs()) != 0 {
		t.Errorf("trusted root has %d tlogs, %d ctlogs; want none", len(tr.RekorLogs()), len(tr.CTLogs()))
	}
	cas := tr.FulcioCertificateAuthorities()
	if len(cas) != 1 || cas[0].(*root.FulcioCertificateAuthority).URI != s.FulcioURL {
		t.Errorf("certificate authorities %+v, want one for %s", cas, s.FulcioURL)
	}
	tsas := tr.TimestampingAuthorities()
	if len(tsas) != 1 || tsas[0].(*root.SigstoreTimestampingAuthority).URI != s.TSAURL {
		t.Errorf("timestamping authorities %+v, want one for %s", tsas, s.TSAURL)
	}

	// The trusted root names the chain Fulcio serves.
	bundleJSON, err := get(s.FulcioURL + "/api/v2/trustBundle")
	if err != nil {
		t.Fatal(err)
	}
	served := cas[0].(*root.FulcioCertificateAuthority).Root
	if !bytes.Contains(bundleJSON, []byte(strings.ReplaceAll(string(pemChain([]*x509.Certificate{served})), "\n", `\n`))) {
		t.Error("trusted root's Fulcio root is not the one Fulcio serves")
	}

	sc, err := root.NewSigningConfigFromPath(s.SigningConfigPath)
	if err != nil {
		t.Fatalf("signing config: %v", err)
	}
	urls := func(svcs []root.Service) []string {
		var u []string
		for _, s := range svcs {
			u = append(u, s.URL)
		}
		return u
	}
	for _, c := range []struct {
		name string
		got  []string
		want []string
	}{
		{"ca", urls(sc.FulcioCertificateAuthorityURLs()), []string{s.FulcioURL}},
		{"oidc", urls(sc.OIDCProviderURLs()), []string{s.Issuer.URL}},
		{"tsa", urls(sc.TimestampAuthorityURLs()), []string{s.TSAURL}},
		{"rekor", urls(sc.RekorLogURLs()), nil},
	} {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("signing config %s URLs %v, want %v", c.name, c.got, c.want)
		}
	}
	for _, p := range []string{s.FulcioChainPath, s.TSAChainPath} {
		pemBytes, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if block, _ := pem.Decode(pemBytes); block == nil || block.Type != "CERTIFICATE" {
			t.Errorf("%s: no PEM certificate", p)
		}
	}

	// Every server is on loopback.
	for _, u := range []string{s.FulcioURL, s.TSAURL, s.Issuer.URL} {
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			t.Errorf("%s is not on 127.0.0.1", u)
		}
	}
}

func TestSharedSigstore(t *testing.T) {
	t.Cleanup(StopSharedSigstore)
	a := SharedSigstore(t)
	if b := SharedSigstore(t); b != a {
		t.Fatal("second call started another Sigstore")
	}
	t.Logf("shared sigstore started in %v", a.StartupTime)
	StopSharedSigstore()
	for _, u := range []string{a.FulcioURL + "/api/v2/trustBundle", a.TSAURL + "/certchain", a.Issuer.URL + "/.well-known/openid-configuration"} {
		if _, err := get(u); err == nil {
			t.Errorf("%s still answers after StopSharedSigstore", u)
		}
	}
	if _, err := os.Stat(a.TrustedRootPath); !os.IsNotExist(err) {
		t.Errorf("trusted root still there after stop: %v", err)
	}
	if c := SharedSigstore(t); c == a {
		t.Error("SharedSigstore after StopSharedSigstore returned the stopped one")
	}
}
