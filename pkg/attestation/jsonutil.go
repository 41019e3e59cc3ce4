package attestation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxStatementSize caps every statement, predicate and attestation manifest
// read here. BuildKit's mode=max provenance and SPDX SBOMs of large images
// stay well under it; anything bigger is refused before it is parsed.
const MaxStatementSize = 16 << 20

// checkJSON accepts exactly one JSON value in valid UTF-8 with no duplicate
// object keys at any depth. encoding/json silently keeps the last of two
// duplicate keys while other parsers keep the first, so a document with
// duplicates can mean one thing to the signer and another to a verifier.
func checkJSON(data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("not valid UTF-8")
	}
	if !json.Valid(data) {
		// Valid says no more than no; a decode names the offset and the cause.
		var v json.RawMessage
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		return errors.New("invalid JSON")
	}
	return checkDuplicateKeys(data)
}

// container is an object or array being scanned by checkDuplicateKeys.
type container struct {
	object bool
	keys   []string            // small objects: a linear scan beats a map
	set    map[string]struct{} // large objects
	last   string              // the last key of an object
	index  int                 // the current element of an array
	// name or at is this container's place in its parent, for messages.
	name string
	at   int
}

// checkDuplicateKeys scans JSON that json.Valid accepted. In valid JSON a
// string is an object key exactly when the next non-space byte is ':'. It is
// a byte scanner rather than json.Decoder.Token, which is several times
// slower on the multi-megabyte SBOMs that pass through here.
func checkDuplicateKeys(data []byte) error {
	var stack []*container
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '{', '[':
			c := &container{object: data[i] == '{', at: -1}
			if n := len(stack); n > 0 {
				if p := stack[n-1]; p.object {
					c.name = p.last
				} else {
					c.at = p.index
				}
			}
			stack = append(stack, c)
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			if top := stack[len(stack)-1]; !top.object {
				top.index++
			}
		case '"':
			j := i + 1
			for data[j] != '"' {
				if data[j] == '\\' {
					j++
				}
				j++
			}
			k := j + 1
			for k < len(data) && (data[k] == ' ' || data[k] == '\t' || data[k] == '\n' || data[k] == '\r') {
				k++
			}
			if k < len(data) && data[k] == ':' {
				key := string(data[i+1 : j])
				if bytes.IndexByte(data[i+1:j], '\\') >= 0 {
					if err := json.Unmarshal(data[i:j+1], &key); err != nil {
						return err
					}
				}
				top := stack[len(stack)-1]
				if top.has(key) {
					return fmt.Errorf("duplicate key %q in %s", key, where(stackPath(stack)))
				}
				top.add(key)
				top.last = key
			}
			i = j
		}
	}
	return nil
}

func (c *container) has(key string) bool {
	if c.set != nil {
		_, ok := c.set[key]
		return ok
	}
	for _, k := range c.keys {
		if k == key {
			return true
		}
	}
	return false
}

func (c *container) add(key string) {
	if c.set == nil && len(c.keys) < 16 {
		c.keys = append(c.keys, key)
		return
	}
	if c.set == nil {
		c.set = make(map[string]struct{}, 32)
		for _, k := range c.keys {
			c.set[k] = struct{}{}
		}
		c.keys = nil
	}
	c.set[key] = struct{}{}
}

// stackPath names the innermost container, as subject[0].digest.
func stackPath(stack []*container) string {
	var b strings.Builder
	for _, c := range stack[1:] {
		if c.at >= 0 {
			fmt.Fprintf(&b, "[%d]", c.at)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(c.name)
	}
	return b.String()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func where(path string) string {
	if path == "" {
		return "the top-level object"
	}
	return path
}

// decodeObject checks data with checkJSON and returns its top-level object
// with exact (case-sensitive) keys; encoding/json would otherwise match
// "Subject" or "PREDICATETYPE" to struct fields.
func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	if err := checkJSON(data); err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("a JSON %s, want an object", kindOfRaw(data))
	}
	return obj, nil
}

// decodeAny decodes checked JSON keeping numbers exact.
func decodeAny(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// kindOfRaw names the type of a JSON value from its first byte, without
// decoding it (predicates run to megabytes).
func kindOfRaw(data []byte) string {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 {
		return "value"
	}
	switch data[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// kindOf names a decoded JSON value's type for error messages.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// marshal encodes v without HTML escaping: predicates carry URLs with & and
// < > in purls and build arguments, and \u0026 in place of & only makes the
// signed document harder to read.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
