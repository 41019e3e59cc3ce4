package signing

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/fault"
)

// counting counts requests by path, to see what reaches the services.
type counting struct {
	base  http.RoundTripper
	paths counts
}

type counts struct {
	fulcio atomic.Int32
	tsa    atomic.Int32
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	switch {
	case strings.HasSuffix(r.URL.Path, "/api/v2/signingCert"):
		c.paths.fulcio.Add(1)
	case strings.HasSuffix(r.URL.Path, "/api/v1/timestamp"):
		c.paths.tsa.Add(1)
	}
	base := c.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

func keylessSigner(t *testing.T, ss *testenv.Sigstore, claims testenv.GitHubClaims, tr http.RoundTripper) *KeylessSigner {
	t.Helper()
	tok := ss.Issuer.Token(claims)
	secret("identity token", tok)
	s, err := NewKeylessSigner(KeylessOptions{
		Services:    Services{FulcioURL: ss.FulcioURL, TimestampURLs: []string{ss.TSAURL}, Transport: tr},
		Token:       StaticToken(tok),
		TrustedRoot: ss.TrustedRoot(),
	})
	must(t, err)
	return s
}

// Keyless signatures made through the test Fulcio + TSA pass `cosign verify
// --trusted-root … --certificate-identity … --certificate-oidc-issuer …` in
// both formats, on both registries; another identity is refused. One
// Fulcio certificate serves the whole batch.
func TestCosignVerifiesSealKeyless(t *testing.T) {
	ss := testenv.SharedSigstore(t)
	claims := testenv.GitHubRelease("example/fleet", "v0.1.0")
	cnt := &counting{}
	s := keylessSigner(t, ss, claims, cnt)
	cert, err := s.Certificate(context.Background())
	must(t, err)
	if len(cert.URIs) != 1 || cert.URIs[0].String() != claims.CertificateIdentity() {
		t.Fatalf("certificate identity %v, want %s", cert.URIs, claims.CertificateIdentity())
	}
	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) {
			var imgs []string
			for _, tag := range []string{"a", "b", "c"} {
				imgs = append(imgs, pushRandom(t, reg, "keyless/app:"+tag).String())
			}
			res, err := Sign(context.Background(), client(reg), imgs, Options{Signer: s, Format: FormatBoth})
			recordErr("Sign keyless", err)
			must(t, err)
			if len(res) != 6 {
				t.Fatalf("results %+v", res)
			}
			base := []string{"verify", "--trusted-root", ss.TrustedRootPath,
				"--certificate-oidc-issuer", ss.Issuer.URL,
				"--insecure-ignore-tlog=true", "--insecure-ignore-sct=true", "--allow-insecure-registry"}
			for _, tc := range []struct {
				format string
				args   []string
			}{
				{"bundle", nil},
				{"legacy", []string{"--new-bundle-format=false"}},
			} {
				args := append(append(append([]string{}, base...), tc.args...),
					"--certificate-identity", claims.CertificateIdentity(), imgs[1])
				out, err := cosign(t, t.TempDir(), nil, args...)
				if err != nil {
					t.Fatalf("cosign verify keyless (%s): %v\n%s", tc.format, err, out)
				}
				args[len(args)-2] = "https://github.com/evil/fleet/.github/workflows/release.yml@refs/tags/v0.1.0"
				if out, err := cosign(t, t.TempDir(), nil, args...); err == nil {
					t.Fatalf("cosign verify (%s) accepted another identity:\n%s", tc.format, out)
				}
			}
			// The legacy layer carries the certificate, an empty chain (Fulcio
			// returned the leaf only) and the RFC 3161 timestamp.
			c := client(reg)
			d := res[0].Reference
			tag := strings.Split(d, "@")[0] + ":" + strings.Replace(strings.Split(d, "@")[1], ":", "-", 1) + ".sig"
			m := fetchManifest(t, c, tag)
			descs, err := ParseLegacyManifest(m.Raw, LegacySignature)
			must(t, err)
			ann := descs[0].Annotations
			for _, k := range []string{AnnotationSignature, AnnotationCertificate, AnnotationChain, AnnotationTimestamp} {
				if _, ok := ann[k]; !ok {
					t.Errorf("legacy layer lacks %s: %v", k, keys(ann))
				}
			}
			if _, ok := ann[AnnotationRekorBundle]; ok {
				t.Errorf("legacy layer has a Rekor bundle without Rekor")
			}
		})
	}
	if n := cnt.paths.fulcio.Load(); n != 1 {
		t.Errorf("%d Fulcio requests for 12 signatures, want 1 (the certificate is reused)", n)
	}
	if n := cnt.paths.tsa.Load(); n != 12 {
		t.Errorf("%d TSA requests for 12 signatures, want 12", n)
	}
}

