package attestation

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/pkg/fault"
)

var buildkitDir = filepath.Join("..", "..", "testdata", "buildkit")

// bkFixture is one BuildKit layout, read the way a registry client would
// walk the pushed index: tag → index → platform manifest + attestation manifest.
type bkFixture struct {
	dir      string
	platform v1.Hash // the platform manifest's digest
	attRaw   []byte  // the attestation manifest
}

func readBlob(dir string, h v1.Hash) ([]byte, error) {
	return os.ReadFile(filepath.Join(dir, "blobs", h.Algorithm, h.Hex))
}

// fetcher reads blobs straight from the layout, verifying nothing, so the
// checks under test are ParseBuildKitAttestation's own.
func fetcher(dir string) func(v1.Descriptor) ([]byte, error) {
	return func(d v1.Descriptor) ([]byte, error) { return readBlob(dir, d.Digest) }
}

func loadFixture(t *testing.T, name string) bkFixture {
	t.Helper()
	dir := filepath.Join(buildkitDir, name)
	top, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var layout v1.IndexManifest
	if err := json.Unmarshal(top, &layout); err != nil || len(layout.Manifests) != 1 {
		t.Fatalf("%s/index.json: %v", name, err)
	}
	raw, err := readBlob(dir, layout.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	f := bkFixture{dir: dir}
	var platforms []v1.Hash
	var attDesc *v1.Descriptor
	for i, d := range idx.Manifests {
		if d.Annotations[DockerReferenceTypeAnnotation] == DockerReferenceTypeAttestation {
			attDesc = &idx.Manifests[i]
		} else {
			platforms = append(platforms, d.Digest)
		}
	}
	if attDesc == nil || len(platforms) != 1 {
		t.Fatalf("%s: want one platform and one attestation manifest", name)
	}
	f.platform = platforms[0]
	if got := attDesc.Annotations[DockerReferenceDigestAnnotation]; got != f.platform.String() {
		t.Fatalf("%s: attestation annotated for %s, platform is %s", name, got, f.platform)
	}
	if f.attRaw, err = readBlob(dir, attDesc.Digest); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestParseBuildKitAttestationFixtures(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(buildkitDir, "*", "index.json"))
	if err != nil || len(dirs) != 6 {
		t.Fatalf("want the six BuildKit fixtures, found %d (%v)", len(dirs), err)
	}
	for _, d := range dirs {
		name := filepath.Base(filepath.Dir(d))
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			var m v1.Manifest
			if err := json.Unmarshal(f.attRaw, &m); err != nil {
				t.Fatal(err)
			}
			// Both layouts are covered: subject in the new one, none in the old.
			if old := strings.HasPrefix(name, "oldlayout"); old != (m.Subject == nil) {
				t.Fatalf("layout: old=%v but subject=%v", old, m.Subject)
			}
			got, err := ParseBuildKitAttestation(f.attRaw, fetcher(f.dir), f.platform)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("%d statements, want 1", len(got))
			}
			a := got[0]
			if a.PredicateType != PredicateSLSAProvenanceV1 || a.Statement.PredicateType != PredicateSLSAProvenanceV1 {
				t.Errorf("predicate type %q", a.PredicateType)
			}
			if !a.Statement.HasSubjectDigest("sha256", f.platform.Hex) {
				t.Errorf("statement subjects %v, platform %s", a.Statement.SubjectDigests(), f.platform)
			}
			want, _ := readBlob(f.dir, a.Layer.Digest)
			if !bytes.Equal(a.Raw, want) || a.Layer.MediaType != InTotoMediaType {
				t.Error("Raw is not the layer's bytes")
			}
			if err := ValidatePredicate(a.PredicateType, a.Statement.Predicate); err != nil {
				t.Errorf("BuildKit's predicate does not validate: %v", err)
			}
		})
	}
}

