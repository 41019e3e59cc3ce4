package buildkit

import (
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The manifest types below follow the field order of the OCI image-spec Go
// types, which is what BuildKit marshals (go-containerregistry's own types
// put size before digest). BuildKit indents manifests and indexes with two
// spaces and writes no trailing newline.

type descriptor struct {
	MediaType   types.MediaType   `json:"mediaType"`
	Digest      v1.Hash           `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Data        []byte            `json:"data,omitempty"`
	Platform    *platformJSON     `json:"platform,omitempty"`
}

type platformJSON struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	OSVersion    string   `json:"os.version,omitempty"`
	OSFeatures   []string `json:"os.features,omitempty"`
	Variant      string   `json:"variant,omitempty"`
}

type manifestJSON struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     types.MediaType `json:"mediaType"`
	ArtifactType  string          `json:"artifactType,omitempty"`
	Config        descriptor      `json:"config"`
	Layers        []descriptor    `json:"layers"`
	Subject       *descriptor     `json:"subject,omitempty"`
}

type indexJSON struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     types.MediaType `json:"mediaType"`
	Manifests     []descriptor    `json:"manifests"`
}

func marshalManifest(v any) ([]byte, error) {
	return json.MarshalIndent(v, "", "  ")
}

// dummyConfig is the image config of an attestation manifest in the older
// layout: unknown/unknown, with the statements' digests as diff_ids.
type dummyConfig struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	Config       struct{} `json:"config"`
	RootFS       rootFS   `json:"rootfs"`
}

type rootFS struct {
	Type    string    `json:"type"`
	DiffIDs []v1.Hash `json:"diff_ids"`
}

// attestationManifest wraps the in-toto layers in the given layout; img is
// the platform image they attest.
func attestationManifest(l Layout, layers []*rawLayer, img *rawImage) (*rawImage, error) {
	switch l {
	case LayoutArtifact:
		return newImage(MediaTypeEmpty, []byte("{}"), layers, &descriptor{
			MediaType: types.OCIManifestSchema1,
			Digest:    img.digest,
			Size:      int64(len(img.manifest)),
		}, ArtifactTypeAttestation)
	case LayoutDummyConfig:
		cfg := dummyConfig{Architecture: "unknown", OS: "unknown", RootFS: rootFS{Type: "layers"}}
		for _, l := range layers {
			cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		}
		raw, err := json.Marshal(cfg)
		if err != nil {
			return nil, err
		}
		return newImage(types.OCIConfigJSON, raw, layers, nil, "")
	}
	return nil, fmt.Errorf("unknown layout %v", l)
}

// newImage makes an image manifest over config and layers. The empty
// config of an OCI artifact is also inlined as data, as BuildKit does.
func newImage(configType types.MediaType, config []byte, layers []*rawLayer, subject *descriptor, artifactType string) (*rawImage, error) {
	m := manifestJSON{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        descriptor{MediaType: configType, Digest: digestOf(config), Size: int64(len(config))},
		Layers:        make([]descriptor, len(layers)),
		Subject:       subject,
	}
	if configType == MediaTypeEmpty {
		m.Config.Data = config
	}
	for i, l := range layers {
		m.Layers[i] = l.descriptor()
	}
	raw, err := marshalManifest(m)
	if err != nil {
		return nil, err
	}
	return &rawImage{
		manifest: raw,
		digest:   digestOf(raw),
		config:   newLayer(configType, config, digestOf(config)),
		layers:   layers,
	}, nil
}

// newIndex is BuildKit's per-platform index: the image with its platform,
// then its attestation manifest, platform unknown/unknown, pointing back to
// the image through the vnd.docker.reference annotations.
func newIndex(img, att *rawImage, p v1.Platform) (*rawIndex, error) {
	idx := indexJSON{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []descriptor{
			{
				MediaType: types.OCIManifestSchema1,
				Digest:    img.digest,
				Size:      int64(len(img.manifest)),
				Platform: &platformJSON{
					Architecture: p.Architecture,
					OS:           p.OS,
					OSVersion:    p.OSVersion,
					OSFeatures:   p.OSFeatures,
					Variant:      p.Variant,
				},
			},
			{
				MediaType: types.OCIManifestSchema1,
				Digest:    att.digest,
				Size:      int64(len(att.manifest)),
				Annotations: map[string]string{
					AnnotationReferenceDigest: img.digest.String(),
					AnnotationReferenceType:   ReferenceTypeAttestation,
				},
				Platform: &platformJSON{Architecture: "unknown", OS: "unknown"},
			},
		},
	}
	raw, err := marshalManifest(idx)
	if err != nil {
		return nil, err
	}
	return &rawIndex{
		raw:    raw,
		digest: digestOf(raw),
		images: map[v1.Hash]*rawImage{img.digest: img, att.digest: att},
	}, nil
}
