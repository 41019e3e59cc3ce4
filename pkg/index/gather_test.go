package index

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/pkg/fault"
)

// Every fixture's tag holds an index of one platform image manifest and its
// attestation manifest; Gather classifies them from the index alone.
func TestGatherBuildKit(t *testing.T) {
	for fx, f := range fixtures {
		t.Run(fx, func(t *testing.T) {
			s := newStore(t, fx)
			src, err := Gather(context.Background(), s, refOf(fx), s.desc(t, f.index))
			if err != nil {
				t.Fatal(err)
			}
			if s.calls != 1 {
				t.Errorf("Gather made %d reads, want 1 (the index)", s.calls)
			}
			if src.Descriptor.MediaType != types.OCIImageIndex || src.Descriptor.Digest.Hex != f.index {
				t.Errorf("source descriptor %v", src.Descriptor)
			}
			if len(src.Children) != 2 {
				t.Fatalf("%d children, want 2", len(src.Children))
			}
			im, at := src.Children[0], src.Children[1]
			if im.Kind != KindImage || im.Descriptor.Digest.Hex != f.image || FormatPlatform(im.Descriptor.Platform) != f.platform {
				t.Errorf("first child %+v, want image %s %s", im, f.platform, f.image)
			}
			if at.Kind != KindAttestation || at.Descriptor.Digest.Hex != f.att || at.Subject.Hex != f.image {
				t.Errorf("second child %+v, want attestation %s of %s", at, f.att, f.image)
			}
		})
	}
}

