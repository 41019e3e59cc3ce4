package buildkit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/internal/testenv"
)

var (
	linuxAMD64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	linuxARM64 = v1.Platform{OS: "linux", Architecture: "arm64"}
)

// fixtureBuild is what a fixture's folder name and README say about how it
// was built, as Options.
type fixtureBuild struct {
	dir  string
	opts Options
}

// fixtureBuilds are the six real BuildKit builds of testdata/buildkit, each
// with the options that describe it: the component, the pushed tag (read
// from the README: 127.0.0.1:5055/example/<repo>:<tag>), the platform, the
// file the Dockerfile copied, and the build time from the image config.
func fixtureBuilds(t *testing.T) []fixtureBuild {
	t.Helper()
	amd, arm := mustTime(t, "2026-11-25T19:03:07.36504639Z"), mustTime(t, "2026-11-25T19:03:07.483541726Z")
	mk := func(dir, component string, l Layout, p v1.Platform, created time.Time) fixtureBuild {
		repo, tag, _ := strings.Cut(dir, "__")
		return fixtureBuild{dir: dir, opts: Options{
			Component: component,
			Source:    "https://github.com/example/fleet",
			Ref:       "127.0.0.1:5055/example/" + repo + ":" + tag,
			Platform:  p,
			Content:   []byte("hello from " + p.Architecture + "\n"),
			Layout:    l,
			Created:   created,
		}}
	}
	return []fixtureBuild{
		mk("fleet__v0.1.0-linux-amd64", "example/fleet", LayoutArtifact, linuxAMD64, amd),
		mk("fleet__v0.1.0-linux-arm64", "example/fleet", LayoutArtifact, linuxARM64, arm),
		mk("fleet-agent__v0.1.0-linux-amd64", "example/fleet-agent", LayoutArtifact, linuxAMD64, amd),
		mk("fleet-agent__v0.1.0-linux-arm64", "example/fleet-agent", LayoutArtifact, linuxARM64, arm),
		mk("oldlayout__v1-linux-amd64", "example/oldlayout", LayoutDummyConfig, linuxAMD64, amd),
		mk("oldlayout__v1-linux-arm64", "example/oldlayout", LayoutDummyConfig, linuxARM64, arm),
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// blobs reads content by digest: a fixture folder's blobs or an Image's.
type blobs func(h v1.Hash) []byte

func fixtureBlobs(t *testing.T, dir string) (blobs, v1.Hash) {
	t.Helper()
	root := testenv.Fixture(t, dir)
	get := func(h v1.Hash) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, "blobs", h.Algorithm, h.Hex))
		if err != nil {
			t.Fatalf("fixture %s: %v", dir, err)
		}
		return b
	}
	return get, testenv.LayoutDigest(t, root)
}

func imageBlobs(t *testing.T, im *Image) blobs {
	return func(h v1.Hash) []byte {
		t.Helper()
		b, ok := im.Blob(h)
		if !ok {
			t.Fatalf("generated build has no blob %s", h)
		}
		return b
	}
}

// build is the raw documents of one per-platform push, found by walking
// from the index the way a registry client does.
type build struct {
	index, image, config, att, attConfig, statement []byte
	layer                                           []byte
	imageDigest, attDigest, statementDigest         v1.Hash
	attConfigDigest                                 v1.Hash
	attLayers                                       []v1.Descriptor
}

func walk(t *testing.T, get blobs, top v1.Hash) build {
	t.Helper()
	var b build
	b.index = get(top)
	var idx v1.IndexManifest
	mustUnmarshal(t, b.index, &idx)
	if len(idx.Manifests) != 2 {
		t.Fatalf("index %s has %d manifests, want 2", top, len(idx.Manifests))
	}
	b.imageDigest, b.attDigest = idx.Manifests[0].Digest, idx.Manifests[1].Digest
	b.image = get(b.imageDigest)
	var im v1.Manifest
	mustUnmarshal(t, b.image, &im)
	b.config = get(im.Config.Digest)
	b.layer = get(im.Layers[0].Digest)
	b.att = get(b.attDigest)
	var am v1.Manifest
	mustUnmarshal(t, b.att, &am)
	b.attConfigDigest = am.Config.Digest
	b.attConfig = get(am.Config.Digest)
	b.attLayers = am.Layers
	// The provenance is the last layer (BuildKit adds it after the SBOM).
	b.statementDigest = am.Layers[len(am.Layers)-1].Digest
	b.statement = get(b.statementDigest)
	return b
}

func mustUnmarshal(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("unmarshal %.80q: %v", raw, err)
	}
}

func decode(t *testing.T, raw []byte) any {
	t.Helper()
	var v any
	mustUnmarshal(t, raw, &v)
	return v
}

// exactKeys are the keys whose values define the layout rather than one
// build's content: they must be equal, not just present.
var exactKeys = map[string]bool{
	"schemaVersion": true, "mediaType": true, "artifactType": true,
	"_type": true, "predicateType": true, "buildType": true,
	"in-toto.io/predicate-type": true, "vnd.docker.reference.type": true,
	"architecture": true, "os": true, "variant": true,
	"type": true, "comment": true, "empty_layer": true, "Env": true, "WorkingDir": true,
	"frontend": true, "compatibilityVersion": true, "builderPlatform": true, "dockerfileVersion": true,
	"id": true, "inputs": true, "identifier": true, "local.sharedkeyhint": true, "local.differ": true,
	"dest": true, "mode": true, "timestamp": true, "filename": true, "language": true,
	"request": true, "resolvedDependencies": true, "line": true,
}

var digestKey = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// shape reduces decoded JSON to its structure: objects keep their keys
// (digests used as keys become "<digest>"), arrays their length, scalars
// their JSON type, except under exactKeys where the value is kept.
func shape(v any, exact bool) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			nk := k
			if digestKey.MatchString(k) {
				nk = "<digest>"
			}
			out[nk] = shape(x, exactKeys[k])
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = shape(x, exact)
		}
		return out
	default:
		if exact {
			return v
		}
		return fmt.Sprintf("<%T>", v)
	}
}

// shapeDiff lists where the fixture's shape a and the generated shape b
// differ, by JSON path.
func shapeDiff(path string, a, b any) []string {
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: fixture has an object, generated %T", path, b)}
		}
		keys := map[string]bool{}
		for k := range a {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		var names []string
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		var out []string
		for _, k := range names {
			x, inA := a[k]
			y, inB := bm[k]
			switch {
			case !inA:
				out = append(out, fmt.Sprintf("%s/%s: only in the generated build", path, k))
			case !inB:
				out = append(out, fmt.Sprintf("%s/%s: only in the fixture", path, k))
			default:
				out = append(out, shapeDiff(path+"/"+k, x, y)...)
			}
		}
		return out
	case []any:
		bs, ok := b.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: fixture has an array, generated %T", path, b)}
		}
		if len(a) != len(bs) {
			return []string{fmt.Sprintf("%s: fixture has %d elements, generated %d", path, len(a), len(bs))}
		}
		var out []string
		for i := range a {
			out = append(out, shapeDiff(fmt.Sprintf("%s[%d]", path, i), a[i], bs[i])...)
		}
		return out
	default:
		if !reflect.DeepEqual(a, b) {
			return []string{fmt.Sprintf("%s: fixture %v, generated %v", path, a, b)}
		}
		return nil
	}
}
