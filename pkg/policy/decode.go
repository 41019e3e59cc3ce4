package policy

import (
	"github.com/seal-dev/seal/pkg/attestation"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/google/cel-go/cel"
	"gopkg.in/yaml.v3"
)

// loader turns the YAML tree into rule declarations, reporting every
// problem with its line. Declarations keep which fields were set, because
// `extends` applies only those.
type loader struct {
	r     reader
	dir   string
	p     *Policy
	decls []*ruleDecl
}

type ruleDecl struct {
	name     string
	nameAt   node
	at       node // the rule's mapping
	images   []*pattern
	imageAt  []node
	extends  string
	extendAt node

	vars         map[string]string // nil when not set
	threshold    *int
	thresholdAt  node
	authorities  []authorityDecl // nil when not set
	attestations []attestationDecl
	attSet       bool
	exception    *Exception
}

type authorityDecl struct {
	keyless *keylessDecl
	key     *Key
}

type keylessDecl struct {
	issuer, issuerRE, subject, subjectRE *text
	extensions                           []extensionDecl
}

type extensionDecl struct {
	name  string
	value *text
}

type attestationDecl struct {
	at            node
	predicateType string
	inherit       bool // authorities: inherit (the default)
	authorities   []authorityDecl
	platforms     Platforms
	condition     string
	program       cel.Program
}

var (
	identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	ruleName   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	keyName    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

func (l *loader) fail(n node, format string, args ...any) { l.r.fail(n, format, args...) }

// missing reports a required field absent from mapping n.
func (l *loader) missing(n node, field string) {
	c := n.child(field)
	c.Node = n.Node
	if n.keyLine > 0 {
		// point at "exception:", not at its first field
		c.Node = &yaml.Node{Line: n.keyLine}
	}
	l.fail(c, "missing")
}

func (l *loader) document(n node) {
	f, ok := l.r.fields(n, "apiVersion", "kind", "trust", "unmatched", "rules")
	if !ok {
		return
	}
	if v, ok := f["apiVersion"]; !ok {
		l.missing(n, "apiVersion")
	} else if s, ok := l.r.str(v); ok && s != APIVersion {
		l.fail(v, "unsupported apiVersion %q (want %s)", s, APIVersion)
	}
	if v, ok := f["kind"]; !ok {
		l.missing(n, "kind")
	} else if s, ok := l.r.str(v); ok && s != Kind {
		l.fail(v, "kind %q is not %s", s, Kind)
	}
	if v, ok := f["trust"]; ok {
		l.trust(v)
	}
	if v, ok := f["unmatched"]; ok {
		if s, ok := l.r.str(v); ok {
			switch a := Action(s); a {
			case Deny, Warn, Allow:
				l.p.Unmatched = a
			default:
				l.fail(v, "unmatched %q is not deny, warn or allow", s)
			}
		}
	}
	v, ok := f["rules"]
	if !ok {
		l.missing(n, "rules")
		return
	}
	rules, ok := l.r.list(v)
	if !ok {
		return
	}
	if len(rules) == 0 {
		l.fail(v, "no rules")
	}
	for _, rn := range rules {
		if d := l.rule(rn); d != nil {
			l.decls = append(l.decls, d)
		}
	}
}

func (l *loader) trust(n node) {
	f, ok := l.r.fields(n, "trustedRoot", "keys")
	if !ok {
		return
	}
	if v, ok := f["trustedRoot"]; ok {
		if s, ok := l.r.str(v); ok {
			path := l.path(s)
			if fi, err := os.Stat(path); err != nil {
				l.fail(v, "trusted root: %v", err)
			} else if !fi.Mode().IsRegular() {
				l.fail(v, "trusted root %s is not a file", path)
			} else {
				l.p.Trust.TrustedRoot = path
			}
		}
	}
	v, ok := f["keys"]
	if !ok {
		return
	}
	names, vals, ok := l.r.entries(v)
	if !ok {
		return
	}
	for i, kn := range names {
		name := kn.Value
		if !keyName.MatchString(name) {
			l.fail(kn, "bad key name %q", name)
			continue
		}
		kf, ok := l.r.fields(vals[i], "path", "pem")
		if !ok {
			continue
		}
		pv, hasPath := kf["path"]
		mv, hasPEM := kf["pem"]
		k := &Key{Name: name}
		var data []byte
		switch {
		case hasPath == hasPEM:
			l.fail(vals[i], "key %q needs exactly one of path and pem", name)
			continue
		case hasPath:
			s, ok := l.r.str(pv)
			if !ok {
				continue
			}
			k.Path = l.path(s)
			var err error
			if data, err = readKeyFile(k.Path); err != nil {
				l.fail(pv, "key %q: %v", name, err)
				continue
			}
		default:
			s, ok := l.r.str(mv)
			if !ok {
				continue
			}
			data = []byte(s)
		}
		pub, err := parsePublicKey(data)
		if err != nil {
			at := pv
			if hasPEM {
				at = mv
			}
			l.fail(at, "key %q: %v", name, err)
			continue
		}
		k.PublicKey = pub
		l.p.Trust.Keys[name] = k
	}
}

func (l *loader) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(l.dir, p)
}

