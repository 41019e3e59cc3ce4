package attestation

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	intoto "github.com/in-toto/attestation/go/v1"

	"github.com/seal-dev/seal/pkg/fault"
)

// Statement types: seal writes v1 and reads both, because BuildKit and older
// cosign releases still write v0.1 statements.
const (
	StatementTypeV1  = intoto.StatementTypeUri
	StatementTypeV01 = "https://in-toto.io/Statement/v0.1"
)

// Subject is one artifact a statement is about: for an image, the repository
// name and the manifest digest.
type Subject struct {
	Name   string            `json:"name,omitempty"`
	Digest map[string]string `json:"digest"`
}

// Statement is a parsed in-toto statement. Predicate stays raw: its bytes are
// what was signed, and re-encoding would change numbers and key order. It is
// a JSON object, or a JSON string in statements cosign made with --type spdx.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate,omitempty"`
}

// NewStatement wraps predicate in an in-toto Statement v1 about subjects and
// returns its JSON. The predicate must be a JSON object.
func NewStatement(predicateType string, predicate json.RawMessage, subjects ...Subject) ([]byte, error) {
	if predicateType == "" {
		return nil, fault.Inputf("in-toto statement: empty predicate type")
	}
	if len(subjects) == 0 {
		return nil, fault.Inputf("in-toto statement: no subject")
	}
	for i, s := range subjects {
		if err := checkSubject(s); err != nil {
			return nil, fault.Inputf("in-toto statement: subject %d: %w", i, err)
		}
	}
	if len(predicate) > MaxStatementSize {
		return nil, fault.Inputf("in-toto statement: predicate is %d bytes, more than the %d-byte limit", len(predicate), MaxStatementSize)
	}
	if _, err := decodeObject(predicate); err != nil {
		return nil, fault.Inputf("in-toto statement: predicate: %w", err)
	}
	return marshal(Statement{
		Type:          StatementTypeV1,
		Subject:       subjects,
		PredicateType: predicateType,
		Predicate:     predicate,
	})
}

// ParseStatement reads an in-toto statement (v1 or v0.1) strictly: a known
// _type, at least one subject, every subject with a digest whose known
// algorithms are lowercase hex of the right length, a predicate type, and no
// duplicate or case-variant keys. Errors are input errors.
func ParseStatement(data []byte) (*Statement, error) {
	st, err := parseStatement(data)
	if err != nil {
		return nil, fault.Wrap(fault.Input, fmt.Errorf("in-toto statement: %w", err))
	}
	return st, nil
}

func parseStatement(data []byte) (*Statement, error) {
	if len(data) > MaxStatementSize {
		return nil, fmt.Errorf("%d bytes, more than the %d-byte limit", len(data), MaxStatementSize)
	}
	obj, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	var st Statement
	if err := stringField(obj, "_type", &st.Type); err != nil {
		return nil, err
	}
	if st.Type != StatementTypeV1 && st.Type != StatementTypeV01 {
		return nil, fmt.Errorf("_type %q is not an in-toto statement type (want %s or %s)", st.Type, StatementTypeV1, StatementTypeV01)
	}
	if err := stringField(obj, "predicateType", &st.PredicateType); err != nil {
		return nil, err
	}
	if st.PredicateType == "" {
		return nil, fmt.Errorf("empty predicateType")
	}
	rawSubjects, ok := obj["subject"]
	if !ok {
		return nil, fmt.Errorf("missing subject")
	}
	var subjects []map[string]json.RawMessage
	if err := json.Unmarshal(rawSubjects, &subjects); err != nil {
		return nil, fmt.Errorf("subject: want an array of objects")
	}
	if len(subjects) == 0 {
		return nil, fmt.Errorf("no subject")
	}
	for i, raw := range subjects {
		s, err := parseSubject(raw)
		if err != nil {
			return nil, fmt.Errorf("subject %d: %w", i, err)
		}
		st.Subject = append(st.Subject, s)
	}
	if p, ok := obj["predicate"]; ok && string(p) != "null" {
		// The spec wants an object; cosign's --type spdx stores SPDX
		// tag-value text as a JSON string, and those attestations exist.
		if k := kindOfRaw(p); k != "object" && k != "string" {
			return nil, fmt.Errorf("predicate is a JSON %s, want an object", k)
		}
		st.Predicate = p
	}
	return &st, nil
}

