package attestation

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/pkg/fault"
)

// fixtureStatements are the in-toto layers of the BuildKit fixtures and the
// statements of testdata: real documents to seed the fuzzers with.
func fixtureStatements(f *testing.F) [][]byte {
	f.Helper()
	var out [][]byte
	files, err := filepath.Glob(filepath.Join(buildkitDir, "*", "blobs", "sha256", "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("fixture blobs: %v", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if bytes.Contains(b, []byte(`"_type"`)) {
			out = append(out, b)
		}
	}
	out = append(out, readTestdata(f, "buildkit-v0.2-statement.json"))
	return out
}

func readTestdata(f testing.TB, name string) []byte {
	f.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func wantInputKind(t *testing.T, what string, err error) {
	t.Helper()
	if k := fault.KindOf(err); k != fault.Input {
		t.Fatalf("%s: error of kind %v, want input: %v", what, k, err)
	}
}

// FuzzParseStatement: errors are input errors; an accepted statement
// re-marshals to JSON that parses again to the same statement, and its
// subjects' digests are found by HasSubjectDigest.
func FuzzParseStatement(f *testing.F) {
	for _, s := range fixtureStatements(f) {
		f.Add(s)
	}
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"` + hex.EncodeToString(make([]byte, 32)) + `"}}],"predicateType":"x","predicate":"SPDXVersion: SPDX-2.3"}`))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"name":"a","digest":{"gitCommit":"` + hex.EncodeToString(make([]byte, 20)) + `","custom":"v"}}],"predicateType":"p","Subject":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseStatement(data)
		if err != nil {
			wantInputKind(t, "ParseStatement", err)
			if st != nil {
				t.Fatal("a statement returned along with an error")
			}
			return
		}
		if st.Type != StatementTypeV1 && st.Type != StatementTypeV01 || st.PredicateType == "" || len(st.Subject) == 0 {
			t.Fatalf("accepted statement %+v", st)
		}
		for _, s := range st.Subject {
			if len(s.Digest) == 0 {
				t.Fatalf("subject %q without a digest", s.Name)
			}
			for alg, h := range s.Digest {
				// HasSubjectDigest asks in lower case; only algorithms
				// unknown to in-toto may hold other spellings, and seal
				// never asks about those.
				if h == strings.ToLower(h) && !st.HasSubjectDigest(alg, h) {
					t.Fatalf("HasSubjectDigest(%s, %s) is false for a subject's own digest", alg, h)
				}
			}
		}
		again, err := json.Marshal(st)
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		st2, err := ParseStatement(again)
		if err != nil {
			t.Fatalf("the re-marshalled statement does not parse: %v\n%s", err, again)
		}
		if st2.Type != st.Type || st2.PredicateType != st.PredicateType || !reflect.DeepEqual(st2.Subject, st.Subject) {
			t.Fatalf("re-parsed statement differs:\n%+v\n%+v", st, st2)
		}
		if !bytes.Equal(compactJSON(t, st.Predicate), compactJSON(t, st2.Predicate)) {
			t.Fatalf("predicate changed: %s -> %s", st.Predicate, st2.Predicate)
		}
	})
}

func compactJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	if len(b) == 0 {
		return nil
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatalf("compact %q: %v", b, err)
	}
	// Marshalling escapes <, > and & in raw messages; compare unescaped.
	var v any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	enc, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// FuzzParseBuildKitAttestation parses a fuzzed attestation manifest whose
// layers are fetched from the fixtures, or else answered with the fuzzed
// layer bytes whatever digest was asked for (a lying registry). Errors are
// input errors; every statement returned is the exact bytes its layer
// descriptor names, about platform, with the predicate type its layer
// annotation claims.
func FuzzParseBuildKitAttestation(f *testing.F) {
	blobs := map[v1.Hash][]byte{}
	files, err := filepath.Glob(filepath.Join(buildkitDir, "*", "blobs", "sha256", "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("fixture blobs: %v", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		sum := sha256.Sum256(b)
		blobs[v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}] = b
	}
	dirs, _ := filepath.Glob(filepath.Join(buildkitDir, "*", "index.json"))
	statements := fixtureStatements(f)
	for i, d := range dirs {
		fx := loadFixtureF(f, filepath.Base(filepath.Dir(d)))
		f.Add(fx.attRaw, statements[i%len(statements)], fx.platform.Hex)
	}
	f.Fuzz(func(t *testing.T, manifest, layer []byte, platformHex string) {
		platform, err := v1.NewHash("sha256:" + platformHex)
		if err != nil {
			return
		}
		fetch := func(d v1.Descriptor) ([]byte, error) {
			if b, ok := blobs[d.Digest]; ok {
				return b, nil
			}
			return layer, nil
		}
		got, err := ParseBuildKitAttestation(manifest, fetch, platform)
		if err != nil {
			wantInputKind(t, "ParseBuildKitAttestation", err)
			if got != nil {
				t.Fatal("statements returned along with an error")
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("accepted an attestation manifest with no statement")
		}
		for _, a := range got {
			sum := sha256.Sum256(a.Raw)
			if a.Layer.Digest.Algorithm != "sha256" || a.Layer.Digest.Hex != hex.EncodeToString(sum[:]) || a.Layer.Size != int64(len(a.Raw)) {
				t.Fatalf("statement bytes are not layer %s", a.Layer.Digest)
			}
			if a.Layer.MediaType != InTotoMediaType {
				t.Fatalf("layer media type %s", a.Layer.MediaType)
			}
			if !a.Statement.HasSubjectDigest("sha256", platform.Hex) {
				t.Fatalf("statement about %v returned for %s", a.Statement.SubjectDigests(), platform)
			}
			if a.PredicateType != a.Statement.PredicateType {
				t.Fatalf("predicate type %s, statement says %s", a.PredicateType, a.Statement.PredicateType)
			}
			if want, ok := a.Layer.Annotations[PredicateTypeAnnotation]; ok && want != a.PredicateType {
				t.Fatalf("layer annotated %s, statement %s", want, a.PredicateType)
			}
		}
	})
}

// loadFixtureF reads what loadFixture reads, for a fuzz target's seeds.
func loadFixtureF(f *testing.F, name string) bkFixture {
	f.Helper()
	dir := filepath.Join(buildkitDir, name)
	top, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		f.Fatal(err)
	}
	var layout v1.IndexManifest
	if err := json.Unmarshal(top, &layout); err != nil || len(layout.Manifests) != 1 {
		f.Fatalf("%s/index.json: %v", name, err)
	}
	raw, err := readBlob(dir, layout.Manifests[0].Digest)
	if err != nil {
		f.Fatal(err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		f.Fatal(err)
	}
	fx := bkFixture{dir: dir}
	for _, d := range idx.Manifests {
		if d.Annotations[DockerReferenceTypeAnnotation] == DockerReferenceTypeAttestation {
			if fx.attRaw, err = readBlob(dir, d.Digest); err != nil {
				f.Fatal(err)
			}
		} else {
			fx.platform = d.Digest
		}
	}
	if fx.attRaw == nil {
		f.Fatalf("%s: no attestation manifest", name)
	}
	return fx
}

// FuzzConvertV02ToV1 converts a fuzzed SLSA v0.2 predicate, and a fuzzed
// statement carrying one, to v1, and validates the input as every known
// predicate type. Errors are input errors; a conversion is deterministic
// and gives a valid v1 predicate (or a v1 statement about the same subjects).
func FuzzConvertV02ToV1(f *testing.F) {
	f.Add(readTestdata(f, "generic-v0.2-predicate.json"))
	st := readTestdata(f, "buildkit-v0.2-statement.json")
	f.Add(st)
	var doc struct {
		Predicate json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(st, &doc); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(doc.Predicate))
	f.Add(readTestdata(f, "github-actions.provenance.json"))
	f.Add([]byte(`{"builder":{"id":""},"buildType":"https://mobyproject.org/buildkit@v1","invocation":{"configSource":{"uri":"u","digest":{"sha1":"` + hex.EncodeToString(make([]byte, 20)) + `"},"entryPoint":"Dockerfile"},"parameters":{"frontend":"dockerfile.v0"},"environment":{"platform":"linux/amd64"}},"materials":[{"uri":"pkg:docker/x","digest":{"sha256":"` + hex.EncodeToString(make([]byte, 32)) + `"}}],"metadata":{"buildInvocationID":"i","buildStartedOn":"2024-01-01T00:00:00Z","completeness":{"parameters":true},"reproducible":false,"https://mobyproject.org/buildkit@v1#metadata":{"vcs":{"revision":"r"}}},"buildConfig":{"llbDefinition":[]}}`))
	f.Add([]byte(`{"spdxVersion":"SPDX-2.3"}`))
	f.Add([]byte(`{"bomFormat":"CycloneDX"}`))
	types := []string{PredicateSLSAProvenanceV1, PredicateSLSAProvenanceV02, PredicateSPDX, PredicateCycloneDX, "https://example.com/custom/v1"}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, pt := range types {
			if err := ValidatePredicate(pt, data); err != nil {
				wantInputKind(t, "ValidatePredicate "+pt, err)
			}
		}
		out, err := ConvertV02ToV1(data)
		if err != nil {
			wantInputKind(t, "ConvertV02ToV1", err)
		} else {
			if err := ValidatePredicate(PredicateSLSAProvenanceV1, out); err != nil {
				t.Fatalf("converted predicate is not valid v1: %v\n%s", err, out)
			}
			if err := checkJSON(out); err != nil {
				t.Fatalf("converted predicate: %v", err)
			}
			again, err := ConvertV02ToV1(data)
			if err != nil || !bytes.Equal(out, again) {
				t.Fatalf("conversion is not deterministic: %v", err)
			}
		}
		stOut, err := ConvertStatementV02ToV1(data)
		if err != nil {
			wantInputKind(t, "ConvertStatementV02ToV1", err)
			return
		}
		in, err := ParseStatement(data)
		if err != nil {
			t.Fatalf("converted a statement that does not parse: %v", err)
		}
		got, err := ParseStatement(stOut)
		if err != nil {
			t.Fatalf("converted statement does not parse: %v\n%s", err, stOut)
		}
		if got.Type != StatementTypeV1 || got.PredicateType != PredicateSLSAProvenanceV1 || !reflect.DeepEqual(got.Subject, in.Subject) {
			t.Fatalf("converted statement %s %s about %v, input about %v", got.Type, got.PredicateType, got.Subject, in.Subject)
		}
	})
}
