package policy

import (
	"errors"
	"fmt"
	"strings"
)

// An image pattern is matched against the normalised repository name
// "registry/path/to/repo" segment by segment:
//
//   - `*` matches any characters within one segment (zero or more),
//   - a segment that is exactly `**` matches one or more whole segments.
//
// A pattern is normalised like an image reference, so it is written the way
// people write images: `nginx` means index.docker.io/library/nginx and
// `docker.io/x/y` means index.docker.io/x/y. The first segment names the
// registry when it contains '.', ':' or a wildcard, or is "localhost";
// otherwise the pattern is a Docker Hub name. A lone `**` matches every image.
type pattern struct {
	text string   // as written
	norm string   // normalised, e.g. index.docker.io/library/nginx
	segs []string // norm split on '/': the registry, then the path
}

const (
	dockerHub      = "index.docker.io"
	dockerHubAlias = "docker.io"
)

func parsePattern(s string) (*pattern, error) {
	if s == "" {
		return nil, errors.New("empty pattern")
	}
	if strings.ContainsAny(s, "@") {
		return nil, errors.New("patterns match repositories: remove the digest")
	}
	if s == "**" {
		return &pattern{text: s, norm: s, segs: []string{"**"}}, nil
	}
	segs := strings.Split(s, "/")
	var reg string
	var repo []string
	switch first := segs[0]; {
	case len(segs) == 1:
		if strings.Contains(first, "*") {
			return nil, fmt.Errorf("a one-segment pattern is a Docker Hub official image and cannot hold a wildcard: write index.docker.io/library/%s, or ** for every image", first)
		}
		reg, repo = dockerHub, segs
	case first == "localhost" || strings.ContainsAny(first, ".:*"):
		reg, repo = strings.ToLower(first), segs[1:]
	default:
		reg, repo = dockerHub, segs
	}
	if reg == dockerHubAlias {
		reg = dockerHub
	}
	if err := checkSegment(reg, true); err != nil {
		return nil, err
	}
	for _, r := range repo {
		if err := checkSegment(r, false); err != nil {
			return nil, err
		}
	}
	if reg == dockerHub && len(repo) == 1 && repo[0] != "**" {
		repo = append([]string{"library"}, repo...)
	}
	p := &pattern{text: s, segs: append([]string{reg}, repo...)}
	p.norm = strings.Join(p.segs, "/")
	return p, nil
}

func checkSegment(seg string, registry bool) error {
	what := "path segment"
	if registry {
		what = "registry"
	}
	if seg == "" {
		return fmt.Errorf("empty %s", what)
	}
	if strings.Contains(seg, "**") && seg != "**" {
		return fmt.Errorf("%s %q: ** must be a whole segment", what, seg)
	}
	for _, c := range seg {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '-', c == '_', c == '*':
		case registry && (c == ':' || c >= 'A' && c <= 'Z'):
		case c == ':':
			return fmt.Errorf("%s %q: patterns match repositories: remove the tag", what, seg)
		case c >= 'A' && c <= 'Z':
			return fmt.Errorf("%s %q: repository names are lower case", what, seg)
		default:
			return fmt.Errorf("%s %q: character %q is not allowed (only * and ** are wildcards)", what, seg, c)
		}
	}
	return nil
}

// matches reports whether the pattern matches an image's segments
// (registry first, as returned by Image.segments).
func (p *pattern) matches(segs []string) bool {
	// memo[i][j]: has pattern[i:] vs segs[j:] been tried and failed.
	tried := make([][]bool, len(p.segs)+1)
	for i := range tried {
		tried[i] = make([]bool, len(segs)+1)
	}
	var match func(i, j int) bool
	match = func(i, j int) bool {
		if i == len(p.segs) || j == len(segs) {
			return i == len(p.segs) && j == len(segs)
		}
		if tried[i][j] {
			return false
		}
		tried[i][j] = true
		if p.segs[i] == "**" {
			// consume one segment, then stop or continue consuming
			return match(i+1, j+1) || match(i, j+1)
		}
		return globSegment(p.segs[i], segs[j]) && match(i+1, j+1)
	}
	return match(0, 0)
}

// globSegment matches one segment against a segment pattern where * matches
// any run of characters.
func globSegment(pat, s string) bool {
	// Classic greedy wildcard match with backtracking to the last star:
	// linear in practice, no recursion.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(pat) && pat[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(pat) && pat[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi] == '*' {
		pi++
	}
	return pi == len(pat)
}

// specificity orders patterns: more segments first, then the longer literal
// prefix (everything before the first wildcard), then the longer pattern.
type specificity struct {
	segments, literal, length int
}

func (p *pattern) specificity() specificity {
	lit := strings.IndexByte(p.norm, '*')
	if lit < 0 {
		lit = len(p.norm)
	}
	return specificity{segments: len(p.segs), literal: lit, length: len(p.norm)}
}

func (s specificity) compare(o specificity) int {
	switch {
	case s.segments != o.segments:
		return s.segments - o.segments
	case s.literal != o.literal:
		return s.literal - o.literal
	}
	return s.length - o.length
}

// overlaps reports whether some image matches both patterns. Both are
// regular languages over segments, so this is a reachability search over
// pairs of positions (a product automaton): from (i, j) both patterns
// consume one common segment, which exists when the two segment patterns
// intersect; `**` may stay in place to consume more.
func overlaps(a, b *pattern) bool {
	type state struct{ i, j int }
	seen := map[state]bool{}
	queue := []state{{0, 0}}
	seen[state{0, 0}] = true
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if s.i == len(a.segs) && s.j == len(b.segs) {
			return true
		}
		if s.i == len(a.segs) || s.j == len(b.segs) {
			continue
		}
		if !segmentsOverlap(a.segs[s.i], b.segs[s.j]) {
			continue
		}
		for _, ni := range advance(a.segs, s.i) {
			for _, nj := range advance(b.segs, s.j) {
				n := state{ni, nj}
				if !seen[n] {
					seen[n] = true
					queue = append(queue, n)
				}
			}
		}
	}
	return false
}

func advance(segs []string, i int) []int {
	if segs[i] == "**" {
		return []int{i + 1, i}
	}
	return []int{i + 1}
}

// segmentsOverlap reports whether some non-empty segment matches both
// segment patterns; `**` matches any one segment here. If both accept the
// empty string, both are all stars and also accept "x", so emptiness needs
// no special case.
func segmentsOverlap(a, b string) bool {
	if a == "**" {
		a = "*"
	}
	if b == "**" {
		b = "*"
	}
	type state struct{ p, q int }
	seen := map[state]bool{}
	var stack []state
	push := func(s state) {
		if !seen[s] {
			seen[s] = true
			stack = append(stack, s)
		}
	}
	push(state{0, 0})
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if s.p == len(a) && s.q == len(b) {
			return true
		}
		aStar := s.p < len(a) && a[s.p] == '*'
		bStar := s.q < len(b) && b[s.q] == '*'
		if aStar {
			push(state{s.p + 1, s.q})
		}
		if bStar {
			push(state{s.p, s.q + 1})
		}
		if s.p == len(a) || s.q == len(b) {
			continue
		}
		switch {
		case aStar && bStar:
			// a common character keeps both in their stars: nothing new
		case aStar:
			push(state{s.p, s.q + 1})
		case bStar:
			push(state{s.p + 1, s.q})
		case a[s.p] == b[s.q]:
			push(state{s.p + 1, s.q + 1})
		}
	}
	return false
}
