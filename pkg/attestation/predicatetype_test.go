package attestation

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seal-dev/seal/internal/testenv"
)

func TestPredicateTypeFor(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"slsaprovenance1", "https://slsa.dev/provenance/v1"},
		{"slsaprovenance02", "https://slsa.dev/provenance/v0.2"},
		{"slsaprovenance", "https://slsa.dev/provenance/v0.2"},
		{"spdxjson", "https://spdx.dev/Document"},
		{"spdx", "https://spdx.dev/Document"},
		{"cyclonedx", "https://cyclonedx.org/bom"},
		{"vuln", "https://cosign.sigstore.dev/attestation/vuln/v1"},
		{"custom", "https://cosign.sigstore.dev/attestation/v1"},
		{"link", "https://in-toto.io/Link/v1"},
		{"openvex", "https://openvex.dev/ns"},
		{"https://example.com/my-predicate/v1", "https://example.com/my-predicate/v1"},
		{"https://slsa.dev/verification_summary/v1", "https://slsa.dev/verification_summary/v1"},
		{"urn:example:predicate", "urn:example:predicate"},
	} {
		got, err := PredicateTypeFor(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("PredicateTypeFor(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "slsa", "SLSAPROVENANCE1", "/just/a/path", "https://", "https://x y"} {
		_, err := PredicateTypeFor(bad)
		wantInputError(t, err, "not a URI nor a known name", "slsaprovenance1")
	}
}

// TestPredicateTypesMatchCosign asks the real cosign v3.1.3 which URI each
// short name stands for (attest-blob with a throwaway key, no network) and
// compares with seal's table, so the two tools cannot drift apart silently.
// The statements cosign writes are also read back with ParseStatement.
func TestPredicateTypesMatchCosign(t *testing.T) {
	cosign := testenv.Tool(t, "cosign")
	dir := t.TempDir()
	env := append(os.Environ(), "COSIGN_PASSWORD=", "HOME="+dir, "TUF_ROOT="+filepath.Join(dir, "tuf"))
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(cosign, args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("generate-key-pair")
	if err := os.WriteFile(filepath.Join(dir, "blob"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v1, err := os.ReadFile("testdata/github-actions.provenance.json")
	if err != nil {
		t.Fatal(err)
	}
	// cosign parses some types; give each a predicate it accepts.
	predicates := map[string]string{
		"slsaprovenance1":  string(v1),
		"slsaprovenance":   `{"builder":{"id":"b"},"buildType":"t"}`,
		"slsaprovenance02": `{"builder":{"id":"b"},"buildType":"t"}`,
		"link":             `{"_type":"link","name":"n","materials":{},"products":{},"byproducts":{},"command":[],"environment":{}}`,
		"spdx":             `{"spdxVersion":"SPDX-2.3"}`,
		"spdxjson":         `{"spdxVersion":"SPDX-2.3"}`,
		"cyclonedx":        `{"bomFormat":"CycloneDX"}`,
	}
	names := PredicateTypeNames()
	if len(names) != 10 {
		t.Errorf("table has %d names, cosign v3.1.3 has 10: %v", len(names), names)
	}
	for _, n := range names {
		p, ok := predicates[n]
		if !ok {
			p = `{"k":"v"}`
		}
		pf := filepath.Join(dir, n+".json")
		if err := os.WriteFile(pf, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
		bundle := filepath.Join(dir, n+".bundle")
		run("attest-blob", "--key", "cosign.key", "--type", n, "--predicate", pf, "--tlog-upload=false",
			"--use-signing-config=false", "--bundle", bundle, "-y", "blob")
		raw, err := os.ReadFile(bundle)
		if err != nil {
			t.Fatal(err)
		}
		var b struct {
			DSSE struct {
				Payload string `json:"payload"`
			} `json:"dsseEnvelope"`
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		payload, err := base64.StdEncoding.DecodeString(b.DSSE.Payload)
		if err != nil {
			t.Fatal(err)
		}
		st, err := ParseStatement(payload)
		if err != nil {
			t.Fatalf("%s: cosign's statement: %v", n, err)
		}
		if want := PredicateTypes[n]; st.PredicateType != want {
			t.Errorf("--type %s: cosign writes %s, seal says %s", n, st.PredicateType, want)
		}
	}
}
