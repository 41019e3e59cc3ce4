// Package docs_test checks that the release-pipeline examples in docs/ are
// what they claim to be: the goreleaser configuration passes the real
// goreleaser's `goreleaser check`, every seal command line in the examples
// exists in the CLI contract (CLI.md) and works on digests, and every
// example policy loads with seal's policy package and governs the images
// its recipe says it does.
package docs_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"gopkg.in/yaml.v3"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/policy"
)

// cliFlags is the command-line contract of CLI.md: every command and the
// flags it documents (long names, without "--"). The global flags apply to
// every command. Keep it in step with CLI.md, not with the implementation:
// the docs may only promise what the contract promises.
var cliFlags = map[string][]string{
	"registry serve":       {"addr", "root", "memory", "htpasswd", "tls-cert", "tls-key"},
	"index create":         {"annotation", "platform", "dry-run", "output"},
	"inspect":              {"output"},
	"key generate":         {"output-prefix", "force"},
	"sign":                 {"key", "keyless", "recursive", "format", "annotation", "concurrency", "identity-token", "fulcio-url", "timestamp-url", "rekor-url", "signing-config"},
	"attest":               {"key", "keyless", "type", "predicate", "from-buildkit", "platform", "format", "identity-token", "fulcio-url", "timestamp-url", "rekor-url", "signing-config"},
	"provenance generate":  {"subject", "from"},
	"verify":               {"policy", "key", "certificate-identity", "certificate-identity-regexp", "certificate-oidc-issuer", "certificate-oidc-issuer-regexp", "trusted-root", "images-from", "concurrency", "output", "vsa-out"},
	"copy":                 {"policy", "images-from", "concurrency"},
	"download provenance":  {"platform", "predicate-type", "policy"},
	"download sbom":        {"platform", "predicate-type", "policy"},
	"download attestation": {"platform", "predicate-type", "policy"},
	"demo":                 {"keep"},
}

var globalFlags = []string{"insecure-registry"}

// sealCall is one seal command line found in an example.
type sealCall struct {
	where   string   // file and location, for messages
	command string   // "index create", "sign", …
	flags   []string // long flag names, in order
	args    []string // positional arguments
}

func (c sealCall) has(flag string) bool { return slices.Contains(c.flags, flag) }

