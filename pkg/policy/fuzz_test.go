package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seal-dev/seal/pkg/fault"
)

// FuzzParse loads fuzzed policy files as testdata/policy.yaml (so its key
// and trusted root resolve). Beyond not panicking: a rejected policy is a
// fault.Input LoadError listing at least one and at most maxProblems+1
// problems, each naming the file; parsing is deterministic; an accepted
// policy can match and render any image without panicking.
func FuzzParse(f *testing.F) {
	name := filepath.Join("testdata", "policy.yaml")
	example, err := os.ReadFile(name)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(header + baseRule))
	f.Add([]byte(header + baseRule + `    attestations:
      - predicateType: slsaprovenance1
        platforms: [linux/amd64, linux/arm64/v8]
        condition: predicate.buildDefinition.buildType == "x" && image.name.startsWith("example/")
  - name: child
    extends: base
    images: ["ghcr.io/example/sub/*", "docker.io/library/nginx"]
    vars: {Name: sub}
    exception: {reason: legacy, expires: 2020-01-01}
`))
	f.Add([]byte(`apiVersion: seal.dev/v1alpha1
kind: Policy
unmatched: warn
trust:
  keys:
    inline: {pem: "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"}
rules:
  - name: r
    images: ["**"]
    signatures: {threshold: 2, authorities: [{key: inline}, {key: inline}]}
`))
	// An alias bomb: every level doubles the nodes a naive walk visits.
	bomb := "apiVersion: seal.dev/v1alpha1\nkind: Policy\nx0: &a0 [a, a]\n"
	for i := 1; i < 20; i++ {
		bomb += "x" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [*a" + strconv.Itoa(i-1) + ", *a" + strconv.Itoa(i-1) + "]\n"
	}
	f.Add([]byte(bomb + "rules: *a19\n"))
	f.Add([]byte("{{{{"))
	f.Add([]byte("rules:\n  - name: r\n    images: [\"ghcr.io/{a,b}/**\"]\n    signatures: {authorities: [{keyless: {issuer: 'https://{{ .Registry }}', subject: x}}]}\n"))

	images := []string{"ghcr.io/example/fleet:v0.1.0", "ghcr.io/example/sub/agent@sha256:" + strings.Repeat("a", 64), "nginx", "localhost:5000/a/b/c:t"}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(name, data)
		if err != nil {
			checkLoadError(t, name, err)
			_, err2 := Parse(name, data)
			if err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("parsing is not deterministic:\n%v\n---\n%v", err, err2)
			}
			return
		}
		if p.File != name {
			t.Fatalf("policy file %q", p.File)
		}
		if _, err := Parse(name, data); err != nil {
			t.Fatalf("accepted once, rejected the second time: %v", err)
		}
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, img := range images {
			m, err := p.Match(img)
			if err != nil {
				t.Fatalf("Match(%s): %v", img, err)
			}
			if m.Rule == nil {
				if m.Unmatched == "" {
					t.Fatalf("%s matches no rule and no unmatched action", img)
				}
				continue
			}
			if _, err := m.Render(now); err != nil && fault.KindOf(err) == fault.Unknown {
				t.Fatalf("Render(%s): unclassified error %v", img, err)
			}
		}
	})
}

func checkLoadError(t *testing.T, name string, err error) {
	t.Helper()
	if k := fault.KindOf(err); k != fault.Input {
		t.Fatalf("error of kind %v, want input: %v", k, err)
	}
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("error %T is not a LoadError: %v", err, err)
	}
	if len(le.Problems) == 0 || len(le.Problems) > maxProblems+1 {
		t.Fatalf("%d problems listed", len(le.Problems))
	}
	for _, p := range le.Problems {
		if p.File != name || p.Reason == "" || p.Line < 0 {
			t.Fatalf("problem %+v", p)
		}
	}
}