func (l *loader) rule(n node) *ruleDecl {
	f, ok := l.r.fields(n, "name", "images", "extends", "vars", "signatures", "attestations", "exception")
	if !ok {
		return nil
	}
	d := &ruleDecl{at: n}
	if v, ok := f["name"]; !ok {
		l.missing(n, "name")
	} else if s, ok := l.r.str(v); ok {
		if !ruleName.MatchString(s) {
			l.fail(v, "bad rule name %q (letters, digits, . _ -)", s)
		}
		d.name, d.nameAt = s, v
	}
	if v, ok := f["images"]; ok {
		if items, ok := l.r.list(v); ok {
			if len(items) == 0 {
				l.fail(v, "no images: leave the field out for a rule that is only extended")
			}
			for _, in := range items {
				s, ok := l.r.str(in)
				if !ok {
					continue
				}
				p, err := parsePattern(s)
				if err != nil {
					l.fail(in, "bad glob %q: %v", s, err)
					continue
				}
				d.images = append(d.images, p)
				d.imageAt = append(d.imageAt, in)
			}
		}
	}
	if v, ok := f["extends"]; ok {
		if s, ok := l.r.str(v); ok {
			d.extends, d.extendAt = s, v
		}
	}
	if v, ok := f["vars"]; ok {
		d.vars = l.vars(v)
	}
	if v, ok := f["signatures"]; ok {
		l.signatures(v, d)
	}
	if v, ok := f["attestations"]; ok {
		d.attSet = true
		if items, ok := l.r.list(v); ok {
			for _, an := range items {
				if a, ok := l.attestation(an); ok {
					d.attestations = append(d.attestations, a)
				}
			}
		}
	}
	if v, ok := f["exception"]; ok {
		d.exception = l.exception(v)
	}
	return d
}

func (l *loader) vars(n node) map[string]string {
	keys, vals, ok := l.r.entries(n)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for i, k := range keys {
		if !identifier.MatchString(k.Value) {
			l.fail(k, "bad variable name %q (a template names it as {{ .%s }}, so letters, digits and _)", k.Value, k.Value)
			continue
		}
		s, ok := l.r.str(vals[i])
		if !ok {
			continue
		}
		if s == "" {
			l.fail(vals[i], "variable %s is empty", k.Value)
			continue
		}
		out[k.Value] = s
	}
	return out
}

func (l *loader) signatures(n node, d *ruleDecl) {
	f, ok := l.r.fields(n, "threshold", "authorities")
	if !ok {
		return
	}
	if v, ok := f["threshold"]; ok {
		if t, ok := l.r.int(v); ok {
			if t < 1 {
				l.fail(v, "threshold %d is less than 1", t)
			} else {
				d.threshold, d.thresholdAt = &t, v
			}
		}
	}
	if v, ok := f["authorities"]; ok {
		d.authorities = l.authorities(v)
		if d.authorities == nil {
			d.authorities = []authorityDecl{}
		}
	}
}

func (l *loader) authorities(n node) []authorityDecl {
	items, ok := l.r.list(n)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		l.fail(n, "no authorities")
	}
	var out []authorityDecl
	for _, an := range items {
		f, ok := l.r.fields(an, "keyless", "key")
		if !ok {
			continue
		}
		kl, hasKeyless := f["keyless"]
		kn, hasKey := f["key"]
		switch {
		case hasKeyless == hasKey:
			l.fail(an, "an authority is either keyless or key")
		case hasKey:
			s, ok := l.r.str(kn)
			if !ok {
				continue
			}
			k, found := l.p.Trust.Keys[s]
			if !found {
				l.fail(kn, "unknown key name %q (not in trust.keys)", s)
				continue
			}
			out = append(out, authorityDecl{key: k})
		default:
			if k := l.keyless(kl); k != nil {
				out = append(out, authorityDecl{keyless: k})
			}
		}
	}
	return out
}

