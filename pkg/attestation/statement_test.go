package attestation

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

const hexA = "6509be241a5e19fab8c25688858fde2c2212ce247ba22c75213f15dc0d0e20e0"

func TestNewStatementRoundTrip(t *testing.T) {
	pred := json.RawMessage(`{"n":12345678901234567890,"url":"pkg:docker/a?x=1&y=<2>"}`)
	subs := []Subject{
		{Name: "ghcr.io/example/fleet", Digest: map[string]string{"sha256": hexA}},
		{Name: "ghcr.io/example/fleet", Digest: map[string]string{"sha512": strings.Repeat("ab", 64)}},
	}
	b, err := NewStatement(PredicateSLSAProvenanceV1, pred, subs...)
	if err != nil {
		t.Fatal(err)
	}
	// Numbers and the ampersand survive byte for byte.
	if !bytes.Contains(b, []byte(`"predicate":{"n":12345678901234567890,"url":"pkg:docker/a?x=1&y=<2>"}`)) {
		t.Errorf("predicate not carried verbatim: %s", b)
	}
	st, err := ParseStatement(b)
	if err != nil {
		t.Fatal(err)
	}
	if st.Type != StatementTypeV1 || st.PredicateType != PredicateSLSAProvenanceV1 || len(st.Subject) != 2 {
		t.Errorf("round trip: %+v", st)
	}
	if !st.HasSubjectDigest("sha256", hexA) || !st.HasSubjectDigest("sha256", strings.ToUpper(hexA)) {
		t.Error("HasSubjectDigest misses the subject")
	}
	if st.HasSubjectDigest("sha256", strings.Repeat("0", 64)) || st.HasSubjectDigest("sha512", hexA) {
		t.Error("HasSubjectDigest matches a digest that is not there")
	}
	// The in-toto reference implementation agrees it is a valid statement.
	var ref intoto.Statement
	if err := protojson.Unmarshal(b, &ref); err != nil {
		t.Fatalf("in-toto library cannot read it: %v", err)
	}
	if err := ref.Validate(); err != nil {
		t.Errorf("in-toto library rejects it: %v", err)
	}
}

func TestNewStatementRejects(t *testing.T) {
	good := []Subject{{Name: "r", Digest: map[string]string{"sha256": hexA}}}
	for _, tc := range []struct {
		name     string
		typ      string
		pred     string
		subjects []Subject
		want     string
	}{
		{"no type", "", `{}`, good, "empty predicate type"},
		{"no subject", PredicateSLSAProvenanceV1, `{}`, nil, "no subject"},
		{"subject without digest", PredicateSLSAProvenanceV1, `{}`, []Subject{{Name: "r"}}, "no digest"},
		{"short sha256", PredicateSLSAProvenanceV1, `{}`, []Subject{{Digest: map[string]string{"sha256": "abcd"}}}, "want 64"},
		{"predicate not JSON", PredicateSLSAProvenanceV1, `{`, good, "predicate"},
		{"predicate an array", PredicateSLSAProvenanceV1, `[]`, good, "want an object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewStatement(tc.typ, json.RawMessage(tc.pred), tc.subjects...)
			wantInputError(t, err, tc.want)
		})
	}
}

