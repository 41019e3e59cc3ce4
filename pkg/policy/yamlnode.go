package policy

import (
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
)

// node is a YAML node with the document path that leads to it, so that
// every problem names both a line and a field.
type node struct {
	*yaml.Node
	path    string
	keyLine int // the line of the key that holds this value, if any
}

func (n node) child(key string) node {
	p := key
	if n.path != "" {
		p = n.path + "." + key
	}
	return node{path: p}
}

func (n node) index(i int) string { return fmt.Sprintf("%s[%d]", n.path, i) }

func deref(y *yaml.Node) *yaml.Node {
	// Aliases are followed a bounded number of times: the schema has a fixed
	// depth, so an alias bomb cannot expand beyond what the file size allows.
	for i := 0; y != nil && y.Kind == yaml.AliasNode && i < 16; i++ {
		y = y.Alias
	}
	return y
}

// reader walks YAML nodes against the schema and reports every mismatch.
type reader struct {
	ps *problems
}

func (r *reader) fail(n node, format string, args ...any) {
	line := 0
	if n.Node != nil {
		line = n.Line
	}
	r.ps.add(line, n.path, format, args...)
}

func kindName(y *yaml.Node) string {
	switch y.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if y.Tag == "!!null" {
			return "empty"
		}
		return "a scalar"
	}
	return "unsupported YAML"
}

// fields checks that n is a mapping with only the allowed keys (each at most
// once) and returns the value nodes by key.
func (r *reader) fields(n node, allowed ...string) (map[string]node, bool) {
	n.Node = deref(n.Node)
	if n.Kind != yaml.MappingNode {
		r.fail(n, "must be a mapping, got %s", kindName(n.Node))
		return nil, false
	}
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	out := map[string]node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kn := node{Node: k, path: n.path}
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			r.fail(kn, "unsupported key %q", k.Value)
			continue
		}
		c := n.child(k.Value)
		c.Node = deref(v)
		c.keyLine = k.Line
		if !ok[k.Value] {
			c.Node = k
			r.fail(c, "unknown field %q", k.Value)
			continue
		}
		if _, dup := out[k.Value]; dup {
			c.Node = k
			r.fail(c, "field %q given twice", k.Value)
			continue
		}
		out[k.Value] = c
	}
	return out, true
}

// entries returns a mapping's keys and values in file order, for maps with
// user-chosen keys (trust.keys, vars, extensions).
func (r *reader) entries(n node) ([]node, []node, bool) {
	n.Node = deref(n.Node)
	if n.Kind != yaml.MappingNode {
		r.fail(n, "must be a mapping, got %s", kindName(n.Node))
		return nil, nil, false
	}
	var keys, vals []node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		c := n.child(k.Value)
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			c.Node = k
			r.fail(c, "unsupported key %q", k.Value)
			continue
		}
		if seen[k.Value] {
			c.Node = k
			r.fail(c, "key %q given twice", k.Value)
			continue
		}
		seen[k.Value] = true
		keys = append(keys, node{Node: k, path: c.path})
		c.Node = deref(v)
		vals = append(vals, c)
	}
	return keys, vals, true
}

func (r *reader) list(n node) ([]node, bool) {
	n.Node = deref(n.Node)
	if n.Kind != yaml.SequenceNode {
		r.fail(n, "must be a list, got %s", kindName(n.Node))
		return nil, false
	}
	out := make([]node, len(n.Content))
	for i, c := range n.Content {
		out[i] = node{Node: deref(c), path: n.index(i)}
	}
	return out, true
}

// str returns a scalar's text. Numbers, dates and booleans are accepted as
// written, so `expires: 2027-06-30` and `Tag: 1.2` read naturally.
func (r *reader) str(n node) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		r.fail(n, "must be a string, got %s", kindName(n.Node))
		return "", false
	}
	return n.Value, true
}

func (r *reader) int(n node) (int, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		r.fail(n, "must be an integer, got %q", n.Value)
		return 0, false
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		r.fail(n, "must be an integer, got %q", n.Value)
		return 0, false
	}
	return v, true
}
