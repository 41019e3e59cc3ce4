package policy

import (
	"fmt"
	"strings"
)

// resolve checks what needs the whole file: rule names, extends, the
// merged rules, and ties between image patterns.
func (l *loader) resolve() {
	byName := map[string]*ruleDecl{}
	for _, d := range l.decls {
		if prev, dup := byName[d.name]; dup {
			l.fail(d.nameAt, "duplicate rule name %q (first at line %d)", d.name, prev.nameAt.Line)
			continue
		}
		byName[d.name] = d
	}
	extended := map[string]bool{}
	for _, d := range l.decls {
		if d.extends == "" {
			continue
		}
		if byName[d.extends] == nil {
			l.fail(d.extendAt, "extends unknown rule %q", d.extends)
		}
		extended[d.extends] = true
	}
	if l.r.ps.any() {
		return
	}

	const (
		visiting = 1
		done     = 2
		broken   = 3
	)
	state := map[*ruleDecl]int{}
	merged := map[*ruleDecl]*Rule{}
	var stack []*ruleDecl
	var visit func(d *ruleDecl) *Rule
	visit = func(d *ruleDecl) *Rule {
		switch state[d] {
		case done:
			return merged[d]
		case broken:
			return nil
		case visiting:
			i := len(stack) - 1
			for stack[i] != d {
				i--
			}
			names := []string{}
			for _, s := range stack[i:] {
				names = append(names, s.name)
				state[s] = broken
			}
			last := stack[len(stack)-1]
			l.fail(last.extendAt, "extends cycle: %s → %s", strings.Join(names, " → "), d.name)
			return nil
		}
		state[d] = visiting
		stack = append(stack, d)
		defer func() { stack = stack[:len(stack)-1] }()
		var base *Rule
		if d.extends != "" {
			if base = visit(byName[d.extends]); base == nil {
				state[d] = broken
				return nil
			}
		}
		if state[d] == broken { // part of a cycle found below
			return nil
		}
		state[d] = done
		merged[d] = merge(base, d)
		return merged[d]
	}
	for _, d := range l.decls {
		if r := visit(d); r != nil {
			l.p.Rules = append(l.p.Rules, r)
		}
	}
	if l.r.ps.any() {
		return
	}

	var concrete []*Rule
	for i, r := range l.p.Rules {
		d := l.decls[i]
		if len(r.patterns) == 0 {
			if !extended[r.Name] {
				l.fail(d.at, "rule %q matches nothing: it has no images and no rule extends it", r.Name)
			}
			continue
		}
		concrete = append(concrete, r)
		l.check(r, d)
	}
	l.ties(concrete)
}

// merge applies a rule's own fields over the rule it extends. Images and
// the name are never inherited: they are what makes a rule itself.
func merge(base *Rule, d *ruleDecl) *Rule {
	r := &Rule{Name: d.name, Extends: d.extends, Line: d.at.Line, threshold: 1}
	if base != nil {
		r.threshold, r.thresholdAt = base.threshold, base.thresholdAt
		r.authorities = base.authorities
		r.attestations = base.attestations
		r.Exception = base.Exception
		if len(base.Vars) > 0 {
			r.Vars = map[string]string{}
			for k, v := range base.Vars {
				r.Vars[k] = v
			}
		}
	}
	for i, p := range d.images {
		r.Images = append(r.Images, p.text)
		r.patterns = append(r.patterns, p)
		r.patternLines = append(r.patternLines, d.imageAt[i].Line)
	}
	for k, v := range d.vars {
		if r.Vars == nil {
			r.Vars = map[string]string{}
		}
		r.Vars[k] = v
	}
	if d.threshold != nil {
		at := d.thresholdAt
		r.threshold, r.thresholdAt = *d.threshold, &at
	}
	if d.authorities != nil {
		r.authorities = d.authorities
	}
	if d.attSet {
		r.attestations = d.attestations
	}
	if d.exception != nil {
		r.Exception = d.exception
	}
	return r
}

// check validates a rule that matches images, with everything it inherits.
func (l *loader) check(r *Rule, d *ruleDecl) {
	if len(r.authorities) == 0 {
		l.fail(d.at, "rule %q has no signatures.authorities (set them, or extend a rule that does)", r.Name)
		return
	}
	if r.threshold > len(r.authorities) {
		at := d.at
		if r.thresholdAt != nil {
			at = *r.thresholdAt
		}
		l.fail(at, "threshold %d is more than the %d authorities of rule %q", r.threshold, len(r.authorities), r.Name)
	}
	// A trial rendering with stand-in image values finds templates that use
	// unknown variables and regexps that do not compile once substituted.
	if _, rerr := r.render(Image{}, placeholderData(r.Vars)); rerr != nil {
		if rerr.t != nil {
			reason := rerr.err.Error()
			if !strings.HasPrefix(rerr.t.path, d.at.path+".") {
				reason += fmt.Sprintf(" (in rule %q)", r.Name)
			}
			l.r.ps.add(rerr.t.line, rerr.t.path, "%s", reason)
		} else {
			l.fail(d.at, "%v", rerr.err)
		}
	}
}

// ties rejects two rules whose patterns have the same specificity and can
// both match one image: no rule would be the most specific for it. The test
// is on the patterns alone, so it also rejects a pair for which a third,
// more specific rule happens to win every such image.
func (l *loader) ties(rules []*Rule) {
	for i, a := range rules {
		for _, b := range rules[i+1:] {
			for pi, pa := range a.patterns {
				for pj, pb := range b.patterns {
					if pa.specificity() != pb.specificity() || !overlaps(pa, pb) {
						continue
					}
					l.r.ps.add(b.patternLines[pj], fmt.Sprintf("rules[%d].images[%d]", l.index(b), pj),
						"tie: %q and rule %q's %q (line %d) are equally specific and can match the same image",
						pb.text, a.Name, pa.text, a.patternLines[pi])
				}
			}
		}
	}
}

func (l *loader) index(r *Rule) int {
	for i, x := range l.p.Rules {
		if x == r {
			return i
		}
	}
	return -1
}
