package oci_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
)

const fixture = "fleet__v0.1.0-linux-amd64"

// fastRetry keeps retries real but quick.
var fastRetry = oci.Retry{Attempts: 6, BaseDelay: 5 * time.Millisecond, MaxDelay: 100 * time.Millisecond, MaxElapsed: 5 * time.Second}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// clientFor is a client reaching reg the way reg says (its transport and
// credentials).
func clientFor(reg *testenv.Registry, opts ...oci.Option) *oci.Client {
	base := []oci.Option{oci.WithTransport(reg.Transport()), oci.WithKeychain(reg.Keychain()), oci.WithRetry(fastRetry)}
	return oci.NewClient(append(base, opts...)...)
}

// plainClient reaches loopback registries (and fault proxies) over plain HTTP.
func plainClient(t *testing.T, opts ...oci.Option) *oci.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	base := []oci.Option{oci.WithTransport(tr), oci.WithRetry(fastRetry)}
	return oci.NewClient(append(base, opts...)...)
}

func repoOf(t *testing.T, c *oci.Client, s string) name.Repository {
	t.Helper()
	ref, err := c.ParseReference(s + ":x")
	if err != nil {
		t.Fatal(err)
	}
	return ref.Context()
}

func digestRef(t *testing.T, c *oci.Client, repo name.Repository, h v1.Hash) name.Digest {
	t.Helper()
	ref, err := c.ParseReference(repo.String() + "@" + h.String())
	if err != nil {
		t.Fatal(err)
	}
	return ref.(name.Digest)
}

func mustKind(t *testing.T, err error, want fault.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want a %s error", want)
	}
	if got := fault.KindOf(err); got != want {
		t.Fatalf("error %q is %s, want %s", err, got, want)
	}
}

func sha(data []byte) v1.Hash {
	sum := sha256.Sum256(data)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

func blobDesc(mt string, data []byte) v1.Descriptor {
	return v1.Descriptor{MediaType: types.MediaType(mt), Size: int64(len(data)), Digest: sha(data)}
}

// platformManifest returns the linux image manifest of the fixture index
// pushed at idx.
func platformManifest(t *testing.T, ctx context.Context, c *oci.Client, idx name.Digest) v1.Descriptor {
	t.Helper()
	m, err := c.Manifest(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	im, err := m.Index()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" {
			return d
		}
	}
	t.Fatalf("no linux manifest in %s", idx)
	return v1.Descriptor{}
}

const emptyJSON = "application/vnd.oci.empty.v1+json"

// pushArtifact pushes the blobs of an OCI artifact manifest that refers to
// subject and returns the manifest (not pushed).
func pushArtifact(t *testing.T, ctx context.Context, c *oci.Client, repo name.Repository, subject v1.Descriptor, artifactType, content string) []byte {
	t.Helper()
	cfg := []byte("{}")
	layer := []byte(content)
	cfgDesc := blobDesc(emptyJSON, cfg)
	layerDesc := blobDesc("application/vnd.seal.test+json", layer)
	if err := c.PushBlob(ctx, repo, cfgDesc, cfg); err != nil {
		t.Fatal(err)
	}
	if err := c.PushBlob(ctx, repo, layerDesc, layer); err != nil {
		t.Fatal(err)
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        cfgDesc,
		Layers:        []v1.Descriptor{layerDesc},
		Subject:       &v1.Descriptor{MediaType: subject.MediaType, Size: subject.Size, Digest: subject.Digest},
		Annotations:   map[string]string{"dev.seal.test": content},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func isNotFoundMsg(err error) bool {
	return err != nil && strings.Contains(err.Error(), "not found")
}
