package policy

import (
	"strings"
	"testing"

	"github.com/seal-dev/seal/pkg/fault"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseImage(t *testing.T) {
	tests := []struct {
		ref  string
		want Image
	}{
		{"nginx", Image{Registry: "index.docker.io", Repository: "library/nginx", Name: "nginx", Org: "library", Tag: "latest"}},
		{"nginx:1.27", Image{Registry: "index.docker.io", Repository: "library/nginx", Name: "nginx", Org: "library", Tag: "1.27"}},
		{"docker.io/nginx", Image{Registry: "index.docker.io", Repository: "library/nginx", Name: "nginx", Org: "library", Tag: "latest"}},
		{"docker.io/bitnami/redis:7", Image{Registry: "index.docker.io", Repository: "bitnami/redis", Name: "redis", Org: "bitnami", Tag: "7"}},
		{"index.docker.io/library/nginx@" + testDigest, Image{Registry: "index.docker.io", Repository: "library/nginx", Name: "nginx", Org: "library", Digest: testDigest}},
		{"ghcr.io/example/server:v1.2.3", Image{Registry: "ghcr.io", Repository: "example/server", Name: "server", Org: "example", Tag: "v1.2.3"}},
		{"ghcr.io/example/server@" + testDigest, Image{Registry: "ghcr.io", Repository: "example/server", Name: "server", Org: "example", Digest: testDigest}},
		{"ghcr.io/example/server:v1.2.3@" + testDigest, Image{Registry: "ghcr.io", Repository: "example/server", Name: "server", Org: "example", Tag: "v1.2.3", Digest: testDigest}},
		{"127.0.0.1:5000/a/b/c:t", Image{Registry: "127.0.0.1:5000", Repository: "a/b/c", Name: "c", Org: "a/b", Tag: "t"}},
		{"localhost:5000/app@" + testDigest, Image{Registry: "localhost:5000", Repository: "app", Name: "app", Digest: testDigest}},
	}
	for _, tt := range tests {
		got, err := ParseImage(tt.ref)
		if err != nil {
			t.Errorf("ParseImage(%q): %v", tt.ref, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseImage(%q) = %+v, want %+v", tt.ref, got, tt.want)
		}
	}
	for _, bad := range []string{"", "UPPER/case", "ghcr.io/x@sha256:short", "a b"} {
		if _, err := ParseImage(bad); err == nil || fault.KindOf(err) != fault.Input {
			t.Errorf("ParseImage(%q) = %v, want an input error", bad, err)
		}
	}
}

func TestParsePattern(t *testing.T) {
	tests := []struct{ in, norm string }{
		{"nginx", "index.docker.io/library/nginx"},
		{"docker.io/nginx", "index.docker.io/library/nginx"},
		{"docker.io/library/*", "index.docker.io/library/*"},
		{"docker.io/**", "index.docker.io/**"},
		{"bitnami/*", "index.docker.io/bitnami/*"},
		{"ghcr.io/example/**", "ghcr.io/example/**"},
		{"GHCR.io/example/*", "ghcr.io/example/*"},
		{"localhost/app", "localhost/app"},
		{"127.0.0.1:5000/**", "127.0.0.1:5000/**"},
		{"*.example.com/team/*", "*.example.com/team/*"},
		{"**", "**"},
		{"**/nginx", "**/nginx"},
	}
	for _, tt := range tests {
		p, err := parsePattern(tt.in)
		if err != nil {
			t.Errorf("parsePattern(%q): %v", tt.in, err)
			continue
		}
		if p.norm != tt.norm {
			t.Errorf("parsePattern(%q) = %q, want %q", tt.in, p.norm, tt.norm)
		}
	}
	for _, bad := range []string{"", "ghcr.io/x/a**", "ghcr.io/x/***", "ghcr.io/x:v1", "ghcr.io/x@" + testDigest, "ghcr.io//x", "ghcr.io/x/", "ghcr.io/Upper", "ghcr.io/x?", "ghcr.io/[ab]", "ngin*"} {
		if p, err := parsePattern(bad); err == nil {
			t.Errorf("parsePattern(%q) = %q, want an error", bad, p.norm)
		}
	}
}

func TestPatternMatches(t *testing.T) {
	tests := []struct {
		pattern string
		image   string
		want    bool
	}{
		{"ghcr.io/example/**", "ghcr.io/example/server:v1", true},
		{"ghcr.io/example/**", "ghcr.io/example/a/b/c", true},
		{"ghcr.io/example/**", "ghcr.io/example", false}, // ** is one or more segments
		{"ghcr.io/example/**", "ghcr.io/other/server", false},
		{"ghcr.io/example/*", "ghcr.io/example/server", true},
		{"ghcr.io/example/*", "ghcr.io/example/a/b", false}, // * stays within a segment
		{"ghcr.io/example/*-agent", "ghcr.io/example/server-agent", true},
		{"ghcr.io/example/*-agent", "ghcr.io/example/server-agent2", false},
		{"ghcr.io/*/server", "ghcr.io/example/server", true},
		{"ghcr.io/**/server", "ghcr.io/a/b/server", true},
		{"ghcr.io/**/server", "ghcr.io/server", false},
		{"ghcr.io/example/server", "ghcr.io/example/server@" + testDigest, true}, // digest ignored
		{"ghcr.io/example/server", "ghcr.io/example/server:v1@" + testDigest, true},
		{"ghcr.io/example/server", "ghcr.io/example/serverx", false},
		{"nginx", "nginx", true},
		{"nginx", "docker.io/library/nginx:1.27", true},
		{"nginx", "index.docker.io/library/nginx@" + testDigest, true},
		{"nginx", "ghcr.io/library/nginx", false},
		{"docker.io/*/nginx", "nginx", true},
		{"bitnami/*", "docker.io/bitnami/redis", true},
		{"bitnami/*", "bitnami/redis:7", true},
		{"docker.io/**", "nginx", true},
		{"**", "nginx", true},
		{"**", "127.0.0.1:5000/a/b/c", true},
		{"*.example.com/**", "registry.example.com/team/app", true},
		{"*.example.com/**", "example.com/team/app", false},
		{"GHCR.IO/example/*", "ghcr.io/example/server", true},
		{"ghcr.io/example/*", "GHCR.io/example/server", true},
		{"localhost:5000/*", "localhost:5000/app", true},
	}
	for _, tt := range tests {
		p, err := parsePattern(tt.pattern)
		if err != nil {
			t.Fatalf("parsePattern(%q): %v", tt.pattern, err)
		}
		img, err := ParseImage(tt.image)
		if err != nil {
			t.Fatalf("ParseImage(%q): %v", tt.image, err)
		}
		if got := p.matches(img.segments()); got != tt.want {
			t.Errorf("%q matches %q = %v, want %v", tt.pattern, tt.image, got, tt.want)
		}
	}
}

func TestGlobSegment(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*", "abc", true}, {"*c", "abc", true},
		{"a*c", "abc", true}, {"a*c", "ac", true}, {"a*c", "abd", false},
		{"*b*", "abc", true}, {"*b*", "ac", false}, {"a*b*c", "aXbYc", true},
		{"a*b*c", "aXcYb", false}, {"abc", "abc", true}, {"abc", "abcd", false},
		{"**", "x", true}, {"*a", "aaa", true}, {"*aa", "a", false},
	}
	for _, tt := range tests {
		if got := globSegment(tt.pat, tt.s); got != tt.want {
			t.Errorf("globSegment(%q, %q) = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}

func segPattern(s string) *pattern {
	return &pattern{text: s, norm: s, segs: strings.Split(s, "/")}
}

func TestOverlaps(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"r/a/*", "r/a/b", true},
		{"r/a/*x", "r/a/y*", true}, // yx
		{"r/a/x*", "r/a/y*", false},
		{"r/a/**", "r/a/b/c", true},
		{"r/a/**/c", "r/a/*/d", false},
		{"r/a/**/c", "r/a/b/**", true}, // r/a/b/c
		{"**", "r/x", true},
		{"r/a/*", "r/a/*/*", false},
		{"r/x*y", "r/*z", false},
		{"r/*a*", "r/*b*", true},
		{"r/**", "r", false},
		{"r/**/**", "r/x", false}, // each ** takes at least one segment
		{"r/**/**", "r/*/*/*", true},
	}
	for _, tt := range tests {
		if got := overlaps(segPattern(tt.a), segPattern(tt.b)); got != tt.want {
			t.Errorf("overlaps(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := overlaps(segPattern(tt.b), segPattern(tt.a)); got != tt.want {
			t.Errorf("overlaps(%q, %q) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}

// TestOverlapsAgreesWithEnumeration checks the automaton against brute
// force: for every pair of small patterns, some image of up to four
// segments of up to two letters matches both exactly when overlaps says so.
// Those bounds suffice for patterns this small.
func TestOverlapsAgreesWithEnumeration(t *testing.T) {
	segPats := []string{"a", "ab", "*", "a*", "*b", "**"}
	var pats []*pattern
	for _, x := range segPats {
		pats = append(pats, segPattern(x))
		for _, y := range segPats {
			pats = append(pats, segPattern(x+"/"+y))
		}
	}
	var words []string
	for _, w := range []string{"a", "b"} {
		words = append(words, w)
		for _, v := range []string{"a", "b"} {
			words = append(words, w+v)
		}
	}
	var images [][]string
	var grow func(prefix []string)
	grow = func(prefix []string) {
		if len(prefix) > 0 {
			images = append(images, prefix)
		}
		if len(prefix) == 4 {
			return
		}
		for _, w := range words {
			grow(append(append([]string{}, prefix...), w))
		}
	}
	grow(nil)
	matched := make([][]bool, len(pats))
	for i, p := range pats {
		matched[i] = make([]bool, len(images))
		for j, img := range images {
			matched[i][j] = p.matches(img)
		}
	}
	for i, a := range pats {
		for k, b := range pats {
			want := false
			for j := range images {
				if matched[i][j] && matched[k][j] {
					want = true
					break
				}
			}
			if got := overlaps(a, b); got != want {
				t.Errorf("overlaps(%q, %q) = %v, enumeration says %v", a.norm, b.norm, got, want)
			}
		}
	}
}

func TestMatchMostSpecific(t *testing.T) {
	doc := header + `  - name: everything
    images: ["**"]
    signatures: {authorities: [{key: release}]}
  - name: ghcr
    extends: everything
    images: ["ghcr.io/**"]
  - name: example
    extends: everything
    images: ["ghcr.io/example/**"]
  - name: agents
    extends: everything
    images: ["ghcr.io/example/*-agent"]
  - name: server-agent
    extends: everything
    images: ["ghcr.io/example/server-agent"]
  - name: two-deep
    extends: everything
    images: ["ghcr.io/example/*/*"]
  - name: official
    extends: everything
    images: ["nginx", "docker.io/library/redis"]
  - name: x-prefix
    extends: everything
    images: ["ghcr.io/team/x*"]
  - name: y-prefix
    extends: everything
    images: ["ghcr.io/team/y*"]
`
	p, err := parseDoc(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ image, rule, pattern string }{
		{"quay.io/foo/bar", "everything", "**"},
		{"ghcr.io/other/app", "ghcr", "ghcr.io/**"},
		{"ghcr.io/example/server:v1", "example", "ghcr.io/example/**"},                   // 3 segments beat 2
		{"ghcr.io/example/db-agent", "agents", "ghcr.io/example/*-agent"},                // longer pattern
		{"ghcr.io/example/server-agent", "server-agent", "ghcr.io/example/server-agent"}, // longer literal prefix
		{"ghcr.io/example/a/b", "two-deep", "ghcr.io/example/*/*"},                       // 4 segments beat 3
		{"ghcr.io/example/a/b/c", "example", "ghcr.io/example/**"},
		{"nginx:1.27", "official", "nginx"},
		{"docker.io/library/redis@" + testDigest, "official", "docker.io/library/redis"},
		{"ghcr.io/team/xy", "x-prefix", "ghcr.io/team/x*"},
		{"ghcr.io/team/yx", "y-prefix", "ghcr.io/team/y*"},
	}
	for _, tt := range tests {
		m, err := p.Match(tt.image)
		if err != nil {
			t.Fatalf("Match(%q): %v", tt.image, err)
		}
		if m.Rule == nil || m.Rule.Name != tt.rule || m.Pattern != tt.pattern {
			name := "<none>"
			if m.Rule != nil {
				name = m.Rule.Name
			}
			t.Errorf("Match(%q) = %s by %q, want %s by %q", tt.image, name, m.Pattern, tt.rule, tt.pattern)
		}
		if m.Unmatched != "" {
			t.Errorf("Match(%q).Unmatched = %q for a matched image", tt.image, m.Unmatched)
		}
	}
}

func TestMatchUnmatched(t *testing.T) {
	for _, tt := range []struct {
		line string
		want Action
	}{{"", Deny}, {"unmatched: deny\n", Deny}, {"unmatched: warn\n", Warn}, {"unmatched: allow\n", Allow}} {
		p, err := parseDoc(t, tt.line+header+baseRule)
		if err != nil {
			t.Fatal(err)
		}
		m, err := p.Match("ghcr.io/elsewhere/app:v1")
		if err != nil {
			t.Fatal(err)
		}
		if m.Rule != nil || m.Unmatched != tt.want {
			t.Errorf("%q: Match = rule %v, unmatched %q, want no rule and %q", tt.line, m.Rule, m.Unmatched, tt.want)
		}
		if _, err := m.Render(fixedNow); err == nil || fault.KindOf(err) != fault.Verification {
			t.Errorf("Render of an unmatched image = %v, want a verification failure", err)
		}
	}
}

func TestMatchBadReference(t *testing.T) {
	p, err := parseDoc(t, header+baseRule)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Match("ghcr.io/Example/x"); err == nil || fault.KindOf(err) != fault.Input {
		t.Errorf("Match(bad reference) = %v, want an input error", err)
	}
}

func TestTieRuleAcceptsDisjointPatterns(t *testing.T) {
	// Same specificity but no image can match both: not a tie.
	doc := header + baseRule + `  - name: x
    extends: base
    images: ["ghcr.io/team/x*", "ghcr.io/team/*/a"]
  - name: y
    extends: base
    images: ["ghcr.io/team/y*", "ghcr.io/team/*/b"]
  - name: same-rule-twice
    extends: base
    images: ["quay.io/a/*", "quay.io/a/*"]
`
	if _, err := parseDoc(t, doc); err != nil {
		t.Fatalf("want the policy to load, got %v", err)
	}
}
