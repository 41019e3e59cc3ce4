package index

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// render draws a tree as `seal inspect` might: one node a line, indented.
func render(t *Tree) string {
	var b strings.Builder
	var walk func(n *Tree, depth int)
	walk = func(n *Tree, depth int) {
		fmt.Fprintf(&b, "%s%s %s", strings.Repeat("  ", depth), n.Kind, n.Digest.Hex[:12])
		if n.Platform != "" {
			fmt.Fprintf(&b, " %s", n.Platform)
		}
		if len(n.PredicateTypes) > 0 {
			fmt.Fprintf(&b, " %s", strings.Join(n.PredicateTypes, ","))
		}
		b.WriteString("\n")
		for _, c := range n.Manifests {
			walk(c, depth+1)
		}
		for _, c := range n.Attestations {
			walk(c, depth+1)
		}
	}
	walk(t, 0)
	return b.String()
}

func TestDescribe(t *testing.T) {
	ctx := context.Background()
	line := func(depth int, kind Kind, hex, rest string) string {
		s := strings.Repeat("  ", depth) + string(kind) + " " + hex[:12]
		if rest != "" {
			s += " " + rest
		}
		return s + "\n"
	}
	perPlatform := func(fx string) string {
		f := fixtures[fx]
		return line(0, KindIndex, f.index, "") +
			line(1, KindImage, f.image, f.platform) +
			line(2, KindAttestation, f.att, f.platform+" "+slsaProvenance1)
	}
	// The older layout's attestation manifest with the predicate-type annotation
	// removed from its in-toto layer: only the statement says its type.
	var bare []byte
	{
		raw, err := newStore(t, oldlayoutAMD64).read(hash(t, fixtures[oldlayoutAMD64].att))
		if err != nil {
			t.Fatal(err)
		}
		var m v1.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		m.Layers[0].Annotations = nil
		bare = mustJSON(t, m)
		if strings.Contains(string(bare), AnnotationPredicateType) {
			t.Fatal("annotation not removed")
		}
	}
	tests := []struct {
		name  string
		fx    []string
		build func(t *testing.T, s *store) v1.Descriptor
		want  string
	}{
		{name: "BuildKit index", fx: []string{fleetAMD64},
			build: func(t *testing.T, s *store) v1.Descriptor { return s.desc(t, fixtures[fleetAMD64].index) },
			want:  perPlatform(fleetAMD64)},
		{name: "older-layout index", fx: []string{oldlayoutARM64},
			build: func(t *testing.T, s *store) v1.Descriptor { return s.desc(t, fixtures[oldlayoutARM64].index) },
			want:  perPlatform(oldlayoutARM64)},
		{name: "image manifest, platform from config", fx: []string{agentARM64},
			build: func(t *testing.T, s *store) v1.Descriptor { return s.desc(t, fixtures[agentARM64].image) },
			want:  line(0, KindImage, fixtures[agentARM64].image, "linux/arm64")},
		{name: "attestation manifest on its own", fx: []string{fleetARM64},
			build: func(t *testing.T, s *store) v1.Descriptor { return s.desc(t, fixtures[fleetARM64].att) },
			want:  line(0, KindAttestation, fixtures[fleetARM64].att, slsaProvenance1)},
		{name: "older-layout attestation manifest on its own", fx: []string{oldlayoutAMD64},
			build: func(t *testing.T, s *store) v1.Descriptor { return s.desc(t, fixtures[oldlayoutAMD64].att) },
			want:  line(0, KindAttestation, fixtures[oldlayoutAMD64].att, slsaProvenance1)},
		{name: "merged index", fx: []string{fleetAMD64, oldlayoutARM64},
			build: func(t *testing.T, s *store) v1.Descriptor {
				r, err := Merge([]Source{gatherFixture(t, fleetAMD64), gatherFixture(t, oldlayoutARM64)}, Options{})
				if err != nil {
					t.Fatal(err)
				}
				return s.put(r.Raw, r.Descriptor.MediaType)
			},
			want: "index ROOT\n" +
				line(1, KindImage, fixtures[fleetAMD64].image, "linux/amd64") +
				line(2, KindAttestation, fixtures[fleetAMD64].att, "linux/amd64 "+slsaProvenance1) +
				line(1, KindImage, fixtures[oldlayoutARM64].image, "linux/arm64") +
				line(2, KindAttestation, fixtures[oldlayoutARM64].att, "linux/arm64 "+slsaProvenance1)},
		{name: "nested index", fx: []string{fleetAMD64, fleetARM64},
			build: func(t *testing.T, s *store) v1.Descriptor {
				idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{
					s.desc(t, fixtures[fleetAMD64].index), s.desc(t, fixtures[fleetARM64].index)}}
				return s.put(mustJSON(t, idx), types.OCIImageIndex)
			},
			want: "index ROOT\n" + indent(perPlatform(fleetAMD64)) + indent(perPlatform(fleetARM64))},
		{name: "attestation layer without predicate-type annotation: read the statement", fx: []string{oldlayoutAMD64},
			build: func(t *testing.T, s *store) v1.Descriptor {
				f := fixtures[oldlayoutAMD64]
				a := s.put(bare, types.OCIManifestSchema1)
				a.Annotations = map[string]string{AnnotationReferenceType: ReferenceTypeAttestation, AnnotationReferenceDigest: "sha256:" + f.image}
				a.Platform = &v1.Platform{OS: "unknown", Architecture: "unknown"}
				idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{s.desc(t, f.image), a}}
				return s.put(mustJSON(t, idx), types.OCIImageIndex)
			},
			want: "index ROOT\n" +
				line(1, KindImage, fixtures[oldlayoutAMD64].image, "linux/amd64") +
				line(2, KindAttestation, digestOf(bare).Hex, "linux/amd64 "+slsaProvenance1)},
		{name: "OCI artifact", fx: []string{fleetAMD64},
			build: func(t *testing.T, s *store) v1.Descriptor {
				cfg := v1.Descriptor{MediaType: types.OCIEmptyJSON, Size: 2, Digest: hash(t, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")}
				m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: "application/vnd.example.sbom+json", Config: cfg, Layers: []v1.Descriptor{cfg}}
				return s.put(mustJSON(t, m), types.OCIManifestSchema1)
			},
			want: "artifact ROOT\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, tt.fx...)
			d := tt.build(t, s)
			tree, err := Describe(ctx, s, d)
			if err != nil {
				t.Fatal(err)
			}
			// Digests of manifests built in the test are not worth spelling out.
			want := strings.ReplaceAll(tt.want, "ROOT", d.Digest.Hex[:12])
			got := render(tree)
			if got != want {
				t.Errorf("tree\n%s\nwant\n%s", got, want)
			}
			if tree.Digest != d.Digest || tree.Size != d.Size || tree.MediaType != string(d.MediaType) {
				t.Errorf("root %s %d %s, want %s %d %s", tree.Digest, tree.Size, tree.MediaType, d.Digest, d.Size, d.MediaType)
			}
			// The JSON is stable and lowerCamelCase, and reads back the same.
			raw := mustJSON(t, tree)
			var back Tree
			if err := json.Unmarshal(raw, &back); err != nil || !reflect.DeepEqual(&back, tree) {
				t.Errorf("JSON round trip: %v\n%s", err, raw)
			}
		})
	}
}

