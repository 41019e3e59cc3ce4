package policy

import (
	"fmt"
	"strings"
)

// warn lists regexps that are not anchored at both ends. They are legal —
// regexps are used as written, as cosign does — but an unanchored subject
// regexp such as github\.com/example/ also matches github.com/example/…
// inside someone else's identity.
func (l *loader) warn() {
	seen := map[*text]bool{}
	check := func(t *text) {
		if t == nil || seen[t] {
			return
		}
		seen[t] = true
		if !strings.HasPrefix(t.src, "^") || !strings.HasSuffix(t.src, "$") {
			l.p.Warnings = append(l.p.Warnings, fmt.Sprintf("%s:%d: %s: regexp %q is not anchored (^…$): it matches anywhere in the value", l.p.File, t.line, t.path, t.src))
		}
	}
	each := func(auths []authorityDecl) {
		for _, a := range auths {
			if a.keyless != nil {
				check(a.keyless.issuerRE)
				check(a.keyless.subjectRE)
			}
		}
	}
	for _, r := range l.p.Rules {
		each(r.authorities)
		for _, a := range r.attestations {
			each(a.authorities)
		}
	}
}