// A signer whose trusted root does not know the services fails right after
// signing, before anything is pushed; a token Fulcio refuses is an
// operational error that does not echo the token.
func TestKeylessRefusals(t *testing.T) {
	ss := testenv.SharedSigstore(t)
	other := testenv.StartSigstore(t)
	claims := testenv.GitHubRelease("example/fleet", "v0.1.0")
	reg := testenv.Distribution(t)
	d := pushRandom(t, reg, "refused/app:v1")

	tok := ss.Issuer.Token(claims)
	secret("identity token", tok)
	s, err := NewKeylessSigner(KeylessOptions{
		Services:    Services{FulcioURL: ss.FulcioURL, TimestampURLs: []string{ss.TSAURL}},
		Token:       StaticToken(tok),
		TrustedRoot: other.TrustedRoot(),
	})
	must(t, err)
	_, err = Sign(context.Background(), client(reg), []string{d.String()}, Options{Signer: s})
	recordErr("Sign wrong trusted root", err)
	if err == nil {
		t.Fatal("signature checked against a foreign trusted root passed")
	}
	if refs, _ := client(reg).Referrers(context.Background(), d); len(refs) != 0 {
		t.Fatalf("%d referrers pushed after a failed check", len(refs))
	}

	// A token from another issuer: Fulcio refuses it.
	foreign := other.Issuer.Token(claims)
	secret("foreign identity token", foreign)
	s2, err := NewKeylessSigner(KeylessOptions{
		Services: Services{FulcioURL: ss.FulcioURL, TimestampURLs: []string{ss.TSAURL}},
		Token:    StaticToken(foreign),
	})
	must(t, err)
	_, err = Sign(context.Background(), client(reg), []string{d.String()}, Options{Signer: s2})
	recordErr("Sign foreign token", err)
	if err == nil || fault.KindOf(err) != fault.Operational || !strings.Contains(err.Error(), "fulcio") {
		t.Fatalf("foreign token: %v (kind %v)", err, fault.KindOf(err))
	}

	// Missing configuration is an input error before any request.
	for _, o := range []KeylessOptions{
		{Token: StaticToken(tok), Services: Services{TimestampURLs: []string{ss.TSAURL}}},
		{Services: Services{FulcioURL: ss.FulcioURL, TimestampURLs: []string{ss.TSAURL}}},
		{Token: StaticToken(tok), Services: Services{FulcioURL: ss.FulcioURL}},
	} {
		_, err := NewKeylessSigner(o)
		recordErr("NewKeylessSigner", err)
		if fault.KindOf(err) != fault.Input {
			t.Errorf("options %+v: %v", o.Services, err)
		}
	}
}

// The signing config the test Sigstore writes selects its Fulcio and TSA.
func TestServicesFromSigningConfig(t *testing.T) {
	ss := testenv.SharedSigstore(t)
	data := readFile(t, ss.SigningConfigPath)
	svc, err := ServicesFromSigningConfig(data)
	must(t, err)
	if svc.FulcioURL != ss.FulcioURL || len(svc.TimestampURLs) != 1 || svc.TimestampURLs[0] != ss.TSAURL || svc.RekorURL != "" {
		t.Fatalf("services %+v", svc)
	}
	if _, err := ServicesFromSigningConfig([]byte(`{"mediaType":"nope"}`)); fault.KindOf(err) != fault.Input {
		t.Fatalf("bad config: %v", err)
	}
}

