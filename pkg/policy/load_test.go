package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seal-dev/seal/pkg/fault"
)

// header starts most test policies: a key named release, then the rules.
const header = `apiVersion: seal.dev/v1alpha1
kind: Policy
trust:
  keys:
    release: {path: cosign.pub}
rules:
`

// baseRule is a valid rule for ghcr.io/example/**.
const baseRule = `  - name: base
    images: ["ghcr.io/example/**"]
    signatures:
      authorities:
        - keyless:
            issuer: https://token.actions.githubusercontent.com
            subjectRegExp: '^https://github\.com/example/{{ .Name }}/\.github/workflows/release\.yml@refs/tags/{{ .Tag }}$'
`

func writePublicKey(t *testing.T, path string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// parseDoc parses doc as dir/policy.yaml, where dir holds cosign.pub.
func parseDoc(t *testing.T, doc string) (*Policy, error) {
	t.Helper()
	dir := t.TempDir()
	writePublicKey(t, filepath.Join(dir, "cosign.pub"))
	return Parse(filepath.Join(dir, "policy.yaml"), []byte(doc))
}

// markedLine is the line of doc that carries the marker "#!".
func markedLine(t *testing.T, doc string) int {
	t.Helper()
	for i, l := range strings.Split(doc, "\n") {
		if strings.Contains(l, "#!") {
			return i + 1
		}
	}
	t.Fatalf("no #! marker in\n%s", doc)
	return 0
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string // the line marked #! is where the problem must be reported
		want string // part of the reason
	}{
		{"unknown top-level field", header + baseRule + "unmatch: deny #!\n", `unknown field "unmatch"`},
		{"unknown rule field", header + baseRule + "    imagez: [x] #!\n", `rules[0].imagez: unknown field "imagez"`},
		{"unknown keyless field", header + `  - name: r
    images: ["ghcr.io/x/*"]
    signatures:
      authorities:
        - keyless:
            issuer: https://issuer.example
            subjectRegexp: '^x$' #!
`, `unknown field "subjectRegexp"`},
		{"field twice", header + baseRule + "    name: again #!\n", `field "name" given twice`},
		{"bad glob", header + `  - name: r
    images: ["ghcr.io/example/a**"] #!
`, `rules[0].images[0]: bad glob "ghcr.io/example/a**": path segment "a**": ** must be a whole segment`},
		{"glob with a tag", header + baseRule + `  - name: r
    extends: base
    images: ["ghcr.io/other/app:v1"] #!
`, `bad glob "ghcr.io/other/app:v1"`},
		{"glob with upper case", header + baseRule + `  - name: r
    extends: base
    images:
      - ghcr.io/other/App #!
`, `repository names are lower case`},
		{"one-segment glob with a wildcard", header + baseRule + `  - name: r
    extends: base
    images: ["ngin*"] #!
`, `Docker Hub official image`},
		{"bad CEL syntax", header + baseRule + `    attestations:
      - predicateType: slsaprovenance1
        condition: predicate.x == #!
`, `bad CEL: 1:15: Syntax error`},
		{"bad CEL undeclared variable", header + baseRule + `    attestations:
      - predicateType: slsaprovenance1
        condition: subject.x == "y" #!
`, `undeclared reference to 'subject'`},
		{"bad CEL not bool", header + baseRule + `    attestations:
      - predicateType: slsaprovenance1
        condition: image.name #!
`, `condition is string, not bool`},
		{"bad regexp", header + `  - name: r
    images: ["ghcr.io/x/*"]
    signatures:
      authorities:
        - keyless:
            issuer: https://issuer.example
            subjectRegExp: '^https://(github$' #!
`, `bad regexp "^https://(github$": missing closing )`},
		{"bad regexp around a template", header + `  - name: r
    images: ["ghcr.io/x/*"]
    signatures:
      authorities:
        - keyless:
            issuerRegExp: '^https://[{{ .Name }}$' #!
            subject: https://github.com/x
`, `bad regexp "^https://[{{ .Name }}$"`},
		{"unknown key name", header + `  - name: r
    images: ["ghcr.io/x/*"]
    signatures:
      authorities:
        - key: releas #!
`, `unknown key name "releas"`},
		{"extends cycle", header + `  - name: a
    extends: b
    images: ["ghcr.io/a/*"]
  - name: b
    extends: a #!
    images: ["ghcr.io/b/*"]
`, `extends cycle: a → b → a`},
		{"extends itself", header + `  - name: a
    extends: a #!
    images: ["ghcr.io/a/*"]
`, `extends cycle: a → a`},
		{"extends unknown rule", header + baseRule + `  - name: r
    images: ["ghcr.io/other/*"]
    extends: bsae #!
`, `extends unknown rule "bsae"`},
		{"tie between identical globs", header + baseRule + `  - name: again
    extends: base
    images: ["ghcr.io/example/**"] #!
`, `tie: "ghcr.io/example/**" and rule "base"'s "ghcr.io/example/**" (line 8)`},
		{"tie between overlapping globs of equal specificity", header + baseRule + `  - name: ab-suffix
    extends: base
    images: ["ghcr.io/team/*ab"]
  - name: with-b
    extends: base
    images: ["ghcr.io/team/*b*"] #!
`, `tie: "ghcr.io/team/*b*" and rule "ab-suffix"'s "ghcr.io/team/*ab"`},
		{"tie through Docker Hub normalisation", header + baseRule + `  - name: short
    extends: base
    images: ["nginx"]
  - name: long
    extends: base
    images: ["index.docker.io/library/nginx"] #!
`, `tie:`},
		{"duplicate rule name", header + baseRule + `  - name: base #!
    images: ["ghcr.io/other/*"]
`, `duplicate rule name "base" (first at line 7)`},
		{"wrong apiVersion", "apiVersion: seal.dev/v1 #!\nkind: Policy\nrules:\n" + baseRule, `unsupported apiVersion "seal.dev/v1"`},
		{"missing kind", "apiVersion: seal.dev/v1alpha1 #!\nrules:\n" + baseRule, `kind: missing`},
		{"keyless without subject", header + `  - name: r
    images: ["ghcr.io/x/*"]
    signatures:
      authorities:
        - keyless:
            issuer: https://issuer.example #!
`, `keyless needs exactly one of subject and subjectRegExp`},
		{"keyless with issuer and issuerRegExp", header + `  - name: r
    images: ["ghcr.io/x/*"]
    signatures:
      authorities:
        - keyless:
            issuer: https://issuer.example #!
            issuerRegExp: '^https://issuer\.example$'
            subject: x
`, `keyless needs exactly one of issuer and issuerRegExp`},
		{"unknown certificate extension", header + `  - name: r
    images: ["ghcr.io/x/*"]
    signatures:
      authorities:
        - keyless:
            issuer: https://issuer.example
            subject: x
            extensions:
              sourceRepositoryUrl: https://github.com/x #!
`, `unknown certificate extension "sourceRepositoryUrl"`},
		{"authority with key and keyless", header + `  - name: r
    images: ["ghcr.io/x/*"]
    signatures:
      authorities:
        - key: release #!
          keyless: {issuer: a, subject: b}
`, `an authority is either keyless or key`},
		{"threshold 0", header + baseRule + "      threshold: 0 #!\n", `threshold 0 is less than 1`},
		{"threshold above the authorities", header + `  - name: base
    images: ["ghcr.io/example/**"]
    signatures:
      threshold: 3 #!
      authorities:
        - key: release
        - keyless: {issuer: https://issuer.example, subject: x}
`, `threshold 3 is more than the 2 authorities`},
		{"rule without authorities", header + `  - name: r #!
    images: ["ghcr.io/x/*"]
`, `rule "r" has no signatures.authorities`},
		{"unmatched not an action", "apiVersion: seal.dev/v1alpha1\nkind: Policy\nunmatched: reject #!\nrules:\n" + baseRule, `unmatched "reject" is not deny, warn or allow`},
		{"expires not a date", header + baseRule + `    exception:
      reason: because
      expires: 2027-13-01 #!
`, `expires "2027-13-01" is not a date`},
		{"exception without expires", header + baseRule + `    exception: #!
      reason: because
`, `exception.expires: missing`},
		{"platforms word", header + baseRule + `    attestations:
      - predicateType: slsaprovenance1
        platforms: every #!
`, `platforms is all, index or a list of os/arch`},
		{"platform without arch", header + baseRule + `    attestations:
      - predicateType: slsaprovenance1
        platforms: [linux/amd64, linux] #!
`, `platform "linux" is not os/arch`},
		{"attestation authorities word", header + baseRule + `    attestations:
      - predicateType: slsaprovenance1
        authorities: inherited #!
`, `authorities is inherit or a list`},
		{"predicate type neither short nor URI", header + baseRule + `    attestations:
      - predicateType: slsa #!
`, `predicate type "slsa": not a URI nor a known name`},
		{"template syntax", header + `  - name: r
    images: ["ghcr.io/x/*"]
    signatures:
      authorities:
        - keyless:
            issuer: https://issuer.example
            subject: 'https://github.com/{{ .Name' #!
`, `bad template "https://github.com/{{ .Name"`},
		{"template variable misspelt", header + `  - name: r
    images: ["ghcr.io/x/*"]
    signatures:
      authorities:
        - keyless:
            issuer: https://issuer.example
            subjectRegExp: '^https://github\.com/{{ .Nmae }}$' #!
`, `uses {{ .Nmae }}, which is neither an image variable nor in vars`},
		{"template variable a child does not set", header + `  - name: abstract
    signatures:
      authorities:
        - keyless:
            issuer: https://issuer.example
            subject: 'https://github.com/{{ .Team }}/x' #!
  - name: with-team
    extends: abstract
    images: ["ghcr.io/a/*"]
    vars: {Team: a}
  - name: without-team
    extends: abstract
    images: ["ghcr.io/b/*"]
`, `uses {{ .Team }}, which is neither an image variable nor in vars (in rule "without-team")`},
		{"bad variable name", header + baseRule + "    vars: {my-var: x} #!\n", `bad variable name "my-var"`},
		{"key file missing", `apiVersion: seal.dev/v1alpha1
kind: Policy
trust:
  keys:
    other: {path: missing.pub} #!
rules:
` + baseRule, `key "other": open`},
		{"key not PEM", `apiVersion: seal.dev/v1alpha1
kind: Policy
trust:
  keys:
    inline: {pem: "not a key"} #!
rules:
` + baseRule, `key "inline": no PEM block found`},
		{"trusted root missing", `apiVersion: seal.dev/v1alpha1
kind: Policy
trust:
  trustedRoot: nowhere.json #!
rules:
` + baseRule, `trusted root:`},
		{"rule that matches nothing", header + baseRule + `  - name: orphan #!
    signatures:
      authorities: [{key: release}]
`, `rule "orphan" matches nothing`},
		{"two documents", header + baseRule + "---\napiVersion: x #!\n", `a policy is one YAML document`},
		{"rules not a list", "apiVersion: seal.dev/v1alpha1\nkind: Policy\nrules: {} #!\n", `rules: must be a list, got a mapping`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := markedLine(t, tt.doc)
			p, err := parseDoc(t, tt.doc)
			if err == nil {
				t.Fatalf("loaded %d rules, want an error at line %d: %s", len(p.Rules), line, tt.want)
			}
			if k := fault.KindOf(err); k != fault.Input {
				t.Errorf("kind %v, want input", k)
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %T is not a *LoadError: %v", err, err)
			}
			for _, p := range le.Problems {
				if p.Line == line && strings.Contains(p.Error(), tt.want) {
					prefix := fmt.Sprintf("policy.yaml:%d: ", line)
					if !strings.Contains(p.Error(), prefix) {
						t.Errorf("%q does not name the file and line (%s)", p.Error(), prefix)
					}
					return
				}
			}
			t.Errorf("want a problem at line %d containing %q, got:\n%v", line, tt.want, err)
		})
	}
}