func (l *loader) keyless(n node) *keylessDecl {
	f, ok := l.r.fields(n, "issuer", "issuerRegExp", "subject", "subjectRegExp", "extensions")
	if !ok {
		return nil
	}
	k := &keylessDecl{}
	field := func(name string, quote bool) *text {
		v, ok := f[name]
		if !ok {
			return nil
		}
		s, ok := l.r.str(v)
		if !ok {
			return nil
		}
		if s == "" {
			l.fail(v, "empty")
			return nil
		}
		t, err := parseText(v, s, quote)
		if err != nil {
			l.fail(v, "%v", err)
			return nil
		}
		return t
	}
	k.issuer, k.issuerRE = field("issuer", false), field("issuerRegExp", true)
	k.subject, k.subjectRE = field("subject", false), field("subjectRegExp", true)
	_, hasIssuer := f["issuer"]
	_, hasIssuerRE := f["issuerRegExp"]
	_, hasSubject := f["subject"]
	_, hasSubjectRE := f["subjectRegExp"]
	ok = true
	if hasIssuer == hasIssuerRE {
		l.fail(n, "keyless needs exactly one of issuer and issuerRegExp")
		ok = false
	}
	if hasSubject == hasSubjectRE {
		l.fail(n, "keyless needs exactly one of subject and subjectRegExp")
		ok = false
	}
	if v, has := f["extensions"]; has {
		names, vals, _ := l.r.entries(v)
		for i, en := range names {
			if _, known := extensions[en.Value]; !known {
				l.fail(en, "unknown certificate extension %q (known: %v)", en.Value, ExtensionNames())
				ok = false
				continue
			}
			s, good := l.r.str(vals[i])
			if !good {
				ok = false
				continue
			}
			if s == "" {
				l.fail(vals[i], "empty")
				ok = false
				continue
			}
			t, err := parseText(vals[i], s, false)
			if err != nil {
				l.fail(vals[i], "%v", err)
				ok = false
				continue
			}
			k.extensions = append(k.extensions, extensionDecl{name: en.Value, value: t})
		}
	}
	if !ok || (k.issuer == nil && k.issuerRE == nil) || (k.subject == nil && k.subjectRE == nil) {
		return nil
	}
	return k
}

func (l *loader) attestation(n node) (attestationDecl, bool) {
	a := attestationDecl{at: n, inherit: true, platforms: Platforms{Mode: PlatformsDefault}}
	f, ok := l.r.fields(n, "predicateType", "authorities", "platforms", "condition")
	if !ok {
		return a, false
	}
	ok = true
	if v, has := f["predicateType"]; !has {
		l.missing(n, "predicateType")
		ok = false
	} else if s, good := l.r.str(v); good {
		uri, err := attestation.PredicateTypeFor(s)
		if err != nil {
			l.fail(v, "%v", err)
			ok = false
		}
		a.predicateType = uri
	} else {
		ok = false
	}
	if v, has := f["authorities"]; has {
		if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
			if v.Value != "inherit" {
				l.fail(v, "authorities is inherit or a list, not %q", v.Value)
				ok = false
			}
		} else {
			a.inherit = false
			a.authorities = l.authorities(v)
			if len(a.authorities) == 0 {
				ok = false
			}
		}
	}
	if v, has := f["platforms"]; has {
		if p, good := l.platforms(v); good {
			a.platforms = p
		} else {
			ok = false
		}
	}
	if v, has := f["condition"]; has {
		if s, good := l.r.str(v); good {
			prg, err := compileCondition(s)
			if err != nil {
				l.fail(v, "%v", err)
				ok = false
			}
			a.condition, a.program = s, prg
		} else {
			ok = false
		}
	}
	return a, ok
}

func (l *loader) platforms(n node) (Platforms, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		switch m := PlatformMode(n.Value); m {
		case PlatformsAll, PlatformsIndex:
			return Platforms{Mode: m}, true
		}
		l.fail(n, "platforms is all, index or a list of os/arch, not %q", n.Value)
		return Platforms{}, false
	}
	items, ok := l.r.list(n)
	if !ok {
		return Platforms{}, false
	}
	if len(items) == 0 {
		l.fail(n, "no platforms")
		return Platforms{}, false
	}
	p := Platforms{Mode: PlatformsList}
	for _, in := range items {
		s, good := l.r.str(in)
		if !good {
			ok = false
			continue
		}
		pl, err := ParsePlatform(s)
		if err != nil {
			l.fail(in, "%v", err)
			ok = false
			continue
		}
		p.List = append(p.List, pl)
	}
	return p, ok
}

func (l *loader) exception(n node) *Exception {
	f, ok := l.r.fields(n, "reason", "expires")
	if !ok {
		return nil
	}
	e := &Exception{}
	if v, has := f["reason"]; !has {
		l.missing(n, "reason")
		ok = false
	} else if s, good := l.r.str(v); good && s != "" {
		e.Reason = s
	} else {
		if good {
			l.fail(v, "empty")
		}
		ok = false
	}
	if v, has := f["expires"]; !has {
		l.missing(n, "expires")
		ok = false
	} else if s, good := l.r.str(v); good {
		day, err := time.Parse(time.DateOnly, s)
		if err != nil {
			l.fail(v, "expires %q is not a date (YYYY-MM-DD)", s)
			ok = false
		}
		e.Expires = day.Format(time.DateOnly)
		e.end = day.AddDate(0, 0, 1)
	} else {
		ok = false
	}
	if !ok {
		return nil
	}
	return e
}
