package policy

import (
	"crypto"
	"fmt"
	"regexp"
	"slices"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
)

// extensions maps the names a policy uses for Fulcio certificate extensions
// to their value in a certificate summary. The names are sigstore-go's
// (the JSON names of certificate.Extensions), which are also Fulcio's.
var extensions = map[string]func(*certificate.Extensions) string{
	"issuer":                              func(e *certificate.Extensions) string { return e.Issuer },
	"githubWorkflowTrigger":               func(e *certificate.Extensions) string { return e.GithubWorkflowTrigger },
	"githubWorkflowSHA":                   func(e *certificate.Extensions) string { return e.GithubWorkflowSHA },
	"githubWorkflowName":                  func(e *certificate.Extensions) string { return e.GithubWorkflowName },
	"githubWorkflowRepository":            func(e *certificate.Extensions) string { return e.GithubWorkflowRepository },
	"githubWorkflowRef":                   func(e *certificate.Extensions) string { return e.GithubWorkflowRef },
	"buildSignerURI":                      func(e *certificate.Extensions) string { return e.BuildSignerURI },
	"buildSignerDigest":                   func(e *certificate.Extensions) string { return e.BuildSignerDigest },
	"runnerEnvironment":                   func(e *certificate.Extensions) string { return e.RunnerEnvironment },
	"sourceRepositoryURI":                 func(e *certificate.Extensions) string { return e.SourceRepositoryURI },
	"sourceRepositoryDigest":              func(e *certificate.Extensions) string { return e.SourceRepositoryDigest },
	"sourceRepositoryRef":                 func(e *certificate.Extensions) string { return e.SourceRepositoryRef },
	"sourceRepositoryIdentifier":          func(e *certificate.Extensions) string { return e.SourceRepositoryIdentifier },
	"sourceRepositoryOwnerURI":            func(e *certificate.Extensions) string { return e.SourceRepositoryOwnerURI },
	"sourceRepositoryOwnerIdentifier":     func(e *certificate.Extensions) string { return e.SourceRepositoryOwnerIdentifier },
	"buildConfigURI":                      func(e *certificate.Extensions) string { return e.BuildConfigURI },
	"buildConfigDigest":                   func(e *certificate.Extensions) string { return e.BuildConfigDigest },
	"buildTrigger":                        func(e *certificate.Extensions) string { return e.BuildTrigger },
	"runInvocationURI":                    func(e *certificate.Extensions) string { return e.RunInvocationURI },
	"sourceRepositoryVisibilityAtSigning": func(e *certificate.Extensions) string { return e.SourceRepositoryVisibilityAtSigning },
}

// ExtensionNames lists the certificate extensions a keyless authority may
// require, sorted.
func ExtensionNames() []string {
	names := make([]string, 0, len(extensions))
	for n := range extensions {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// CertificateVar is the CEL variable `certificate` for a Fulcio certificate:
// every extension by name (empty when the certificate lacks it), plus
// subjectAlternativeName and certificateIssuer (the issuing CA's name).
func CertificateVar(s certificate.Summary) map[string]any {
	m := make(map[string]any, len(extensions)+2)
	for n, get := range extensions {
		m[n] = get(&s.Extensions)
	}
	m["subjectAlternativeName"] = s.SubjectAlternativeName
	m["certificateIssuer"] = s.CertificateIssuer
	return m
}

// Authority is one party whose signature counts, rendered for one image:
// either a Fulcio identity or a public key.
type Authority struct {
	Keyless *KeylessAuthority `json:"keyless,omitempty"`
	Key     *KeyAuthority     `json:"key,omitempty"`
}

func (a Authority) String() string {
	if a.Key != nil {
		return "key " + a.Key.Name
	}
	return a.Keyless.String()
}

// KeyAuthority is a public key of trust.keys.
type KeyAuthority struct {
	Name      string           `json:"name"`
	PublicKey crypto.PublicKey `json:"-"`
}

// KeylessAuthority is a Fulcio certificate identity. Issuer is the OIDC
// issuer (the certificate's issuer extension), Subject its subject
// alternative name. Exact fields compare equal; regexps are used as
// written, so anchor them (^…$) to mean the whole value. Every extension
// listed must equal the certificate's exactly.
type KeylessAuthority struct {
	Issuer        string            `json:"issuer,omitempty"`
	IssuerRegExp  *regexp.Regexp    `json:"issuerRegExp,omitempty"`
	Subject       string            `json:"subject,omitempty"`
	SubjectRegExp *regexp.Regexp    `json:"subjectRegExp,omitempty"`
	Extensions    map[string]string `json:"extensions,omitempty"`
}

func (k *KeylessAuthority) String() string {
	s := "issuer "
	if k.IssuerRegExp != nil {
		s += "~" + k.IssuerRegExp.String()
	} else {
		s += k.Issuer
	}
	s += ", subject "
	if k.SubjectRegExp != nil {
		s += "~" + k.SubjectRegExp.String()
	} else {
		s += k.Subject
	}
	return s
}

// Matches reports whether a certificate carries this identity and, when it
// does not, why (the first field that differs).
func (k *KeylessAuthority) Matches(s certificate.Summary) (bool, string) {
	issuer := s.Extensions.Issuer
	switch {
	case k.IssuerRegExp != nil && !k.IssuerRegExp.MatchString(issuer):
		return false, fmt.Sprintf("issuer %q does not match %s", issuer, k.IssuerRegExp)
	case k.IssuerRegExp == nil && issuer != k.Issuer:
		return false, fmt.Sprintf("issuer %q is not %q", issuer, k.Issuer)
	}
	subject := s.SubjectAlternativeName
	switch {
	case k.SubjectRegExp != nil && !k.SubjectRegExp.MatchString(subject):
		return false, fmt.Sprintf("subject %q does not match %s", subject, k.SubjectRegExp)
	case k.SubjectRegExp == nil && subject != k.Subject:
		return false, fmt.Sprintf("subject %q is not %q", subject, k.Subject)
	}
	names := make([]string, 0, len(k.Extensions))
	for n := range k.Extensions {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		get, ok := extensions[n]
		if !ok {
			return false, fmt.Sprintf("unknown certificate extension %s", n)
		}
		if got, want := get(&s.Extensions), k.Extensions[n]; got != want {
			return false, fmt.Sprintf("extension %s is %q, not %q", n, got, want)
		}
	}
	return true, ""
}
