package buildkit

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// go-containerregistry implementations over the exact bytes generated here.
// Its own builders (mutate, empty) re-encode manifests in their own style;
// these serve ours unchanged, so remote.WriteIndex and layout.AppendIndex
// write the digests Build computed.

// rawLayer is a blob: a layer, a config or an in-toto statement.
type rawLayer struct {
	mediaType   types.MediaType
	data        []byte
	digest      v1.Hash
	diffID      v1.Hash
	annotations map[string]string
}

func newLayer(mt types.MediaType, data []byte, diffID v1.Hash) *rawLayer {
	return &rawLayer{mediaType: mt, data: data, digest: digestOf(data), diffID: diffID}
}

// newInTotoLayer is a statement layer annotated with its predicate type; it
// is stored uncompressed, so its diff ID is its digest.
func newInTotoLayer(statement []byte, predicateType string) *rawLayer {
	l := newLayer(MediaTypeInToto, statement, digestOf(statement))
	l.annotations = map[string]string{AnnotationPredicateType: predicateType}
	return l
}

func (l *rawLayer) descriptor() descriptor {
	return descriptor{MediaType: l.mediaType, Digest: l.digest, Size: int64(len(l.data)), Annotations: l.annotations}
}

func (l *rawLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *rawLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *rawLayer) Size() (int64, error)                { return int64(len(l.data)), nil }
func (l *rawLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *rawLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.data)), nil
}

func (l *rawLayer) Uncompressed() (io.ReadCloser, error) {
	if l.diffID == l.digest {
		return l.Compressed()
	}
	zr, err := gzip.NewReader(bytes.NewReader(l.data))
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", l.digest, err)
	}
	return zr, nil
}

// rawImage is an image manifest with its config and layers.
type rawImage struct {
	manifest []byte
	digest   v1.Hash
	config   *rawLayer
	layers   []*rawLayer
}

var _ v1.Image = (*rawImage)(nil)

func (im *rawImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (im *rawImage) Size() (int64, error)                { return int64(len(im.manifest)), nil }
func (im *rawImage) Digest() (v1.Hash, error)            { return im.digest, nil }
func (im *rawImage) RawManifest() ([]byte, error)        { return im.manifest, nil }
func (im *rawImage) Manifest() (*v1.Manifest, error) {
	return v1.ParseManifest(bytes.NewReader(im.manifest))
}
func (im *rawImage) ConfigName() (v1.Hash, error)   { return im.config.digest, nil }
func (im *rawImage) RawConfigFile() ([]byte, error) { return im.config.data, nil }
func (im *rawImage) ConfigLayer() (v1.Layer, error) { return im.config, nil }
func (im *rawImage) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(bytes.NewReader(im.config.data))
}

func (im *rawImage) Layers() ([]v1.Layer, error) {
	out := make([]v1.Layer, len(im.layers))
	for i, l := range im.layers {
		out[i] = l
	}
	return out, nil
}

// LayerByDigest also finds the config, as go-containerregistry's remote
// images do.
func (im *rawImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	if h == im.config.digest {
		return im.config, nil
	}
	for _, l := range im.layers {
		if l.digest == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("image %s has no layer %s", im.digest, h)
}

func (im *rawImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for _, l := range im.layers {
		if l.diffID == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("image %s has no layer with diff ID %s", im.digest, h)
}

// blob finds the manifest, config or a layer by digest.
func (im *rawImage) blob(h v1.Hash) ([]byte, bool) {
	if h == im.digest {
		return im.manifest, true
	}
	if l, err := im.LayerByDigest(h); err == nil {
		return l.(*rawLayer).data, true
	}
	return nil, false
}

// rawIndex is the per-platform index.
type rawIndex struct {
	raw    []byte
	digest v1.Hash
	images map[v1.Hash]*rawImage
}

var _ v1.ImageIndex = (*rawIndex)(nil)

func (ix *rawIndex) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }
func (ix *rawIndex) Digest() (v1.Hash, error)            { return ix.digest, nil }
func (ix *rawIndex) Size() (int64, error)                { return int64(len(ix.raw)), nil }
func (ix *rawIndex) RawManifest() ([]byte, error)        { return ix.raw, nil }
func (ix *rawIndex) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(ix.raw))
}

func (ix *rawIndex) Image(h v1.Hash) (v1.Image, error) {
	if im, ok := ix.images[h]; ok {
		return im, nil
	}
	return nil, fmt.Errorf("index %s has no image %s", ix.digest, h)
}

func (ix *rawIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return nil, fmt.Errorf("index %s has no child index %s", ix.digest, h)
}