func stringField(obj map[string]json.RawMessage, key string, dst *string) error {
	raw, ok := obj[key]
	if !ok {
		return fmt.Errorf("missing %s", key)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%s is a JSON %s, want a string", key, kindOfRaw(raw))
	}
	return nil
}

func parseSubject(obj map[string]json.RawMessage) (Subject, error) {
	var s Subject
	if raw, ok := obj["name"]; ok {
		if err := json.Unmarshal(raw, &s.Name); err != nil {
			return s, fmt.Errorf("name is a JSON %s, want a string", kindOfRaw(raw))
		}
	}
	raw, ok := obj["digest"]
	if !ok {
		return s, fmt.Errorf("missing digest")
	}
	if err := json.Unmarshal(raw, &s.Digest); err != nil {
		return s, fmt.Errorf("digest: want an object of algorithm to hex string")
	}
	return s, checkSubject(s)
}

func checkSubject(s Subject) error {
	if len(s.Digest) == 0 {
		return fmt.Errorf("no digest")
	}
	return checkDigestSet(s.Digest)
}

// checkDigestSet checks every algorithm the in-toto digest-set spec fixes a
// size for; other algorithms are allowed by the spec and only need a value.
func checkDigestSet(d map[string]string) error {
	algs := make([]string, 0, len(d))
	for alg := range d {
		algs = append(algs, alg)
	}
	sort.Strings(algs) // deterministic error messages
	for _, alg := range algs {
		v := d[alg]
		if v == "" {
			return fmt.Errorf("digest %s is empty", alg)
		}
		sizes := digestSizes(alg)
		if sizes == nil {
			continue
		}
		b, err := hex.DecodeString(v)
		if err != nil || strings.ToLower(v) != v {
			return fmt.Errorf("digest %s %q is not lowercase hex", alg, v)
		}
		if !containsInt(sizes, len(b)) {
			return fmt.Errorf("digest %s is %d hex characters, want %s", alg, len(v), hexLengths(sizes))
		}
	}
	return nil
}

// digestSizes is the set of byte lengths an algorithm's digest may have.
// Git object ids are SHA-1 or, in SHA-256 repositories, SHA-256.
func digestSizes(alg string) []int {
	a, ok := intoto.HashAlgorithms[alg]
	if !ok {
		return nil
	}
	switch a {
	case intoto.AlgorithmGitBlob, intoto.AlgorithmGitCommit, intoto.AlgorithmGitTag, intoto.AlgorithmGitTree:
		return []int{20, 32}
	}
	return []int{a.HexLength()}
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func hexLengths(sizes []int) string {
	parts := make([]string, len(sizes))
	for i, s := range sizes {
		parts[i] = fmt.Sprint(2 * s)
	}
	return strings.Join(parts, " or ")
}

// HasSubjectDigest reports whether any subject carries digest alg:hex.
func (s *Statement) HasSubjectDigest(alg, hexDigest string) bool {
	want := strings.ToLower(hexDigest)
	for _, sub := range s.Subject {
		if got, ok := sub.Digest[alg]; ok && got == want {
			return true
		}
	}
	return false
}

// SubjectDigests lists the subjects' digests as alg:hex, for error messages.
func (s *Statement) SubjectDigests() []string {
	var out []string
	for _, sub := range s.Subject {
		algs := make([]string, 0, len(sub.Digest))
		for alg := range sub.Digest {
			algs = append(algs, alg)
		}
		sort.Strings(algs)
		for _, alg := range algs {
			out = append(out, alg+":"+sub.Digest[alg])
		}
	}
	return out
}

// ParseSubject turns IMAGE@sha256:HEX into a statement subject named, as
// cosign names it, by the repository (registry host included, no tag). A
// reference without a digest is refused: subjects are never resolved from
// tags.
func ParseSubject(ref string) (Subject, error) {
	d, err := name.NewDigest(ref)
	if err != nil {
		return Subject{}, fault.Inputf("subject %q: want IMAGE@sha256:DIGEST: %w", ref, err)
	}
	alg, hexDigest, ok := strings.Cut(d.DigestStr(), ":")
	if !ok || alg != "sha256" {
		return Subject{}, fault.Inputf("subject %q: want a sha256 digest", ref)
	}
	s := Subject{Name: d.Context().Name(), Digest: map[string]string{alg: hexDigest}}
	if err := checkSubject(s); err != nil {
		return Subject{}, fault.Inputf("subject %q: %w", ref, err)
	}
	return s, nil
}
