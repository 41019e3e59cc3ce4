package policy

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"
)

// text is a string field of a rule that may use template variables
// ({{ .Name }}). It remembers where it was written, so problems found when a
// rule that extends it is checked still point at the right line.
type text struct {
	src    string
	line   int
	path   string
	quote  bool               // a …RegExp field: substituted values are regexp-quoted
	tmpl   *template.Template // nil when src holds no action
	fields []string           // the variables it uses, sorted
}

func parseText(n node, src string, quote bool) (*text, error) {
	t := &text{src: src, line: n.Line, path: n.path, quote: quote}
	if !strings.Contains(src, "{{") {
		return t, nil
	}
	tmpl, err := template.New(n.path).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("bad template %q: %w", src, stripTemplateName(err, n.path))
	}
	t.tmpl = tmpl
	used := map[string]bool{}
	for _, tt := range tmpl.Templates() {
		if tt.Tree != nil {
			walkFields(tt.Tree.Root, used)
		}
	}
	for f := range used {
		t.fields = append(t.fields, f)
	}
	sort.Strings(t.fields)
	return t, nil
}

func stripTemplateName(err error, name string) error {
	return fmt.Errorf("%s", strings.TrimPrefix(strings.TrimPrefix(err.Error(), "template: "), name+":"))
}

// walkFields collects the top-level fields a template reads (.X, $.X).
func walkFields(n parse.Node, used map[string]bool) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walkFields(c, used)
		}
	case *parse.ActionNode:
		walkFields(n.Pipe, used)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walkFields(c, used)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			walkFields(a, used)
		}
	case *parse.FieldNode:
		used[n.Ident[0]] = true
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			used[n.Ident[1]] = true
		}
	case *parse.ChainNode:
		walkFields(n.Node, used)
	case *parse.IfNode:
		walkBranch(&n.BranchNode, used)
	case *parse.RangeNode:
		walkBranch(&n.BranchNode, used)
	case *parse.WithNode:
		walkBranch(&n.BranchNode, used)
	case *parse.TemplateNode:
		walkFields(n.Pipe, used)
	}
}

func walkBranch(b *parse.BranchNode, used map[string]bool) {
	walkFields(b.Pipe, used)
	walkFields(b.List, used)
	walkFields(b.ElseList, used)
}

// uses reports whether the template reads variable v.
func (t *text) uses(v string) bool {
	for _, f := range t.fields {
		if f == v {
			return true
		}
	}
	return false
}

// render substitutes data. In a …RegExp field every value is quoted, so that
// a tag v1.2.3 matches only itself and not v1x2x3.
func (t *text) render(data map[string]string) (string, error) {
	if t.tmpl == nil {
		return t.src, nil
	}
	for _, f := range t.fields {
		if _, ok := data[f]; !ok {
			if f == "Tag" {
				return "", fmt.Errorf("%s uses {{ .Tag }} but the reference has no tag (digest only)", t.path)
			}
			return "", fmt.Errorf("%s uses {{ .%s }}, which is neither an image variable nor in vars", t.path, f)
		}
	}
	if t.quote {
		q := make(map[string]string, len(data))
		for k, v := range data {
			q[k] = regexp.QuoteMeta(v)
		}
		data = q
	}
	b := &cappedBuilder{}
	if err := t.tmpl.Execute(b, data); err != nil {
		return "", fmt.Errorf("%s: %w", t.path, stripTemplateName(err, t.path))
	}
	return b.String(), nil
}

// maxRendered bounds what one field renders to: identities are short, and
// `{{ range 1000000000 }}` should fail rather than fill memory.
const maxRendered = 16 << 10

type cappedBuilder struct{ strings.Builder }

func (c *cappedBuilder) Write(p []byte) (int, error) {
	if c.Len()+len(p) > maxRendered {
		return 0, fmt.Errorf("renders to more than %d bytes", maxRendered)
	}
	return c.Builder.Write(p)
}

// builtinVars are the variables every image provides.
var builtinVars = []string{"Registry", "Repository", "Name", "Org", "Tag"}

// placeholderData stands in for an image when a rule is checked at load time.
func placeholderData(vars map[string]string) map[string]string {
	d := map[string]string{
		"Registry":   "registry.example",
		"Repository": "org/name",
		"Name":       "name",
		"Org":        "org",
		"Tag":        "v1.0.0",
	}
	for k, v := range vars {
		d[k] = v
	}
	return d
}
