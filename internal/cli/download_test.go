package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/attest"
)

// downloadPolicy trusts the key at PUB for example/fleet and requires its
// SLSA v1 provenance on PLATFORMS.
const downloadPolicy = `apiVersion: seal.dev/v1alpha1
kind: Policy
trust:
  keys:
    release: {path: PUB}
rules:
  - name: release
    images: ["HOST/example/**"]
    signatures:
      authorities:
        - key: release
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        platforms: PLATFORMS
`

// `seal download --policy` on a BuildKit release (Distribution registry)
// whose index is signed by the release key, amd64's provenance attested by
// the release key and arm64's by another key: under a policy requiring
// provenance on amd64 only, amd64 writes exactly its verified predicate
// (not BuildKit's unsigned one) and arm64 is refused (exit 1, nothing on
// stdout); under a policy requiring it on every platform the image fails
// (exit 1, the verification's reasons on stderr, nothing on stdout).
// Without --policy, arm64 lists the other key's attestation and BuildKit's,
// marked unsigned. A kind the rule does not require is exit 1.
func TestDownloadPolicyCLI(t *testing.T) {
	prefix, priv := cliKey(t)
	otherPrefix, otherPriv := cliKey(t)
	r := testenv.Distribution(t)
	_, platforms := cliRelease(t, r, "fleet", "v0.1.0")
	image := r.Ref("example/fleet:v0.1.0")
	dir := t.TempDir()
	predicate := func(who string) string {
		return `{"buildDefinition":{"buildType":"https://example.com/hand/v1","externalParameters":{"who":"` + who +
			`"}},"runDetails":{"builder":{"id":"https://example.com/builder"}}}`
	}
	var outputs []string
	run := func(args ...string) (int, string, string) {
		t.Helper()
		code, stdout, stderr := sealRun(t, "", args...)
		outputs = append(outputs, stdout, stderr)
		return code, stdout, stderr
	}
	for _, step := range [][]string{
		{"sign", "--key", prefix + ".key", image},
		{"attest", "--key", prefix + ".key", "--type", "slsaprovenance1", "--predicate", "AMD", "--platform", "linux/amd64", image},
		{"attest", "--key", otherPrefix + ".key", "--type", "slsaprovenance1", "--predicate", "ARM", "--platform", "linux/arm64", image},
	} {
		for i, a := range step {
			if a == "AMD" || a == "ARM" {
				step[i] = filepath.Join(dir, a+".json")
				if err := os.WriteFile(step[i], []byte(predicate(a)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		if code, _, stderr := run(step...); code != 0 {
			t.Fatalf("%s: exit %d: %s", step[0], code, stderr)
		}
	}
	policyFile := func(name, platforms string) string {
		f := filepath.Join(dir, name+".yaml")
		text := strings.NewReplacer("PUB", prefix+".pub", "HOST", r.Host, "PLATFORMS", platforms).Replace(downloadPolicy)
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	amdOnly, all := policyFile("amd64", "[linux/amd64]"), policyFile("all", "all")

	code, stdout, stderr := run("download", "provenance", "--policy", amdOnly, "--platform", "linux/amd64", image)
	if code != 0 || stdout != predicate("AMD")+"\n" {
		t.Fatalf("amd64 under the policy: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = run("download", "provenance", "--policy", amdOnly, "-o", "json", image)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc attest.Downloaded
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Rule != "release" || len(doc.Attestations) != 1 {
		t.Fatalf("json under the policy: %s", stdout)
	}
	if a := doc.Attestations[0]; a.Platform != "linux/amd64" || a.Subject != platforms["linux/amd64"] || !a.Verified || !a.Signed ||
		a.Identity != "key release" || len(a.Sources) != 1 || a.Sources[0].Format != "bundle" || !sameJSONValue(a.Predicate, []byte(predicate("AMD"))) {
		t.Errorf("verified amd64 provenance: %+v", a)
	}

	// Without --policy, arm64 has the other key's attestation and
	// BuildKit's unsigned one.
	code, stdout, stderr = run("download", "provenance", "--platform", "linux/arm64", "-o", "json", image)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	doc = attest.Downloaded{}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Attestations) != 2 {
		t.Fatalf("arm64 without a policy: %s", stdout)
	}
	if a := doc.Attestations[0]; !a.Signed || a.Verified || !sameJSONValue(a.Predicate, []byte(predicate("ARM"))) {
		t.Errorf("other key's arm64 provenance: %+v", a)
	}
	if a := doc.Attestations[1]; a.Signed || a.Verified || len(a.Sources) != 1 || a.Sources[0].Format != "buildkit" || a.Sources[0].Signed ||
		!sameJSONValue(a.Predicate, []byte(fixturePredicate(t, "fleet__v0.1.0-linux-arm64"))) {
		t.Errorf("BuildKit's arm64 provenance: %+v", a)
	}

	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"platform signed by another key", []string{"provenance", "--policy", amdOnly, "--platform", "linux/arm64", image}, 1,
			[]string{"no verified provenance attestation for linux/arm64", `policy rule "release": verified for linux/amd64 only`}},
		{"image that does not pass", []string{"provenance", "--policy", all, "--platform", "linux/amd64", image}, 1,
			[]string{"verify " + image + "@sha256:", "for linux/arm64", "does not verify with key release"}},
		{"image that does not pass, json", []string{"provenance", "--policy", all, "-o", "json", image}, 1,
			[]string{"does not verify with key release"}},
		{"kind the rule does not require", []string{"sbom", "--policy", amdOnly, image}, 1,
			[]string{`policy rule "release" requires no sbom attestation, so none was verified (it requires https://slsa.dev/provenance/v1)`}},
		{"platform the image lacks", []string{"provenance", "--policy", amdOnly, "--platform", "linux/s390x", image}, 2,
			[]string{"no platform linux/s390x (it has linux/amd64, linux/arm64)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(append([]string{"download"}, tc.args...)...)
			t.Log(stderr)
			if code != tc.code || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "seal: ") {
				t.Fatalf("exit %d, stdout %q, stderr %q: want exit %d, one line on stderr", code, stdout, stderr, tc.code)
			}
			for _, w := range tc.wants {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
		})
	}
	assertNoSecrets(t, outputs, keyTestPassword, priv, otherPriv)
}
