package testenv

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Fixture is the absolute path of testdata/buildkit/<name>, an OCI layout of
// real BuildKit output (see its README.md).
func Fixture(t testing.TB, fixture string) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "testdata", "buildkit", fixture)
}

// LayoutDigest is the digest of the single entry of the layout's index.json:
// what BuildKit pushed as the tag.
func LayoutDigest(t testing.TB, dir string) v1.Hash {
	t.Helper()
	return layoutEntry(t, dir).Digest
}

func layoutEntry(t testing.TB, dir string) v1.Descriptor {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatalf("open layout %s: %v", dir, err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatalf("layout %s: %v", dir, err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		t.Fatalf("layout %s: index.json: %v", dir, err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("layout %s: index.json has %d entries, want 1", dir, len(im.Manifests))
	}
	return im.Manifests[0]
}

// PushLayout pushes the OCI layout in dir to ref unchanged — the manifest its
// index.json names, byte for byte, with everything it refers to — as
// BuildKit pushed it, and returns its digest. opts say how to reach the
// registry (see Registry.RemoteOptions).
func PushLayout(t testing.TB, dir, ref string, opts ...remote.Option) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatalf("push layout: %v", err)
	}
	desc := layoutEntry(t, dir)
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatalf("open layout %s: %v", dir, err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatalf("layout %s: %v", dir, err)
	}
	var got v1.Hash
	switch {
	case desc.MediaType.IsIndex():
		idx, err := top.ImageIndex(desc.Digest)
		if err != nil {
			t.Fatalf("layout %s: %s: %v", dir, desc.Digest, err)
		}
		if err := remote.WriteIndex(r, idx, opts...); err != nil {
			t.Fatalf("push layout %s to %s: %v", dir, ref, err)
		}
		if got, err = idx.Digest(); err != nil {
			t.Fatal(err)
		}
	case desc.MediaType.IsImage():
		img, err := top.Image(desc.Digest)
		if err != nil {
			t.Fatalf("layout %s: %s: %v", dir, desc.Digest, err)
		}
		if err := remote.Write(r, img, opts...); err != nil {
			t.Fatalf("push layout %s to %s: %v", dir, ref, err)
		}
		if got, err = img.Digest(); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("layout %s: entry has media type %s, want an index or an image", dir, desc.MediaType)
	}
	if got != desc.Digest {
		t.Fatalf("push layout %s: pushed %s, but index.json names %s", dir, got, desc.Digest)
	}
	return got
}

// PushFixture pushes testdata/buildkit/<fixture> to the registry as
// <repo>:<tag>, the tag being the fixture's name after "__"
// ("fleet__v0.1.0-linux-amd64" → "v0.1.0-linux-amd64"), and returns the
// pushed reference by tag and digest.
func (r *Registry) PushFixture(t testing.TB, repo, fixture string) name.Digest {
	t.Helper()
	_, tag, ok := strings.Cut(fixture, "__")
	if !ok {
		t.Fatalf("fixture %q has no __ before its tag", fixture)
	}
	ref := r.Ref(repo + ":" + tag)
	h := PushLayout(t, Fixture(t, fixture), ref, r.RemoteOptions(context.Background())...)
	d, err := name.NewDigest(ref + "@" + h.String())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// PushRelease pushes fixtures into one repository of r (see PushFixture):
// the per-platform builds of one release, as CI leaves them.
func (r *Registry) PushRelease(t testing.TB, repo string, fixtures ...string) []name.Digest {
	t.Helper()
	out := make([]name.Digest, 0, len(fixtures))
	for _, f := range fixtures {
		out = append(out, r.PushFixture(t, repo, f))
	}
	return out
}
