package policy

import (
	"crypto/ecdsa"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"

	"github.com/seal-dev/seal/pkg/fault"
)

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func loadExample(t *testing.T) *Policy {
	t.Helper()
	p, err := Load(filepath.Join("testdata", "policy.yaml"))
	if err != nil {
		t.Fatalf("load the POLICY.md example: %v", err)
	}
	return p
}

func render(t *testing.T, p *Policy, image string) *Requirements {
	t.Helper()
	m, err := p.Match(image)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rule == nil {
		t.Fatalf("no rule matches %s", image)
	}
	req, err := m.Render(fixedNow)
	if err != nil {
		t.Fatalf("render %s: %v", image, err)
	}
	return req
}

// githubSummary is the certificate GitHub Actions gets for a release
// workflow of repo at tag.
func githubSummary(repo, tag string) certificate.Summary {
	return certificate.Summary{
		CertificateIssuer:      "CN=sigstore-intermediate,O=sigstore.dev",
		SubjectAlternativeName: "https://github.com/" + repo + "/.github/workflows/release.yml@refs/tags/" + tag,
		Extensions: certificate.Extensions{
			Issuer:              "https://token.actions.githubusercontent.com",
			SourceRepositoryURI: "https://github.com/" + repo,
			SourceRepositoryRef: "refs/tags/" + tag,
			RunnerEnvironment:   "github-hosted",
			BuildSignerURI:      "https://github.com/" + repo + "/.github/workflows/release.yml@refs/tags/" + tag,
		},
	}
}

func TestExamplePolicyLoads(t *testing.T) {
	p := loadExample(t)
	if p.Unmatched != Deny {
		t.Errorf("unmatched = %q, want deny", p.Unmatched)
	}
	if want := filepath.Join("testdata", "trusted_root.json"); p.Trust.TrustedRoot != want {
		t.Errorf("trustedRoot = %q, want %q", p.Trust.TrustedRoot, want)
	}
	k := p.Trust.Keys["release"]
	if k == nil || k.Path != filepath.Join("testdata", "cosign.pub") {
		t.Fatalf("key release = %+v, want one read from testdata/cosign.pub", k)
	}
	if _, ok := k.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("key release is %T, want *ecdsa.PublicKey", k.PublicKey)
	}
	var names []string
	for _, r := range p.Rules {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "github-release,agent-built-by-server" {
		t.Errorf("rules %v", names)
	}
	if len(p.Warnings) != 0 {
		t.Errorf("warnings %v, want none (the regexp is anchored)", p.Warnings)
	}
}

func TestExampleDefaultRule(t *testing.T) {
	req := render(t, loadExample(t), "ghcr.io/example/server:v1.2.3")
	if req.Rule != "github-release" || req.Exception != nil || req.Threshold != 1 {
		t.Fatalf("rule %q exception %v threshold %d", req.Rule, req.Exception, req.Threshold)
	}
	if len(req.Authorities) != 2 || req.Authorities[0].Keyless == nil || req.Authorities[1].Key == nil {
		t.Fatalf("authorities %+v, want keyless then key", req.Authorities)
	}
	if _, ok := req.Authorities[1].Key.PublicKey.(*ecdsa.PublicKey); !ok || req.Authorities[1].Key.Name != "release" {
		t.Errorf("key authority %+v", req.Authorities[1].Key)
	}
	k := req.Authorities[0].Keyless
	if ok, why := k.Matches(githubSummary("example/server", "v1.2.3")); !ok {
		t.Errorf("the server release certificate does not match: %s", why)
	}
	if ok, _ := k.Matches(githubSummary("example/server", "v1.2.4")); ok {
		t.Errorf("a certificate for another tag matches")
	}
	if len(req.Attestations) != 1 {
		t.Fatalf("attestations %+v", req.Attestations)
	}
	a := req.Attestations[0]
	if a.PredicateType != "https://slsa.dev/provenance/v1" || a.Platforms.Mode != PlatformsAll || len(a.Authorities) != 2 {
		t.Errorf("attestation %+v", a)
	}
}

