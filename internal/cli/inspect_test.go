package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/oci"
)

// pushBundleReferrer attaches a bundle-shaped referrer (what cosign v3 and
// seal sign write) to subject.
func pushBundleReferrer(t *testing.T, c *oci.Client, subject string, predicateType string) v1.Hash {
	t.Helper()
	ref, err := c.ParseReference(subject)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	desc, err := c.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	empty := v1.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Size: 2,
		Digest: v1.Hash{Algorithm: "sha256", Hex: "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}}
	layer := []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`)
	sum := sha256.Sum256(layer)
	ld := v1.Descriptor{MediaType: index.ArtifactTypeBundle, Size: int64(len(layer)),
		Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}}
	for _, b := range []struct {
		d    v1.Descriptor
		data []byte
	}{{empty, []byte("{}")}, {ld, layer}} {
		if err := c.PushBlob(ctx, ref.Context(), b.d, b.data); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"artifactType": index.ArtifactTypeBundle, "config": empty, "layers": []v1.Descriptor{ld},
		"subject":     v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size},
		"annotations": map[string]string{"dev.sigstore.bundle.content": "dsse-envelope", index.AnnotationBundlePredicate: predicateType},
	})
	d, err := c.PushReferrer(ctx, ref.Context().Digest(desc.Digest.String()), raw, "application/vnd.oci.image.manifest.v1+json")
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest
}

func TestInspectCommand(t *testing.T) {
	for _, r := range testenv.Registries(t) {
		t.Run(r.Name, func(t *testing.T) {
			r.PushRelease(t, "example/fleet", "fleet__v0.1.0-linux-amd64", "fleet__v0.1.0-linux-arm64")
			target := r.Ref("example/fleet:v0.1.0")
			if code, _, stderr := sealRun(t, "", "index", "create", target,
				r.Ref("example/fleet:v0.1.0-linux-amd64"), r.Ref("example/fleet:v0.1.0-linux-arm64")); code != 0 {
				t.Fatal(stderr)
			}
			c := oci.NewClient()
			code, stdout, stderr := sealRun(t, "", "inspect", "-o", "json", target)
			if code != 0 {
				t.Fatal(stderr)
			}
			var tree index.Inspected
			if err := json.Unmarshal([]byte(stdout), &tree); err != nil {
				t.Fatal(err)
			}
			if tree.Kind != index.KindIndex || len(tree.Manifests) != 2 {
				t.Fatalf("tree %s", stdout)
			}
			var armDigest string
			for _, m := range tree.Manifests {
				if m.Kind != index.KindImage || len(m.Attestations) != 1 ||
					fmt.Sprint(m.Attestations[0].PredicateTypes) != "[https://slsa.dev/provenance/v1]" {
					t.Fatalf("platform %s: %+v", m.Platform, m)
				}
				if m.Platform == "linux/arm64" {
					armDigest = m.Digest.String()
				}
			}
			// Attach a signature bundle to the arm64 manifest and a legacy
			// .sig tag to the index: both show up where they belong.
			bundle := pushBundleReferrer(t, c, r.Ref("example/fleet@"+armDigest), "https://sigstore.dev/cosign/sign/v1")
			legacy, err := oci.LegacyTag(mustDigest(t, r.Ref("example/fleet@"+tree.Digest.String())), ".sig")
			if err != nil {
				t.Fatal(err)
			}
			m, err := c.Manifest(context.Background(), mustRef(t, r.Ref("example/fleet@"+armDigest)))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Tag(context.Background(), legacy, m.Raw, string(m.Descriptor.MediaType)); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr = sealRun(t, "", "inspect", target)
			if code != 0 {
				t.Fatal(stderr)
			}
			for _, want := range []string{
				"linux/amd64", "linux/arm64", "https://slsa.dev/provenance/v1",
				bundle.String() + " bundle https://sigstore.dev/cosign/sign/v1",
				"legacy-sig (tag " + legacy.TagStr() + ")",
			} {
				if !strings.Contains(stdout, want) {
					t.Errorf("inspect output lacks %q:\n%s", want, stdout)
				}
			}
			// The bundle hangs under arm64, not under amd64.
			armAt := strings.Index(stdout, "image linux/arm64")
			if at := strings.Index(stdout, bundle.String()); at < armAt {
				t.Errorf("bundle listed before the arm64 manifest:\n%s", stdout)
			}
		})
	}
}

func mustDigest(t *testing.T, s string) name.Digest {
	t.Helper()
	d, err := name.NewDigest(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
