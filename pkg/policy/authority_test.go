package policy

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
)

// The table of extension names must follow sigstore-go: every field of
// certificate.Extensions, by its JSON name.
func TestExtensionTableCoversSigstore(t *testing.T) {
	var fromSigstore []string
	for _, f := range reflect.VisibleFields(reflect.TypeOf(certificate.Extensions{})) {
		fromSigstore = append(fromSigstore, strings.Split(f.Tag.Get("json"), ",")[0])
	}
	slices.Sort(fromSigstore)
	if got := ExtensionNames(); !slices.Equal(got, fromSigstore) {
		t.Errorf("ExtensionNames() = %v\nsigstore-go has %v", got, fromSigstore)
	}
}

// setExtension sets the extension named n (its JSON name) to v.
func setExtension(t *testing.T, e *certificate.Extensions, n, v string) {
	t.Helper()
	rv := reflect.ValueOf(e).Elem()
	for _, f := range reflect.VisibleFields(rv.Type()) {
		if strings.Split(f.Tag.Get("json"), ",")[0] == n {
			rv.FieldByIndex(f.Index).SetString(v)
			return
		}
	}
	t.Fatalf("no extension %s", n)
}

func TestKeylessMatchesEachExtension(t *testing.T) {
	for _, n := range ExtensionNames() {
		t.Run(n, func(t *testing.T) {
			base := githubSummary("example/app", "v1")
			issuer := base.Extensions.Issuer
			if n == "issuer" {
				issuer = "https://want.example"
			}
			k := &KeylessAuthority{Issuer: issuer, Subject: base.SubjectAlternativeName, Extensions: map[string]string{n: "https://want.example"}}

			s := base
			setExtension(t, &s.Extensions, n, "https://want.example")
			if ok, why := k.Matches(s); !ok {
				t.Errorf("equal %s does not match: %s", n, why)
			}
			setExtension(t, &s.Extensions, n, "https://other.example")
			ok, why := k.Matches(s)
			if ok || !strings.Contains(why, n) {
				t.Errorf("different %s: Matches = %v, %q; want false naming %s", n, ok, why, n)
			}
			setExtension(t, &s.Extensions, n, "")
			if ok, _ := k.Matches(s); ok {
				t.Errorf("a certificate without %s matches", n)
			}
			// CEL sees the same value under the same name.
			setExtension(t, &s.Extensions, n, "https://want.example")
			if got := CertificateVar(s)[n]; got != "https://want.example" {
				t.Errorf("CertificateVar()[%s] = %v", n, got)
			}
		})
	}
}

func TestKeylessMatches(t *testing.T) {
	good := githubSummary("example/app", "v1.2.3")
	ghIssuer := "https://token.actions.githubusercontent.com"
	subject := good.SubjectAlternativeName
	tests := []struct {
		name string
		k    KeylessAuthority
		s    certificate.Summary
		want bool
		why  string
	}{
		{"exact", KeylessAuthority{Issuer: ghIssuer, Subject: subject}, good, true, ""},
		{"wrong issuer", KeylessAuthority{Issuer: "https://accounts.google.com", Subject: subject}, good, false, `issuer "https://token.actions.githubusercontent.com" is not "https://accounts.google.com"`},
		{"wrong subject", KeylessAuthority{Issuer: ghIssuer, Subject: subject + "x"}, good, false, "subject"},
		{"issuer regexp", KeylessAuthority{IssuerRegExp: regexp.MustCompile(`^https://token\.actions\.githubusercontent\.com$`), Subject: subject}, good, true, ""},
		{"issuer regexp mismatch", KeylessAuthority{IssuerRegExp: regexp.MustCompile(`^https://gitlab\.com$`), Subject: subject}, good, false, "does not match ^https://gitlab"},
		{"subject regexp", KeylessAuthority{Issuer: ghIssuer, SubjectRegExp: regexp.MustCompile(`^https://github\.com/example/app/\.github/workflows/release\.yml@refs/tags/v1\.2\.3$`)}, good, true, ""},
		{"subject regexp of another repository", KeylessAuthority{Issuer: ghIssuer, SubjectRegExp: regexp.MustCompile(`^https://github\.com/example/other/`)}, good, false, "subject"},
		// Regexps are used as written: without anchors they match inside the value.
		{"unanchored regexp matches inside", KeylessAuthority{Issuer: ghIssuer, SubjectRegExp: regexp.MustCompile(`example/app`)}, githubSummary("evil/example/app", "v1"), true, ""},
		{"anchored regexp does not", KeylessAuthority{Issuer: ghIssuer, SubjectRegExp: regexp.MustCompile(`^https://github\.com/example/app/`)}, githubSummary("evil/example/app", "v1"), false, "subject"},
		{"x509 issuer is not the OIDC issuer", KeylessAuthority{Issuer: good.CertificateIssuer, Subject: subject}, good, false, "issuer"},
		{"several extensions", KeylessAuthority{Issuer: ghIssuer, Subject: subject, Extensions: map[string]string{
			"sourceRepositoryURI": "https://github.com/example/app", "sourceRepositoryRef": "refs/tags/v1.2.3", "runnerEnvironment": "github-hosted"}}, good, true, ""},
		{"self-hosted runner", KeylessAuthority{Issuer: ghIssuer, Subject: subject, Extensions: map[string]string{
			"sourceRepositoryURI": "https://github.com/example/app", "runnerEnvironment": "github-hosted"}},
			func() certificate.Summary { s := good; s.Extensions.RunnerEnvironment = "self-hosted"; return s }(), false, `extension runnerEnvironment is "self-hosted", not "github-hosted"`},
	}
	for _, tt := range tests {
		ok, why := tt.k.Matches(tt.s)
		if ok != tt.want || !strings.Contains(why, tt.why) || ok && why != "" {
			t.Errorf("%s: Matches = %v, %q; want %v, %q", tt.name, ok, why, tt.want, tt.why)
		}
	}
}

func TestKeylessString(t *testing.T) {
	k := KeylessAuthority{Issuer: "https://i.example", SubjectRegExp: regexp.MustCompile(`^x$`)}
	if got := (Authority{Keyless: &k}).String(); got != "issuer https://i.example, subject ~^x$" {
		t.Errorf("String() = %q", got)
	}
	if got := (Authority{Key: &KeyAuthority{Name: "release"}}).String(); got != "key release" {
		t.Errorf("String() = %q", got)
	}
}
