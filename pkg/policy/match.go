package policy

import (
	"time"

	"github.com/seal-dev/seal/pkg/fault"
)

// Match is the rule that governs an image, or, when none does, what the
// policy says to do with it.
type Match struct {
	Image Image `json:"image"`
	// Rule is the most specific rule matching the image; nil when none does.
	Rule *Rule `json:"-"`
	// Pattern is the image pattern of Rule that matched, as written.
	Pattern string `json:"pattern,omitempty"`
	// Unmatched is the policy's `unmatched` action, set when Rule is nil.
	Unmatched Action `json:"unmatched,omitempty"`
}

// Match parses an image reference and finds its rule. Tag and digest play
// no part in matching.
func (p *Policy) Match(image string) (*Match, error) {
	img, err := ParseImage(image)
	if err != nil {
		return nil, err
	}
	return p.MatchImage(img), nil
}

// MatchImage finds the rule of a parsed image: the most specific matching
// pattern wins (more segments, then a longer literal prefix, then a longer
// pattern). Load rejects policies where that could be ambiguous.
func (p *Policy) MatchImage(img Image) *Match {
	segs := img.segments()
	m := &Match{Image: img}
	var best specificity
	for _, r := range p.Rules {
		for _, pat := range r.patterns {
			if !pat.matches(segs) {
				continue
			}
			if s := pat.specificity(); m.Rule == nil || s.compare(best) > 0 {
				m.Rule, m.Pattern, best = r, pat.text, s
			}
		}
	}
	if m.Rule == nil {
		m.Unmatched = p.Unmatched
	}
	return m
}

// Render renders the matched rule for the image (see Rule.Render). It is
// an error to render a Match without a rule.
func (m *Match) Render(now time.Time) (*Requirements, error) {
	if m.Rule == nil {
		return nil, fault.Verificationf("%s: no policy rule matches (unmatched: %s)", m.Image, m.Unmatched)
	}
	return m.Rule.Render(m.Image, now)
}
