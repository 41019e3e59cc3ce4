package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/internal/registry"
	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/attest"
	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/oci"
)

// cliKey generates a cosign-format key pair with `seal key generate` and
// returns the private key file's path prefix and its PEM (for the secret
// scan); SEAL_PASSWORD and COSIGN_PASSWORD are set for the test.
func cliKey(t *testing.T) (prefix string, priv string) {
	t.Helper()
	t.Setenv("SEAL_PASSWORD", keyTestPassword)
	t.Setenv("COSIGN_PASSWORD", keyTestPassword)
	prefix = filepath.Join(t.TempDir(), "release")
	if code, _, stderr := sealRun(t, "", "key", "generate", "--output-prefix", prefix); code != 0 {
		t.Fatal(stderr)
	}
	b, err := os.ReadFile(prefix + ".key")
	if err != nil {
		t.Fatal(err)
	}
	return prefix, string(b)
}

// cliRelease pushes the two fleet fixtures of layout ("fleet" or
// "oldlayout") and merges them with `seal index create` into repo:tag. It
// returns the index by digest and the platform manifests' digests.
func cliRelease(t *testing.T, r *testenv.Registry, component, tag string) (name.Digest, map[string]string) {
	t.Helper()
	repo := "example/" + component
	r.PushRelease(t, repo, component+"__"+tag+"-linux-amd64", component+"__"+tag+"-linux-arm64")
	code, stdout, stderr := sealRun(t, "", "index", "create", "-o", "json", r.Ref(repo+":"+tag),
		r.Ref(repo+":"+tag+"-linux-amd64"), r.Ref(repo+":"+tag+"-linux-arm64"))
	if code != 0 {
		t.Fatalf("index create: %s", stderr)
	}
	var doc struct {
		Digest    string `json:"digest"`
		Manifests []struct{ Digest, Platform, Kind string }
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	platforms := map[string]string{}
	for _, m := range doc.Manifests {
		if m.Kind == "image" {
			platforms[m.Platform] = m.Digest
		}
	}
	return mustDigest(t, r.Ref(repo+"@"+doc.Digest)), platforms
}

// cosignRun runs the pinned cosign with a private HOME and the passwords
// of the test environment.
func cosignRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, "cosign"), args...)
	home := t.TempDir()
	cmd.Dir = home
	cmd.Env = []string{"HOME=" + home, "TUF_ROOT=" + home + "/.sigstore", "PATH=" + os.Getenv("PATH"),
		"COSIGN_PASSWORD=" + os.Getenv("COSIGN_PASSWORD")}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// cosignVerifyAttestation runs `cosign verify-attestation --key` and
// returns the predicates of the statements it verified.
func cosignVerifyAttestation(t *testing.T, pub, typ, ref string, legacy bool) ([]json.RawMessage, string, error) {
	t.Helper()
	args := []string{"verify-attestation", "--key", pub, "--type", typ, "--insecure-ignore-tlog=true", "--allow-insecure-registry"}
	if legacy {
		args = append(args, "--new-bundle-format=false")
	}
	out, err := cosignRun(t, append(args, ref)...)
	if err != nil {
		return nil, out, err
	}
	var preds []json.RawMessage
	for _, line := range strings.Split(out, "\n") {
		var env struct{ Payload string }
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &env) != nil || env.Payload == "" {
			continue
		}
		p, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			t.Fatal(err)
		}
		st, err := attestation.ParseStatement(p)
		if err != nil {
			t.Fatal(err)
		}
		if !st.HasSubjectDigest("sha256", ref[strings.LastIndex(ref, ":")+1:]) {
			t.Errorf("cosign verified a statement about %v for %s", st.SubjectDigests(), ref)
		}
		preds = append(preds, st.Predicate)
	}
	return preds, out, nil
}