func TestParseEmpty(t *testing.T) {
	for _, doc := range []string{"", "# only a comment\n"} {
		_, err := Parse("policy.yaml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), "policy.yaml: empty policy") || fault.KindOf(err) != fault.Input {
			t.Errorf("Parse(%q) = %v, want an input error 'empty policy'", doc, err)
		}
	}
}

func TestParseReportsEveryProblemInLineOrder(t *testing.T) {
	doc := header + `  - name: r
    images: ["ghcr.io/x/a**"]
    signatures:
      threshold: 0
      authorities:
        - key: nope
`
	_, err := parseDoc(t, doc)
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("want a *LoadError, got %v", err)
	}
	var lines []int
	for _, p := range le.Problems {
		lines = append(lines, p.Line)
	}
	if fmt.Sprint(lines) != "[8 10 12]" {
		t.Errorf("problems at lines %v, want [8 10 12]:\n%v", lines, err)
	}
}

// yaml.v3 reports parser errors one line early (it prints a 0-based line
// for them), so the line is checked to be the problem's or the one before.
func TestParseYAMLSyntaxError(t *testing.T) {
	doc := header + `  - name: r
    images: ["ghcr.io/x/*"
    extends: base
`
	_, err := parseDoc(t, doc)
	var pr *Problem
	if !errors.As(err, &pr) || fault.KindOf(err) != fault.Input {
		t.Fatalf("want an input error with a *Problem, got %v", err)
	}
	if pr.Line != 7 && pr.Line != 8 || !strings.Contains(pr.Reason, "did not find expected ',' or ']'") {
		t.Errorf("got %v, want line 8 (or 7) and the YAML parser's reason", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "policy.yaml"))
	if err == nil || fault.KindOf(err) != fault.Input {
		t.Fatalf("Load(missing) = %v, want an input error", err)
	}
}

func TestParseTooLarge(t *testing.T) {
	_, err := Parse("policy.yaml", make([]byte, maxPolicyFile+1))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Parse(huge) = %v, want 'larger than'", err)
	}
}