func TestGatherShapes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		build func(t *testing.T, s *store) v1.Descriptor
		fx    []string
		want  []string // kind platform digest[:12]
	}{
		{
			name: "image manifest, platform from its config",
			fx:   []string{oldlayoutARM64},
			build: func(t *testing.T, s *store) v1.Descriptor {
				return s.desc(t, fixtures[oldlayoutARM64].image)
			},
			want: []string{"image linux/arm64 " + fixtures[oldlayoutARM64].image[:12]},
		},
		{
			name: "nested indexes are flattened",
			fx:   []string{fleetAMD64, fleetARM64, agentARM64},
			build: func(t *testing.T, s *store) v1.Descriptor {
				inner := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{
					s.desc(t, fixtures[fleetARM64].index), s.desc(t, fixtures[agentARM64].index)}}
				outer := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{
					s.desc(t, fixtures[fleetAMD64].index), s.put(mustJSON(t, inner), types.OCIImageIndex)}}
				return s.put(mustJSON(t, outer), types.OCIImageIndex)
			},
			want: []string{
				"image linux/amd64 " + fixtures[fleetAMD64].image[:12], "attestation unknown/unknown " + fixtures[fleetAMD64].att[:12],
				"image linux/arm64 " + fixtures[fleetARM64].image[:12], "attestation unknown/unknown " + fixtures[fleetARM64].att[:12],
				"image linux/arm64 " + fixtures[agentARM64].image[:12], "attestation unknown/unknown " + fixtures[agentARM64].att[:12],
			},
		},
		{
			name: "index child without platform: read from its config",
			fx:   []string{fleetARM64},
			build: func(t *testing.T, s *store) v1.Descriptor {
				idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{
					s.desc(t, fixtures[fleetARM64].image)}}
				return s.put(mustJSON(t, idx), types.OCIImageIndex)
			},
			want: []string{"image linux/arm64 " + fixtures[fleetARM64].image[:12]},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, tt.fx...)
			src, err := Gather(ctx, s, "registry.test/shape:1", tt.build(t, s))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range src.Children {
				got = append(got, string(c.Kind)+" "+FormatPlatform(c.Descriptor.Platform)+" "+c.Descriptor.Digest.Hex[:12])
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("children\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// flip returns b with its first byte changed: same size, other content.
func flip(b []byte) []byte {
	out := append([]byte(nil), b...)
	if len(out) > 0 {
		out[0] ^= 1
	}
	return out
}

// tampered serves other bytes than asked for.
type tampered struct{ *store }

func (t tampered) Manifest(ctx context.Context, h v1.Hash) ([]byte, string, error) {
	b, mt, err := t.store.Manifest(ctx, h)
	return flip(b), mt, err
}

func (t tampered) Blob(ctx context.Context, d v1.Descriptor, max int64) ([]byte, error) {
	b, err := t.store.Blob(ctx, d, max)
	return flip(b), err
}

func TestGatherErrors(t *testing.T) {
	ctx := context.Background()
	fleet := fixtures[fleetAMD64]
	index := func(t *testing.T, s *store, ds ...v1.Descriptor) v1.Descriptor {
		return s.put(mustJSON(t, v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: ds}), types.OCIImageIndex)
	}
	attDesc := func(t *testing.T, s *store) v1.Descriptor {
		var idx v1.IndexManifest
		raw, _ := s.read(hash(t, fleet.index))
		if err := json.Unmarshal(raw, &idx); err != nil {
			t.Fatal(err)
		}
		return idx.Manifests[1]
	}
	tests := []struct {
		name    string
		fx      string
		fetcher func(s *store) Fetcher
		build   func(t *testing.T, s *store) v1.Descriptor
		wantErr string
	}{
		{name: "OCI artifact", fx: fleetAMD64, wantErr: "OCI artifact (artifactType application/vnd.example.sbom+json)",
			build: func(t *testing.T, s *store) v1.Descriptor {
				cfg := v1.Descriptor{MediaType: types.OCIEmptyJSON, Size: 2, Digest: hash(t, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")}
				m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: "application/vnd.example.sbom+json", Config: cfg, Layers: []v1.Descriptor{cfg}}
				return s.put(mustJSON(t, m), types.OCIManifestSchema1)
			}},
		{name: "manifest with a non-image config (helm chart)", fx: fleetAMD64, wantErr: `config media type "application/vnd.cncf.helm.config.v1+json"`,
			build: func(t *testing.T, s *store) v1.Descriptor {
				cfg := v1.Descriptor{MediaType: "application/vnd.cncf.helm.config.v1+json", Size: 2, Digest: hash(t, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")}
				m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: []v1.Descriptor{}}
				return s.put(mustJSON(t, m), types.OCIManifestSchema1)
			}},
		{name: "BuildKit attestation manifest", fx: fleetAMD64, wantErr: "artifactType application/vnd.docker.attestation.manifest.v1+json",
			build: func(t *testing.T, s *store) v1.Descriptor { return s.desc(t, fleet.att) }},
		{name: "older-layout attestation manifest", fx: oldlayoutAMD64, wantErr: "is an attestation manifest (in-toto layers, config platform unknown/unknown)",
			build: func(t *testing.T, s *store) v1.Descriptor { return s.desc(t, fixtures[oldlayoutAMD64].att) }},
		{name: "a config blob", fx: fleetAMD64, wantErr: `neither an image manifest nor an index (media type "application/vnd.oci.image.config.v1+json")`,
			build: func(t *testing.T, s *store) v1.Descriptor {
				raw, _ := s.read(hash(t, "4f0d930999bbe6516fd6cbdcd296179f41b305f62c58f7f31c36998b30e22b8b"))
				return v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(raw)), Digest: digestOf(raw)}
			}},
		{name: "a layer blob", fx: fleetAMD64, wantErr: "is not a manifest",
			build: func(t *testing.T, s *store) v1.Descriptor {
				raw, _ := s.read(hash(t, "7f1e44492d889c5cee9f6b824560ccd870b82b488a8e038ed3658a2cd85e6e1b"))
				return v1.Descriptor{MediaType: types.OCILayer, Size: int64(len(raw)), Digest: digestOf(raw)}
			}},
		{name: "schema 1 manifest", fx: fleetAMD64, wantErr: "neither an image manifest nor an index",
			build: func(t *testing.T, s *store) v1.Descriptor {
				return s.put([]byte(`{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws","name":"x","tag":"1","fsLayers":[]}`), types.DockerManifestSchema1Signed)
			}},
		{name: "index of attestations only", fx: fleetAMD64, wantErr: "holds no platform image manifest",
			build: func(t *testing.T, s *store) v1.Descriptor { return index(t, s, attDesc(t, s)) }},
		{name: "attestation without subject digest", fx: fleetAMD64, wantErr: "no valid vnd.docker.reference.digest annotation",
			build: func(t *testing.T, s *store) v1.Descriptor {
				a := attDesc(t, s)
				a.Annotations = map[string]string{AnnotationReferenceType: ReferenceTypeAttestation, AnnotationReferenceDigest: "sha256:nothex"}
				return index(t, s, s.desc(t, fleet.index), a)
			}},
		{name: "index child of unknown media type", fx: fleetAMD64, wantErr: `child sha256:` + fleet.att + ` is neither an image manifest nor an index (media type "application/vnd.example+json")`,
			build: func(t *testing.T, s *store) v1.Descriptor {
				d := s.desc(t, fleet.att)
				d.MediaType = "application/vnd.example+json"
				return index(t, s, s.desc(t, fleet.index), d)
			}},
		{name: "index child without platform that is no image", fx: oldlayoutAMD64, wantErr: "is an attestation manifest",
			build: func(t *testing.T, s *store) v1.Descriptor {
				return index(t, s, s.desc(t, fixtures[oldlayoutAMD64].image), s.desc(t, fixtures[oldlayoutAMD64].att))
			}},
		{name: "manifest does not match its digest", fx: fleetAMD64, wantErr: "not to its digest",
			fetcher: func(s *store) Fetcher { return tampered{s} },
			build:   func(t *testing.T, s *store) v1.Descriptor { return s.desc(t, fleet.index) }},
		{name: "config does not match its digest", fx: fleetAMD64, wantErr: "config of sha256:" + fleet.image + ": blob sha256:4f0d930999bbe6516fd6cbdcd296179f41b305f62c58f7f31c36998b30e22b8b: content hashes to",
			fetcher: func(s *store) Fetcher { return blobTampered{s} },
			build:   func(t *testing.T, s *store) v1.Descriptor { return s.desc(t, fleet.image) }},
		{name: "manifest not found", fx: fleetAMD64, wantErr: "not found",
			build: func(t *testing.T, s *store) v1.Descriptor {
				return v1.Descriptor{MediaType: types.OCIImageIndex, Digest: digestOf([]byte("nothing"))}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, tt.fx)
			var f Fetcher = s
			if tt.fetcher != nil {
				f = tt.fetcher(s)
			}
			const ref = "registry.test/bad/source:1"
			_, err := Gather(ctx, f, ref, tt.build(t, s))
			wantInput(t, err, ref, tt.wantErr)
		})
	}
}

// blobTampered serves manifests intact and blobs altered.
type blobTampered struct{ *store }

func (t blobTampered) Blob(ctx context.Context, d v1.Descriptor, max int64) ([]byte, error) {
	b, err := t.store.Blob(ctx, d, max)
	return flip(b), err
}

// A fetcher's own error kind survives Gather's wrapping.
func TestGatherKeepsFetcherErrorKind(t *testing.T) {
	_, err := Gather(context.Background(), failing{}, "registry.test/x:1", v1.Descriptor{Digest: digestOf(nil)})
	if fault.KindOf(err) != fault.Operational || !strings.Contains(err.Error(), "registry.test/x:1") {
		t.Errorf("got %v (kind %v), want the operational error with the ref", err, fault.KindOf(err))
	}
}

type failing struct{}

func (failing) Manifest(context.Context, v1.Hash) ([]byte, string, error) {
	return nil, "", fault.Operationalf("registry unreachable")
}

func (failing) Blob(context.Context, v1.Descriptor, int64) ([]byte, error) {
	return nil, fault.Operationalf("registry unreachable")
}