// The exception of POLICY.md: server-agent is judged as server.
func TestExampleExtendsWithVars(t *testing.T) {
	req := render(t, loadExample(t), "ghcr.io/example/server-agent:v1.2.3")
	if req.Rule != "agent-built-by-server" {
		t.Fatalf("rule %q", req.Rule)
	}
	k := req.Authorities[0].Keyless
	wantRE := `^https://github\.com/example/server/\.github/workflows/release\.ya?ml@refs/tags/v1\.2\.3$`
	if k.SubjectRegExp == nil || k.SubjectRegExp.String() != wantRE {
		t.Errorf("subjectRegExp = %v, want %s", k.SubjectRegExp, wantRE)
	}
	if k.Issuer != "https://token.actions.githubusercontent.com" {
		t.Errorf("issuer = %q", k.Issuer)
	}
	wantExt := map[string]string{
		"sourceRepositoryURI": "https://github.com/example/server",
		"sourceRepositoryRef": "refs/tags/v1.2.3",
		"runnerEnvironment":   "github-hosted",
	}
	for n, v := range wantExt {
		if k.Extensions[n] != v {
			t.Errorf("extension %s = %q, want %q", n, k.Extensions[n], v)
		}
	}
	if len(k.Extensions) != len(wantExt) {
		t.Errorf("extensions %v", k.Extensions)
	}
	if ok, why := k.Matches(githubSummary("example/server", "v1.2.3")); !ok {
		t.Errorf("the server release certificate does not match: %s", why)
	}
	if ok, _ := k.Matches(githubSummary("example/server-agent", "v1.2.3")); ok {
		t.Errorf("a server-agent certificate matches the exception, which names example/server")
	}
	e := req.Exception
	if e == nil || e.Reason != "server-agent is built and signed by the example/server release workflow" || e.Expires != "2027-06-30" || e.Expired {
		t.Fatalf("exception %+v", e)
	}
	if e.Err() != nil {
		t.Errorf("a live exception reports %v", e.Err())
	}
	// The condition follows the vars too: the provenance names example/server.
	a := req.Attestations[0]
	for repo, want := range map[string]bool{"https://github.com/example/server": true, "https://github.com/example/server-agent": false} {
		got, err := a.Eval(map[string]any{"predicate": provenance(repo)})
		if err != nil || got != want {
			t.Errorf("condition with repository %s = %v, %v; want %v", repo, got, err, want)
		}
	}
}

func provenance(repo string) map[string]any {
	return map[string]any{"buildDefinition": map[string]any{"externalParameters": map[string]any{
		"workflow": map[string]any{"repository": repo, "ref": "refs/tags/v1.2.3"},
	}}}
}

