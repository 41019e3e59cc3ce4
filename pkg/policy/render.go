package policy

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/seal-dev/seal/pkg/fault"
)

// Requirements is a rule rendered for one image: what its signatures and
// attestations must satisfy.
type Requirements struct {
	Rule  string `json:"rule"`
	Image Image  `json:"image"`
	// Vars are the template variables after `vars` were applied.
	Vars map[string]string `json:"vars"`
	// Threshold is how many of Authorities must have signed the image.
	Threshold    int            `json:"threshold"`
	Authorities  []Authority    `json:"authorities"`
	Attestations []*Attestation `json:"attestations,omitempty"`
	// Exception is the rule's exception, if it is one. When it has expired
	// the image fails: see Exception.Err.
	Exception *Exception `json:"exception,omitempty"`
}

// Attestation is one attestation an image must carry.
type Attestation struct {
	PredicateType string `json:"predicateType"`
	// Authorities of which any one must have signed the attestation.
	Authorities []Authority `json:"authorities"`
	Platforms   Platforms   `json:"platforms"`
	Condition   string      `json:"condition,omitempty"`

	program cel.Program
	vars    map[string]string
	image   map[string]any
}

// renderError is a failure to render one field (t), or the rule (t nil).
type renderError struct {
	t   *text
	err error
}

func (e *renderError) Error() string { return e.err.Error() }

// Render makes the rule concrete for img. now decides whether an exception
// has expired; an expired exception is not an error here, but recorded in
// Requirements.Exception for the verifier to report. A template using
// .Tag fails for a digest-only reference (a verification failure).
func (r *Rule) Render(img Image, now time.Time) (*Requirements, error) {
	data := img.templateData()
	for k, v := range r.Vars {
		data[k] = v
	}
	req, rerr := r.render(img, data)
	if rerr != nil {
		kind := fault.Input
		if rerr.t != nil && rerr.t.uses("Tag") && img.Tag == "" {
			kind = fault.Verification
		}
		return nil, fault.Wrap(kind, fmt.Errorf("rule %q for %s: %w", r.Name, img, rerr))
	}
	if r.Exception != nil {
		e := *r.Exception
		e.Expired = !now.Before(e.end)
		req.Exception = &e
	}
	return req, nil
}

func (r *Rule) render(img Image, data map[string]string) (*Requirements, *renderError) {
	req := &Requirements{Rule: r.Name, Image: img, Vars: data, Threshold: r.threshold}
	auths, rerr := renderAuthorities(r.authorities, data)
	if rerr != nil {
		return nil, rerr
	}
	req.Authorities = auths
	// The CEL image follows vars like the templates do: a rule that extends
	// another with vars {Name: server} means "judge this image as server".
	image := map[string]any{
		"registry":   data["Registry"],
		"repository": data["Repository"],
		"name":       data["Name"],
		"org":        data["Org"],
		"tag":        data["Tag"],
		"digest":     img.Digest,
	}
	for _, a := range r.attestations {
		att := &Attestation{
			PredicateType: a.predicateType,
			Authorities:   auths,
			Platforms:     a.platforms,
			Condition:     a.condition,
			program:       a.program,
			vars:          data,
			image:         image,
		}
		if !a.inherit {
			if att.Authorities, rerr = renderAuthorities(a.authorities, data); rerr != nil {
				return nil, rerr
			}
		}
		req.Attestations = append(req.Attestations, att)
	}
	return req, nil
}

func renderAuthorities(decls []authorityDecl, data map[string]string) ([]Authority, *renderError) {
	out := make([]Authority, 0, len(decls))
	for _, d := range decls {
		if d.key != nil {
			out = append(out, Authority{Key: &KeyAuthority{Name: d.key.Name, PublicKey: d.key.PublicKey}})
			continue
		}
		k, rerr := d.keyless.render(data)
		if rerr != nil {
			return nil, rerr
		}
		out = append(out, Authority{Keyless: k})
	}
	return out, nil
}

func (d *keylessDecl) render(data map[string]string) (*KeylessAuthority, *renderError) {
	k := &KeylessAuthority{}
	var rerr *renderError
	str := func(t *text) string {
		if t == nil || rerr != nil {
			return ""
		}
		s, err := t.render(data)
		if err == nil && s == "" {
			err = fmt.Errorf("%s renders empty", t.path)
		}
		if err != nil {
			rerr = &renderError{t: t, err: err}
		}
		return s
	}
	re := func(t *text) *regexp.Regexp {
		s := str(t)
		if t == nil || rerr != nil {
			return nil
		}
		x, err := regexp.Compile(s)
		if err != nil {
			var se *syntax.Error
			if errors.As(err, &se) {
				err = fmt.Errorf("bad regexp %q: %s: %q", t.src, se.Code, se.Expr)
			} else {
				err = fmt.Errorf("bad regexp %q: %v", t.src, err)
			}
			rerr = &renderError{t: t, err: err}
		}
		return x
	}
	k.Issuer, k.IssuerRegExp = str(d.issuer), re(d.issuerRE)
	k.Subject, k.SubjectRegExp = str(d.subject), re(d.subjectRE)
	for _, e := range d.extensions {
		if k.Extensions == nil {
			k.Extensions = map[string]string{}
		}
		k.Extensions[e.name] = str(e.value)
	}
	if rerr != nil {
		return nil, rerr
	}
	return k, nil
}
