package testenv_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/seal-dev/seal/internal/testenv"
)

var fixtures = []string{
	"fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64",
	"fleet-agent__v0.1.0-linux-amd64", "fleet-agent__v0.1.0-linux-arm64",
	"oldlayout__v1-linux-amd64", "oldlayout__v1-linux-arm64",
}

func TestFixture(t *testing.T) {
	for _, f := range fixtures {
		p := testenv.Fixture(t, f)
		if !filepath.IsAbs(p) {
			t.Errorf("Fixture(%s) = %s, not absolute", f, p)
		}
		if _, err := os.Stat(filepath.Join(p, "index.json")); err != nil {
			t.Errorf("Fixture(%s): %v", f, err)
		}
	}
}

// PushLayout pushes BuildKit's output byte for byte: the registry serves the
// very index and child manifests that are in the layout.
func TestPushLayoutUnchanged(t *testing.T) {
	for _, r := range testenv.Registries(t) {
		t.Run(r.Name, func(t *testing.T) {
			for _, f := range fixtures {
				dir := testenv.Fixture(t, f)
				ref := r.Ref("fleet:" + strings.ReplaceAll(f, "__", "-"))
				got := testenv.PushLayout(t, dir, ref, r.RemoteOptions(context.Background())...)
				if want := testenv.LayoutDigest(t, dir); got != want {
					t.Fatalf("%s: PushLayout = %s, want the index.json digest %s", f, got, want)
				}

				p, err := layout.FromPath(dir)
				if err != nil {
					t.Fatal(err)
				}
				top, err := p.ImageIndex()
				if err != nil {
					t.Fatal(err)
				}
				local, err := top.ImageIndex(got)
				if err != nil {
					t.Fatal(err)
				}
				remoteIdx, err := remote.Index(parse(t, ref), r.RemoteOptions(context.Background())...)
				if err != nil {
					t.Fatal(err)
				}
				assertSameManifest(t, f, local, remoteIdx)
				im, err := local.IndexManifest()
				if err != nil {
					t.Fatal(err)
				}
				if len(im.Manifests) != 2 {
					t.Errorf("%s: %d children, want image + attestation", f, len(im.Manifests))
				}
				for _, child := range im.Manifests {
					desc, err := remote.Head(parse(t, r.Ref("fleet@"+child.Digest.String())), r.RemoteOptions(context.Background())...)
					if err != nil {
						t.Errorf("%s: child %s not pushed: %v", f, child.Digest, err)
						continue
					}
					if desc.Size != child.Size || desc.MediaType != child.MediaType {
						t.Errorf("%s: child %s served as %s/%d, want %s/%d", f, child.Digest, desc.MediaType, desc.Size, child.MediaType, child.Size)
					}
				}
			}
		})
	}
}

type rawManifester interface{ RawManifest() ([]byte, error) }

func assertSameManifest(t *testing.T, what string, want, got rawManifester) {
	t.Helper()
	w, err := want.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	g, err := got.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w, g) {
		t.Errorf("%s: the registry serves another manifest than the layout's", what)
	}
}

func TestPushRelease(t *testing.T) {
	r := testenv.External(t) // also proves PushLayout works through auth and TLS
	ds := r.PushRelease(t, "team/fleet", "fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64")
	for i, tag := range []string{"v0.1.0-linux-amd64", "v0.1.0-linux-arm64"} {
		d := ds[i]
		if d.Context().String() != r.Host+"/team/fleet" {
			t.Errorf("repository %s, want %s/team/fleet", d.Context(), r.Host)
		}
		if want := testenv.LayoutDigest(t, testenv.Fixture(t, "fleet__"+tag)).String(); d.DigestStr() != want {
			t.Errorf("%s: digest %s, want %s", tag, d.DigestStr(), want)
		}
		desc, err := remote.Head(d.Context().Tag(tag), r.RemoteOptions(context.Background())...)
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest.String() != d.DigestStr() {
			t.Errorf("tag %s → %s, want %s", tag, desc.Digest, d.DigestStr())
		}
	}
}
