package attestation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walkValue(dec, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func walkValue(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return errors.New("unexpected end of JSON input")
		}
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			k, ok := kt.(string)
			if !ok {
				return fmt.Errorf("object key at %s is not a string", where(path))
			}
			if seen[k] {
				return fmt.Errorf("duplicate key %q in %s", k, where(path))
			}
			seen[k] = true
			if err := walkValue(dec, join(path, k)); err != nil {
				return err
			}
		}
	case '[':
		for i := 0; dec.More(); i++ {
			if err := walkValue(dec, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
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

func kindOfRaw(data []byte) string {
	v, err := decodeAny(data)
	if err != nil {
		return "value"
	}
	return kindOf(v)
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
