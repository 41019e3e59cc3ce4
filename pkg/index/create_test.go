package index_test

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/oci"
)

// fastRetry keeps failure tests quick while still retrying.
var fastRetry = oci.WithRetry(oci.Retry{Attempts: 4, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond, MaxElapsed: 5 * time.Second})

func clientFor(r *testenv.Registry) *oci.Client {
	return oci.NewClient(oci.WithTransport(r.Transport()), oci.WithKeychain(r.Keychain()), fastRetry)
}

func mustTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

func refs(t *testing.T, ds ...name.Digest) []name.Reference {
	t.Helper()
	// Sources by tag, as a release script writes them: Create resolves each once.
	var out []name.Reference
	for _, d := range ds {
		tagged, _, _ := cutDigest(d.String())
		out = append(out, mustTag(t, tagged))
	}
	return out
}

func cutDigest(s string) (string, string, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '@' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// pushedIndex fetches what target's tag points at.
func pushedIndex(t *testing.T, r *testenv.Registry, target string) (v1.Hash, *v1.IndexManifest) {
	t.Helper()
	ref, err := name.ParseReference(target)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref, r.RemoteOptions(context.Background())...)
	if err != nil {
		t.Fatalf("get %s: %v", target, err)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(desc.Manifest, &im); err != nil {
		t.Fatal(err)
	}
	return desc.Digest, &im
}

// checkRelease asserts the properties `index create` promises of a pushed
// BuildKit release: every platform and attestation manifest, attestations
// pointing at their platform, every child present in the target repository.
func checkRelease(t *testing.T, r *testenv.Registry, c *oci.Client, created *index.Created, target string, platforms int, oldLayout bool) {
	t.Helper()
	dgst, im := pushedIndex(t, r, target)
	if dgst != created.Digest {
		t.Fatalf("%s points at %s, Create reported %s", target, dgst, created.Digest)
	}
	if len(im.Manifests) != 2*platforms {
		t.Fatalf("index has %d entries, want %d", len(im.Manifests), 2*platforms)
	}
	images := map[string]bool{}
	for _, d := range im.Manifests {
		if !index.IsAttestation(d) {
			images[d.Digest.String()] = true
		}
	}
	if len(images) != platforms {
		t.Fatalf("%d platform manifests, want %d", len(images), platforms)
	}
	tag := mustTag(t, target)
	for _, d := range im.Manifests {
		if d.MediaType.IsIndex() {
			t.Errorf("nested index %s", d.Digest)
		}
		if index.IsAttestation(d) {
			subj := d.Annotations["vnd.docker.reference.digest"]
			if !images[subj] {
				t.Errorf("attestation %s points at %s, not at a platform manifest of the index", d.Digest, subj)
			}
			if d.Platform == nil || d.Platform.OS != "unknown" || d.Platform.Architecture != "unknown" {
				t.Errorf("attestation %s platform %v, want unknown/unknown", d.Digest, d.Platform)
			}
		}
		// Every child resolves in the target repository, and so does its content.
		if _, err := c.Resolve(context.Background(), tag.Context().Digest(d.Digest.String())); err != nil {
			t.Errorf("child %s not in %s: %v", d.Digest, tag.Context(), err)
		}
	}
	// crane walks every manifest and blob of the pushed index and checks
	// digests. It cannot validate BuildKit's older attestation layout even as
	// BuildKit pushed it (its dummy config lists a diff_id for the in-toto
	// layer, which crane does not count as a layer), so there crane checks each
	// platform image and the blobs of the attestation manifests are checked here.
	crane := testenv.Tool(t, "crane")
	validate := func(ref string) {
		t.Helper()
		if out, err := exec.Command(crane, "validate", "--insecure", "--remote", ref).CombinedOutput(); err != nil {
			t.Fatalf("crane validate --remote %s: %v\n%s", ref, err, out)
		}
	}
	if !oldLayout {
		validate(created.Reference)
		return
	}
	for _, d := range im.Manifests {
		child := tag.Context().Digest(d.Digest.String())
		if !index.IsAttestation(d) {
			validate(child.String())
			continue
		}
		m, err := c.Manifest(context.Background(), child)
		if err != nil {
			t.Fatal(err)
		}
		img, err := m.Image()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range append([]v1.Descriptor{img.Config}, img.Layers...) {
			if _, err := c.BlobBytes(context.Background(), tag.Context(), b, 1<<20); err != nil {
				t.Errorf("attestation %s: blob %s: %v", d.Digest, b.Digest, err)
			}
		}
	}
}

func TestCreateBuildKitRelease(t *testing.T) {
	layouts := []struct {
		name     string
		fixtures []string
	}{
		{"attestation-artifact-layout", []string{"fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64"}},
		{"dummy-config-layout", []string{"oldlayout__v1-linux-amd64", "oldlayout__v1-linux-arm64"}},
	}
	for _, r := range testenv.Registries(t) {
		for _, l := range layouts {
			t.Run(r.Name+"/"+l.name, func(t *testing.T) {
				c := clientFor(r)
				srcs := r.PushRelease(t, "example/fleet", l.fixtures...)
				target := r.Ref("example/fleet:release")
				created, err := index.Create(context.Background(), c, mustTag(t, target), refs(t, srcs...), index.CreateOptions{})
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				if want := regexp.MustCompile(`^` + regexp.QuoteMeta(target) + `@sha256:[0-9a-f]{64}$`); !want.MatchString(created.Reference) {
					t.Fatalf("reference %q, want %s", created.Reference, want)
				}
				checkRelease(t, r, c, created, target, 2, l.name == "dummy-config-layout")
				if created.Raw == nil || len(created.Manifests) != 4 {
					t.Fatalf("result has %d manifests", len(created.Manifests))
				}

				// Running it again changes nothing: same bytes, same digest.
				again, err := index.Create(context.Background(), c, mustTag(t, target), refs(t, srcs...), index.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if again.Digest != created.Digest {
					t.Fatalf("second run gave %s, first %s", again.Digest, created.Digest)
				}
			})
		}
	}
}

func TestCreatePlatformFilter(t *testing.T) {
	for _, r := range testenv.Registries(t) {
		t.Run(r.Name, func(t *testing.T) {
			c := clientFor(r)
			srcs := r.PushRelease(t, "example/fleet", "fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64")
			arm, _ := index.ParsePlatform("linux/arm64")
			target := r.Ref("example/fleet:arm-only")
			created, err := index.Create(context.Background(), c, mustTag(t, target), refs(t, srcs...),
				index.CreateOptions{Options: index.Options{Platforms: []v1.Platform{arm}}})
			if err != nil {
				t.Fatal(err)
			}
			checkRelease(t, r, c, created, target, 1, false)
			for _, e := range created.Manifests {
				if e.Platform != "linux/arm64" {
					t.Errorf("entry %s for %s survived the arm64 filter", e.Digest, e.Platform)
				}
			}
		})
	}
}

// Two different manifests for one platform are an input error, and nothing
// reaches the target: no tag, no child manifests.
func TestCreateConflictPushesNothing(t *testing.T) {
	for _, r := range testenv.Registries(t) {
		t.Run(r.Name, func(t *testing.T) {
			c := clientFor(r)
			fleet := r.PushFixture(t, "ci/fleet", "fleet__v0.1.0-linux-amd64")
			agent := r.PushFixture(t, "ci/fleet-agent", "fleet-agent__v0.1.0-linux-amd64")
			target := mustTag(t, r.Ref("example/fleet:v0.1.0"))
			_, err := index.Create(context.Background(), c, target, refs(t, fleet, agent), index.CreateOptions{})
			if fault.KindOf(err) != fault.Input {
				t.Fatalf("err = %v (kind %v), want an input error", err, fault.KindOf(err))
			}
			if _, err := c.Resolve(context.Background(), target); fault.KindOf(err) != fault.Input {
				t.Fatalf("target tag exists after a refused merge (err %v)", err)
			}
			h, _ := v1.NewHash(fleet.DigestStr())
			if _, err := c.Resolve(context.Background(), target.Context().Digest(h.String())); err == nil {
				t.Fatalf("a source manifest was copied into the target before the merge was refused")
			}
		})
	}
}

// Sources in another repository of the same registry are mounted, never
// uploaded again; sources in another registry are copied.
func TestCreateMountsWithinRegistryAndCopiesAcross(t *testing.T) {
	for _, r := range testenv.Registries(t) {
		t.Run(r.Name+"/mount", func(t *testing.T) {
			proxy := testenv.NewFaultProxy(t, "http://"+r.Host)
			c := oci.NewClient(fastRetry)
			srcs := r.PushRelease(t, "ci/fleet", "fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64")
			var via []name.Reference
			for _, s := range refs(t, srcs...) {
				via = append(via, mustTag(t, proxy.Host()+"/"+s.Context().RepositoryStr()+":"+s.Identifier()))
			}
			target := mustTag(t, proxy.Host()+"/example/fleet:v0.1.0")
			if _, err := index.Create(context.Background(), c, target, via, index.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			// go-containerregistry's registry keeps one blob store for all
			// repositories, so there the blobs are simply found present.
			if n := proxy.Count("POST", "mount"); n == 0 && r.Name == "distribution" {
				t.Errorf("no blob was mounted (counts %v)", proxy.Counts())
			}
			if n := proxy.Count("PUT", "upload") + proxy.Count("PATCH", "upload"); n != 0 {
				t.Errorf("%d blob uploads within one registry, want 0 (all mounted); counts %v", n, proxy.Counts())
			}
			created, err := index.Create(context.Background(), c, target, via, index.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkRelease(t, r, c, created, r.Ref("example/fleet:v0.1.0"), 2, false)
		})
	}
	t.Run("across-registries", func(t *testing.T) {
		from, to := testenv.Distribution(t), testenv.GGCR(t)
		c := oci.NewClient(fastRetry)
		srcs := from.PushRelease(t, "ci/fleet", "fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64")
		target := to.Ref("example/fleet:v0.1.0")
		created, err := index.Create(context.Background(), c, mustTag(t, target), refs(t, srcs...), index.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkRelease(t, to, c, created, target, 2, false)
	})
}

// A registry that answers 503 to the first two tries of every write still
// ends with the right index.
func TestCreateRetriesTransientFailures(t *testing.T) {
	r := testenv.Distribution(t)
	srcs := r.PushRelease(t, "ci/fleet", "fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64")
	clean := clientFor(r)
	want, err := index.Create(context.Background(), clean, mustTag(t, r.Ref("example/fleet:dry")), refs(t, srcs...), index.CreateOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewFaultProxy(t, "http://"+r.Host, testenv.FaultRule{Method: "^(PUT|POST|PATCH)$", First: 2, PerRequest: true, Fault: testenv.Fault503})
	c := oci.NewClient(fastRetry)
	var via []name.Reference
	for _, s := range refs(t, srcs...) {
		via = append(via, mustTag(t, proxy.Host()+"/"+s.Context().RepositoryStr()+":"+s.Identifier()))
	}
	got, err := index.Create(context.Background(), c, mustTag(t, proxy.Host()+"/example/fleet:v0.1.0"), via, index.CreateOptions{})
	if err != nil {
		t.Fatalf("Create through a flaky registry: %v", err)
	}
	if got.Digest != want.Digest {
		t.Fatalf("digest %s, want %s", got.Digest, want.Digest)
	}
	if len(proxy.Faults()) == 0 {
		t.Fatalf("no fault was injected: %v", proxy.Faults())
	}
	checkRelease(t, r, clean, got, r.Ref("example/fleet:v0.1.0"), 2, false)
}

// A registry that fails for good part-way leaves the target tag where it was.
func TestCreatePermanentFailureLeavesTagUntouched(t *testing.T) {
	cases := []struct {
		name string
		rule func(indexDigest v1.Hash) testenv.FaultRule
	}{
		{"blob uploads fail", func(v1.Hash) testenv.FaultRule {
			return testenv.FaultRule{Method: "^(POST|PUT|PATCH)$", Path: "/blobs/uploads", First: 1 << 20, Fault: testenv.Fault503}
		}},
		{"index push fails", func(h v1.Hash) testenv.FaultRule {
			return testenv.FaultRule{Method: "^PUT$", Path: regexp.QuoteMeta("/manifests/" + h.String()), First: 1 << 20, Fault: testenv.Fault500}
		}},
		{"child manifest push fails", func(v1.Hash) testenv.FaultRule {
			return testenv.FaultRule{Method: "^PUT$", Path: "/manifests/sha256:", First: 1 << 20, Fault: testenv.Fault502}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := testenv.Distribution(t)
			clean := clientFor(r)
			// The target tag holds an earlier release of a single platform.
			old := r.PushRelease(t, "example/fleet", "fleet__v0.1.0-linux-amd64")
			prev, err := index.Create(context.Background(), clean, mustTag(t, r.Ref("example/fleet:v0.1.0")), refs(t, old...), index.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			srcs := r.PushRelease(t, "ci/fleet", "fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64")
			dry, err := index.Create(context.Background(), clean, mustTag(t, r.Ref("example/fleet:v0.1.0")), refs(t, srcs...), index.CreateOptions{DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			proxy := testenv.NewFaultProxy(t, "http://"+r.Host, tc.rule(dry.Digest))
			c := oci.NewClient(fastRetry)
			var via []name.Reference
			for _, s := range refs(t, srcs...) {
				via = append(via, mustTag(t, proxy.Host()+"/"+s.Context().RepositoryStr()+":"+s.Identifier()))
			}
			// Other repository, other registry view: force uploads rather than mounts for the blob case.
			_, err = index.Create(context.Background(), c, mustTag(t, proxy.Host()+"/example/fleet:v0.1.0"), via, index.CreateOptions{})
			if err == nil {
				t.Fatal("Create succeeded through a registry that fails permanently")
			}
			if k := fault.KindOf(err); k != fault.Operational {
				t.Errorf("kind %v, want operational: %v", k, err)
			}
			if len(proxy.Faults()) == 0 {
				t.Fatalf("the failing rule never fired; counts %v", proxy.Counts())
			}
			got, _ := pushedIndex(t, r, r.Ref("example/fleet:v0.1.0"))
			if got != prev.Digest {
				t.Fatalf("target tag moved to %s after a failed create (was %s)", got, prev.Digest)
			}
		})
	}
}

func TestCreateSourceErrors(t *testing.T) {
	r := testenv.Distribution(t)
	c := clientFor(r)
	srcs := r.PushRelease(t, "ci/fleet", "fleet__v0.1.0-linux-amd64")
	target := mustTag(t, r.Ref("example/fleet:v0.1.0"))
	missing := mustTag(t, r.Ref("ci/fleet:no-such-tag"))
	_, err := index.Create(context.Background(), c, target, append(refs(t, srcs...), missing), index.CreateOptions{})
	if fault.KindOf(err) != fault.Input {
		t.Fatalf("missing source: %v (kind %v), want input", err, fault.KindOf(err))
	}
	if !regexp.MustCompile(regexp.QuoteMeta(missing.String())).MatchString(err.Error()) {
		t.Errorf("error %q does not name the missing source", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal("cancelled instead of failing")
	}
}
