package index

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/pkg/fault"
)

// The fixtures: real BuildKit v0.34.2 output (testdata/buildkit/README.md).
const (
	fleetAMD64      = "fleet__v0.1.0-linux-amd64"
	fleetARM64      = "fleet__v0.1.0-linux-arm64"
	agentAMD64      = "fleet-agent__v0.1.0-linux-amd64"
	agentARM64      = "fleet-agent__v0.1.0-linux-arm64"
	oldlayoutAMD64  = "oldlayout__v1-linux-amd64"
	oldlayoutARM64  = "oldlayout__v1-linux-arm64"
	fixtureRoot     = "../../testdata/buildkit"
	slsaProvenance1 = "https://slsa.dev/provenance/v1"
)

// What each fixture holds, read once by hand from its blobs: the pushed
// per-platform index, its platform image manifest and its attestation manifest.
var fixtures = map[string]struct{ index, image, att, platform string }{
	fleetAMD64:     {"8b8abfe50e1f015df0568f7733690d5538120638e408d545f3ec15ab27e76970", "6509be241a5e19fab8c25688858fde2c2212ce247ba22c75213f15dc0d0e20e0", "fa07c6edb08027c025a457c3d55f14c3703247542d0a41921d7d6f7585fcead2", "linux/amd64"},
	fleetARM64:     {"bd9cd7f5c1d67b58ef8c2c5306e0b17a06ce609123e0863f1e1ac2424405f3ce", "2c7ab7466f2d46c66a32a46a90af30294a47daebfdf60733c18e243fdb56fa58", "6ac7eec7de10d7b810a82e9d96458a04bc13624fd07f891ce6ee930af5b58245", "linux/arm64"},
	agentAMD64:     {"2c8fa29882f04add18853925cf7a84565c9382a6e297d6fd5814a7e17669fe4b", "41b846f8c7a73be9475feac85b9e6b2428a36d158d82c45926267b2b0533756b", "20741c33fc86b18b91adfaeb8b3cba39c278d4f6a1923ddf3578e97150ba14b5", "linux/amd64"},
	agentARM64:     {"beff0fe23073d87e87886f52073216a747de321b27ccf685d1722bcf864c15dc", "225f8099e4e84b21bcd261f3a72fd167b5115d63203ecce6053826704f1c76c5", "8e4ce72baa2b1c863b499f891e4e84a32bd7ba39583bb372b6b21fdfcf88605b", "linux/arm64"},
	oldlayoutAMD64: {"2c81cc157acf6091c79dcd58925b2ed1d599782d5e53151e4c1f8c84e69efc3e", "61888a84a61ebc5a8d176e9383efde7295121e38a6921c0935290a989e12e938", "057d3860fb86a16e1ca647f7724f8027e8d9679ca738c9b64b37d3c0942181f0", "linux/amd64"},
	oldlayoutARM64: {"19fe97f9a947febdaed5cbd38668455e683ab209e1b4ebda451c737361afbbeb", "cdac55b532aefed4ba47119cef9dc09fdb7cfde934cfc852faf090f992109861", "81301d7ff8194180ee3f771c390e2f5234a3188052273e7a14df2727a743372d", "linux/arm64"},
}

// store is a Fetcher over OCI image layout directories (blobs/sha256/<hex>),
// searched in order, plus manifests and blobs a test writes (put). It stands
// for one repository holding what those layouts were pushed as.
type store struct {
	dirs  []string
	extra map[v1.Hash][]byte
	calls int // Manifest and Blob calls, to check what Gather reads
}

func newStore(t *testing.T, fixtures ...string) *store {
	t.Helper()
	s := &store{extra: map[v1.Hash][]byte{}}
	for _, f := range fixtures {
		dir := filepath.Join(fixtureRoot, f)
		if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
			t.Fatalf("fixture %s: %v", f, err)
		}
		s.dirs = append(s.dirs, dir)
	}
	return s
}

func (s *store) read(h v1.Hash) ([]byte, error) {
	if b, ok := s.extra[h]; ok {
		return b, nil
	}
	for _, d := range s.dirs {
		b, err := os.ReadFile(filepath.Join(d, "blobs", h.Algorithm, h.Hex))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return b, err
	}
	return nil, fault.Inputf("%s not found", h)
}

// Manifest serves the body's mediaType as Content-Type, as a registry does
// for what was pushed with it.
func (s *store) Manifest(_ context.Context, h v1.Hash) ([]byte, string, error) {
	s.calls++
	b, err := s.read(h)
	if err != nil {
		return nil, "", err
	}
	var probe struct {
		MediaType string `json:"mediaType"`
	}
	_ = json.Unmarshal(b, &probe)
	return b, probe.MediaType, nil
}

func (s *store) Blob(_ context.Context, d v1.Descriptor, max int64) ([]byte, error) {
	s.calls++
	h := d.Digest
	b, err := s.read(h)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: over %d bytes", h, max)
	}
	return b, nil
}

// put stores raw and returns its descriptor with mediaType mt.
func (s *store) put(raw []byte, mt types.MediaType) v1.Descriptor {
	d := v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: digestOf(raw)}
	s.extra[d.Digest] = raw
	return d
}

// desc is the descriptor a registry resolves hex to: media type, size, digest.
func (s *store) desc(t *testing.T, hex string) v1.Descriptor {
	t.Helper()
	h := hash(t, hex)
	b, err := s.read(h)
	if err != nil {
		t.Fatal(err)
	}
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		t.Fatalf("%s: %v", hex, err)
	}
	return v1.Descriptor{MediaType: probe.MediaType, Size: int64(len(b)), Digest: h}
}

func digestOf(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

func hash(t *testing.T, hex string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash("sha256:" + hex)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// refOf names a fixture as the tag CI pushed it to.
func refOf(fixture string) string {
	repo, tag, _ := strings.Cut(fixture, "__")
	return "registry.test/example/" + repo + ":" + tag
}

// imageRef names a fixture's platform image manifest by digest.
func imageRef(fixture string) string {
	repo, _, _ := strings.Cut(fixture, "__")
	return "registry.test/example/" + repo + "@sha256:" + fixtures[fixture].image
}

// gatherFixture gathers the index a fixture's tag holds.
func gatherFixture(t *testing.T, fixture string) Source {
	t.Helper()
	s := newStore(t, fixture)
	src, err := Gather(context.Background(), s, refOf(fixture), s.desc(t, fixtures[fixture].index))
	if err != nil {
		t.Fatalf("Gather %s: %v", fixture, err)
	}
	return src
}

// gatherImageOf gathers a fixture's platform image manifest as a source on its own.
func gatherImageOf(t *testing.T, fixture string) Source {
	t.Helper()
	s := newStore(t, fixture)
	ref := imageRef(fixture)
	src, err := Gather(context.Background(), s, ref, s.desc(t, fixtures[fixture].image))
	if err != nil {
		t.Fatalf("Gather %s: %v", ref, err)
	}
	return src
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantInput(t *testing.T, err error, substrs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an input error containing %q, got none", substrs)
	}
	if k := fault.KindOf(err); k != fault.Input {
		t.Errorf("error kind %v, want input: %v", k, err)
	}
	for _, s := range substrs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}