func TestRenderQuotesRegExpValues(t *testing.T) {
	doc := header + `  - name: r
    images: ["ghcr.io/**"]
    vars: {Branch: "release/1.x+"}
    signatures:
      authorities:
        - keyless:
            issuerRegExp: '^https://{{ .Registry }}$'
            subjectRegExp: '^https://github\.com/{{ .Repository }}@refs/tags/{{ .Tag }}$'
            extensions:
              sourceRepositoryRef: refs/tags/{{ .Tag }}
        - keyless:
            issuer: https://issuer.example
            subjectRegExp: '^{{ .Branch }}$'
`
	p, err := parseDoc(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	req := render(t, p, "ghcr.io/example/my.app:v1.2.3")
	k := req.Authorities[0].Keyless
	tests := []struct {
		re      interface{ MatchString(string) bool }
		subject string
		want    bool
	}{
		{k.SubjectRegExp, "https://github.com/example/my.app@refs/tags/v1.2.3", true},
		{k.SubjectRegExp, "https://github.com/example/my.app@refs/tags/v1x2x3", false},
		{k.SubjectRegExp, "https://github.com/example/myxapp@refs/tags/v1.2.3", false},
		{k.IssuerRegExp, "https://ghcr.io", true},
		{k.IssuerRegExp, "https://ghcrxio", false},
		{req.Authorities[1].Keyless.SubjectRegExp, "release/1.x+", true},
		{req.Authorities[1].Keyless.SubjectRegExp, "release/1.xx", false},
	}
	for _, tt := range tests {
		if got := tt.re.MatchString(tt.subject); got != tt.want {
			t.Errorf("%v matches %q = %v, want %v", tt.re, tt.subject, got, tt.want)
		}
	}
	// Exact fields are not regexps and get the value as it is.
	if got := k.Extensions["sourceRepositoryRef"]; got != "refs/tags/v1.2.3" {
		t.Errorf("sourceRepositoryRef = %q, want refs/tags/v1.2.3", got)
	}
}

func TestRenderTagOfDigestOnlyReference(t *testing.T) {
	p := loadExample(t)
	m, err := p.Match("ghcr.io/example/server@" + testDigest)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Render(fixedNow)
	if err == nil {
		t.Fatal("a rule using .Tag rendered for a digest-only reference")
	}
	if fault.KindOf(err) != fault.Verification {
		t.Errorf("kind %v, want verification", fault.KindOf(err))
	}
	for _, want := range []string{`rule "github-release"`, "ghcr.io/example/server@" + testDigest, "{{ .Tag }}", "no tag (digest only)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// With a tag next to the digest, the same rule renders.
	req := render(t, p, "ghcr.io/example/server:v1.2.3@"+testDigest)
	if req.Image.Digest != testDigest || !req.Authorities[0].Keyless.SubjectRegExp.MatchString("https://github.com/example/server/.github/workflows/release.yml@refs/tags/v1.2.3") {
		t.Errorf("tag+digest reference rendered %+v", req.Authorities[0].Keyless)
	}
	// A rule that does not use .Tag renders for a digest-only reference.
	q, err := parseDoc(t, header+`  - name: r
    images: ["ghcr.io/**"]
    signatures:
      authorities:
        - keyless: {issuer: https://issuer.example, subject: "https://github.com/{{ .Repository }}"}
`)
	if err != nil {
		t.Fatal(err)
	}
	req = render(t, q, "ghcr.io/example/server@"+testDigest)
	if got := req.Authorities[0].Keyless.Subject; got != "https://github.com/example/server" {
		t.Errorf("subject = %q", got)
	}
}

func TestRenderException(t *testing.T) {
	p := loadExample(t)
	m, err := p.Match("ghcr.io/example/server-agent:v1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		now     time.Time
		expired bool
	}{
		{time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC), false},
		{time.Date(2027, 6, 30, 23, 59, 59, 0, time.UTC), false}, // the whole day counts
		{time.Date(2027, 7, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), true},
	}
	for _, tt := range tests {
		req, err := m.Render(tt.now)
		if err != nil {
			t.Fatal(err)
		}
		e := req.Exception
		if e.Expired != tt.expired {
			t.Errorf("at %v: expired = %v, want %v", tt.now, e.Expired, tt.expired)
		}
		err = e.Err()
		if tt.expired != (err != nil) {
			t.Errorf("at %v: Err() = %v", tt.now, err)
		}
		if tt.expired && (!errors.Is(err, ErrExceptionExpired) || fault.KindOf(err) != fault.Verification || !strings.Contains(err.Error(), "exception expired on 2027-06-30")) {
			t.Errorf("at %v: Err() = %v, want a verification failure 'exception expired on 2027-06-30'", tt.now, err)
		}
	}
	if !m.Rule.Exception.End().Equal(time.Date(2027, 7, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("End() = %v", m.Rule.Exception.End())
	}
	// Rendering does not change the rule: the next image starts fresh.
	if m.Rule.Exception.Expired {
		t.Error("Render marked the rule's own exception as expired")
	}
}

func TestExtendsChain(t *testing.T) {
	doc := header + `  - name: org-default
    vars: {Owner: acme, Workflow: release}
    signatures:
      threshold: 2
      authorities:
        - key: release
        - keyless:
            issuer: https://token.actions.githubusercontent.com
            subject: 'https://github.com/{{ .Owner }}/{{ .Name }}/.github/workflows/{{ .Workflow }}.yml@refs/tags/{{ .Tag }}'
    exception: {reason: inherited, expires: 2026-12-31}
  - name: team
    extends: org-default
    images: ["ghcr.io/team/**"]
    vars: {Owner: team-org}
    attestations:
      - predicateType: slsaprovenance1
        platforms: [linux/amd64, linux/arm64/v8]
      - predicateType: spdxjson
        authorities: [{key: release}]
        platforms: index
    exception: {reason: own, expires: 2026-06-30}
  - name: team-nightly
    extends: team
    images: ["ghcr.io/team/nightly/*"]
    vars: {Workflow: nightly}
    signatures: {threshold: 1}
`
	p, err := parseDoc(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	req := render(t, p, "ghcr.io/team/nightly/app:n1")
	if req.Rule != "team-nightly" || req.Threshold != 1 || len(req.Authorities) != 2 {
		t.Fatalf("rule %q threshold %d authorities %d", req.Rule, req.Threshold, len(req.Authorities))
	}
	if got, want := req.Authorities[1].Keyless.Subject, "https://github.com/team-org/app/.github/workflows/nightly.yml@refs/tags/n1"; got != want {
		t.Errorf("subject = %q, want %q", got, want)
	}
	if req.Exception == nil || req.Exception.Reason != "own" {
		t.Errorf("exception %+v, want team's", req.Exception)
	}
	if len(req.Attestations) != 2 {
		t.Fatalf("attestations %+v", req.Attestations)
	}
	prov, sbom := req.Attestations[0], req.Attestations[1]
	if prov.PredicateType != "https://slsa.dev/provenance/v1" || len(prov.Authorities) != 2 || prov.Platforms.Mode != PlatformsList ||
		len(prov.Platforms.List) != 2 || prov.Platforms.List[1] != (Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}) {
		t.Errorf("provenance requirement %+v", prov)
	}
	if sbom.PredicateType != "https://spdx.dev/Document" || len(sbom.Authorities) != 1 || sbom.Authorities[0].Key == nil || sbom.Platforms.Mode != PlatformsIndex {
		t.Errorf("sbom requirement %+v", sbom)
	}
	team := render(t, p, "ghcr.io/team/app:v2")
	if team.Rule != "team" || team.Threshold != 2 {
		t.Errorf("team: rule %q threshold %d, want team with the inherited threshold 2", team.Rule, team.Threshold)
	}
	if got, want := team.Authorities[1].Keyless.Subject, "https://github.com/team-org/app/.github/workflows/release.yml@refs/tags/v2"; got != want {
		t.Errorf("team subject = %q, want %q", got, want)
	}
	vars := p.Rules[2].Vars
	if len(vars) != 2 || vars["Owner"] != "team-org" || vars["Workflow"] != "nightly" {
		t.Errorf("merged vars %v", vars)
	}
}

func TestUnanchoredRegExpWarning(t *testing.T) {
	p, err := parseDoc(t, header+`  - name: r
    images: ["ghcr.io/**"]
    signatures:
      authorities:
        - keyless: {issuer: https://issuer.example, subjectRegExp: 'github\.com/example/'}
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "policy.yaml:11: rules[0].signatures.authorities[0].keyless.subjectRegExp") || !strings.Contains(p.Warnings[0], "not anchored") {
		t.Errorf("warnings %q", p.Warnings)
	}
}

func TestRenderIsBounded(t *testing.T) {
	_, err := parseDoc(t, header+`  - name: r #!
    images: ["ghcr.io/**"]
    signatures:
      authorities:
        - keyless: {issuer: https://issuer.example, subject: "{{ range 100000000 }}x{{ end }}"}
`)
	if err == nil || !strings.Contains(err.Error(), "policy.yaml:11: ") || !strings.Contains(err.Error(), "renders to more than") {
		t.Errorf("err = %v, want the runaway template rejected at line 11", err)
	}
}

// The verifier renders and evaluates from a worker pool; a loaded policy
// is shared read-only. Run with -race.
func TestConcurrentUse(t *testing.T) {
	p := loadExample(t)
	done := make(chan error)
	for i := range 8 {
		go func() {
			img := "ghcr.io/example/server-agent:v1." + string(rune('0'+i))
			m, err := p.Match(img)
			if err != nil {
				done <- err
				return
			}
			req, err := m.Render(fixedNow)
			if err != nil {
				done <- err
				return
			}
			ok, err := req.Attestations[0].Eval(map[string]any{"predicate": provenance("https://github.com/example/server")})
			if err == nil && !ok {
				err = errors.New("condition false")
			}
			if err == nil && !req.Authorities[0].Keyless.SubjectRegExp.MatchString("https://github.com/example/server/.github/workflows/release.yml@refs/tags/v1."+string(rune('0'+i))) {
				err = errors.New("subject does not match its own tag")
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
