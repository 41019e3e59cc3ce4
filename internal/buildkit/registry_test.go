package buildkit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/oci"
)

// release is two per-platform pushes of one component to reg, tagged like
// the fixtures (<version>-<os>-<arch>), one in each attestation layout.
func release(t *testing.T, reg *testenv.Registry, component string) []*Image {
	t.Helper()
	var out []*Image
	for i, p := range []v1.Platform{linuxAMD64, linuxARM64} {
		out = append(out, mustBuild(t, Options{
			Component: component,
			Ref:       reg.Ref(component + ":v1.0.0-" + p.OS + "-" + p.Architecture),
			Platform:  p,
			Layout:    []Layout{LayoutArtifact, LayoutDummyConfig}[i],
			SBOM:      i == 0,
		}))
	}
	return out
}

// remote.WriteIndex pushes a build unchanged to both in-process registries
// (Distribution, which the demo embeds, and go-containerregistry's): the
// tag resolves to the build's digest and every manifest and blob reads back
// byte for byte.
func TestPushUnchanged(t *testing.T) {
	ctx := context.Background()
	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) {
			c := oci.NewClient()
			for _, im := range release(t, reg, "example/server") {
				tag, err := name.NewTag(im.Ref())
				if err != nil {
					t.Fatal(err)
				}
				if err := remote.WriteIndex(tag, im.Index(), reg.RemoteOptions(ctx)...); err != nil {
					t.Fatalf("push %s: %v", tag, err)
				}
				desc, err := c.Resolve(ctx, tag)
				if err != nil {
					t.Fatal(err)
				}
				if desc.Digest != im.Digest() || desc.MediaType != types.OCIImageIndex || desc.Size != int64(len(im.RawIndex())) {
					t.Errorf("%s resolves to %+v, want %s", tag, desc, im.Digest())
				}
				repo := tag.Context()
				for _, h := range []v1.Hash{im.Digest(), im.PlatformDigest(), im.AttestationDigest()} {
					m, err := c.Manifest(ctx, repo.Digest(h.String()))
					if err != nil {
						t.Fatalf("manifest %s: %v", h, err)
					}
					want, _ := im.Blob(h)
					if !bytes.Equal(m.Raw, want) {
						t.Errorf("manifest %s changed in the registry", h)
					}
					if h == im.Digest() {
						continue
					}
					var man v1.Manifest
					mustUnmarshal(t, m.Raw, &man)
					for _, d := range append([]v1.Descriptor{man.Config}, man.Layers...) {
						got, err := c.BlobBytes(ctx, repo, d, 1<<20)
						if err != nil {
							t.Fatalf("blob %s of %s: %v", d.Digest, h, err)
						}
						want, _ := im.Blob(d.Digest)
						if !bytes.Equal(got, want) {
							t.Errorf("blob %s changed in the registry", d.Digest)
						}
					}
				}
			}
		})
	}
}

// pkg/index gathers two pushed per-platform builds and merges them into one
// index of four entries: each platform manifest followed by its attestation.
func TestGatherMergeTwoPlatforms(t *testing.T) {
	ctx := context.Background()
	reg := testenv.GGCR(t)
	c := oci.NewClient()
	ims := release(t, reg, "example/server-agent")
	var sources []index.Source
	for _, im := range ims {
		tag, err := name.NewTag(im.Ref())
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.WriteIndex(tag, im.Index(), reg.RemoteOptions(ctx)...); err != nil {
			t.Fatal(err)
		}
		desc, err := c.Resolve(ctx, tag)
		if err != nil {
			t.Fatal(err)
		}
		src, err := index.Gather(ctx, index.RegistryFetcher(c, tag.Context()), tag.String(), desc)
		if err != nil {
			t.Fatalf("Gather %s: %v", tag, err)
		}
		sources = append(sources, src)
	}
	res, err := index.Merge(sources, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		kind     index.Kind
		digest   v1.Hash
		platform string
		subject  v1.Hash
	}
	want := []entry{
		{index.KindImage, ims[0].PlatformDigest(), "linux/amd64", v1.Hash{}},
		{index.KindAttestation, ims[0].AttestationDigest(), "linux/amd64", ims[0].PlatformDigest()},
		{index.KindImage, ims[1].PlatformDigest(), "linux/arm64", v1.Hash{}},
		{index.KindAttestation, ims[1].AttestationDigest(), "linux/arm64", ims[1].PlatformDigest()},
	}
	if len(res.Entries) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(res.Entries), len(want), res.Entries)
	}
	for i, e := range res.Entries {
		got := entry{kind: e.Kind, digest: e.Digest, platform: e.Platform}
		if e.Subject != nil {
			got.subject = *e.Subject
		}
		if got != want[i] {
			t.Errorf("entry %d: %+v, want %+v", i, got, want[i])
		}
	}
	// The merged index keeps BuildKit's attestation descriptors unchanged.
	var merged v1.IndexManifest
	mustUnmarshal(t, res.Raw, &merged)
	att := merged.Manifests[1]
	if att.Annotations[AnnotationReferenceType] != ReferenceTypeAttestation ||
		att.Annotations[AnnotationReferenceDigest] != ims[0].PlatformDigest().String() ||
		att.Platform == nil || att.Platform.OS != "unknown" {
		t.Errorf("merged attestation descriptor %+v", att)
	}
}

// WriteLayout writes an OCI layout shaped like the fixtures' (the same
// oci-layout and index.json bytes but for the entry's digest and size), and
// the helper that pushes fixtures pushes it with the build's digest.
func TestWriteLayoutPushesLikeFixtures(t *testing.T) {
	ctx := context.Background()
	reg := testenv.GGCR(t)
	for _, fx := range fixtureBuilds(t)[:1] {
		for _, l := range []Layout{LayoutArtifact, LayoutDummyConfig} {
			o := fx.opts
			o.Layout = l
			im := mustBuild(t, o)
			dir := filepath.Join(t.TempDir(), "layout")
			if err := im.WriteLayout(dir); err != nil {
				t.Fatal(err)
			}
			fdir := testenv.Fixture(t, fx.dir)
			for _, f := range []string{"oci-layout", "index.json"} {
				got, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				want, err := os.ReadFile(filepath.Join(fdir, f))
				if err != nil {
					t.Fatal(err)
				}
				fixDigest := testenv.LayoutDigest(t, fdir)
				w := strings.ReplaceAll(string(want), fixDigest.Hex, im.Digest().Hex)
				if !bytes.Equal(got, []byte(w)) {
					t.Errorf("%s: %s\n%s\nwant (the fixture's, with this digest)\n%s", l, f, got, w)
				}
			}
			if got := testenv.LayoutDigest(t, dir); got != im.Digest() {
				t.Errorf("%s: layout entry %s, want %s", l, got, im.Digest())
			}
			ref := reg.Ref("example/fleet:layout-" + l.String())
			if got := testenv.PushLayout(t, dir, ref, reg.RemoteOptions(ctx)...); got != im.Digest() {
				t.Errorf("%s: pushed %s, want %s", l, got, im.Digest())
			}
			entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
			if err != nil {
				t.Fatal(err)
			}
			// index, image manifest, config, layer, attestation manifest,
			// attestation config, statement.
			if len(entries) != 7 {
				t.Errorf("%s: %d blobs, want 7", l, len(entries))
			}
		}
	}
}