// GitHub Actions' token request: GET the request URL with audience=sigstore
// and the request token as bearer; the token in the "value" field. The
// endpoint here is GitHub's contract served on loopback, handing out a token
// of the test issuer, which Fulcio then certifies.
func TestGitHubActionsToken(t *testing.T) {
	ss := testenv.SharedSigstore(t)
	claims := testenv.GitHubRelease("example/fleet", "v0.2.0")
	tok := ss.Issuer.Token(claims)
	const requestToken = "actions-request-token-5c0ffee"
	secret("identity token", tok)
	secret("actions request token", requestToken)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+requestToken || r.URL.Query().Get("audience") != "sigstore" ||
			r.URL.Query().Get("api-version") != "2.0" {
			http.Error(w, "bad request", http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"value": tok})
	}))
	defer srv.Close()
	env := map[string]string{
		"ACTIONS_ID_TOKEN_REQUEST_URL":   srv.URL + "/token?api-version=2.0",
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN": requestToken,
	}
	src, err := DefaultTokenSource("", func(k string) string { return env[k] }, nil)
	must(t, err)
	got, err := src.Token(context.Background())
	must(t, err)
	if got != tok {
		t.Fatal("token differs from the one served")
	}
	// And Fulcio certifies it.
	s, err := NewKeylessSigner(KeylessOptions{
		Services: Services{FulcioURL: ss.FulcioURL, TimestampURLs: []string{ss.TSAURL}}, Token: src,
	})
	must(t, err)
	cert, err := s.Certificate(context.Background())
	must(t, err)
	if cert.URIs[0].String() != claims.CertificateIdentity() {
		t.Fatalf("identity %v", cert.URIs)
	}

	// A refused request token: operational, neither token in the error.
	bad := GitHubActionsToken{RequestURL: srv.URL + "/token?api-version=2.0", RequestToken: "wrong-" + requestToken}
	_, err = bad.Token(context.Background())
	recordErr("GitHubActionsToken refused", err)
	if err == nil || fault.KindOf(err) != fault.Operational {
		t.Fatalf("refused: %v", err)
	}
	record("GitHubActionsToken %v", []byte(strings.Join([]string{bad.String(), StaticToken(tok).String()}, " ")))

	// No source at all: an input error that says what to do.
	_, err = DefaultTokenSource("", func(string) string { return "" }, nil)
	if fault.KindOf(err) != fault.Input || !strings.Contains(err.Error(), "--identity-token") {
		t.Fatalf("no token: %v", err)
	}
}

// --identity-token takes a token or a file holding one.
func TestIdentityToken(t *testing.T) {
	path := t.TempDir() + "/token"
	must(t, writeFile(path, "  file-token \n"))
	for _, tc := range []struct{ in, want string }{{path, "file-token"}, {"literal-token", "literal-token"}} {
		got, err := IdentityToken(tc.in).Token(context.Background())
		must(t, err)
		if got != tc.want {
			t.Errorf("IdentityToken(%q) = %q", tc.in, got)
		}
	}
	if _, err := StaticToken(" ").Token(context.Background()); fault.KindOf(err) != fault.Input {
		t.Errorf("empty token: %v", err)
	}
}

// A key signer can take timestamps too (`seal sign --key K --timestamp-url
// U`): the bundle and the legacy layer carry the TSA's response, and it
// verifies against the TSA's chain in the trusted root.
func TestKeySignerWithTimestamps(t *testing.T) {
	ss := testenv.SharedSigstore(t)
	k, err := NewKeySigner(quickSigner(t).kp.key, Services{TimestampURLs: []string{ss.TSAURL}})
	must(t, err)
	st, err := SignStatement(testSubject.Digest, nil)
	must(t, err)
	bj, err := SignDSSE(context.Background(), k, st)
	must(t, err)
	art, err := BundleReferrer(testSubject, bj, CosignSignPredicate, time.Now())
	must(t, err)
	b, err := ParseBundle(art.Blobs[1].Data, art.Blobs[1].Descriptor)
	must(t, err)
	ts, err := b.Timestamps()
	must(t, err)
	if len(ts) != 1 {
		t.Fatalf("%d timestamps in the bundle", len(ts))
	}
	ents, _, err := verify.VerifySignedTimestamp(b, ss.TrustedRoot())
	if err != nil || len(ents) != 1 {
		t.Fatalf("timestamp does not verify against the TSA chain: %v", err)
	}
	l, err := SignLegacy(context.Background(), k, []byte(`{"x":1}`))
	must(t, err)
	if !strings.HasPrefix(l.Annotations[AnnotationTimestamp], `{"SignedRFC3161Timestamp":"`) {
		t.Fatalf("legacy timestamp annotation %q", l.Annotations[AnnotationTimestamp])
	}
	if _, ok := l.Annotations[AnnotationCertificate]; ok {
		t.Fatal("a key signature carries a certificate annotation")
	}
}
