// Package policy is seal's verification policy (POLICY.md): the file
// format with its validation, rule matching, templates and CEL conditions.
//
// A policy is loaded once (Load, Parse), asked which rule governs an image
// (Policy.Match), and the rule is rendered for that image (Match.Render)
// into Requirements: concrete authorities with compiled regexps and keys,
// attestations with compiled conditions, the threshold and the exception.
// The verifier checks bundles against Requirements with
// KeylessAuthority.Matches and Attestation.Eval, so that policy semantics
// live here and nowhere else.
//
// Decisions POLICY.md leaves open, as implemented:
//
//   - Patterns: `*` matches within a segment, a `**` segment matches one or
//     more segments, a lone `**` matches every image. The first segment is
//     the registry when it has '.', ':' or a wildcard or is localhost;
//     otherwise the pattern is a Docker Hub name (nginx, bitnami/*).
//   - Ties: two rules tie when they have patterns of equal specificity
//     (segments, literal prefix, length) that some image matches both,
//     decided exactly on the patterns (an automaton product), without
//     asking whether a third rule would win those images anyway.
//   - extends inherits everything but name and images: vars merge key by
//     key, signatures.threshold and signatures.authorities separately,
//     attestations and exception as a whole.
//   - keyless needs exactly one of issuer/issuerRegExp and one of
//     subject/subjectRegExp. Regexps are used as written (like cosign);
//     unanchored ones are listed in Policy.Warnings.
//   - Templates apply to the identity fields (issuer, subject, their
//     regexps, extension values). A condition is CEL, not a template: its
//     `image` follows the rule's vars like the templates do, and `vars`
//     holds every template variable.
//   - An exception holds through its expiry date (UTC). Rules that extend
//     an exception's rule inherit it (or declare their own), so a rule
//     built on an exception is always reported as one.
//   - An attestation is satisfied by one valid attestation signed by any
//     of its authorities (no threshold).
package policy

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/seal-dev/seal/pkg/fault"
)

const (
	APIVersion = "seal.dev/v1alpha1"
	Kind       = "Policy"
)

// maxPolicyFile bounds a policy file: policies are hand-written, and YAML
// parsing cost grows with size.
const maxPolicyFile = 1 << 20

// Action is what happens to an image no rule matches.
type Action string

const (
	Deny  Action = "deny"  // the image fails (the default)
	Warn  Action = "warn"  // the image passes, with a warning
	Allow Action = "allow" // the image passes
)

// Policy is a loaded, validated policy.
type Policy struct {
	File      string   `json:"file"`
	Trust     Trust    `json:"trust"`
	Unmatched Action   `json:"unmatched"`
	Rules     []*Rule  `json:"rules"`
	Warnings  []string `json:"warnings,omitempty"` // legal but suspicious, e.g. an unanchored regexp
}

// Trust is the trusted material a policy names.
type Trust struct {
	// TrustedRoot is the path of a Sigstore trusted root, resolved against the
	// policy's directory; empty means the public-good instance.
	TrustedRoot string          `json:"trustedRoot,omitempty"`
	Keys        map[string]*Key `json:"keys,omitempty"`
}

// Key is a named public key of trust.keys.
type Key struct {
	Name      string           `json:"name"`
	Path      string           `json:"path,omitempty"` // resolved; empty for an inline pem
	PublicKey crypto.PublicKey `json:"-"`
}

// Rule is a policy rule with `extends` applied: its own fields over those of
// the rule it extends. Render turns it into Requirements for one image.
type Rule struct {
	Name    string            `json:"name"`
	Images  []string          `json:"images,omitempty"` // as written
	Extends string            `json:"extends,omitempty"`
	Vars    map[string]string `json:"vars,omitempty"` // merged along extends
	// Exception is set on a rule that is a named, expiring exception. Its
	// Expired field is only meaningful in Requirements.
	Exception *Exception `json:"exception,omitempty"`
	Line      int        `json:"line"`

	patterns     []*pattern
	patternLines []int
	threshold    int
	thresholdAt  *node // where threshold was set, if it was
	authorities  []authorityDecl
	attestations []attestationDecl
}

// Exception is why a rule departs from the default, and until when.
type Exception struct {
	Reason string `json:"reason"`
	// Expires is the last day (UTC) the exception holds, as YYYY-MM-DD.
	Expires string `json:"expires"`
	// Expired is set by Render when the exception no longer holds: the image
	// then fails with ErrExceptionExpired.
	Expired bool `json:"expired,omitempty"`
	end     time.Time
}

// End is the first instant the exception no longer holds (midnight UTC after Expires).
func (e *Exception) End() time.Time { return e.end }

// ErrExceptionExpired is the failure of an image whose rule is an expired exception.
var ErrExceptionExpired = errors.New("exception expired")

// Err is nil while the exception holds, and a verification failure wrapping
// ErrExceptionExpired once it has expired.
func (e *Exception) Err() error {
	if e == nil || !e.Expired {
		return nil
	}
	return fault.Wrap(fault.Verification, fmt.Errorf("%w on %s (%s)", ErrExceptionExpired, e.Expires, e.Reason))
}

// Load reads and validates a policy file. Relative paths in it (keys, the
// trusted root) are resolved against the file's directory.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fault.Inputf("policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyFile+1))
	if err != nil {
		return nil, fault.Inputf("policy %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse validates a policy held in memory. name is used in errors and its
// directory resolves relative paths, as if the policy had been read from it.
// The error lists every problem found, each with file, line and reason,
// and is a fault.Input.
func Parse(name string, data []byte) (*Policy, error) {
	ps := &problems{file: name}
	if len(data) > maxPolicyFile {
		ps.add(0, "", "larger than %d bytes", maxPolicyFile)
		return nil, fault.Wrap(fault.Input, ps.err())
	}
	root, ok := parseYAML(ps, data)
	if !ok {
		return nil, fault.Wrap(fault.Input, ps.err())
	}
	l := &loader{r: reader{ps: ps}, dir: filepath.Dir(name)}
	l.p = &Policy{File: name, Unmatched: Deny, Trust: Trust{Keys: map[string]*Key{}}}
	l.document(node{Node: root})
	if !ps.any() {
		l.resolve()
	}
	if ps.any() {
		return nil, fault.Wrap(fault.Input, ps.err())
	}
	l.warn()
	return l.p, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func parseYAML(ps *problems, data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			ps.add(0, "", "empty policy")
			return nil, false
		}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			ps.add(line, "", "%s", m[2])
		} else {
			ps.add(0, "", "%v", err)
		}
		return nil, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if len(extra.Content) > 0 {
			line = extra.Content[0].Line
		}
		ps.add(line, "", "a policy is one YAML document")
		return nil, false
	}
	if len(doc.Content) != 1 {
		ps.add(doc.Line, "", "empty policy")
		return nil, false
	}
	return doc.Content[0], true
}

// Keyless reports whether any rule accepts keyless (Fulcio certificate)
// signatures or attestations. Only such a policy needs a Sigstore trusted
// root; a policy of keys verifies offline with nothing else.
func (p *Policy) Keyless() bool {
	keyless := func(as []authorityDecl) bool {
		for _, a := range as {
			if a.keyless != nil {
				return true
			}
		}
		return false
	}
	for _, r := range p.Rules {
		if keyless(r.authorities) {
			return true
		}
		for _, a := range r.attestations {
			if keyless(a.authorities) {
				return true
			}
		}
	}
	return false
}