func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "")
}

func TestDescribeJSON(t *testing.T) {
	s := newStore(t, fleetAMD64)
	tree, err := Describe(context.Background(), s, s.desc(t, fixtures[fleetAMD64].index))
	if err != nil {
		t.Fatal(err)
	}
	tree.Manifests[0].Referrers = []Referrer{{Digest: digestOf([]byte("sig")), MediaType: string(types.OCIManifestSchema1),
		ArtifactType: "application/vnd.dev.sigstore.bundle.v0.3+json", PredicateType: "https://sigstore.dev/cosign/sign/v1", Format: "bundle"}}
	got := string(mustJSON(t, tree))
	f := fixtures[fleetAMD64]
	want := `{"digest":"sha256:` + f.index + `","mediaType":"application/vnd.oci.image.index.v1+json","size":855,"kind":"index",` +
		`"manifests":[{"digest":"sha256:` + f.image + `","mediaType":"application/vnd.oci.image.manifest.v1+json","size":477,"kind":"image","platform":"linux/amd64",` +
		`"attestations":[{"digest":"sha256:` + f.att + `","mediaType":"application/vnd.oci.image.manifest.v1+json","size":836,` +
		`"artifactType":"application/vnd.docker.attestation.manifest.v1+json","kind":"attestation",` +
		`"annotations":{"vnd.docker.reference.digest":"sha256:` + f.image + `","vnd.docker.reference.type":"attestation-manifest"},` +
		`"platform":"linux/amd64","subject":"sha256:` + f.image + `","predicateTypes":["https://slsa.dev/provenance/v1"]}],` +
		`"referrers":[{"digest":"sha256:` + digestOf([]byte("sig")).Hex + `","mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","predicateType":"https://sigstore.dev/cosign/sign/v1","format":"bundle"}]}]}`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
