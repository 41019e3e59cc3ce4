package index

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/pkg/fault"
)

// Fetcher reads content by digest from one repository (the source's). The oci
// client satisfies it through a small adapter bound to a repository. Errors
// keep their fault kind (not found → Input, unreachable → Operational).
// This package checks the digest and size of everything it reads, so a
// Fetcher need not (though the oci client does too).
type Fetcher interface {
	// Manifest returns a manifest's bytes and the media type the registry
	// served it with (Content-Type), which may be empty.
	Manifest(ctx context.Context, digest v1.Hash) (raw []byte, mediaType string, err error)
	// Blob returns the bytes of the blob d describes (digest and size, which
	// the oci client's BlobBytes checks), failing when it is larger than max.
	Blob(ctx context.Context, d v1.Descriptor, max int64) ([]byte, error)
}

// Size caps for what this package reads into memory. Manifests match the oci
// client's default; configs and in-toto statements are JSON documents that
// real builders keep far below these.
const (
	maxManifest  = 4 << 20
	maxConfig    = 4 << 20
	maxStatement = 32 << 20
	// maxDepth bounds nested indexes; real ones nest at most twice (an OCI
	// layout's index.json around BuildKit's index).
	maxDepth = 4
)

// manifest is a fetched, verified manifest with the fields this package reads
// from either kind.
type manifest struct {
	desc      v1.Descriptor // digest and size of raw; MediaType resolved
	raw       []byte
	mediaType types.MediaType
}

// fetchManifest reads the manifest d names, checks it against d's digest (and
// size, when d has one) and works out its media type: the body's mediaType
// field, else d's, else what the registry served.
func fetchManifest(ctx context.Context, f Fetcher, d v1.Descriptor) (*manifest, error) {
	raw, served, err := f.Manifest(ctx, d.Digest)
	if err != nil {
		return nil, fmt.Errorf("fetch manifest %s: %w", d.Digest, err)
	}
	if err := verify(raw, d, maxManifest); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		mt := d.MediaType
		if mt == "" {
			mt = types.MediaType(served)
		}
		return nil, fault.Inputf("%s (media type %q) is not a manifest: %v", d.Digest, mt, err)
	}
	mt := probe.MediaType
	if mt == "" {
		mt = d.MediaType
	}
	if mt == "" {
		mt = types.MediaType(served)
	}
	out := d
	out.MediaType = mt
	out.Size = int64(len(raw))
	return &manifest{desc: out, raw: raw, mediaType: mt}, nil
}

// fetchBlob reads the blob d names and checks its digest and size.
func fetchBlob(ctx context.Context, f Fetcher, d v1.Descriptor, max int64) ([]byte, error) {
	if d.Size > max {
		return nil, fault.Inputf("blob %s is %d bytes, over the %d-byte limit", d.Digest, d.Size, max)
	}
	raw, err := f.Blob(ctx, d, max)
	if err != nil {
		return nil, fmt.Errorf("fetch blob %s: %w", d.Digest, err)
	}
	if err := verify(raw, d, max); err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return raw, nil
}

// verify checks that raw is what d describes. A mismatch means the source
// holds something other than what its reference claims: an input error.
func verify(raw []byte, d v1.Descriptor, max int64) error {
	if int64(len(raw)) > max {
		return fault.Inputf("%d bytes, over the %d-byte limit", len(raw), max)
	}
	if d.Size != 0 && int64(len(raw)) != d.Size {
		return fault.Inputf("got %d bytes, descriptor says %d", len(raw), d.Size)
	}
	h, err := v1.Hasher(d.Digest.Algorithm)
	if err != nil {
		return fault.Inputf("digest %q: %v", d.Digest, err)
	}
	h.Write(raw)
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Digest.Hex {
		return fault.Inputf("content hashes to %s:%s, not to its digest", d.Digest.Algorithm, got)
	}
	return nil
}

// isImageManifest reports whether mt is an image manifest (OCI or Docker
// schema 2), the only manifest kinds a platform entry or attestation can be.
func isImageManifest(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

// imageConfig is the part of an image config that names its platform.
type imageConfig struct {
	OS           string   `json:"os"`
	Architecture string   `json:"architecture"`
	Variant      string   `json:"variant,omitempty"`
	OSVersion    string   `json:"os.version,omitempty"`
	OSFeatures   []string `json:"os.features,omitempty"`
}

// imagePlatform reads the platform of the image manifest m from its config.
// It fails (input) when m is not a container image: an OCI artifact, a
// manifest whose config is not an image config, or one whose config names no
// platform (BuildKit's older attestation layout has unknown/unknown there).
func imagePlatform(ctx context.Context, f Fetcher, m *manifest) (v1.Platform, error) {
	var im v1.Manifest
	if err := json.Unmarshal(m.raw, &im); err != nil {
		return v1.Platform{}, fault.Inputf("%s: malformed image manifest: %v", m.desc.Digest, err)
	}
	if im.ArtifactType != "" {
		return v1.Platform{}, fault.Inputf("%s is an OCI artifact (artifactType %s), not a container image", m.desc.Digest, im.ArtifactType)
	}
	if !im.Config.MediaType.IsConfig() {
		return v1.Platform{}, fault.Inputf("%s is not a container image (config media type %q)", m.desc.Digest, im.Config.MediaType)
	}
	p, err := configPlatform(ctx, f, m.desc.Digest, &im)
	if err != nil {
		return v1.Platform{}, err
	}
	if !hasPlatform(&p) && allInToto(im.Layers) {
		return v1.Platform{}, fault.Inputf("%s is an attestation manifest (in-toto layers, config platform %s), not a platform image", m.desc.Digest, FormatPlatform(&p))
	}
	if !hasPlatform(&p) {
		return v1.Platform{}, fault.Inputf("%s is not a platform image: its config names platform %s", m.desc.Digest, FormatPlatform(&p))
	}
	return p, nil
}

// configPlatform reads the platform named by the config of im (whose digest is
// dgst), which may be empty or unknown/unknown.
func configPlatform(ctx context.Context, f Fetcher, dgst v1.Hash, im *v1.Manifest) (v1.Platform, error) {
	raw, err := fetchBlob(ctx, f, im.Config, maxConfig)
	if err != nil {
		return v1.Platform{}, fmt.Errorf("config of %s: %w", dgst, err)
	}
	var c imageConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return v1.Platform{}, fault.Inputf("config of %s: malformed: %v", dgst, err)
	}
	return v1.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant, OSVersion: c.OSVersion, OSFeatures: c.OSFeatures}, nil
}
