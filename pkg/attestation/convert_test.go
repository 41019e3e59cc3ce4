package attestation

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	slsa1 "github.com/in-toto/attestation/go/predicates/provenance/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

func readStatementPredicate(t *testing.T, file string) []byte {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStatement(raw)
	if err != nil {
		t.Fatal(err)
	}
	return st.Predicate
}

func checkWithInToto(t *testing.T, pred []byte) {
	t.Helper()
	var ref slsa1.Provenance
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(pred, &ref); err != nil {
		t.Fatalf("in-toto library cannot read it: %v", err)
	}
	if err := ref.Validate(); err != nil {
		t.Errorf("in-toto library rejects it: %v", err)
	}
}

func TestConvertBuildKitV02Golden(t *testing.T) {
	got, err := ConvertV02ToV1(readStatementPredicate(t, "testdata/buildkit-v0.2-statement.json"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "buildkit-v0.2-converted-v1.json", got)
	checkWithInToto(t, got)

	p := decode(t, got)
	for _, tc := range []struct {
		path []string
		want any
	}{
		{[]string{"buildDefinition", "buildType"}, BuildKitBuildTypeV1},
		{[]string{"buildDefinition", "externalParameters", "configSource", "uri"}, "https://github.com/example/fleet.git#refs/tags/v0.1.0"},
		{[]string{"buildDefinition", "externalParameters", "configSource", "digest", "sha1"}, "3f786850e387550fdab836ed7e6dc881de23001b"},
		{[]string{"buildDefinition", "externalParameters", "configSource", "path"}, "Dockerfile"},
		{[]string{"buildDefinition", "externalParameters", "request", "frontend"}, "dockerfile.v0"},
		{[]string{"buildDefinition", "externalParameters", "request", "args", "build-arg:COMPONENT"}, "example/fleet"},
		{[]string{"buildDefinition", "internalParameters", "builderPlatform"}, "linux/amd64"},
		{[]string{"runDetails", "builder", "id"}, "https://github.com/example/fleet/actions/runs/12052453829"},
		{[]string{"runDetails", "metadata", "invocationId"}, "y8bq3hbxl5k1lrqq4r6m7n2ud"},
		{[]string{"runDetails", "metadata", "startedOn"}, "2026-11-25T19:41:02.118573392Z"},
		{[]string{"runDetails", "metadata", "finishedOn"}, "2026-11-25T19:41:09.604019283Z"},
		{[]string{"runDetails", "metadata", "buildkit_completeness", "request"}, true},
		{[]string{"runDetails", "metadata", "buildkit_completeness", "resolvedDependencies"}, true},
		{[]string{"runDetails", "metadata", "buildkit_metadata", "vcs", "revision"}, "3f786850e387550fdab836ed7e6dc881de23001b"},
	} {
		if v := path(t, p, tc.path...); v != tc.want {
			t.Errorf("%s = %v, want %v", strings.Join(tc.path, "."), v, tc.want)
		}
	}
	if steps := path(t, p, "buildDefinition", "internalParameters", "buildConfig", "llbDefinition").([]any); len(steps) != 4 {
		t.Errorf("buildConfig.llbDefinition has %d steps, want 4", len(steps))
	}
	// The git source is both a material and the config source: listed once.
	deps := path(t, p, "buildDefinition", "resolvedDependencies").([]any)
	if len(deps) != 2 {
		t.Errorf("resolvedDependencies: %d entries, want 2 (alpine, git): %v", len(deps), deps)
	}
	if u := path(t, deps[0], "uri"); u != "pkg:docker/alpine@3.20?digest=sha256:beefdbd8a1da6d2915566fde36db9db0b524eb737fc57cd1367effd16dc0d06d&platform=linux%2Famd64" {
		t.Errorf("first dependency %v", u)
	}
	for _, gone := range [][]string{{"runDetails", "metadata", "buildkit_reproducible"}, {"runDetails", "metadata", "buildkit_hermetic"}} {
		if _, ok := path(t, p, gone[:2]...).(map[string]any)[gone[2]]; ok {
			t.Errorf("%s present although false in v0.2", strings.Join(gone, "."))
		}
	}
}

// TestConvertBuildKitMatchesNativeV1 compares the converted layout with the
// v1 provenance BuildKit itself wrote in testdata/buildkit: every field the
// conversion produces must be one BuildKit's v1 has at the same place.
func TestConvertBuildKitMatchesNativeV1(t *testing.T) {
	got, err := ConvertV02ToV1(readStatementPredicate(t, "testdata/buildkit-v0.2-statement.json"))
	if err != nil {
		t.Fatal(err)
	}
	native := readStatementPredicate(t, filepath.Join("..", "..", "testdata", "buildkit", "fleet__v0.1.0-linux-amd64",
		"blobs", "sha256", "f286dfc8e2e85aebfcef4bdd2976db39c7bd226411b708537e8dae0ef33ceda2"))
	conv, nat := decode(t, got), decode(t, native)
	if path(t, conv, "buildDefinition", "buildType") != path(t, nat, "buildDefinition", "buildType") {
		t.Errorf("build type differs from BuildKit's v1")
	}
	for _, at := range [][]string{
		{},
		{"buildDefinition"},
		{"buildDefinition", "externalParameters"},
		{"buildDefinition", "internalParameters"},
		{"runDetails"},
		{"runDetails", "metadata"},
		{"runDetails", "metadata", "buildkit_completeness"},
	} {
		natKeys := keys(path(t, nat, at...))
		for _, k := range keys(path(t, conv, at...)) {
			if k == "resolvedDependencies" {
				continue // BuildKit omits it when empty, as in the FROM scratch fixture
			}
			if !contains(natKeys, k) {
				t.Errorf("converted provenance has %s, BuildKit's v1 does not (it has %v)", strings.Join(append(at, k), "."), natKeys)
			}
		}
	}
}

func keys(v any) []string {
	var ks []string
	for k := range v.(map[string]any) {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func TestConvertGenericV02Golden(t *testing.T) {
	in, err := os.ReadFile("testdata/generic-v0.2-predicate.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ConvertV02ToV1(in)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "generic-v0.2-converted-v1.json", got)
	checkWithInToto(t, got)

	p := decode(t, got)
	for _, tc := range []struct {
		path []string
		want any
	}{
		// The build type cannot be updated for someone else's builder: kept.
		{[]string{"buildDefinition", "buildType"}, "https://github.com/slsa-framework/slsa-github-generator/generic@v1"},
		{[]string{"buildDefinition", "externalParameters", "entryPoint"}, ".github/workflows/release.yml"},
		{[]string{"buildDefinition", "externalParameters", "source"}, "git+https://github.com/example/fleet@refs/tags/v0.1.0"},
		{[]string{"buildDefinition", "internalParameters", "github_run_id"}, "12052453829"},
		{[]string{"runDetails", "builder", "id"}, "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v1.10.0"},
		{[]string{"runDetails", "metadata", "invocationId"}, "12052453829-2"},
		{[]string{"runDetails", "metadata", "startedOn"}, "2026-11-25T19:40:12Z"},
		{[]string{"runDetails", "metadata", "finishedOn"}, "2026-11-25T19:44:51Z"},
		{[]string{"runDetails", "metadata", "https://example.com/ext#runner"}, "ubuntu-24.04"},
	} {
		if v := path(t, p, tc.path...); v != tc.want {
			t.Errorf("%s = %v, want %v", strings.Join(tc.path, "."), v, tc.want)
		}
	}
	md := path(t, p, "runDetails", "metadata").(map[string]any)
	for _, gone := range []string{"completeness", "reproducible", "buildInvocationId"} {
		if _, ok := md[gone]; ok {
			t.Errorf("runDetails.metadata.%s carried over; v1 drops it", gone)
		}
	}
	if deps := path(t, p, "buildDefinition", "resolvedDependencies").([]any); len(deps) != 2 {
		t.Errorf("resolvedDependencies: %d entries, want 2 (the config source is already a material)", len(deps))
	}
	bp := path(t, p, "runDetails", "byproducts").([]any)
	if len(bp) != 1 || path(t, bp[0], "name") != "buildConfig" {
		t.Fatalf("byproducts %v, want the buildConfig", bp)
	}
	// The byproduct's digest is that of its content, which is the old buildConfig.
	var content []byte
	if err := json.Unmarshal([]byte(`"`+path(t, bp[0], "content").(string)+`"`), &content); err != nil {
		t.Fatal(err)
	}
	var old map[string]any
	_ = json.Unmarshal(in, &old)
	var fromContent any
	if err := json.Unmarshal(content, &fromContent); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(fromContent)
	b, _ := json.Marshal(old["buildConfig"])
	if string(a) != string(b) {
		t.Errorf("byproduct content %s is not the buildConfig %s", a, b)
	}
}

func TestConvertConfigSourceNotInMaterials(t *testing.T) {
	in := `{"builder":{"id":"https://ci.example/b"},"buildType":"https://ci.example/t",
		"invocation":{"configSource":{"uri":"git+https://example.com/r@refs/heads/main","digest":{"sha1":"3f786850e387550fdab836ed7e6dc881de23001b"},"entryPoint":"build.yml"},
		"parameters":{"target":"release"}}}`
	got, err := ConvertV02ToV1([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	p := decode(t, got)
	if v := path(t, p, "buildDefinition", "externalParameters", "target"); v != "release" {
		t.Errorf("parameters not merged: %v", v)
	}
	deps := path(t, p, "buildDefinition", "resolvedDependencies").([]any)
	if len(deps) != 1 || path(t, deps[0], "uri") != "git+https://example.com/r@refs/heads/main" ||
		path(t, deps[0], "digest", "sha1") != "3f786850e387550fdab836ed7e6dc881de23001b" {
		t.Errorf("config source not added to resolvedDependencies: %v", deps)
	}
}

func TestConvertRejects(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"not JSON", `{`, "not a JSON object"},
		{"missing builder and buildType", `{"invocation":{}}`, "missing required fields builder.id, buildType"},
		{"v1 given", `{"buildDefinition":{},"runDetails":{}}`, "missing required fields builder.id, buildType"},
		{"entryPoint clash", `{"builder":{"id":""},"buildType":"t","invocation":{"configSource":{"entryPoint":"a"},"parameters":{"entryPoint":"b"}}}`, "already has an entryPoint"},
		{"source clash", `{"builder":{"id":""},"buildType":"t","invocation":{"configSource":{"uri":"u"},"parameters":{"source":"s"}}}`, "already has a source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ConvertV02ToV1([]byte(tc.in))
			wantInputError(t, err, tc.want)
		})
	}
}

func TestConvertStatementV02ToV1(t *testing.T) {
	raw, err := os.ReadFile("testdata/buildkit-v0.2-statement.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ConvertStatementV02ToV1(raw)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStatement(got)
	if err != nil {
		t.Fatal(err)
	}
	if st.Type != StatementTypeV1 || st.PredicateType != PredicateSLSAProvenanceV1 {
		t.Errorf("statement %s / %s", st.Type, st.PredicateType)
	}
	if len(st.Subject) != 1 || st.Subject[0].Name != "pkg:docker/ghcr.io/example/fleet@v0.1.0?platform=linux%2Famd64" ||
		!st.HasSubjectDigest("sha256", hexA) {
		t.Errorf("subjects not kept: %+v", st.Subject)
	}
	want, _ := ConvertV02ToV1(readStatementPredicate(t, "testdata/buildkit-v0.2-statement.json"))
	if string(st.Predicate) != string(want) {
		t.Error("statement predicate is not the converted predicate")
	}

	// A v1 statement is not converted again.
	_, err = ConvertStatementV02ToV1(got)
	wantInputError(t, err, "want https://slsa.dev/provenance/v0.2")
}
