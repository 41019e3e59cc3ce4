package cli

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/internal/testenv"
)

// The walk-through of the README: BuildKit's per-platform pushes of fleet,
// merged into one release index.
func TestIndexCreateCommand(t *testing.T) {
	for _, r := range testenv.Registries(t) {
		t.Run(r.Name, func(t *testing.T) {
			r.PushRelease(t, "example/fleet", "fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64")
			target := r.Ref("example/fleet:v0.1.0")
			code, stdout, stderr := sealRun(t, "", "index", "create", target,
				r.Ref("example/fleet:v0.1.0-linux-amd64"), r.Ref("example/fleet:v0.1.0-linux-arm64"))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			want := regexp.MustCompile(`^` + regexp.QuoteMeta(target) + `@sha256:[0-9a-f]{64}\n$`)
			if !want.MatchString(stdout) {
				t.Fatalf("stdout %q, want %s", stdout, want)
			}

			code, stdout, stderr = sealRun(t, "", "index", "create", "--output", "json", target,
				r.Ref("example/fleet:v0.1.0-linux-amd64"), r.Ref("example/fleet:v0.1.0-linux-arm64"))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var doc struct {
				Digest    string `json:"digest"`
				Reference string `json:"reference"`
				Manifests []struct {
					Digest, Platform, Kind string
				} `json:"manifests"`
			}
			if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
				t.Fatalf("json output: %v\n%s", err, stdout)
			}
			if doc.Reference != target+"@"+doc.Digest || len(doc.Manifests) != 4 {
				t.Fatalf("json output %+v", doc)
			}
			kinds := map[string]int{}
			for _, m := range doc.Manifests {
				kinds[m.Kind+" "+m.Platform]++
			}
			for _, k := range []string{"image linux/amd64", "image linux/arm64", "attestation linux/amd64", "attestation linux/arm64"} {
				if kinds[k] != 1 {
					t.Errorf("json manifests %v lack %q", kinds, k)
				}
			}

			// --dry-run prints the index and pushes nothing.
			dryTarget := r.Ref("example/fleet:dry")
			code, stdout, stderr = sealRun(t, "", "index", "create", "--dry-run", "--platform", "linux/arm64", dryTarget,
				r.Ref("example/fleet:v0.1.0-linux-amd64"), r.Ref("example/fleet:v0.1.0-linux-arm64"))
			if code != 0 {
				t.Fatalf("dry run exit %d: %s", code, stderr)
			}
			var im struct {
				Manifests []json.RawMessage `json:"manifests"`
			}
			if err := json.Unmarshal([]byte(stdout), &im); err != nil || len(im.Manifests) != 2 {
				t.Fatalf("dry run printed %q (%v), want an index of 2 entries", stdout, err)
			}
			if _, err := remote.Head(mustRef(t, dryTarget), r.RemoteOptions(context.Background())...); err == nil {
				t.Fatal("--dry-run pushed the target tag")
			}
		})
	}
}

// Bad input: one clear line on stderr and exit 2, nothing on stdout.
func TestIndexCreateBadInput(t *testing.T) {
	r := testenv.Distribution(t)
	r.PushRelease(t, "ci/fleet", "fleet__v0.1.0-linux-amd64")
	r.PushRelease(t, "ci/fleet-agent", "fleet-agent__v0.1.0-linux-amd64")
	// An OCI artifact (a Helm-chart-like config), not a container image.
	chart := mutate.MediaType(mutate.ConfigMediaType(empty.Image, "application/vnd.cncf.helm.config.v1+json"), types.OCIManifestSchema1)
	if err := remote.Write(mustRef(t, r.Ref("ci/chart:1.0")), chart, r.RemoteOptions(context.Background())...); err != nil {
		t.Fatal(err)
	}
	good := r.Ref("ci/fleet:v0.1.0-linux-amd64")
	cases := []struct {
		name string
		args []string
		want string // a part of the one error line
	}{
		{"missing source", []string{r.Ref("app:v1"), good, r.Ref("ci/fleet:v9")}, "ci/fleet:v9"},
		{"malformed reference", []string{r.Ref("app:v1"), good, "127.0.0.1/UPPER CASE::x"}, "UPPER CASE"},
		{"malformed target", []string{"not a ref!", good}, "not a ref!"},
		{"source is not an image", []string{r.Ref("app:v1"), good, r.Ref("ci/chart:1.0")}, "ci/chart:1.0"},
		{"conflicting platforms", []string{r.Ref("app:v1"), good, r.Ref("ci/fleet-agent:v0.1.0-linux-amd64")}, "linux/amd64"},
		{"unknown platform filter", []string{"--platform", "linux/s390x", r.Ref("app:v1"), good}, "linux/s390x"},
		{"bad platform", []string{"--platform", "linux", r.Ref("app:v1"), good}, "linux"},
		{"bad annotation", []string{"--annotation", "novalue", r.Ref("app:v1"), good}, "novalue"},
		{"one argument", []string{r.Ref("app:v1")}, "arg"},
		{"digest target", []string{r.Ref("app@sha256:" + strings.Repeat("a", 64)), good}, "tag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := sealRun(t, "", append([]string{"index", "create"}, tc.args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "seal: ") || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q: want one line 'seal: …' naming %q", stderr, tc.want)
			}
		})
	}
	if _, err := remote.Head(mustRef(t, r.Ref("app:v1")), r.RemoteOptions(context.Background())...); err == nil {
		t.Fatal("a failed index create left a target tag")
	}
}

// An unreachable registry is an operational failure (exit 3).
func TestIndexCreateUnreachable(t *testing.T) {
	code, _, stderr := sealRun(t, "", "index", "create", "127.0.0.1:1/app:v1", "127.0.0.1:1/app:v1-amd64")
	if code != 3 {
		t.Fatalf("exit %d, want 3: %s", code, stderr)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}
