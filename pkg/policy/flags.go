package policy

import (
	"path/filepath"

	"github.com/seal-dev/seal/pkg/fault"
)

// Flags describes the one-rule policy that `seal verify` uses when it is
// given a key or an identity instead of a policy file: every image must be
// signed by that key, or by a certificate with that identity. The strings
// are taken literally (no templates).
type Flags struct {
	Key           string // path of a PEM public key
	Issuer        string
	IssuerRegExp  string
	Subject       string
	SubjectRegExp string
	TrustedRoot   string // path; empty means the public-good instance
}

// FromFlags builds the policy Flags describe.
func FromFlags(f Flags) (*Policy, error) {
	p := &Policy{File: "(flags)", Unmatched: Deny, Trust: Trust{Keys: map[string]*Key{}}}
	if f.TrustedRoot != "" {
		p.Trust.TrustedRoot = f.TrustedRoot
	}
	all, _ := parsePattern("**")
	r := &Rule{Name: "flags", Images: []string{"**"}, patterns: []*pattern{all}, patternLines: []int{0}, threshold: 1}
	keyless := f.Issuer != "" || f.IssuerRegExp != "" || f.Subject != "" || f.SubjectRegExp != ""
	switch {
	case f.Key != "" && keyless:
		return nil, fault.Inputf("a key and a certificate identity are exclusive")
	case f.Key != "":
		data, err := readKeyFile(f.Key)
		if err != nil {
			return nil, fault.Inputf("key %s: %w", f.Key, err)
		}
		pub, err := parsePublicKey(data)
		if err != nil {
			return nil, fault.Inputf("key %s: %w", f.Key, err)
		}
		k := &Key{Name: filepath.Base(f.Key), Path: f.Key, PublicKey: pub}
		p.Trust.Keys[k.Name] = k
		r.authorities = []authorityDecl{{key: k}}
	case !keyless:
		return nil, fault.Inputf("give a key or a certificate identity and issuer")
	default:
		if (f.Issuer == "") == (f.IssuerRegExp == "") {
			return nil, fault.Inputf("give exactly one of a certificate OIDC issuer and an issuer regexp")
		}
		if (f.Subject == "") == (f.SubjectRegExp == "") {
			return nil, fault.Inputf("give exactly one of a certificate identity and an identity regexp")
		}
		lit := func(path, s string, quote bool) *text {
			if s == "" {
				return nil
			}
			return &text{src: s, path: path, quote: quote}
		}
		k := &keylessDecl{
			issuer:    lit("issuer", f.Issuer, false),
			issuerRE:  lit("issuerRegExp", f.IssuerRegExp, true),
			subject:   lit("subject", f.Subject, false),
			subjectRE: lit("subjectRegExp", f.SubjectRegExp, true),
		}
		if _, rerr := k.render(nil); rerr != nil {
			return nil, fault.Wrap(fault.Input, rerr)
		}
		r.authorities = []authorityDecl{{keyless: k}}
	}
	p.Rules = []*Rule{r}
	l := &loader{p: p}
	l.warn()
	return p, nil
}
