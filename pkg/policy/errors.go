package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Problem is one reason a policy file was rejected, at the place that causes it.
type Problem struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Path   string `json:"path"`   // where in the document, e.g. rules[1].images[0]
	Reason string `json:"reason"` // what is wrong, e.g. bad glob "…": …
}

func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Reason)
	return b.String()
}

// LoadError is a policy rejected as a whole. It lists every problem found
// rather than the first, so one edit–load cycle fixes a whole file.
type LoadError struct {
	Problems []*Problem `json:"problems"` // in file order
}

func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes each problem to errors.As.
func (e *LoadError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// maxProblems bounds the report: beyond it, more lines help nobody.
const maxProblems = 50

// problems collects Problems for one file.
type problems struct {
	file string
	list []*Problem
	seen map[string]bool
}

func (ps *problems) add(line int, path, format string, args ...any) {
	p := &Problem{File: ps.file, Line: line, Path: path, Reason: fmt.Sprintf(format, args...)}
	// A base rule's template is checked once per rule that extends it; report it once.
	key := p.Error()
	if ps.seen == nil {
		ps.seen = map[string]bool{}
	}
	if ps.seen[key] {
		return
	}
	ps.seen[key] = true
	ps.list = append(ps.list, p)
}

func (ps *problems) any() bool { return len(ps.list) > 0 }

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	list := slices.Clone(ps.list)
	slices.SortStableFunc(list, func(a, b *Problem) int { return cmp.Compare(a.Line, b.Line) })
	if len(list) > maxProblems {
		list = append(list[:maxProblems], &Problem{File: ps.file, Reason: fmt.Sprintf("%d more problems not shown", len(ps.list)-maxProblems)})
	}
	return &LoadError{Problems: list}
}