func TestParseStatementAcceptsV01(t *testing.T) {
	st, err := ParseStatement([]byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"x:y","subject":[{"name":"a","digest":{"sha256":"` + hexA + `","custom-alg":"anything"}}],"predicate":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if st.Type != StatementTypeV01 {
		t.Errorf("type %q", st.Type)
	}
}

func TestParseStatementRejects(t *testing.T) {
	sub := `[{"name":"a","digest":{"sha256":"` + hexA + `"}}]`
	stmt := func(typ, subject, ptype string) string {
		return `{"_type":"` + typ + `","subject":` + subject + `,"predicateType":"` + ptype + `","predicate":{}}`
	}
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"not JSON", `{"_type":`, "unexpected end"},
		{"array", `[]`, "want an object"},
		{"wrong _type", stmt("https://in-toto.io/Statement/v2", sub, "p"), "not an in-toto statement type"},
		{"missing _type", `{"subject":` + sub + `,"predicateType":"p"}`, "missing _type"},
		{"empty subject list", stmt(StatementTypeV1, `[]`, "p"), "no subject"},
		{"missing subject", `{"_type":"` + StatementTypeV1 + `","predicateType":"p"}`, "missing subject"},
		{"subject without digest", stmt(StatementTypeV1, `[{"name":"a"}]`, "p"), "subject 0: missing digest"},
		{"empty digest", stmt(StatementTypeV1, `[{"name":"a","digest":{}}]`, "p"), "no digest"},
		{"digest not hex", stmt(StatementTypeV1, `[{"digest":{"sha256":"`+strings.Repeat("z", 64)+`"}}]`, "p"), "not lowercase hex"},
		{"digest upper case", stmt(StatementTypeV1, `[{"digest":{"sha256":"`+strings.ToUpper(hexA)+`"}}]`, "p"), "not lowercase hex"},
		{"digest wrong length", stmt(StatementTypeV1, `[{"digest":{"sha256":"`+hexA[:40]+`"}}]`, "p"), "is 40 hex characters, want 64"},
		{"gitCommit wrong length", stmt(StatementTypeV1, `[{"digest":{"gitCommit":"abcd"}}]`, "p"), "want 40 or 64"},
		{"empty predicateType", stmt(StatementTypeV1, sub, ""), "empty predicateType"},
		{"predicate is a number", `{"_type":"` + StatementTypeV1 + `","subject":` + sub + `,"predicateType":"p","predicate":1}`, "predicate is a JSON number"},
		{"predicate is an array", `{"_type":"` + StatementTypeV1 + `","subject":` + sub + `,"predicateType":"p","predicate":[]}`, "predicate is a JSON array"},
		{"duplicate key", `{"_type":"` + StatementTypeV1 + `","subject":` + sub + `,"predicateType":"p","predicateType":"q"}`, `duplicate key "predicateType"`},
		{"duplicate nested key", stmt(StatementTypeV1, `[{"digest":{"sha256":"`+hexA+`","sha256":"`+hexA+`"}}]`, "p"), `duplicate key "sha256" in subject[0].digest`},
		{"case variant key", `{"_type":"` + StatementTypeV1 + `","Subject":` + sub + `,"predicateType":"p"}`, "missing subject"},
		{"trailing data", stmt(StatementTypeV1, sub, "p") + `{}`, "after top-level value"},
		{"duplicate key spelled with an escape", `{"_type":"` + StatementTypeV1 + `","subject":` + sub + `,"predicateType":"p","predicate":{"a":[{"b":1,"\u0062":2}]}}`, `duplicate key "b" in predicate.a[0]`},
		{"same key in sibling objects is fine, duplicate below is not", `{"_type":"` + StatementTypeV1 + `","subject":` + sub + `,"predicateType":"p","predicate":{"x":{"k":1},"y":{"k":1,"z":[0,{"q":1,"q":2}]}}}`, `duplicate key "q" in predicate.y.z[1]`},
		{"invalid UTF-8", "{\"_type\":\"\xff\"}", "UTF-8"},
		{"too large", `{"x":"` + strings.Repeat("a", MaxStatementSize) + `"}`, "limit"},
		{"duplicate key in a large object", `{"_type":"` + StatementTypeV1 + `","subject":` + sub + `,"predicateType":"p","predicate":{` + manyKeys(40) + `,"k5":0}}`, `duplicate key "k5" in predicate`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseStatement([]byte(tc.doc))
			wantInputError(t, err, "in-toto statement", tc.want)
		})
	}
}

func TestParseSubject(t *testing.T) {
	for _, tc := range []struct {
		ref, name string
	}{
		{"ghcr.io/example/fleet@sha256:" + hexA, "ghcr.io/example/fleet"},
		{"127.0.0.1:5000/example/fleet:v0.1.0@sha256:" + hexA, "127.0.0.1:5000/example/fleet"},
		{"alpine@sha256:" + hexA, "index.docker.io/library/alpine"},
	} {
		s, err := ParseSubject(tc.ref)
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		if s.Name != tc.name || s.Digest["sha256"] != hexA || len(s.Digest) != 1 {
			t.Errorf("%s: got %+v", tc.ref, s)
		}
	}
	for _, ref := range []string{"ghcr.io/example/fleet:v1", "ghcr.io/example/fleet@sha256:abcd", "not a ref@@"} {
		_, err := ParseSubject(ref)
		wantInputError(t, err, ref)
	}
}

func manyKeys(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = `"k` + strconv.Itoa(i) + `":` + strconv.Itoa(i)
	}
	return strings.Join(parts, ",")
}
