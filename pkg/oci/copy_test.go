package oci_test

import (
	"context"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
)

// checkTree walks the manifest h in repo and fails unless every manifest
// and blob below it is there, intact.
func checkTree(t *testing.T, ctx context.Context, c *oci.Client, repo name.Repository, h v1.Hash) (manifests, blobs int) {
	t.Helper()
	m, err := c.Manifest(ctx, digestRef(t, c, repo, h))
	if err != nil {
		t.Fatal(err)
	}
	manifests++
	if m.IsIndex() {
		idx, err := m.Index()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range idx.Manifests {
			cm, cb := checkTree(t, ctx, c, repo, d.Digest)
			manifests += cm
			blobs += cb
		}
		return manifests, blobs
	}
	im, err := m.Image()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range append([]v1.Descriptor{im.Config}, im.Layers...) {
		if _, err := c.BlobBytes(ctx, repo, d, 1<<20); err != nil {
			t.Fatal(err)
		}
		blobs++
	}
	return manifests, blobs
}

func TestCopyTree(t *testing.T) {
	ctx := testCtx(t)
	dist := testenv.Distribution(t)
	other := testenv.GGCR(t)
	pushed := dist.PushFixture(t, "fleet", fixture)
	want := testenv.LayoutDigest(t, testenv.Fixture(t, fixture))
	srcProxy := testenv.NewFaultProxy(t, "http://"+dist.Host)
	dstProxy := testenv.NewFaultProxy(t, "http://"+other.Host)
	c := plainClient(t)
	src := digestRef(t, c, repoOf(t, c, srcProxy.Host()+"/fleet"), mustHash(t, pushed.DigestStr()))

	srcManifests, srcBlobs := checkTree(t, ctx, c, src.Context(), want)
	if srcManifests != 3 {
		t.Fatalf("fixture has %d manifests, want 3 (index, image, attestation)", srcManifests)
	}

	for _, tc := range []struct {
		name  string
		dst   string
		proxy *testenv.FaultProxy
		mount bool
	}{
		{"same registry", srcProxy.Host() + "/promoted", srcProxy, true},
		{"other registry", dstProxy.Host() + "/fleet", dstProxy, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srcProxy.ResetCounts()
			dstProxy.ResetCounts()
			dst := repoOf(t, c, tc.dst)
			d, err := c.CopyTree(ctx, src, dst)
			if err != nil {
				t.Fatal(err)
			}
			if d.Digest != want || d.MediaType != "application/vnd.oci.image.index.v1+json" {
				t.Fatalf("CopyTree = %+v, want %s", d, want)
			}
			counts := tc.proxy.Counts()
			if n := counts["PUT manifest"]; n != srcManifests {
				t.Fatalf("%d manifest pushes, want %d", n, srcManifests)
			}
			if tc.mount {
				// Each distinct blob mounted, none uploaded or downloaded.
				if counts["POST mount"] == 0 || counts["PUT upload"] != 0 || counts["GET blob"] != 0 {
					t.Fatalf("counts %v: want mounts only", counts)
				}
			} else {
				if srcProxy.Count("GET", "blob") == 0 || counts["PUT upload"] == 0 {
					t.Fatalf("source %v, destination %v: want streamed copies", srcProxy.Counts(), counts)
				}
			}
			m, b := checkTree(t, ctx, c, dst, want)
			if m != srcManifests || b != srcBlobs {
				t.Fatalf("copy has %d manifests and %d blobs, want %d and %d", m, b, srcManifests, srcBlobs)
			}

			// Again: everything is there, nothing is written.
			tc.proxy.ResetCounts()
			if _, err := c.CopyTree(ctx, src, dst); err != nil {
				t.Fatal(err)
			}
			counts = tc.proxy.Counts()
			if counts["PUT manifest"]+counts["PUT upload"]+counts["POST upload"]+counts["POST mount"] != 0 {
				t.Fatalf("second copy wrote: %v", counts)
			}
		})
	}

	t.Run("missing source", func(t *testing.T) {
		missing := digestRef(t, c, src.Context(), sha([]byte("nothing")))
		_, err := c.CopyTree(ctx, missing, repoOf(t, c, dstProxy.Host()+"/none"))
		mustKind(t, err, fault.Input)
	})
}