// parseSeal splits the words after `seal` into command, flags and
// positional arguments, and fails the test for a command or flag CLI.md
// does not have. Flag values are taken as the following word unless the
// flag is a boolean of the contract.
func parseSeal(t *testing.T, where string, words []string) sealCall {
	t.Helper()
	booleans := []string{"memory", "dry-run", "force", "keyless", "recursive", "from-buildkit", "keep"}
	c := sealCall{where: where}
	if len(words) == 0 {
		t.Fatalf("%s: `seal` without a command", where)
	}
	c.command = words[0]
	rest := words[1:]
	if _, ok := cliFlags[c.command]; !ok && len(rest) > 0 {
		c.command += " " + rest[0]
		rest = rest[1:]
	}
	allowed, ok := cliFlags[c.command]
	if !ok {
		t.Fatalf("%s: `seal %s` is not a command of CLI.md", where, strings.Join(words, " "))
	}
	for i := 0; i < len(rest); i++ {
		w := rest[i]
		if !strings.HasPrefix(w, "--") {
			c.args = append(c.args, w)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(w, "--"), "=")
		if !slices.Contains(allowed, name) && !slices.Contains(globalFlags, name) {
			t.Errorf("%s: `seal %s` has no flag --%s in CLI.md", where, c.command, name)
		}
		c.flags = append(c.flags, name)
		if !hasValue && !slices.Contains(booleans, name) {
			i++ // the flag's value
		}
	}
	return c
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func decodeYAML(t *testing.T, path string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(readFile(t, path), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// --- goreleaser ---------------------------------------------------------

const goreleaserConfig = "examples/.goreleaser.yaml"

// runGoreleaserCheck runs the real goreleaser's `check` on config, with a
// scratch HOME and working directory and every proxy pointing at a closed
// loopback port, so nothing leaves the machine.
func runGoreleaserCheck(t *testing.T, config string) (string, error) {
	t.Helper()
	bin := testenv.Tool(t, "goreleaser")
	abs, err := filepath.Abs(config)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cmd := exec.Command(bin, "check", "--config", abs)
	cmd.Dir = t.TempDir() // not a git repository: check must not need one
	cmd.Env = []string{
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"PATH=" + os.Getenv("PATH"),
		"TMPDIR=" + t.TempDir(),
		"HTTPS_PROXY=http://127.0.0.1:9",
		"HTTP_PROXY=http://127.0.0.1:9",
		"https_proxy=http://127.0.0.1:9",
		"http_proxy=http://127.0.0.1:9",
		"NO_COLOR=1",
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// notices are the lines of goreleaser's output that announce a deprecation:
// formal ones ("DEPRECATED: …", which also fail `check`) and the notice
// that a pipe is being phased out (which does not).
func notices(out string) []string {
	var n []string
	for _, line := range strings.Split(out, "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "deprecat") || strings.Contains(l, "phased out") {
			n = append(n, strings.TrimSpace(line))
		}
	}
	return n
}

func TestGoreleaserCheck(t *testing.T) {
	out, err := runGoreleaserCheck(t, goreleaserConfig)
	if err != nil {
		t.Fatalf("goreleaser check %s: %v\n%s", goreleaserConfig, err, out)
	}
	if n := notices(out); len(n) > 0 {
		t.Errorf("goreleaser check reports deprecations: %q\n%s", n, out)
	}
	if !strings.Contains(out, "1 configuration file(s) validated") {
		t.Errorf("goreleaser check did not validate the file:\n%s", out)
	}
}

// TestGoreleaserCheckCatchesDeprecation shows the check above can fail: the
// same configuration with a deprecated property, or with the legacy
// `dockers` + `docker_manifests` pipes (the pair that fails on BuildKit
// attestation indexes), is flagged.
func TestGoreleaserCheckCatchesDeprecation(t *testing.T) {
	base := string(readFile(t, goreleaserConfig))
	for _, c := range []struct {
		name, config string
		wantExit     bool // goreleaser check itself fails
	}{
		{"archives.format", strings.Replace(base, "formats: [tar.gz]", "format: tar.gz", 1), true},
		{"dockers and docker_manifests", base + `
dockers:
  - image_templates: ["ghcr.io/example/app:{{ .Tag }}-amd64"]
    use: buildx
    build_flag_templates: ["--platform=linux/amd64"]
docker_manifests:
  - name_template: "ghcr.io/example/app:{{ .Tag }}"
    image_templates: ["ghcr.io/example/app:{{ .Tag }}-amd64"]
`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.config == base {
				t.Fatal("the edit did not apply")
			}
			path := filepath.Join(t.TempDir(), "legacy.yaml")
			if err := os.WriteFile(path, []byte(c.config), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := runGoreleaserCheck(t, path)
			if (err != nil) != c.wantExit {
				t.Errorf("goreleaser check: error %v, want an error: %v\n%s", err, c.wantExit, out)
			}
			if len(notices(out)) == 0 {
				t.Errorf("no deprecation notice found:\n%s", out)
			}
		})
	}
}

type goreleaserFile struct {
	DockersV2 []struct {
		ID        string   `yaml:"id"`
		Platforms []string `yaml:"platforms"`
		Tags      []string `yaml:"tags"`
		SBOM      string   `yaml:"sbom"`
		Flags     []string `yaml:"flags"`
	} `yaml:"dockers_v2"`
	Dockers         []any `yaml:"dockers"`
	DockerManifests []any `yaml:"docker_manifests"`
	DockerSigns     []struct {
		ID        string   `yaml:"id"`
		Cmd       string   `yaml:"cmd"`
		Args      []string `yaml:"args"`
		IDs       []string `yaml:"ids"`
		Artifacts string   `yaml:"artifacts"`
	} `yaml:"docker_signs"`
}

// TestGoreleaserSealSteps checks what `goreleaser check` cannot: that the
// image carries provenance and SBOM, and that seal signs and attests the
// digest buildx pushed, never a tag alone.
func TestGoreleaserSealSteps(t *testing.T) {
	var g goreleaserFile
	decodeYAML(t, goreleaserConfig, &g)
	if len(g.Dockers) > 0 || len(g.DockerManifests) > 0 {
		t.Error("the example uses dockers/docker_manifests; it should use dockers_v2")
	}
	images := map[string]bool{}
	for _, d := range g.DockersV2 {
		images[d.ID] = true
		if len(d.Platforms) < 2 {
			t.Errorf("dockers_v2 %s: %d platform(s), want a multi-platform image", d.ID, len(d.Platforms))
		}
		if d.SBOM != "true" {
			t.Errorf("dockers_v2 %s: sbom is %q, want true", d.ID, d.SBOM)
		}
		if !slices.Contains(d.Flags, "--provenance=mode=max") {
			t.Errorf("dockers_v2 %s: flags %q lack --provenance=mode=max", d.ID, d.Flags)
		}
	}
	if len(images) == 0 {
		t.Fatal("no dockers_v2 entry")
	}
	var signed, attested bool
	for _, s := range g.DockerSigns {
		where := goreleaserConfig + ": docker_signs " + s.ID
		if s.Cmd != "seal" {
			continue
		}
		// Only dockers_v2 images (the default selection, or "images"/"manifests"/"all",
		// which include them); and only ids that exist.
		if s.Artifacts != "" && !slices.Contains([]string{"images", "manifests", "all"}, s.Artifacts) {
			t.Errorf("%s: artifacts %q selects no images", where, s.Artifacts)
		}
		for _, id := range s.IDs {
			if !images[id] {
				t.Errorf("%s: ids names %q, not a dockers_v2 id", where, id)
			}
		}
		c := parseSeal(t, where, s.Args)
		if len(c.args) == 0 {
			t.Errorf("%s: no image argument", where)
		}
		for _, a := range c.args {
			if !strings.HasSuffix(a, "@${digest}") {
				t.Errorf("%s: image %q is not pinned by ${digest}", where, a)
			}
		}
		switch c.command {
		case "sign":
			signed = true
			if !c.has("recursive") {
				t.Errorf("%s: sign without --recursive leaves the platform manifests unsigned", where)
			}
		case "attest":
			attested = attested || c.has("from-buildkit")
		}
	}
	if !signed {
		t.Error("no docker_signs entry runs `seal sign`")
	}
	if !attested {
		t.Error("no docker_signs entry runs `seal attest --from-buildkit`")
	}
}

// --- GitHub Actions -----------------------------------------------------

const workflowFile = "examples/release.yml"

type workflow struct {
	Permissions map[string]string `yaml:"permissions"`
	Jobs        map[string]struct {
		Permissions map[string]string `yaml:"permissions"`
		Steps       []struct {
			ID   string            `yaml:"id"`
			Name string            `yaml:"name"`
			Uses string            `yaml:"uses"`
			Run  string            `yaml:"run"`
			With map[string]string `yaml:"with"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

var expression = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// words splits a command line the way action.yml does (on whitespace),
// with each ${{ … }} expression kept as one word.
func words(s string) []string {
	s = expression.ReplaceAllStringFunc(s, func(e string) string { return strings.ReplaceAll(e, " ", "") })
	return strings.Fields(s)
}

func TestWorkflow(t *testing.T) {
	var w workflow
	decodeYAML(t, workflowFile, &w)
	var calls []sealCall
	for name, job := range w.Jobs {
		perms := w.Permissions
		if job.Permissions != nil {
			perms = job.Permissions // a job's permissions replace the workflow's
		}
		var jobCalls []sealCall
		for _, s := range job.Steps {
			where := workflowFile + ": job " + name + " step " + s.Name
			switch {
			case strings.HasPrefix(s.Uses, "seal-dev/seal@"):
				if s.With["version"] == "" {
					t.Errorf("%s: the seal action without a pinned version", where)
				}
				jobCalls = append(jobCalls, parseSeal(t, where, words(s.With["args"])))
			case s.Run != "":
				for _, line := range strings.Split(s.Run, "\n") {
					f := words(line)
					if len(f) > 0 && f[0] == "seal" {
						jobCalls = append(jobCalls, parseSeal(t, where, f[1:]))
					}
				}
			case strings.HasPrefix(s.Uses, "docker/build-push-action@"):
				if s.With["provenance"] != "mode=max" || s.With["push"] != "true" {
					t.Errorf("%s: build-push-action with provenance %q, push %q; want mode=max, true", where, s.With["provenance"], s.With["push"])
				}
			}
		}
		for _, c := range jobCalls {
			if c.has("keyless") && perms["id-token"] != "write" {
				t.Errorf("%s: keyless, but job %s lacks permissions id-token: write", c.where, name)
			}
			if (c.command == "sign" || c.command == "attest" || c.command == "index create" || c.command == "copy") && perms["packages"] != "write" {
				t.Errorf("%s: pushes to ghcr.io, but job %s lacks permissions packages: write", c.where, name)
			}
		}
		calls = append(calls, jobCalls...)
	}

	// The release flow, each step on the digest `index create` printed.
	want := []struct {
		command string
		flags   []string
	}{
		{"index create", nil},
		{"sign", []string{"keyless", "recursive"}},
		{"attest", []string{"keyless", "from-buildkit"}},
		{"verify", []string{"policy"}},
		{"copy", []string{"policy"}},
	}
	for _, wc := range want {
		found := false
		for _, c := range calls {
			if c.command != wc.command {
				continue
			}
			ok := true
			for _, f := range wc.flags {
				ok = ok && c.has(f)
			}
			found = found || ok
		}
		if !found {
			t.Errorf("the workflow has no `seal %s` with --%s", wc.command, strings.Join(wc.flags, " --"))
		}
	}
	for _, c := range calls {
		if c.command == "index create" {
			continue
		}
		if len(c.args) == 0 || !strings.Contains(c.args[0], "steps.index.outputs.stdout") {
			t.Errorf("%s: `seal %s` works on %q, not on the digest `index create` printed", c.where, c.command, c.args)
		}
	}
}

type action struct {
	Inputs map[string]struct {
		Required bool   `yaml:"required"`
		Default  string `yaml:"default"`
	} `yaml:"inputs"`
	Runs struct {
		Using string `yaml:"using"`
		Steps []struct {
			Uses  string            `yaml:"uses"`
			Run   string            `yaml:"run"`
			Shell string            `yaml:"shell"`
			Env   map[string]string `yaml:"env"`
		} `yaml:"steps"`
	} `yaml:"runs"`
}

func TestAction(t *testing.T) {
	const file = "../action.yml"
	var a action
	decodeYAML(t, file, &a)
	if a.Runs.Using != "composite" {
		t.Errorf("runs.using is %q, want composite", a.Runs.Using)
	}
	for _, in := range []string{"version", "args"} {
		if _, ok := a.Inputs[in]; !ok {
			t.Errorf("no input %q", in)
		}
	}
	if !a.Inputs["args"].Required {
		t.Error("input args is not required")
	}
	var setupGo, install, run bool
	for _, s := range a.Runs.Steps {
		setupGo = setupGo || strings.HasPrefix(s.Uses, "actions/setup-go@")
		if s.Run == "" {
			continue
		}
		if s.Shell == "" {
			t.Errorf("a run step without shell (composite actions need one):\n%s", s.Run)
		}
		// Inputs reach scripts through env only: an expression in the
		// script text is shell injection.
		if strings.Contains(s.Run, "${{") {
			t.Errorf("a run step interpolates an expression into its script:\n%s", s.Run)
		}
		if strings.Contains(s.Run, `go install "github.com/seal-dev/seal/cmd/seal@$SEAL_VERSION"`) && s.Env["SEAL_VERSION"] == "${{ inputs.version }}" {
			install = true
		}
		if strings.Contains(s.Run, "seal $SEAL_ARGS") && s.Env["SEAL_ARGS"] == "${{ inputs.args }}" {
			run = true
		}
	}
	if !setupGo || !install || !run {
		t.Errorf("steps: setup-go %v, go install seal@version %v, run seal args %v; want all", setupGo, install, run)
	}
}

// --- policies -----------------------------------------------------------

// now is inside every example exception's validity.
var now = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// TestPolicies loads every example policy with seal's policy package and
// checks which rule governs which image, as the cookbook says.
func TestPolicies(t *testing.T) {
	type want struct {
		image     string
		rule      string // "" for no rule
		unmatched policy.Action
		exception bool
	}
	cases := map[string][]want{
		"github-release.yaml": {
			{image: "ghcr.io/example/app:v1.2.3@sha256:" + strings.Repeat("a", 64), rule: "github-release"},
			{image: "registry.example.com/example/app:v1.2.3", rule: "github-release"},
			{image: "ghcr.io/other/app:v1", unmatched: policy.Deny},
		},
		"key-signed.yaml": {
			{image: "registry.example.com/internal/team/db:1.0", rule: "internal-release"},
			{image: "registry.example.com/public/db:1.0", unmatched: policy.Deny},
		},
		"exception.yaml": {
			{image: "ghcr.io/example/server:v2.0.0", rule: "github-release"},
			{image: "ghcr.io/example/server-agent:v2.0.0", rule: "agent-built-by-server", exception: true},
		},
		"provenance-cel.yaml": {
			{image: "ghcr.io/example/app:v1.2.3", rule: "github-release"},
		},
		"migration-warn.yaml": {
			{image: "ghcr.io/example/server:v2.0.0", rule: "migrated"},
			{image: "ghcr.io/example/legacy:1.0", unmatched: policy.Warn},
		},
		"dockerhub.yaml": {
			{image: "example/app:v1.0.0", rule: "example-on-docker-hub"},
			{image: "docker.io/example/app:v1.0.0", rule: "example-on-docker-hub"},
			{image: "index.docker.io/example/app:v1.0.0", rule: "example-on-docker-hub"},
			{image: "example/tools:v3.1.0", rule: "example-tools"},
			{image: "nginx:1.27", unmatched: policy.Deny},
		},
	}
	files, err := filepath.Glob("examples/policies/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(cases) {
		t.Errorf("%d example policies, %d with expectations: keep them in step", len(files), len(cases))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			p, err := policy.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Warnings) > 0 {
				t.Errorf("warnings: %q", p.Warnings)
			}
			wants, ok := cases[filepath.Base(file)]
			if !ok {
				t.Fatal("no expectations for this policy")
			}
			for _, w := range wants {
				m, err := p.Match(w.image)
				if err != nil {
					t.Fatalf("match %s: %v", w.image, err)
				}
				if w.rule == "" {
					if m.Rule != nil || m.Unmatched != w.unmatched {
						t.Errorf("%s: rule %v, unmatched %q; want no rule, %q", w.image, m.Rule, m.Unmatched, w.unmatched)
					}
					continue
				}
				if m.Rule == nil || m.Rule.Name != w.rule {
					t.Errorf("%s: rule %v, want %s", w.image, m.Rule, w.rule)
					continue
				}
				req, err := m.Render(now)
				if err != nil {
					t.Errorf("%s: render: %v", w.image, err)
					continue
				}
				if (req.Exception != nil) != w.exception {
					t.Errorf("%s: exception %+v, want %v", w.image, req.Exception, w.exception)
				}
				if req.Exception != nil && req.Exception.Err() != nil {
					t.Errorf("%s: exception expired at %s: %v", w.image, now, req.Exception.Err())
				}
			}
		})
	}
}

// TestExceptionReport checks what the cookbook says the report shows for
// the server-agent exception: the server repository's identity, the
// reason and expiry, and after the expiry a failure that says so.
func TestExceptionReport(t *testing.T) {
	p, err := policy.Load("examples/policies/exception.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.Match("ghcr.io/example/server-agent:v2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	req, err := m.Render(now)
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Authorities) != 1 || req.Authorities[0].Keyless == nil {
		t.Fatalf("authorities %+v, want one keyless", req.Authorities)
	}
	if got := req.Authorities[0].String(); !strings.Contains(got, `example/server/`) || strings.Contains(got, "server-agent") {
		t.Errorf("authority %s: want the server repository's workflow", got)
	}
	if req.Exception == nil || req.Exception.Reason == "" || req.Exception.Expires != "2027-06-30" {
		t.Fatalf("exception %+v, want a reason and expiry 2027-06-30", req.Exception)
	}
	// The last day still holds; the day after fails with "exception expired".
	last, err := m.Render(time.Date(2027, 6, 30, 23, 59, 0, 0, time.UTC))
	if err != nil || last.Exception.Err() != nil {
		t.Errorf("on its expiry day: %v, %v", err, last.Exception.Err())
	}
	after, err := m.Render(time.Date(2027, 7, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if e := after.Exception.Err(); e == nil || !strings.Contains(e.Error(), "exception expired") {
		t.Errorf("after expiry: %v, want 'exception expired'", e)
	}
}

// TestProvenanceCondition evaluates the CEL recipe on the provenance real
// BuildKit wrote (testdata/buildkit), as is, and with the two fields buildx
// adds when it runs in GitHub Actions (builder id = the run URL, vcs source
// = the checked-out repository).
func TestProvenanceCondition(t *testing.T) {
	p, err := policy.Load("examples/policies/provenance-cel.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.Match("ghcr.io/example/fleet:v0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	req, err := m.Render(now)
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Attestations) != 1 {
		t.Fatalf("%d attestations, want 1", len(req.Attestations))
	}
	att := req.Attestations[0]
	raw := buildkitProvenance(t, "../testdata/buildkit/fleet__v0.1.0-linux-amd64")

	eval := func(edit func(pred map[string]any), sourceRepo string) (bool, error) {
		var st map[string]any
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		pred := st["predicate"].(map[string]any)
		if edit != nil {
			edit(pred)
		}
		var s certificate.Summary
		s.Extensions.SourceRepositoryURI = sourceRepo
		plat, _ := policy.ParsePlatform("linux/amd64")
		return att.Eval(map[string]any{
			policy.VarPredicate:   pred,
			policy.VarStatement:   st,
			policy.VarPlatform:    plat.Var(),
			policy.VarCertificate: policy.CertificateVar(s),
		})
	}
	inActions := func(repo string) func(map[string]any) {
		return func(pred map[string]any) {
			rd := pred["runDetails"].(map[string]any)
			rd["builder"] = map[string]any{"id": "https://github.com/example/fleet/actions/runs/123456"}
			md := rd["metadata"].(map[string]any)["buildkit_metadata"].(map[string]any)
			md["vcs"] = map[string]any{"source": repo, "revision": strings.Repeat("1", 40)}
		}
	}
	for _, c := range []struct {
		name       string
		edit       func(map[string]any)
		sourceRepo string
		want       bool
	}{
		{"a local build has no builder id", nil, "https://github.com/example/fleet", false},
		{"built in the fleet repository's workflow", inActions("https://github.com/example/fleet"), "https://github.com/example/fleet", true},
		{"checkout URL with .git", inActions("https://github.com/example/fleet.git"), "https://github.com/example/fleet", true},
		{"source from another repository", inActions("https://github.com/evil/fleet"), "https://github.com/example/fleet", false},
		{"signed by another repository", inActions("https://github.com/example/fleet"), "https://github.com/example/other", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := eval(c.edit, c.sourceRepo)
			if err != nil {
				t.Fatalf("eval: %v", err)
			}
			if got != c.want {
				t.Errorf("condition %v, want %v", got, c.want)
			}
		})
	}
}

// buildkitProvenance finds the in-toto statement of an OCI layout BuildKit
// pushed: the layer whose media type is in-toto JSON.
func buildkitProvenance(t *testing.T, dir string) []byte {
	t.Helper()
	blobs, err := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blobs {
		data := readFile(t, b)
		var st struct {
			PredicateType string `json:"predicateType"`
		}
		if json.Unmarshal(data, &st) == nil && st.PredicateType == "https://slsa.dev/provenance/v1" {
			return data
		}
	}
	t.Fatalf("%s: no SLSA v1 provenance", dir)
	return nil
}

// TestCookbookPolicies checks that each policy shown in the cookbook is
// the example file it names, so the two cannot drift apart.
func TestCookbookPolicies(t *testing.T) {
	md := readFile(t, "policy-cookbook.md")
	block := regexp.MustCompile("(?s)<!-- policy: (examples/policies/[a-z-]+\\.yaml) -->\\s*```yaml\\n(.*?)```")
	found := block.FindAllSubmatch(md, -1)
	files, _ := filepath.Glob("examples/policies/*.yaml")
	if len(found) != len(files) {
		t.Errorf("the cookbook shows %d policies, there are %d example files", len(found), len(files))
	}
	for _, f := range found {
		file := string(f[1])
		if want := withoutHeader(readFile(t, file)); !bytes.Equal(f[2], want) {
			t.Errorf("the cookbook's %s differs from the file (the file less its leading comments):\n%s\nwant:\n%s", file, f[2], want)
		}
	}
}

// withoutHeader drops a file's leading comment lines.
func withoutHeader(data []byte) []byte {
	for bytes.HasPrefix(data, []byte("#")) {
		_, data, _ = bytes.Cut(data, []byte("\n"))
	}
	return data
}

// TestDocsSealCommands checks every `seal …` command line in the docs'
// shell examples against CLI.md, as the workflow test does for YAML.
func TestDocsSealCommands(t *testing.T) {
	mds, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	fence := regexp.MustCompile("(?s)```(?:sh|bash|console)\\n(.*?)```")
	n := 0
	for _, md := range mds {
		for _, b := range fence.FindAllSubmatch(readFile(t, md), -1) {
			text := strings.ReplaceAll(string(b[1]), "\\\n", " ")
			for _, line := range strings.Split(text, "\n") {
				line = strings.TrimPrefix(strings.TrimSpace(line), "$ ")
				// `seal …` at the start of a line, or inside `$(seal …)`.
				if _, sub, ok := strings.Cut(line, "$(seal "); ok {
					line, _, _ = strings.Cut("seal "+sub, ")")
				}
				f := strings.Fields(line)
				if len(f) > 0 && f[0] == "seal" {
					parseSeal(t, md+": "+line, f[1:])
					n++
				}
			}
		}
	}
	if n == 0 {
		t.Error("no seal command lines found in the docs")
	}
}