// edit returns the manifest with change applied to its decoded JSON.
func edit(t *testing.T, raw []byte, change func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	change(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func layer0(m map[string]any) map[string]any { return m["layers"].([]any)[0].(map[string]any) }

func TestParseBuildKitAttestationRejects(t *testing.T) {
	for _, layout := range []struct{ amd64, arm64 string }{
		{"fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64"},
		{"oldlayout__v1-linux-amd64", "oldlayout__v1-linux-arm64"},
	} {
		amd, arm := loadFixture(t, layout.amd64), loadFixture(t, layout.arm64)
		isNew := strings.HasPrefix(layout.amd64, "fleet")
		otherPlatformWant := "statement subject sha256:" + amd.platform.Hex + " is not the platform manifest " + arm.platform.String()
		if isNew {
			otherPlatformWant = "attestation manifest subject " + amd.platform.String() + " is not the platform manifest " + arm.platform.String()
		}
		fetchCalled := false
		for _, tc := range []struct {
			name     string
			manifest []byte
			fetch    func(v1.Descriptor) ([]byte, error)
			platform v1.Hash
			want     string
		}{
			{"another platform's attestation", amd.attRaw, fetcher(amd.dir), arm.platform, otherPlatformWant},
			{"manifest subject forged, statement still about amd64",
				edit(t, amd.attRaw, func(m map[string]any) {
					if isNew {
						m["subject"].(map[string]any)["digest"] = arm.platform.String()
					}
				}), fetcher(amd.dir), arm.platform,
				"statement subject sha256:" + amd.platform.Hex + " is not the platform manifest " + arm.platform.String()},
			{"tampered layer", amd.attRaw, func(d v1.Descriptor) ([]byte, error) {
				b, err := readBlob(amd.dir, d.Digest)
				return bytes.Replace(b, []byte("linux/amd64"), []byte("linux/arm64"), 1), err
			}, amd.platform, "content does not match its descriptor"},
			{"layer of another media type", edit(t, amd.attRaw, func(m map[string]any) { layer0(m)["mediaType"] = "application/json" }),
				fetcher(amd.dir), amd.platform, "media type application/json, want application/vnd.in-toto+json"},
			{"predicate type annotation differs", edit(t, amd.attRaw, func(m map[string]any) {
				layer0(m)["annotations"].(map[string]any)[PredicateTypeAnnotation] = PredicateSPDX
			}), fetcher(amd.dir), amd.platform, "statement predicate type https://slsa.dev/provenance/v1 differs"},
			{"oversized layer not fetched", edit(t, amd.attRaw, func(m map[string]any) { layer0(m)["size"] = 1 << 30 }),
				func(v1.Descriptor) ([]byte, error) { fetchCalled = true; return nil, nil }, amd.platform, "size 1073741824 is outside"},
			{"no layers", edit(t, amd.attRaw, func(m map[string]any) { m["layers"] = []any{} }), fetcher(amd.dir), amd.platform, "no in-toto layers"},
			{"not an attestation artifact", edit(t, amd.attRaw, func(m map[string]any) { m["artifactType"] = "application/vnd.dev.sigstore.bundle.v0.3+json" }),
				fetcher(amd.dir), amd.platform, "artifactType application/vnd.dev.sigstore.bundle.v0.3+json"},
			{"an index, not a manifest", edit(t, amd.attRaw, func(m map[string]any) { m["mediaType"] = "application/vnd.oci.image.index.v1+json" }),
				fetcher(amd.dir), amd.platform, "is not an image manifest"},
			{"duplicate key", append(bytes.TrimSuffix(bytes.TrimSpace(amd.attRaw), []byte("}")), []byte(`,"layers":[]}`)...),
				fetcher(amd.dir), amd.platform, `duplicate key "layers"`},
		} {
			t.Run(layout.amd64+"/"+tc.name, func(t *testing.T) {
				got, err := ParseBuildKitAttestation(tc.manifest, tc.fetch, tc.platform)
				if got != nil {
					t.Errorf("returned %d statements along with the error", len(got))
				}
				wantInputError(t, err, tc.want)
			})
		}
		if fetchCalled {
			t.Error("an oversized layer was fetched")
		}
	}
}

func TestParseBuildKitAttestationFetchError(t *testing.T) {
	f := loadFixture(t, "fleet__v0.1.0-linux-arm64")
	boom := fault.Operationalf("registry unreachable")
	_, err := ParseBuildKitAttestation(f.attRaw, func(v1.Descriptor) ([]byte, error) { return nil, boom }, f.platform)
	if !errors.Is(err, boom) || fault.KindOf(err) != fault.Operational {
		t.Errorf("fetch error not passed through with its kind: %v", err)
	}
	if !strings.Contains(err.Error(), f.platform.String()) {
		t.Errorf("error does not name the platform: %v", err)
	}
}