// fixturePredicate is the compact predicate of a fixture's provenance.
func fixturePredicate(t *testing.T, fixture string) string {
	t.Helper()
	dir := filepath.Join(testenv.Fixture(t, fixture), "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if st, err := attestation.ParseStatement(raw); err == nil && bytes.Contains(raw, []byte(`"predicateType"`)) {
			return compactJSON(t, st.Predicate)
		}
	}
	t.Fatalf("no statement in %s", fixture)
	return ""
}

func compactJSON(t *testing.T, raw []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func sameJSONValue(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// attachedTo lists everything attached to ds, to check a failed command
// pushed nothing.
func attachedTo(t *testing.T, c *oci.Client, ds ...name.Digest) string {
	t.Helper()
	var b strings.Builder
	for _, d := range ds {
		att, err := c.Attached(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(d.DigestStr() + ":")
		for _, r := range att.Referrers {
			b.WriteString(" " + r.Digest.String())
		}
		for _, l := range att.Legacy {
			b.WriteString(" " + l.Tag.TagStr() + "=" + l.Descriptor.Digest.String())
		}
		b.WriteString("\n")
	}
	return b.String()
}

// The Done-when of `seal attest --from-buildkit`: on the BuildKit fixtures
// (both layouts, both registry kinds), one signed provenance per platform,
// attached to its platform manifest; real cosign verify-attestation
// accepts each in both formats; `seal download provenance --platform
// linux/arm64` writes exactly arm64's predicate; `seal inspect` shows the
// signed attestations under each platform. Nothing printed holds the key
// or its password.
func TestAttestFromBuildKitCLI(t *testing.T) {
	prefix, priv := cliKey(t)
	var outputs []string
	for _, r := range testenv.Registries(t) {
		for _, layout := range []struct{ component, tag string }{{"fleet", "v0.1.0"}, {"oldlayout", "v1"}} {
			t.Run(r.Name+"/"+layout.component, func(t *testing.T) {
				top, platforms := cliRelease(t, r, layout.component, layout.tag)
				image := r.Ref("example/" + layout.component + ":" + layout.tag)
				code, stdout, stderr := sealRun(t, "", "attest", "--key", prefix+".key", "--from-buildkit", "--format", "both", image)
				outputs = append(outputs, stdout, stderr)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				var want []string
				for _, p := range []string{"linux/amd64", "linux/arm64"} {
					ref := top.Context().Digest(platforms[p]).String()
					for _, f := range []string{"bundle", "legacy"} {
						want = append(want, ref+" attested https://slsa.dev/provenance/v1 ("+f+", "+p+")")
					}
				}
				if got := strings.Split(strings.TrimSpace(stdout), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("stdout:\n%s\nwant:\n%s", stdout, strings.Join(want, "\n"))
				}

				for p, d := range platforms {
					fixture := layout.component + "__" + layout.tag + "-" + strings.ReplaceAll(p, "/", "-")
					for _, legacy := range []bool{false, true} {
						preds, out, err := cosignVerifyAttestation(t, prefix+".pub", "slsaprovenance1", top.Context().Digest(d).String(), legacy)
						outputs = append(outputs, out)
						if err != nil {
							t.Fatalf("cosign verify-attestation %s (legacy %v): %v\n%s", p, legacy, err, out)
						}
						if len(preds) != 1 || compactJSON(t, preds[0]) != fixturePredicate(t, fixture) {
							t.Errorf("%s (legacy %v): cosign verified %d predicates, not exactly the fixture's", p, legacy, len(preds))
						}
					}
				}

				code, stdout, stderr = sealRun(t, "", "download", "provenance", "--platform", "linux/arm64", image)
				outputs = append(outputs, stdout, stderr)
				if code != 0 {
					t.Fatalf("download: exit %d: %s", code, stderr)
				}
				arm := fixturePredicate(t, layout.component+"__"+layout.tag+"-linux-arm64")
				if !sameJSONValue([]byte(strings.TrimSpace(stdout)), []byte(arm)) || strings.Count(stdout, "\n") != 1 {
					t.Fatalf("download --platform linux/arm64 did not write exactly arm64's predicate:\n%.300s", stdout)
				}

				code, stdout, stderr = sealRun(t, "", "inspect", image)
				outputs = append(outputs, stdout, stderr)
				if code != 0 {
					t.Fatal(stderr)
				}
				for _, p := range []string{"linux/amd64", "linux/arm64"} {
					// The lines below the platform's, up to the next platform.
					var under []string
					in := false
					for _, line := range strings.Split(stdout, "\n") {
						if strings.Contains(line, " image linux/") {
							in = strings.Contains(line, platforms[p]+" image "+p)
							continue
						}
						if in {
							under = append(under, line)
						}
					}
					block := strings.Join(under, "\n")
					if !strings.Contains(block, " bundle https://slsa.dev/provenance/v1") ||
						!strings.Contains(block, " legacy-att https://slsa.dev/provenance/v1 (tag sha256-"+platforms[p][7:]+".att)") {
						t.Errorf("inspect does not show %s's signed provenance under it:\n%s", p, stdout)
					}
				}
			})
		}
	}
	assertNoSecrets(t, outputs, keyTestPassword, priv)
}

// A provenance generated from a recorded GitHub Actions environment with
// `seal provenance generate` attaches with `seal attest` (predicate from
// stdin), to the index and, with --platform, to one platform manifest;
// cosign verifies it and the json result says where it went.
func TestAttestGitHubProvenanceCLI(t *testing.T) {
	prefix, priv := cliKey(t)
	setGitHubEnv(t)
	code, pred, stderr := sealRun(t, "", "provenance", "generate")
	if code != 0 {
		t.Fatal(stderr)
	}
	r := testenv.GGCR(t)
	top, platforms := cliRelease(t, r, "fleet", "v0.1.0")
	var outputs []string
	code, stdout, stderr := sealRun(t, pred, "attest", "--key", prefix+".key", "--type", "slsaprovenance1", "--predicate", "-",
		"--platform", "linux/amd64", "-o", "json", r.Ref("example/fleet:v0.1.0"), top.String())
	outputs = append(outputs, stdout, stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res attestOutput
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	// Both arguments name the same index: the amd64 manifest is attested once.
	if len(res.Results) != 1 || res.Results[0].Digest != platforms["linux/amd64"] || res.Results[0].Index != top.DigestStr() ||
		res.Results[0].Platform != "linux/amd64" || res.Results[0].Format != "bundle" || !strings.HasPrefix(res.Results[0].Attestation, "sha256:") {
		t.Fatalf("results %s", stdout)
	}
	file := filepath.Join(t.TempDir(), "provenance.json")
	if err := os.WriteFile(file, []byte(pred), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = sealRun(t, "", "attest", "--key", prefix+".key", "--type", "https://slsa.dev/provenance/v1", "--predicate", file, "--format", "legacy", top.String())
	outputs = append(outputs, stdout, stderr)
	if code != 0 || stdout != top.String()+" attested https://slsa.dev/provenance/v1 (legacy)\n" {
		t.Fatalf("exit %d: %q %s", code, stdout, stderr)
	}
	for _, tc := range []struct {
		ref    string
		legacy bool
	}{{top.Context().Digest(platforms["linux/amd64"]).String(), false}, {top.String(), true}} {
		preds, out, err := cosignVerifyAttestation(t, prefix+".pub", "slsaprovenance1", tc.ref, tc.legacy)
		outputs = append(outputs, out)
		if err != nil || len(preds) != 1 || !sameJSONValue(preds[0], []byte(pred)) {
			t.Fatalf("cosign verify-attestation %s: %v\n%s", tc.ref, err, out)
		}
	}
	assertNoSecrets(t, outputs, keyTestPassword, priv)
}

// Bad inputs: each is one line on stderr with the exit code of CLI.md, and
// nothing is pushed — a predicate that is not JSON, a BuildKit statement
// about another manifest, a platform the image lacks, an attestation layer
// that does not match its digest (the registry's storage tampered with).
func TestAttestCLIErrors(t *testing.T) {
	prefix, priv := cliKey(t)
	dir := t.TempDir()
	r := testenv.Distribution(t)
	c := oci.NewClient()
	top, platforms := cliRelease(t, r, "fleet", "v0.1.0")
	amd := top.Context().Digest(platforms["linux/amd64"])
	arm := top.Context().Digest(platforms["linux/arm64"])

	// An index whose attestation manifest lists amd64's statement for the
	// arm64 manifest: the amd64 fixture index with its attestation
	// descriptor re-pointed at arm64 and a subject-less copy of the
	// attestation manifest (the older layout, so only the statement's
	// subject can tell).
	mismatch := pushMismatch(t, c, top, platforms)

	// A registry with storage on disk, whose statement blob is then
	// altered in place.
	root := t.TempDir()
	srv, err := registry.Start(context.Background(), registry.Config{Addr: "127.0.0.1:0", RootDir: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	fixture := "fleet__v0.1.0-linux-arm64"
	tampered := mustDigest(t, srv.Addr()+"/example/fleet@"+testenv.PushLayout(t, testenv.Fixture(t, fixture), srv.Addr()+"/example/fleet:arm64").String())
	tamperStatement(t, root, fixture)

	notJSON := filepath.Join(dir, "not.json")
	if err := os.WriteFile(notJSON, []byte("builder: me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(`{"spdxVersion":"SPDX-2.3"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	key := prefix + ".key"
	watched := []name.Digest{top, amd, arm, mismatch, tampered, tampered.Context().Digest(platforms["linux/arm64"])}
	before := attachedTo(t, c, watched...)
	var outputs []string
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"predicate not JSON", []string{"--key", key, "--type", "slsaprovenance1", "--predicate", notJSON, top.String()}, 2, []string{notJSON, "not a JSON object"}},
		{"predicate file missing", []string{"--key", key, "--type", "spdxjson", "--predicate", filepath.Join(dir, "nope.json"), top.String()}, 2, []string{"nope.json"}},
		{"unknown type", []string{"--key", key, "--type", "provenance", "--predicate", good, top.String()}, 2, []string{`"provenance"`, "slsaprovenance1"}},
		{"no predicate", []string{"--key", key, "--type", "spdxjson", top.String()}, 2, []string{"--from-buildkit"}},
		{"buildkit and a predicate", []string{"--key", key, "--from-buildkit", "--type", "spdxjson", "--predicate", good, top.String()}, 2, []string{"conflict"}},
		{"slsa version without buildkit", []string{"--key", key, "--type", "spdxjson", "--predicate", good, "--slsa-version", "1", top.String()}, 2, []string{"--slsa-version"}},
		{"bad format", []string{"--key", key, "--from-buildkit", "--format", "zip", top.String()}, 2, []string{"--format"}},
		{"bad platform", []string{"--key", key, "--from-buildkit", "--platform", "arm64", top.String()}, 2, []string{"OS/ARCH"}},
		{"no signer", []string{"--from-buildkit", top.String()}, 2, []string{"--key FILE or --keyless"}},
		{"platform the image lacks", []string{"--key", key, "--from-buildkit", "--platform", "linux/s390x", top.String()}, 2,
			[]string{top.String(), "no platform linux/s390x (it has linux/amd64, linux/arm64)"}},
		{"statement about another manifest", []string{"--key", key, "--from-buildkit", "--format", "both", top.String(), mismatch.String()}, 2,
			[]string{"statement subject sha256:" + amd.DigestStr()[7:], "is not the platform manifest " + arm.DigestStr()}},
		{"tampered attestation layer", []string{"--key", key, "--from-buildkit", tampered.String()}, 2,
			[]string{"registry served content with digest"}},
		{"image that does not exist", []string{"--key", key, "--from-buildkit", r.Ref("example/fleet:v9")}, 2, []string{"example/fleet:v9", "not found"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := sealRun(t, "", append([]string{"attest"}, tc.args...)...)
			outputs = append(outputs, stdout, stderr)
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
	if after := attachedTo(t, c, watched...); after != before {
		t.Fatalf("a failed attest pushed something:\n%s\nthen\n%s", before, after)
	}
	// download refuses the tampered layer too.
	code, stdout, stderr := sealRun(t, "", "download", "provenance", tampered.String())
	outputs = append(outputs, stdout, stderr)
	if code != 2 || stdout != "" || !strings.Contains(stderr, "registry served content with digest") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("download of a tampered layer: exit %d %q", code, stderr)
	}
	assertNoSecrets(t, outputs, keyTestPassword, priv)
}

// pushMismatch pushes to top's repository an index pairing the arm64
// manifest with an attestation manifest that holds amd64's statement: a
// copy of amd64's without its subject (the older layout has none, so only
// the statement's own subject can tell), annotated as arm64's.
func pushMismatch(t *testing.T, c *oci.Client, top name.Digest, platforms map[string]string) name.Digest {
	t.Helper()
	ctx := context.Background()
	m, err := c.Manifest(ctx, top)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := m.Index()
	if err != nil {
		t.Fatal(err)
	}
	var keep []v1.Descriptor
	for _, d := range idx.Manifests {
		switch {
		case d.Digest.String() == platforms["linux/arm64"]:
			keep = append(keep, d)
		case d.Annotations[attestation.DockerReferenceDigestAnnotation] == platforms["linux/amd64"]:
			am, err := c.Manifest(ctx, top.Context().Digest(d.Digest.String()))
			if err != nil {
				t.Fatal(err)
			}
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(am.Raw, &raw); err != nil {
				t.Fatal(err)
			}
			delete(raw, "subject")
			b, _ := json.Marshal(raw)
			nd, err := c.PushManifest(ctx, top.Context(), b, string(am.Descriptor.MediaType))
			if err != nil {
				t.Fatal(err)
			}
			d.Digest, d.Size = nd.Digest, nd.Size
			d.Annotations = map[string]string{
				attestation.DockerReferenceTypeAnnotation:   attestation.DockerReferenceTypeAttestation,
				attestation.DockerReferenceDigestAnnotation: platforms["linux/arm64"],
			}
			keep = append(keep, d)
		}
	}
	if len(keep) != 2 {
		t.Fatalf("index %s: kept %d manifests", top, len(keep))
	}
	idx.Manifests = keep
	b, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.PushManifest(ctx, top.Context(), b, string(idx.MediaType))
	if err != nil {
		t.Fatal(err)
	}
	return top.Context().Digest(d.Digest.String())
}

// tamperStatement flips one byte of the fixture's statement blob in the
// registry's storage under root, keeping its size.
func tamperStatement(t *testing.T, root, fixture string) {
	t.Helper()
	dir := filepath.Join(testenv.Fixture(t, fixture), "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if _, err := attestation.ParseStatement(raw); err != nil {
			continue
		}
		data := filepath.Join(root, "docker", "registry", "v2", "blobs", "sha256", e.Name()[:2], e.Name(), "data")
		b, err := os.ReadFile(data)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(b, []byte(`"https://slsa.dev/`))
		b[i+2] = 'X'
		if err := os.WriteFile(data, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no statement in %s", fixture)
}

// `seal download`: BuildKit's unsigned provenance marked signed:false in
// json; cosign-made attestations (bundle and .att) read back; a platform
// the image lacks is exit 2 naming those it has, with nothing on stdout
// (download_test.go tests --policy).
func TestDownloadCLI(t *testing.T) {
	prefix, priv := cliKey(t)
	r := testenv.GGCR(t)
	top, platforms := cliRelease(t, r, "fleet", "v0.1.0")
	image := r.Ref("example/fleet:v0.1.0")
	var outputs []string

	code, stdout, stderr := sealRun(t, "", "download", "provenance", "-o", "json", image)
	outputs = append(outputs, stdout, stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc attest.Downloaded
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Digest != top.DigestStr() || len(doc.Attestations) != 2 {
		t.Fatalf("json %s", stdout)
	}
	for _, a := range doc.Attestations {
		if a.Signed || a.Subject != platforms[a.Platform] || len(a.Sources) != 1 || a.Sources[0].Format != "buildkit" || a.Sources[0].Signed {
			t.Errorf("unsigned BuildKit provenance shown as %+v", a)
		}
	}
	if !strings.Contains(stdout, `"signed": false`) {
		t.Error(`json lacks "signed": false`)
	}

	// cosign attests amd64 in both formats with seal's key file.
	pred := `{"buildDefinition":{"buildType":"https://example.com/hand/v1","externalParameters":{"who":"cosign"}},"runDetails":{"builder":{"id":"https://example.com/cosign"}}}`
	predFile := filepath.Join(t.TempDir(), "pred.json")
	if err := os.WriteFile(predFile, []byte(pred), 0o644); err != nil {
		t.Fatal(err)
	}
	amd := top.Context().Digest(platforms["linux/amd64"]).String()
	for _, extra := range [][]string{nil, {"--new-bundle-format=false"}} {
		out, err := cosignRun(t, append(append([]string{"attest", "--key", prefix + ".key", "--type", "slsaprovenance1", "--predicate", predFile,
			"--tlog-upload=false", "--use-signing-config=false", "--yes", "--allow-insecure-registry"}, extra...), amd)...)
		outputs = append(outputs, out)
		if err != nil {
			t.Fatalf("cosign attest %v: %v\n%s", extra, err, out)
		}
	}
	code, stdout, stderr = sealRun(t, "", "download", "provenance", "--platform", "linux/amd64", "-o", "json", image)
	outputs = append(outputs, stdout, stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	doc = attest.Downloaded{}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Attestations) != 2 {
		t.Fatalf("json %s", stdout)
	}
	if a := doc.Attestations[0]; !a.Signed || !sameJSONValue(a.Predicate, []byte(pred)) || len(a.Sources) != 2 ||
		a.Sources[0].Format != "bundle" || a.Sources[1].Format != "legacy" {
		t.Errorf("cosign's attestation read back as %+v", a)
	}
	code, stdout, _ = sealRun(t, "", "download", "attestation", "--platform", "linux/amd64", "--predicate-type", "slsaprovenance1", image)
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); code != 0 || len(lines) != 2 || lines[0] != compactJSON(t, []byte(pred)) ||
		lines[1] != fixturePredicate(t, "fleet__v0.1.0-linux-amd64") {
		t.Errorf("text download: exit %d\n%.400s", code, stdout)
	}

	for _, tc := range []struct {
		name  string
		args  []string
		wants []string
	}{
		{"platform the image lacks", []string{"provenance", "--platform", "linux/arm/v7", image}, []string{"no platform linux/arm/v7 (it has linux/amd64, linux/arm64)"}},
		{"policy file missing", []string{"provenance", "--policy", filepath.Join(t.TempDir(), "nope.yaml"), image}, []string{"nope.yaml"}},
		{"trusted root without a policy", []string{"provenance", "--trusted-root", "root.json", image}, []string{"--trusted-root is for --policy"}},
		{"bad kind", []string{"sboms", image}, []string{`"sboms"`}},
		{"kind and predicate type disagree", []string{"sbom", "--predicate-type", "slsaprovenance1", image}, []string{"not a sbom type"}},
		{"no such image", []string{"provenance", r.Ref("example/fleet:v9")}, []string{"not found"}},
		{"nothing of the kind", []string{"sbom", image}, []string{"no sbom attestation", "linux/amd64, linux/arm64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := sealRun(t, "", append([]string{"download"}, tc.args...)...)
			outputs = append(outputs, stdout, stderr)
			t.Log(stderr)
			if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("exit %d stdout %q stderr %q, want exit 2 and one line", code, stdout, stderr)
			}
			for _, w := range tc.wants {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
		})
	}
	assertNoSecrets(t, outputs, keyTestPassword, priv)
}
